/**
 * A hostile peer — a real libp2p host in this test process — fires 64 range requests at once for
 * one 48 MiB blob at a real Rhizome peer. Each request used to read and hash the whole blob, so
 * the peer's memory grew by the blob's size per request in flight (gigabytes). Now the peer
 * verifies the blob once, serves each range with a bounded read, refuses the requests past its
 * per-peer cap as busy, stays responsive, and keeps its memory bounded.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { BLOB_CHUNK_BYTES_MAX, BLOB_RANGE_READS_PER_PEER_MAX, blobProtocol } from '../../src/net/blob-service.ts'
import { createHost } from '../../src/net/host.ts'
import { FrameDecoder, encodeFrame } from '../../src/wire/frame.ts'
import { decodeEnvelope, encodeEnvelope } from '../../src/wire/rpc.ts'
import { TestNetwork, runCli, waitFor } from '../helpers/peers.ts'
import type { Host } from '../../src/net/host.ts'
import type { RpcEnvelope } from '../../src/wire/rpc.ts'
import type { TestPeer } from '../helpers/peers.ts'
import type { Stream } from '@libp2p/interface'

const MiB = 1024 * 1024
const BLOB_BYTES = 48 * MiB
/** The rpc layer runs at most 4 requests per stream; 16 streams × 4 puts all 64 in flight at once. */
const STREAMS = 16
const REQUESTS_PER_STREAM = 4
const REQUESTS = STREAMS * REQUESTS_PER_STREAM
/**
 * The peer's resident memory must stay below this during the flood. An idle peer is ~150–250 MB
 * (Node, libp2p, SQLite, the sandbox); bounded reads add a few MiB per range in flight plus one
 * 1 MiB verification buffer. Reading the whole blob per request would hold 64 × 48 MiB ≈ 3 GB
 * (measured: 2.3 GB for 32 requests on a 64 MiB blob, 4.2 GB for 64).
 */
const RSS_BYTES_MAX = 600 * 1000 * 1000

/** Resident memory of a process, from /proc (Linux). */
async function rssBytes (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)
  if (kib === null) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(kib[1]) * 1024
}

describe('a hostile peer flooding blob range requests', { timeout: 240_000 }, () => {
  let net: TestNetwork
  let target: TestPeer
  let witness: TestPeer
  let hostile: Host
  let cid: string
  const blob = randomBytes(BLOB_BYTES)

  before(async () => {
    net = await TestNetwork.create()
    target = await net.addPeer()
    witness = await net.addPeer(['--bootstrap', target.tcpAddr])
    hostile = await createHost({
      privateKey: await generateKeyPair('Ed25519'),
      networkId: net.networkId,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [],
      mdns: false,
      isBlocked: () => false
    })
    const put = await fetch(`${target.apiUrl}/v1/blobs`, { method: 'POST', body: blob, headers: target.authorized(), signal: AbortSignal.timeout(60_000) })
    assert.equal(put.status, 200)
    cid = ((await put.json()) as { cid: string }).cid
  })
  after(async () => {
    await hostile?.stop()
    await net?.close()
  })

  test('64 concurrent range requests: bounded memory, busy past the cap, still responsive, honest fetches still work', async () => {
    const pid = target.child?.pid
    assert.ok(pid !== undefined)
    const rssBefore = await rssBytes(pid)

    // Sample the peer's memory until the flood is over.
    let rssMax = rssBefore
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        rssMax = Math.max(rssMax, await rssBytes(pid))
        await new Promise(resolve => setTimeout(resolve, 20))
      }
    })()

    const replies = new Map<string, RpcEnvelope>()
    const read = async (stream: Stream, index: number): Promise<void> => {
      const decoder = new FrameDecoder(BLOB_CHUNK_BYTES_MAX + 1024)
      for await (const chunk of stream) {
        for (const frame of decoder.push(chunk.subarray())) {
          const envelope = decodeEnvelope(frame)
          replies.set(`${index}/${envelope.id}`, envelope)
        }
      }
    }
    const streams: Stream[] = []
    for (let i = 0; i < STREAMS; i++) {
      streams.push(await hostile.dialProtocol(multiaddr(target.tcpAddr), blobProtocol(net.networkId), { signal: AbortSignal.timeout(10_000) }))
    }
    const readers = streams.map(async (stream, index) => { await read(stream, index).catch(() => {}) })
    const offsetOf = (index: number, id: number): number => ((index * REQUESTS_PER_STREAM + id) * BLOB_CHUNK_BYTES_MAX) % BLOB_BYTES
    // All 64 requests leave in one go, before any answer can come back.
    for (const [index, stream] of streams.entries()) {
      for (let id = 1; id <= REQUESTS_PER_STREAM; id++) {
        stream.send(encodeFrame(encodeEnvelope({ id, kind: 'req', body: { cid, offset: offsetOf(index, id), length: BLOB_CHUNK_BYTES_MAX } })))
      }
    }

    // The peer answers its local API while the flood is in flight.
    const during = await target.api<{ peerId: string }>('/v1/status')
    assert.equal(during.peerId, target.peerId)

    await waitFor('an answer to every range request', () => replies.size === REQUESTS, 120_000)
    sampling = false
    await sampler

    assert.ok(rssMax < RSS_BYTES_MAX, `peer RSS peaked at ${(rssMax / 1e6).toFixed(0)} MB (before: ${(rssBefore / 1e6).toFixed(0)} MB)`)

    let served = 0
    let busy = 0
    for (const [key, envelope] of replies) {
      const [index, id] = key.split('/').map(Number)
      if (envelope.kind === 'res') {
        const body = envelope.body as { total: number, bytes: Uint8Array }
        assert.equal(body.total, BLOB_BYTES)
        const offset = offsetOf(index, id)
        assert.ok(Buffer.from(body.bytes).equals(blob.subarray(offset, offset + BLOB_CHUNK_BYTES_MAX)), `range at ${offset} is the blob's bytes`)
        served++
      } else {
        assert.equal(envelope.kind, 'err')
        assert.equal(envelope.error?.code, 'ERR_PEER_BUSY', JSON.stringify(envelope.error))
        assert.equal(envelope.error?.retryable, true)
        assert.match(envelope.error?.message ?? '', new RegExp(`${BLOB_RANGE_READS_PER_PEER_MAX} blob range reads already running for peer .*, its limit`))
        busy++
      }
    }
    assert.equal(served + busy, REQUESTS)
    assert.ok(served >= BLOB_RANGE_READS_PER_PEER_MAX, `${served} ranges served`)
    assert.ok(busy >= 1, 'the requests past the per-peer cap are refused as busy')

    for (const stream of streams) stream.abort(new Error('done'))
    await Promise.all(readers)

    // Still up, and still serving honest peers: another peer fetches the whole blob in ranges.
    const status = await target.api<{ peerId: string }>('/v1/status')
    assert.equal(status.peerId, target.peerId)
    const out = join(net.root, 'fetched.bin')
    const get = await runCli(['blob', 'get', cid, '--from', target.peerId, '--out', out, '--data-dir', witness.dataDir], { timeoutMs: 120_000 })
    assert.equal(get.code, 0, get.stderr)
    assert.ok((await readFile(out)).equals(blob))
  })
})
