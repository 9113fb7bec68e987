/**
 * Progress events: what a peer tells its clients while long operations run, so the CLI can show
 * progress and the dashboard the network as it happens — typed and namespaced, never parsed out
 * of log lines (STYLE.md §13).
 *
 * They travel as Server-Sent Events (the `text/event-stream` format browsers read with
 * EventSource): `GET /v1/events` streams every event of the peer; `POST /v1/call` with
 * `Accept: text/event-stream` streams that call's events and ends with a `result` or `error`
 * event. Each event is one SSE message: `id: N`, `event: TYPE`, `data: JSON` (one line).
 */
import { RhizomeError } from '../model/errors.ts'
import type { CallResult, FailureData, LogRecordView, PeerState } from './types.ts'

interface At { atMs: number }

export type ProgressEvent =
  /** A call was accepted by this peer; `callId` names it in the events that follow. */
  | { type: 'call:started', callId: string, fn: string, export: string } & At
  /** The call was sent to `peer` (attempt 1, 2, … on retries elsewhere). */
  | { type: 'call:attempt', callId: string, attempt: number, peer: string } & At
  /** An attempt failed with a retryable error; another peer is tried next. */
  | { type: 'call:retry', callId: string, attempt: number, peer: string, error: FailureData } & At
  | { type: 'call:done', callId: string, peer: string, attempts: number, totalMs: number } & At
  | { type: 'call:failed', callId: string, error: FailureData } & At
  /** A deploy stored its blobs here and asks `asked` peers to hold copies. */
  | { type: 'deploy:started', fn: string, name: string, asked: number } & At
  | { type: 'deploy:replica', fn: string, peer: string, ok: boolean, error?: string } & At
  | { type: 'blob:fetched', cid: string, from: string, bytes: number } & At
  /** The membership view changed: a peer joined, or changed state. */
  | { type: 'peer:state', peer: string, state: PeerState | 'joined' | 'removed' } & At
  /** A workflow run started on this peer. */
  | { type: 'run:started', runId: string, workflow: string, export: string } & At
  /** `deps`: the tasks whose results the run's code had received when it asked for this one, the
   *  last RUN_EVENT_DEPS_MAX delivered of `depsCount` (the dashboard draws them as the run's DAG);
   *  absent from older peers. */
  | { type: 'run:task:scheduled', runId: string, taskId: string, fn: string, export: string, deps?: string[], depsCount?: number } & At
  /** A task of the run was sent to `peer` (attempt 1, 2, … on retries elsewhere). */
  | { type: 'run:task:started', runId: string, taskId: string, peer: string, attempt: number } & At
  | { type: 'run:task:done', runId: string, taskId: string, peer: string, ms: number } & At
  | { type: 'run:task:failed', runId: string, taskId: string, error: FailureData } & At
  /** The run's code awaits `sleep()`: timer `timerId` (`sleep:k`) is recorded and fires at `wakeAtMs`. */
  | { type: 'run:timer:started', runId: string, timerId: string, wakeAtMs: number } & At
  /** Timer `timerId` fired (recorded: it never fires again, whoever drives the run). */
  | { type: 'run:timer:fired', runId: string, timerId: string } & At
  /** Signal `name` reached the run and was recorded (`bytes` of dag-cbor value). */
  | { type: 'run:signal:received', runId: string, name: string, bytes: number } & At
  /** `continuedAs`: the run ended with continueAsNew and goes on as that run (status 'continued'). */
  | { type: 'run:finished', runId: string, status: 'finished' | 'continued' | 'failed' | 'cancelled', error?: FailureData, continuedAs?: string } & At
  /** `peer` drives the run from lease epoch `epoch`, starting from `memoEntries` kept results
   *  (epoch > 1: it took the run over, replaying the code from the memo). */
  | { type: 'run:driver', runId: string, peer: string, epoch: number, memoEntries: number } & At
  /** This peer stopped driving the run: its lease ran out, or a newer driver fenced it. */
  | { type: 'run:driver:lost', runId: string, peer: string, reason: 'lost-lease' | 'fenced' } & At
  /** The client read too slowly and `count` events were not sent to it. */
  | { type: 'events:dropped', count: number } & At

export type ProgressEventType = ProgressEvent['type']

/**
 * Dependencies a `run:task:scheduled` event names. A task's dependencies are the results its
 * code received in the activation that asked for it: usually one or a few, but a fan-in whose
 * results all land in one turn delivers hundreds, and every follower of the run would be sent
 * all of them for every task that activation asks for. The last delivered are the ones the task
 * waited for; the dashboard draws at most 8 of them anyway.
 */
export const RUN_EVENT_DEPS_MAX = 16

/** What a `POST /v1/call` event stream carries: its progress, then exactly one of result/error. */
export type CallStreamEvent = ProgressEvent | { type: 'result', result: CallResult } | { type: 'error', error: FailureData }

export const EVENT_STREAM_TYPE = 'text/event-stream'

/** One SSE message. JSON never contains a raw newline, so `data:` is always one line. */
export function encodeSse (id: number, event: { type: string }): string {
  return `id: ${id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`
}

/** Largest single SSE message a client accepts: a call result is at most a few MiB of JSON. */
export const SSE_MESSAGE_CHARS_MAX = 32 * 1024 * 1024

/**
 * Splits an SSE byte stream into the JSON payloads of its messages, across chunk boundaries.
 * Linear in the input: text is scanned once, and a message is joined once when it ends.
 */
export class SseDecoder {
  private readonly decoder = new TextDecoder()
  private readonly charsMax: number
  private pending: string[] = []
  private pendingChars = 0
  private data: string[] = []
  private dataChars = 0

  constructor (charsMax = SSE_MESSAGE_CHARS_MAX) {
    this.charsMax = charsMax
  }

  /** Feed text; returns the `data` payloads of the messages it completes, parsed as JSON. */
  push (chunk: Uint8Array): unknown[] {
    const text = this.decoder.decode(chunk, { stream: true })
    const out: unknown[] = []
    let start = 0
    for (;;) {
      const nl = text.indexOf('\n', start)
      if (nl === -1) break
      const line = this.pending.length === 0 ? text.slice(start, nl) : this.pending.join('') + text.slice(start, nl)
      this.pending = []
      this.pendingChars = 0
      start = nl + 1
      this.line(line.endsWith('\r') ? line.slice(0, -1) : line, out)
    }
    if (start < text.length) {
      this.pending.push(text.slice(start))
      this.pendingChars += text.length - start
      this.checkSize()
    }
    return out
  }

  private line (line: string, out: unknown[]): void {
    if (line === '') {
      if (this.data.length > 0) out.push(parseData(this.data.join('\n')))
      this.data = []
      this.dataChars = 0
      return
    }
    if (line.startsWith('data:')) {
      const data = line.slice(line.startsWith('data: ') ? 6 : 5)
      this.data.push(data)
      this.dataChars += data.length
      this.checkSize()
    }
    // `id:`, `event:`, `retry:` and comments (`:`) carry nothing the JSON payload lacks.
  }

  private checkSize (): void {
    if (this.pendingChars + this.dataChars > this.charsMax) throw new EventStreamError(`an event is longer than ${this.charsMax} characters`)
  }
}

/** The event stream broke the format: a message too long, or data that is not JSON. */
export class EventStreamError extends RhizomeError {
  constructor (message: string, options: { cause?: unknown } = {}) {
    super('ERR_EVENT_STREAM', message, { cause: options.cause, hint: 'the peer and this client may be different Rhizome versions; compare `rhizome --version` with the peer\'s' })
    this.name = 'EventStreamError'
  }
}

function parseData (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new EventStreamError('an event\'s data is not JSON', { cause: err })
  }
}

/** One record of a peer's log, as `GET /v1/logs` with `Accept: text/event-stream` sends it. */
export type LogStreamEvent = { type: 'log' } & LogRecordView
