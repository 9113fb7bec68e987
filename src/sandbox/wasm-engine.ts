/**
 * The WebAssembly engine. A module runs inside a V8 isolate (isolated-vm), so a call can be
 * timed out or aborted by disposing the isolate on its own thread, without blocking the peer's
 * event loop.
 *
 * Theory of operation. The module is checked on the host first (imports, memories, the export's
 * signature), then an isolate leased from the pool compiles it once, with its memory maximum
 * rewritten to the call's cap; every call then gets a fresh instance (fresh memory, fresh
 * globals), so no state survives from one call to the next. Compiling is what stays warm.
 *
 * Calling convention (Rhizome wasm ABI v1):
 *   - Arguments map onto the export's parameters in order. A number fills an i32 (integer in
 *     [-2^31, 2^32)), an i64 (safe integer), or an f32/f64 parameter; a BigInt fills an i64.
 *     A Uint8Array fills two i32 parameters (ptr, len): Rhizome calls the module's exported
 *     `alloc(len) -> ptr` and copies the bytes into its exported `memory` there.
 *   - The result is the export's return value: nothing → null, one value → that number (an i64
 *     comes back as a number when it is a safe integer, as a BigInt otherwise), several → an
 *     array. A module returns bytes instead by calling `rhizome.output(ptr, len)` before it
 *     returns; the bytes at [ptr, ptr+len) of its memory become the result.
 *   - Imports: only functions of the module "rhizome": `output(i32, i32)` and
 *     `random_f64() -> f64` (seeded per task, like Math.random in JS). Anything else is refused
 *     with ForbiddenImportError.
 *   - Memory: at most one, unshared, 32-bit. Initial size above memoryBytesMax is refused with
 *     SandboxMemoryLimitError; growing past it makes memory.grow return -1, and a module that
 *     then traps fails with WasmTrapError.
 */

import type ivm from 'isolated-vm'
import type { CallGuard } from './call-guard.ts'
import { ExportNotFoundError, SandboxAbortedError, UnsupportedValueError } from './errors.ts'
import type { IsolatePoolOptions, Lease } from './isolate-pool.ts'
import { IsolatePool } from './isolate-pool.ts'
import { PRELUDE_SOURCE } from './prelude.ts'
import type { WasmArg } from './prelude.ts'
import { copyInto, exactCopy, preludeLimits, runLeased, sameBytes } from './run-call.ts'
import type { RunOptions, SandboxCall, SandboxEngine, SandboxResult } from './types.ts'
import { validateCall } from './validate.ts'
import { INT64_MAX, INT64_MIN } from './values.ts'
import { ALLOC_EXPORT, callableExports, capWasmMemory, checkWasmModule, functionType, parseWasmModule, WASM_PAGE_BYTES } from './wasm-module.ts'
import type { WasmFuncType, WasmModuleInfo } from './wasm-module.ts'

interface WasmState {
  code: Uint8Array
  /** The prelude's invoke(), once the module is compiled in this isolate. */
  invoke: ivm.Reference | undefined
}

export interface WasmEngineOptions extends IsolatePoolOptions {
  /** Share a pool with other engines (createSandbox does); otherwise the engine owns one. */
  pool?: IsolatePool
}

export class WasmEngine implements SandboxEngine {
  readonly kind = 'wasm' as const
  readonly pool: IsolatePool
  private readonly ownsPool: boolean

  constructor (options: WasmEngineOptions = {}) {
    this.ownsPool = options.pool === undefined
    this.pool = options.pool ?? new IsolatePool(options)
  }

  async run (call: SandboxCall, options: RunOptions = {}): Promise<SandboxResult> {
    const startedMs = performance.now()
    validateCall(call, 'wasm')
    if (options.signal?.aborted === true) throw new SandboxAbortedError()
    const info = parseWasmModule(call.code)
    checkWasmModule(info, call.limits.memoryBytesMax)
    const args = wasmArgs(info, call.exportName, call.args)
    return await runLeased<WasmState>({
      pool: this.pool,
      call,
      signal: options.signal,
      startedMs,
      newState: () => ({ code: call.code, invoke: undefined }),
      accepts: state => sameBytes(state.code, call.code),
      work: async (lease, guard) => await invoke(lease, call, info, args, guard)
    })
  }

  async close (): Promise<void> {
    if (this.ownsPool) this.pool.close()
  }
}

/** Compile the module in this isolate if not done yet, then instantiate it afresh and call the export. */
async function invoke (lease: Lease<WasmState>, call: SandboxCall, info: WasmModuleInfo, args: WasmArg[], guard: CallGuard): Promise<unknown> {
  const { isolate, state } = lease.entry
  if (state.invoke === undefined) {
    // The context lives as long as the isolate: it holds no function code, only Rhizome's
    // prelude and the compiled module.
    const context = await isolate.createContext()
    const script = await isolate.compileScript(PRELUDE_SOURCE, { filename: 'rhizome:prelude' })
    const install = await script.run(context, { reference: true, timeout: guard.remainingMs() }) as ivm.Reference
    const runner = await install.apply(undefined, ['wasm', copyInto(new TextEncoder().encode(call.functionId))], {
      result: { reference: true },
      timeout: guard.remainingMs()
    }) as ivm.Reference
    const compile = await runner.get('compile', { reference: true }) as ivm.Reference
    const pagesMax = Math.floor(call.limits.memoryBytesMax / WASM_PAGE_BYTES)
    const failure = await compile.apply(undefined, [copyInto(exactCopy(capWasmMemory(call.code, info, pagesMax)))], {
      result: { copy: true },
      timeout: guard.remainingMs()
    })
    if (failure !== null) return failure
    state.invoke = await runner.get('invoke', { reference: true }) as ivm.Reference
  }
  return await state.invoke.apply(undefined, [call.exportName, copyInto(args), copyInto(exactCopy(call.seed)), copyInto(preludeLimits(call.limits))], {
    result: { copy: true },
    timeout: guard.remainingMs()
  })
}

/** Map call arguments onto the export's parameters (ABI above), or say why they do not fit. */
export function wasmArgs (info: WasmModuleInfo, exportName: string, args: readonly unknown[]): WasmArg[] {
  const exp = info.exports.find(e => e.name === exportName && e.kind === 'function')
  const type = exp !== undefined ? functionType(info, exp.index) : undefined
  if (exp === undefined || type === undefined) throw new ExportNotFoundError(exportName, callableExports(info))
  for (const t of [...type.params, ...type.results]) {
    if (t !== 'i32' && t !== 'i64' && t !== 'f32' && t !== 'f64') {
      throw new UnsupportedValueError(`export "${exportName}" has signature ${formatSignature(type)}; Rhizome calls only numeric signatures`)
    }
  }
  const plan: WasmArg[] = []
  let p = 0
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (arg instanceof Uint8Array) {
      if (type.params[p] !== 'i32' || type.params[p + 1] !== 'i32') throw arity(exportName, type, `argument ${i} is bytes, which needs two i32 parameters (ptr, len)`)
      requireAlloc(info)
      plan.push({ bytes: new Uint8Array(arg) })
      p += 2
      continue
    }
    const param = type.params[p]
    if (param === undefined) throw arity(exportName, type, `it was given more arguments than that`)
    plan.push({ value: numericArg(arg, param, i) })
    p += 1
  }
  if (p !== type.params.length) throw arity(exportName, type, `it was given ${args.length} arguments`)
  return plan
}

function numericArg (arg: unknown, param: string, i: number): number | bigint {
  if (typeof arg === 'bigint') {
    if (param !== 'i64' || arg < INT64_MIN || arg > INT64_MAX) throw new UnsupportedValueError(`argument ${i} is a BigInt, which fits only an i64 parameter (within int64); this one is ${param}`)
    return arg
  }
  if (typeof arg !== 'number' || !Number.isFinite(arg)) {
    throw new UnsupportedValueError(`argument ${i} is ${arg === null ? 'null' : typeof arg}; wasm functions take finite numbers, BigInts and Uint8Array bytes`)
  }
  if (param === 'i32') {
    if (!Number.isInteger(arg) || arg < -(2 ** 31) || arg >= 2 ** 32) throw new UnsupportedValueError(`argument ${i} is ${arg}, which does not fit an i32 parameter`)
    return arg
  }
  if (param === 'i64') {
    if (!Number.isSafeInteger(arg)) throw new UnsupportedValueError(`argument ${i} is ${arg}, not a safe integer for an i64 parameter (pass a BigInt)`)
    return BigInt(arg)
  }
  return arg
}

function requireAlloc (info: WasmModuleInfo): void {
  const alloc = info.exports.find(e => e.name === ALLOC_EXPORT && e.kind === 'function')
  const type = alloc !== undefined ? functionType(info, alloc.index) : undefined
  const memory = info.exports.find(e => e.name === 'memory' && e.kind === 'memory')
  if (type === undefined || type.params.join() !== 'i32' || type.results.join() !== 'i32' || memory === undefined) {
    throw new UnsupportedValueError('a bytes argument needs the module to export "alloc" (i32 length -> i32 pointer) and its "memory"')
  }
}

function arity (exportName: string, type: WasmFuncType, detail: string): UnsupportedValueError {
  return new UnsupportedValueError(`export "${exportName}" has signature ${formatSignature(type)}; ${detail}`)
}

function formatSignature (type: WasmFuncType): string {
  return `(${type.params.join(', ')}) -> (${type.results.join(', ')})`
}

export function createWasmEngine (options: WasmEngineOptions = {}): WasmEngine {
  return new WasmEngine(options)
}
