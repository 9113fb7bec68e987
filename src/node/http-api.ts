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
 */
import { createServer } from 'node:http'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
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
      if (from === null) throw new InvalidInputError('fetch needs ?from=<peer id>')
      let peer
      try {
        peer = peerIdFromString(from)
      } catch (err) {
        throw new InvalidInputError(`${JSON.stringify(from)} is not a peer id`, { cause: err })
      }
      const bytes = await blobService.fetch(peer, cid, { signal: AbortSignal.timeout(60_000) })
      return sendJson(res, 200, { cid: cid.toString(), bytes: bytes.byteLength })
    }
  }
  await readBody(req, REQUEST_BYTES_MAX).catch(() => {})
  throw new NotFoundError(`no such API route: ${method} ${url.pathname}`, { hint: 'see docs/ARCHITECTURE.md for the API routes' })
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
    throw new TooLargeError('request body', declared, bytesMax)
  }
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.byteLength
    if (total > bytesMax) {
      req.resume()
      throw new TooLargeError('request body', total, bytesMax)
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
