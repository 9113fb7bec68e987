/**
 * Blob exchange between peers: `/rhizome/<networkId>/blob/1.0.0`.
 *
 * A caller asks for a byte range of a blob by CID — `{ cid, offset, length }` — and gets
 * `{ total, bytes }`. Ranges keep every frame under `BLOB_CHUNK_BYTES_MAX` however large the
 * blob, so neither side holds more than one chunk of a peer's data in a frame. The caller hashes
 * the assembled bytes against the CID before storing them (BlobStore.putVerified): a peer that
 * serves wrong bytes is caught, and nothing it sent is kept.
 */
import { CID } from 'multiformats/cid'
import { InvalidInputError, ProtocolViolationError, TooLargeError } from '../model/errors.ts'
import { isRecord } from '../wire/rpc.ts'
import type { BlobStore } from '../store/index.ts'
import type { RpcService } from './rpc.ts'
import type { PeerId } from '@libp2p/interface'

/** 1 MiB chunks: a round trip per MiB is cheap next to the transfer, and frames stay small. */
export const BLOB_CHUNK_BYTES_MAX = 1024 * 1024
const BLOB_FRAME_BYTES_MAX = BLOB_CHUNK_BYTES_MAX + 1024
const CID_CHARS_MAX = 100

export function blobProtocol (networkId: string): string {
  return `/rhizome/${networkId}/blob/1.0.0`
}

export interface BlobServiceInit {
  rpc: RpcService
  blobs: BlobStore
  networkId: string
}

export class BlobService {
  private readonly init: BlobServiceInit
  readonly protocol: string

  constructor (init: BlobServiceInit) {
    this.init = init
    this.protocol = blobProtocol(init.networkId)
  }

  async start (): Promise<void> {
    await this.init.rpc.handle({
      protocol: this.protocol,
      frameBytesMax: BLOB_FRAME_BYTES_MAX,
      inflightMax: 4,
      handler: async (body, { signal }) => {
        const request = parseRequest(body)
        const bytes = await this.init.blobs.get(request.cid, { signal })
        const start = Math.min(request.offset, bytes.byteLength)
        return { total: bytes.byteLength, bytes: bytes.subarray(start, start + request.length) }
      }
    })
  }

  /** Fetch a blob from `peerId`, verify it against its CID and store it locally. */
  async fetch (peerId: PeerId, cid: CID, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    const { blobs, rpc } = this.init
    const parts: Uint8Array[] = []
    let offset = 0
    let total: number | undefined
    do {
      const reply = await rpc.request(peerId, this.protocol, { cid: cid.toString(), offset, length: BLOB_CHUNK_BYTES_MAX }, options)
      const chunk = parseReply(reply, total)
      if (chunk.total > blobs.blobBytesMax) throw new TooLargeError(`blob ${cid.toString()}`, chunk.total, blobs.blobBytesMax, { hint: 'this peer does not take blobs that large (docs/LIMITS.md); split the data into smaller blobs' })
      total = chunk.total
      if (chunk.bytes.byteLength === 0 && offset < total) throw new ProtocolViolationError('blob peer sent an empty chunk before the end')
      parts.push(chunk.bytes)
      offset += chunk.bytes.byteLength
      if (offset > total) throw new ProtocolViolationError('blob peer sent more bytes than the blob has')
    } while (offset < total)
    const bytes = concat(parts, total)
    await blobs.putVerified(cid, bytes, options)
    return bytes
  }
}

function parseRequest (body: unknown): { cid: CID, offset: number, length: number } {
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
    throw new InvalidInputError(`blob request cid ${JSON.stringify(cid)} is not a CID`, { cause: err, hint: 'a CID looks like bafkrei…' })
  }
  return { cid: parsed, offset, length }
}

function parseReply (reply: unknown, totalSoFar: number | undefined): { total: number, bytes: Uint8Array } {
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
