/**
 * Admission for tasks on a worker: `slotsMax` run at once, up to `queueLengthMax` wait, and the
 * next one is refused at once with the retryable `QueueFullError` — never queued without end.
 * A waiting task whose signal aborts leaves the queue; a finished one hands its slot straight to
 * the next in line. `onChange` reports the capacity each time it moves (for announcements).
 */
import { AbortedError, RhizomeError, assert } from '../model/errors.ts'
import type { Capacity } from '../protocol/membership/index.ts'
import { PeerBusyError } from './rpc.ts'

export type { Capacity }

export class QueueFullError extends RhizomeError {
  constructor (slotsMax: number, queueLengthMax: number) {
    super('ERR_QUEUE_FULL', `the peer is busy: ${slotsMax} tasks running and ${queueLengthMax} queued`, {
      retryable: true,
      hint: 'retry later, or run the task on another peer'
    })
    this.name = 'QueueFullError'
  }
}

export class Slots {
  readonly slotsMax: number
  readonly queueLengthMax: number
  private readonly onChange: (capacity: Capacity) => void
  private running = 0
  private readonly queue: Array<{ grant: () => void }> = []

  constructor (options: { slotsMax: number, queueLengthMax: number, onChange?: (capacity: Capacity) => void }) {
    assert(Number.isSafeInteger(options.slotsMax) && options.slotsMax >= 1, 'slotsMax must be a positive integer')
    assert(Number.isSafeInteger(options.queueLengthMax) && options.queueLengthMax >= 0, 'queueLengthMax must be a non-negative integer')
    this.slotsMax = options.slotsMax
    this.queueLengthMax = options.queueLengthMax
    this.onChange = options.onChange ?? (() => {})
  }

  capacity (): Capacity {
    return { slotsFree: this.slotsMax - this.running, slotsMax: this.slotsMax, queueLength: this.queue.length }
  }

  /** Throw `QueueFullError` now if `acquire` would: lets a task be refused before any work is done for it. */
  checkRoom (): void {
    if (this.running >= this.slotsMax && this.queue.length >= this.queueLengthMax) throw new QueueFullError(this.slotsMax, this.queueLengthMax)
  }

  /** Wait for a slot; returns the function that gives it back (calling it twice is harmless). */
  async acquire (signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) throw new AbortedError('the task was cancelled before it started')
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      const next = this.queue.shift()
      if (next !== undefined) next.grant()
      else this.running--
      this.onChange(this.capacity())
    }
    if (this.running < this.slotsMax) {
      this.running++
      this.onChange(this.capacity())
      return release
    }
    if (this.queue.length >= this.queueLengthMax) throw new QueueFullError(this.slotsMax, this.queueLengthMax)
    await new Promise<void>((resolve, reject) => {
      const entry = { grant: () => { signal.removeEventListener('abort', onAbort); resolve() } }
      const onAbort = (): void => {
        const at = this.queue.indexOf(entry)
        if (at >= 0) this.queue.splice(at, 1)
        this.onChange(this.capacity())
        reject(new AbortedError('the task was cancelled while queued'))
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.queue.push(entry)
      this.onChange(this.capacity())
    })
    return release
  }
}

/**
 * Admission for work done on behalf of remote peers that must not wait in line: at most
 * `perPeerMax` at once for any one peer and `totalMax` for all of them. `tryAcquire` never waits:
 * it grants a release function, or throws the retryable `PeerBusyError` at once, so a peer that
 * floods us with requests gets refusals, not a growing pile of pending work.
 */
export class PeerBudget {
  readonly perPeerMax: number
  readonly totalMax: number
  private readonly what: string
  private readonly byPeer = new Map<string, number>()
  private total = 0

  /** `what` names the work in plural for error messages, e.g. "code fetches". */
  constructor (options: { perPeerMax: number, totalMax: number, what: string }) {
    assert(Number.isSafeInteger(options.perPeerMax) && options.perPeerMax >= 1, 'perPeerMax must be a positive integer')
    assert(Number.isSafeInteger(options.totalMax) && options.totalMax >= options.perPeerMax, 'totalMax must be an integer of at least perPeerMax')
    this.perPeerMax = options.perPeerMax
    this.totalMax = options.totalMax
    this.what = options.what
  }

  /** Units held now, by `peer` if given, else by everyone. */
  held (peer?: string): number {
    return peer === undefined ? this.total : this.byPeer.get(peer) ?? 0
  }

  /** Take one unit for `peer`; returns the function that gives it back (calling it twice is harmless). */
  tryAcquire (peer: string): () => void {
    const mine = this.byPeer.get(peer) ?? 0
    if (mine >= this.perPeerMax) throw new PeerBusyError(`${mine} ${this.what} already running for peer ${peer}, its limit`)
    if (this.total >= this.totalMax) throw new PeerBusyError(`${this.total} ${this.what} already running, the limit for all peers`)
    this.byPeer.set(peer, mine + 1)
    this.total++
    let released = false
    return () => {
      if (released) return
      released = true
      this.total--
      const left = (this.byPeer.get(peer) ?? 1) - 1
      if (left === 0) this.byPeer.delete(peer)
      else this.byPeer.set(peer, left)
    }
  }
}
