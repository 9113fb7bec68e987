/**
 * MembershipService with stub components: the real membership state machine, a stub gossip
 * (a Map of validators and a list of publications), a stub host (an EventTarget, dials that wait
 * on their signal), and hello over RPC on in-memory stream pairs. Gossip checks, hello, redial,
 * and stop() aborting hellos and dials in flight.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { MembershipService, REDIAL_PEERS_MAX, helloProtocol, membershipTopic } from '../../src/net/membership-service.ts'
import { createLogger } from '../../src/node/logger.ts'
import { createMembership } from '../../src/protocol/membership/index.ts'
import { encodeAnnouncement } from '../../src/wire/membership-codec.ts'
import { MemoryNet, deferred, waitFor } from '../helpers/memory-net.ts'
import type { MembershipServiceComponents } from '../../src/net/membership-service.ts'
import type { Announcement, MembershipEvent } from '../../src/protocol/membership/index.ts'
import type { MemoryPeer, Violation } from '../helpers/memory-net.ts'
import type { Message } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'

const log = createLogger('test', { level: 'silent' })
const NETWORK = 'memory'

function announcement (peerId: string, seq = 1, networkId = NETWORK): Announcement {
  return { peerId, networkId, incarnation: 1, seq, version: 'test', addrs: ['/ip4/127.0.0.1/tcp/4001'], capacity: { slotsFree: 1, slotsMax: 1, queueLength: 0 } }
}

function stubHost (): MembershipServiceComponents['host'] & EventTarget & { dials: AbortSignal[], hangUps: string[] } {
  const host = new EventTarget() as EventTarget & { dials: AbortSignal[], hangUps: string[], [k: string]: unknown }
  host.dials = []
  host.hangUps = []
  host.getConnections = () => []
  host.getMultiaddrs = () => []
  host.dial = async (_addrs: unknown, { signal }: { signal: AbortSignal }) => {
    host.dials.push(signal)
    return await new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))
  }
  host.hangUp = async (peer: PeerId) => { host.hangUps.push(peer.toString()) }
  return host as unknown as MembershipServiceComponents['host'] & EventTarget & { dials: AbortSignal[], hangUps: string[] }
}

function stubPubsub (): MembershipServiceComponents['pubsub'] & { published: Uint8Array[], subscribed: Set<string> } {
  const published: Uint8Array[] = []
  const subscribed = new Set<string>()
  return {
    published,
    subscribed,
    topicValidators: new Map(),
    subscribe: (topic: string) => { subscribed.add(topic) },
    unsubscribe: (topic: string) => { subscribed.delete(topic) },
    publish: async (_topic: string, data: Uint8Array) => { published.push(data); return { recipients: [] } }
  } as unknown as MembershipServiceComponents['pubsub'] & { published: Uint8Array[], subscribed: Set<string> }
}

interface Side {
  peer: MemoryPeer
  service: MembershipService
  host: ReturnType<typeof stubHost>
  pubsub: ReturnType<typeof stubPubsub>
  events: MembershipEvent[]
  proven: string[]
  violations: Violation[]
  stop: () => Promise<void>
}

async function side (net: MemoryNet, overrides: Partial<MembershipServiceComponents> = {}, init: { redialPeersMax?: number } = {}): Promise<Side> {
  const peer = await net.peer()
  const rpc = net.rpc(peer)
  const host = stubHost()
  const pubsub = stubPubsub()
  const events: MembershipEvent[] = []
  const proven: string[] = []
  const violations: Violation[] = []
  const membership = createMembership({
    selfId: peer.peerId.toString(), networkId: NETWORK, version: 'test', incarnation: 1, addrs: [],
    capacity: { slotsFree: 1, slotsMax: 1, queueLength: 0 }
  })
  const service = new MembershipService({
    membership, host, pubsub, rpc, log, now: Date.now,
    onEvent: (event) => { events.push(event) },
    onProven: (id) => { proven.push(id) },
    onViolation: (remote, protocol, error) => { violations.push({ peer: remote.toString(), protocol, error }) },
    ...overrides
  }, { networkId: NETWORK, ...init })
  await service.start()
  return { peer, service, host, pubsub, events, proven, violations, stop: async () => { await service.stop(); await rpc.stop() } }
}

function gossip (validate: (peer: PeerId, message: Message) => unknown, from: PeerId, author: PeerId, data: Uint8Array): unknown {
  return validate(from, { type: 'signed', from: author, data, topic: membershipTopic(NETWORK), sequenceNumber: 1n, signature: new Uint8Array(), key: undefined } as unknown as Message)
}

describe('MembershipService with stub components', () => {
  test('start publishes an announcement and subscribes; stop undoes both', async () => {
    const net = new MemoryNet()
    const a = await side(net)
    assert.equal(a.pubsub.published.length, 1)
    assert.ok(a.pubsub.subscribed.has(membershipTopic(NETWORK)))
    assert.ok(a.pubsub.topicValidators.has(membershipTopic(NETWORK)))
    await a.stop()
    assert.equal(a.pubsub.subscribed.size, 0)
    assert.equal(a.pubsub.topicValidators.size, 0)
  })

  test('an announcement signed by its peer is accepted: the peer joins, is proven, and is dialed', async () => {
    const net = new MemoryNet()
    const a = await side(net)
    const b = await net.peer()
    try {
      const validate = a.pubsub.topicValidators.get(membershipTopic(NETWORK))!
      const verdict = gossip(validate, b.peerId, b.peerId, encodeAnnouncement(announcement(b.peerId.toString())))
      assert.equal(verdict, TopicValidatorResult.Accept)
      assert.deepEqual(a.events.map(e => [e.type, e.peerId]), [['peer:joined', b.peerId.toString()]])
      assert.deepEqual(a.proven, [b.peerId.toString()])
      assert.equal(a.host.dials.length, 1)
      assert.equal(a.violations.length, 0)
    } finally {
      await a.stop()
    }
  })

  test('an announcement for one peer signed by another is rejected and reported', async () => {
    const net = new MemoryNet()
    const a = await side(net)
    const [b, c] = [await net.peer(), await net.peer()]
    try {
      const validate = a.pubsub.topicValidators.get(membershipTopic(NETWORK))!
      assert.equal(gossip(validate, c.peerId, c.peerId, encodeAnnouncement(announcement(b.peerId.toString()))), TopicValidatorResult.Reject)
      assert.equal(gossip(validate, c.peerId, c.peerId, encodeAnnouncement(announcement(c.peerId.toString(), 1, 'elsewhere'))), TopicValidatorResult.Reject)
      assert.deepEqual(a.violations.map(v => [v.peer, v.error.name]), [[c.peerId.toString(), 'ProtocolViolationError'], [c.peerId.toString(), 'NetworkMismatchError']])
      assert.equal(a.events.length, 0)
    } finally {
      await a.stop()
    }
  })

  test('identify with the hello protocol starts a hello: both sides learn each other at once', async () => {
    const net = new MemoryNet()
    const a = await side(net)
    const b = await side(net)
    try {
      a.host.dispatchEvent(new CustomEvent('peer:identify', { detail: { peerId: b.peer.peerId, protocols: [helloProtocol(NETWORK)] } }))
      await waitFor('both to see the other join', () => a.events.length === 1 && b.events.length === 1)
      assert.equal(a.events[0].peerId, b.peer.peerId.toString())
      assert.equal(b.events[0].peerId, a.peer.peerId.toString())
      assert.ok(b.proven.includes(a.peer.peerId.toString()))
    } finally {
      await a.stop()
      await b.stop()
    }
  })

  test('stop() aborts a hello in flight and the dials it started', async () => {
    const net = new MemoryNet()
    const helloSignal = deferred<AbortSignal>()
    const b = await net.peer()
    const a = await side(net, {
      rpc: {
        handle: async () => {},
        unhandle: async () => {},
        request: async (_peer, _protocol, _body, options = {}) => {
          helloSignal.resolve(options.signal!)
          return await new Promise((_resolve, reject) => options.signal?.addEventListener('abort', () => reject(options.signal?.reason), { once: true }))
        }
      },
      knownPeers: () => [{ peerId: b.peerId.toString(), addrs: ['/ip4/127.0.0.1/tcp/4001'] }]
    })
    assert.equal(a.host.dials.length, 1, 'the known peer was redialed on start')
    a.host.dispatchEvent(new CustomEvent('peer:identify', { detail: { peerId: b.peerId, protocols: [helloProtocol(NETWORK)] } }))
    const signal = await helloSignal.promise
    assert.equal(signal.aborted, false)
    await a.stop()
    assert.equal(signal.aborted, true)
    assert.equal(a.host.dials[0].aborted, true)
  })

  test('on start at most redialPeersMax known peers are redialed (default REDIAL_PEERS_MAX)', async () => {
    const net = new MemoryNet()
    const known = await Promise.all(Array.from({ length: REDIAL_PEERS_MAX + 1 }, async () => (await net.peer()).peerId.toString()))
    const knownPeers = (): Array<{ peerId: string, addrs: string[] }> => known.map(peerId => ({ peerId, addrs: ['/ip4/127.0.0.1/tcp/4001'] }))
    const a = await side(net, { knownPeers })
    assert.equal(a.host.dials.length, REDIAL_PEERS_MAX)
    await a.stop()
    assert.ok(a.host.dials.every(signal => signal.aborted))
    const b = await side(net, { knownPeers }, { redialPeersMax: 3 })
    assert.equal(b.host.dials.length, 3)
    await b.stop()
  })

  test('a known peer with an address that does not parse is skipped, not thrown on', async () => {
    const net = new MemoryNet()
    const a = await side(net, { knownPeers: () => [{ peerId: 'not-a-peer', addrs: ['/ip4/127.0.0.1/tcp/1'] }] })
    assert.equal(a.host.dials.length, 0)
    await a.stop()
  })
})
