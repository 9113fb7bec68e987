/**
 * MembershipService's dials to newly seen peers, on a real libp2p host in this process: the
 * peers it learns of are 127.0.0.1 addresses of a TCP server that accepts and then says nothing
 * (a stalled or hostile peer), so every dial hangs until its own deadline. The service must have
 * at most DIALS_INFLIGHT_MAX of them open at once, however many peers join.
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createHost } from '../../src/net/host.ts'
import { DIALS_INFLIGHT_MAX, MembershipService } from '../../src/net/membership-service.ts'
import { RpcService } from '../../src/net/rpc.ts'
import { createLogger } from '../../src/node/logger.ts'
import { createMembership } from '../../src/protocol/membership/index.ts'
import type { Host } from '../../src/net/host.ts'
import type { Membership } from '../../src/protocol/membership/index.ts'
import type { Server, Socket } from 'node:net'

const log = createLogger('rhizome:test', { level: 'silent', write: () => {} })
const NETWORK_ID = 'membership-service-test'
/** Far more peers joining at once than the service may dial at once. */
const PEERS_JOINING = 3 * DIALS_INFLIGHT_MAX

describe('MembershipService dials to new peers', { timeout: 60_000 }, () => {
  let host: Host
  let rpc: RpcService
  let membership: Membership
  let service: MembershipService
  let server: Server
  let port = 0
  const sockets: Socket[] = []

  before(async () => {
    server = createServer(socket => { sockets.push(socket); socket.on('error', () => {}) })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as { port: number }).port
    host = await createHost({
      privateKey: await generateKeyPair('Ed25519'),
      networkId: NETWORK_ID,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [],
      mdns: false,
      isBlocked: () => false
    })
    rpc = new RpcService({ libp2p: host, log, onViolation: () => {} })
    membership = createMembership({ selfId: host.peerId.toString(), networkId: NETWORK_ID, version: '0.0.0', incarnation: Date.now() })
    service = new MembershipService({ host, pubsub: host.services.pubsub, rpc, membership, log, now: Date.now, onEvent: () => {}, onViolation: () => {} }, { networkId: NETWORK_ID })
    await service.start()
  })
  after(async () => {
    await service?.stop()
    await rpc?.stop()
    await host?.stop()
    for (const socket of sockets) socket.destroy()
    server?.close()
  })

  test(`${PEERS_JOINING} peers join at once; at most ${DIALS_INFLIGHT_MAX} dials are open at a time`, async () => {
    const now = Date.now()
    for (let i = 0; i < PEERS_JOINING; i++) {
      const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
      const verdict = membership.handleAnnouncement({
        peerId,
        networkId: NETWORK_ID,
        incarnation: now,
        seq: 1,
        version: '0.0.0',
        addrs: [`/ip4/127.0.0.1/tcp/${port}`],
        capacity: { slotsFree: 1, slotsMax: 1, queueLength: 0 }
      }, now)
      assert.equal(verdict, 'accepted')
    }
    // The service drains the joins on its next tick (at most TICK_MS_MAX, 1 s) and dials; each
    // dial connects a socket to the server and then hangs (no multistream answer) until its 10 s
    // deadline. Wait until the dials stop coming, well inside that deadline.
    const deadline = Date.now() + 5_000
    let seen = -1
    while (Date.now() < deadline && (sockets.length === 0 || sockets.length !== seen)) {
      seen = sockets.length
      await new Promise(resolve => setTimeout(resolve, 1_000))
    }
    assert.equal(sockets.length, DIALS_INFLIGHT_MAX, `${sockets.length} dials open at once`)
  })
})
