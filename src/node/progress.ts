/**
 * The peer's progress events (src/api/events.ts) on their way to API clients: parts of the peer
 * `emit`, each open event stream `subscribe`s. A listener that throws is dropped, never the
 * emitter; the number of listeners is bounded, so event streams cannot pile up without end.
 */
import { RhizomeError } from '../model/errors.ts'
import type { ProgressEvent } from '../api/events.ts'
import type { CallOptions, PlacedCallResult } from '../net/task-placement.ts'
import type { MembershipEvent } from '../protocol/membership/index.ts'
import type { CID } from 'multiformats/cid'

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

/** What a call through the API may also ask for: its own progress events. */
export interface ProgressCallOptions extends Omit<CallOptions, 'onAttempt' | 'onRetry'> {
  onProgress?: (event: ProgressEvent) => void
}

type PlacedCall = (fn: CID, exportName: string, args: unknown[], options: CallOptions) => Promise<PlacedCallResult>

/**
 * Wrap task placement so a call reports `call:started`, each `call:attempt` and `call:retry`, and
 * `call:done` or `call:failed` — to the peer-wide bus and to the caller's own listener.
 */
export function callWithProgress (bus: ProgressBus, placed: PlacedCall, idPrefix: string): (fn: CID, exportName: string, args: unknown[], options: ProgressCallOptions) => Promise<PlacedCallResult> {
  let calls = 0
  return async (fn, exportName, args, options) => {
    const callId = `${idPrefix}-${(++calls).toString(36)}`
    const report = (event: ProgressEvent): void => {
      bus.emit(event)
      options.onProgress?.(event)
    }
    report({ type: 'call:started', callId, fn: fn.toString(), export: exportName, atMs: Date.now() })
    try {
      const result = await placed(fn, exportName, args, {
        ...options,
        onAttempt: (attempt, peer) => { report({ type: 'call:attempt', callId, attempt, peer, atMs: Date.now() }) },
        onRetry: (attempt, peer, err) => { report({ type: 'call:retry', callId, attempt, peer, error: err.toData(), atMs: Date.now() }) }
      })
      report({ type: 'call:done', callId, peer: result.peer, attempts: result.attempts, totalMs: Math.round(result.timings.totalMs), atMs: Date.now() })
      return result
    } catch (err) {
      const error = err instanceof RhizomeError ? err.toData() : { name: 'InternalError', code: 'ERR_INTERNAL', message: 'the call failed', retryable: false }
      report({ type: 'call:failed', callId, error, atMs: Date.now() })
      throw err
    }
  }
}

/** A membership transition as a `peer:state` progress event. */
export function peerStateEvent (event: MembershipEvent): ProgressEvent {
  const state = ({ 'peer:joined': 'joined', 'peer:alive': 'alive', 'peer:suspect': 'suspect', 'peer:gone': 'gone', 'peer:removed': 'removed' } as const)[event.type]
  return { type: 'peer:state', peer: event.peerId, state, atMs: event.atMs }
}
