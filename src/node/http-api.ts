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
 * Kubo (IPFS's daemon) refuses foreign origins on its API the same way; the Host check and the
 * token go further.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer } from 'node:http'
import { isIP } from 'node:net'
import { peerIdFromString } from '@libp2p/peer-id'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { base64 } from 'multiformats/bases/base64'
import { InvalidInputError, NotFoundError, RhizomeError, TimeoutError, TooLargeError } from '../model/errors.ts'
import type { Logger } from '../model/log.ts'
import type { BlobService } from '../net/blob-service.ts'
import { CALL_TIMEOUT_MS_DEFAULT } from '../net/task-service.ts'
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
  log: Logger
}

/** Requests that are not blob uploads carry no body worth more than this. */
const REQUEST_BYTES_MAX = 64 * 1024
/** A deploy carries a bundle (at most 4 MiB) and its manifest. */
const DEPLOY_BYTES_MAX = 8 * 1024 * 1024
/** A call carries JSON arguments; 2 MiB leaves room for the 1 MiB task argument limit in JSON. */
const CALL_BYTES_MAX = 2 * 1024 * 1024
/** One hour: the longest a caller may ask to wait for one task. */
const CALL_TIMEOUT_MS_MAX = 3_600_000
/** Slow clients are cut off; the API is local and answers in milliseconds. */
const REQUEST_TIMEOUT_MS = 60_000
/** A blob fetch from another peer: a 16 MiB blob over a slow link, with room to spare. */
const BLOB_FETCH_TIMEOUT_MS = 60_000
/**
 * Retry-After on 503: a busy peer frees a slot when its shortest task ends, which for the
 * tasks Rhizome is made for (milliseconds to seconds) is about a second.
 */
export const RETRY_AFTER_SECONDS = 1

/**
 * The HTTP status of every error code a peer can produce (a test checks that every code in
 * src/ has one). The body always carries the code, the message, `retryable` and a hint.
 *  - 400 the caller's request is malformed; 404 what it names does not exist; 413 too large.
 *  - 401/403/405 the request was refused before it was read (see the top of this file).
 *  - 422 the request was fine but the function failed on its own terms: it threw, ran past
 *    its limits, returned what cannot be a result, or its code cannot be deployed.
 *  - 502 another peer failed or broke the protocol; 503 this or another peer is busy or
 *    shutting down, retry (Retry-After says when); 504 the work did not finish in time.
 *  - 500 this peer failed (a bug, or its disk): see its log.
 */
export const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  ERR_INVALID_INPUT: 400,
  ERR_CONFIG: 400,
  ERR_MANIFEST_MISMATCH: 400,
  ERR_UNAUTHORIZED: 401,
  ERR_FORBIDDEN_HOST: 403,
  ERR_FORBIDDEN_ORIGIN: 403,
  ERR_NOT_FOUND: 404,
  ERR_FUNCTION_NOT_FOUND: 404,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_TOO_LARGE: 413,
  ERR_EXPORT_NOT_FOUND: 422,
  ERR_FUNCTION_THREW: 422,
  ERR_SANDBOX_TIME_LIMIT: 422,
  ERR_SANDBOX_MEMORY_LIMIT: 422,
  ERR_SANDBOX_OUTPUT_LIMIT: 422,
  ERR_SANDBOX_STACK_OVERFLOW: 422,
  ERR_UNSUPPORTED_VALUE: 422,
  ERR_NONDETERMINISM: 422,
  ERR_WASM_TRAP: 422,
  ERR_WASM_MODULE: 422,
  ERR_FORBIDDEN_IMPORT: 422,
  ERR_BUNDLE: 422,
  ERR_NO_EXPORTS: 422,
  ERR_INVALID_MANIFEST: 422,
  ERR_INTERNAL: 500,
  ERR_BLOB_CORRUPT: 500,
  ERR_SCHEMA_TOO_NEW: 500,
  ERR_IDENTITY: 500,
  ERR_API_TOKEN: 500,
  ERR_DATA_DIR_LOCKED: 500,
  ERR_DATA_DIR: 500,
  ERR_DATABASE: 500,
  ERR_FILE: 500,
  ERR_LISTEN: 500,
  ERR_API_LISTEN: 500,
  ERR_PEER_UNAVAILABLE: 502,
  ERR_PROTOCOL_VIOLATION: 502,
  ERR_ATTESTATION_INVALID: 502,
  ERR_BLOB_HASH_MISMATCH: 502,
  ERR_NETWORK_MISMATCH: 502,
  ERR_SANDBOX_CRASHED: 502,
  ERR_PEER_BUSY: 503,
  ERR_QUEUE_FULL: 503,
  ERR_SANDBOX_BUSY: 503,
  ERR_ABORTED: 503,
  ERR_SANDBOX_ABORTED: 503,
  ERR_SANDBOX_CLOSED: 503,
  ERR_TIMEOUT: 504
}

export function httpStatusOf (code: string): number {
  return STATUS_BY_CODE[code] ?? 500
}

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
      hint: 'the local API is not for web pages; call it from the rhizome CLI or a script, which send no Origin header'
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
  const guard = new RequestGuard({ configuredHost: init.host, port: address.port, url, token: init.token, tokenPath: init.tokenPath })
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const refusal = guard.check(req)
    if (refusal !== undefined) {
      log.debug('api request refused', { code: refusal.code, method: req.method, path: req.url, host: req.headers.host, origin: req.headers.origin })
      // Refused before the body is read: close the connection rather than drain a body we refuse.
      req.resume()
      sendFailure(res, refusal, { connection: 'close' })
      return
    }
    route(init, req, res).catch((err: unknown) => {
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
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

async function route (init: HttpApiInit, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { node, blobService } = init
  const url = new URL(req.url ?? '/', 'http://localhost')
  const parts = url.pathname.split('/').filter(p => p !== '')
  const method = req.method ?? 'GET'

  if (method === 'GET' && url.pathname === '/v1/status') return sendJson(res, 200, await node.status())
  if (method === 'GET' && url.pathname === '/v1/peers') return sendJson(res, 200, { peers: node.peers() })

  if (method === 'GET' && url.pathname === '/v1/functions') return sendJson(res, 200, { functions: node.functions.list() })
  if (method === 'POST' && url.pathname === '/v1/functions') {
    const body = decodeCbor(await readBody(req, DEPLOY_BYTES_MAX))
    if (!(body.manifest instanceof Uint8Array) || !(body.code instanceof Uint8Array)) throw new InvalidInputError('deploy body must be dag-cbor { manifest: bytes, code: bytes, replicas: integer }', { hint: 'deploy with `rhizome deploy FILE`, which builds this body' })
    const replicas = body.replicas ?? 3
    if (typeof replicas !== 'number') throw new InvalidInputError('replicas must be an integer', { hint: 'e.g. replicas: 3' })
    return sendJson(res, 200, await node.functions.deploy(body.manifest, body.code, replicas))
  }
  if (method === 'POST' && url.pathname === '/v1/call') {
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
    const controller = new AbortController()
    // The CLI's Ctrl-C closes the connection: cancel the task wherever it runs.
    res.on('close', () => { if (!res.writableFinished) controller.abort() })
    // timeoutMs bounds the whole call, retries on other peers included, so the caller hears
    // back (504) within it and may wait just a little longer than it (the CLI does).
    const deadlineMs = (timeoutMs as number | undefined) ?? CALL_TIMEOUT_MS_DEFAULT
    const deadline = AbortSignal.timeout(deadlineMs)
    let result
    try {
      result = await node.call(fn, body.export, body.args, { on: body.on as string | undefined, timeoutMs: deadlineMs, signal: AbortSignal.any([controller.signal, deadline]) })
    } catch (err) {
      if (deadline.aborted && !controller.signal.aborted) {
        throw new TimeoutError(`the call did not finish within ${deadlineMs} ms`, {
          cause: err,
          hint: body.on === undefined ? 'the peers that tried it may be busy or unreachable; retry, or pass a longer timeoutMs' : 'the peer may be unreachable or busy; check `rhizome peers`, or pass a longer timeoutMs'
        })
      }
      throw err
    }
    return sendJson(res, 200, { ...result, value: toJson(result.value) })
  }

  if (parts[0] === 'v1' && parts[1] === 'blobs') {
    if (method === 'POST' && parts.length === 2) {
      const bytes = await readBody(req, node.blobs.blobBytesMax)
      const cid = await node.blobs.put(bytes)
      return sendJson(res, 200, { cid: cid.toString(), bytes: bytes.byteLength })
    }
    if (method === 'GET' && parts.length === 3) {
      const bytes = await node.blobs.get(parts[2])
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.byteLength })
      res.end(bytes)
      return
    }
    if (method === 'POST' && parts.length === 4 && parts[3] === 'fetch') {
      await readBody(req, REQUEST_BYTES_MAX)
      const cid = parseCid(parts[2])
      const from = url.searchParams.get('from')
      if (from === null) throw new InvalidInputError('fetch needs ?from=<peer id>', { hint: 'a peer id looks like 12D3KooW…; `rhizome peers` lists them' })
      let peer
      try {
        peer = peerIdFromString(from)
      } catch (err) {
        throw new InvalidInputError(`${JSON.stringify(from)} is not a peer id`, { cause: err, hint: 'a peer id looks like 12D3KooW…; `rhizome peers` lists them' })
      }
      const controller = new AbortController()
      res.on('close', () => { if (!res.writableFinished) controller.abort() })
      const bytes = await blobService.fetch(peer, cid, { signal: AbortSignal.any([controller.signal, AbortSignal.timeout(BLOB_FETCH_TIMEOUT_MS)]) })
      return sendJson(res, 200, { cid: cid.toString(), bytes: bytes.byteLength })
    }
  }
  await readBody(req, REQUEST_BYTES_MAX).catch(() => {})
  throw new NotFoundError(`no such API route: ${method} ${url.pathname}`, { hint: 'see docs/ARCHITECTURE.md for the API routes' })
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

/** dag-cbor data to JSON the way dag-json writes it: bytes as {"/":{"bytes":…}}, links as {"/":cid}. */
export function toJson (value: unknown): unknown {
  if (value instanceof Uint8Array) return { '/': { bytes: base64.baseEncode(value) } }
  const cid = CID.asCID(value)
  if (cid !== null) return { '/': cid.toString() }
  if (Array.isArray(value)) return value.map(toJson)
  if (typeof value === 'bigint') return value.toString()
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]))
  return value
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
  if (res.headersSent) { res.destroy(); return }
  const text = JSON.stringify(body)
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

function sendFailure (res: ServerResponse, failure: RhizomeError, headers: Record<string, string | number> = {}): void {
  const status = httpStatusOf(failure.code)
  const extra: Record<string, string | number> = { ...headers }
  if (status === 503) extra['retry-after'] = RETRY_AFTER_SECONDS
  if (status === 401) extra['www-authenticate'] = 'Bearer realm="rhizome"'
  if (status === 405) extra.allow = 'GET, POST'
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
    if (req.method !== 'GET' && req.method !== 'POST') return new MethodNotAllowedError(req.method ?? '')
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
