// The reputation machine: score formula, standing thresholds, bans and their expiry, bounded records.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError } from '../../src/model/errors.ts'
import {
  BAN_FIRST_MS, BAN_MAX_MS, banMs, createReputation, PROOFS_REMEMBERED_MAX, RECORDS_COUNT_LIMIT, TRUSTED_AGREEMENTS_MIN
} from '../../src/protocol/reputation/index.ts'
import type { Reputation, ReputationOutput, ReputationRecord } from '../../src/protocol/reputation/index.ts'

function drain (r: Reputation): ReputationOutput[] {
  const out: ReputationOutput[] = []
  for (let o = r.poll(); o !== undefined; o = r.poll()) out.push(o)
  r.checkInvariants()
  return out
}

function observe (r: Reputation, peerId: string, kind: 'agreed' | 'disagreed' | 'failed', times: number, nowMs = 0): void {
  for (let i = 0; i < times; i++) r.handleObserved(peerId, kind, nowMs)
}

const proof = (taskId: string, liar: string): { taskId: string, liar: string, witnesses: string[] } => ({ taskId, liar, witnesses: ['W1', 'W2'] })

describe('reputation: score and standing', () => {
  it('scores the Beta-posterior mean: 0.5 unseen, (1+a)/(2+a+d+w·f)', () => {
    const r = createReputation()
    assert.equal(r.score('X'), 0.5)
    assert.equal(r.standing('X'), 'unknown')
    observe(r, 'A', 'agreed', 10)
    assert.equal(r.score('A'), 11 / 12)
    observe(r, 'A', 'failed', 4)
    assert.equal(r.score('A'), 11 / 13)
    const out = drain(r)
    assert.equal(out.length, 14)
    assert.deepEqual(out.at(-1), { type: 'persist', record: { peerId: 'A', agreements: 10, disagreements: 0, failures: 4, lies: 0, bannedUntilMs: 0, updatedMs: 0 } })
  })

  it(`trusted from ${TRUSTED_AGREEMENTS_MIN} agreements with score ≥ 0.9; one fewer is unknown; disagreements make a peer doubtful`, () => {
    const r = createReputation()
    observe(r, 'A', 'agreed', TRUSTED_AGREEMENTS_MIN - 1)
    assert.equal(r.standing('A'), 'unknown')
    observe(r, 'A', 'agreed', 1)
    assert.equal(r.standing('A'), 'trusted')
    observe(r, 'A', 'disagreed', 1)
    assert.equal(r.standing('A'), 'unknown', '11/13 is below 0.9')
    observe(r, 'B', 'disagreed', 1)
    assert.equal(r.standing('B'), 'doubtful')
  })
})

describe('reputation: proofs and bans', () => {
  it('a first lie bans for 1 h; handleTimeout lifts it at the end; the peer stays doubtful', () => {
    const r = createReputation()
    observe(r, 'L', 'agreed', 20, 0)
    drain(r)
    assert.equal(r.handleProof(proof('t1', 'L'), 1000), 'accepted')
    assert.deepEqual(drain(r).filter(o => o.type === 'banned'), [{ type: 'banned', peerId: 'L', untilMs: 1000 + BAN_FIRST_MS }])
    assert.equal(r.standing('L'), 'banned')
    assert.equal(r.nextTimeoutMs(), 1000 + BAN_FIRST_MS)
    r.handleTimeout(1000 + BAN_FIRST_MS - 1)
    assert.deepEqual(drain(r), [])
    assert.equal(r.standing('L', 1000 + BAN_FIRST_MS), 'doubtful', 'the standing query sees the end before the timeout runs')
    r.handleTimeout(1000 + BAN_FIRST_MS)
    const out = drain(r)
    assert.deepEqual(out.filter(o => o.type === 'unbanned'), [{ type: 'unbanned', peerId: 'L' }])
    assert.equal(r.standing('L'), 'doubtful')
    assert.equal(r.nextTimeoutMs(), undefined)
    assert.equal(r.counts().banned, 0)
  })

  it('counts a proof once per (task, liar); a proof without two distinct witnesses is invalid', () => {
    const r = createReputation()
    assert.equal(r.handleProof(proof('t1', 'L'), 0), 'accepted')
    assert.equal(r.handleProof(proof('t1', 'L'), 5), 'duplicate')
    assert.equal(r.handleProof({ taskId: 't2', liar: 'L', witnesses: ['W1', 'W1'] }, 5), 'invalid')
    assert.equal(r.handleProof({ taskId: 't2', liar: 'L', witnesses: ['W1', 'L'] }, 5), 'invalid')
    assert.equal(r.records()[0].lies, 1)
    assert.equal(r.handleProof(proof('t2', 'L'), 10), 'accepted')
    assert.equal(r.records()[0].lies, 2)
    assert.equal(r.records()[0].bannedUntilMs, 10 + 2 * BAN_FIRST_MS, 'the second lie doubles the ban, from now')
    drain(r)
    assert.equal(r.counts().proofsRemembered, 2)
  })

  it(`bans double per lie up to ${BAN_MAX_MS / 86_400_000} days`, () => {
    assert.equal(banMs(1), BAN_FIRST_MS)
    assert.equal(banMs(2), 2 * BAN_FIRST_MS)
    assert.equal(banMs(8), 128 * BAN_FIRST_MS)
    assert.equal(banMs(9), BAN_MAX_MS, '256 h is past 7 days')
    assert.equal(banMs(1000), BAN_MAX_MS)
  })

  it(`remembers ${PROOFS_REMEMBERED_MAX} proofs: one past forgets the oldest`, () => {
    const r = createReputation()
    for (let i = 0; i <= PROOFS_REMEMBERED_MAX; i++) {
      r.handleProof(proof(`t${i}`, 'L'), 0)
      drain(r)
    }
    assert.equal(r.counts().proofsRemembered, PROOFS_REMEMBERED_MAX)
    assert.equal(r.handleProof(proof('t0', 'L'), 1), 'accepted', 'the oldest was forgotten')
    assert.equal(r.handleProof(proof(`t${PROOFS_REMEMBERED_MAX}`, 'L'), 1), 'duplicate')
  })
})

describe('reputation: bounded records', () => {
  it('one past recordsMax evicts the least recently updated record that is not banned', () => {
    const r = createReputation({ recordsMax: 3 })
    r.handleObserved('A', 'agreed', 1)
    r.handleProof(proof('t', 'B'), 2)
    r.handleObserved('C', 'agreed', 3)
    r.handleObserved('A', 'agreed', 4) // A is now more recent than C
    drain(r)
    r.handleObserved('D', 'agreed', 5)
    assert.deepEqual(drain(r).filter(o => o.type === 'evicted'), [{ type: 'evicted', peerId: 'C' }])
    assert.deepEqual(r.records().map(x => x.peerId).sort(), ['A', 'B', 'D'])
  })

  it('never evicts a banned record; with every record banned a new peer is not recorded', () => {
    const r = createReputation({ recordsMax: 2 })
    r.handleProof(proof('t', 'A'), 0)
    r.handleProof(proof('t', 'B'), 0)
    drain(r)
    r.handleObserved('C', 'agreed', 1)
    assert.deepEqual(drain(r), [])
    assert.deepEqual(r.records().map(x => x.peerId).sort(), ['A', 'B'])
    assert.equal(r.standing('C'), 'unknown')
  })

  it('restores stored records (bans included, expired ones lifted at the first timeout), keeping the most recent', () => {
    const stored: ReputationRecord[] = [
      { peerId: 'old', agreements: 1, disagreements: 0, failures: 0, lies: 0, bannedUntilMs: 0, updatedMs: 1 },
      { peerId: 'T', agreements: 30, disagreements: 0, failures: 0, lies: 0, bannedUntilMs: 0, updatedMs: 5 },
      { peerId: 'L', agreements: 0, disagreements: 0, failures: 0, lies: 1, bannedUntilMs: 100, updatedMs: 4 }
    ]
    const r = createReputation({ records: stored, recordsMax: 2 })
    assert.deepEqual(r.records().map(x => x.peerId).sort(), ['L', 'T'])
    assert.equal(r.standing('T'), 'trusted')
    assert.equal(r.standing('L', 50), 'banned')
    assert.equal(r.nextTimeoutMs(), 100)
    r.handleTimeout(200)
    assert.deepEqual(drain(r).filter(o => o.type === 'unbanned'), [{ type: 'unbanned', peerId: 'L' }])
    assert.throws(() => createReputation({ records: [{ ...stored[0], agreements: -1 }] }), ConfigError)
  })

  it('rejects recordsMax one past its limit', () => {
    assert.throws(() => createReputation({ recordsMax: RECORDS_COUNT_LIMIT + 1 }), ConfigError)
    assert.throws(() => createReputation({ recordsMax: 0 }), ConfigError)
    assert.doesNotThrow(() => createReputation({ recordsMax: RECORDS_COUNT_LIMIT }))
  })
})
