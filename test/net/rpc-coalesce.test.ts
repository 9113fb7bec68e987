/**
 * Frame coalescing in RpcService, between two real libp2p hosts on 127.0.0.1: the frames one
 * turn of the event loop writes to a stream leave in one send, answers come back right, and a
 * lone request still goes out on its own.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost } from '../../src/net/host.ts'
import { RPC_COALESCE_BYTES_MAX, RpcService } from '../../src/net/rpc.ts'
import { createLogger } from '../../src/node/logger.ts'
import type { Host } from '../../src/net/host.ts'

const log = createLogger('rhizome:test', { level: 'silent', write: () => {} })
const REQUESTS = 64

async function host (): Promise<Host> {
  return await createHost({ privateKey: await generateKeyPair('Ed25519'), networkId: 'rpc-coalesce-test', listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false, isBlocked: () => false })
}

describe('RpcService frame coalescing', { timeout: 120_000 }, () => {
  let a: Host
  let b: Host
  let rpcA: RpcService
  let rpcB: RpcService
  let violations = 0
  const echo = { protocol: '/rhizome/rpc-coalesce-test/echo/1.0.0', frameBytesMax: 2 * RPC_COALESCE_BYTES_MAX, inflightMax: REQUESTS * 2, handler: async (body: unknown) => ({ echo: body }) }

  before(async () => {
    a = await host()
    b = await host()
    rpcA = new RpcService({ libp2p: a, log, onViolation: () => { violations++ } })
    rpcB = new RpcService({ libp2p: b, log, onViolation: () => { violations++ } })
    await rpcA.handle(echo)
    await rpcB.handle(echo)
    await a.peerStore.merge(b.peerId, { multiaddrs: b.getMultiaddrs() })
    // Open the shared stream first, so the requests below are written in one turn.
    assert.deepEqual(await rpcA.request(b.peerId, echo.protocol, 'warm-up'), { echo: 'warm-up' })
  })
  after(async () => {
    await rpcA?.stop()
    await rpcB?.stop()
    await a?.stop()
    await b?.stop()
  })

  test(`${REQUESTS} requests made in one turn leave in one send, and each gets its own answer`, async () => {
    const before = { ...rpcA.counters }
    const answers = Array.from({ length: REQUESTS }, async (_, i) => await rpcA.request(b.peerId, echo.protocol, { i }))
    assert.deepEqual(await Promise.all(answers), Array.from({ length: REQUESTS }, (_, i) => ({ echo: { i } })))
    assert.equal(rpcA.counters.framesSent - before.framesSent, REQUESTS)
    assert.equal(rpcA.counters.sends - before.sends, 1, 'one send carried every request frame')
    // The answers were made across a few turns on the serving side: fewer sends than frames there too.
    assert.ok(rpcB.counters.sends < rpcB.counters.framesSent, `server sent ${rpcB.counters.framesSent} frames in ${rpcB.counters.sends} sends`)
    assert.equal(violations, 0)
  })

  test('requests one after another each go out alone, as soon as they are made', async () => {
    const before = { ...rpcA.counters }
    for (let i = 0; i < 5; i++) assert.deepEqual(await rpcA.request(b.peerId, echo.protocol, i), { echo: i })
    assert.equal(rpcA.counters.framesSent - before.framesSent, 5)
    assert.equal(rpcA.counters.sends - before.sends, 5)
  })

  test(`a batch reaching ${RPC_COALESCE_BYTES_MAX} bytes goes at once, in order, and the rest of the turn starts a new one`, async () => {
    const before = { ...rpcA.counters }
    const big = 'x'.repeat(RPC_COALESCE_BYTES_MAX)
    const answers = [rpcA.request(b.peerId, echo.protocol, 'first'), rpcA.request(b.peerId, echo.protocol, big), rpcA.request(b.peerId, echo.protocol, 'after')]
    assert.deepEqual(await Promise.all(answers), [{ echo: 'first' }, { echo: big }, { echo: 'after' }])
    assert.equal(rpcA.counters.framesSent - before.framesSent, 3)
    assert.equal(rpcA.counters.sends - before.sends, 2, 'the batch holding the big frame, then the frame after it')
    assert.equal(violations, 0)
  })
})
