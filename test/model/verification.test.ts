import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { REPLICAS_MAX, VERIFICATION_DEFAULTS, majorityQuorum, policyProblem, resolvePolicy } from '../../src/model/verification.ts'

describe('verification policies', () => {
  const valid: Array<[string, unknown]> = [
    ['one peer', { replicas: 1, quorum: 1, spotCheckRate: 0 }],
    ['one peer, always spot-checked', { replicas: 1, quorum: 1, spotCheckRate: 1 }],
    ['2 of 3', { replicas: 3, quorum: 2, spotCheckRate: 0.05 }],
    ['2 of 2', { replicas: 2, quorum: 2, spotCheckRate: 0 }],
    [`${REPLICAS_MAX} of ${REPLICAS_MAX}`, { replicas: REPLICAS_MAX, quorum: REPLICAS_MAX, spotCheckRate: 0 }],
    ['a map without a prototype', Object.assign(Object.create(null), { replicas: 1, quorum: 1, spotCheckRate: 0 })]
  ]
  for (const [label, p] of valid) test(`accepts ${label}`, () => assert.equal(policyProblem(p), undefined))

  const invalid: Array<[string, unknown, RegExp]> = [
    ['undefined', undefined, /must be a map/],
    ['null', null, /must be a map/],
    ['a list', [], /must be a map/],
    ['a class instance', new (class { replicas = 1; quorum = 1; spotCheckRate = 0 })(), /plain map/],
    ['an unknown field', { replicas: 1, quorum: 1, spotCheckRate: 0, extra: 1 }, /unknown field "extra"/],
    ['a field only on the prototype', Object.assign(Object.create({ spotCheckRate: 0 }), { replicas: 1, quorum: 1 }), /plain map/],
    ['no quorum', { replicas: 1, spotCheckRate: 0 }, /missing quorum/],
    ['replicas 0', { replicas: 0, quorum: 1, spotCheckRate: 0 }, /replicas must be an integer from 1 to 16/],
    [`replicas ${REPLICAS_MAX + 1} (one past the limit)`, { replicas: REPLICAS_MAX + 1, quorum: REPLICAS_MAX, spotCheckRate: 0 }, /replicas must be an integer from 1 to 16, got 17/],
    ['replicas 2.5', { replicas: 2.5, quorum: 2, spotCheckRate: 0 }, /replicas must be an integer/],
    ['replicas as a string', { replicas: '3', quorum: 2, spotCheckRate: 0 }, /replicas must be an integer/],
    ['quorum 0 of 1', { replicas: 1, quorum: 0, spotCheckRate: 0 }, /quorum must be 1 when replicas is 1/],
    ['quorum 1 of 2', { replicas: 2, quorum: 1, spotCheckRate: 0 }, /quorum must be from 2 to replicas \(2\), got 1/],
    ['quorum 4 of 3', { replicas: 3, quorum: 4, spotCheckRate: 0 }, /got 4/],
    ['quorum NaN', { replicas: 3, quorum: NaN, spotCheckRate: 0 }, /quorum must be an integer/],
    ['spotCheckRate NaN', { replicas: 1, quorum: 1, spotCheckRate: NaN }, /spotCheckRate must be a number from 0 to 1/],
    ['spotCheckRate Infinity', { replicas: 1, quorum: 1, spotCheckRate: Infinity }, /spotCheckRate/],
    ['spotCheckRate just past 1', { replicas: 1, quorum: 1, spotCheckRate: 1 + Number.EPSILON }, /spotCheckRate/],
    ['spotCheckRate below 0', { replicas: 1, quorum: 1, spotCheckRate: -Number.MIN_VALUE }, /spotCheckRate/]
  ]
  for (const [label, p, message] of invalid) test(`refuses ${label}`, () => assert.match(policyProblem(p) ?? '(accepted)', message))

  test('the defaults are valid: trusted runs on one peer, open takes 2 of 3 with 5% spot checks', () => {
    assert.deepEqual(VERIFICATION_DEFAULTS.trusted, { replicas: 1, quorum: 1, spotCheckRate: 0 })
    assert.deepEqual(VERIFICATION_DEFAULTS.open, { replicas: 3, quorum: 2, spotCheckRate: 0.05 })
    for (const policy of Object.values(VERIFICATION_DEFAULTS)) assert.equal(policyProblem({ ...policy }), undefined)
    assert.ok(Object.isFrozen(VERIFICATION_DEFAULTS.open))
  })

  test('resolvePolicy: the manifest policy wins; without one, the mode default; a copy either way', () => {
    const own = { replicas: 5, quorum: 3, spotCheckRate: 0 }
    assert.deepEqual(resolvePolicy(own, 'trusted'), own)
    assert.deepEqual(resolvePolicy(own, 'open'), own)
    assert.deepEqual(resolvePolicy(undefined, 'trusted'), VERIFICATION_DEFAULTS.trusted)
    const open = resolvePolicy(undefined, 'open')
    assert.deepEqual(open, VERIFICATION_DEFAULTS.open)
    open.replicas = 7
    assert.equal(VERIFICATION_DEFAULTS.open.replicas, 3)
  })

  test('majorityQuorum is a strict majority and always a valid quorum', () => {
    assert.deepEqual([1, 2, 3, 4, 5].map(majorityQuorum), [1, 2, 2, 3, 3])
    for (let n = 1; n <= REPLICAS_MAX; n++) assert.equal(policyProblem({ replicas: n, quorum: majorityQuorum(n), spotCheckRate: 0 }), undefined)
  })
})
