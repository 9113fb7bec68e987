/**
 * The CPU-time budget of one workflow activation. A timer fires when the budget could first be
 * spent (CPU time never runs ahead of wall time), reads the isolate's CPU time, and either stops
 * the isolate (disposing it ends whatever runs in it, on its own thread) or waits for the rest.
 * CPU time rather than wall time because a workflow's context outlives many activations on a
 * peer that may be busy with tasks: a slow machine must not fail a run that did nothing wrong.
 * isolated-vm's own per-call timeouts are not used: they do not cover the microtask checkpoint
 * that runs the workflow's continuations after each call into the isolate.
 */

import type ivm from 'isolated-vm'
import type { RhizomeError } from '../model/errors.ts'
import { SandboxClosedError, SandboxTimeLimitError } from './errors.ts'

export type CpuKillReason = 'time' | 'closed'

const NS_PER_MS = 1_000_000

export class CpuGuard {
  reason: CpuKillReason | undefined
  private readonly isolate: ivm.Isolate
  private readonly budgetMs: number
  private readonly startNs: bigint
  private timer: ReturnType<typeof setTimeout> | undefined
  private readonly killed: Promise<never>
  private rejectKilled: (err: RhizomeError) => void = () => {}

  constructor (isolate: ivm.Isolate, budgetMs: number) {
    this.isolate = isolate
    this.budgetMs = budgetMs
    this.startNs = isolate.cpuTime
    this.killed = new Promise<never>((_resolve, reject) => { this.rejectKilled = reject })
    // Nobody may be racing yet when the guard fires; the rejection is observed through race().
    this.killed.catch(() => {})
    this.arm(budgetMs)
  }

  /** CPU time the isolate has used since the guard was armed. */
  usedMs (): number {
    if (this.isolate.isDisposed) return 0
    return Number(this.isolate.cpuTime - this.startNs) / NS_PER_MS
  }

  kill (reason: CpuKillReason): void {
    if (this.reason !== undefined) return
    this.reason = reason
    this.clear()
    if (!this.isolate.isDisposed) {
      try {
        this.isolate.dispose()
      } catch {
        // Disposed concurrently by isolated-vm (memory limit): the isolate is gone either way.
      }
    }
    this.rejectKilled(this.error(reason))
  }

  error (reason: CpuKillReason): RhizomeError {
    if (reason === 'closed') return new SandboxClosedError()
    return new SandboxTimeLimitError(this.budgetMs, {}, 'one activation of the workflow used more CPU time than its limit of')
  }

  /** Settle with `work`, or reject as soon as the guard fires. */
  async race<T> (work: Promise<T>): Promise<T> {
    work.catch(() => {})
    return await Promise.race([work, this.killed])
  }

  clear (): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }

  private arm (ms: number): void {
    this.timer = setTimeout(() => { this.check() }, ms)
  }

  private check (): void {
    this.timer = undefined
    if (this.reason !== undefined || this.isolate.isDisposed) return
    const usedMs = this.usedMs()
    if (usedMs >= this.budgetMs) this.kill('time')
    else this.arm(Math.max(1, Math.ceil(this.budgetMs - usedMs)))
  }
}
