/**
 * The life of one call, shared by both engines: lease an isolate, arm the deadline and the
 * abort signal, run the engine's work, read the prelude's record, and give the isolate back
 * (clean call) or dispose of it (limit hit, crash, abort).
 */

import { Buffer } from 'node:buffer'
import ivm from 'isolated-vm'
import { CallGuard } from './call-guard.ts'
import type { Budget } from './call-guard.ts'
import type { IsolatePool, Lease, PoolEntry } from './isolate-pool.ts'
import { THROWN_MESSAGE_LENGTH_MAX, THROWN_NAME_LENGTH_MAX, VALUE_DEPTH_MAX } from './limits.ts'
import type { SandboxLimits } from './limits.ts'
import { ForbiddenImportError, SandboxClosedError } from './errors.ts'
import { engineError, isEngineFailure, readOutcome, topLevelError } from './outcome.ts'
import type { PreludeLimits } from './prelude.ts'
import type { SandboxCall, SandboxResult } from './types.ts'

const MIB = 1024 * 1024

/**
 * Calls before an isolate retires (isolateCallsMax) at which its replacement is made, when the
 * engine prepares isolates: the replacement waits behind the retiring isolate, which goes on
 * serving, so the call after the retirement finds it ready instead of waiting for it. The js
 * engine's replacement needs its frozen realm built (3–8 ms of the isolate's thread, measured on a
 * 2-core peer); 8 calls leave that time even at a call every millisecond. Costs one more isolate
 * alive per hot function for those calls.
 */
export const REPLACE_AHEAD_CALLS = 8

export interface LeasedCall<S> {
  pool: IsolatePool
  call: SandboxCall
  signal: AbortSignal | undefined
  startedMs: number
  /** Creates the state of a new isolate for this call's function. */
  newState: () => S
  /** Whether an idle isolate's state may serve this call (same code). */
  accepts: (state: S) => boolean
  /** The engine's part: run the call in the leased isolate; returns the prelude's record. */
  work: (lease: Lease<S>, guard: CallGuard) => Promise<unknown>
  /**
   * Gets an idle isolate ready for its next call, in the background (the js engine builds the next
   * call's context): called soon after a clean call gave the isolate back, if it is still idle,
   * and for an isolate made to replace one retired after isolateCallsMax calls.
   */
  prepare?: (entry: PoolEntry<S>) => void
}

export async function runLeased<S> (c: LeasedCall<S>): Promise<SandboxResult> {
  const { call, pool } = c
  const memoryMiB = Math.ceil(call.limits.memoryBytesMax / MIB)
  const key = `${call.kind}:${memoryMiB}:${call.functionId}`
  const create = (): { isolate: ivm.Isolate, state: S } => {
    const state = c.newState()
    return { isolate: new ivm.Isolate({ memoryLimit: memoryMiB }), state }
  }
  const lease = await pool.acquire<S>(key, c.accepts, async () => create())
  // The pool closed between the lease and now (it disposed the isolate, having nothing to
  // interrupt yet): the call fails as every call running at close() does.
  if (pool.isClosed) {
    pool.discard(lease.entry)
    throw new SandboxClosedError()
  }
  const guard = new CallGuard(lease.entry.isolate, call.limits.timeMs, c.startedMs, c.signal)
  lease.entry.interrupt = reason => guard.kill(reason)
  let reusable = false
  try {
    const record = await guard.race(c.work(lease, guard))
    const outcome = readOutcome(record, call.limits, call.exportName)
    reusable = outcome.reusable
    if (outcome.error !== undefined) throw outcome.error
    const encoded = outcome.encoded as { value: unknown, bytes: Uint8Array }
    return { value: encoded.value, bytes: encoded.bytes, runMs: performance.now() - c.startedMs, warm: lease.warm }
  } catch (err) {
    throw guard.reason !== undefined ? guard.error(guard.reason) : engineError(err, call.limits)
  } finally {
    guard.clear()
    if (reusable && guard.reason === undefined && !lease.entry.isolate.isDisposed) {
      if (pool.release(lease.entry)) {
        prepareSoon(c, lease.entry)
        if (lease.entry.calls === pool.isolateCallsMax - REPLACE_AHEAD_CALLS) replaceAhead(c, key, create, true)
      } else if (lease.entry.calls >= pool.isolateCallsMax) {
        replaceAhead(c, key, create, false)
      }
    } else {
      pool.discard(lease.entry)
    }
  }
}

/**
 * Have the engine get an idle isolate ready for its next call, once this call's result has gone
 * on its way: issuing isolated-vm operations costs the main thread tens of µs each, which the
 * caller should not wait for. By then a new call may have leased the isolate (it then builds its
 * own context) or the pool may have disposed it: nothing to do.
 */
function prepareSoon<S> (c: LeasedCall<S>, entry: PoolEntry<S>): void {
  const { pool, prepare } = c
  if (prepare === undefined) return
  setImmediate(() => {
    if (pool.isIdle(entry)) prepare(entry)
  }).unref()
}

/**
 * An isolate retired after isolateCallsMax calls is replaced ahead of the next call, when the
 * engine prepares isolates: the new isolate (about 2.5 ms of main-thread time to create, measured)
 * and its first context are made after this call has returned, instead of inside the next call.
 * `early`: made REPLACE_AHEAD_CALLS calls before the retirement, kept behind the retiring isolate
 * (which is still idle for the key). Nothing is made if the pool closed, cannot keep isolates, or
 * already has another idle one for the key (a call that came in between made its own).
 */
function replaceAhead<S> (c: LeasedCall<S>, key: string, create: () => { isolate: ivm.Isolate, state: S }, early: boolean): void {
  const { pool, prepare } = c
  if (prepare === undefined || pool.isClosed || pool.cacheSize === 0) return
  setImmediate(() => {
    if (pool.isClosed || pool.idleCount(key) > (early ? 1 : 0)) return
    let created: { isolate: ivm.Isolate, state: S }
    try {
      created = create()
    } catch {
      // The state could not be made (it was made once for this code already): leave it to the next call.
      return
    }
    const entry = pool.adopt(key, created, early)
    if (entry !== undefined) prepare(entry)
  }).unref()
}

/** The limits the prelude enforces inside the isolate. */
export function preludeLimits (limits: SandboxLimits): PreludeLimits {
  return {
    outputBytesMax: limits.outputBytesMax,
    depthMax: VALUE_DEPTH_MAX,
    nameLengthMax: THROWN_NAME_LENGTH_MAX,
    messageLengthMax: THROWN_MESSAGE_LENGTH_MAX
  }
}

/** Structured-clone a host value into the isolate: it arrives as a copy, never a reference. */
export function copyInto (value: unknown): ivm.Copy<unknown> {
  return new ivm.ExternalCopy(value).copyInto({ release: true })
}

/**
 * A Uint8Array with its own buffer of exactly its length. A view (a Buffer from Node's pool, a
 * slice of a received message) would otherwise carry its whole backing buffer into the isolate.
 */
export function exactCopy (bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes)
}

export function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a === b || (a.length === b.length && Buffer.compare(a, b) === 0)
}

/** Release isolated-vm handles; after the isolate is disposed they are gone anyway. */
export function releaseAll (references: Array<{ release: () => void }>): void {
  for (const reference of references.reverse()) {
    try {
      reference.release()
    } catch {
      // The isolate is already disposed, and everything in it with it.
    }
  }
}

/**
 * Link a compiled function module (it may import nothing) and run its top-level code within the
 * call's remaining time. A top-level throw is the function's error; a limit or abort is the
 * engine's.
 */
export async function linkAndEvaluate (module: ivm.Module, context: ivm.Context, guard: Budget): Promise<void> {
  checkImports(module)
  await module.instantiate(context, specifier => { throw new ForbiddenImportError(specifier) })
  await evaluateModule(module, guard)
}

/** Refuse a module that imports anything, before it is linked. */
export function checkImports (module: ivm.Module): void {
  if (module.dependencySpecifiers.length > 0) {
    throw new ForbiddenImportError(module.dependencySpecifiers[0], undefined, 'a Rhizome function is one self-contained module and may import nothing')
  }
}

/** Run a linked module's top-level code within the budget; a throw there is the function's error. */
export async function evaluateModule (module: ivm.Module, guard: Budget): Promise<void> {
  try {
    await module.evaluate({ timeout: guard.remainingMs() })
  } catch (err) {
    if (isEngineFailure(err) || guard.reason !== undefined) throw err
    throw topLevelError(err)
  }
}
