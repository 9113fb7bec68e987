/**
 * The deadline and the abort signal of one call. When either fires, the call's isolate is
 * disposed (which stops whatever runs in it, on its own thread) and the call's promise rejects
 * at once with a named error, even if the isolate was idle waiting on a promise that would
 * never settle. The peer's event loop is never blocked: isolates run on isolated-vm's threads.
 */

import type ivm from 'isolated-vm'
import type { RhizomeError } from '../model/errors.ts'
import { SandboxAbortedError, SandboxClosedError, SandboxTimeLimitError } from './errors.ts'

export type KillReason = 'time' | 'abort' | 'closed'

/** What running code in an isolate needs of a time budget: the time left, and whether it already ran out. */
export interface Budget {
  readonly reason: unknown
  remainingMs: () => number
}

/** A budget of `timeMs` from now that nothing kills early; isolated-vm's own timeouts enforce it. */
export function plainBudget (timeMs: number): Budget {
  const deadlineMs = performance.now() + timeMs
  return { reason: undefined, remainingMs: () => Math.max(1, Math.ceil(deadlineMs - performance.now())) }
}

export class CallGuard {
  reason: KillReason | undefined
  private readonly isolate: ivm.Isolate
  private deadlineMs: number
  private readonly startedMs: number
  private readonly timeMs: number
  private readonly signal: AbortSignal | undefined
  private timer: ReturnType<typeof setTimeout>
  private readonly onAbort: () => void
  private readonly killed: Promise<never>
  private rejectKilled: (err: RhizomeError) => void = () => {}

  /** `startedMs` is when the call began (performance.now()); the budget counts from there. */
  constructor (isolate: ivm.Isolate, timeMs: number, startedMs: number, signal: AbortSignal | undefined) {
    this.isolate = isolate
    this.timeMs = timeMs
    this.startedMs = startedMs
    this.deadlineMs = startedMs + timeMs
    this.signal = signal
    this.killed = new Promise<never>((_resolve, reject) => { this.rejectKilled = reject })
    // Nobody may be racing yet when the guard fires; the rejection is observed through race().
    this.killed.catch(() => {})
    this.timer = setTimeout(() => this.kill('time'), Math.max(0, this.deadlineMs - performance.now()))
    this.onAbort = () => this.kill('abort')
    signal?.addEventListener('abort', this.onAbort, { once: true })
    if (signal?.aborted === true) this.kill('abort')
  }

  /** Milliseconds left, for isolated-vm's own per-operation timeouts (at least 1: 0 means none). */
  remainingMs (): number {
    return Math.max(1, Math.ceil(this.deadlineMs - performance.now()))
  }

  /**
   * Charge the call for work done for it before it started: the part of [fromMs, toMs]
   * (performance.now() times) before the call's start comes off its budget; a budget it used up
   * stops the call at once, as running out of time does. The timer is re-armed only for a charge
   * of a millisecond or more (setTimeout's resolution); the per-operation timeouts (remainingMs)
   * see every charge.
   */
  chargeAhead (fromMs: number, toMs: number): void {
    const chargedMs = Math.max(0, Math.min(toMs, this.startedMs) - fromMs)
    if (chargedMs === 0 || this.reason !== undefined) return
    this.deadlineMs -= chargedMs
    if (performance.now() >= this.deadlineMs) {
      this.kill('time')
      return
    }
    if (chargedMs < 1) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => this.kill('time'), Math.max(0, this.deadlineMs - performance.now()))
  }

  /**
   * Give the call its whole budget again, from now: the js engine reruns a call that failed in its
   * frozen realm exactly (js-engine.ts), and the rerun gets the time the call was given, as the
   * call would have had without the first try. Nothing happens once the guard has fired.
   */
  restart (): void {
    if (this.reason !== undefined) return
    this.deadlineMs = performance.now() + this.timeMs
    clearTimeout(this.timer)
    this.timer = setTimeout(() => this.kill('time'), this.timeMs)
  }

  kill (reason: KillReason): void {
    if (this.reason !== undefined) return
    this.reason = reason
    if (!this.isolate.isDisposed) {
      try {
        this.isolate.dispose()
      } catch {
        // Disposed concurrently by isolated-vm (memory limit): the isolate is gone either way.
      }
    }
    this.rejectKilled(this.error(reason))
  }

  error (reason: KillReason): RhizomeError {
    if (reason === 'time') return new SandboxTimeLimitError(this.timeMs)
    if (reason === 'closed') return new SandboxClosedError()
    return new SandboxAbortedError()
  }

  /** Settle with `work`, or reject as soon as the guard fires. */
  async race<T> (work: Promise<T>): Promise<T> {
    // Once the isolate is disposed, `work` rejects too; that late rejection is expected.
    work.catch(() => {})
    return await Promise.race([work, this.killed])
  }

  clear (): void {
    clearTimeout(this.timer)
    this.signal?.removeEventListener('abort', this.onAbort)
  }
}
