/**
 * RpcService between two real libp2p hosts in this process, on 127.0.0.1: shared-stream opening,
 * the per-stream in-flight limit, and the frame arrival deadline on both sides of a stream.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createServer } from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createHost } from '../../src/net/host.ts'
import { FRAME_ARRIVAL_MS_ENV, FRAME_ARRIVAL_MS_MAX, RPC_DIAL_TIMEOUT_MS, RpcService, frameArrivalMsFromEnv } from '../../src/net/rpc.ts'
import { encodeFrame } from '../../src/wire/frame.ts'
import { encodeEnvelope } from '../../src/wire/rpc.ts'
import { createLogger } from '../../src/node/logger.ts'
import type { Host } from '../../src/net/host.ts'
import type { PeerId, Stream } from '@libp2p/interface'
import type { Socket } from 'node:net'

const log = createLogger('rhizome:test', { level: 'silent', write: () => {} })
/** Short enough for a test, long enough that a loaded machine does not trip it on honest frames. */
const FRAME_ARRIVAL_MS_TEST = 400

interface Violation { peerId: string, protocol: string, err: Error }

async function host (): Promise<Host> {
  return await createHost({
    privateKey: await generateKeyPair('Ed25519'),
    networkId: 'rpc-test',
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: [],
    mdns: false,
    isBlocked: () => false
  })
}

async function waitFor (what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

describe('RpcService between two hosts', { timeout: 120_000 }, () => {
  let a: Host
  let b: Host
  let rpcA: RpcService
  let rpcB: RpcService
  const violationsA: Violation[] = []
  const violationsB: Violation[] = []
  /** Requests held by the slow protocol until a test lets them go. */
  const held: Array<() => void> = []

  const service = (libp2p: Host, violations: Violation[]): RpcService => new RpcService({
    libp2p,
    log,
    onViolation: (peerId: PeerId, protocol: string, err: Error) => violations.push({ peerId: peerId.toString(), protocol, err })
  }, { frameArrivalMs: FRAME_ARRIVAL_MS_TEST })
  const echo = { protocol: '/rhizome/rpc-test/echo/1.0.0', frameBytesMax: 64 * 1024, inflightMax: 4, handler: async (body: unknown) => ({ echo: body }) }
  const slow = {
    protocol: '/rhizome/rpc-test/slow/1.0.0',
    frameBytesMax: 1024,
    inflightMax: 2,
    handler: async (body: unknown) => await new Promise(resolve => held.push(() => resolve(body)))
  }

  before(async () => {
    a = await host()
    b = await host()
    rpcA = service(a, violationsA)
    rpcB = service(b, violationsB)
    for (const rpc of [rpcA, rpcB]) {
      await rpc.handle(echo)
      await rpc.handle(slow)
    }
    // Host A knows B's address, so requests dial it on first use.
    await a.peerStore.merge(b.peerId, { multiaddrs: b.getMultiaddrs() })
  })
  after(async () => {
    for (const release of held) release()
    await rpcA?.stop()
    await rpcB?.stop()
    await a?.stop()
    await b?.stop()
  })

  test('the limits are named constants', () => {
    assert.equal(RPC_DIAL_TIMEOUT_MS, 10_000)
    assert.equal(FRAME_ARRIVAL_MS_MAX, 30_000)
  })

  // Regression: the shared stream was opened with the first caller's signal, so its abort failed
  // every caller waiting for the same stream.
  test('one caller aborting while the shared stream opens does not fail the other callers', async () => {
    await a.hangUp(b.peerId)
    assert.equal(a.getConnections(b.peerId).length, 0, 'no connection yet: the first request must dial')
    const abortA = new AbortController()
    const callerA = rpcA.request(b.peerId, echo.protocol, 'from A', { signal: abortA.signal })
    const callerB = rpcA.request(b.peerId, echo.protocol, 'from B')
    abortA.abort()
    await assert.rejects(callerA, { name: 'AbortedError' })
    assert.deepEqual(await callerB, { echo: 'from B' })
    // The stream the aborted caller started opening is the one later callers use.
    assert.deepEqual(await rpcA.request(b.peerId, echo.protocol, 'again'), { echo: 'again' })
    assert.equal(violationsA.length + violationsB.length, 0)
  })

  test('a caller whose deadline passes while the stream opens times out alone', async () => {
    await a.hangUp(b.peerId)
    const callerA = rpcA.request(b.peerId, echo.protocol, 'A', { timeoutMs: 1 })
    const callerB = rpcA.request(b.peerId, echo.protocol, 'B')
    await assert.rejects(callerA, { name: 'TimeoutError' })
    assert.deepEqual(await callerB, { echo: 'B' })
  })

  test('one request past inflightMax on a stream is answered with a retryable PeerBusyError', async () => {
    const first = rpcA.request(b.peerId, slow.protocol, 1)
    const second = rpcA.request(b.peerId, slow.protocol, 2)
    await waitFor('both requests to be running', () => held.length === slow.inflightMax)
    await assert.rejects(rpcA.request(b.peerId, slow.protocol, 3), (err: unknown) => {
      assert.equal((err as Error).name, 'PeerBusyError')
      assert.equal((err as { retryable: boolean }).retryable, true)
      assert.equal((err as { code: string }).code, 'ERR_PEER_BUSY')
      return true
    })
    for (const release of held.splice(0)) release()
    assert.equal(await first, 1)
    assert.equal(await second, 2)
    // With the slots free again, the same stream takes a request.
    const third = rpcA.request(b.peerId, slow.protocol, 3)
    await waitFor('the third request to run', () => held.length === 1)
    held.splice(0)[0]()
    assert.equal(await third, 3)
    assert.equal(violationsB.length, 0)
  })

  test('a caller that sends part of a frame and stalls is cut off after the frame arrival limit', async () => {
    const stream = await a.dialProtocol(b.peerId, echo.protocol, { signal: AbortSignal.timeout(10_000) })
    const frame = encodeFrame(encodeEnvelope({ id: 1, kind: 'req', body: 'x'.repeat(100) }))
    const before = violationsB.length
    stream.send(frame.subarray(0, 50))
    await waitFor('the server to report the stalled frame', () => violationsB.length > before)
    const violation = violationsB.at(-1)!
    assert.equal(violation.peerId, a.peerId.toString())
    assert.equal(violation.protocol, echo.protocol)
    assert.equal(violation.err.name, 'ProtocolViolationError')
    assert.match(violation.err.message, new RegExp(`took longer than ${FRAME_ARRIVAL_MS_TEST} ms`))
    await waitFor('the stream to be reset', () => stream.status !== 'open')
  })

  test('a frame sent in pieces within the limit is answered, and the limit restarts with each frame', async () => {
    const stream = await a.dialProtocol(b.peerId, echo.protocol, { signal: AbortSignal.timeout(10_000) })
    const before = violationsB.length
    const replies: Uint8Array[] = []
    const reading = (async () => { for await (const chunk of stream) replies.push(chunk.subarray()) })().catch(() => {})
    // Three frames, each split in two with a pause of half the limit: 1.5 limits in all, never
    // one frame longer than the limit.
    for (let id = 1; id <= 3; id++) {
      const frame = encodeFrame(encodeEnvelope({ id, kind: 'req', body: id }))
      stream.send(frame.subarray(0, 4))
      await new Promise(resolve => setTimeout(resolve, FRAME_ARRIVAL_MS_TEST / 2))
      stream.send(frame.subarray(4))
    }
    await waitFor('three answers', () => replies.reduce((n, r) => n + r.byteLength, 0) > 0 && countFrames(replies) === 3)
    assert.equal(violationsB.length, before)
    stream.abort(new Error('test done'))
    await reading
  })

  test('a server that sends part of an answer and stalls is cut off on the caller side', async () => {
    const protocol = '/rhizome/rpc-test/dribble/1.0.0'
    await rpcA.handle({ protocol, frameBytesMax: 1024, inflightMax: 1, handler: async () => null })
    // B answers this protocol by hand: half of a frame, then nothing.
    await b.handle(protocol, (stream) => {
      const answer = encodeFrame(encodeEnvelope({ id: 1, kind: 'res', body: 'y'.repeat(100) }))
      stream.send(answer.subarray(0, 40))
    })
    const before = violationsA.length
    await assert.rejects(rpcA.request(b.peerId, protocol, null, { timeoutMs: 10_000 }), { name: 'ProtocolViolationError' })
    assert.equal(violationsA.length, before + 1)
    assert.equal(violationsA.at(-1)!.peerId, b.peerId.toString())
    assert.match(violationsA.at(-1)!.err.message, /took longer than/)
  })

  test('opening the shared stream to a peer that never answers gives up at dialTimeoutMs with PeerUnavailableError', async () => {
    // The "peer" accepts TCP and then says nothing: the connection upgrade hangs until a deadline.
    const sockets: Socket[] = []
    const server = createServer(socket => { sockets.push(socket); socket.on('error', () => {}) })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const c = await host()
    const rpcC = new RpcService({ libp2p: c, log, onViolation: () => {} }, { dialTimeoutMs: 300 })
    try {
      await rpcC.handle(echo)
      const stalled = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
      await c.peerStore.merge(stalled, { multiaddrs: [multiaddr(`/ip4/127.0.0.1/tcp/${(server.address() as { port: number }).port}`)] })
      // The caller's own deadline is ten times the dial deadline: the dial deadline must be what
      // ends the wait, so the error is PeerUnavailableError (a TimeoutError would be the caller's).
      await assert.rejects(rpcC.request(stalled, echo.protocol, 'x', { timeoutMs: 3_000 }), (err: Error) => {
        assert.equal(err.name, 'PeerUnavailableError', err.message)
        assert.match(err.message, /could not open/)
        return true
      })
      assert.ok(sockets.length >= 1, 'the dial reached the stalled peer')
    } finally {
      await rpcC.stop()
      await c.stop()
      for (const socket of sockets) socket.destroy()
      server.close()
    }
  })

  test('inbound streams of one protocol on one connection are capped: past the cap a new stream is refused', async () => {
    const protocol = '/rhizome/rpc-test/streams/1.0.0'
    await rpcB.handle({ protocol, frameBytesMax: 1024, inflightMax: 1, handler: async (body: unknown) => body })
    const streams: Stream[] = []
    let served = 0
    let refused = 0
    try {
      // rpc.ts registers every protocol with maxInboundStreams 32. libp2p compares the streams
      // already open with the limit before counting the new one, so it admits 33; the 34th is
      // refused. Each stream is kept open and must answer one request before the next is opened.
      for (let i = 0; i < 34; i++) {
        let stream: Stream
        try {
          stream = await a.dialProtocol(b.peerId, protocol, { signal: AbortSignal.timeout(5_000) })
          streams.push(stream)
          stream.send(encodeFrame(encodeEnvelope({ id: 1, kind: 'req', body: i })))
        } catch {
          refused++
          continue
        }
        const answered = await new Promise<boolean>(resolve => {
          const timer = setTimeout(() => resolve(false), 5_000)
          stream.addEventListener('message', () => { clearTimeout(timer); resolve(true) }, { once: true })
          stream.addEventListener('close', () => { clearTimeout(timer); resolve(false) }, { once: true })
        })
        if (answered) served++
        else refused++
      }
    } finally {
      for (const stream of streams) stream.abort(new Error('test done'))
    }
    assert.equal(a.getConnections(b.peerId).length, 1, 'all the streams shared one connection')
    assert.ok(served >= 32 && served <= 33, `${served} streams served`)
    assert.equal(served + refused, 34)
    assert.ok(refused >= 1, 'the stream past the cap was refused')
  })

  test('stop() fails a request still waiting for its stream with AbortedError', async () => {
    const c = await host()
    const rpcC = service(c, [])
    try {
      await rpcC.handle(echo)
      await c.peerStore.merge(b.peerId, { multiaddrs: b.getMultiaddrs() })
      const pending = rpcC.request(b.peerId, echo.protocol, 'late')
      await rpcC.stop()
      await assert.rejects(pending, { name: 'AbortedError' })
      await assert.rejects(rpcC.request(b.peerId, echo.protocol, 'after'), { name: 'AbortedError' })
    } finally {
      await c.stop()
    }
  })
})

describe('lowering the frame arrival limit through the environment', () => {
  test('RHIZOME_FRAME_ARRIVAL_MS takes 1..FRAME_ARRIVAL_MS_MAX; one past either end, or not an integer, is a ConfigError', () => {
    assert.equal(FRAME_ARRIVAL_MS_ENV, 'RHIZOME_FRAME_ARRIVAL_MS')
    assert.equal(frameArrivalMsFromEnv({}), undefined)
    assert.equal(frameArrivalMsFromEnv({ [FRAME_ARRIVAL_MS_ENV]: '' }), undefined)
    assert.equal(frameArrivalMsFromEnv({ [FRAME_ARRIVAL_MS_ENV]: '1' }), 1)
    assert.equal(frameArrivalMsFromEnv({ [FRAME_ARRIVAL_MS_ENV]: String(FRAME_ARRIVAL_MS_MAX) }), FRAME_ARRIVAL_MS_MAX)
    for (const bad of ['0', String(FRAME_ARRIVAL_MS_MAX + 1), '1e3', '-5', ' 100', '100ms', '0x10', '9'.repeat(400)]) {
      assert.throws(() => frameArrivalMsFromEnv({ [FRAME_ARRIVAL_MS_ENV]: bad }), { name: 'ConfigError', code: 'ERR_CONFIG' }, bad)
    }
  })
})

/** Count whole frames in the bytes received (a 1-byte varint prefix: the answers are small). */
function countFrames (chunks: Uint8Array[]): number {
  const bytes = Uint8Array.from(chunks.flatMap(c => [...c]))
  let frames = 0
  for (let at = 0; at < bytes.byteLength; at += 1 + bytes[at]) {
    if (at + 1 + bytes[at] > bytes.byteLength) break
    frames++
  }
  return frames
}
