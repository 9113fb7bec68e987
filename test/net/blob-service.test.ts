/**
 * The serving side of the blob protocol, against a real blob store on disk: what one range request
 * costs in bytes hashed and bytes read (STYLE.md §21: a range request must not re-hash the whole
 * blob), and the caps on concurrent range reads.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BLOB_CHUNK_BYTES_MAX, BLOB_RANGE_READS_MAX, BLOB_RANGE_READS_PER_PEER_MAX, RangeReadLimiter, serveRange } from '../../src/net/blob-service.ts'
import { createBlobStore } from '../../src/store/index.ts'
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

describe('RangeReadLimiter', () => {
  const isBusy = (err: unknown): boolean => {
    assert.equal((err as Error).name, 'PeerBusyError')
    assert.equal((err as { code: string }).code, 'ERR_PEER_BUSY')
    assert.equal((err as { retryable: boolean }).retryable, true)
    return true
  }

  it(`lets one peer run ${BLOB_RANGE_READS_PER_PEER_MAX} range reads at once and refuses one more as busy`, () => {
    const limiter = new RangeReadLimiter()
    assert.equal(limiter.perPeerMax, BLOB_RANGE_READS_PER_PEER_MAX)
    const releases = Array.from({ length: BLOB_RANGE_READS_PER_PEER_MAX }, () => limiter.acquire('a'))
    assert.throws(() => limiter.acquire('a'), isBusy)
    // Another peer is not held back by the first one's reads.
    const other = limiter.acquire('b')
    assert.equal(limiter.running, BLOB_RANGE_READS_PER_PEER_MAX + 1)
    releases[0]()
    releases[0]() // giving a slot back twice frees it once
    assert.equal(limiter.running, BLOB_RANGE_READS_PER_PEER_MAX)
    const again = limiter.acquire('a')
    assert.throws(() => limiter.acquire('a'), isBusy)
    for (const release of [...releases.slice(1), other, again]) release()
    assert.equal(limiter.running, 0)
  })

  it(`runs ${BLOB_RANGE_READS_MAX} range reads at once over all peers and refuses one more as busy`, () => {
    const limiter = new RangeReadLimiter()
    assert.equal(limiter.totalMax, BLOB_RANGE_READS_MAX)
    const releases: Array<() => void> = []
    for (let i = 0; i < BLOB_RANGE_READS_MAX; i++) releases.push(limiter.acquire(`peer-${i % (BLOB_RANGE_READS_MAX / BLOB_RANGE_READS_PER_PEER_MAX)}`))
    assert.throws(() => limiter.acquire('a-new-peer'), isBusy)
    releases.pop()?.()
    limiter.acquire('a-new-peer')
    assert.equal(limiter.running, BLOB_RANGE_READS_MAX)
  })
})
