/**
 * A hostile peer — a real libp2p host in this test process — sends malformed and oversized
 * gossip and protocol messages to a real Rhizome peer. The receiver rejects each one, scores the
 * sender down and disconnects it, blocks it after repeated offences, and keeps serving everyone
 * else.
 */
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import * as dagCbor from '@ipld/dag-cbor'
import { after, before, describe, test } from 'node:test'
import { blobProtocol } from '../../src/net/blob-service.ts'
import { createHost } from '../../src/net/host.ts'
import { helloProtocol, membershipTopic } from '../../src/net/membership-service.ts'
import { ANNOUNCEMENT_BYTES_MAX, encodeAnnouncement } from '../../src/wire/membership-codec.ts'
import { encodeFrame } from '../../src/wire/frame.ts'
import { TestNetwork, waitFor } from '../helpers/peers.ts'
import type { Host } from '../../src/net/host.ts'
import type { TestPeer } from '../helpers/peers.ts'

describe('a hostile peer cannot take a peer down', { timeout: 180_000 }, () => {
  let net: TestNetwork
  let target: TestPeer
  let witness: TestPeer
  let hostile: Host
  let closes = 0

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
    hostile.services.pubsub.subscribe(membershipTopic(net.networkId))
    // Count connections to the target as they close: either side may redial soon after (the
    // DHT and gossipsub reconnect to known peers), so the state alone cannot show a hang-up.
    hostile.addEventListener('connection:close', (evt) => {
      if (evt.detail.remotePeer.toString() === target.peerId) closes++
    })
  })
  after(async () => {
    await hostile?.stop()
    await net?.close()
  })

  const hostileId = (): string => hostile.peerId.toString()
  const violations = (): string[] => target.stderr.split('\n').filter(line => line.includes('peer broke protocol') && line.includes(hostileId()))

  async function connect (): Promise<void> {
    // A handshake can be cut short when the machine is loaded (peers starting in parallel
    // tests); an honest retry, bounded. A blocked peer fails all three.
    for (let attempt = 1; ; attempt++) {
      try {
        await hostile.dial(multiaddr(target.tcpAddr), { signal: AbortSignal.timeout(10_000) })
        break
      } catch (err) {
        if (attempt >= 3) throw err
        await new Promise(resolve => setTimeout(resolve, 500))
      }
    }
    await waitFor('the target to appear as a gossip subscriber', () =>
      hostile.services.pubsub.getSubscribers(membershipTopic(net.networkId)).some(p => p.toString() === target.peerId), 15_000)
  }

  /** Do one bad thing; the target must log it, drop the connection and keep running. */
  async function offend (what: string, act: () => Promise<void>, logPattern: RegExp): Promise<void> {
    const before = violations().length
    await connect()
    const closesBefore = closes
    await act()
    await waitFor(`the target to reject ${what}`, () => violations().length > before, 15_000)
    assert.match(violations().at(-1) ?? '', logPattern, what)
    await waitFor(`the target to disconnect the hostile peer after ${what}`, () => closes > closesBefore, 15_000)
    const status = await target.api<{ peerId: string }>('/v1/status')
    assert.equal(status.peerId, target.peerId, `target still answers after ${what}`)
  }

  async function publish (data: Uint8Array): Promise<void> {
    await hostile.services.pubsub.publish(membershipTopic(net.networkId), data)
  }

  async function sendRaw (protocol: string, bytes: Uint8Array): Promise<void> {
    const stream = await hostile.dialProtocol(multiaddr(target.tcpAddr), protocol, { signal: AbortSignal.timeout(10_000) })
    stream.send(bytes)
  }

  test('garbage, oversized and forged gossip, and malformed protocol frames are each rejected; five offences block the peer', async () => {
    await offend('random bytes on the membership topic', async () => {
      await publish(new Uint8Array(200).map((_, i) => (i * 7919) % 251))
    }, /membership\/1.*(dag-cbor|decode|not a map|ProtocolViolation|invalid)/i)

    await offend('an announcement one byte past its size limit', async () => {
      await publish(new Uint8Array(ANNOUNCEMENT_BYTES_MAX + 1))
    }, /more than the limit of 8192 bytes/)

    await offend('an announcement forged for another peer id', async () => {
      await publish(encodeAnnouncement({
        peerId: witness.peerId,
        networkId: net.networkId,
        incarnation: Date.now() + 60_000,
        seq: 1,
        version: '0.0.0',
        addrs: [],
        capacity: { slotsFree: 0, slotsMax: 1, queueLength: 0 }
      }))
    }, /was signed by/)

    await offend('a hello frame whose length prefix claims 10 MB', async () => {
      await sendRaw(helloProtocol(net.networkId), Uint8Array.from([0x80, 0xad, 0xe2, 0x04]))
    }, /hello.*more than the limit/)

    await offend('a blob request that is not an rpc envelope', async () => {
      await sendRaw(blobProtocol(net.networkId), encodeFrame(dagCbor.encode({ hello: 'world' })))
    }, /blob.*rpc frame id/)

    // Five offences reach the block threshold: the target now refuses the hostile peer outright.
    await assert.rejects(async () => { await connect() })

    // The witness saw none of it: the target is alive in its view and the target still serves.
    const view = await witness.peers()
    assert.equal(view.find(p => p.peerId === target.peerId)?.state, 'alive')
    const forged = view.find(p => p.peerId === witness.peerId)
    assert.equal(forged, undefined)
    const status = await target.api<{ peers: { alive: number } }>('/v1/status')
    assert.ok(status.peers.alive >= 1)
  })
})
