/**
 * Named failures of the sandbox. Each says whether running the same call again (here or on
 * another peer) could succeed: `retryable` is true only when the cause lies with the peer
 * (it was busy, shutting down, aborted, or slow), never when it lies with the function.
 */

import { RhizomeError } from '../model/errors.ts'
import type { RhizomeErrorOptions } from '../model/errors.ts'

const MIB = 1024 * 1024

function formatBytes (bytes: number): string {
  return bytes >= MIB && bytes % MIB === 0 ? `${bytes / MIB} MiB` : `${bytes} bytes`
}

/** The function used more memory than `limits.memoryBytesMax`. */
export class SandboxMemoryLimitError extends RhizomeError {
  readonly memoryBytesMax: number
  constructor (memoryBytesMax: number, detail = 'the function used more memory than its limit', options: RhizomeErrorOptions = {}) {
    super('ERR_SANDBOX_MEMORY_LIMIT', `${detail} (memoryBytesMax is ${formatBytes(memoryBytesMax)})`, {
      hint: 'use less memory, or raise limits.memoryBytesMax in the function manifest',
      ...options
    })
    this.name = 'SandboxMemoryLimitError'
    this.memoryBytesMax = memoryBytesMax
  }
}

/**
 * The call ran longer than `limits.timeMs`. The budget is wall time, so a heavily loaded peer
 * can hit it where an idle one would not: worth retrying (a bounded number of times).
 */
export class SandboxTimeLimitError extends RhizomeError {
  readonly timeMs: number
  /** `what` says what ran too long: a function call, or one activation of a workflow (CPU time). */
  constructor (timeMs: number, options: RhizomeErrorOptions = {}, what = 'the function ran for longer than its limit of') {
    super('ERR_SANDBOX_TIME_LIMIT', `${what} ${timeMs} ms`, {
      retryable: true,
      hint: 'look for an endless loop or a promise that never settles, or raise limits.timeMs in the function manifest',
      ...options
    })
    this.name = 'SandboxTimeLimitError'
    this.timeMs = timeMs
  }
}

/** The result, encoded as dag-cbor, is larger than `limits.outputBytesMax`. */
export class SandboxOutputLimitError extends RhizomeError {
  /** Encoded size of the result, or a lower bound when the sandbox stopped counting early. */
  readonly bytes: number
  readonly outputBytesMax: number
  constructor (bytes: number, outputBytesMax: number, options: RhizomeErrorOptions = {}) {
    super('ERR_SANDBOX_OUTPUT_LIMIT', `the result is at least ${bytes} bytes as dag-cbor, more than the limit of ${formatBytes(outputBytesMax)}`, {
      hint: 'return a smaller value (store large data as a blob and return its CID), or raise limits.outputBytesMax',
      ...options
    })
    this.name = 'SandboxOutputLimitError'
    this.bytes = bytes
    this.outputBytesMax = outputBytesMax
  }
}

/**
 * The function recursed past the engine's stack limit. Rhizome does not set a separate stack
 * depth limit: V8's own limit (about 10,000 frames, depending on frame size) applies, and this
 * error reports it.
 */
export class SandboxStackOverflowError extends RhizomeError {
  constructor (options: RhizomeErrorOptions = {}) {
    super('ERR_SANDBOX_STACK_OVERFLOW', 'the function exceeded the maximum call stack size', {
      hint: 'look for unbounded recursion, or turn deep recursion into a loop',
      ...options
    })
    this.name = 'SandboxStackOverflowError'
  }
}

/**
 * The function threw. `thrownName` is the thrown error's `name` (`TypeError`, or the user's own
 * class name); for a thrown value that is not an Error it is the value's type (`string`, `null`,
 * `object`, ...). `thrownMessage` is its message, cut to a bounded length.
 */
export class FunctionThrewError extends RhizomeError {
  readonly thrownName: string
  readonly thrownMessage: string
  constructor (thrownName: string, thrownMessage: string, options: RhizomeErrorOptions = {}) {
    super('ERR_FUNCTION_THREW', `${thrownName}: ${thrownMessage}`, {
      hint: 'the function itself failed: fix the function or its arguments',
      ...options
    })
    this.name = 'FunctionThrewError'
    this.thrownName = thrownName
    this.thrownMessage = thrownMessage
  }
}

/**
 * A value that crosses the sandbox boundary is outside the dag-cbor data model: a function,
 * symbol, `undefined` inside an array, a cycle, NaN or Infinity, a BigInt outside int64, a
 * Map/Set/Date/class instance, a getter, or nesting deeper than the limit.
 */
export class UnsupportedValueError extends RhizomeError {
  constructor (message: string, options: RhizomeErrorOptions = {}) {
    super('ERR_UNSUPPORTED_VALUE', message, {
      hint: 'arguments and results must be plain data: null, booleans, numbers, strings, Uint8Array, arrays, plain objects and CIDs',
      ...options
    })
    this.name = 'UnsupportedValueError'
  }
}

/** The code has no exported function of that name. */
export class ExportNotFoundError extends RhizomeError {
  readonly exportName: string
  readonly available: string[]
  constructor (exportName: string, available: string[], options: RhizomeErrorOptions = {}) {
    const list = available.length > 0 ? available.join(', ') : 'none'
    super('ERR_EXPORT_NOT_FOUND', `the function code has no exported function named "${exportName}" (exported functions: ${list})`, {
      hint: 'check the export name, and that it is exported as a function',
      ...options
    })
    this.name = 'ExportNotFoundError'
    this.exportName = exportName
    this.available = available
  }
}

/**
 * The code imports something Rhizome does not provide: a module import, a Node built-in, a URL,
 * or a WebAssembly import outside the `rhizome` module.
 */
export class ForbiddenImportError extends RhizomeError {
  readonly specifier: string
  readonly file: string | undefined
  constructor (specifier: string, file?: string, detail?: string, options: RhizomeErrorOptions = {}) {
    const where = file !== undefined ? ` in ${file}` : ''
    super('ERR_FORBIDDEN_IMPORT', `forbidden import "${specifier}"${where}${detail !== undefined ? `: ${detail}` : ''}`, {
      hint: 'a Rhizome function is one self-contained module: bundle relative imports, and use no Node built-ins, file system or network',
      ...options
    })
    this.name = 'ForbiddenImportError'
    this.specifier = specifier
    this.file = file
  }
}

/** The function asked for something that differs from run to run: the clock, for instance. */
export class NondeterminismError extends RhizomeError {
  constructor (message: string, options: RhizomeErrorOptions = {}) {
    super('ERR_NONDETERMINISM', message, {
      hint: 'pass the time (or any other changing input) as an argument; Math.random is seeded per task',
      ...options
    })
    this.name = 'NondeterminismError'
  }
}

/** A WebAssembly function trapped (unreachable, out-of-bounds access, division by zero, ...). */
export class WasmTrapError extends RhizomeError {
  constructor (message: string, options: RhizomeErrorOptions = {}) {
    super('ERR_WASM_TRAP', `the WebAssembly function trapped: ${message}`, {
      hint: 'a trap right after memory.grow returned -1 means the module ran out of memory: raise limits.memoryBytesMax',
      ...options
    })
    this.name = 'WasmTrapError'
  }
}

/** A WebAssembly module is malformed, or uses a feature Rhizome does not run. */
export class WasmModuleError extends RhizomeError {
  constructor (message: string, options: RhizomeErrorOptions = {}) {
    super('ERR_WASM_MODULE', message, {
      hint: 'build a plain wasm32 module: one unshared 32-bit memory, numeric signatures, imports only from "rhizome"',
      ...options
    })
    this.name = 'WasmModuleError'
  }
}

/** The call was aborted by its caller before it finished. */
export class SandboxAbortedError extends RhizomeError {
  constructor (message = 'the call was aborted', options: RhizomeErrorOptions = {}) {
    super('ERR_SANDBOX_ABORTED', message, { retryable: true, ...options })
    this.name = 'SandboxAbortedError'
  }
}

/** The sandbox was closed (the peer is shutting down). */
export class SandboxClosedError extends RhizomeError {
  constructor (options: RhizomeErrorOptions = {}) {
    super('ERR_SANDBOX_CLOSED', 'the sandbox is closed', { retryable: true, hint: 'the peer is shutting down: run the task on another peer', ...options })
    this.name = 'SandboxClosedError'
  }
}

/** More calls are running than `callsConcurrentMax` allows. The scheduler queues, not the sandbox. */
export class SandboxBusyError extends RhizomeError {
  readonly callsConcurrentMax: number
  constructor (callsConcurrentMax: number, options: RhizomeErrorOptions = {}) {
    super('ERR_SANDBOX_BUSY', `the sandbox is already running ${callsConcurrentMax} calls, its limit`, {
      retryable: true,
      hint: 'wait for a running call to finish, or place the task on another peer',
      ...options
    })
    this.name = 'SandboxBusyError'
    this.callsConcurrentMax = callsConcurrentMax
  }
}

/** The engine failed in a way the function cannot explain (an isolate died unexpectedly). */
export class SandboxCrashedError extends RhizomeError {
  constructor (message: string, options: RhizomeErrorOptions = {}) {
    super('ERR_SANDBOX_CRASHED', `the sandbox failed: ${message}`, { retryable: true, ...options })
    this.name = 'SandboxCrashedError'
  }
}

// --- Workflows ---------------------------------------------------------------------------------

/** One activation of a workflow recorded more calls than WORKFLOW_COMMANDS_PER_ACTIVATION_MAX. */
export class WorkflowCommandsLimitError extends RhizomeError {
  readonly commandsMax: number
  constructor (commandsMax: number, options: RhizomeErrorOptions = {}) {
    super('ERR_WORKFLOW_COMMANDS_LIMIT', `the workflow made more than ${commandsMax} calls in one activation`, {
      hint: 'a fan-out this wide belongs in a function that takes the whole list, or in batches awaited one after another',
      ...options
    })
    this.name = 'WorkflowCommandsLimitError'
    this.commandsMax = commandsMax
  }
}

/** The arguments of a workflow's remote call, as dag-cbor, are larger than WORKFLOW_CALL_ARGS_BYTES_MAX. */
export class WorkflowArgsLimitError extends RhizomeError {
  readonly bytes: number
  readonly bytesMax: number
  constructor (bytes: number, bytesMax: number, options: RhizomeErrorOptions = {}) {
    super('ERR_WORKFLOW_ARGS_LIMIT', `the arguments of a remote call are at least ${bytes} bytes as dag-cbor, more than the limit of ${formatBytes(bytesMax)}`, {
      hint: 'pass large inputs by reference: call the function that makes them with .ref(...) and pass the Ref',
      ...options
    })
    this.name = 'WorkflowArgsLimitError'
    this.bytes = bytes
    this.bytesMax = bytesMax
  }
}

/**
 * The workflow uses the SDK in a way that cannot run: a child workflow that is not exported, a
 * remote stub with a function id that is not a CID or an export that is not an identifier.
 */
export class WorkflowDefinitionError extends RhizomeError {
  constructor (message: string, options: RhizomeErrorOptions = {}) {
    super('ERR_WORKFLOW_DEFINITION', message, {
      hint: 'export every workflow, mark it with workflow(), and let the bundler write the remote stubs',
      ...options
    })
    this.name = 'WorkflowDefinitionError'
  }
}

/** The workflow waits, but on no remote call: nothing can ever move it on. */
export class WorkflowDeadlockError extends RhizomeError {
  constructor (message: string, options: RhizomeErrorOptions = {}) {
    super('ERR_WORKFLOW_DEADLOCK', message, {
      hint: 'a workflow moves on only when remote calls settle: await them, not a promise of your own that nothing resolves',
      ...options
    })
    this.name = 'WorkflowDeadlockError'
  }
}

/** As many workflow runs are open as `runsOpenMax` allows. */
export class WorkflowRunsBusyError extends RhizomeError {
  readonly runsOpenMax: number
  constructor (runsOpenMax: number, options: RhizomeErrorOptions = {}) {
    super('ERR_WORKFLOW_RUNS_BUSY', `${runsOpenMax} workflow runs are already open, the limit`, {
      retryable: true,
      hint: 'close a run (it replays from its history when it is needed again), or drive the run on another peer',
      ...options
    })
    this.name = 'WorkflowRunsBusyError'
    this.runsOpenMax = runsOpenMax
  }
}
