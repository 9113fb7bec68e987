/**
 * The JS engine: one ES module per function, run in V8 isolates (isolated-vm) under a heap
 * limit, a wall-clock deadline and an output cap.
 *
 * Theory of operation. A call leases an isolate from the pool (warm if one is idle for the same
 * function and code), then builds a *fresh context* in it: the prelude makes the context
 * deterministic, the module is compiled (from V8's code cache after the first time), linked with
 * no imports allowed, and evaluated; then the prelude calls the export and writes the result as a
 * tape. The context is thrown away after the call, so nothing a call does to its globals, the
 * intrinsics or the module's own top-level state reaches the next call. Measured on a 2-core
 * peer: a fresh context costs about 0.5 ms per call against 0.05 ms for reusing one; frozen
 * intrinsics would be cheaper but would still leak module state between calls, so each call
 * gets its own context. The isolate (heap, compiled code) is what stays warm; it is replaced
 * after isolateCallsMax calls because dead contexts make V8's full GCs long (see isolate-pool.ts),
 * and the V8 code cache of each function outlives its isolates so a replacement compiles fast.
 *
 * Top-level code sees Math.random seeded by the function id (the same for every call); the
 * export sees it seeded by the call's seed. Dynamic import() rejects with Error "Not supported"
 * (reported as FunctionThrewError); static imports are refused with ForbiddenImportError.
 */

import type ivm from 'isolated-vm'
import { BoundedCache } from '../model/bounded-cache.ts'
import { InvalidInputError } from '../model/errors.ts'
import type { CallGuard } from './call-guard.ts'
import { SandboxAbortedError } from './errors.ts'
import type { IsolatePoolOptions, Lease } from './isolate-pool.ts'
import { IsolatePool } from './isolate-pool.ts'
import { PRELUDE_SOURCE } from './prelude.ts'
import { copyInto, exactCopy, linkAndEvaluate, preludeLimits, releaseAll, runLeased, sameBytes } from './run-call.ts'
import type { RunOptions, SandboxCall, SandboxEngine, SandboxResult } from './types.ts'
import { validateCall } from './validate.ts'
import { argsToTape } from './values.ts'
import type { Tape } from './values.ts'

interface JsState {
  code: Uint8Array
  source: string
  prelude: ivm.Script | undefined
  cachedData: ivm.ExternalCopy<ArrayBuffer> | undefined
}

export interface JsEngineOptions extends IsolatePoolOptions {
  /** Share a pool with other engines (createSandbox does); otherwise the engine owns one. */
  pool?: IsolatePool
}

/**
 * Most functions whose compiled code is kept for new isolates. V8's code cache for a bundle is
 * about the size of its source; 64 bundles of ~100 KiB stay under 10 MiB and cover more
 * functions than the warm pool holds.
 */
export const CODE_CACHE_ENTRIES_MAX = 64

export class JsEngine implements SandboxEngine {
  readonly kind = 'js' as const
  readonly pool: IsolatePool
  private readonly ownsPool: boolean
  /** V8 code caches by function id, shared by that function's isolates, and the code each was made from. */
  private readonly codeCache = new BoundedCache<string, { code: Uint8Array, data: ivm.ExternalCopy<ArrayBuffer> }>({ entriesMax: CODE_CACHE_ENTRIES_MAX })

  constructor (options: JsEngineOptions = {}) {
    this.ownsPool = options.pool === undefined
    this.pool = options.pool ?? new IsolatePool(options)
  }

  async run (call: SandboxCall, options: RunOptions = {}): Promise<SandboxResult> {
    const startedMs = performance.now()
    validateCall(call, 'js')
    if (options.signal?.aborted === true) throw new SandboxAbortedError()
    const args = argsToTape(call.args)
    return await runLeased<JsState>({
      pool: this.pool,
      call,
      signal: options.signal,
      startedMs,
      newState: () => newState(call.code, this.cachedCode(call)),
      accepts: state => sameBytes(state.code, call.code),
      work: async (lease, guard) => {
        const record = await callInContext(lease, call, args, guard)
        const { cachedData } = lease.entry.state
        if (!lease.warm && cachedData !== undefined) this.codeCache.set(call.functionId, { code: call.code, data: cachedData })
        return record
      }
    })
  }

  /** The V8 code cache made from exactly this call's code, if one is kept. */
  private cachedCode (call: SandboxCall): ivm.ExternalCopy<ArrayBuffer> | undefined {
    const entry = this.codeCache.get(call.functionId)
    return entry !== undefined && sameBytes(entry.code, call.code) ? entry.data : undefined
  }

  async close (): Promise<void> {
    this.codeCache.clear()
    if (this.ownsPool) this.pool.close()
  }
}

/** Build a fresh context, load the module into it, and call the export. Returns the prelude's record. */
async function callInContext (lease: Lease<JsState>, call: SandboxCall, args: Tape, guard: CallGuard): Promise<unknown> {
  const { isolate, state } = lease.entry
  state.prelude ??= await isolate.compileScript(PRELUDE_SOURCE, { filename: 'rhizome:prelude' })
  const context = await isolate.createContext()
  const references: Array<{ release: () => void }> = [context]
  try {
    const install = await state.prelude.run(context, { reference: true, timeout: guard.remainingMs() }) as ivm.Reference
    references.push(install)
    const runner = await install.apply(undefined, ['js', copyInto(new TextEncoder().encode(call.functionId))], {
      result: { reference: true },
      timeout: guard.remainingMs()
    }) as ivm.Reference
    references.push(runner)
    const namespace = await loadModule(isolate, context, state, call, guard, references)
    return await runner.apply(undefined, [
      namespace.derefInto(),
      call.exportName,
      copyInto(args.kinds),
      copyInto(args.vals),
      copyInto(exactCopy(call.seed)),
      copyInto(preludeLimits(call.limits))
    ], { result: { promise: true, copy: true }, timeout: guard.remainingMs() })
  } finally {
    releaseAll(references)
  }
}

async function loadModule (isolate: ivm.Isolate, context: ivm.Context, state: JsState, call: SandboxCall, guard: CallGuard, references: Array<{ release: () => void }>): Promise<ivm.Reference> {
  const module = await isolate.compileModule(state.source, {
    filename: `rhizome:function/${call.functionId}`,
    ...(state.cachedData !== undefined ? { cachedData: state.cachedData } : { produceCachedData: true })
  })
  references.push(module)
  state.cachedData ??= (module as { cachedData?: ivm.ExternalCopy<ArrayBuffer> }).cachedData
  await linkAndEvaluate(module, context, guard)
  return module.namespace
}

function newState (code: Uint8Array, cachedData: ivm.ExternalCopy<ArrayBuffer> | undefined): JsState {
  let source: string
  try {
    source = new TextDecoder('utf-8', { fatal: true }).decode(code)
  } catch (err) {
    throw new InvalidInputError('js function code is not valid UTF-8', { cause: err })
  }
  return { code, source, prelude: undefined, cachedData }
}

export function createJsEngine (options: JsEngineOptions = {}): JsEngine {
  return new JsEngine(options)
}
