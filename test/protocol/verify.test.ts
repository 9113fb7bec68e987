// The verification machine: feed inputs, assert outputs. Each limit is tested one past it.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError } from '../../src/model/errors.ts'
import { createRandom } from '../../src/protocol/random.ts'
import {
  ADAPTIVE_SPOT_CHECK_RATE, createVerifier, EXTRA_REPLICAS_MAX, QUORUM_NOT_REACHED, REPLICAS_MAX, RETAIN_COUNT_LIMIT, VERIFIER_OPTIONS_DEFAULTS
} from '../../src/protocol/verify/index.ts'
import type { Attested, PeerStanding, VerificationPolicy, Verifier, VerifierOptions, VerifierOutput } from '../../src/protocol/verify/index.ts'

const SIG = new Uint8Array([7])
const QUORUM: VerificationPolicy = { replicas: 3, quorum: 2, spotCheckRate: 0 }
const SOLO: VerificationPolicy = { replicas: 1, quorum: 1, spotCheckRate: 0 }

/** A seed whose first `chance(rate)` comes out `drawn` (the verifier draws once per single-peer result). */
function seedWhere (rate: number, drawn: boolean): number {
  for (let seed = 1; ; seed++) if (createRandom(seed).chance(rate) === drawn) return seed
}

function make (standings: Map<string, PeerStanding> = new Map(), seed = 1, options: Partial<VerifierOptions> = {}): Verifier {
  return createVerifier({ random: createRandom(seed), standing: p => standings.get(p) ?? 'unknown', ...options })
}

function drain (v: Verifier): VerifierOutput[] {
  const out: VerifierOutput[] = []
  for (let o = v.poll(); o !== undefined; o = v.poll()) out.push(o)
  v.checkInvariants()
  return out
}

const att = (peerId: string, resultCid: string): Attested => ({ peerId, resultCid, signature: SIG })
const ofType = <T extends VerifierOutput['type']>(out: VerifierOutput[], type: T): Array<Extract<VerifierOutput, { type: T }>> =>
  out.filter((o): o is Extract<VerifierOutput, { type: T }> => o.type === type)

/** Submit a 3-of-2 task and place its replicas on A, B, C. */
function placedOnThree (v: Verifier, taskId = 't'): void {
  assert.equal(v.handleSubmit(taskId, QUORUM, 0), 'accepted')
  assert.deepEqual(drain(v), [{ type: 'place', taskId, replica: 1, avoid: [], check: false }])
  v.handlePlaced(taskId, 1, 'A', 1)
  assert.deepEqual(drain(v), [
    { type: 'place', taskId, replica: 2, avoid: ['A'], check: false },
    { type: 'place', taskId, replica: 3, avoid: ['A'], check: false }
  ])
  v.handlePlaced(taskId, 2, 'B', 2)
  v.handlePlaced(taskId, 3, 'C', 2)
  assert.deepEqual(drain(v), [])
}

describe('verifier: quorum', () => {
  it('accepts when a quorum agrees; a late disagreeing replica is a proof against it', () => {
    const v = make()
    placedOnThree(v)
    assert.equal(v.handleResult('t', 1, att('A', 'x'), 3), 'accepted')
    assert.deepEqual(drain(v), [])
    v.handleResult('t', 2, att('B', 'x'), 4)
    assert.deepEqual(drain(v), [
      { type: 'accepted', taskId: 't', resultCid: 'x', replica: 1, attestations: [att('A', 'x'), att('B', 'x')], solo: false, checking: false },
      { type: 'observed', peerId: 'A', kind: 'agreed' },
      { type: 'observed', peerId: 'B', kind: 'agreed' }
    ])
    assert.equal(v.handleResult('t', 3, att('C', 'y'), 5), 'accepted')
    assert.deepEqual(drain(v), [
      { type: 'observed', peerId: 'C', kind: 'disagreed' },
      { type: 'proof', proof: { taskId: 't', liar: att('C', 'y'), witnesses: [att('A', 'x'), att('B', 'x')] } }
    ])
    assert.equal(v.handleResult('t', 3, att('C', 'y'), 6), 'stale')
    assert.equal(v.handleResult('nope', 1, att('A', 'x'), 6), 'stale')
    assert.deepEqual(v.counts(), { open: 0, retained: 1, checking: 0, replicasLive: 0, liars: 0 })
  })

  it('a result from another peer than the replica ran on is stale', () => {
    const v = make()
    placedOnThree(v)
    assert.equal(v.handleResult('t', 1, att('B', 'x'), 3), 'stale')
  })

  it(`no quorum: extra replicas up to replicas + EXTRA_REPLICAS_MAX (${3 + EXTRA_REPLICAS_MAX}), then ${QUORUM_NOT_REACHED} with every answer`, () => {
    const v = make()
    placedOnThree(v)
    const peers = ['A', 'B', 'C']
    let answered = 0
    for (; answered < 3; answered++) v.handleResult('t', answered + 1, att(peers[answered], `r${answered}`), 10)
    for (let n = 4; n <= 3 + EXTRA_REPLICAS_MAX; n++) {
      const out = drain(v)
      assert.deepEqual(out, [{ type: 'place', taskId: 't', replica: n, avoid: peers.slice(), check: false }], `replica ${n}`)
      const peer = `P${n}`
      v.handlePlaced('t', n, peer, 11)
      peers.push(peer)
      v.handleResult('t', n, att(peer, `r${n}`), 12)
    }
    const out = drain(v)
    assert.equal(ofType(out, 'place').length, 0, 'not one replica past the limit')
    const failed = ofType(out, 'failed')
    assert.equal(failed.length, 1)
    assert.equal(failed[0].error.code, QUORUM_NOT_REACHED)
    assert.equal(failed[0].attestations.length, 3 + EXTRA_REPLICAS_MAX)
    assert.equal(v.counts().open, 0)
    assert.equal(v.handleSubmit('t', QUORUM, 13), 'accepted', 'a failed task is forgotten')
  })

  it(`a policy of ${REPLICAS_MAX} replicas gets no extra replica past REPLICAS_MAX`, () => {
    const v = make()
    v.handleSubmit('t', { replicas: REPLICAS_MAX, quorum: REPLICAS_MAX, spotCheckRate: 0 }, 0)
    drain(v)
    v.handlePlaced('t', 1, 'P1', 1)
    assert.equal(ofType(drain(v), 'place').length, REPLICAS_MAX - 1)
    for (let n = 2; n <= REPLICAS_MAX; n++) v.handlePlaced('t', n, `P${n}`, 1)
    v.handleResult('t', 1, att('P1', 'odd'), 2)
    assert.deepEqual(drain(v), [])
    v.handleResult('t', 2, att('P2', 'even'), 2)
    const out = drain(v)
    // Two different answers make a quorum of all 16 impossible: it fails at once, dropping the rest.
    assert.equal(ofType(out, 'failed')[0]?.error.code, QUORUM_NOT_REACHED)
    assert.equal(ofType(out, 'drop').length, REPLICAS_MAX - 2)
    assert.throws(() => v.handleSubmit('u', { replicas: REPLICAS_MAX + 1, quorum: 2, spotCheckRate: 0 }, 3), /policy replicas/)
  })

  it('a replica failing retryably is replaced; agreeing non-retryable failures end the task with that failure', () => {
    const v = make()
    placedOnThree(v)
    assert.equal(v.handleFailed('t', 1, { retryable: true, code: 'ERR_TIMEOUT', message: 'slow' }, 3), 'accepted')
    assert.deepEqual(drain(v), [
      { type: 'observed', peerId: 'A', kind: 'failed' },
      { type: 'place', taskId: 't', replica: 4, avoid: ['A', 'B', 'C'], check: false }
    ])
    const boom = { retryable: false, code: 'ERR_TASK_FAILED', message: 'boom' }
    v.handleFailed('t', 2, boom, 4)
    v.handleFailed('t', 3, boom, 4)
    const out = drain(v)
    assert.deepEqual(ofType(out, 'failed'), [{ type: 'failed', taskId: 't', error: boom, attestations: [] }])
    assert.deepEqual(ofType(out, 'drop'), [{ type: 'drop', taskId: 't', replica: 4 }])
  })

  it('replicas 1: any failure of its replica is passed through', () => {
    const v = make()
    v.handleSubmit('t', SOLO, 0)
    drain(v)
    v.handlePlaced('t', 1, 'A', 1)
    v.handleFailed('t', 1, { retryable: true, code: 'ERR_PEER_UNAVAILABLE', message: 'gone' }, 2)
    assert.deepEqual(ofType(drain(v), 'failed'), [{ type: 'failed', taskId: 't', error: { retryable: true, code: 'ERR_PEER_UNAVAILABLE', message: 'gone' }, attestations: [] }])
  })

  it('a replica landing on a peer another replica used is dropped and replaced; one on an avoided peer is a bug', () => {
    const v = make()
    placedOnThree(v)
    v.handleResult('t', 2, att('B', 'x'), 3)
    v.handleFailed('t', 3, { retryable: true, code: 'ERR_TIMEOUT', message: '' }, 3)
    const place4 = ofType(drain(v), 'place')
    assert.deepEqual(place4.map(p => p.avoid), [['A', 'B', 'C']])
    assert.throws(() => v.handlePlaced('t', 4, 'B', 4), /avoid set/)
    const v2 = make()
    v2.handleSubmit('t', { replicas: 3, quorum: 3, spotCheckRate: 0 }, 0)
    drain(v2)
    v2.handlePlaced('t', 1, 'A', 1)
    drain(v2)
    v2.handlePlaced('t', 2, 'B', 1)
    v2.handleResult('t', 2, att('B', 'x'), 2)
    v2.handlePlaced('t', 3, 'B', 3) // replica 3 was sent avoiding only A; B already answered
    assert.deepEqual(drain(v2), [
      { type: 'drop', taskId: 't', replica: 3 },
      { type: 'place', taskId: 't', replica: 4, avoid: ['A', 'B'], check: false }
    ])
  })

  it('a banned peer: its result is ignored and its replica replaced; a placement on it is dropped', () => {
    const standings = new Map<string, PeerStanding>()
    const v = make(standings)
    placedOnThree(v)
    standings.set('B', 'banned')
    assert.equal(v.handleResult('t', 2, att('B', 'x'), 3), 'accepted')
    assert.deepEqual(drain(v), [{ type: 'place', taskId: 't', replica: 4, avoid: ['A', 'B', 'C'], check: false }])
    standings.set('D', 'banned')
    v.handlePlaced('t', 4, 'D', 4)
    assert.deepEqual(drain(v), [
      { type: 'drop', taskId: 't', replica: 4 },
      { type: 'place', taskId: 't', replica: 5, avoid: ['A', 'B', 'C'], check: false }
    ])
    v.handleResult('t', 1, att('A', 'x'), 5)
    assert.deepEqual(ofType(drain(v), 'accepted'), [], 'B\'s agreeing answer does not count')
  })

  it('cancel drops every live replica and forgets the task', () => {
    const v = make()
    placedOnThree(v)
    v.handleResult('t', 1, att('A', 'x'), 3)
    drain(v)
    v.handleCancel('t', 4)
    assert.deepEqual(drain(v), [{ type: 'drop', taskId: 't', replica: 2 }, { type: 'drop', taskId: 't', replica: 3 }])
    assert.equal(v.handleResult('t', 2, att('B', 'x'), 5), 'stale')
    assert.deepEqual(v.counts(), { open: 0, retained: 0, checking: 0, replicasLive: 0, liars: 0 })
    assert.equal(v.handleSubmit('t', QUORUM, 6), 'accepted')
    assert.equal(v.handleSubmit('t', QUORUM, 6), 'duplicate')
  })
})

describe('verifier: adaptive replication and spot checks', () => {
  it('replica 1 on a trusted peer runs solo, spot-checked at the adaptive rate', () => {
    const standings = new Map<string, PeerStanding>([['A', 'trusted']])
    const v = make(standings, seedWhere(ADAPTIVE_SPOT_CHECK_RATE, false))
    v.handleSubmit('t', QUORUM, 0)
    drain(v)
    v.handlePlaced('t', 1, 'A', 1)
    assert.deepEqual(drain(v), [], 'no other replica')
    v.handleResult('t', 1, att('A', 'x'), 2)
    assert.deepEqual(drain(v), [
      { type: 'accepted', taskId: 't', resultCid: 'x', replica: 1, attestations: [att('A', 'x')], solo: true, checking: false }
    ], 'a result from one peer is no evidence for it: nothing is observed')
    const w = make(standings, seedWhere(ADAPTIVE_SPOT_CHECK_RATE, true))
    w.handleSubmit('t', QUORUM, 0)
    w.handlePlaced('t', 1, 'A', 1)
    w.handleResult('t', 1, att('A', 'x'), 2)
    const out = drain(w)
    assert.equal(ofType(out, 'accepted')[0].checking, true)
    // A trusted-solo check needs the policy's quorum (2) of agreeing answers: the original and one more.
    assert.deepEqual(ofType(out, 'place').slice(1), [{ type: 'place', taskId: 't', replica: 2, avoid: ['A'], check: true }])
  })

  it('a solo replica moved to a peer that is not trusted brings in the other replicas', () => {
    const v = make(new Map([['A', 'trusted']]))
    v.handleSubmit('t', QUORUM, 0)
    v.handlePlaced('t', 1, 'A', 1)
    drain(v)
    v.handlePlaced('t', 1, 'B', 2) // the scheduler retried replica 1 elsewhere
    assert.deepEqual(ofType(drain(v), 'place').map(p => [p.replica, p.avoid]), [[2, ['A', 'B']], [3, ['A', 'B']]])
  })

  function spotChecked (): Verifier {
    const v = make(new Map(), seedWhere(0.5, true))
    v.handleSubmit('t', { replicas: 1, quorum: 1, spotCheckRate: 0.5 }, 0)
    v.handlePlaced('t', 1, 'A', 1)
    v.handleResult('t', 1, att('A', 'x'), 2)
    const out = drain(v)
    assert.deepEqual(ofType(out, 'accepted').map(a => [a.solo, a.checking]), [[true, true]])
    assert.deepEqual(ofType(out, 'place').slice(1), [{ type: 'place', taskId: 't', replica: 2, avoid: ['A'], check: true }])
    v.handlePlaced('t', 2, 'B', 3)
    return v
  }

  it('spot check agrees: confirmed', () => {
    const v = spotChecked()
    v.handleResult('t', 2, att('B', 'x'), 4)
    assert.deepEqual(drain(v), [
      { type: 'verdict', taskId: 't', verdict: 'confirmed', resultCid: 'x', replica: 1, attestations: [att('A', 'x'), att('B', 'x')] },
      { type: 'observed', peerId: 'A', kind: 'agreed' },
      { type: 'observed', peerId: 'B', kind: 'agreed' }
    ])
    assert.equal(v.counts().checking, 0)
  })

  it('spot check disagrees, the tie-breaker sides with the original: confirmed, the checker lied', () => {
    const v = spotChecked()
    v.handleResult('t', 2, att('B', 'y'), 4)
    assert.deepEqual(drain(v), [{ type: 'place', taskId: 't', replica: 3, avoid: ['A', 'B'], check: true }])
    v.handlePlaced('t', 3, 'C', 5)
    v.handleResult('t', 3, att('C', 'x'), 6)
    assert.deepEqual(drain(v), [
      { type: 'verdict', taskId: 't', verdict: 'confirmed', resultCid: 'x', replica: 1, attestations: [att('A', 'x'), att('C', 'x')] },
      { type: 'observed', peerId: 'A', kind: 'agreed' },
      { type: 'observed', peerId: 'B', kind: 'disagreed' },
      { type: 'proof', proof: { taskId: 't', liar: att('B', 'y'), witnesses: [att('A', 'x'), att('C', 'x')] } },
      { type: 'observed', peerId: 'C', kind: 'agreed' }
    ])
  })

  it('spot check disagrees, the tie-breaker sides with the checker: disproven, the original lied', () => {
    const v = spotChecked()
    v.handleResult('t', 2, att('B', 'y'), 4)
    drain(v)
    v.handlePlaced('t', 3, 'C', 5)
    v.handleResult('t', 3, att('C', 'y'), 6)
    assert.deepEqual(drain(v), [
      { type: 'verdict', taskId: 't', verdict: 'disproven', resultCid: 'y', replica: 2, attestations: [att('B', 'y'), att('C', 'y')] },
      { type: 'observed', peerId: 'A', kind: 'disagreed' },
      { type: 'proof', proof: { taskId: 't', liar: att('A', 'x'), witnesses: [att('B', 'y'), att('C', 'y')] } },
      { type: 'observed', peerId: 'B', kind: 'agreed' },
      { type: 'observed', peerId: 'C', kind: 'agreed' }
    ])
    // A late answer now compares with the corrected result.
    assert.equal(v.handleResult('t', 3, att('C', 'y'), 7), 'stale')
  })

  it('three different answers: more check replicas up to the limit, then undecided (the result stands)', () => {
    const v = spotChecked()
    v.handleResult('t', 2, att('B', 'y'), 4)
    let n = 3
    for (; n <= 1 + EXTRA_REPLICAS_MAX; n++) {
      assert.deepEqual(ofType(drain(v), 'place').map(p => p.replica), [n])
      v.handlePlaced('t', n, `P${n}`, 5)
      v.handleResult('t', n, att(`P${n}`, `z${n}`), 6)
    }
    const out = drain(v)
    assert.deepEqual(ofType(out, 'place'), [], 'no replica past the limit')
    assert.deepEqual(ofType(out, 'verdict'), [{ type: 'verdict', taskId: 't', verdict: 'undecided', resultCid: 'x', replica: 1, attestations: [att('A', 'x')] }])
    assert.deepEqual(ofType(out, 'proof'), [])
  })
})

describe('verifier: liars and re-checks', () => {
  function soloFromA (): Verifier {
    const v = make(new Map([['A', 'trusted']]), seedWhere(ADAPTIVE_SPOT_CHECK_RATE, false))
    v.handleSubmit('t', QUORUM, 0)
    v.handlePlaced('t', 1, 'A', 1)
    v.handleResult('t', 1, att('A', 'x'), 2)
    drain(v)
    return v
  }

  it('a proven liar: what it gave alone is reopened and re-checked; two others agreeing disprove it', () => {
    const v = soloFromA()
    v.handleLiar('A', 3)
    assert.deepEqual(drain(v), [
      { type: 'reopened', taskId: 't' },
      { type: 'place', taskId: 't', replica: 2, avoid: ['A'], check: true },
      { type: 'place', taskId: 't', replica: 3, avoid: ['A'], check: true }
    ])
    assert.equal(v.counts().checking, 1)
    v.handlePlaced('t', 2, 'B', 4)
    v.handlePlaced('t', 3, 'C', 4)
    v.handleResult('t', 2, att('B', 'y'), 5)
    assert.deepEqual(drain(v), [])
    v.handleResult('t', 3, att('C', 'y'), 6)
    const out = drain(v)
    assert.deepEqual(ofType(out, 'verdict'), [{ type: 'verdict', taskId: 't', verdict: 'disproven', resultCid: 'y', replica: 2, attestations: [att('B', 'y'), att('C', 'y')] }])
    assert.deepEqual(ofType(out, 'proof').map(p => p.proof.liar.peerId), ['A'])
    assert.deepEqual(v.counts(), { open: 0, retained: 1, checking: 0, replicasLive: 0, liars: 1 })
  })

  it('a re-check whose answers agree with the result confirms it', () => {
    const v = soloFromA()
    v.handleLiar('A', 3)
    drain(v)
    v.handlePlaced('t', 2, 'B', 4)
    v.handlePlaced('t', 3, 'C', 4)
    v.handleResult('t', 2, att('B', 'x'), 5)
    v.handleResult('t', 3, att('C', 'x'), 6)
    assert.deepEqual(ofType(drain(v), 'verdict').map(o => o.verdict), ['confirmed'])
  })

  it('a liar among three agreeing leaves two, a quorum: the result stands; a liar among two is reopened', () => {
    const v = make()
    placedOnThree(v, 't')
    for (const [n, p] of [[1, 'A'], [2, 'B'], [3, 'C']] as const) v.handleResult('t', n, att(p, 'x'), 2)
    drain(v)
    placedOnThree(v, 'u')
    v.handleResult('u', 1, att('A', 'x'), 2)
    v.handleResult('u', 2, att('B', 'x'), 2)
    drain(v)
    v.handleLiar('A', 3)
    // u keeps B's answer and C's replica still running: no new replica is needed yet.
    assert.deepEqual(drain(v), [{ type: 'reopened', taskId: 'u' }])
    v.handleResult('u', 3, att('C', 'x'), 4)
    assert.deepEqual(ofType(drain(v), 'verdict').map(o => o.verdict), ['confirmed'])
  })

  it('a proven liar\'s answers no longer count for open tasks', () => {
    const v = make()
    placedOnThree(v)
    v.handleResult('t', 1, att('A', 'x'), 2)
    v.handleLiar('A', 3)
    v.handleResult('t', 2, att('B', 'x'), 4)
    assert.deepEqual(ofType(drain(v), 'accepted'), [])
    v.handleResult('t', 3, att('C', 'x'), 5)
    assert.deepEqual(ofType(drain(v), 'accepted').map(a => a.attestations.map(x => x.peerId)), [['B', 'C']])
  })
})

describe('verifier: retention and options', () => {
  it(`keeps retainMax accepted tasks: one past forgets the oldest (default ${VERIFIER_OPTIONS_DEFAULTS.retainMax})`, () => {
    const v = make(new Map(), 1, { retainMax: 2 })
    for (const id of ['a', 'b', 'c']) {
      v.handleSubmit(id, SOLO, 0)
      v.handlePlaced(id, 1, 'A', 0)
      v.handleResult(id, 1, att('A', id), 0)
    }
    drain(v)
    assert.equal(v.counts().retained, 2)
    assert.equal(v.handleSubmit('a', SOLO, 1), 'accepted', 'the oldest was forgotten')
    assert.equal(v.handleSubmit('c', SOLO, 1), 'duplicate')
  })

  it('forgets an accepted task retainMs after, dropping replicas still running', () => {
    const v = make(new Map(), 1, { retainMs: 1000 })
    placedOnThree(v)
    v.handleResult('t', 1, att('A', 'x'), 10)
    v.handleResult('t', 2, att('B', 'x'), 10)
    drain(v)
    assert.equal(v.nextTimeoutMs(), 1010)
    v.handleTimeout(1009)
    assert.deepEqual(drain(v), [])
    v.handleTimeout(1010)
    assert.deepEqual(drain(v), [{ type: 'drop', taskId: 't', replica: 3 }])
    assert.equal(v.nextTimeoutMs(), undefined)
    assert.equal(v.handleResult('t', 3, att('C', 'y'), 1011), 'stale')
  })

  it('rejects options one past their limits', () => {
    assert.throws(() => make(new Map(), 1, { retainMax: RETAIN_COUNT_LIMIT + 1 }), ConfigError)
    assert.throws(() => make(new Map(), 1, { retainMax: 0 }), ConfigError)
    assert.throws(() => make(new Map(), 1, { retainMs: 0 }), ConfigError)
    assert.doesNotThrow(() => make(new Map(), 1, { retainMax: RETAIN_COUNT_LIMIT }))
    assert.throws(() => createVerifier({ random: createRandom(1) } as unknown as VerifierOptions), ConfigError)
  })
})
