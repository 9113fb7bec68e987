// The scheduler's hard placement constraints: `avoid`, groups (replicas of one verified task on
// distinct peers), parking, 'unplaceable', and reputation in the placement score.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createRandom } from '../../src/protocol/random.ts'
import { createScheduler } from '../../src/protocol/scheduler/index.ts'
import { addressRange } from '../../src/protocol/placement.ts'
import { AVOID_PEERS_MAX, UNPLACEABLE_AFTER_MS } from '../../src/protocol/scheduler/constants.ts'
import type { PeerCandidate, Scheduler, SchedulerOutput, SchedulerTask } from '../../src/protocol/scheduler/index.ts'

function make (seed = 1): Scheduler {
  return createScheduler({ random: createRandom(seed) })
}

function drain (s: Scheduler): SchedulerOutput[] {
  const out: SchedulerOutput[] = []
  for (let o = s.poll(); o !== undefined; o = s.poll()) out.push(o)
  s.checkInvariants()
  return out
}

function peer (peerId: string, slotsMax = 4, extra: Partial<PeerCandidate> = {}): PeerCandidate {
  return { peerId, slotsMax, slotsFree: slotsMax, queueLength: 0, ...extra }
}

function task (taskId: string, extra: Partial<SchedulerTask> = {}): SchedulerTask {
  return { taskId, fn: 'bafyFn', inputs: [], ...extra }
}

const placed = (out: SchedulerOutput[]): Record<string, string> =>
  Object.fromEntries(out.flatMap(o => o.type === 'dispatch' ? [[o.taskId, o.peerId]] : []))

describe('scheduler: avoid and groups', () => {
  it('never places a task on a peer it avoids, even when that peer is the idlest', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const s = make(seed)
      s.handlePeers([peer('A', 8), peer('B', 1)], 0)
      s.handleSubmit(task('t', { avoid: ['A'] }), 0)
      assert.deepEqual(placed(drain(s)), { t: 'B' })
    }
  })

  it('places the replicas of one group on distinct peers when submitted together, and never on a peer that answered one', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const s = make(seed)
      s.handlePeers([peer('A'), peer('B'), peer('C'), peer('D')], 0)
      for (const r of [1, 2, 3]) s.handleSubmit(task(`t#${r}`, { group: 't' }), 0)
      const first = placed(drain(s))
      assert.equal(new Set(Object.values(first)).size, 3, `seed ${seed}: three distinct peers`)
      // Replica 1 answers; replica 2 fails retryably: its retry may not go where 1 or 3 ran.
      s.handleOutcome('t#1', first['t#1'], { ok: true }, 1)
      s.handleOutcome('t#2', first['t#2'], { ok: false, retryable: true }, 1)
      drain(s)
      s.handleTimeout(100_000)
      const retry = placed(drain(s))['t#2']
      assert.ok(retry !== undefined, 'the retry is placed')
      assert.ok(retry !== first['t#1'] && retry !== first['t#3'], `seed ${seed}: the retry avoids the group's peers (${retry})`)
    }
  })

  it('parks a task no peer with room may take without blocking the tasks behind it, and places it when a peer joins', () => {
    const s = make()
    s.handlePeers([peer('A'), peer('B')], 0)
    s.handleSubmit(task('x#1', { group: 'x' }), 0)
    s.handleSubmit(task('x#2', { group: 'x' }), 0)
    s.handleSubmit(task('x#3', { group: 'x' }), 0)
    s.handleSubmit(task('y'), 0)
    const out = placed(drain(s))
    assert.equal(Object.keys(out).length, 3, 'two replicas and the task behind the parked one are placed')
    assert.ok(out.y !== undefined)
    assert.equal(s.counts().parked, 1)
    assert.ok(s.nextTimeoutMs() !== undefined && s.nextTimeoutMs()! <= UNPLACEABLE_AFTER_MS, 'a hopeless parked task has a deadline')
    s.handlePeers([peer('A'), peer('B'), peer('C')], 5)
    assert.deepEqual(placed(drain(s)), { 'x#3': 'C' })
    assert.equal(s.counts().parked, 0)
  })

  it("ends a task 'unplaceable' once every live peer has been excluded for UNPLACEABLE_AFTER_MS, not before", () => {
    const s = make()
    s.handlePeers([peer('A'), peer('B')], 0)
    s.handleSubmit(task('t', { avoid: ['A', 'B'] }), 0)
    assert.deepEqual(drain(s), [])
    s.handleTimeout(UNPLACEABLE_AFTER_MS - 1)
    assert.deepEqual(drain(s), [])
    s.handleTimeout(UNPLACEABLE_AFTER_MS)
    assert.deepEqual(drain(s), [{ type: 'done', taskId: 't', ok: false, reason: 'unplaceable', attempts: 0 }])
  })

  it('a parked task that is only waiting for a busy group peer is not hopeless', () => {
    const s = make()
    s.handlePeers([peer('A', 1), peer('B', 1)], 0)
    s.handleSubmit(task('t#1', { group: 't' }), 0)
    s.handleSubmit(task('t#2', { group: 't', avoid: ['A'] }), 0)
    const first = placed(drain(s))
    assert.equal(first['t#1'], 'A')
    assert.equal(first['t#2'], 'B')
    // A third replica avoiding nobody: A and B run the group: hopeless until one of them fails.
    s.handleSubmit(task('t#3', { group: 't' }), 0)
    drain(s)
    s.handleOutcome('t#2', 'B', { ok: false, retryable: false }, 10)
    const out = drain(s)
    assert.ok(out.some(o => o.type === 'dispatch' && o.taskId === 't#3' && o.peerId === 'B'), 'B freed by a failure takes the third replica')
  })

  it(`refuses more than AVOID_PEERS_MAX (${AVOID_PEERS_MAX}) avoided peers`, () => {
    const s = make()
    const avoid = Array.from({ length: AVOID_PEERS_MAX + 1 }, (_, i) => `P${i}`)
    assert.throws(() => s.handleSubmit(task('t', { avoid }), 0), /avoid/)
    assert.equal(s.handleSubmit(task('u', { avoid: avoid.slice(0, AVOID_PEERS_MAX) }), 0), 'accepted')
  })

  it('prefers the peer with the better reputation when load is equal', () => {
    let good = 0
    for (let seed = 1; seed <= 20; seed++) {
      const s = make(seed)
      s.handlePeers([peer('A', 4, { reputation: 0.1 }), peer('B', 4, { reputation: 0.95 })], 0)
      s.handleSubmit(task('t'), 0)
      if (placed(drain(s)).t === 'B') good++
    }
    assert.equal(good, 20)
  })
})

describe('scheduler: address ranges', () => {
  it('addressRange: IPv4 /24, IPv6 /48, nothing for addresses without an IP', () => {
    assert.equal(addressRange(['/ip4/10.1.2.3/tcp/4001']), 'ip4:10.1.2')
    assert.equal(addressRange(['/dns4/example.com/tcp/1', '/ip6/2001:DB8:1:2::5/tcp/1']), 'ip6:2001:db8:1')
    assert.equal(addressRange(['/dns4/example.com/tcp/1']), undefined)
    assert.equal(addressRange([]), undefined)
  })

  it('replicas of a group prefer a peer of a range the group does not use yet; one range only still places them all', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const s = make(seed)
      // A1 and A2 share a range; B is alone in its own, and a little busier than A2.
      s.handlePeers([peer('A1', 4, { range: 'ip4:10.0.0' }), peer('A2', 4, { range: 'ip4:10.0.0' }), peer('B', 4, { range: 'ip4:10.0.1', slotsFree: 3 })], 0)
      s.handleSubmit(task('t#1', { group: 't', avoid: ['A2', 'B'] }), 0)
      assert.deepEqual(placed(drain(s)), { 't#1': 'A1' })
      s.handleSubmit(task('t#2', { group: 't' }), 0)
      assert.deepEqual(placed(drain(s)), { 't#2': 'B' }, `seed ${seed}: the other range wins over a same-range peer with more room`)
    }
    const one = make()
    one.handlePeers(['P1', 'P2', 'P3'].map(id => peer(id, 4, { range: 'ip4:127.0.0' })), 0)
    for (const r of [1, 2, 3]) one.handleSubmit(task(`u#${r}`, { group: 'u' }), 0)
    assert.equal(new Set(Object.values(placed(drain(one)))).size, 3)
  })
})
