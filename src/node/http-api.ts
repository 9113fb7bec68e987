/**
 * The peer's local HTTP API, used by the CLI (and later the dashboard). Bound to 127.0.0.1 by
 * default. Every answer is JSON except blob bodies; every error is `{ error: FailureData }`
 * with an HTTP status that matches its kind.
 *
 *   GET  /v1/status            this peer: id, addrs, counts
 *   GET  /v1/peers             the membership view (+ connected flag)
 *   POST /v1/blobs             body = bytes → { cid, bytes }
 *   GET  /v1/blobs/:cid        → bytes (verified against the CID on the way out)
 *   POST /v1/blobs/:cid/fetch?from=PEER  fetch a blob from another peer, verify, store
 *   GET  /v1/functions         functions this peer holds
 *   POST /v1/functions         body = dag-cbor { manifest, code, replicas } → deploy result
 *   POST /v1/call              JSON { fn, export, args, on?, timeoutMs? } → result, peer, timings
 *   GET  /v1/tasks/:id/attestations  who computed a verified task, who agreed, who disagreed
 *   GET  /v1/reputation        this peer's record of each other peer
 *   GET  /metrics              Prometheus metrics (text exposition format, src/node/metrics.ts)
 *   POST /v1/sql               JSON { sql, maxRows?, timeoutMs? } → { columns, rows } (read-only, in a child process)
 *   GET  /v1/logs              the peer's recent log records; with Accept: text/event-stream, then live
 *   GET  /dashboard[/:asset]   the dashboard's page and code (dashboard.ts), without the token
 *   POST /v1/dashboard/codes   a single-use sign-in code for the dashboard, for a bearer of the token
 *   POST /dashboard/sign-in    JSON { code } → { token }: the dashboard trades a code, once, without the token
 *
 * Who may ask. Every request is checked in this order, before its body is read:
 *  1. `Host` must name this API: a loopback name or IP (localhost, 127.0.0.1, [::1]) or the
 *     configured api host, with the API's port. Anything else is DNS rebinding — a web page
 *     whose own host name now resolves to 127.0.0.1 — and gets 403 ERR_FORBIDDEN_HOST.
 *  2. `Origin`, if present, must be this API's own origin (http://127.0.0.1:PORT and the other
 *     names above). Any web page the user visits may POST to 127.0.0.1; the browser labels
 *     such a request with the page's Origin, and it gets 403 ERR_FORBIDDEN_ORIGIN. CORS
 *     preflights (OPTIONS) get no CORS headers, so a browser never sends the real request.
 *  3. `Authorization: Bearer TOKEN`, TOKEN being the contents of DIR/api.token (api-token.ts),
 *     on every route, reads included, else 401 ERR_UNAUTHORIZED. Reads are not exempt, unlike
 *     kubo's: /v1/blobs serves whatever the owner stored (task inputs and results) and
 *     /v1/status names the data dir, and a loopback port is open to every local user; the
 *     0600 token file is what keeps them out. One rule for every route is also harder to get
 *     wrong than a list of exempt ones.
 *     The dashboard (dashboard.ts) sends it too, from sessionStorage; there is no cookie, since
 *     browsers send a cookie of 127.0.0.1 to every port of it. The dashboard's page and code
 *     (`public` routes) need no token: they hold no data; nor does its sign-in, which takes a
 *     single-use code instead.
 *  4. `Sec-Fetch-Site: same-site` or `cross-site` is refused (ERR_FORBIDDEN_ORIGIN) on every
 *     route: a page elsewhere — another port of 127.0.0.1 is "same-site" — framing the dashboard
 *     or loading an API URL as an image or script, which sends no Origin header.
 * Every answer carries a strict Content-Security-Policy and X-Frame-Options: DENY (dashboard.ts).
 * Kubo (IPFS's daemon) refuses foreign origins on its API the same way; the Host check and the
 * token go further.
 */
import { REVOCATION_BYTES_MAX } from '../wire/certificate-codec.ts'
import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer } from 'node:http'
import { isIP } from 'node:net'
import { peerIdFromString } from '@libp2p/peer-id'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { InvalidInputError, NotFoundError, RhizomeError, TimeoutError, TooLargeError } from '../model/errors.ts'
import type { Logger } from '../model/log.ts'
import { SIGNAL_VALUE_BYTES_MAX, signalNameProblem } from '../model/limits.ts'
import { RUN_EVENTS_KEPT } from '../net/run-service.ts'
import type { BlobService } from '../net/blob-service.ts'
import { CALL_TIMEOUT_MS_DEFAULT, CALL_TIMEOUT_MS_MAX } from '../api/limits.ts'
import { HTTP_METHOD_NOT_ALLOWED, HTTP_OK, HTTP_UNAUTHORIZED, HTTP_UNAVAILABLE, RETRY_AFTER_SECONDS, httpStatusOf } from '../api/errors.ts'
import { EVENT_STREAM_TYPE, encodeSse } from '../api/events.ts'
import { ROUTES, matchRoute } from '../api/routes.ts'
import { toJson } from '../api/dag-json.ts'
import type { CallStreamEvent, LogStreamEvent, ProgressEvent } from '../api/events.ts'
import type { Route, RouteName } from '../api/routes.ts'
import type { ReputationView, RunSummary, TaskAttestations } from '../api/types.ts'
import { VERIFY_ID_CHARS_MAX } from '../store/verify-repo.ts'
import { LOG_RECORD_LEVELS } from '../store/log-repo.ts'
import type { LogQuery, LogRow } from '../store/log-repo.ts'
import { LOG_LIST_DEFAULT, LOG_LIST_MAX, SQL_TEXT_BYTES_MAX } from '../api/limits.ts'
import type { LogRecordView } from '../api/types.ts'
import { SqlService, parseSqlRequest } from './sql-service.ts'
import { join } from 'node:path'
import type { ReputationRow } from '../store/verify-repo.ts'
import type { ProgressBus } from './progress.ts'
import { DashboardAssets, SECURITY_HEADERS, SignInCodes } from './dashboard.ts'
import type { RhizomeNode } from './node.ts'
import type { IncomingMessage, ServerResponse } from 'node:http'

export interface HttpApi {
  url: string
  close: () => Promise<void>
}

export interface HttpApiInit {
  node: RhizomeNode
  blobService: BlobService
  host: string
  port: number
  /** The bearer token every request must carry (api-token.ts). */
  token: string
  /** Where the token lives, for the hint a refused caller gets. */
  tokenPath: string
  /** The peer's progress events, served on `GET /v1/events`. */
  progress: ProgressBus
  log: Logger
}

/** Requests that are not blob uploads carry no body worth more than this. */
const REQUEST_BYTES_MAX = 64 * 1024
/** A deploy carries a bundle (at most 4 MiB) and its manifest. */
const DEPLOY_BYTES_MAX = 8 * 1024 * 1024
/** A call carries JSON arguments; 2 MiB leaves room for the 1 MiB task argument limit in JSON. */
const CALL_BYTES_MAX = 2 * 1024 * 1024
/** Slow clients are cut off; the API is local and answers in milliseconds. */
const REQUEST_TIMEOUT_MS = 60_000
/** A blob fetch from another peer: a 16 MiB blob over a slow link, with room to spare. */
const BLOB_FETCH_TIMEOUT_MS = 60_000
/** The request carries no API token, or the wrong one. */
export class UnauthorizedError extends RhizomeError {
  constructor (message: string, tokenPath: string) {
    super('ERR_UNAUTHORIZED', message, {
      hint: `send the header "Authorization: Bearer TOKEN", TOKEN being the contents of ${tokenPath} on the peer's machine ` +
        '(the rhizome CLI reads it through --data-dir; with --api it takes --api-token or RHIZOME_API_TOKEN)'
    })
    this.name = 'UnauthorizedError'
  }
}

/** A web page on another origin sent this request through the user's browser. */
export class ForbiddenOriginError extends RhizomeError {
  constructor (origin: string) {
    super('ERR_FORBIDDEN_ORIGIN', `requests from origin ${JSON.stringify(origin)} are refused: the API answers only its own origin`, {
      hint: 'the local API answers only its own dashboard (`rhizome dashboard` opens it), the rhizome CLI and scripts, not other web pages'
    })
    this.name = 'ForbiddenOriginError'
  }
}

/** The Host header names something other than this API: DNS rebinding, or a wrong address. */
export class ForbiddenHostError extends RhizomeError {
  constructor (host: string | undefined, apiUrl: string) {
    super('ERR_FORBIDDEN_HOST', host === undefined ? 'the request has no Host header' : `requests for host ${JSON.stringify(host)} are refused`, {
      hint: `address the API as ${apiUrl} (or localhost with the same port)`
    })
    this.name = 'ForbiddenHostError'
  }
}

export class MethodNotAllowedError extends RhizomeError {
  constructor (method: string) {
    super('ERR_METHOD_NOT_ALLOWED', `method ${method} is not served; the API takes GET and POST`, {
      hint: 'CORS preflights are refused on purpose: the local API is not for web pages'
    })
    this.name = 'MethodNotAllowedError'
  }
}

export async function startHttpApi (init: HttpApiInit): Promise<HttpApi> {
  const { log } = init
  const server = createServer()
  server.requestTimeout = REQUEST_TIMEOUT_MS
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(init.port, init.host, () => { server.off('error', reject); resolve() })
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('assertion failed: HTTP API has no TCP address')
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  const url = `http://${host}:${address.port}`
  // The guard needs the port the server got (port 0 picks one), so requests are served only from
  // here on; nothing can arrive between listening and this line, which runs in the same turn.
  // Queries run in child processes (src/node/sql-service.ts), killed when the API closes.
  const sql = new SqlService(join(init.node.config.dataDir, 'rhizome.db'))
  const codes = new SignInCodes()
  const dashboard = new DashboardAssets(log)
  const guard = new RequestGuard({ configuredHost: init.host, port: address.port, url, token: init.token, tokenPath: init.tokenPath })
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value)
    const refusal = guard.check(req)
    if (refusal !== undefined) {
      log.debug('api request refused', { code: refusal.code, method: req.method, path: req.url, host: req.headers.host, origin: req.headers.origin })
      // Refused before the body is read: close the connection rather than drain a body we refuse.
      req.resume()
      sendFailure(res, refusal, { connection: 'close' })
      return
    }
    route(init, sql, req, res, { codes, dashboard }).catch((err: unknown) => {
      const failure = err instanceof RhizomeError
        ? err
        : new RhizomeError('ERR_INTERNAL', 'the peer failed to answer this request', { hint: 'see the peer\'s log for details' })
      if (!(err instanceof RhizomeError)) log.error('api handler failed', { error: String((err as Error)?.stack ?? err) })
      sendFailure(res, failure)
    })
  })
  return {
    url,
    close: async () => {
      sql.close()
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

interface RequestContext {
  init: HttpApiInit
  sql: SqlService
  req: IncomingMessage
  res: ServerResponse
  url: URL
  params: Record<string, string>
  web: DashboardParts
}

/** What the dashboard's routes serve: its sign-in codes and its files. */
interface DashboardParts {
  codes: SignInCodes
  dashboard: DashboardAssets
}

/** A handler answers JSON, raw bytes, text of a given type, a file of the dashboard, or writes an event stream itself. */
type Reply = { json: unknown } | { bytes: Uint8Array } | { text: string, contentType: string } | { streamed: true } | { file: { contentType: string, body: Buffer } }

/** One handler per route of the table in src/api/routes.ts; the types make a missing one an error. */
const HANDLERS: { [K in RouteName]: (context: RequestContext) => Promise<Reply> } = {
  status: async ({ init }) => ({ json: await init.node.status() }),
  peers: async ({ init }) => ({ json: { peers: init.node.peers() } }),
  functions: async ({ init }) => ({ json: { functions: init.node.functions.list() } }),
  deploy: async ({ init, req }) => {
    const body = decodeCbor(await readBody(req, DEPLOY_BYTES_MAX))
    if (!(body.manifest instanceof Uint8Array) || !(body.code instanceof Uint8Array)) throw new InvalidInputError('deploy body must be dag-cbor { manifest: bytes, code: bytes, replicas: integer }', { hint: 'deploy with `rhizome deploy FILE`, which builds this body' })
    const replicas = body.replicas ?? 3
    if (typeof replicas !== 'number') throw new InvalidInputError('replicas must be an integer', { hint: 'e.g. replicas: 3' })
    return { json: await init.node.functions.deploy(body.manifest, body.code, replicas) }
  },
  call: async (context) => await call(context),
  blobPut: async ({ init, req }) => {
    const bytes = await readBody(req, init.node.blobs.blobBytesMax)
    const cid = await init.node.blobs.put(bytes)
    return { json: { cid: cid.toString(), bytes: bytes.byteLength } }
  },
  blobGet: async ({ init, params }) => ({ bytes: await init.node.blobs.get(params.cid) }),
  blobFetch: async ({ init, req, res, url, params }) => {
    await readBody(req, REQUEST_BYTES_MAX)
    const cid = parseCid(params.cid)
    const from = url.searchParams.get('from')
    if (from === null) throw new InvalidInputError('fetch needs ?from=<peer id>', { hint: 'a peer id looks like 12D3KooW…; `rhizome peers` lists them' })
    let peer
    try {
      peer = peerIdFromString(from)
    } catch (err) {
      throw new InvalidInputError(`${JSON.stringify(from)} is not a peer id`, { cause: err, hint: 'a peer id looks like 12D3KooW…; `rhizome peers` lists them' })
    }
    const bytes = await init.blobService.fetch(peer, cid, { signal: AbortSignal.any([closed(res), AbortSignal.timeout(BLOB_FETCH_TIMEOUT_MS)]) })
    return { json: { cid: cid.toString(), bytes: bytes.byteLength } }
  },
  runStart: async (context) => await startRun(context),
  runList: async ({ init, url }) => {
    const limit = url.searchParams.get('limit')
    const status = url.searchParams.get('status')
    if (limit !== null && !/^[0-9]{1,6}$/.test(limit)) throw new InvalidInputError('limit must be a positive integer', { hint: 'e.g. ?limit=20' })
    if (status !== null && !RUN_STATUSES.includes(status as RunSummary['status'])) throw new InvalidInputError(`status must be one of ${RUN_STATUSES.join(', ')}`, { hint: 'e.g. ?status=running' })
    return { json: { runs: init.node.runs.list({ limit: limit === null ? undefined : Number(limit), status: (status ?? undefined) as RunSummary['status'] | undefined }) } }
  },
  runGet: async ({ init, params }) => {
    await init.node.runs.locate(params.id)
    return { json: init.node.runs.report(params.id) }
  },
  runEvents: async ({ init, req, res, params }) => {
    await readBody(req, REQUEST_BYTES_MAX)
    await init.node.runs.locate(params.id)
    followRun(init, res, params.id)
    return { streamed: true }
  },
  taskAttestations: async ({ init, params }) => ({ json: taskAttestations(init, params.id) }),
  reputation: async ({ init }) => ({ json: { peers: init.node.verify.loadReputation().map(r => reputationView(r, Date.now())) } }),
  runSignal: async (context) => await signalRun(context),
  sql: async ({ sql, req, res }) => {
    const request = parseSqlRequest(parseJson(await readBody(req, SQL_BODY_BYTES_MAX)))
    return { json: await sql.query(request, closed(res)) }
  },
  logs: async (context) => await logs(context),
  dashboard: async ({ web }) => ({ file: (await web.dashboard.get('index.html'))! }),
  dashboardAsset: async ({ web, params }) => {
    const file = await web.dashboard.get(params.asset)
    if (file === undefined) throw new NotFoundError(`the dashboard has no file ${JSON.stringify(params.asset)}`, { hint: 'open the dashboard at /dashboard (`rhizome dashboard` prints its address)' })
    return { file }
  },
  dashboardCode: async ({ web, req }) => {
    await readBody(req, REQUEST_BYTES_MAX)
    return { json: web.codes.issue() }
  },
  dashboardSignIn: async ({ init, web, req }) => {
    const body = parseJson(await readBody(req, REQUEST_BYTES_MAX))
    if (typeof body.code !== 'string') throw new InvalidInputError('sign-in takes JSON { code }', { hint: 'open the dashboard with `rhizome dashboard --open`, which hands the page a code' })
    web.codes.redeem(body.code)
    return { json: { token: init.token } }
  },
  network: async ({ init }) => ({ json: init.node.network.status() }),
  metrics: async ({ init }) => ({ text: await init.node.metrics.scrape(), contentType: init.node.metrics.contentType }),
  revocationSubmit: async ({ init, req }) => ({ json: { result: await init.node.network.submitRevocation(await readBody(req, REVOCATION_BYTES_MAX)) } }),
  runCancel: async ({ init, req, params }) => {
    await readBody(req, REQUEST_BYTES_MAX)
    init.node.runs.cancel(params.id)
    return { json: { runId: params.id, cancelled: true } }
  },
  events: async ({ init, req, res }) => {
    await readBody(req, REQUEST_BYTES_MAX)
    // Subscribe before the headers go out, so a peer at its limit of streams can still answer 503.
    // (No event can arrive between these lines: emitting is synchronous.)
    const unsubscribe = init.progress.subscribe(event => { stream.send(event) })
    res.on('close', unsubscribe)
    const stream = new EventStream(res)
    return { streamed: true }
  }
}

async function route (init: HttpApiInit, sql: SqlService, req: IncomingMessage, res: ServerResponse, web: DashboardParts): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost')
  const method = req.method ?? 'GET'
  for (const name of Object.keys(ROUTES) as RouteName[]) {
    const params = matchRoute(ROUTES[name], method, url.pathname)
    if (params === undefined) continue
    const reply = await HANDLERS[name]({ init, sql, req, res, url, params, web })
    if ('json' in reply) sendJson(res, HTTP_OK, reply.json)
    else if ('file' in reply) {
      res.writeHead(HTTP_OK, { 'content-type': reply.file.contentType, 'content-length': reply.file.body.byteLength, 'cache-control': 'no-cache' })
      res.end(reply.file.body)
    }
    else if ('bytes' in reply) {
      res.writeHead(HTTP_OK, { 'content-type': 'application/octet-stream', 'content-length': reply.bytes.byteLength })
      res.end(reply.bytes)
    } else if ('text' in reply) {
      res.writeHead(HTTP_OK, { 'content-type': reply.contentType, 'content-length': Buffer.byteLength(reply.text), 'cache-control': 'no-store' })
      res.end(reply.text)
    }
    return
  }
  await readBody(req, REQUEST_BYTES_MAX).catch(() => {})
  throw new NotFoundError(`no such API route: ${method} ${url.pathname}`, { hint: 'see docs/ARCHITECTURE.md for the API routes' })
}

function taskAttestations (init: HttpApiInit, taskId: string): TaskAttestations {
  if (taskId.length > VERIFY_ID_CHARS_MAX) throw new InvalidInputError(`a task id is at most ${VERIFY_ID_CHARS_MAX} characters`, { hint: 'task ids are shown by `rhizome run-status RUN`' })
  const rows = init.node.verify.attestationsOf(taskId)
  if (rows.length === 0) {
    throw new NotFoundError(`no attestations of task ${JSON.stringify(taskId)} on this peer`, { hint: 'ask the peer that drove the task (attestations are kept where a result was verified, for 7 days); task ids are shown by `rhizome run-status RUN`' })
  }
  return {
    taskId,
    attestations: rows.map(r => ({
      peer: r.peerId,
      resultCid: r.resultCid,
      role: r.role,
      ...(r.runId === undefined ? {} : { runId: r.runId }),
      atMs: r.atMs,
      signature: Buffer.from(r.signature).toString('base64')
    }))
  }
}

/**
 * A stored record with a score for display: the mean of the Beta(1 + agreements, 1 + disagreements
 * + failures) posterior, i.e. Laplace's rule of succession: 0.5 for a peer never seen, moving
 * towards the share of its answers that agreed. The reputation machine decides standing.
 */
export function reputationView (r: ReputationRow, nowMs: number): ReputationView {
  return { ...r, score: (1 + r.agreements) / (2 + r.agreements + r.disagreements + r.failures), banned: r.bannedUntilMs > nowMs }
}

/** Aborted when the client goes away before the answer is sent (Ctrl-C on the CLI): cancel its work. */
function closed (res: ServerResponse): AbortSignal {
  const controller = new AbortController()
  res.on('close', () => { if (!res.writableFinished) controller.abort() })
  return controller.signal
}

async function call ({ init, req, res }: RequestContext): Promise<Reply> {
  const { node } = init
  const body = parseJson(await readBody(req, CALL_BYTES_MAX))
  if (typeof body.fn !== 'string' || typeof body.export !== 'string' || !Array.isArray(body.args)) {
    throw new InvalidInputError('call body must be JSON { fn: string, export: string, args: [...], on?: peer id, timeoutMs?: number }', { hint: 'e.g. {"fn": "bafy…", "export": "sum", "args": [1, 2]}; or use `rhizome call`' })
  }
  if (body.on !== undefined && typeof body.on !== 'string') throw new InvalidInputError('on must be a peer id', { hint: 'a peer id looks like 12D3KooW…; `rhizome peers` lists them' })
  const timeoutMs = body.timeoutMs
  if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > CALL_TIMEOUT_MS_MAX)) {
    throw new InvalidInputError(`timeoutMs must be an integer from 1 to ${CALL_TIMEOUT_MS_MAX}`, { hint: 'leave it out for the default' })
  }
  const fn = node.functions.resolve(body.fn)
  const stream = acceptsEventStream(req) ? new EventStream(res) : undefined
  // timeoutMs bounds the whole call, retries on other peers included, so the caller hears
  // back (504) within it and may wait just a little longer than it (the CLI does).
  const deadlineMs = (timeoutMs as number | undefined) ?? CALL_TIMEOUT_MS_DEFAULT
  const deadline = AbortSignal.timeout(deadlineMs)
  const cancelled = closed(res)
  try {
    const result = await node.call(fn, body.export, body.args, {
      on: body.on as string | undefined,
      timeoutMs: deadlineMs,
      signal: AbortSignal.any([cancelled, deadline]),
      onProgress: stream === undefined ? undefined : (event) => stream.send(event)
    })
    const answer = { ...result, value: toJson(result.value) }
    if (stream === undefined) return { json: answer }
    stream.end({ type: 'result', result: answer })
    return { streamed: true }
  } catch (err) {
    let failure = err
    if (deadline.aborted && !cancelled.aborted) {
      failure = new TimeoutError(`the call did not finish within ${deadlineMs} ms`, {
        cause: err,
        hint: body.on === undefined ? 'the peers that tried it may be busy or unreachable; retry, or pass a longer timeoutMs' : 'the peer may be unreachable or busy; check `rhizome peers`, or pass a longer timeoutMs'
      })
    }
    if (stream === undefined || !(failure instanceof RhizomeError)) throw failure
    stream.end({ type: 'error', error: failure.toData() })
    return { streamed: true }
  }
}

/**
 * Events a run's stream holds back while its client's socket is backed up. A fan-out schedules
 * hundreds of tasks in one turn, far past a socket's buffer, and a client following a run should
 * see every task. The run keeps as many events itself (RUN_EVENTS_KEPT), so the backlog holds
 * only references to objects already in memory: at most 10,000 pointers per stream.
 */
const RUN_STREAM_BACKLOG_MAX = RUN_EVENTS_KEPT

const RUN_STATUSES: ReadonlyArray<RunSummary['status']> = ['created', 'running', 'finished', 'continued', 'failed', 'cancelled']
/** A run request carries the workflow's arguments as JSON; the same room as a call's. */
const RUN_BYTES_MAX = CALL_BYTES_MAX

async function startRun ({ init, req, res }: RequestContext): Promise<Reply> {
  const body = parseJson(await readBody(req, RUN_BYTES_MAX))
  if (typeof body.workflow !== 'string' || typeof body.export !== 'string' || !Array.isArray(body.args)) {
    throw new InvalidInputError('run body must be JSON { workflow: string, export: string, args: [...] }', { hint: 'use `rhizome run FILE EXPORT ARGS...`, which deploys the workflow and builds this body' })
  }
  const workflow = init.node.functions.resolve(body.workflow)
  const { runId } = await init.node.runs.startRun(workflow, body.export, body.args)
  if (!acceptsEventStream(req)) return { json: { runId } }
  followRun(init, res, runId)
  return { streamed: true }
}

/** A signal's JSON body: its value is at most SIGNAL_VALUE_BYTES_MAX as dag-cbor, and JSON of
 *  the same value is larger (quotes, escapes, digits for bytes) but not four times larger but for
 *  pathological escapes; the value's own size is checked exactly once encoded. */
const SIGNAL_BODY_BYTES_MAX = 4 * SIGNAL_VALUE_BYTES_MAX + 1024

async function signalRun ({ init, req, params }: RequestContext): Promise<Reply> {
  const body = parseJson(await readBody(req, SIGNAL_BODY_BYTES_MAX))
  const hint = 'send { "name": "approve", "value": <any JSON> }; `rhizome signal RUN NAME JSON` builds it'
  const problem = signalNameProblem(body.name)
  if (problem !== undefined) throw new InvalidInputError(`signal name ${problem}`, { hint })
  if (!('value' in body)) throw new InvalidInputError('a signal needs a value (null is one)', { hint })
  await init.node.runs.signal(params.id, body.name as string, body.value)
  return { json: { runId: params.id, name: body.name, signalled: true } }
}

/** Stream a run's progress events until its `run:finished`, then end the response. */
function followRun (init: HttpApiInit, res: ServerResponse, runId: string): void {
  // Subscribe first (an unknown run is a 404 before any header goes out); what the run already
  // did arrives synchronously, before the stream exists, and is sent once it does.
  const out: { stream?: EventStream, pending: ProgressEvent[] } = { pending: [] }
  const deliver = (stream: EventStream, event: ProgressEvent): void => {
    if (event.type === 'run:finished') stream.end(event)
    else stream.send(event)
  }
  const unsubscribe = init.node.runs.subscribe(runId, (event) => {
    if (out.stream === undefined) out.pending.push(event)
    else deliver(out.stream, event)
  })
  res.on('close', unsubscribe)
  const stream = new EventStream(res, { backlogMax: RUN_STREAM_BACKLOG_MAX })
  out.stream = stream
  for (const event of out.pending) deliver(stream, event)
}

/** A query's JSON body: its text (at most SQL_TEXT_BYTES_MAX) may double when escaped, plus the other fields. */
const SQL_BODY_BYTES_MAX = 2 * SQL_TEXT_BYTES_MAX + 1024

async function logs ({ init, req, res, url }: RequestContext): Promise<Reply> {
  await readBody(req, REQUEST_BYTES_MAX)
  const query = parseLogQuery(url.searchParams)
  // Listing and subscribing happen in the same turn: no record can fall between the two.
  const rows = init.node.logs.list(query)
  if (!acceptsEventStream(req)) return { json: { records: rows.map(logView) } }
  // Subscribed before the headers go out, so a peer at its limit of followers can still answer 503.
  const least = LOG_RECORD_LEVELS.indexOf(query.level ?? 'debug')
  const live: LogRow[] = []
  const out: { stream?: EventStream } = {}
  const unsubscribe = init.node.logs.subscribe((row) => {
    if (LOG_RECORD_LEVELS.indexOf(row.level) < least || !row.ns.startsWith(query.ns ?? '')) return
    if (out.stream === undefined) live.push(row)
    else out.stream.send({ type: 'log', ...logView(row) })
  })
  res.on('close', unsubscribe)
  const stream = new EventStream(res, { backlogMax: LOG_LIST_MAX })
  for (const row of [...rows, ...live]) stream.send({ type: 'log', ...logView(row) })
  out.stream = stream
  return { streamed: true }
}

function parseLogQuery (params: URLSearchParams): LogQuery {
  const level = params.get('level')
  const ns = params.get('ns')
  const since = params.get('since')
  const limit = params.get('limit')
  if (level !== null && !(LOG_RECORD_LEVELS as readonly string[]).includes(level)) throw new InvalidInputError(`level must be one of ${LOG_RECORD_LEVELS.join(', ')}`, { hint: 'e.g. ?level=warn for warnings and errors' })
  if (ns !== null && ns.length > LOG_NS_CHARS_MAX) throw new InvalidInputError(`ns is at most ${LOG_NS_CHARS_MAX} characters`, { hint: 'a namespace prefix, e.g. rhizome:tasks' })
  let sinceMs: number | undefined
  if (since !== null) {
    sinceMs = /^[0-9]{1,15}$/.test(since) ? Number(since) : Date.parse(since)
    if (Number.isNaN(sinceMs)) throw new InvalidInputError('since must be milliseconds since the epoch or an ISO 8601 time', { hint: 'e.g. ?since=2026-01-31T12:00:00Z' })
  }
  if (limit !== null && (!/^[0-9]{1,6}$/.test(limit) || Number(limit) < 1 || Number(limit) > LOG_LIST_MAX)) throw new InvalidInputError(`limit must be an integer from 1 to ${LOG_LIST_MAX}`, { hint: 'e.g. ?limit=200' })
  return { level: (level ?? undefined) as LogQuery['level'], ns: ns ?? undefined, sinceMs, limit: limit === null ? LOG_LIST_DEFAULT : Number(limit) }
}

/** A namespace prefix asked for: namespaces are a few words (rhizome:net:rpc). */
export const LOG_NS_CHARS_MAX = 256

function logView (row: LogRow): LogRecordView {
  let fields: Record<string, unknown> | undefined
  if (row.fields !== undefined) {
    try {
      fields = JSON.parse(row.fields) as Record<string, unknown>
    } catch {
      fields = { fieldsError: 'unreadable fields' }
    }
  }
  return { ...(row.id === undefined ? {} : { id: row.id }), atMs: row.atMs, level: row.level, ns: row.ns, msg: row.msg, ...(fields === undefined ? {} : { fields }) }
}

function acceptsEventStream (req: IncomingMessage): boolean {
  return (req.headers.accept ?? '').split(',').some(type => type.trim().split(';')[0] === EVENT_STREAM_TYPE)
}

/**
 * One client's event stream. A client that reads too slowly is not buffered for without end:
 * while the socket is backed up, up to `backlogMax` events wait (as the objects they are, not
 * encoded), past that they are counted instead, and an `events:dropped` event tells the client
 * how many it missed once the socket drains.
 */
export class EventStream {
  private readonly res: ServerResponse
  private readonly backlogMax: number
  private readonly backlog: Array<ProgressEvent | LogStreamEvent> = []
  private nextId = 1
  private dropped = 0
  private congested = false

  constructor (res: ServerResponse, options: { backlogMax?: number } = {}) {
    this.res = res
    this.backlogMax = options.backlogMax ?? 0
    res.writeHead(HTTP_OK, { 'content-type': `${EVENT_STREAM_TYPE}; charset=utf-8`, 'cache-control': 'no-store', connection: 'keep-alive' })
    res.flushHeaders()
    res.on('drain', () => {
      this.congested = false
      while (this.backlog.length > 0 && !this.congested) this.write(this.backlog.shift()!)
      if (this.dropped > 0 && !this.congested) {
        const count = this.dropped
        this.dropped = 0
        this.write({ type: 'events:dropped', count, atMs: Date.now() })
      }
    })
  }

  send (event: ProgressEvent | LogStreamEvent): void {
    if (this.res.writableEnded || this.res.destroyed) return
    if (!this.congested) this.write(event)
    else if (this.backlog.length < this.backlogMax && this.dropped === 0) this.backlog.push(event)
    else this.dropped++
  }

  /** The last event of a stream is always written, backed up or not (after those waiting). */
  end (event: CallStreamEvent | ProgressEvent | LogStreamEvent): void {
    if (this.res.writableEnded || this.res.destroyed) return
    for (const waiting of this.backlog.splice(0)) this.res.write(encodeSse(this.nextId++, waiting))
    if (this.dropped > 0) {
      const dropped: ProgressEvent = { type: 'events:dropped', count: this.dropped, atMs: Date.now() }
      this.res.write(encodeSse(this.nextId++, dropped))
    }
    this.res.end(encodeSse(this.nextId++, event))
  }

  private write (event: ProgressEvent | LogStreamEvent): void {
    if (!this.res.write(encodeSse(this.nextId++, event))) this.congested = true
  }
}

function decodeCbor (bytes: Uint8Array): Record<string, unknown> {
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err) {
    throw new InvalidInputError('request body is not dag-cbor', { cause: err, hint: 'send a dag-cbor map; `rhizome deploy` does' })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidInputError('request body must be a map', { hint: 'send a dag-cbor map; `rhizome deploy` does' })
  return value as Record<string, unknown>
}

function parseJson (bytes: Uint8Array): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder().decode(bytes))
  } catch (err) {
    throw new InvalidInputError('request body is not JSON', { cause: err, hint: 'send a JSON object' })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidInputError('request body must be a JSON object', { hint: 'send a JSON object, e.g. {"fn": …}' })
  return value as Record<string, unknown>
}


function parseCid (text: string): CID {
  try {
    return CID.parse(text)
  } catch (err) {
    throw new InvalidInputError(`${JSON.stringify(text)} is not a CID`, { cause: err, hint: 'a CID looks like bafkrei…' })
  }
}

async function readBody (req: IncomingMessage, bytesMax: number): Promise<Uint8Array> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > bytesMax) {
    req.resume()
    throw new TooLargeError('request body', declared, bytesMax, { hint: 'see docs/LIMITS.md; put large data in blobs' })
  }
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.byteLength
    if (total > bytesMax) {
      req.resume()
      throw new TooLargeError('request body', total, bytesMax, { hint: 'see docs/LIMITS.md; put large data in blobs' })
    }
    chunks.push(chunk)
  }
  return new Uint8Array(Buffer.concat(chunks))
}

function sendJson (res: ServerResponse, status: number, body: unknown, headers: Record<string, string | number> = {}): void {
  if (res.headersSent) {
    // An event stream already under way ends with its error as an event instead.
    res.destroy()
    return
  }
  const text = JSON.stringify(body)
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

function sendFailure (res: ServerResponse, failure: RhizomeError, headers: Record<string, string | number> = {}): void {
  const status = httpStatusOf(failure.code)
  const extra: Record<string, string | number> = { ...headers }
  if (status === HTTP_UNAVAILABLE) extra['retry-after'] = RETRY_AFTER_SECONDS
  if (status === HTTP_UNAUTHORIZED) extra['www-authenticate'] = 'Bearer realm="rhizome"'
  if (status === HTTP_METHOD_NOT_ALLOWED) extra.allow = 'GET, POST'
  sendJson(res, status, { error: failure.toData() }, extra)
}

/** Host, Origin and token checks (see the top of this file). `check` returns the refusal, if any. */
class RequestGuard {
  private readonly hostnames: Set<string>
  private readonly origins: Set<string>
  private readonly anyIpLiteral: boolean
  private readonly port: number
  private readonly url: string
  private readonly tokenDigest: Buffer
  private readonly tokenPath: string

  constructor (init: { configuredHost: string, port: number, url: string, token: string, tokenPath: string }) {
    const configured = bracketed(init.configuredHost.toLowerCase())
    this.hostnames = new Set(['localhost', '127.0.0.1', '[::1]', configured])
    // Bound to every interface, the API is reached by this machine's addresses, whatever they
    // are. An IP literal in Host cannot be DNS rebinding, which needs a name.
    this.anyIpLiteral = configured === '0.0.0.0' || configured === '[::]'
    this.port = init.port
    this.url = init.url
    this.origins = new Set([...this.hostnames].map(h => normalOrigin(`http://${h}:${init.port}`)))
    this.tokenDigest = digest(init.token)
    this.tokenPath = init.tokenPath
  }

  check (req: IncomingMessage): RhizomeError | undefined {
    const host = req.headers.host
    if (host === undefined || !this.hostAllowed(host)) return new ForbiddenHostError(host, this.url)
    const origin = req.headers.origin
    if (origin !== undefined && !this.origins.has(normalOrigin(origin))) return new ForbiddenOriginError(origin)
    const site = req.headers['sec-fetch-site']
    if (site === 'same-site' || site === 'cross-site') return new ForbiddenOriginError(origin ?? `another site (Sec-Fetch-Site: ${site})`)
    if (req.method !== 'GET' && req.method !== 'POST') return new MethodNotAllowedError(req.method ?? '')
    if (isPublic(req)) return undefined
    const auth = req.headers.authorization
    if (auth === undefined) return new UnauthorizedError('this request carries no API token', this.tokenPath)
    const match = /^Bearer +(\S+) *$/i.exec(auth)
    // Compare digests: equal length, and timingSafeEqual leaks nothing about where they differ.
    if (match === null || !timingSafeEqual(digest(match[1]), this.tokenDigest)) return new UnauthorizedError('the API token is wrong', this.tokenPath)
    return undefined
  }

  private hostAllowed (host: string): boolean {
    let parsed: URL
    try {
      parsed = new URL(`http://${host}`)
    } catch {
      return false
    }
    if (parsed.username !== '' || parsed.password !== '' || parsed.pathname !== '/' || parsed.search !== '' || parsed.hash !== '') return false
    if ((parsed.port === '' ? 80 : Number(parsed.port)) !== this.port) return false
    const name = parsed.hostname.toLowerCase()
    if (this.hostnames.has(name)) return true
    return this.anyIpLiteral && isIP(name.replace(/^\[|\]$/g, '')) !== 0
  }
}

/** The dashboard's page and files are served to anyone the Host, Origin and site checks let in. */
function isPublic (req: IncomingMessage): boolean {
  const pathname = new URL(req.url ?? '/', 'http://localhost').pathname
  return (Object.values(ROUTES) as Route[]).some(r => r.public === true && matchRoute(r, req.method ?? 'GET', pathname) !== undefined)
}

function digest (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

function bracketed (host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
}

/** "http://LOCALHOST:7070" and "http://localhost:7070/" are the same origin; "null" is none. */
function normalOrigin (origin: string): string {
  try {
    const parsed = new URL(origin)
    return `${parsed.protocol}//${parsed.host}`
  } catch {
    return origin
  }
}
