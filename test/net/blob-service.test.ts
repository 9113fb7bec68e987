/**
 * The serving side of the blob protocol, against a real blob store on disk: what one range request
 * costs in bytes hashed and bytes read (STYLE.md §21: a range request must not re-hash the whole
 * blob), and the caps on concurrent range reads; and the fetching side's retries of a busy peer,
 * between two real hosts.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import {
  BLOB_BUSY_RETRIES_MAX, BLOB_BUSY_RETRY_MS, BLOB_CHUNK_BYTES_MAX, BLOB_RANGE_READS_MAX, BLOB_RANGE_READS_PER_PEER_MAX,
  BlobService, blobProtocol, rangeReadBudget, parseRequest, serveRange
} from '../../src/net/blob-service.ts'
import { createHost } from '../../src/net/host.ts'
import { PeerBusyError, RpcService } from '../../src/net/rpc.ts'
import { createLogger } from '../../src/node/logger.ts'
import { createBlobStore } from '../../src/store/index.ts'
import type { Host } from '../../src/net/host.ts'
import type { BlobStore } from '../../src/store/index.ts'

const MiB = 1024 * 1024

/** Deterministic, incompressible-enough bytes: a blob whose every chunk differs. */
function pattern (bytes: number): Uint8Array {
  const out = new Uint8Array(bytes)
  let x = 0x9e3779b9
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

describe('serving blob ranges', () => {
  let root: string
  let store: BlobStore

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'rhizome-blob-service-'))
    store = createBlobStore({ dir: join(root, 'blobs') })
  })
  after(async () => { await rm(root, { recursive: true, force: true }) })

  it('serves every range of a 16 MiB blob hashing it once and reading each byte about once', async () => {
    const bytes = pattern(16 * MiB)
    const cid = await store.put(bytes)
    const hashedBefore = store.counters.bytesHashed
    const readBefore = store.counters.bytesRead
    const chunks: Uint8Array[] = []
    for (let offset = 0; offset < bytes.length; offset += BLOB_CHUNK_BYTES_MAX) {
      const reply = await serveRange(store, { cid, offset, length: BLOB_CHUNK_BYTES_MAX })
      assert.equal(reply.total, bytes.length)
      assert.equal(reply.bytes.byteLength, BLOB_CHUNK_BYTES_MAX)
      chunks.push(reply.bytes.slice())
    }
    assert.deepEqual(Buffer.concat(chunks), Buffer.from(bytes))
    const hashed = store.counters.bytesHashed - hashedBefore
    const read = store.counters.bytesRead - readBefore
    // Once to verify the file (16 MiB), then nothing: reading whole blobs per range hashed 256 MiB.
    assert.equal(hashed, 16 * MiB, `hashed ${hashed} bytes for 16 ranges`)
    // 16 MiB to verify plus 16 MiB of ranges.
    assert.equal(read, 32 * MiB, `read ${read} bytes for 16 ranges`)

    // A second pass costs only the ranges: the verification is remembered.
    for (let offset = 0; offset < bytes.length; offset += BLOB_CHUNK_BYTES_MAX) await serveRange(store, { cid, offset, length: BLOB_CHUNK_BYTES_MAX })
    assert.equal(store.counters.bytesHashed - hashedBefore, 16 * MiB)
    assert.equal(store.counters.bytesRead - readBefore, 48 * MiB)
  })
})

describe('range reads: a PeerBudget per peer and in total', () => {
  const isBusy = (err: unknown): boolean => {
    assert.equal((err as Error).name, 'PeerBusyError')
    assert.equal((err as { code: string }).code, 'ERR_PEER_BUSY')
    assert.equal((err as { retryable: boolean }).retryable, true)
    return true
  }

  it(`lets one peer run ${BLOB_RANGE_READS_PER_PEER_MAX} range reads at once and refuses one more as busy`, () => {
    const limiter = rangeReadBudget()
    assert.equal(limiter.perPeerMax, BLOB_RANGE_READS_PER_PEER_MAX)
    const releases = Array.from({ length: BLOB_RANGE_READS_PER_PEER_MAX }, () => limiter.tryAcquire('a'))
    assert.throws(() => limiter.tryAcquire('a'), isBusy)
    // Another peer is not held back by the first one's reads.
    const other = limiter.tryAcquire('b')
    assert.equal(limiter.held(), BLOB_RANGE_READS_PER_PEER_MAX + 1)
    releases[0]()
    releases[0]() // giving a slot back twice frees it once
    assert.equal(limiter.held(), BLOB_RANGE_READS_PER_PEER_MAX)
    const again = limiter.tryAcquire('a')
    assert.throws(() => limiter.tryAcquire('a'), isBusy)
    for (const release of [...releases.slice(1), other, again]) release()
    assert.equal(limiter.held(), 0)
  })

  it(`runs ${BLOB_RANGE_READS_MAX} range reads at once over all peers and refuses one more as busy`, () => {
    const limiter = rangeReadBudget()
    assert.equal(limiter.totalMax, BLOB_RANGE_READS_MAX)
    const releases: Array<() => void> = []
    for (let i = 0; i < BLOB_RANGE_READS_MAX; i++) releases.push(limiter.tryAcquire(`peer-${i % (BLOB_RANGE_READS_MAX / BLOB_RANGE_READS_PER_PEER_MAX)}`))
    assert.throws(() => limiter.tryAcquire('a-new-peer'), isBusy)
    releases.pop()?.()
    limiter.tryAcquire('a-new-peer')
    assert.equal(limiter.held(), BLOB_RANGE_READS_MAX)
  })
})

describe('fetching from a busy peer', { timeout: 60_000 }, () => {
  // Two real libp2p hosts in this process: A fetches with BlobService; B answers the blob protocol
  // with PeerBusyError for its first `busyAnswers` requests, then serves the range from its store.
  let root: string
  let a: Host
  let b: Host
  let rpcA: RpcService
  let rpcB: RpcService
  let fetcher: BlobService
  let storeB: BlobStore
  let requests = 0
  let busyAnswers = 0
  const NETWORK_ID = 'blob-busy-test'
  const log = createLogger('rhizome:test', { level: 'silent', write: () => {} })
  const host = async (): Promise<Host> => await createHost({
    privateKey: await generateKeyPair('Ed25519'), networkId: NETWORK_ID, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false, isBlocked: () => false
  })

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'rhizome-blob-busy-'))
    a = await host()
    b = await host()
    rpcA = new RpcService({ libp2p: a, log, onViolation: () => {} })
    rpcB = new RpcService({ libp2p: b, log, onViolation: () => {} })
    storeB = createBlobStore({ dir: join(root, 'b') })
    fetcher = new BlobService({ rpc: rpcA, blobs: createBlobStore({ dir: join(root, 'a') }) }, { networkId: NETWORK_ID })
    await fetcher.start()
    await rpcB.handle({
      protocol: blobProtocol(NETWORK_ID),
      frameBytesMax: BLOB_CHUNK_BYTES_MAX + 1024,
      inflightMax: 4,
      handler: async (body) => {
        requests++
        if (requests <= busyAnswers) throw new PeerBusyError('busy, for the test')
        return await serveRange(storeB, parseRequest(body))
      }
    })
    await a.peerStore.merge(b.peerId, { multiaddrs: b.getMultiaddrs() })
  })
  after(async () => {
    await rpcA?.stop()
    await rpcB?.stop()
    await a?.stop()
    await b?.stop()
    await rm(root, { recursive: true, force: true })
  })

  it(`asks again ${BLOB_BUSY_RETRIES_MAX} times; busy once more, the fetch fails with PeerBusyError`, async () => {
    const cid = await storeB.put(pattern(1000))
    requests = 0
    busyAnswers = BLOB_BUSY_RETRIES_MAX
    assert.equal((await fetcher.fetch(b.peerId, cid)).byteLength, 1000)
    assert.equal(requests, BLOB_BUSY_RETRIES_MAX + 1, 'the first ask and every retry reached the peer')

    const other = await storeB.put(pattern(2000))
    requests = 0
    busyAnswers = BLOB_BUSY_RETRIES_MAX + 1
    await assert.rejects(fetcher.fetch(b.peerId, other), (err: Error) => {
      assert.equal(err.name, 'PeerBusyError')
      assert.equal((err as { retryable?: boolean }).retryable, true)
      return true
    })
    assert.equal(requests, BLOB_BUSY_RETRIES_MAX + 1, 'no ask past the retry limit')
    assert.equal(BLOB_BUSY_RETRY_MS, 100)
  })
})
