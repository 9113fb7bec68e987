/**
 * Peers joined by in-memory streams instead of sockets, for unit tests of the services in
 * src/net: each peer gets the narrow slice of libp2p that RpcService uses (`handle`, `unhandle`,
 * `dialProtocol`), and a dial hands the callee one end of a real libp2p stream pair
 * (`streamPair` from @libp2p/utils: the same Stream class, framing and back-pressure, no network).
 */
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { BlobHashMismatchError } from '../../src/store/index.ts'
import type { BlobServiceComponents } from '../../src/net/blob-service.ts'
import type { TaskServiceComponents } from '../../src/net/task-service.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { streamPair } from '@libp2p/utils'
import { createLogger } from '../../src/node/logger.ts'
import { RpcService } from '../../src/net/rpc.ts'
import type { RpcHost } from '../../src/net/rpc.ts'
import type { Connection, PeerId, PrivateKey, Stream, StreamHandler } from '@libp2p/interface'

export interface MemoryPeer {
  peerId: PeerId
  privateKey: PrivateKey
  libp2p: RpcHost
  /** Streams this peer dialed, for tests that cut them. */
  dialed: Stream[]
  /** Dials that wait here until released or aborted (a peer that does not answer). */
  stallDials: boolean
  /** Bytes that arrived at this peer on any stream, counted as the other end sends them. */
  bytesReceived: number
}

export interface Violation { peer: string, protocol: string, error: Error }

export class MemoryNet {
  private readonly peers = new Map<string, { peer: MemoryPeer, handlers: Map<string, StreamHandler> }>()

  async peer (): Promise<MemoryPeer> {
    const privateKey = await generateKeyPair('Ed25519')
    const peerId = peerIdFromPrivateKey(privateKey)
    const handlers = new Map<string, StreamHandler>()
    const peer: MemoryPeer = { peerId, privateKey, dialed: [], stallDials: false, bytesReceived: 0, libp2p: undefined as unknown as RpcHost }
    const libp2p = {
      handle: async (protocol: string | string[], handler: StreamHandler) => {
        for (const p of [protocol].flat()) handlers.set(p, handler)
      },
      unhandle: async (protocol: string | string[]) => {
        for (const p of [protocol].flat()) handlers.delete(p)
      },
      dialProtocol: async (target: PeerId, protocol: string | string[], options: { signal?: AbortSignal } = {}) => {
        if (peer.stallDials) await untilAborted(options.signal)
        const remote = this.peers.get(target.toString())
        const name = [protocol].flat()[0]
        const handler = remote?.handlers.get(name)
        if (remote === undefined || handler === undefined) throw new Error(`no peer ${target.toString()} serving ${name} in this memory net`)
        const [outbound, inbound] = await streamPair({ protocol: name })
        countReceived(outbound, remote.peer)
        countReceived(inbound, peer)
        peer.dialed.push(outbound)
        void handler(inbound, { remotePeer: peerId } as unknown as Connection)
        return outbound
      }
    }
    peer.libp2p = libp2p as unknown as RpcHost
    this.peers.set(peerId.toString(), { peer, handlers })
    return peer
  }

  /** An RpcService on `peer` whose violations land in `violations`. */
  rpc (peer: MemoryPeer, violations: Violation[] = [], init: ConstructorParameters<typeof RpcService>[1] = {}): RpcService {
    const rpc = new RpcService({
      libp2p: peer.libp2p,
      log: createLogger('memory-net', { level: 'silent' }),
      onViolation: (remote, protocol, error) => { violations.push({ peer: remote.toString(), protocol, error }) }
    }, init)
    rpc.start()
    return rpc
  }
}

/** Count what `sender` sends as bytes received by `receiver` (a 'message' listener would steal the data from the reader). */
function countReceived (sender: Stream, receiver: MemoryPeer): void {
  const send = sender.send.bind(sender)
  sender.send = (data) => {
    receiver.bytesReceived += data.byteLength
    return send(data)
  }
}

async function untilAborted (signal: AbortSignal | undefined): Promise<never> {
  return await new Promise((_resolve, reject) => {
    if (signal === undefined) return // never settles: only a test with a signal stalls dials
    if (signal.aborted) { reject(signal.reason); return }
    signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
  })
}

/** Wait until `condition()` holds, polling; fails after `timeoutMs` naming `what`. */
export async function waitFor (what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

/** A promise and the functions that settle it, for handlers a test releases by hand. */
export function deferred<T = void> (): { promise: Promise<T>, resolve: (value: T) => void, reject: (err: Error) => void } {
  let resolve!: (value: T) => void
  let reject!: (err: Error) => void
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

/** The raw multicodec: blobs put without a codec. */
const RAW_CODEC = 0x55

/** The store operations both services use, over a Map; `gate` (if set) holds every range read until it settles. */
export function memoryBlobStore (): TaskServiceComponents['blobs'] & BlobServiceComponents['blobs'] & { map: Map<string, Uint8Array>, rangeReads: number, gate?: Promise<void> } {
  const blobs = {
    map: new Map<string, Uint8Array>(),
    rangeReads: 0,
    gate: undefined as Promise<void> | undefined,
    blobBytesMax: 64 * 1024 * 1024,
    async put (bytes: Uint8Array, codec = RAW_CODEC) {
      const cid = CID.create(1, codec, await sha256.digest(bytes))
      blobs.map.set(cid.toString(), bytes)
      return cid
    },
    // In memory, a cached put is a put.
    async putCached (bytes: Uint8Array, codec = RAW_CODEC) { return await blobs.put(bytes, codec) },
    async has (cid: CID | string) { return blobs.map.has(cid.toString()) },
    async get (cid: CID | string) {
      const bytes = blobs.map.get(cid.toString())
      if (bytes === undefined) throw new Error('not found')
      return bytes
    },
    async readRange (cid: CID | string, offset: number, length: number, options: { signal?: AbortSignal } = {}) {
      blobs.rangeReads++
      if (blobs.gate !== undefined) {
        await Promise.race([blobs.gate, new Promise((_resolve, reject) => options.signal?.addEventListener('abort', () => reject(options.signal?.reason), { once: true }))])
      }
      const bytes = blobs.map.get(cid.toString())
      if (bytes === undefined) throw new Error('not found')
      return { total: bytes.byteLength, bytes: bytes.subarray(offset, offset + length) }
    },
    async putVerified (cid: CID | string, bytes: Uint8Array) {
      const parsed = typeof cid === 'string' ? CID.parse(cid) : cid
      const actual = CID.create(1, parsed.code, await sha256.digest(bytes))
      if (!actual.equals(parsed)) throw new BlobHashMismatchError(parsed.toString(), actual.toString())
      blobs.map.set(parsed.toString(), bytes)
      return parsed
    }
  }
  return blobs
}
