/**
 * Turning what came out of an isolate into a result or a named error. Both engines share this:
 * the prelude reports the same failure records for JS and wasm.
 */

import { RhizomeError } from '../model/errors.ts'
import {
  ExportNotFoundError, FunctionThrewError, NondeterminismError, SandboxCrashedError, SandboxMemoryLimitError,
  SandboxOutputLimitError, SandboxStackOverflowError, SandboxTimeLimitError, UnsupportedValueError, WasmModuleError,
  WasmTrapError, WorkflowArgsLimitError, WorkflowCommandsLimitError, WorkflowDeadlockError, WorkflowDefinitionError
} from './errors.ts'
import { THROWN_MESSAGE_LENGTH_MAX, WORKFLOW_CALL_ARGS_BYTES_MAX, WORKFLOW_COMMANDS_PER_ACTIVATION_MAX } from './limits.ts'
import type { SandboxLimits } from './limits.ts'
import { encodeResult, tapeToValue } from './values.ts'

export interface Encoded { value: unknown, bytes: Uint8Array }

/** Failures after which the isolate is still sound and may serve the next call. */
const REUSABLE = new Set(['threw', 'unsupported', 'export', 'nondeterminism', 'trap'])

/**
 * Read the record the prelude returned. Returns the encoded value, or throws the named error.
 * `reusable` tells the caller whether the isolate may be kept.
 */
export function readOutcome (record: unknown, limits: SandboxLimits, exportName: string): { encoded?: Encoded, error?: RhizomeError, reusable: boolean } {
  if (typeof record !== 'object' || record === null) return { error: new SandboxCrashedError('the sandbox returned no result record'), reusable: false }
  const r = record as Record<string, unknown>
  if (r.ok === true) {
    try {
      return { encoded: encodeResult(tapeToValue(r), limits.outputBytesMax), reusable: true }
    } catch (err) {
      if (err instanceof SandboxOutputLimitError) return { error: err, reusable: false }
      if (err instanceof RhizomeError) return { error: err, reusable: true }
      throw err
    }
  }
  const kind = typeof r.kind === 'string' ? r.kind : ''
  const message = typeof r.message === 'string' ? r.message : ''
  return { error: failureError(kind, message, r, limits, exportName), reusable: REUSABLE.has(kind) }
}

function failureError (kind: string, message: string, r: Record<string, unknown>, limits: SandboxLimits, exportName: string): RhizomeError {
  switch (kind) {
    case 'threw':
      return new FunctionThrewError(typeof r.name === 'string' ? r.name : 'Error', message)
    case 'stack':
      return new SandboxStackOverflowError()
    case 'memory':
      return new SandboxMemoryLimitError(limits.memoryBytesMax, message !== '' ? message : undefined)
    case 'nondeterminism':
      return new NondeterminismError(message)
    case 'unsupported':
      return new UnsupportedValueError(message)
    case 'output':
      return new SandboxOutputLimitError(typeof r.bytes === 'number' ? r.bytes : limits.outputBytesMax + 1, limits.outputBytesMax)
    case 'export': {
      const exports = Array.isArray(r.exports) ? r.exports.filter((e): e is string => typeof e === 'string') : []
      return new ExportNotFoundError(exportName, exports)
    }
    case 'trap':
      return new WasmTrapError(message)
    case 'module':
      return new WasmModuleError(`the WebAssembly module does not compile: ${message}`)
    case 'commands':
      return new WorkflowCommandsLimitError(WORKFLOW_COMMANDS_PER_ACTIVATION_MAX)
    case 'args':
      return new WorkflowArgsLimitError(typeof r.bytes === 'number' ? r.bytes : WORKFLOW_CALL_ARGS_BYTES_MAX + 1, WORKFLOW_CALL_ARGS_BYTES_MAX)
    case 'definition':
      return new WorkflowDefinitionError(message)
    case 'deadlock':
      return new WorkflowDeadlockError(message)
    default:
      return new SandboxCrashedError(`unknown failure record "${kind}"`)
  }
}

/**
 * Classify an error raised by isolated-vm itself (not reported by the prelude): its own timeout,
 * the memory limit it enforces, or an isolate that died.
 */
export function engineError (err: unknown, limits: SandboxLimits): RhizomeError {
  if (err instanceof RhizomeError) return err
  const message = err instanceof Error ? err.message : String(err)
  if (message.includes('execution timed out')) return new SandboxTimeLimitError(limits.timeMs, { cause: err })
  if (message.includes('memory limit')) return new SandboxMemoryLimitError(limits.memoryBytesMax, undefined, { cause: err })
  if (message.includes('Array buffer allocation failed')) return new SandboxMemoryLimitError(limits.memoryBytesMax, 'an ArrayBuffer allocation failed', { cause: err })
  if (message.includes('Maximum call stack size exceeded')) return new SandboxStackOverflowError({ cause: err })
  return new SandboxCrashedError(message, { cause: err })
}

/** True when isolated-vm raised `err` about the isolate itself rather than relaying user code. */
export function isEngineFailure (err: unknown): boolean {
  const message = err instanceof Error ? err.message : ''
  return message.includes('execution timed out') || message.includes('disposed') || message.includes('memory limit')
}

/** An error thrown by the module's top-level code, as isolated-vm relays it. */
export function topLevelError (err: unknown): Error {
  if (err instanceof Error) {
    if (err.name === 'RangeError' && err.message === 'Maximum call stack size exceeded') return new SandboxStackOverflowError({ cause: err })
    // The prelude's own refusal (the clock read at load time). isolated-vm relays the error
    // without its name, but its stack still shows where it was made.
    if (err.stack?.includes('at nondeterminism (rhizome:prelude:') === true) return new NondeterminismError(`${err.message.slice(0, THROWN_MESSAGE_LENGTH_MAX)} (while loading the module)`, { cause: err })
    return new FunctionThrewError(err.name, `${err.message.slice(0, THROWN_MESSAGE_LENGTH_MAX)} (while loading the module)`, { cause: err })
  }
  const type = err === null ? 'null' : typeof err
  const text = typeof err === 'string' ? err : type === 'object' ? 'a value that is not an Error' : String(err)
  return new FunctionThrewError(type, `${text.slice(0, THROWN_MESSAGE_LENGTH_MAX)} (while loading the module)`)
}
