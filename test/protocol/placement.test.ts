import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { PlacementAttempts, TaskPlacement, choosePeer, hash53, placementCandidates, rendezvousOwners } from '../../src/protocol/placement.ts'

const peers = Array.from({ length: 20 }, (_, i) => `peer-${i}`)

describe('rendezvous owners', () => {
  test('every peer computes the same owners, in any input order', () => {
    const a = rendezvousOwners('bafy-key', peers, 3)
    const b = rendezvousOwners('bafy-key', [...peers].reverse(), 3)
    assert.deepEqual(a, b)
    assert.equal(new Set(a).size, 3)
  })

  test('removing a peer that is not an owner moves nothing; removing an owner moves only its share', () => {
    const owners = rendezvousOwners('k', peers, 3)
    const bystander = peers.find(p => !owners.includes(p))!
    assert.deepEqual(rendezvousOwners('k', peers.filter(p => p !== bystander), 3), owners)
    const after = rendezvousOwners('k', peers.filter(p => p !== owners[0]), 3)
    assert.deepEqual(after.slice(0, 2), owners.slice(1))
  })

  test('spreads keys across peers', () => {
    const counts = new Map<string, number>()
    for (let i = 0; i < 2000; i++) {
      const [owner] = rendezvousOwners(`key-${i}`, peers, 1)
      counts.set(owner, (counts.get(owner) ?? 0) + 1)
    }
    assert.equal(counts.size, peers.length)
    for (const n of counts.values()) assert.ok(n > 40 && n < 200, `share ${n} of 2000 is far from 100`)
  })

  test('n larger than the peers gives every peer once; n of 0 gives none; duplicates count once', () => {
    assert.equal(rendezvousOwners('k', ['a', 'b', 'a'], 5).length, 2)
    assert.deepEqual(rendezvousOwners('k', peers, 0), [])
    assert.notEqual(hash53('a'), hash53('b'))
  })
})

describe('choosePeer', () => {
  const seq = (...values: number[]): () => number => { let i = 0; return () => values[i++ % values.length] }

  test('takes the least loaded of the sample', () => {
    const candidates = [
      { peerId: 'busy', slotsFree: 0, queueLength: 5 },
      { peerId: 'idle', slotsFree: 4, queueLength: 0 },
      { peerId: 'some', slotsFree: 1, queueLength: 0 }
    ]
    assert.equal(choosePeer(candidates, seq(0, 0), 2)?.peerId, 'idle')
    assert.equal(choosePeer(candidates, seq(0, 0.5), 2)?.peerId, 'some')
    assert.equal(choosePeer(candidates, seq(0, 0), 1)?.peerId, 'busy')
    assert.equal(choosePeer(candidates, seq(0.1, 0.1, 0.1), 3)?.peerId, 'idle')
  })

  test('no candidates, no choice', () => {
    assert.equal(choosePeer([], () => 0), undefined)
  })
})

describe('placement attempts', () => {
  const idle = (peerId: string, slotsFree = 1): { peerId: string, slotsFree: number, queueLength: number } => ({ peerId, slotsFree, queueLength: 0 })
  const first = (): number => 0

  test('each attempt goes to a peer not tried before, and no more than attemptsMax are made', () => {
    const placement = new PlacementAttempts(3)
    const candidates = ['a', 'b', 'c', 'd'].map(p => idle(p))
    const chosen: string[] = []
    for (let peer = placement.next(candidates, first); peer !== undefined; peer = placement.next(candidates, first)) chosen.push(peer.peerId)
    assert.equal(chosen.length, 3)
    assert.equal(new Set(chosen).size, 3)
    assert.equal(placement.attempts, 3)
  })

  test('it stops when every candidate has been tried', () => {
    const placement = new PlacementAttempts(3)
    assert.equal(placement.next([idle('a')], first)?.peerId, 'a')
    assert.equal(placement.next([idle('a')], first), undefined)
    assert.equal(placement.next([], first), undefined)
    assert.equal(placement.attempts, 1)
  })

  test('a failure is retried only if retryable, not cancelled, and attempts are left', () => {
    const placement = new PlacementAttempts(2)
    placement.next([idle('a'), idle('b')], first)
    assert.equal(placement.shouldRetry({ retryable: true }, false), true)
    assert.equal(placement.shouldRetry({ retryable: false }, false), false)
    assert.equal(placement.shouldRetry({ retryable: true }, true), false)
    placement.next([idle('a'), idle('b')], first)
    assert.equal(placement.shouldRetry({ retryable: true }, false), false, 'the last attempt is not retried')
  })

  test('the least loaded of the sample is tried first, and a peer that failed is not tried again', () => {
    const placement = new PlacementAttempts(3)
    const candidates = [idle('busy', 0), idle('free', 50)]
    assert.equal(placement.next(candidates, first)?.peerId, 'free')
    assert.equal(placement.next(candidates, first)?.peerId, 'busy')
  })

  test('attemptsMax must be a positive integer', () => {
    assert.throws(() => new PlacementAttempts(0), /assertion failed/)
  })
})

describe('task placement (sans-I/O)', () => {
  const idle = (peerId: string) => ({ peerId, slotsFree: 1, queueLength: 0 })
  const first = () => 0

  test('attempts go to untried peers; a retryable failure moves on, up to attemptsMax, then it gives up', () => {
    const placement = new TaskPlacement({ attemptsMax: 2, random: first })
    const candidates = [idle('a'), idle('b'), idle('c')]
    placement.handleStart(candidates)
    const one = placement.poll()
    assert.equal(one?.type, 'attempt')
    assert.equal(placement.poll(), undefined, 'one output per input')
    placement.handleFailure({ retryable: true }, false, candidates)
    const two = placement.poll()
    assert.ok(two?.type === 'attempt' && one?.type === 'attempt')
    assert.notEqual(two.peerId, one.peerId)
    assert.equal(two.attempt, 2)
    placement.handleFailure({ retryable: true }, false, candidates)
    assert.deepEqual(placement.poll(), { type: 'give-up', reason: 'failed', attempts: 2 })
  })

  test('a failure that is not retryable, or a cancelled caller, ends it at once', () => {
    for (const [retryable, cancelled] of [[false, false], [true, true]]) {
      const placement = new TaskPlacement({ attemptsMax: 3, random: first })
      placement.handleStart([idle('a'), idle('b')])
      placement.poll()
      placement.handleFailure({ retryable }, cancelled, [idle('a'), idle('b')])
      assert.deepEqual(placement.poll(), { type: 'give-up', reason: 'failed', attempts: 1 })
    }
  })

  test('no candidate, or none left untried: it gives up with no-peer', () => {
    const empty = new TaskPlacement({ attemptsMax: 3, random: first })
    empty.handleStart([])
    assert.deepEqual(empty.poll(), { type: 'give-up', reason: 'no-peer', attempts: 0 })
    const one = new TaskPlacement({ attemptsMax: 3, random: first })
    one.handleStart([idle('a')])
    one.poll()
    one.handleFailure({ retryable: true }, false, [idle('a')])
    assert.deepEqual(one.poll(), { type: 'give-up', reason: 'no-peer', attempts: 1 })
  })

  test('inputs out of order are bugs and throw', () => {
    const placement = new TaskPlacement({ attemptsMax: 1, random: first })
    assert.throws(() => placement.handleSuccess(), /assertion failed/)
    placement.handleStart([idle('a')])
    assert.throws(() => placement.handleStart([idle('a')]), /assertion failed/)
    placement.handleSuccess()
    assert.throws(() => placement.handleFailure({ retryable: true }, false, []), /assertion failed/)
  })

  test('candidates: this peer first, then alive peers only, never this peer twice', () => {
    const capacity = { slotsFree: 2, slotsMax: 4, queueLength: 1 }
    const view = [
      { peerId: 'b', state: 'alive' as const, capacity },
      { peerId: 'c', state: 'suspect' as const, capacity },
      { peerId: 'self', state: 'alive' as const, capacity }
    ]
    assert.deepEqual(placementCandidates(idle('self'), view), [idle('self'), { peerId: 'b', slotsFree: 2, queueLength: 1 }])
  })
})
