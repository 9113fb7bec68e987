/**
 * BlobService with stub components: an in-memory blob map instead of the store, RpcService over
 * in-memory stream pairs. Fetching in ranges, the per-peer read cap, deadlines and stop().
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { BLOB_CHUNK_BYTES_MAX, BlobService } from '../../src/net/blob-service.ts'
import { MemoryNet, deferred, memoryBlobStore as memoryBlobs, waitFor } from '../helpers/memory-net.ts'
import type { MemoryPeer } from '../helpers/memory-net.ts'

const RAW = 0x55


async function rawCid (bytes: Uint8Array): Promise<CID> {
  return CID.create(1, RAW, await sha256.digest(bytes))
}

async function pair (init: { fetchTimeoutMs?: number, rangeReadsPerPeerMax?: number } = {}): Promise<{ net: MemoryNet, a: MemoryPeer, b: MemoryPeer, fetcher: BlobService, server: BlobService, serverBlobs: ReturnType<typeof memoryBlobs>, stop: () => Promise<void> }> {
  const net = new MemoryNet()
  const a = await net.peer()
  const b = await net.peer()
  const rpcA = net.rpc(a)
  const rpcB = net.rpc(b)
  const serverBlobs = memoryBlobs()
  const fetcher = new BlobService({ rpc: rpcA, blobs: memoryBlobs() }, { networkId: 'memory', ...init })
  const server = new BlobService({ rpc: rpcB, blobs: serverBlobs }, { networkId: 'memory', ...init })
  await fetcher.start()
  await server.start()
  return {
    net, a, b, fetcher, server, serverBlobs,
    stop: async () => { await fetcher.stop(); await server.stop(); await rpcA.stop(); await rpcB.stop() }
  }
}

describe('BlobService with stub components', () => {
  test('fetches a blob of two and a half chunks in three ranges and verifies it', async () => {
    const { fetcher, server, serverBlobs, b, stop } = await pair()
    try {
      const bytes = new Uint8Array(BLOB_CHUNK_BYTES_MAX * 2.5).map((_, i) => i * 7)
      const cid = await rawCid(bytes)
      serverBlobs.map.set(cid.toString(), bytes)
      const got = await fetcher.fetch(b.peerId, cid)
      assert.deepEqual(got, bytes)
      assert.equal(serverBlobs.rangeReads, 3)
      assert.equal(server.readsRunning, 0)
    } finally {
      await stop()
    }
  })

  test('bytes that do not hash to the CID are not kept', async () => {
    const { fetcher, serverBlobs, b, stop } = await pair()
    try {
      const cid = await rawCid(Uint8Array.of(1, 2, 3))
      serverBlobs.map.set(cid.toString(), Uint8Array.of(6, 6, 6))
      await assert.rejects(fetcher.fetch(b.peerId, cid), { name: 'BlobHashMismatchError' })
    } finally {
      await stop()
    }
  })

  test('one range read past the per-peer cap is refused with PeerBusyError, the reads in flight finish', async () => {
    const { net, a, b, serverBlobs, server, stop } = await pair({ rangeReadsPerPeerMax: 1 })
    const gate = deferred()
    serverBlobs.gate = gate.promise
    try {
      const cid = await rawCid(Uint8Array.of(9))
      serverBlobs.map.set(cid.toString(), Uint8Array.of(9))
      // Ask over raw RPC: BlobService.fetch would wait and ask again.
      const rpc = net.rpc(a)
      await rpc.handle({ protocol: server.protocol, frameBytesMax: BLOB_CHUNK_BYTES_MAX + 1024, inflightMax: 4, handler: async () => null })
      const first = rpc.request(b.peerId, server.protocol, { cid: cid.toString(), offset: 0, length: 1 })
      await waitFor('the first read to run', () => server.readsRunning === 1)
      await assert.rejects(rpc.request(b.peerId, server.protocol, { cid: cid.toString(), offset: 0, length: 1 }), { name: 'PeerBusyError' })
      gate.resolve()
      assert.equal(((await first) as { total: number }).total, 1)
      await rpc.stop()
    } finally {
      gate.resolve()
      await stop()
    }
  })

  test('stop() aborts a fetch in flight with AbortedError, and the server\'s stop() aborts its read', async () => {
    const { fetcher, server, serverBlobs, b, stop } = await pair()
    serverBlobs.gate = new Promise(() => {}) // reads never finish on their own
    try {
      const cid = await rawCid(Uint8Array.of(1))
      serverBlobs.map.set(cid.toString(), Uint8Array.of(1))
      const pending = fetcher.fetch(b.peerId, cid)
      await waitFor('the read to run', () => server.readsRunning === 1)
      await fetcher.stop()
      await assert.rejects(pending, { name: 'AbortedError' })
      await assert.rejects(fetcher.fetch(b.peerId, cid), { name: 'AbortedError' })
      await server.stop()
      await waitFor('the read to be aborted and its slot given back', () => server.readsRunning === 0)
    } finally {
      await stop()
    }
  })

  test('a fetch past its deadline fails with TimeoutError', async () => {
    const { fetcher, server, serverBlobs, b, stop } = await pair({ fetchTimeoutMs: 50 })
    serverBlobs.gate = new Promise(() => {})
    try {
      const cid = await rawCid(Uint8Array.of(1))
      serverBlobs.map.set(cid.toString(), Uint8Array.of(1))
      await assert.rejects(fetcher.fetch(b.peerId, cid), { name: 'TimeoutError' })
      assert.equal(server.readsRunning, 1, 'the caller gave up; the server still holds the read until it stops')
    } finally {
      await stop()
    }
  })
})
