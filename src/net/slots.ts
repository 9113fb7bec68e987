/**
 * Admission for tasks on a worker: `slotsMax` run at once, up to `queueLengthMax` wait, and the
 * next one is refused at once with the retryable `QueueFullError` — never queued without end.
 * A waiting task whose signal aborts leaves the queue; a finished one hands its slot straight to
 * the next in line. `onChange` reports the capacity each time it moves (for announcements).
 */
import { AbortedError, RhizomeError } from '../model/errors.ts'

export interface Capacity { slotsFree: number, slotsMax: number, queueLength: number }

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
    if (!Number.isSafeInteger(options.slotsMax) || options.slotsMax < 1) throw new Error('assertion failed: slotsMax must be a positive integer')
    if (!Number.isSafeInteger(options.queueLengthMax) || options.queueLengthMax < 0) throw new Error('assertion failed: queueLengthMax must be a non-negative integer')
    this.slotsMax = options.slotsMax
    this.queueLengthMax = options.queueLengthMax
    this.onChange = options.onChange ?? (() => {})
  }

  capacity (): Capacity {
    return { slotsFree: this.slotsMax - this.running, slotsMax: this.slotsMax, queueLength: this.queue.length }
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
