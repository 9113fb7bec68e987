// Property: for any sequence of submissions, views, lost peers, outcomes (from running copies and
// stale ones), cancellations and timeouts, the scheduler keeps every peer within its limit, holds
// at most pendingMax tasks, never runs two copies of a task on one peer, and says `done` exactly
// once per accepted submission — and, once peers stay and copies answer, every task ends.
// fast-check prints the seed and path that replay a failure.
import '../helpers/property.ts'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { createRandom } from '../../src/protocol/random.ts'
import { createScheduler } from '../../src/protocol/scheduler/index.ts'
import type { Scheduler, SchedulerOutput } from '../../src/protocol/scheduler/index.ts'

const PEERS = ['A', 'B', 'C', 'D', 'E']

type Op =
  | { kind: 'submit', task: number, inputPeer: number }
  | { kind: 'peers', mask: number, slots: number[] }
  | { kind: 'gone', peer: number }
  | { kind: 'outcome', pick: number, result: 'ok' | 'retry' | 'fail' }
  | { kind: 'stale', task: number, peer: number }
  | { kind: 'cancel', task: number }
  | { kind: 'time', advanceMs: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('submit' as const), task: fc.nat(40), inputPeer: fc.nat(PEERS.length) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('peers' as const), mask: fc.nat(31), slots: fc.array(fc.nat(3), { minLength: PEERS.length, maxLength: PEERS.length }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('gone' as const), peer: fc.nat(PEERS.length - 1) }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('outcome' as const), pick: fc.nat(), result: fc.constantFrom<'ok' | 'retry' | 'fail'>('ok', 'ok', 'retry', 'fail') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('stale' as const), task: fc.nat(40), peer: fc.nat(PEERS.length - 1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), task: fc.nat(40) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('time' as const), advanceMs: fc.nat(3000) }) }
)

interface Trial { seed: number, pendingMax: number, queueShare: number, ops: Op[] }

const trialArb: fc.Arbitrary<Trial> = fc.record({
  seed: fc.nat(),
  pendingMax: fc.integer({ min: 1, max: 30 }),
  queueShare: fc.nat(2),
  ops: fc.array(opArb, { maxLength: 200 })
})

function runTrial ({ seed, pendingMax, queueShare, ops }: Trial): void {
  const s: Scheduler = createScheduler({
    random: createRandom(seed), pendingMax, queueShare, attemptTimeoutMs: 5000, retryBaseMs: 100, retryMaxMs: 800,
    stragglerMinMs: 200, stragglerSamplesMin: 2, attemptsMax: 3, lossesMax: 3
  })
  let now = 0
  const held = new Set<string>()
  const doneCount = new Map<string, number>()
  const submitted = new Map<string, number>()
  /** Copies running by our account: `${task}@${peer}` → attempt. */
  const copies = new Map<string, number>()
  const limits = new Map<string, number>()

  const drain = (): void => {
    for (let o: SchedulerOutput | undefined = s.poll(); o !== undefined; o = s.poll()) {
      if (o.type === 'dispatch') {
        assert.ok(held.has(o.taskId), 'dispatches are for held tasks')
        const key = `${o.taskId}@${o.peerId}`
        assert.ok(!copies.has(key), 'two copies of a task never run on one peer')
        copies.set(key, o.attempt)
        const onPeer = [...copies.keys()].filter(k => k.endsWith(`@${o.peerId}`)).length
        assert.ok(onPeer <= (limits.get(o.peerId) ?? 0), `peer ${o.peerId} holds ${onPeer}, more than its limit`)
        assert.ok([...copies.keys()].filter(k => k.startsWith(`${o.taskId}@`)).length <= 2, 'at most two copies of a task')
      } else if (o.type === 'cancel') {
        assert.ok(copies.delete(`${o.taskId}@${o.peerId}`), 'a cancel names a running copy')
      } else {
        assert.ok(held.delete(o.taskId), `done for ${o.taskId}, which is held`)
        doneCount.set(o.taskId, (doneCount.get(o.taskId) ?? 0) + 1)
        for (const key of [...copies.keys()]) if (key.startsWith(`${o.taskId}@`)) copies.delete(key)
      }
    }
    s.checkInvariants()
    assert.ok(s.counts().pending <= pendingMax)
    assert.equal(s.counts().pending, held.size)
    // A peer may shrink under its copies (they run on); it only gets nothing new (checked at dispatch).
  }

  const setPeers = (mask: number, slots: number[]): void => {
    const view = PEERS.flatMap((peerId, i) => (mask & (1 << i)) === 0 ? [] : [{ peerId, slotsMax: slots[i], slotsFree: slots[i], queueLength: 0 }])
    for (const c of view) limits.set(c.peerId, c.slotsMax === 0 ? 0 : c.slotsMax + queueShare)
    s.handlePeers(view, now)
  }

  const answer = (pick: number, result: 'ok' | 'retry' | 'fail'): void => {
    const keys = [...copies.keys()]
    if (keys.length === 0) return
    const key = keys[pick % keys.length]
    const [taskId, peerId] = key.split('@')
    const verdict = s.handleOutcome(taskId, peerId, result === 'ok' ? { ok: true } : { ok: false, retryable: result === 'retry' }, now, copies.get(key))
    assert.equal(verdict, 'accepted')
    copies.delete(key)
  }

  for (const op of ops) {
    switch (op.kind) {
      case 'submit': {
        const taskId = `t${op.task}`
        if (held.has(taskId)) break
        const inputs = op.inputPeer < PEERS.length ? [{ cid: `in${op.task}`, peer: PEERS[op.inputPeer] }] : []
        const verdict = s.handleSubmit({ taskId, fn: 'f', inputs }, now)
        assert.equal(verdict, held.size >= pendingMax ? 'queue-full' : 'accepted')
        if (verdict === 'accepted') {
          held.add(taskId)
          submitted.set(taskId, (submitted.get(taskId) ?? 0) + 1)
        }
        break
      }
      case 'peers': setPeers(op.mask, op.slots); break
      case 'gone':
        s.handlePeerGone(PEERS[op.peer], now)
        limits.delete(PEERS[op.peer])
        break
      case 'outcome': answer(op.pick, op.result); break
      case 'stale': {
        const key = `t${op.task}@${PEERS[op.peer]}`
        if (!copies.has(key)) assert.equal(s.handleOutcome(`t${op.task}`, PEERS[op.peer], { ok: true }, now), 'stale')
        break
      }
      case 'cancel': {
        const verdict = s.handleCancel(`t${op.task}`, now)
        assert.equal(verdict, held.has(`t${op.task}`) ? 'cancelled' : 'unknown')
        break
      }
      case 'time':
        now += op.advanceMs
        s.handleTimeout(now)
        break
    }
    drain()
  }

  // Liveness: every peer present with room, every copy answers ok: everything ends.
  setPeers(31, [2, 2, 2, 2, 2])
  drain()
  for (let step = 0; held.size > 0; step++) {
    assert.ok(step < 1000, `everything ends (${held.size} tasks held)`)
    if (copies.size > 0) answer(0, 'ok')
    else {
      const next = s.nextTimeoutMs()
      assert.ok(next !== undefined, 'a held task with no copy waits on a timer')
      now = Math.max(now, next)
      s.handleTimeout(now)
    }
    drain()
  }
  assert.deepEqual(doneCount, submitted, 'one done per accepted submission')
  assert.equal(s.counts().running, 0)
  assert.equal(s.nextTimeoutMs(), undefined)
}

describe('scheduler: property', () => {
  it('random inputs: limits hold, one done per submission, and everything ends once peers stay', () => {
    fc.assert(fc.property(trialArb, trial => { runTrial(trial) }), { numRuns: 300 })
  })
})
