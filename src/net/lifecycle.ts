/**
 * A service's lifetime, and the one signal each piece of its work runs under (STYLE.md §9, §20;
 * the shape of kad-dht's `shutDownController`).
 *
 * `operation({ signal, timeoutMs })` returns a signal that aborts on whichever comes first: the
 * service stopping, the caller giving up, or the operation's named deadline. `reason` says which,
 * so the service can answer with the right named error (AbortedError for a stop or a cancel,
 * TimeoutError for the deadline). `release()` belongs in `finally`: it drops the listeners on the
 * caller's and the service's signals and clears the timer, so a long-lived signal does not collect
 * listeners from finished work, and a finished operation holds no timer.
 */
import { setMaxListeners } from 'node:events'
import { AbortedError, TimeoutError, assert } from '../model/errors.ts'
import { DURATION_MS_LIMIT } from '../protocol/membership/index.ts'

export type OperationEnd = 'stopped' | 'cancelled' | 'timeout'

export interface Operation {
  /** Aborts when the service stops, the caller's signal aborts or the deadline passes. */
  readonly signal: AbortSignal
  /** What ended the operation; undefined while it may still run. */
  readonly reason: OperationEnd | undefined
  /** Drop listeners and the timer; call it in `finally`. Calling it twice is harmless. */
  release: () => void
}

export interface OperationOptions {
  /** The caller's signal, if any. */
  signal?: AbortSignal
  /** The operation's deadline: a named constant of the service, or the caller's own. */
  timeoutMs: number
}

export class Lifecycle {
  private readonly name: string
  private controller = new AbortController()
  private running = false

  /** `name` says what stops, for error messages ("the task service"). */
  constructor (name: string) {
    this.name = name
    this.unlimit(this.controller.signal)
  }

  get started (): boolean {
    return this.running
  }

  /** Aborted by `stop()`: for work that belongs to no caller (a dial the service starts itself). */
  get signal (): AbortSignal {
    return this.controller.signal
  }

  /** True once `stop()` was called (until the next `start()`). */
  get stopping (): boolean {
    return this.controller.signal.aborted
  }

  start (): void {
    if (this.controller.signal.aborted) {
      this.controller = new AbortController()
      this.unlimit(this.controller.signal)
    }
    this.running = true
  }

  /** Abort everything in flight: every operation's signal aborts with reason 'stopped'. */
  stop (): void {
    this.running = false
    this.controller.abort(this.stoppedError())
  }

  /** The error for work refused or ended because the service stopped. */
  stoppedError (): AbortedError {
    return new AbortedError(`${this.name} is stopping`, { hint: 'the peer is shutting down; retry on another peer or after it restarts' })
  }

  operation (options: OperationOptions): Operation {
    // Node fires a timer past 2^31 − 1 ms at once: such a deadline would end the work immediately.
    assert(Number.isSafeInteger(options.timeoutMs) && options.timeoutMs >= 1 && options.timeoutMs <= DURATION_MS_LIMIT, `timeoutMs must be an integer in 1..${DURATION_MS_LIMIT}, not ${options.timeoutMs}`)
    const controller = new AbortController()
    const shutdown = this.controller.signal
    const caller = options.signal
    let reason: OperationEnd | undefined
    let timer: ReturnType<typeof setTimeout> | undefined
    const end = (why: OperationEnd, error: unknown): void => {
      if (reason !== undefined) return
      reason = why
      release()
      controller.abort(error)
    }
    const onStop = (): void => { end('stopped', shutdown.reason) }
    const onCancel = (): void => { end('cancelled', caller?.reason ?? new AbortedError()) }
    const release = (): void => {
      shutdown.removeEventListener('abort', onStop)
      caller?.removeEventListener('abort', onCancel)
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
    }
    if (shutdown.aborted) end('stopped', shutdown.reason)
    else if (caller?.aborted === true) end('cancelled', caller.reason ?? new AbortedError())
    else {
      shutdown.addEventListener('abort', onStop, { once: true })
      caller?.addEventListener('abort', onCancel, { once: true })
      timer = setTimeout(() => { end('timeout', new TimeoutError(`no result within ${options.timeoutMs} ms`)) }, options.timeoutMs)
      // The work itself keeps the process alive; a deadline alone must not.
      timer.unref?.()
    }
    return {
      signal: controller.signal,
      get reason () { return reason },
      release
    }
  }

  /** Every operation listens on the service's signal: hundreds at once are normal, not a leak. */
  private unlimit (signal: AbortSignal): void {
    setMaxListeners(0, signal)
  }
}
