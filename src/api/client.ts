/**
 * A typed client of a peer's HTTP API: what the CLI, the SDK and (later) the dashboard use.
 * It only speaks HTTP (`fetch`), so it runs anywhere a peer's API is reachable from.
 *
 * Every request has a deadline and takes the caller's signal; aborting a request closes its
 * connection, which makes the peer cancel the work it was doing for it (a running task, say).
 * A failure the peer reports comes back as the peer's own named error (`failureFromData`);
 * a peer that does not answer is `ApiUnreachableError`, one that answers late `ApiTimeoutError`.
 */
import { InvalidInputError, RhizomeError, failureFromData } from '../model/errors.ts'
import { EVENT_STREAM_TYPE, SseDecoder } from './events.ts'
import type { LogStreamEvent, ProgressEvent } from './events.ts'
import { CALL_TIMEOUT_MS_DEFAULT, SQL_TIMEOUT_MS_DEFAULT } from './limits.ts'
import { ROUTES, routePath } from './routes.ts'
import type { RouteName } from './routes.ts'
import type {
  NetworkStatus, RevocationResult, SqlRequest, SqlResult, LogQueryParams, LogRecordView,
  BlobPutResult, CallRequest, CallResult, DeployResult, FailureData, FunctionInfo, NodeStatus, PeerView, RunReport, RunRequest, SignalRequest,
  RunStarted, RunStatus, RunSummary, ReputationView, TaskAttestations
} from './types.ts'

/** The local API answers in milliseconds; a blob fetch from another peer may take a minute. */
export const API_TIMEOUT_MS_DEFAULT = 120_000
/** Largest JSON answer read (a peer table of thousands of peers fits). */
export const API_JSON_BYTES_MAX = 32 * 1024 * 1024
/**
 * How much longer than a call's own deadline the client waits. The peer answers 504 at the
 * deadline; ten seconds covers sending that answer from a loaded peer, so the caller hears the
 * peer's own error (which names the unreachable or slow worker) instead of timing out in a race
 * with it.
 */
export const CALL_ANSWER_MARGIN_MS = 10_000

/** How long a client waits for `POST /v1/call` with this `timeoutMs` (the peer's default if none). */
export function callWaitMs (timeoutMs: number | undefined): number {
  const deadlineMs = timeoutMs !== undefined && Number.isSafeInteger(timeoutMs) && timeoutMs > 0 ? timeoutMs : CALL_TIMEOUT_MS_DEFAULT
  return deadlineMs + CALL_ANSWER_MARGIN_MS
}

export class ApiUnreachableError extends RhizomeError {
  constructor (url: string, options: { cause?: unknown, hint?: string } = {}) {
    super('ERR_NO_PEER', `no Rhizome peer answers at ${url}`, {
      retryable: true,
      hint: options.hint ?? 'is the peer running? start one with `rhizome node start`, or pass the right --data-dir / --api',
      cause: options.cause
    })
    this.name = 'ApiUnreachableError'
  }
}

/**
 * The peer took the connection but did not answer in time: it is running, only slow (not "no
 * peer answers"). Distinct from the peer's own `ERR_TIMEOUT`, which says the work itself ran out
 * of time.
 */
export class ApiTimeoutError extends RhizomeError {
  constructor (url: string, request: string, timeoutMs: number) {
    super('ERR_API_TIMEOUT', `the peer at ${url} did not answer ${request} in time (waited ${timeoutMs} ms)`, {
      retryable: true,
      hint: 'the peer is running but did not finish; see its log, and `rhizome status` for its load'
    })
    this.name = 'ApiTimeoutError'
  }
}

export class ApiAbortedError extends RhizomeError {
  constructor () {
    super('ERR_ABORTED', 'cancelled', { hint: 'the peer was told to stop the work for this request' })
    this.name = 'ApiAbortedError'
  }
}

export class ApiAnswerError extends RhizomeError {
  constructor (message: string, options: { hint?: string, cause?: unknown } = {}) {
    super('ERR_API', message, {
      hint: options.hint ?? 'the peer and this client may be different Rhizome versions; compare `rhizome --version` with the peer\'s `rhizome status`',
      cause: options.cause
    })
    this.name = 'ApiAnswerError'
  }
}

export interface ClientOptions {
  /** The API's base URL, e.g. http://127.0.0.1:7070 (a peer writes it to DIR/api.json). */
  url: string
  /** The API token (DIR/api.token); needed for every route that changes something. */
  token?: string
  /** Aborts every request of this client (Ctrl-C). */
  signal?: AbortSignal
}

/** What `runs()` asks for: the newest `limit` runs (the peer's default and maximum apply), of one `status`. */
export interface RunListQuery {
  limit?: number
  status?: RunStatus
}

export const RUN_STATUSES: readonly RunStatus[] = ['created', 'running', 'finished', 'continued', 'failed', 'cancelled']

export interface RequestOptions {
  signal?: AbortSignal
  /** Default `API_TIMEOUT_MS_DEFAULT`. */
  timeoutMs?: number
}

export class RhizomeClient {
  readonly url: string
  private readonly token: string | undefined
  private readonly signal: AbortSignal | undefined

  constructor (options: ClientOptions) {
    this.url = options.url.replace(/\/+$/, '')
    this.token = options.token
    this.signal = options.signal
  }

  /**
   * The address that opens the peer's dashboard, the token in its fragment: browsers never send
   * a fragment, and the page moves it to its tab's sessionStorage at once (src/node/dashboard.ts).
   * For the user's own eyes; an address handed to another program goes by `dashboardSignInUrl`.
   */
  dashboardUrl (): string {
    return `${this.url}${routePath('dashboard')}${this.token === undefined ? '' : `#token=${encodeURIComponent(this.token)}`}`
  }

  /**
   * An address that opens the dashboard with a fresh single-use sign-in code instead of the
   * token: safe to pass on a command line, which other local users can read, since the page
   * uses the code up at once and it expires within a minute anyway.
   */
  async dashboardSignInUrl (options?: RequestOptions): Promise<string> {
    const { code } = await this.json<{ code: string, expiresInMs: number }>('dashboardCode', {}, new Uint8Array(0), options)
    return `${this.url}${routePath('dashboard')}#code=${encodeURIComponent(code)}`
  }

  async status (options?: RequestOptions): Promise<NodeStatus> {
    return await this.json('status', {}, undefined, options)
  }

  async peers (options?: RequestOptions): Promise<PeerView[]> {
    return (await this.json<{ peers: PeerView[] }>('peers', {}, undefined, options)).peers
  }

  async functions (options?: RequestOptions): Promise<FunctionInfo[]> {
    return (await this.json<{ functions: FunctionInfo[] }>('functions', {}, undefined, options)).functions
  }

  /** Deploy a packaged function: `body` is dag-cbor `{ manifest, code, replicas }`. */
  async deploy (body: Uint8Array, options?: RequestOptions): Promise<DeployResult> {
    return await this.json('deploy', {}, body, options)
  }

  /**
   * Run one task. Unless `options.timeoutMs` says otherwise, the client waits the call's
   * `timeoutMs` (or the peer's default) plus `CALL_ANSWER_MARGIN_MS`, so the peer's own deadline
   * fires first and its error, which says what was slow, is what the caller sees.
   */
  async call (request: CallRequest, options: RequestOptions = {}): Promise<CallResult> {
    return await this.json('call', {}, new TextEncoder().encode(JSON.stringify(request)), { ...options, timeoutMs: options.timeoutMs ?? callWaitMs(request.timeoutMs) })
  }

  async putBlob (bytes: Uint8Array, options?: RequestOptions): Promise<BlobPutResult> {
    return await this.json('blobPut', {}, bytes, options)
  }

  async getBlob (cid: string, options?: RequestOptions): Promise<Uint8Array> {
    return await this.exchange('blobGet', { cid }, undefined, '', options, async res => new Uint8Array(await res.arrayBuffer()))
  }

  /** Make the peer fetch a blob from another peer, verify it and store it. */
  async fetchBlob (cid: string, from: string, options?: RequestOptions): Promise<BlobPutResult> {
    return await this.json('blobFetch', { cid }, new Uint8Array(0), options, `?from=${encodeURIComponent(from)}`)
  }

  /** Start a workflow run; answers as soon as the run is started (follow it with `runEvents`, read it with `run`). */
  async startRun (request: RunRequest, options?: RequestOptions): Promise<RunStarted> {
    return await this.json('runStart', {}, new TextEncoder().encode(JSON.stringify(request)), options)
  }

  /** The runs this peer drives, newest first. */
  async runs (query: RunListQuery = {}, options?: RequestOptions): Promise<RunSummary[]> {
    const params = new URLSearchParams()
    if (query.limit !== undefined) {
      if (!Number.isSafeInteger(query.limit) || query.limit < 1) throw new InvalidInputError(`limit must be a positive integer, not ${String(query.limit)}`, { hint: 'e.g. { limit: 20 }' })
      params.set('limit', String(query.limit))
    }
    if (query.status !== undefined) {
      if (!RUN_STATUSES.includes(query.status)) throw new InvalidInputError(`status must be one of ${RUN_STATUSES.join(', ')}, not ${JSON.stringify(query.status)}`)
      params.set('status', query.status)
    }
    const search = params.size > 0 ? `?${params.toString()}` : ''
    return (await this.json<{ runs: RunSummary[] }>('runList', {}, undefined, options, search)).runs
  }

  /** The signed answers behind a verified task: who computed it, who agreed, who disagreed. */
  async attestations (taskId: string, options?: RequestOptions): Promise<TaskAttestations> {
    return await this.json('taskAttestations', { id: taskId }, undefined, options)
  }

  /** This peer's record of each other peer it has sent verified work to. */
  async reputation (options?: RequestOptions): Promise<ReputationView[]> {
    return (await this.json<{ peers: ReputationView[] }>('reputation', {}, undefined, options)).peers
  }

  /** The network's mode, members and revocations as this peer enforces them. */
  async network (options?: RequestOptions): Promise<NetworkStatus> {
    return await this.json('network', {}, undefined, options)
  }

  /** Hand the peer a signed revocation (encoded bytes): it enforces it and gossips it to every peer. */
  async submitRevocation (bytes: Uint8Array, options?: RequestOptions): Promise<RevocationResult> {
    return await this.json('revocationSubmit', {}, bytes, options)
  }

  /**
   * One read-only SQL query over the views of the peer's history. The client waits the query's
   * own time limit plus CALL_ANSWER_MARGIN_MS, so the peer's ERR_SQL_TIMEOUT is what the caller sees.
   */
  async sql (request: SqlRequest, options: RequestOptions = {}): Promise<SqlResult> {
    const waitMs = (request.timeoutMs ?? SQL_TIMEOUT_MS_DEFAULT) + CALL_ANSWER_MARGIN_MS
    return await this.json('sql', {}, new TextEncoder().encode(JSON.stringify(request)), { ...options, timeoutMs: options.timeoutMs ?? waitMs })
  }

  /** The peer's recent log records matching `query`, oldest first. */
  async logs (query: LogQueryParams = {}, options?: RequestOptions): Promise<LogRecordView[]> {
    return (await this.json<{ records: LogRecordView[] }>('logs', {}, undefined, options, logSearch(query))).records
  }

  /**
   * The peer's recent log records matching `query`, then new ones as they are logged, until the
   * caller's signal ends it (or it leaves the loop). `events:dropped` says how many records a
   * slow reader missed.
   */
  async * followLogs (query: LogQueryParams = {}, options: RequestOptions = {}): AsyncGenerator<LogStreamEvent | Extract<ProgressEvent, { type: 'events:dropped' }>> {
    const res = await this.openStream('logs', {}, options, logSearch(query))
    const events = this.sseEvents(res, options, {
      what: 'the peer answered GET /v1/logs without a body',
      cutOff: (err) => new ApiAnswerError(`the log stream from ${this.url} was cut off: ${(err as Error).message}`, { hint: 'the peer may have stopped', cause: err }),
      ended: () => new ApiAnswerError('the peer ended the log stream', { hint: 'the peer may be stopping; see `rhizome status`' })
    })
    for await (const event of events) {
      const type = (event as { type?: unknown } | null)?.type
      if (type !== 'log' && type !== 'events:dropped') throw new ApiAnswerError('an event of the log stream is not a log record')
      yield event as LogStreamEvent
    }
  }

  /** A run: its status, its result or error once it has one, which peer ran each task, its critical path. */
  async run (runId: string, options?: RequestOptions): Promise<RunReport> {
    return await this.json('runGet', { id: runId }, undefined, options)
  }

  /** Cancel a run; its tasks in flight are cancelled on their workers. */
  async cancelRun (runId: string, options?: RequestOptions): Promise<void> {
    await this.json('runCancel', { id: runId }, new Uint8Array(0), options)
  }

  /** Send run `runId` the signal `name` with `value` (plain data, at most SIGNAL_VALUE_BYTES_MAX as dag-cbor). */
  async signalRun (runId: string, name: string, value: unknown, options?: RequestOptions): Promise<void> {
    const request: SignalRequest = { name, value }
    await this.json('runSignal', { id: runId }, new TextEncoder().encode(JSON.stringify(request)), options)
  }

  /**
   * A run's progress events: what happened so far, then live, ending after `run:finished`.
   * `timeoutMs` bounds the wait for the peer to answer, not the stream (a run may take hours):
   * the caller's signal ends it. Leaving the loop early closes the connection; the run goes on.
   * A stream that ends before `run:finished` is ApiAnswerError.
   */
  async * runEvents (runId: string, options: RequestOptions = {}): AsyncGenerator<ProgressEvent> {
    const request = `${ROUTES.runEvents.method} ${ROUTES.runEvents.path}`
    const res = await this.openStream('runEvents', { id: runId }, options)
    const events = this.sseEvents(res, options, {
      what: `the peer answered ${request} without a body`,
      cutOff: (err) => new ApiAnswerError(`the event stream of run ${runId} from ${this.url} was cut off: ${(err as Error).message}`, { hint: `the peer may have stopped; the run's state is kept: \`rhizome run-status ${runId}\``, cause: err }),
      ended: () => new ApiAnswerError(`the event stream of run ${runId} ended before the run finished`, { hint: `follow it again with \`rhizome run-status ${runId} --wait\`` })
    })
    for await (const event of events) {
      if (typeof event !== 'object' || event === null || typeof (event as { type?: unknown }).type !== 'string') {
        throw new ApiAnswerError(`an event of run ${runId} is not an object with a type`)
      }
      yield event as ProgressEvent
      // Leaving the loop closes the connection (sseEvents' finally); the run itself goes on.
      if ((event as ProgressEvent).type === 'run:finished') return
    }
  }

  /**
   * The decoded events of an open event stream, until the caller leaves the loop (which closes the
   * connection) or the stream fails: cut off (`cutOff`, or ApiAbortedError when the caller's
   * signal did it) or ended by the peer (`ended`: these streams end only when the caller leaves).
   */
  private async * sseEvents (res: Response, options: RequestOptions, errors: { what: string, cutOff: (err: unknown) => ApiAnswerError, ended: () => ApiAnswerError }): AsyncGenerator<unknown> {
    if (res.body === null) throw new ApiAnswerError(errors.what)
    const reader = res.body.getReader()
    const decoder = new SseDecoder()
    try {
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>
        try {
          chunk = await reader.read()
        } catch (err) {
          if (this.signal?.aborted === true || options.signal?.aborted === true) throw new ApiAbortedError()
          throw errors.cutOff(err)
        }
        if (chunk.done) throw errors.ended()
        yield * decoder.push(chunk.value)
      }
    } finally {
      await reader.cancel().catch(() => {})
    }
  }

  /**
   * Open an event stream: `timeoutMs` covers the answer's headers only, the caller's signal the
   * whole stream.
   */
  private async openStream (name: RouteName, params: Record<string, string>, options: RequestOptions, query = ''): Promise<Response> {
    const route = ROUTES[name]
    const request = `${route.method} ${route.path}`
    const timeoutMs = options.timeoutMs ?? API_TIMEOUT_MS_DEFAULT
    const answered = new AbortController()
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; answered.abort() }, timeoutMs)
    const signals = [answered.signal]
    if (this.signal !== undefined) signals.push(this.signal)
    if (options.signal !== undefined) signals.push(options.signal)
    const headers: Record<string, string> = { accept: EVENT_STREAM_TYPE }
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`
    let res: Response
    try {
      res = await fetch(this.url + routePath(name, params) + query, { method: route.method, headers, signal: AbortSignal.any(signals) })
    } catch (err) {
      if (this.signal?.aborted === true || options.signal?.aborted === true) throw new ApiAbortedError()
      if (timedOut) throw new ApiTimeoutError(this.url, request, timeoutMs)
      throw new ApiUnreachableError(this.url, { cause: err })
    } finally {
      clearTimeout(timer)
    }
    if (!res.ok) throw await failureOf(res, request)
    const type = (res.headers.get('content-type') ?? '').split(';')[0].trim()
    if (type !== EVENT_STREAM_TYPE) {
      await res.body?.cancel().catch(() => {})
      throw new ApiAnswerError(`the peer answered ${request} with ${type === '' ? 'no content type' : type}, not an event stream`)
    }
    return res
  }

  private async json<T> (name: RouteName, params: Record<string, string>, body?: Uint8Array, options?: RequestOptions, query = ''): Promise<T> {
    return await this.exchange(name, params, body, query, options, async res => {
      const declared = Number(res.headers.get('content-length') ?? 0)
      if (declared > API_JSON_BYTES_MAX) throw new ApiAnswerError(`the peer's answer is ${declared} bytes, more than ${API_JSON_BYTES_MAX}`)
      const text = await res.text()
      if (text.length > API_JSON_BYTES_MAX) throw new ApiAnswerError(`the peer's answer is larger than ${API_JSON_BYTES_MAX} bytes`)
      try {
        return JSON.parse(text) as T
      } catch {
        throw new ApiAnswerError(`the peer's answer to ${ROUTES[name].method} ${ROUTES[name].path} is not JSON`)
      }
    })
  }

  /** One request and its answer read by `read`, under one deadline that covers the body too. */
  private async exchange<T> (name: RouteName, params: Record<string, string>, body: Uint8Array | undefined, query: string, options: RequestOptions = {}, read: (res: Response) => Promise<T>): Promise<T> {
    const route = ROUTES[name]
    const request = `${route.method} ${route.path}`
    const timeoutMs = options.timeoutMs ?? API_TIMEOUT_MS_DEFAULT
    const deadline = AbortSignal.timeout(timeoutMs)
    const signals = [deadline]
    if (this.signal !== undefined) signals.push(this.signal)
    if (options.signal !== undefined) signals.push(options.signal)
    const headers: Record<string, string> = {}
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`
    let res: Response
    try {
      res = await fetch(this.url + routePath(name, params) + query, {
        method: route.method,
        headers,
        body: body as BodyInit | undefined,
        signal: AbortSignal.any(signals)
      })
    } catch (err) {
      if (this.signal?.aborted === true || options.signal?.aborted === true) throw new ApiAbortedError()
      if (deadline.aborted) throw new ApiTimeoutError(this.url, request, timeoutMs)
      throw new ApiUnreachableError(this.url, { cause: err })
    }
    if (!res.ok) throw await failureOf(res, request)
    try {
      return await read(res)
    } catch (err) {
      if (err instanceof RhizomeError) throw err
      // The same signal covers the body: a peer that sends headers and then stalls times out too.
      if (this.signal?.aborted === true || options.signal?.aborted === true) throw new ApiAbortedError()
      if (deadline.aborted) throw new ApiTimeoutError(this.url, request, timeoutMs)
      throw new ApiAnswerError(`the answer from ${this.url} to ${request} was cut off: ${(err as Error).message}`, { hint: 'the peer may have stopped; see its log', cause: err })
    }
  }
}

function logSearch (query: LogQueryParams): string {
  const params = new URLSearchParams()
  if (query.level !== undefined) params.set('level', query.level)
  if (query.ns !== undefined) params.set('ns', query.ns)
  if (query.sinceMs !== undefined) params.set('since', String(query.sinceMs))
  if (query.limit !== undefined) params.set('limit', String(query.limit))
  return params.size > 0 ? `?${params.toString()}` : ''
}

/** The peer's own error from a failed answer, or ApiAnswerError when it sent none. */
async function failureOf (res: Response, request: string): Promise<RhizomeError> {
  let failure: FailureData | undefined
  try {
    failure = ((await res.json()) as { error?: FailureData }).error
  } catch {}
  if (failure === undefined || typeof failure.code !== 'string') return new ApiAnswerError(`the peer answered HTTP ${res.status} to ${request}`)
  return failureFromData(failure)
}
