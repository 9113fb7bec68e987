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
 */
import { createServer } from 'node:http'
import { peerIdFromString } from '@libp2p/peer-id'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { base64 } from 'multiformats/bases/base64'
import { InvalidInputError, NotFoundError, RhizomeError, TooLargeError } from '../model/errors.ts'
import type { Logger } from '../model/log.ts'
import type { BlobService } from '../net/blob-service.ts'
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

const STATUS_BY_CODE: Record<string, number> = {
  ERR_INVALID_INPUT: 400,
  ERR_NOT_FOUND: 404,
  ERR_TOO_LARGE: 413,
  ERR_TIMEOUT: 504,
  ERR_PEER_UNAVAILABLE: 502,
  ERR_BLOB_CORRUPT: 500
}

export async function startHttpApi (init: HttpApiInit): Promise<HttpApi> {
  const { log } = init
  const server = createServer((req, res) => {
    route(init, req, res).catch((err: unknown) => {
      const failure = err instanceof RhizomeError
        ? err
        : new RhizomeError('ERR_INTERNAL', 'the peer failed to answer this request', { hint: 'see the peer\'s log for details' })
      if (!(err instanceof RhizomeError)) log.error('api handler failed', { error: String((err as Error)?.stack ?? err) })
      sendJson(res, STATUS_BY_CODE[failure.code] ?? 500, { error: failure.toData() })
    })
  })
  server.requestTimeout = REQUEST_TIMEOUT_MS
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(init.port, init.host, () => { server.off('error', reject); resolve() })
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('assertion failed: HTTP API has no TCP address')
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return {
    url: `http://${host}:${address.port}`,
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
    const result = await node.call(fn, body.export, body.args, { on: body.on as string | undefined, timeoutMs: timeoutMs as number | undefined, signal: controller.signal })
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
      const bytes = await blobService.fetch(peer, cid, { signal: AbortSignal.timeout(60_000) })
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

function sendJson (res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) { res.destroy(); return }
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}
