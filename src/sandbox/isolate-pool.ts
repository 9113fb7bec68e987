/**
 * Warm isolates, kept per function. A call leases an isolate for itself alone: isolates are never
 * shared between concurrent calls, so a call that hits a limit (and has its isolate disposed)
 * cannot take another call down with it. After a clean call the isolate goes back to the idle
 * set, a bounded LRU; the least recently used idle isolate is disposed when the set is full.
 * An isolate that hit a limit or crashed is disposed and never returns to the set.
 */

import type ivm from 'isolated-vm'
import { BoundedCache } from '../model/bounded-cache.ts'
import { ConfigError } from '../model/errors.ts'
import { SandboxBusyError, SandboxClosedError } from './errors.ts'

export interface IsolatePoolOptions {
  /**
   * Most idle isolates kept warm (all functions together). Default 32: an idle isolate costs a
   * few MiB (a fresh heap plus compiled code), so 32 stay around 100 MiB while covering the
   * working set of a busy peer.
   */
  cacheSize?: number
  /**
   * Most calls running at once; one more is refused with SandboxBusyError (retryable) instead of
   * queued, because queuing belongs to the scheduler. Default 8: eight calls at the default
   * 128 MiB memory limit stay within 1 GiB.
   */
  callsConcurrentMax?: number
  /**
   * Calls one isolate serves before it is disposed and replaced. Calls leave garbage that only
   * full GCs free: a context per call where calls ran in fresh contexts (measured on a 2-core
   * peer, isolates kept forever paused 30–300 ms every few hundred calls, p99 ~36 ms, while
   * replacing them every 64 calls kept p99 near 4 ms), and a module instance per call in the js
   * engine's frozen realm (isolates kept 1,024 calls gave a worse p99 than 64, at the same CPU per
   * call). Compiled code is kept in a code cache across isolates. Default 64.
   */
  isolateCallsMax?: number
}

export const DEFAULT_CACHE_SIZE = 32
export const DEFAULT_CALLS_CONCURRENT_MAX = 8
/** Bounds on the options themselves, so a typo cannot ask for a million isolates. */
export const CACHE_SIZE_CEILING = 1024
export const CALLS_CONCURRENT_CEILING = 1024
export const DEFAULT_ISOLATE_CALLS_MAX = 64
export const ISOLATE_CALLS_CEILING = 1_000_000

export type InterruptReason = 'closed'

export interface PoolEntry<S> {
  readonly key: string
  readonly isolate: ivm.Isolate
  readonly state: S
  /** Calls this isolate has served (counted at lease). */
  calls: number
  /** Set by the engine while a call runs, so closing the pool can stop it. */
  interrupt: ((reason: InterruptReason) => void) | undefined
}

export interface Lease<S> {
  entry: PoolEntry<S>
  warm: boolean
}

export interface PoolStats {
  warmHits: number
  coldStarts: number
  isolatesAlive: number
  isolatesIdle: number
  isolatesDisposed: number
  callsActive: number
}

export class IsolatePool {
  readonly cacheSize: number
  readonly callsConcurrentMax: number
  readonly isolateCallsMax: number
  /** Idle entries by key, most recently used last. */
  private readonly idle = new Map<string, Array<PoolEntry<unknown>>>()
  /** The same idle entries, all keys together, in one LRU that disposes what it evicts. */
  private readonly recency: BoundedCache<PoolEntry<unknown>, PoolEntry<unknown>>
  private readonly active = new Set<PoolEntry<unknown>>()
  private reserved = 0
  private closed = false
  private warmHits = 0
  private coldStarts = 0
  private disposed = 0

  constructor (options: IsolatePoolOptions = {}) {
    this.cacheSize = boundedInteger('cacheSize', options.cacheSize ?? DEFAULT_CACHE_SIZE, 0, CACHE_SIZE_CEILING)
    this.callsConcurrentMax = boundedInteger('callsConcurrentMax', options.callsConcurrentMax ?? DEFAULT_CALLS_CONCURRENT_MAX, 1, CALLS_CONCURRENT_CEILING)
    this.isolateCallsMax = boundedInteger('isolateCallsMax', options.isolateCallsMax ?? DEFAULT_ISOLATE_CALLS_MAX, 1, ISOLATE_CALLS_CEILING)
    // cacheSize 0 never reaches the LRU (release disposes at once); the LRU needs a bound of 1 or more.
    this.recency = new BoundedCache({
      entriesMax: Math.max(1, this.cacheSize),
      onEvict: entry => {
        this.unindex(entry)
        this.dispose(entry)
      }
    })
  }

  /**
   * Lease an idle isolate for `key` whose state `accepts` says fits, or create one. Idle entries
   * for the key that do not fit are disposed.
   */
  async acquire<S> (key: string, accepts: (state: S) => boolean, create: () => Promise<{ isolate: ivm.Isolate, state: S }>): Promise<Lease<S>> {
    if (this.closed) throw new SandboxClosedError()
    if (this.active.size + this.reserved >= this.callsConcurrentMax) throw new SandboxBusyError(this.callsConcurrentMax)
    const entries = this.idle.get(key)
    while (entries !== undefined && entries.length > 0) {
      const entry = entries.pop() as PoolEntry<S>
      this.recency.delete(entry)
      if (entries.length === 0) this.idle.delete(key)
      if (entry.isolate.isDisposed || !accepts(entry.state)) {
        this.dispose(entry)
        continue
      }
      this.active.add(entry)
      entry.calls++
      this.warmHits++
      return { entry, warm: true }
    }
    this.reserved++
    let created: { isolate: ivm.Isolate, state: S }
    try {
      created = await create()
    } finally {
      this.reserved--
    }
    const entry: PoolEntry<S> = { key, isolate: created.isolate, state: created.state, calls: 1, interrupt: undefined }
    if (this.closed) {
      this.dispose(entry)
      throw new SandboxClosedError()
    }
    this.active.add(entry)
    this.coldStarts++
    return { entry, warm: false }
  }

  /** Whether close() was called: no isolate will be leased again. */
  get isClosed (): boolean {
    return this.closed
  }

  /**
   * Return a leased isolate after a clean call: it stays warm, unless it has served isolateCallsMax
   * calls. Returns whether it was kept (idle, leasable again).
   */
  release (entry: PoolEntry<unknown>): boolean {
    this.active.delete(entry)
    entry.interrupt = undefined
    if (this.closed || entry.isolate.isDisposed || this.cacheSize === 0 || entry.calls >= this.isolateCallsMax) {
      this.dispose(entry)
      return false
    }
    this.keepIdle(entry)
    return true
  }

  /** `behind`: leased only once the key's other idle entries are (acquire takes the last one). */
  private keepIdle (entry: PoolEntry<unknown>, behind = false): void {
    const entries = this.idle.get(entry.key)
    if (entries === undefined) this.idle.set(entry.key, [entry])
    else if (behind) entries.unshift(entry)
    else entries.push(entry)
    this.recency.set(entry, entry)
  }

  /**
   * Put a new isolate for `key` straight into the idle set, made ahead of the call that will lease
   * it (a replacement for one retired after isolateCallsMax calls). Returns its entry, or
   * undefined when the pool closed or keeps nothing warm (the isolate is then disposed).
   * `behind`: the key's idle isolates are leased before it (a replacement made before the
   * isolate it replaces has retired).
   */
  adopt<S> (key: string, created: { isolate: ivm.Isolate, state: S }, behind = false): PoolEntry<S> | undefined {
    const entry: PoolEntry<S> = { key, isolate: created.isolate, state: created.state, calls: 0, interrupt: undefined }
    if (this.closed || this.cacheSize === 0) {
      this.dispose(entry)
      return undefined
    }
    this.keepIdle(entry, behind)
    return entry
  }

  /** Whether `entry` is idle in the pool: kept warm, not leased, not disposed. */
  isIdle (entry: PoolEntry<unknown>): boolean {
    return !entry.isolate.isDisposed && this.idle.get(entry.key)?.includes(entry) === true
  }

  /** Idle isolates kept for `key`. */
  idleCount (key: string): number {
    return this.idle.get(key)?.length ?? 0
  }

  /** Dispose a leased isolate: it hit a limit, crashed, or cannot be trusted. */
  discard (entry: PoolEntry<unknown>): void {
    this.active.delete(entry)
    entry.interrupt = undefined
    this.dispose(entry)
  }

  stats (): PoolStats {
    return {
      warmHits: this.warmHits,
      coldStarts: this.coldStarts,
      isolatesAlive: this.recency.size + this.active.size,
      isolatesIdle: this.recency.size,
      isolatesDisposed: this.disposed,
      callsActive: this.active.size
    }
  }

  /** Dispose every idle isolate and stop every running call. */
  close (): void {
    this.closed = true
    for (const entries of this.idle.values()) {
      for (const entry of entries) this.dispose(entry)
    }
    this.recency.clear()
    this.idle.clear()
    for (const entry of [...this.active]) {
      if (entry.interrupt !== undefined) entry.interrupt('closed')
      else this.dispose(entry)
    }
  }

  /** Take an entry the LRU evicted out of the by-key index. */
  private unindex (entry: PoolEntry<unknown>): void {
    const entries = this.idle.get(entry.key) as Array<PoolEntry<unknown>>
    entries.splice(entries.indexOf(entry), 1)
    if (entries.length === 0) this.idle.delete(entry.key)
  }

  private dispose (entry: PoolEntry<unknown>): void {
    if (!entry.isolate.isDisposed) {
      try {
        entry.isolate.dispose()
      } catch {
        // Already disposed by isolated-vm itself (memory limit): nothing left to free.
      }
    }
    this.disposed++
  }
}

function boundedInteger (field: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(field, `must be an integer from ${min} to ${max}, not ${value}`)
  }
  return value
}
