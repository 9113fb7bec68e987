/**
 * A hostile peer — a real libp2p host in this test process — abuses the framing of a Rhizome RPC
 * protocol (blob) against a real peer in a child process:
 *
 * - it sends the length prefix of a 256 KiB frame, then the body one byte per write. Each write
 *   leaves as its own muxer data frame, so the peer receives one chunk per byte. The peer's frame
 *   decoder refuses a frame that takes more than FRAME_CHUNKS_MAX_DEFAULT chunks, so it cuts the
 *   stream off after 16 KiB, scores the sender and hangs up, while its API keeps answering and its
 *   memory stays flat;
 * - it starts a frame and then dribbles the rest more slowly than the arrival limit allows. The
 *   peer runs with RHIZOME_FRAME_ARRIVAL_MS lowered (30 s would make a slow test), cuts the frame
 *   off when the limit passes and scores the sender again.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { after, before, describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { blobProtocol } from '../../src/net/blob-service.ts'
import { createHost } from '../../src/net/host.ts'
import { FRAME_ARRIVAL_MS_ENV } from '../../src/net/rpc.ts'
import { VIOLATION_SCORE } from '../../src/protocol/admission/constants.ts'
import { FRAME_CHUNKS_MAX_DEFAULT, encodeFrame } from '../../src/wire/frame.ts'
import { TestNetwork, waitFor } from '../helpers/peers.ts'
import type { Host } from '../../src/net/host.ts'
import type { TestPeer } from '../helpers/peers.ts'
import type { TestContext } from 'node:test'
import type { Stream } from '@libp2p/interface'

/** The frame the hostile peer starts: 256 KiB, well within the blob protocol's 1 MiB + 1 KiB. */
const FRAME_BYTES = 256 * 1024
/**
 * The target's frame arrival limit in this test. Long enough that the byte-per-write attack
 * (16 K writes on loopback, well under a second) reaches the chunk limit first even on a loaded
 * machine; short enough that the dribble is cut off within seconds.
 */
const FRAME_ARRIVAL_MS_TEST = 5_000
/** The dribble: one byte this often, so the frame never completes within the arrival limit. */
const DRIBBLE_INTERVAL_MS = 250
/** Each status request during an attack must answer within this. */
const STATUS_TIMEOUT_MS = 3_000
/**
 * The peer's resident memory may grow by at most this during the attack. The decoder holds at
 * most 16,384 one-byte chunks (each copied out of its muxer buffer: ~100 B of bookkeeping apiece,
 * under 2 MB) before it refuses the frame; the rest is the garbage of decoding ~16 K muxer
 * frames, which the GC reclaims. 100 MB leaves room for V8 growing its heap lazily; a peer that
 * buffered without bound, or copied the frame per chunk, would not stay flat like this.
 */
const RSS_GROWTH_BYTES_MAX = 100 * 1000 * 1000

/** Resident memory of a process, from /proc (Linux). */
async function rssBytes (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)
  if (kib === null) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(kib[1]) * 1024
}

interface ViolationLog { peer: string, protocol: string, error: string, score: number }

describe('a hostile peer abusing the framing of a protocol stream', { timeout: 60_000 }, () => {
  let net: TestNetwork
  let target: TestPeer
  let hostile: Host

  before(async () => {
    net = await TestNetwork.create()
    // The child inherits this process's environment; set the variable for its start only.
    process.env[FRAME_ARRIVAL_MS_ENV] = String(FRAME_ARRIVAL_MS_TEST)
    try {
      target = await net.addPeer()
    } finally {
      delete process.env[FRAME_ARRIVAL_MS_ENV]
    }
    hostile = await createHost({
      privateKey: await generateKeyPair('Ed25519'),
      networkId: net.networkId,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [],
      mdns: false,
      isBlocked: () => false
    })
  })
  after(async () => {
    await hostile?.stop()
    await net?.close()
  })

  const violations = (): ViolationLog[] => target.stderr.split('\n')
    .filter(line => line.includes('peer broke protocol') && line.includes(hostile.peerId.toString()))
    .map(line => JSON.parse(line) as ViolationLog)

  /** Open a blob protocol stream to the target; a handshake cut short on a loaded machine is retried, bounded. */
  async function openStream (): Promise<Stream> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await hostile.dialProtocol(multiaddr(target.tcpAddr), blobProtocol(net.networkId), { signal: AbortSignal.timeout(10_000) })
      } catch (err) {
        if (attempt >= 3) throw err
        await new Promise(resolve => setTimeout(resolve, 500))
      }
    }
  }

  /**
   * Poll the target's status and memory until `stop()` (also called when the test ends, however
   * it ends): every request must answer within STATUS_TIMEOUT_MS. `stop()` returns the answers
   * counted, the failures, and the peak RSS.
   */
  function watchTarget (t: TestContext): { stop: () => Promise<{ answered: number, failures: string[], rssMax: number }> } {
    const pid = target.child?.pid
    assert.ok(pid !== undefined)
    let running = true
    let answered = 0
    let rssMax = 0
    const failures: string[] = []
    const loop = (async () => {
      while (running) {
        try {
          rssMax = Math.max(rssMax, await rssBytes(pid))
          const res = await fetch(`${target.apiUrl}/v1/status`, { headers: target.authorized(), signal: AbortSignal.timeout(STATUS_TIMEOUT_MS) })
          const body = await res.json() as { peerId?: string }
          if (res.ok && body.peerId === target.peerId) answered++
          else failures.push(`HTTP ${res.status}`)
        } catch (err) {
          failures.push(String(err))
        }
        await new Promise(resolve => setTimeout(resolve, 50))
      }
    })()
    const stop = async (): Promise<{ answered: number, failures: string[], rssMax: number }> => {
      running = false
      await loop
      return { answered, failures, rssMax }
    }
    t.after(stop)
    return { stop }
  }

  test('a frame sent one byte per write is refused at the chunk limit; the peer stays responsive with flat memory', async (t) => {
    const pid = target.child?.pid
    assert.ok(pid !== undefined)
    const rssBefore = await rssBytes(pid)
    const before = violations().length
    const watch = watchTarget(t)

    const stream = await openStream()
    const frame = encodeFrame(new Uint8Array(FRAME_BYTES))
    const prefixBytes = frame.byteLength - FRAME_BYTES
    stream.send(frame.subarray(0, prefixBytes))
    // One byte per send: the stream hands each to the muxer as its own data frame unless the
    // muxer asks to drain, in which case we wait, so no two bytes are ever coalesced. Yielding to
    // the event loop now and then lets the socket flush. Bounded by the frame and a deadline.
    let sent = 0
    const deadline = Date.now() + 30_000
    try {
      for (let at = prefixBytes; at < frame.byteLength && stream.status === 'open' && Date.now() < deadline; at++) {
        if (!stream.send(frame.subarray(at, at + 1))) await stream.onDrain({ signal: AbortSignal.timeout(10_000) })
        sent++
        if (sent % 256 === 0) await new Promise(resolve => setImmediate(resolve))
      }
    } catch {
      // The target reset the stream or hung up: the writes stop here.
    }

    await waitFor('the target to refuse the dribbled frame', () => violations().length > before, 15_000)
    const violation = violations().at(-1)!
    assert.match(violation.protocol, /\/blob\//)
    assert.match(violation.error, new RegExp(`a frame took more than ${FRAME_CHUNKS_MAX_DEFAULT} chunks to arrive`), 'refused for its chunks: the bytes arrived one per chunk')
    assert.equal(violation.score, VIOLATION_SCORE)
    assert.ok(sent >= FRAME_CHUNKS_MAX_DEFAULT - prefixBytes, `${sent} bytes sent before the cut-off`)
    assert.ok(sent < FRAME_BYTES, `the frame was cut off before it completed (${sent} of ${FRAME_BYTES} bytes sent)`)
    await waitFor('the stream to be reset', () => stream.status !== 'open', 15_000)

    // Keep watching a moment after the attack, then check the API answered all along.
    await new Promise(resolve => setTimeout(resolve, 500))
    const { answered, failures, rssMax } = await watch.stop()
    assert.deepEqual(failures, [], 'every status request during the attack answered in time')
    assert.ok(answered >= 2, `${answered} status answers during the attack`)
    assert.ok(rssMax - rssBefore < RSS_GROWTH_BYTES_MAX, `peer RSS grew from ${(rssBefore / 1e6).toFixed(0)} MB to ${(rssMax / 1e6).toFixed(0)} MB`)
  })

  test('a frame dribbled slower than the arrival limit is cut off and its sender scored', async (t) => {
    const before = violations().length
    const scoreBefore = violations().at(-1)?.score ?? 0
    const watch = watchTarget(t)
    const stream = await openStream()
    const frame = encodeFrame(new Uint8Array(1024))
    const prefixBytes = frame.byteLength - 1024
    stream.send(frame.subarray(0, prefixBytes))
    // A byte every DRIBBLE_INTERVAL_MS keeps the stream busy but the frame far from complete when
    // the arrival limit passes. Bounded: at most twice the limit, or until the target resets us.
    let sent = 0
    const deadline = Date.now() + 2 * FRAME_ARRIVAL_MS_TEST + 5_000
    try {
      while (stream.status === 'open' && Date.now() < deadline && violations().length === before) {
        await new Promise(resolve => setTimeout(resolve, DRIBBLE_INTERVAL_MS))
        stream.send(frame.subarray(prefixBytes + sent, prefixBytes + sent + 1))
        sent++
      }
    } catch {
      // Reset by the target.
    }

    await waitFor('the target to cut off the slow frame', () => violations().length > before, 15_000)
    const violation = violations().at(-1)!
    assert.match(violation.protocol, /\/blob\//)
    assert.match(violation.error, new RegExp(`a frame took longer than ${FRAME_ARRIVAL_MS_TEST} ms to arrive`))
    assert.equal(violation.score, scoreBefore + VIOLATION_SCORE)
    assert.ok(sent < 1024, 'the frame never completed')
    await waitFor('the stream to be reset', () => stream.status !== 'open', 15_000)

    const { answered, failures } = await watch.stop()
    assert.deepEqual(failures, [])
    assert.ok(answered >= 2, `${answered} status answers during the dribble`)
  })
})
