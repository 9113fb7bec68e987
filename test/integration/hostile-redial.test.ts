/**
 * A real peer restarts with many known peers in its table, all of them stalled: each address is
 * a 127.0.0.1 TCP server that accepts and then says nothing, so every redial hangs until its
 * deadline. The peer redials at most REDIAL_PEERS_MAX (8, src/node/node.ts) of them on start —
 * the rest arrive through gossip — so a table full of dead or hostile entries cannot make a
 * starting peer open hundreds of connections at once.
 */
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createPeerRepo, openDatabase } from '../../src/store/index.ts'
import { TestNetwork } from '../helpers/peers.ts'
import type { Server, Socket } from 'node:net'

/** The redial limit on start (REDIAL_PEERS_MAX in src/node/node.ts, docs/LIMITS.md). */
const REDIAL_PEERS_MAX = 8
const KNOWN_PEERS = 3 * REDIAL_PEERS_MAX

describe('a peer starting with a table of stalled known peers', { timeout: 60_000 }, () => {
  let net: TestNetwork
  let server: Server
  const sockets: Socket[] = []

  before(async () => {
    server = createServer(socket => { sockets.push(socket); socket.on('error', () => {}) })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    net = await TestNetwork.create()
    // The first peer's data dir (TestNetwork names it peer-1), with a peer table made beforehand.
    const dataDir = join(net.root, 'peer-1')
    await mkdir(dataDir, { recursive: true })
    const db = openDatabase(join(dataDir, 'rhizome.db'))
    try {
      const peers = createPeerRepo(db)
      for (let i = 0; i < KNOWN_PEERS; i++) {
        const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
        peers.upsertPeer({ peerId, state: 'alive', addrs: [`/ip4/127.0.0.1/tcp/${port}`], lastSeenMs: Date.now() - i })
      }
    } finally {
      db.close()
    }
  })
  after(async () => {
    await net?.close()
    for (const socket of sockets) socket.destroy()
    server?.close()
  })

  test(`${KNOWN_PEERS} known peers: ${REDIAL_PEERS_MAX} are redialled`, async () => {
    const peer = await net.addPeer()
    // Redials start with the peer and hang until their 5 s deadline; wait until they stop
    // coming, inside that deadline.
    const deadline = Date.now() + 4_000
    let seen = -1
    while (Date.now() < deadline && (sockets.length === 0 || sockets.length !== seen)) {
      seen = sockets.length
      await new Promise(resolve => setTimeout(resolve, 750))
    }
    assert.equal(sockets.length, REDIAL_PEERS_MAX, `${sockets.length} redials`)
    const status = await peer.api<{ peerId: string }>('/v1/status')
    assert.equal(status.peerId, peer.peerId)
  })
})
