/**
 * The peer's progress events (src/api/events.ts) on their way to API clients: parts of the peer
 * `emit`, each open event stream `subscribe`s. A listener that throws is dropped, never the
 * emitter; the number of listeners is bounded, so event streams cannot pile up without end.
 */
import { RhizomeError } from '../model/errors.ts'
import type { ProgressEvent } from '../api/events.ts'

/** Open event streams at once: a dashboard or two and a few CLIs; more is a leak or an attack. */
export const PROGRESS_LISTENERS_MAX = 64

export class TooManyListenersError extends RhizomeError {
  constructor () {
    super('ERR_PEER_BUSY', `${PROGRESS_LISTENERS_MAX} event streams are already open on this peer`, {
      retryable: true,
      hint: 'close an event stream (a dashboard tab, a `rhizome call` in another terminal) and try again'
    })
    this.name = 'TooManyListenersError'
  }
}

export type ProgressListener = (event: ProgressEvent) => void

export class ProgressBus {
  private readonly listeners = new Set<ProgressListener>()

  /** Start receiving every event; returns the function that stops it. */
  subscribe (listener: ProgressListener): () => void {
    if (this.listeners.size >= PROGRESS_LISTENERS_MAX) throw new TooManyListenersError()
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  emit (event: ProgressEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event)
      } catch {
        this.listeners.delete(listener)
      }
    }
  }

  get size (): number {
    return this.listeners.size
  }
}
