/**
 * Tasks against hostile and absent peers, on real Rhizome peers:
 *  - a hostile caller (a libp2p host in this test process) floods a worker with tasks for a
 *    function only it claims to hold, and never serves the code: its extra tasks are refused as
 *    busy at once, and an honest caller's task on the same worker still runs promptly;
 *  - a call `--on` a peer that cannot be reached fails fast with ERR_PEER_UNAVAILABLE naming it;
 *  - a task run on the caller's own peer honours `timeoutMs`;
 *  - a hostile worker answers with a validly signed but malformed result (`ff`, then 50,000
 *    nested arrays): the caller scores it, runs the task elsewhere and returns the right value,
 *    and logs no stack trace.
 */
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { after, before, describe, test } from 'node:test'
import { createManifest, encodeManifest } from '../../src/functions/manifest.ts'
import { AbortedError } from '../../src/model/errors.ts'
import { blobProtocol } from '../../src/net/blob-service.ts'
import { CODE_FETCHES_PER_PEER_MAX } from '../../src/net/function-service.ts'
import { createHost } from '../../src/net/host.ts'
import { helloProtocol } from '../../src/net/membership-service.ts'
import { RpcService } from '../../src/net/rpc.ts'
import { taskProtocol } from '../../src/net/task-service.ts'
import { createLogger } from '../../src/node/logger.ts'
import { VERSION } from '../../src/model/version.ts'
import { DEFAULT_LIMITS } from '../../src/sandbox/index.ts'
import { encodeAnnouncement } from '../../src/wire/membership-codec.ts'
import { attestationSigningBytes, encodeTaskReply, encodeTaskRequest, parseTaskRequest, taskId } from '../../src/wire/task-codec.ts'
import { TestNetwork, waitFor } from '../helpers/peers.ts'
import type { Host } from '../../src/net/host.ts'
import type { PrivateKey } from '@libp2p/interface'
import type { TestPeer } from '../helpers/peers.ts'

interface Failure { name: string, code: string, message: string, retryable: boolean }
interface CallAnswer { value?: unknown, peer?: string, attempts?: number, error?: Failure }

const SOURCE = `
export function add (a, b) { return a + b }
export function forever () { for (;;) {} }
`
const FLOOD_TASKS = 40

/** A libp2p host in this process that speaks Rhizome's RPC framing with whatever handlers a test gives it. */
async function hostilePeer (networkId: string): Promise<{ host: Host, rpc: RpcService, privateKey: PrivateKey }> {
  const privateKey = await generateKeyPair('Ed25519')
  const host = await createHost({ privateKey, networkId, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false, isBlocked: () => false })
  const rpc = new RpcService({ libp2p: host, log: createLogger('hostile', { level: 'silent' }), onViolation: () => {} })
  return { host, rpc, privateKey }
}

async function dialWithRetry (host: Host, addr: string): Promise<void> {
  // A handshake can be cut short on a loaded machine; an honest retry, bounded.
  for (let attempt = 1; ; attempt++) {
    try {
      await host.dial(multiaddr(addr), { signal: AbortSignal.timeout(10_000) })
      return
    } catch (err) {
      if (attempt >= 3) throw err
      await new Promise(resolve => setTimeout(resolve, 500))
    }
  }
}

/** Never answers; gives up only when the request is cancelled or the connection closes. */
async function stall (signal: AbortSignal): Promise<never> {
  return await new Promise<never>((_resolve, reject) => {
    signal.addEventListener('abort', () => reject(new AbortedError()), { once: true })
  })
}

describe('tasks against hostile and absent peers', { timeout: 300_000 }, () => {
  let net: TestNetwork
  let target: TestPeer
  let honest: TestPeer
  let fn: string
  const hostiles: Host[] = []

  async function call (from: TestPeer, body: Record<string, unknown>, waitMs: number): Promise<CallAnswer> {
    const res = await fetch(`${from.apiUrl}/v1/call`, { method: 'POST', body: JSON.stringify({ fn, ...body }), headers: from.authorized(), signal: AbortSignal.timeout(waitMs) })
    return await res.json() as CallAnswer
  }

  before(async () => {
    net = await TestNetwork.create()
    target = await net.addPeer(['--slots', '1'])
    honest = await net.addPeer(['--bootstrap', target.tcpAddr])
    await waitFor('the peers to see each other', async () =>
      (await honest.peers()).some(p => p.peerId === target.peerId && p.state === 'alive') &&
      (await target.peers()).some(p => p.peerId === honest.peerId && p.state === 'alive'), 60_000)
    const code = new TextEncoder().encode(SOURCE)
    const manifest = encodeManifest(await createManifest({ name: 'tasks', kind: 'js', code, exports: ['add', 'forever'], limits: DEFAULT_LIMITS }))
    // Two replicas on two peers: both hold it.
    const res = await fetch(`${target.apiUrl}/v1/functions`, { method: 'POST', body: dagCbor.encode({ manifest, code, replicas: 2 }) as BodyInit, headers: target.authorized(), signal: AbortSignal.timeout(60_000) })
    const deployed = await res.json() as { cid: string, replicas: Array<{ peer: string, ok: boolean }> }
    assert.equal(res.status, 200, JSON.stringify(deployed))
    assert.ok(deployed.replicas.every(r => r.ok), JSON.stringify(deployed.replicas))
    fn = deployed.cid
  })
  after(async () => {
    await Promise.all(hostiles.map(async h => { await h.stop() }))
    await net?.close()
  })

  test(`a caller that never serves the code it asks to run ties up no slot: ${FLOOD_TASKS} such tasks, and an honest task still runs`, async () => {
    const { host, rpc } = await hostilePeer(net.networkId)
    hostiles.push(host)
    let blobRequests = 0
    await rpc.handle({
      protocol: blobProtocol(net.networkId),
      frameBytesMax: 2 * 1024 * 1024,
      inflightMax: 64,
      handler: async (_body, { signal }) => { blobRequests++; return await stall(signal) }
    })
    await rpc.handle({ protocol: taskProtocol(net.networkId), frameBytesMax: 2 * 1024 * 1024, inflightMax: 1, handler: async () => { throw new Error('not a worker') } })
    await dialWithRetry(host, target.tcpAddr)

    // A function id nobody holds: the target must ask the caller, which names itself by calling.
    const missing = CID.create(1, dagCbor.code, await sha256.digest(dagCbor.encode({ missing: host.peerId.toString() })))
    const targetId = peerIdFromString(target.peerId)
    const flood = Promise.allSettled(Array.from({ length: FLOOD_TASKS }, async (_, i) =>
      await rpc.request(targetId, taskProtocol(net.networkId), encodeTaskRequest({ fn: missing, export: 'run', args: [i] }), { timeoutMs: 60_000 })))
    await waitFor('the target to ask the hostile caller for the code', () => blobRequests > 0, 20_000)

    const answer = await call(honest, { export: 'add', args: [2, 40], on: target.peerId }, 15_000)
    assert.equal(answer.value, 42, JSON.stringify(answer))
    assert.equal(answer.peer, target.peerId)

    const settled = await Promise.race([flood, new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('the hostile tasks never settled')), 60_000))])
    const busy = settled.filter(s => s.status === 'rejected' && (s.reason as { code?: string }).code === 'ERR_PEER_BUSY')
    assert.ok(busy.length >= FLOOD_TASKS - CODE_FETCHES_PER_PEER_MAX, `${busy.length} of ${FLOOD_TASKS} refused as busy: ${JSON.stringify(settled.map(s => s.status === 'rejected' ? (s.reason as Error).message : 'answered').slice(0, 8))}`)
    assert.ok(settled.every(s => s.status === 'rejected'), 'no hostile task ran')

    // The caller that did not serve its code is scored down.
    await waitFor('the target to report the caller that did not serve its code', () =>
      target.stderr.split('\n').some(line => line.includes('peer broke protocol') && line.includes(host.peerId.toString()) && line.includes('did not serve its code')), 60_000)
  })

  test('a call on a peer that cannot be reached fails fast with ERR_PEER_UNAVAILABLE naming that peer', async () => {
    const absent = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    // Bounded well inside the 120 s task timeout: the dial has its own, shorter deadline.
    const answer = await call(honest, { export: 'add', args: [1, 2], on: absent }, 60_000)
    assert.equal(answer.error?.code, 'ERR_PEER_UNAVAILABLE', JSON.stringify(answer))
    assert.match(answer.error?.message ?? '', new RegExp(absent))
    assert.equal(answer.error?.retryable, true)
  })

  test('a task on the caller\'s own peer ends at timeoutMs with ERR_TIMEOUT', async () => {
    const answer = await call(honest, { export: 'forever', args: [], on: honest.peerId, timeoutMs: 500 }, 60_000)
    assert.equal(answer.error?.code, 'ERR_TIMEOUT', JSON.stringify(answer))
    assert.match(answer.error?.message ?? '', /500 ms/)
    // The peer is free again at once.
    assert.equal((await call(honest, { export: 'add', args: [1, 2], on: honest.peerId }, 30_000)).value, 3)
  })

  test('a worker that signs a malformed result is scored, and the task runs elsewhere with the right value', async () => {
    // With the target gone, the caller sees itself and the hostile worker; the hostile worker
    // announces far more free slots, so placement tries it first, every time.
    await target.stop()
    await waitFor('the caller to stop placing tasks on the stopped peer', async () =>
      !(await honest.peers()).some(p => p.peerId === target.peerId && p.state === 'alive'), 30_000)

    const { host, rpc, privateKey } = await hostilePeer(net.networkId)
    hostiles.push(host)
    const hostileId = host.peerId.toString()
    let result = Uint8Array.of(0xff)
    let served = 0
    await rpc.handle({
      protocol: taskProtocol(net.networkId),
      frameBytesMax: 2 * 1024 * 1024,
      inflightMax: 8,
      handler: async (body) => {
        served++
        const request = parseTaskRequest(body)
        const id = await taskId(request.fn, request.export, request.args)
        const resultCid = CID.create(1, dagCbor.code, await sha256.digest(result))
        const signature = await privateKey.sign(attestationSigningBytes(id, resultCid, hostileId))
        return encodeTaskReply({ attestation: { task: id, result: resultCid, peer: hostileId, signature }, result, timings: { queueMs: 0, fetchMs: 0, runMs: 0 } })
      }
    })
    const incarnation = Date.now()
    let seq = 0
    const announcement = (): Uint8Array => encodeAnnouncement({
      peerId: hostileId,
      networkId: net.networkId,
      incarnation,
      seq: ++seq,
      version: VERSION,
      addrs: host.getMultiaddrs().map(a => a.toString()).slice(0, 4),
      capacity: { slotsFree: 1000, slotsMax: 1000, queueLength: 0 }
    })
    await rpc.handle({ protocol: helloProtocol(net.networkId), frameBytesMax: 16 * 1024, inflightMax: 2, handler: async () => announcement() })
    const honestId = peerIdFromString(honest.peerId)
    // Keep announcing while connected, as a live peer does (the caller hangs up on each offence).
    let announcing = true
    const announcer = (async () => {
      while (announcing) {
        // Only over an open connection: a request to a peer id alone would start a dial of its
        // own, and libp2p would make the test's dial wait behind it.
        if (host.getConnections(honestId).length > 0) {
          await rpc.request(honestId, helloProtocol(net.networkId), announcement(), { timeoutMs: 2000 }).catch(() => {})
        }
        await new Promise(resolve => setTimeout(resolve, 300))
      }
    })()

    const nested = new Uint8Array(50_001).fill(0x81) // 50,000 arrays of one item, around an empty one
    nested[50_000] = 0x80
    try {
      for (const [what, bytes] of [['the single byte ff', Uint8Array.of(0xff)], ['50,000 nested arrays', nested]] as const) {
        result = bytes
        await dialWithRetry(host, honest.tcpAddr)
        await waitFor('the caller to see the hostile worker alive', async () =>
          (await honest.peers()).some(p => p.peerId === hostileId && p.state === 'alive'), 20_000)
        const servedBefore = served
        const answer = await call(honest, { export: 'add', args: [20, 22] }, 30_000)
        assert.equal(answer.value, 42, `${what}: ${JSON.stringify(answer)}`)
        assert.equal(answer.peer, honest.peerId, what)
        assert.equal(answer.attempts, 2, what)
        assert.equal(served, servedBefore + 1, `${what}: the hostile worker was tried first`)
        await waitFor(`the caller to score the worker for ${what}`, () =>
          honest.stderr.split('\n').filter(line => line.includes('peer broke protocol') && line.includes(hostileId) && line.includes('result of task')).length >= (what.startsWith('the single') ? 1 : 2), 10_000)
      }
    } finally {
      announcing = false
      await announcer
    }
    // Neither an error line nor a stack trace (a logged stack shows as "\n    at …" inside a JSON line).
    assert.doesNotMatch(honest.stderr, /"level":"error"|\\n\s+at |\n\s+at /, 'the caller logged no error or stack trace')
  })
})
