/**
 * Blob exchange between peers: `/rhizome/<networkId>/blob/1.0.0`.
 *
 * A caller asks for a byte range of a blob by CID — `{ cid, offset, length }` — and gets
 * `{ total, bytes }`. Ranges keep every frame under `BLOB_CHUNK_BYTES_MAX` however large the
 * blob, so neither side holds more than one chunk of a peer's data in a frame. The caller hashes
 * the assembled bytes against the CID before storing them (BlobStore.putVerified): a peer that
 * serves wrong bytes is caught, and nothing it sent is kept.
 *
 * Serving a range costs one bounded read at its offset (BlobStore.readRange verifies the file once
 * and remembers it), never a read of the whole blob. Range reads running at once are capped per
 * peer and in total; a request past a cap is answered at once with the retryable PeerBusyError, and
 * `fetch` waits a little and asks again. Fetching still assembles the whole blob in memory to hash
 * it before storing (bounded by blobBytesMax, 64 MiB): that is local work the caller asked for.
 */
import { CID } from 'multiformats/cid'
import { AbortedError, ProtocolViolationError, TimeoutError, TooLargeError } from '../model/errors.ts'
import { CID_CHARS_MAX } from '../model/limits.ts'
import { blobRangeBytesMax } from '../store/index.ts'
import { isRecord } from '../wire/rpc.ts'
import { Lifecycle } from './lifecycle.ts'
import { REQUEST_TIMEOUT_MS_DEFAULT } from './rpc.ts'
import { PeerBudget } from './slots.ts'
import type { BlobStore } from '../store/index.ts'
import type { RpcService } from './rpc.ts'
import type { PeerId } from '@libp2p/interface'

/**
 * 1 MiB chunks: a round trip per MiB is cheap next to the transfer, and frames stay small. It is
 * the store's largest range read (`blobRangeBytesMax`), so one definition serves both.
 */
export const BLOB_CHUNK_BYTES_MAX = blobRangeBytesMax
/**
 * Range reads one peer may have running at once, over all its streams and connections. An honest
 * fetch has one in flight at a time; 4 lets a peer fetch a few blobs at once. Without it, 32
 * streams × 4 requests per stream from one connection could all be reading at once.
 */
export const BLOB_RANGE_READS_PER_PEER_MAX = 4
/**
 * Range reads running at once for all peers together. Each holds a buffer of up to one chunk and
 * its encoded reply (a copy of it), about 2 MiB, so 16 bound that to ~32 MiB however many peers
 * (or peer ids) ask; reads are disk-bound, so more would only wait on the disk.
 */
export const BLOB_RANGE_READS_MAX = 16
/**
 * Times `fetch` asks again for a range the serving peer refused as busy, waiting
 * `BLOB_BUSY_RETRY_MS` × 2^attempt (0.1, 0.2, 0.4, 0.8, 1.6 s: ~3 s in all) — long enough to
 * outlast a burst of other peers' reads, short enough to fail over to another peer soon.
 */
export const BLOB_BUSY_RETRIES_MAX = 5
export const BLOB_BUSY_RETRY_MS = 100
const BLOB_FRAME_BYTES_MAX = BLOB_CHUNK_BYTES_MAX + 1024

export function blobProtocol (networkId: string): string {
  return `/rhizome/${networkId}/blob/1.0.0`
}

/**
 * How long a whole fetch may take unless the caller says otherwise: the largest blob
 * (`blobBytesMaxDefault`, 64 MiB) at ~1 Mbit/s, in 1 MiB ranges of at most 30 s each.
 */
export const BLOB_FETCH_TIMEOUT_MS_DEFAULT = 600_000

/** What the blob service needs: the RPC layer and the three store operations it uses. */
export interface BlobServiceComponents {
  rpc: Pick<RpcService, 'handle' | 'unhandle' | 'request'>
  blobs: Pick<BlobStore, 'readRange' | 'putVerified' | 'blobBytesMax'>
}

export interface BlobServiceInit {
  networkId: string
  /** Default BLOB_FETCH_TIMEOUT_MS_DEFAULT. */
  fetchTimeoutMs?: number
  /** Range reads served at once per peer and in total; default BLOB_RANGE_READS_PER_PEER_MAX / BLOB_RANGE_READS_MAX. */
  rangeReadsPerPeerMax?: number
  rangeReadsMax?: number
}

/**
 * Range reads run at once are capped per peer and in total (a `PeerBudget`, the same primitive as
 * code and input fetches): a request past either cap is refused as busy at once — nothing waits,
 * so nothing queues without bound.
 */
export function rangeReadBudget (perPeerMax = BLOB_RANGE_READS_PER_PEER_MAX, totalMax = BLOB_RANGE_READS_MAX): PeerBudget {
  return new PeerBudget({ perPeerMax, totalMax, what: 'blob range reads' })
}

export class BlobService {
  private readonly components: BlobServiceComponents
  private readonly reads: PeerBudget
  private readonly fetchTimeoutMs: number
  private readonly lifecycle = new Lifecycle('the blob service')
  readonly protocol: string

  constructor (components: BlobServiceComponents, init: BlobServiceInit) {
    this.components = components
    this.protocol = blobProtocol(init.networkId)
    this.fetchTimeoutMs = init.fetchTimeoutMs ?? BLOB_FETCH_TIMEOUT_MS_DEFAULT
    this.reads = rangeReadBudget(init.rangeReadsPerPeerMax, init.rangeReadsMax)
  }

  /** Range reads being served now. */
  get readsRunning (): number {
    return this.reads.held()
  }

  async start (): Promise<void> {
    this.lifecycle.start()
    await this.components.rpc.handle({
      protocol: this.protocol,
      frameBytesMax: BLOB_FRAME_BYTES_MAX,
      inflightMax: 4,
      handler: async (body, { peerId, signal }) => {
        const request = parseRequest(body)
        const release = this.reads.tryAcquire(peerId.toString())
        // One range is one bounded read: the request's own timeout bounds it on the caller's side.
        const operation = this.lifecycle.operation({ signal, timeoutMs: REQUEST_TIMEOUT_MS_DEFAULT })
        try {
          return await serveRange(this.components.blobs, request, { signal: operation.signal })
        } finally {
          operation.release()
          release()
        }
      }
    })
  }

  /** Stop serving, and abort fetches and range reads in flight. */
  async stop (): Promise<void> {
    this.lifecycle.stop()
    await this.components.rpc.unhandle(this.protocol)
  }

  /**
   * Fetch a blob from `peerId`, verify it against its CID and store it locally. Ends with
   * AbortedError on the caller's signal or stop(), TimeoutError past `fetchTimeoutMs`.
   */
  async fetch (peerId: PeerId, cid: CID, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    if (this.lifecycle.stopping) throw this.lifecycle.stoppedError()
    const operation = this.lifecycle.operation({ signal: options.signal, timeoutMs: this.fetchTimeoutMs })
    try {
      return await this.fetchUnder(peerId, cid, operation.signal)
    } catch (err) {
      if (operation.reason === 'timeout') throw new TimeoutError(`blob ${cid.toString()} did not arrive from ${peerId.toString()} within ${this.fetchTimeoutMs} ms`, { cause: err })
      if (operation.reason === 'stopped') throw this.lifecycle.stoppedError()
      throw err
    } finally {
      operation.release()
    }
  }

  private async fetchUnder (peerId: PeerId, cid: CID, signal: AbortSignal): Promise<Uint8Array> {
    const { blobs } = this.components
    const parts: Uint8Array[] = []
    let offset = 0
    let total: number | undefined
    do {
      const reply = await this.requestRange(peerId, cid, offset, signal)
      const chunk = parseReply(reply, total)
      if (chunk.total > blobs.blobBytesMax) throw new TooLargeError(`blob ${cid.toString()}`, chunk.total, blobs.blobBytesMax, { hint: 'this peer does not take blobs that large (docs/LIMITS.md); split the data into smaller blobs' })
      total = chunk.total
      if (chunk.bytes.byteLength === 0 && offset < total) throw new ProtocolViolationError('blob peer sent an empty chunk before the end')
      parts.push(chunk.bytes)
      offset += chunk.bytes.byteLength
      if (offset > total) throw new ProtocolViolationError('blob peer sent more bytes than the blob has')
    } while (offset < total)
    const bytes = concat(parts, total)
    await blobs.putVerified(cid, bytes, { signal })
    return bytes
  }

  /** One range, asked again after a pause while the serving peer says it is busy. */
  private async requestRange (peerId: PeerId, cid: CID, offset: number, signal: AbortSignal): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.components.rpc.request(peerId, this.protocol, { cid: cid.toString(), offset, length: BLOB_CHUNK_BYTES_MAX }, { signal })
      } catch (err) {
        if ((err as Error).name !== 'PeerBusyError' || attempt >= BLOB_BUSY_RETRIES_MAX) throw err
        await sleep(BLOB_BUSY_RETRY_MS * 2 ** attempt, signal)
      }
    }
  }
}

async function sleep (ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted === true) throw new AbortedError()
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => { clearTimeout(timer); reject(new AbortedError()) }
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Answer one range request from the local store. */
export async function serveRange (blobs: Pick<BlobStore, 'readRange'>, request: BlobRangeRequest, options: { signal?: AbortSignal } = {}): Promise<BlobRangeReply> {
  return await blobs.readRange(request.cid, request.offset, request.length, options)
}

export interface BlobRangeRequest { cid: CID, offset: number, length: number }
export interface BlobRangeReply { total: number, bytes: Uint8Array }

export function parseRequest (body: unknown): { cid: CID, offset: number, length: number } {
  if (!isRecord(body)) throw new ProtocolViolationError('blob request must be a map')
  const { cid, offset, length } = body
  if (typeof cid !== 'string' || cid.length > CID_CHARS_MAX) throw new ProtocolViolationError(`blob request cid must be a string of at most ${CID_CHARS_MAX} characters`)
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw new ProtocolViolationError('blob request offset must be a non-negative integer')
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 1 || length > BLOB_CHUNK_BYTES_MAX) {
    throw new ProtocolViolationError(`blob request length must be an integer in 1..${BLOB_CHUNK_BYTES_MAX}`)
  }
  let parsed: CID
  try {
    parsed = CID.parse(cid)
  } catch (err) {
    throw new ProtocolViolationError(`blob request cid ${JSON.stringify(cid)} is not a CID`, { cause: err })
  }
  return { cid: parsed, offset, length }
}

export function parseReply (reply: unknown, totalSoFar: number | undefined): { total: number, bytes: Uint8Array } {
  if (!isRecord(reply)) throw new ProtocolViolationError('blob reply must be a map')
  const { total, bytes } = reply
  if (typeof total !== 'number' || !Number.isSafeInteger(total) || total < 0) throw new ProtocolViolationError('blob reply total must be a non-negative integer')
  if (totalSoFar !== undefined && total !== totalSoFar) throw new ProtocolViolationError('blob reply total changed between chunks')
  if (!(bytes instanceof Uint8Array) || bytes.byteLength > BLOB_CHUNK_BYTES_MAX) throw new ProtocolViolationError('blob reply bytes must be at most one chunk')
  return { total, bytes }
}

function concat (parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]
  const out = new Uint8Array(total)
  let at = 0
  for (const part of parts) { out.set(part, at); at += part.byteLength }
  return out
}
