/**
 * The offence policy (src/net/peer-scoring.ts) and membership records (src/net/membership-record.ts)
 * against a real peer repo on a temporary SQLite file and the real blocklist; hang-ups and
 * admission are stubs that count.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { ProtocolViolationError } from '../../src/model/errors.ts'
import { recordMembershipEvent, redialCandidates } from '../../src/net/membership-record.ts'
import { PeerScoring } from '../../src/net/peer-scoring.ts'
import { createLogger } from '../../src/node/logger.ts'
import { BLOCK_SCORE_MAX, VIOLATION_SCORE, createBlocklist } from '../../src/protocol/admission/index.ts'
import { createMembership } from '../../src/protocol/membership/index.ts'
import { createPeerRepo, openDatabase } from '../../src/store/index.ts'
import type { Database, PeerRepo } from '../../src/store/index.ts'

const log = createLogger('test', { level: 'silent' })

describe('peer scoring and membership records', () => {
  let root: string
  let db: Database
  let peers: PeerRepo

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'rhizome-peer-scoring-'))
    db = openDatabase(join(root, 'rhizome.db'))
    peers = createPeerRepo(db)
  })
  after(async () => {
    db.close()
    await rm(root, { recursive: true, force: true })
  })

  test('each violation is recorded, scored, told to admission and hung up; the one reaching BLOCK_SCORE_MAX blocks', async () => {
    const remote = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const id = remote.toString()
    const blocklist = createBlocklist()
    const scores: number[] = []
    const hangUps: string[] = []
    const scoring = new PeerScoring({
      peers, blocklist, log, now: () => 1000,
      onScore: (_peer, score) => { scores.push(score) },
      hangUp: async (peer) => { hangUps.push(peer.toString()) }
    })
    const violations = BLOCK_SCORE_MAX / VIOLATION_SCORE
    for (let i = 1; i < violations; i++) scoring.handleViolation(remote, '/rhizome/x/blob/1.0.0', new ProtocolViolationError(`bad ${i}`))
    assert.equal(blocklist.isBlocked(id, 1000), false, 'one violation short of the block')
    scoring.handleViolation(remote, '/rhizome/x/blob/1.0.0', new ProtocolViolationError('the last straw'))
    assert.equal(blocklist.isBlocked(id, 1000), true)
    assert.deepEqual(scores, Array.from({ length: violations }, (_, i) => VIOLATION_SCORE * (i + 1)))
    assert.equal(hangUps.length, violations)
    assert.equal(peers.getPeer(id)?.score, BLOCK_SCORE_MAX)
    const events = peers.recentPeerEvents(100, { peerId: id })
    assert.equal(events.filter(e => e.type === 'violation').length, violations)
    assert.match(events[0].detail ?? '', /^\/rhizome\/x\/blob\/1\.0\.0: the last straw/)
  })

  test('a membership transition is recorded with the entry as it stands; gone peers are not redialed', async () => {
    const self = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const membership = createMembership({ selfId: self, networkId: 'n', version: 'v', incarnation: 1, addrs: [], capacity: { slotsFree: 1, slotsMax: 1, queueLength: 0 } })
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    membership.handleAnnouncement({ peerId: other, networkId: 'n', incarnation: 5, seq: 1, version: 'v', addrs: ['/ip4/127.0.0.1/tcp/4001'], capacity: { slotsFree: 3, slotsMax: 4, queueLength: 2 } }, 2000)
    for (let out = membership.poll(); out !== undefined; out = membership.poll()) {
      if (out.type !== 'announce') recordMembershipEvent({ peers, membership }, out)
    }
    const row = peers.getPeer(other)
    assert.equal(row?.state, 'alive')
    assert.deepEqual(row?.addrs, ['/ip4/127.0.0.1/tcp/4001'])
    assert.equal(row?.queueLength, 2)
    assert.deepEqual(peers.recentPeerEvents(10, { peerId: other }).map(e => e.type), ['peer:joined'])
    assert.ok(redialCandidates({ peers }, 8).some(p => p.peerId === other))
    peers.upsertPeer({ peerId: other, state: 'gone', addrs: ['/ip4/127.0.0.1/tcp/4001'], lastSeenMs: 3000 })
    assert.ok(!redialCandidates({ peers }, 8).some(p => p.peerId === other))
    assert.ok(redialCandidates({ peers }, 0).length === 0)
  })
})
