/**
 * The JS engine: one ES module per function, run in V8 isolates (isolated-vm) under a heap
 * limit, a wall-clock deadline and an output cap.
 *
 * Theory of operation. A call's biggest cost used to be its V8 context: every call ran in a fresh
 * one (~1 ms of the isolate thread's CPU on a 2-core peer), so that nothing a call did to globals
 * or intrinsics reached the next. Now every call first runs on a *fast path*, in its isolate's
 * *frozen realm*, and falls back to that exact path only when it fails there:
 *
 *   - The frozen realm: one context per warm isolate, made once, the prelude run in it (seeded by
 *     the function id, as before), then locked down (prelude.ts lockdown(), which lists every
 *     channel checked): everything reachable from globalThis and the intrinsics reachable only
 *     through syntax deep-frozen, globalThis itself frozen, the RegExp legacy statics deleted.
 *   - Each call gets a *fresh module instance* in that realm: compiled from V8's code cache,
 *     linked (no imports allowed), Math.random reseeded by the function id, top-level code run;
 *     then the runner calls the export with the call's seed, limits and arguments, as before. So
 *     module state is new for every call, everything older is frozen, and the prelude's own state
 *     is out of reach or reset: nothing a call does can reach a later call.
 *   - A call that fails on the fast path with anything but a limit or the engine's or pool's own
 *     condition (NO_FALLBACK below: the function threw, its result is not data, it read the clock,
 *     top-level code threw, ...) is run again exactly as before: in a fresh, unfrozen context of
 *     its own, with its whole time budget again (CallGuard.restart), and the rerun's outcome is
 *     the call's. The realm it failed in is dropped (the next call builds another). A limit or
 *     abort on the fast path is the call's outcome, and disposes the isolate as ever.
 *   - Top-level code sees nothing of a call, so if it fails in the frozen realm with its own error
 *     it would every time (typically a polyfill adding to a built-in prototype): the isolate then
 *     runs every call exactly (frozenOff). Assigning an inherited property that code commonly
 *     overrides (F.prototype.toString = ..., this.name = ... in an Error subclass) does NOT fail:
 *     prelude.ts tameOverrides makes those properties accessors that define the property on the
 *     inheriting object, as SES does against the "override mistake".
 *
 * What a function sees differs between the paths, and why that stays deterministic: functions are
 * deterministic (the prelude enforces it), so any function that does not catch the TypeError of a
 * write to a frozen intrinsic gives the same outcome both ways: it either never writes (same code,
 * same result) or writes, fails, and is rerun exactly. What differs: code that catches that
 * TypeError, or inspects Object.isFrozen/isExtensible of an intrinsic or globalThis, or reads
 * RegExp.$1 and the other legacy statics (undefined on the fast path), sees the frozen realm when
 * its call succeeds there. That is still the same on every peer and every run, because every peer
 * follows the same rule: every call (cold, warm, prepared or not) tries the frozen realm first,
 * and falls back only on a failure, which does not depend on the pool's state. (Only the limits
 * depend on it, as they always did.) The cost of the rule: a call that fails (throws, or writes
 * to an intrinsic itself) runs twice, and can take up to twice its timeMs of wall-clock time
 * before its outcome is known. A getOwnPropertyDescriptor of the tamed properties (see
 * tameOverrides) shows an accessor on the fast path and a data property on the exact one.
 *
 * Prepared module instances. Nothing of a call reaches its module instance before the export is
 * called, so it is built *ahead* of its call: when a clean call gives its isolate back to the pool,
 * the isolate builds the next call's module instance in the background (prepare()), and the call
 * that leases it next only calls the export. Preparing starts once the call's result is on its
 * way (run-call.ts prepareSoon), and only if the isolate is still idle then. Each prepared
 * instance serves exactly one call (the call takes it out of the state). A call that leases the
 * isolate while the preparation still runs waits for it, within its own budget. A preparation that
 * fails (top-level code that throws, a time limit of PREPARE_TIME_MS_MAX, the isolate disposed
 * under it) is dropped and the call loads the module itself as before, so it reports the same
 * error; an isolate that died preparing (isolated-vm disposes it at the memory limit) fails the
 * waiting call with that error, as the same top-level code would have. The call's time budget is
 * charged for top-level code that ran before the call started (CallGuard.chargeAhead), so a module
 * that loads slower than a call may run still fails that call with SandboxTimeLimitError. An
 * isolate whose function runs exactly (frozenOff) prepares exact contexts ahead the same way. An
 * isolate retiring after isolateCallsMax calls is replaced ahead of time (run-call.ts replaceAhead,
 * REPLACE_AHEAD_CALLS before it retires, kept behind it), its realm and first module instance
 * built then. The isolate is still replaced after
 * isolateCallsMax calls: each call's module instance is garbage in a long-lived heap, and
 * measured with a module that keeps 1,000 objects, isolates kept for 1,024 calls gave a worse p99
 * (7.8 ms) than 64 (5.6 ms) at the same CPU per call.
 *
 * Measured on a 2-core peer shared with other work (bench/sandbox.bench.ts warm, medians of four
 * interleaved runs of 2,000 no-op calls, a fresh context per call → frozen realm): back to back,
 * p50 1.37 → 0.49 ms, p99 5.0 → 6.0 ms (the runs spread 4.0–6.6 ms both ways), CPU per call (main
 * thread / whole process) 0.46 / 1.61 → 0.35 / 0.73 ms; with 1 ms between calls, p50 0.61 →
 * 0.32 ms, p99 3.8 → 2.5 ms, CPU 0.49 / 1.67 → 0.48 / 0.93 ms. The p99 is the calls around an
 * isolate's replacement: its frozen realm takes 3–8 ms of the isolate thread to build (the
 * lockdown walks ~800 objects and reads ~8,000 property descriptors, where a plain context took
 * ~1 ms); made REPLACE_AHEAD_CALLS early it is ready when needed (without that, the p99 with gaps
 * was 7.0 ms), but back to back it competes for the two cores with the calls still running. A
 * module that builds a 1,000-object table at top level, back to back: p50 1.37 → 0.58 ms, p99
 * 17.0 → 5.6 ms, CPU 2.03 → 0.91 ms per call (whole process).
 *
 * Dynamic import() rejects with Error "Not supported" (reported as FunctionThrewError); static
 * imports are refused with ForbiddenImportError.
 */

import type ivm from 'isolated-vm'
import { BoundedCache } from '../model/bounded-cache.ts'
import { ConfigError, InvalidInputError, RhizomeError } from '../model/errors.ts'
import { plainBudget } from './call-guard.ts'
import type { Budget, CallGuard } from './call-guard.ts'
import {
  ForbiddenImportError, SandboxAbortedError, SandboxBusyError, SandboxClosedError, SandboxCrashedError,
  SandboxMemoryLimitError, SandboxOutputLimitError, SandboxStackOverflowError, SandboxTimeLimitError
} from './errors.ts'
import type { IsolatePoolOptions, Lease, PoolEntry } from './isolate-pool.ts'
import { IsolatePool } from './isolate-pool.ts'
import { LIMITS_CEILING } from './limits.ts'
import { FROZEN_PRELUDE_PARTS, PRELUDE_PARTS, preludeSource } from './prelude.ts'
import { checkImports, copyInto, evaluateModule, exactCopy, preludeLimits, releaseAll, runLeased, sameBytes } from './run-call.ts'
import type { RunOptions, SandboxCall, SandboxEngine, SandboxResult } from './types.ts'
import { validateCall } from './validate.ts'
import { argsToTape } from './values.ts'
import type { Tape } from './values.ts'

type Releasable = { release: () => void }

/** The frozen realm of one isolate: a context locked down after the prelude ran, shared by its calls. */
interface Realm {
  context: ivm.Context
  /** The js runner (runJs), installed seeded by the function id. */
  runner: ivm.Reference
  /** Reseeds Math.random by the function id, before a module's top-level code runs. */
  reset: ivm.Reference
  /** Every handle of the realm, the context included, released when the realm is dropped. */
  references: Releasable[]
}

interface JsState {
  functionId: string
  code: Uint8Array
  source: string
  /** The exact path's prelude (a fresh context per call), compiled once per isolate. */
  prelude: ivm.Script | undefined
  /** The frozen realm's prelude, compiled once per isolate. */
  frozenPrelude: ivm.Script | undefined
  cachedData: ivm.ExternalCopy<ArrayBuffer> | undefined
  /** The frozen realm, once built; dropped after any call or preparation that failed in it. */
  realm: Realm | undefined
  /**
   * Set once the module's top-level code failed in the frozen realm with the function's own error:
   * top-level code sees no input of a call, so it would fail the same way every time; every call
   * of this isolate then runs exactly, skipping a try that cannot succeed.
   */
  frozenOff: boolean
  /**
   * The next call's module instance in the frozen realm, being built or built (theory of
   * operation above); taken by the call that leases the isolate, so no instance serves two
   * calls. Settles, never rejects.
   */
  next: Promise<Preparation> | undefined
  /** Set once a preparation failed on this isolate: it is not tried again here (see prepare()). */
  prepareOff: boolean
}

/**
 * A module instance evaluated ahead of its call: in the frozen realm, or (exact: true, for an
 * isolate whose function's top-level code fails there) in a fresh context of its own.
 */
interface Prepared {
  ok: true
  exact: boolean
  runner: ivm.Reference
  namespace: ivm.Reference
  /** Every handle to release once the call is done (the module's, and an exact context; a realm outlives the call). */
  references: Releasable[]
  /** When the module's top-level code ran (performance.now()): the call is charged for it. */
  evaluatedFromMs: number
  evaluatedToMs: number
}

/**
 * A preparation that failed: the call loads the module itself (or, if the isolate died, reports
 * why). `frozenFailed`: top-level code failed in the frozen realm with its own error; the isolate
 * goes on preparing exact contexts.
 */
interface Unprepared { ok: false, error: unknown, frozenFailed: boolean }

type Preparation = Prepared | Unprepared

/** The handles a call needs of a loaded module. */
interface Loaded { runner: ivm.Reference, namespace: ivm.Reference, evaluatedFromMs: number, evaluatedToMs: number }

export interface JsEngineOptions extends IsolatePoolOptions {
  /** Share a pool with other engines (createSandbox does); otherwise the engine owns one. */
  pool?: IsolatePool
  /**
   * Most time a module instance built ahead of its call may take (PREPARE_TIME_MS_MAX by default;
   * the call's own timeMs when smaller). A lower value only means fewer calls find one ready.
   */
  prepareTimeMsMax?: number
}

/**
 * Most code caches kept for new isolates. V8's code cache for a bundle is
 * about the size of its source; 64 bundles of ~100 KiB stay under 10 MiB and cover more
 * functions than the warm pool holds.
 */
export const CODE_CACHE_ENTRIES_MAX = 64

/**
 * Most time building a module instance ahead of its call may take, top-level code included (and
 * the frozen realm, when the isolate has none yet). The work is speculative (the next call may
 * never come), so it is bounded well below a call's own budget: real module initialisation takes
 * microseconds to a few milliseconds; a module whose top-level code runs longer than this simply
 * loads inside each call, as it always did.
 */
export const PREPARE_TIME_MS_MAX = 1_000

/** What preparations did, for tests and benchmarks. */
export interface PreparationStats {
  /** Preparations started (one after each clean call whose isolate stayed warm). */
  started: number
  /** Calls that ran in a module instance built ahead of them. */
  used: number
  /** Calls that leased their isolate while its preparation still ran, and waited for it. */
  waited: number
  /** Preparations that failed or were dropped (their isolate disposed, a limit hit, top-level code threw). */
  failed: number
}

/** Which path calls took, for tests and benchmarks. */
export interface FastPathStats {
  /** Calls whose outcome came from the frozen realm. */
  fast: number
  /** Calls that failed in the frozen realm and were run again exactly; their outcome is the rerun's. */
  fallbacks: number
  /** Calls that ran exactly without trying the frozen realm (top-level code failed there before). */
  exact: number
  /** Frozen realms built (one per isolate, another after each drop). */
  realms: number
}

/**
 * Errors of the frozen realm that are the call's own outcome: limits and the engine's or pool's
 * conditions. Any other failure there (the function threw, its result is not data, it read the
 * clock, ...) reruns the call exactly.
 */
const NO_FALLBACK: Array<new (...args: any[]) => RhizomeError> = [
  SandboxTimeLimitError, SandboxMemoryLimitError, SandboxOutputLimitError, SandboxStackOverflowError,
  SandboxAbortedError, SandboxClosedError, SandboxBusyError, SandboxCrashedError
]

/** Failure records of the prelude that rerun the call exactly (the rest are limits: stack, memory, output). */
const FALLBACK_KINDS = new Set(['threw', 'unsupported', 'export', 'nondeterminism'])

export class JsEngine implements SandboxEngine {
  readonly kind = 'js' as const
  readonly pool: IsolatePool
  private readonly ownsPool: boolean
  private readonly prepareTimeMsMax: number
  private readonly preparations: PreparationStats = { started: 0, used: 0, waited: 0, failed: 0 }
  private readonly paths: FastPathStats = { fast: 0, fallbacks: 0, exact: 0, realms: 0 }
  /** Preparations not settled yet. */
  private readonly inFlight = new Set<Promise<Preparation>>()
  /** V8 code caches by function id, shared by that function's isolates, and the code each was made from. */
  private readonly codeCache = new BoundedCache<string, { code: Uint8Array, data: ivm.ExternalCopy<ArrayBuffer> }>({ entriesMax: CODE_CACHE_ENTRIES_MAX })

  constructor (options: JsEngineOptions = {}) {
    this.ownsPool = options.pool === undefined
    this.pool = options.pool ?? new IsolatePool(options)
    this.prepareTimeMsMax = options.prepareTimeMsMax ?? PREPARE_TIME_MS_MAX
    if (!Number.isSafeInteger(this.prepareTimeMsMax) || this.prepareTimeMsMax < 1 || this.prepareTimeMsMax > LIMITS_CEILING.timeMs) {
      throw new ConfigError('prepareTimeMsMax', `must be an integer from 1 to ${LIMITS_CEILING.timeMs}, not ${this.prepareTimeMsMax}`)
    }
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
      newState: () => newState(call.functionId, call.code, this.cachedCode(call)),
      accepts: state => sameBytes(state.code, call.code),
      work: async (lease, guard) => {
        const record = await this.callInIsolate(lease, call, args, guard)
        const { cachedData } = lease.entry.state
        if (!lease.warm && cachedData !== undefined) this.codeCache.set(call.functionId, { code: call.code, data: cachedData })
        return record
      },
      prepare: entry => { this.prepare(entry, call.limits.timeMs) }
    })
  }

  preparationStats (): PreparationStats {
    return { ...this.preparations }
  }

  fastPathStats (): FastPathStats {
    return { ...this.paths }
  }

  /** The V8 code cache made from exactly this call's code, if one is kept. */
  private cachedCode (call: SandboxCall): ivm.ExternalCopy<ArrayBuffer> | undefined {
    const entry = this.codeCache.get(call.functionId)
    return entry !== undefined && sameBytes(entry.code, call.code) ? entry.data : undefined
  }

  /**
   * Build the next call's module instance (and the frozen realm, if the isolate has none yet) in
   * an idle isolate, in the background. Nothing waits for it but the call that leases the isolate
   * next; disposing the isolate (LRU, close, a limit) makes every step reject, which ends it.
   * After one failure the isolate prepares no more: the reason (slow or failing top-level code)
   * would most likely repeat, and each try costs CPU.
   */
  private prepare (entry: PoolEntry<JsState>, callTimeMs: number): void {
    const { state } = entry
    if (state.prepareOff || state.next !== undefined) return
    this.preparations.started++
    const budget = plainBudget(Math.min(callTimeMs, this.prepareTimeMsMax))
    const next = (state.frozenOff ? prepareContext(entry.isolate, state, budget) : prepareModule(entry.isolate, state, budget, this.paths)).then(preparation => {
      this.inFlight.delete(next)
      if (!preparation.ok) {
        if (!preparation.frozenFailed) state.prepareOff = true
        this.preparations.failed++
        dropRealm(state)
      }
      return preparation
    })
    state.next = next
    this.inFlight.add(next)
  }

  /**
   * Resolves once every preparation started so far has settled. Each settles on its own (it is
   * bounded by its time limit, and disposing its isolate ends it); close() does not wait for them.
   */
  async preparationsSettled (): Promise<void> {
    await Promise.all([...this.inFlight])
  }

  /**
   * Run the call in the frozen realm; if it fails there with anything but a limit or the engine's
   * condition, drop the realm and run it again exactly, in a fresh context, with its whole budget.
   */
  private async callInIsolate (lease: Lease<JsState>, call: SandboxCall, args: Tape, guard: CallGuard): Promise<unknown> {
    const { isolate, state } = lease.entry
    const next = state.next
    state.next = undefined
    if (next !== undefined && this.inFlight.has(next)) this.preparations.waited++
    const preparation = next === undefined ? undefined : await next
    // The preparation died with its isolate (isolated-vm disposes it at the memory limit): the
    // module's top-level code hit the limit, as it would have in this call.
    if (preparation !== undefined && !preparation.ok && isolate.isDisposed) throw preparation.error
    if (state.frozenOff) {
      this.paths.exact++
      return await this.callExactly(isolate, state, preparation, call, args, guard)
    }
    const fast = await this.callFrozen(isolate, state, preparation, call, args, guard)
    if (fast.done) {
      this.paths.fast++
      return fast.record
    }
    dropRealm(state)
    this.paths.fallbacks++
    guard.restart()
    return await this.callExactly(isolate, state, undefined, call, args, guard)
  }

  /** The exact path: a fresh context of the call's own (built ahead, or now), thrown away after it. */
  private async callExactly (isolate: ivm.Isolate, state: JsState, preparation: Preparation | undefined, call: SandboxCall, args: Tape, guard: CallGuard): Promise<unknown> {
    const prepared = preparation?.ok === true && preparation.exact ? preparation : undefined
    if (preparation?.ok === true && prepared === undefined) releaseAll(preparation.references)
    const references: Releasable[] = prepared !== undefined ? prepared.references : []
    try {
      if (prepared !== undefined) this.preparations.used++
      return await callExport(prepared ?? await loadContext(isolate, state, guard, references), call, args, guard)
    } finally {
      releaseAll(references)
    }
  }

  /**
   * The fast path: the call's module instance in the frozen realm (built ahead, or now), then the
   * export. Returns the outcome, or done: false when the call must run again exactly.
   */
  private async callFrozen (isolate: ivm.Isolate, state: JsState, preparation: Preparation | undefined, call: SandboxCall, args: Tape, guard: CallGuard): Promise<{ done: true, record: unknown } | { done: false }> {
    const prepared = preparation?.ok === true && !preparation.exact ? preparation : undefined
    if (preparation?.ok === true && prepared === undefined) releaseAll(preparation.references)
    const references: Releasable[] = prepared !== undefined ? prepared.references : []
    let loaded: Loaded
    try {
      if (prepared !== undefined) {
        this.preparations.used++
        loaded = prepared
      } else {
        loaded = await loadFrozen(isolate, state, guard, references, this.paths)
      }
    } catch (err) {
      releaseAll(references)
      if (!fallsBack(err, guard, isolate)) throw err
      // Top-level code (or linking) failed with the function's own error: it would every time.
      state.frozenOff = true
      return { done: false }
    }
    try {
      const record = await callExport(loaded, call, args, guard)
      return isFallbackRecord(record) ? { done: false } : { done: true, record }
    } catch (err) {
      if (!fallsBack(err, guard, isolate)) throw err
      return { done: false }
    } finally {
      releaseAll(references)
    }
  }

  async close (): Promise<void> {
    this.codeCache.clear()
    if (this.ownsPool) this.pool.close()
  }
}

/** Call the export of a loaded module, charging the call for top-level code run before it started. */
async function callExport (loaded: Loaded, call: SandboxCall, args: Tape, guard: CallGuard): Promise<unknown> {
  guard.chargeAhead(loaded.evaluatedFromMs, loaded.evaluatedToMs)
  if (guard.reason !== undefined) throw guard.error(guard.reason)
  return await loaded.runner.apply(undefined, [
    loaded.namespace.derefInto(),
    call.exportName,
    copyInto(args.kinds),
    copyInto(args.vals),
    copyInto(exactCopy(call.seed)),
    copyInto(preludeLimits(call.limits))
  ], { result: { promise: true, copy: true }, timeout: guard.remainingMs() })
}

/** Whether a failure in the frozen realm reruns the call exactly: not a limit, an abort, or the engine's condition. */
function fallsBack (err: unknown, guard: Budget, isolate: ivm.Isolate): boolean {
  if (guard.reason !== undefined || isolate.isDisposed) return false
  if (!(err instanceof RhizomeError)) return false
  return !NO_FALLBACK.some(type => err instanceof type)
}

function isFallbackRecord (record: unknown): boolean {
  if (typeof record !== 'object' || record === null) return false
  const r = record as { ok?: unknown, kind?: unknown }
  return r.ok === false && typeof r.kind === 'string' && FALLBACK_KINDS.has(r.kind)
}

/** Build a module instance in the frozen realm ahead of its call. Settles with what happened; never rejects. */
async function prepareModule (isolate: ivm.Isolate, state: JsState, budget: Budget, paths: FastPathStats): Promise<Preparation> {
  const references: Releasable[] = []
  try {
    const loaded = await loadFrozen(isolate, state, budget, references, paths)
    return { ok: true, exact: false, references, ...loaded }
  } catch (error) {
    releaseAll(references)
    // Top-level code failed with the function's own error: it would in every call.
    const frozenFailed = fallsBack(error, budget, isolate)
    if (frozenFailed) state.frozenOff = true
    return { ok: false, error, frozenFailed }
  }
}

/** Build an exact context ahead of its call. Settles with what happened; never rejects. */
async function prepareContext (isolate: ivm.Isolate, state: JsState, budget: Budget): Promise<Preparation> {
  const references: Releasable[] = []
  try {
    const loaded = await loadContext(isolate, state, budget, references)
    return { ok: true, exact: true, references, ...loaded }
  } catch (error) {
    releaseAll(references)
    return { ok: false, error, frozenFailed: false }
  }
}

/**
 * A fresh instance of the module in the isolate's frozen realm (built first if there is none):
 * compiled from V8's code cache, linked, Math.random reseeded by the function id, top-level code
 * run. The module's handles go to `references`; the realm's stay with the realm.
 */
async function loadFrozen (isolate: ivm.Isolate, state: JsState, budget: Budget, references: Releasable[], paths: FastPathStats): Promise<Loaded> {
  const [realm, module] = await settleAll(references, [
    state.realm !== undefined ? Promise.resolve(state.realm) : buildRealm(isolate, state, budget, paths),
    compileFunction(isolate, state)
  ] as const)
  state.cachedData ??= (module as { cachedData?: ivm.ExternalCopy<ArrayBuffer> }).cachedData
  checkImports(module)
  // isolated-vm runs one isolate's tasks in order and drains the microtask queue after each: the
  // reseed runs after everything of the previous call and before this module's top-level code.
  realm.reset.applyIgnored(undefined, [])
  await module.instantiate(realm.context, specifier => { throw new ForbiddenImportError(specifier) })
  const evaluatedFromMs = performance.now()
  await evaluateModule(module, budget)
  return { runner: realm.runner, namespace: module.namespace, evaluatedFromMs, evaluatedToMs: performance.now() }
}

/**
 * The isolate's frozen realm: a fresh context, the prelude installed in it (seeded by the
 * function id) and the context locked down (prelude.ts lockdown). Kept in the state until a call
 * fails in it; its handles are not the caller's to release.
 */
async function buildRealm (isolate: ivm.Isolate, state: JsState, budget: Budget, paths: FastPathStats): Promise<Realm> {
  const references: Releasable[] = []
  try {
    const [{ prelude }, context] = await settleAll(references, [
      state.frozenPrelude !== undefined ? { prelude: state.frozenPrelude } : isolate.compileScript(frozenPreludeFor(state.functionId), { filename: 'rhizome:prelude' }).then(prelude => ({ prelude })),
      isolate.createContext()
    ] as const)
    // The compiled prelude is kept by the state (wrapped above, so it is not released with the realm).
    state.frozenPrelude ??= prelude
    const entry = await prelude.run(context, { reference: true, timeout: budget.remainingMs() }) as ivm.Reference
    references.push(entry)
    const [runner, reset] = await settleAll(references, [entry.get(0, { reference: true }), entry.get(1, { reference: true })] as const) as [ivm.Reference, ivm.Reference]
    paths.realms++
    state.realm = { context, runner, reset, references }
    return state.realm
  } catch (err) {
    releaseAll(references)
    throw err
  }
}

/** Drop the isolate's frozen realm (a call or preparation failed in it): the next call builds another. */
function dropRealm (state: JsState): void {
  if (state.realm === undefined) return
  releaseAll(state.realm.references)
  state.realm = undefined
}

function compileFunction (isolate: ivm.Isolate, state: JsState): Promise<ivm.Module> {
  return isolate.compileModule(state.source, {
    filename: `rhizome:function/${state.functionId}`,
    ...(state.cachedData !== undefined ? { cachedData: state.cachedData } : { produceCachedData: true })
  })
}

/**
 * The exact path: a fresh context with the prelude installed and the module loaded into it.
 * Nothing of a call reaches it: the runner is installed seeded by the function id, and top-level
 * code sees only that; the call's seed, limits and arguments go to the runner when it is called.
 *
 * Each isolated-vm operation is a round trip to the isolate's thread (~40 µs of main-thread CPU
 * each, measured), so independent steps are issued together: the context and the module compile
 * at once, then the prelude runs while the module is linked (isolated-vm runs one isolate's tasks
 * in order, so the prelude is installed before top-level code runs), then top-level code runs.
 */
async function loadContext (isolate: ivm.Isolate, state: JsState, budget: Budget, references: Releasable[]): Promise<Loaded> {
  // The prelude is compiled once per isolate and kept: wrapped, so it is not released with the context.
  const [{ prelude }, context, module] = await settleAll(references, [
    state.prelude !== undefined ? { prelude: state.prelude } : isolate.compileScript(preludeFor(state.functionId), { filename: 'rhizome:prelude' }).then(prelude => ({ prelude })),
    isolate.createContext(),
    compileFunction(isolate, state)
  ] as const)
  state.prelude ??= prelude
  state.cachedData ??= (module as { cachedData?: ivm.ExternalCopy<ArrayBuffer> }).cachedData
  checkImports(module)
  const [runner] = await settleAll(references, [
    prelude.run(context, { reference: true, timeout: budget.remainingMs() }) as Promise<ivm.Reference>,
    module.instantiate(context, specifier => { throw new ForbiddenImportError(specifier) })
  ] as const)
  const evaluatedFromMs = performance.now()
  await evaluateModule(module, budget)
  return { runner, namespace: module.namespace, evaluatedFromMs, evaluatedToMs: performance.now() }
}

/** The function id as the source of a Uint8Array, made inside the prelude's closure. */
function seedSource (functionId: string): string {
  return `new P.Uint8Array([${new TextEncoder().encode(functionId).join(',')}])`
}

/** The prelude for one function's isolate: installs the js runner, seeded by the function id. */
function preludeFor (functionId: string): string {
  return preludeSource(PRELUDE_PARTS, `install("js", ${seedSource(functionId)})`)
}

/** The frozen realm's prelude: the same runner, then the lockdown; evaluates to [runner, reset]. */
function frozenPreludeFor (functionId: string): string {
  return preludeSource(FROZEN_PRELUDE_PARTS, `installFrozen(${seedSource(functionId)})`)
}

/**
 * Await isolated-vm operations issued together. Every handle one of them made goes to
 * `references` (to be released), even when another failed; then the first failure is thrown.
 */
async function settleAll<T extends readonly unknown[]> (references: Releasable[], operations: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(operations)
  for (const outcome of settled) {
    if (outcome.status === 'fulfilled' && isReleasable(outcome.value)) references.push(outcome.value)
  }
  for (const outcome of settled) {
    if (outcome.status === 'rejected') throw outcome.reason
  }
  return settled.map(outcome => (outcome as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> }
}

function isReleasable (value: unknown): value is Releasable {
  return typeof value === 'object' && value !== null && typeof (value as { release?: unknown }).release === 'function'
}

function newState (functionId: string, code: Uint8Array, cachedData: ivm.ExternalCopy<ArrayBuffer> | undefined): JsState {
  let source: string
  try {
    source = new TextDecoder('utf-8', { fatal: true }).decode(code)
  } catch (err) {
    throw new InvalidInputError('js function code is not valid UTF-8', { cause: err })
  }
  return { functionId, code, source, prelude: undefined, frozenPrelude: undefined, cachedData, realm: undefined, frozenOff: false, next: undefined, prepareOff: false }
}

export function createJsEngine (options: JsEngineOptions = {}): JsEngine {
  return new JsEngine(options)
}
