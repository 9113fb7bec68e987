import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  openDatabase,
  createPeerRepo,
  peerAddrsMax,
  peerEventDetailCharsMax,
  peerScoreMax,
  peerScoreMin,
  peersMaxDefault,
  peerEventsMaxDefault
} from '../../src/store/index.ts'
import type { Database, PeerUpsert } from '../../src/store/index.ts'

function peer (peerId: string, lastSeenMs: number, extra: Partial<PeerUpsert> = {}): PeerUpsert {
  return { peerId, state: 'alive', addrs: ['/ip4/127.0.0.1/tcp/4001'], lastSeenMs, ...extra }
}

describe('PeerRepo', () => {
  let dir: string
  let path: string
  let db: Database
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rhizome-peers-'))
    path = join(dir, 'rhizome.sqlite')
    db = openDatabase(path)
  })
  afterEach(async () => {
    db.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('stores a peer and lists it back with all fields, unknown ones absent', () => {
    const repo = createPeerRepo(db)
    repo.upsertPeer({
      peerId: 'p1', state: 'alive', addrs: ['/ip4/10.0.0.1/tcp/1', '/ip6/::1/tcp/2/ws'], version: '0.1.0',
      incarnation: 3, slotsFree: 2, slotsMax: 4, queueLength: 7, lastSeenMs: 1000
    })
    repo.upsertPeer(peer('p2', 2000))
    assert.deepEqual(repo.listPeers(), [
      { peerId: 'p2', state: 'alive', addrs: ['/ip4/127.0.0.1/tcp/4001'], firstSeenMs: 2000, lastSeenMs: 2000, score: 0 },
      {
        peerId: 'p1', state: 'alive', addrs: ['/ip4/10.0.0.1/tcp/1', '/ip6/::1/tcp/2/ws'], version: '0.1.0',
        incarnation: 3, slotsFree: 2, slotsMax: 4, queueLength: 7, firstSeenMs: 1000, lastSeenMs: 1000, score: 0
      }
    ])
    assert.equal(repo.getPeer('missing'), undefined)
  })

  it('an update keeps first-seen time and score, replaces the rest', () => {
    const repo = createPeerRepo(db)
    repo.upsertPeer(peer('p1', 1000, { slotsFree: 1 }))
    repo.adjustScore('p1', 5)
    repo.upsertPeer(peer('p1', 3000, { state: 'suspect', addrs: [] }))
    assert.deepEqual(repo.getPeer('p1'), { peerId: 'p1', state: 'suspect', addrs: [], firstSeenMs: 1000, lastSeenMs: 3000, score: 5 })
  })

  it('survives a restart: a reopened database lists the peers it knew', () => {
    createPeerRepo(db).upsertPeer(peer('p1', 1000))
    db.close()
    db = openDatabase(path)
    assert.deepEqual(createPeerRepo(db).listPeers().map(p => p.peerId), ['p1'])
  })

  it('keeps at most peersMax peers, dropping the least recently seen', () => {
    assert.equal(peersMaxDefault, 10_000)
    const repo = createPeerRepo(db, { peersMax: 3 })
    repo.upsertPeer(peer('old', 1))
    repo.upsertPeer(peer('b', 2))
    repo.upsertPeer(peer('c', 3))
    repo.upsertPeer(peer('old', 1)) // an update never prunes
    assert.equal(repo.listPeers().length, 3)
    repo.upsertPeer(peer('d', 4)) // one past the limit
    assert.deepEqual(repo.listPeers().map(p => p.peerId), ['d', 'c', 'b'])
  })

  it('listPeers honours its limit and refuses one past peersMax', () => {
    const repo = createPeerRepo(db, { peersMax: 3 })
    for (const [i, id] of ['a', 'b', 'c'].entries()) repo.upsertPeer(peer(id, i))
    assert.deepEqual(repo.listPeers({ limit: 2 }).map(p => p.peerId), ['c', 'b'])
    assert.equal(repo.listPeers({ limit: 3 }).length, 3)
    assert.throws(() => repo.listPeers({ limit: 4 }), { name: 'InvalidInputError' })
  })

  it(`accepts ${peerAddrsMax} addresses and refuses one more`, () => {
    const repo = createPeerRepo(db)
    const addrs = Array.from({ length: peerAddrsMax + 1 }, (_, i) => `/ip4/10.0.0.1/tcp/${i + 1}`)
    repo.upsertPeer(peer('p1', 1, { addrs: addrs.slice(0, peerAddrsMax) }))
    assert.equal(repo.getPeer('p1')?.addrs.length, peerAddrsMax)
    assert.throws(() => repo.upsertPeer(peer('p2', 1, { addrs })), { name: 'InvalidInputError' })
    assert.equal(repo.getPeer('p2'), undefined)
  })

  it('refuses invalid peers: empty id, non-string address, fractional or negative numbers', () => {
    const repo = createPeerRepo(db)
    assert.throws(() => repo.upsertPeer(peer('', 1)), { name: 'InvalidInputError' })
    assert.throws(() => repo.upsertPeer(peer('p', 1, { addrs: [7 as unknown as string] })), { name: 'InvalidInputError' })
    assert.throws(() => repo.upsertPeer(peer('p', 1.5)), { name: 'InvalidInputError' })
    assert.throws(() => repo.upsertPeer(peer('p', 1, { slotsFree: -1 })), { name: 'InvalidInputError' })
    assert.deepEqual(repo.listPeers(), [])
  })

  it('records events and returns the newest first, for all peers or one', () => {
    const repo = createPeerRepo(db)
    const id1 = repo.recordPeerEvent('p1', 'joined', 100)
    const id2 = repo.recordPeerEvent('p2', 'joined', 110)
    const id3 = repo.recordPeerEvent('p1', 'misbehaved', 120, 'sent a blob that did not match its CID')
    assert.ok(id1 < id2 && id2 < id3)
    assert.deepEqual(repo.recentPeerEvents(10), [
      { id: id3, peerId: 'p1', type: 'misbehaved', atMs: 120, detail: 'sent a blob that did not match its CID' },
      { id: id2, peerId: 'p2', type: 'joined', atMs: 110 },
      { id: id1, peerId: 'p1', type: 'joined', atMs: 100 }
    ])
    assert.deepEqual(repo.recentPeerEvents(2).map(e => e.id), [id3, id2])
    assert.deepEqual(repo.recentPeerEvents(10, { peerId: 'p1' }).map(e => e.id), [id3, id1])
    assert.deepEqual(repo.recentPeerEvents(0), [])
  })

  it('keeps at most peerEventsMax events, deleting the oldest', () => {
    assert.equal(peerEventsMaxDefault, 100_000)
    const repo = createPeerRepo(db, { peerEventsMax: 3 })
    for (let i = 0; i < 3; i++) repo.recordPeerEvent('p', 'e', i)
    assert.equal(repo.recentPeerEvents(3).length, 3)
    repo.recordPeerEvent('p', 'e', 3) // one past the limit
    assert.deepEqual(repo.recentPeerEvents(3).map(e => e.atMs), [3, 2, 1])
    const { n } = db.sqlite.prepare('SELECT count(*) AS n FROM peer_events').get() as { n: number }
    assert.equal(n, 3)
    assert.throws(() => repo.recentPeerEvents(4), { name: 'InvalidInputError' })
  })

  it('prunes down to a smaller peerEventsMax after a restart', () => {
    const big = createPeerRepo(db, { peerEventsMax: 10 })
    for (let i = 0; i < 10; i++) big.recordPeerEvent('p', 'e', i)
    const small = createPeerRepo(db, { peerEventsMax: 2 })
    small.recordPeerEvent('p', 'e', 10)
    assert.deepEqual(small.recentPeerEvents(2).map(e => e.atMs), [10, 9])
    assert.equal(big.recentPeerEvents(10).length, 2)
  })

  it(`keeps a detail of ${peerEventDetailCharsMax} characters whole and cuts one longer`, () => {
    const repo = createPeerRepo(db)
    const exact = 'x'.repeat(peerEventDetailCharsMax)
    repo.recordPeerEvent('p', 'e', 1, exact)
    repo.recordPeerEvent('p', 'e', 2, exact + 'y')
    const [cut, whole] = repo.recentPeerEvents(2)
    assert.equal(whole.detail, exact)
    assert.equal(cut.detail?.length, peerEventDetailCharsMax)
    assert.ok(cut.detail?.endsWith('…'))
  })

  it('refuses events with an empty type or a bad time', () => {
    const repo = createPeerRepo(db)
    assert.throws(() => repo.recordPeerEvent('p', '', 1), { name: 'InvalidInputError' })
    assert.throws(() => repo.recordPeerEvent('p', 'e', -1), { name: 'InvalidInputError' })
    assert.throws(() => repo.recordPeerEvent('p', 'e', Number.NaN), { name: 'InvalidInputError' })
    assert.deepEqual(repo.recentPeerEvents(10), [])
  })

  it('adjusts a known peer\'s score and returns the new value', () => {
    const repo = createPeerRepo(db)
    repo.upsertPeer(peer('p1', 1))
    assert.equal(repo.adjustScore('p1', 10), 10)
    assert.equal(repo.adjustScore('p1', -25), -15)
    assert.equal(repo.getPeer('p1')?.score, -15)
  })

  it('clamps the score at its bounds', () => {
    const repo = createPeerRepo(db)
    repo.upsertPeer(peer('p1', 1))
    assert.equal(repo.adjustScore('p1', peerScoreMax), peerScoreMax)
    assert.equal(repo.adjustScore('p1', 1), peerScoreMax) // one past the top
    assert.equal(repo.adjustScore('p1', -peerScoreMax), 0)
    assert.equal(repo.adjustScore('p1', peerScoreMin - 1), peerScoreMin) // one past the bottom
  })

  it('refuses to score an unknown peer or by a non-integer', () => {
    const repo = createPeerRepo(db)
    assert.throws(() => repo.adjustScore('ghost', 1), (err: Error) => err.name === 'NotFoundError' && err.message.includes('ghost'))
    repo.upsertPeer(peer('p1', 1))
    assert.throws(() => repo.adjustScore('p1', 0.5), { name: 'InvalidInputError' })
    assert.equal(repo.getPeer('p1')?.score, 0)
  })

  it('refuses a non-positive peerEventsMax or peersMax', () => {
    assert.throws(() => createPeerRepo(db, { peerEventsMax: 0 }), { name: 'InvalidInputError' })
    assert.throws(() => createPeerRepo(db, { peersMax: 0 }), { name: 'InvalidInputError' })
  })
})
