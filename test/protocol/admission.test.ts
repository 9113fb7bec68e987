// The admission state machine and the blocklist, fed inputs with a fake clock; outputs asserted.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError } from '../../src/model/errors.ts'
import {
  ADMISSION_OPTIONS_DEFAULTS, BLOCKED_PEERS_MAX, BLOCK_MS, BLOCK_SCORE_MAX, CONNECTIONS_MAX_LIMIT, CONNECTIONS_MAX_MIN,
  RESERVED_SHARE_MAX, RESERVED_SHARE_MIN, VIOLATION_SCORE, createAdmission, createBlocklist
} from '../../src/protocol/admission/index.ts'
import type { Admission, AdmissionOptions, CloseOutput, ConnectionInfo } from '../../src/protocol/admission/index.ts'

const { helloDeadlineMs, idleMs } = ADMISSION_OPTIONS_DEFAULTS

function drain (a: Admission): CloseOutput[] {
  const out: CloseOutput[] = []
  for (let o = a.poll(); o !== undefined; o = a.poll()) out.push(o)
  return out
}

let next = 0
/** A connection from its own peer id, on a public address unless given. */
function conn (extra: Partial<ConnectionInfo> = {}): ConnectionInfo {
  next++
  return { id: `c${next}`, peerId: `peer${next}`, address: `198.51.100.${next % 250}`, loopback: false, ...extra }
}

const fresh = { proven: false, score: 0 }
const alive = { proven: true, score: 0 }

function make (options: AdmissionOptions = {}): Admission {
  return createAdmission(options)
}

describe('admission', () => {
  it('defaults: 100 connections, half reserved, 20 s hello deadline, 5 min idle, 8 per address, loopback exempt', () => {
    assert.deepEqual({ ...ADMISSION_OPTIONS_DEFAULTS }, {
      connectionsMax: 100, reservedShare: 0.5, helloDeadlineMs: 20_000, idleMs: 300_000, connectionsPerAddressMax: 8, limitLoopback: false
    })
  })

  it('untrusted connections fill only the unreserved share; past it the oldest untrusted one is closed', () => {
    const a = make({ connectionsMax: 10 })
    const flood = Array.from({ length: 5 }, () => conn())
    for (const c of flood) a.handleOpen(c, fresh, 0)
    assert.deepEqual(drain(a), [])
    assert.deepEqual(a.counts(), { total: 5, trusted: 0, untrusted: 5 })
    // One past the untrusted share (10 - floor(10 × 0.5) = 5).
    const sixth = conn()
    a.handleOpen(sixth, fresh, 1)
    assert.deepEqual(drain(a), [{ type: 'close', id: flood[0].id, peerId: flood[0].peerId, reason: 'full' }])
    assert.deepEqual(a.counts(), { total: 5, trusted: 0, untrusted: 5 })
  })

  it('a flood cannot touch the reserved share: proven peers keep their connections and new proven peers get in', () => {
    const a = make({ connectionsMax: 10 })
    const honest = Array.from({ length: 5 }, () => conn())
    for (const c of honest) a.handleOpen(c, alive, 0)
    const closed: CloseOutput[] = []
    for (let i = 0; i < 50; i++) {
      a.handleOpen(conn(), fresh, i)
      closed.push(...drain(a))
    }
    assert.equal(closed.length, 45)
    assert.ok(closed.every(o => o.reason === 'full' && !honest.some(h => h.id === o.id)))
    assert.deepEqual(a.counts(), { total: 10, trusted: 5, untrusted: 5 })
    // A newcomer that proves itself becomes trusted; the table is full, so the worst untrusted one goes.
    const newcomer = conn()
    a.handleOpen(newcomer, fresh, 60)
    const [pruned] = drain(a)
    assert.equal(pruned.reason, 'full')
    assert.notEqual(pruned.id, newcomer.id)
    a.handleProven(newcomer.peerId)
    assert.deepEqual(a.counts(), { total: 10, trusted: 6, untrusted: 4 })
  })

  it('when the table is all trusted, a new connection is refused (closed itself), and admits() says so first', () => {
    const a = make({ connectionsMax: 4 })
    for (let i = 0; i < 4; i++) a.handleOpen(conn(), alive, 0)
    assert.equal(a.admits('203.0.113.1', false), false)
    const late = conn()
    a.handleOpen(late, fresh, 1)
    assert.deepEqual(drain(a), [{ type: 'close', id: late.id, peerId: late.peerId, reason: 'full' }])
    // A trusted newcomer (alive in membership) is refused the same way: trusted connections are never pruned.
    const trustedLate = conn()
    a.handleOpen(trustedLate, alive, 2)
    assert.deepEqual(drain(a).map(o => o.id), [trustedLate.id])
    assert.equal(a.counts().total, 4)
  })

  it('the worst untrusted connection is the one with the lowest score, then the oldest', () => {
    const a = make({ connectionsMax: 4 })
    const old = conn()
    const offender = conn()
    a.handleOpen(old, fresh, 0)
    a.handleOpen(offender, { proven: true, score: VIOLATION_SCORE }, 1)
    assert.deepEqual(a.counts(), { total: 2, trusted: 0, untrusted: 2 }, 'an offence on record makes a proven peer untrusted')
    a.handleOpen(conn(), fresh, 2)
    assert.deepEqual(drain(a).map(o => o.id), [offender.id])
    a.handleScore(old.peerId, -1)
    a.handleOpen(conn(), fresh, 3)
    assert.deepEqual(drain(a).map(o => o.id), [old.id])
  })

  it('a score change moves all of a peer\'s connections between trusted and untrusted', () => {
    const a = make()
    const first = conn()
    const second = conn({ peerId: first.peerId })
    a.handleOpen(first, fresh, 0)
    a.handleOpen(second, fresh, 0)
    a.handleProven(first.peerId)
    assert.deepEqual(a.counts(), { total: 2, trusted: 2, untrusted: 0 })
    a.handleScore(first.peerId, VIOLATION_SCORE)
    assert.deepEqual(a.counts(), { total: 2, trusted: 0, untrusted: 2 })
    a.handleScore(first.peerId, 0)
    assert.deepEqual(a.counts(), { total: 2, trusted: 2, untrusted: 0 })
    // Proof sticks to the peer: a third connection of a proven peer opens trusted.
    a.handleOpen(conn({ peerId: first.peerId }), fresh, 1)
    assert.deepEqual(a.counts(), { total: 3, trusted: 3, untrusted: 0 })
  })

  it('a connection still unproven at its hello deadline is closed; one ms before, it is not', () => {
    const a = make()
    const silent = conn()
    const honest = conn()
    a.handleOpen(silent, fresh, 1000)
    a.handleOpen(honest, fresh, 1000)
    a.handleProven(honest.peerId)
    assert.equal(a.nextTimeoutMs(), 1000 + helloDeadlineMs)
    a.handleStreams(silent.id, 1, 1000 + helloDeadlineMs - 1)
    a.handleTick(1000 + helloDeadlineMs - 1)
    assert.deepEqual(drain(a), [])
    a.handleTick(1000 + helloDeadlineMs)
    assert.deepEqual(drain(a), [{ type: 'close', id: silent.id, peerId: silent.peerId, reason: 'hello-deadline' }])
    assert.deepEqual(a.counts(), { total: 1, trusted: 1, untrusted: 0 })
  })

  it('a connection with no stream for idleMs is closed, trusted or not; any stream resets its clock', () => {
    const a = make()
    const quiet = conn()
    const busy = conn()
    a.handleOpen(quiet, alive, 0)
    a.handleOpen(busy, alive, 0)
    a.handleStreams(busy.id, 2, idleMs - 1)
    a.handleStreams(quiet.id, 0, idleMs - 1)
    assert.equal(a.nextTimeoutMs(), idleMs)
    a.handleTick(idleMs - 1)
    assert.deepEqual(drain(a), [])
    a.handleTick(idleMs)
    assert.deepEqual(drain(a), [{ type: 'close', id: quiet.id, peerId: quiet.peerId, reason: 'idle' }])
    a.handleTick(2 * idleMs - 2)
    assert.deepEqual(drain(a), [])
    a.handleTick(2 * idleMs - 1)
    assert.deepEqual(drain(a).map(o => o.reason), ['idle'])
    assert.equal(a.nextTimeoutMs(), undefined)
  })

  it('one address holds at most connectionsPerAddressMax; one past it, the oldest untrusted one of that address goes', () => {
    const a = make({ connectionsPerAddressMax: 3 })
    const address = '203.0.113.7'
    const mine = Array.from({ length: 3 }, () => conn({ address }))
    a.handleOpen(mine[0], alive, 0)
    a.handleOpen(mine[1], fresh, 1)
    a.handleOpen(mine[2], fresh, 2)
    a.handleOpen(conn(), fresh, 3) // another address: not counted
    assert.deepEqual(drain(a), [])
    const newest = conn({ address })
    a.handleOpen(newest, fresh, 4)
    assert.deepEqual(drain(a), [{ type: 'close', id: mine[1].id, peerId: mine[1].peerId, reason: 'address-full' }])
    assert.equal(a.admits(address, false), true, 'the address is full, but of connections that may be pruned')
    // With only trusted connections left there, a new one is refused, and admits() says so first.
    a.handleProven(mine[2].peerId)
    a.handleProven(newest.peerId)
    assert.equal(a.admits(address, false), false)
    assert.equal(a.admits('203.0.113.8', false), true, 'other addresses are not affected')
    const refused = conn({ address })
    a.handleOpen(refused, alive, 5)
    assert.deepEqual(drain(a), [{ type: 'close', id: refused.id, peerId: refused.peerId, reason: 'address-full' }])
    assert.deepEqual(a.counts(), { total: 4, trusted: 3, untrusted: 1 }, 'three trusted of this address, one untrusted of another')
  })

  it('loopback is exempt from the per-address limit unless limitLoopback', () => {
    const exempt = make({ connectionsPerAddressMax: 1 })
    for (let i = 0; i < 5; i++) exempt.handleOpen(conn({ address: '127.0.0.1', loopback: true }), fresh, i)
    assert.deepEqual(drain(exempt), [])
    assert.equal(exempt.admits('127.0.0.1', true), true)

    const limited = make({ connectionsPerAddressMax: 1, limitLoopback: true })
    const first = conn({ address: '127.0.0.1', loopback: true })
    limited.handleOpen(first, alive, 0)
    assert.equal(limited.admits('127.0.0.1', true), false)
    limited.handleOpen(conn({ address: '127.0.0.1', loopback: true }), fresh, 1)
    assert.deepEqual(drain(limited).map(o => o.reason), ['address-full'])
    assert.equal(limited.counts().total, 1)
  })

  it('a connection without an IP address (relay, memory) counts against the table only', () => {
    const a = make({ connectionsPerAddressMax: 1 })
    for (let i = 0; i < 3; i++) a.handleOpen(conn({ address: undefined }), fresh, i)
    assert.deepEqual(drain(a), [])
    assert.equal(a.admits(undefined, false), true)
  })

  it('closing is idempotent: a connection closed by admission and then reported closed is gone once', () => {
    const a = make({ connectionsMax: 4 })
    const cs = Array.from({ length: 3 }, () => conn())
    for (const c of cs) a.handleOpen(c, fresh, 0)
    const [closed] = drain(a)
    assert.equal(closed.id, cs[0].id)
    a.handleClose(cs[0].id)
    a.handleClose(cs[0].id)
    a.handleClose('never-opened')
    assert.equal(a.counts().total, 2)
    assert.throws(() => { a.handleOpen(cs[1], fresh, 1) }, /opened twice/)
  })

  it('the clock never runs backwards inside', () => {
    const a = make()
    const c = conn()
    a.handleOpen(c, fresh, 10_000)
    a.handleTick(0)
    assert.equal(a.nextTimeoutMs(), 10_000 + helloDeadlineMs)
  })

  it('options are validated: one past each bound is a ConfigError naming the field', () => {
    const bad: Array<[AdmissionOptions, string]> = [
      [{ connectionsMax: CONNECTIONS_MAX_MIN - 1 }, 'connectionsMax'],
      [{ connectionsMax: CONNECTIONS_MAX_LIMIT + 1 }, 'connectionsMax'],
      [{ connectionsPerAddressMax: 0 }, 'connectionsPerAddressMax'],
      [{ connectionsPerAddressMax: CONNECTIONS_MAX_LIMIT + 1 }, 'connectionsPerAddressMax'],
      [{ reservedShare: RESERVED_SHARE_MIN - 0.01 }, 'reservedShare'],
      [{ reservedShare: RESERVED_SHARE_MAX + 0.01 }, 'reservedShare'],
      [{ helloDeadlineMs: 0 }, 'helloDeadlineMs'],
      [{ idleMs: 2 ** 31 }, 'idleMs']
    ]
    for (const [options, field] of bad) {
      assert.throws(() => make(options), (err: unknown) => err instanceof ConfigError && err.field === field, JSON.stringify(options))
    }
    for (const options of [{ connectionsMax: CONNECTIONS_MAX_MIN }, { connectionsMax: CONNECTIONS_MAX_LIMIT }, { reservedShare: RESERVED_SHARE_MIN }, { reservedShare: RESERVED_SHARE_MAX }]) {
      make(options)
    }
  })

  it('at the smallest table both shares hold a connection', () => {
    for (const reservedShare of [RESERVED_SHARE_MIN, RESERVED_SHARE_MAX]) {
      const a = make({ connectionsMax: CONNECTIONS_MAX_MIN, reservedShare })
      a.handleOpen(conn(), alive, 0)
      a.handleOpen(conn(), fresh, 0)
      assert.deepEqual(drain(a), [], `reservedShare ${reservedShare}`)
    }
  })
})

describe('blocklist', () => {
  it('a score at BLOCK_SCORE_MAX blocks for BLOCK_MS; one point above does not', () => {
    const b = createBlocklist()
    assert.equal(b.handleScore('p', BLOCK_SCORE_MAX + 1, 0), false)
    assert.equal(b.isBlocked('p', 0), false)
    assert.equal(b.handleScore('p', BLOCK_SCORE_MAX, 0), true)
    assert.equal(b.isBlocked('p', BLOCK_MS - 1), true)
    assert.equal(b.isBlocked('p', BLOCK_MS), false)
    assert.equal(b.size(), 0, 'an expired entry is dropped when looked up')
    assert.equal(BLOCK_SCORE_MAX, 5 * VIOLATION_SCORE, 'five offences block a peer')
  })

  it('holds at most BLOCKED_PEERS_MAX entries: one past it drops the entry closest to expiry', () => {
    const b = createBlocklist()
    for (let i = 0; i < BLOCKED_PEERS_MAX; i++) b.handleScore(`p${i}`, BLOCK_SCORE_MAX, i)
    assert.equal(b.size(), BLOCKED_PEERS_MAX)
    b.handleScore('one-more', BLOCK_SCORE_MAX, BLOCKED_PEERS_MAX)
    assert.equal(b.size(), BLOCKED_PEERS_MAX)
    assert.equal(b.isBlocked('p0', BLOCKED_PEERS_MAX), false, 'the oldest entry went')
    assert.equal(b.isBlocked('p1', BLOCKED_PEERS_MAX), true)
    assert.equal(b.isBlocked('one-more', BLOCKED_PEERS_MAX), true)
  })

  it('expired entries go first when a block is added, and a re-block moves the peer to the back', () => {
    const b = createBlocklist({ entriesMax: 3, blockMs: 100 })
    b.handleScore('a', BLOCK_SCORE_MAX, 0)
    b.handleScore('b', BLOCK_SCORE_MAX, 10)
    b.handleScore('a', BLOCK_SCORE_MAX, 20) // a again: now the newest
    b.handleScore('c', BLOCK_SCORE_MAX, 30)
    b.handleScore('d', BLOCK_SCORE_MAX, 40)
    assert.equal(b.size(), 3)
    assert.equal(b.isBlocked('b', 40), false, 'b was the closest to expiry')
    assert.equal(b.isBlocked('a', 40), true)
    b.handleScore('e', BLOCK_SCORE_MAX, 125) // a (until 120) has expired; c, d have not
    assert.equal(b.size(), 3)
    assert.equal(b.isBlocked('c', 125), true)
    assert.equal(b.isBlocked('d', 125), true)
    assert.equal(b.isBlocked('e', 125), true)
  })

  it('options are validated', () => {
    assert.throws(() => createBlocklist({ entriesMax: 0 }), (err: unknown) => err instanceof ConfigError && err.field === 'entriesMax')
    assert.throws(() => createBlocklist({ blockMs: 0 }), (err: unknown) => err instanceof ConfigError && err.field === 'blockMs')
  })
})
