// The scheduler state machine: feed inputs, assert outputs. Each limit is tested one past it.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError } from '../../src/model/errors.ts'
import { createRandom } from '../../src/protocol/random.ts'
import { createScheduler, PeerLossTracker, SCHEDULER_OPTIONS_DEFAULTS } from '../../src/protocol/scheduler/index.ts'
import { SCAN_ALL_PEERS_MAX, UNREACHABLE_COOLDOWN_MS } from '../../src/protocol/scheduler/constants.ts'
import type { PeerCandidate, Scheduler, SchedulerOptions, SchedulerOutput } from '../../src/protocol/scheduler/index.ts'
import { schedulerCandidates } from '../../src/protocol/placement.ts'

function make (options: Partial<SchedulerOptions> = {}, seed = 1): Scheduler {
  return createScheduler({ random: createRandom(seed), ...options })
}

function drain (s: Scheduler): SchedulerOutput[] {
  const out: SchedulerOutput[] = []
  for (let o = s.poll(); o !== undefined; o = s.poll()) out.push(o)
  s.checkInvariants()
  return out
}

function peer (peerId: string, slotsMax = 1, extra: Partial<PeerCandidate> = {}): PeerCandidate {
  return { peerId, slotsMax, slotsFree: slotsMax, queueLength: 0, ...extra }
}

function task (taskId: string, inputs: Array<{ cid: string, peer: string }> = [], fn = 'bafyFn'): { taskId: string, fn: string, inputs: Array<{ cid: string, peer: string }> } {
  return { taskId, fn, inputs }
}

const dispatches = (out: SchedulerOutput[]): Array<Extract<SchedulerOutput, { type: 'dispatch' }>> => out.filter(o => o.type === 'dispatch')

describe('scheduler: placement and limits', () => {
  it('dispatches a task to a peer with room and says done once; a duplicate outcome is stale', () => {
    const s = make()
    s.handlePeers([peer('A')], 0)
    assert.equal(s.handleSubmit(task('t1'), 0), 'accepted')
    assert.deepEqual(drain(s), [{ type: 'dispatch', taskId: 't1', peerId: 'A', attempt: 1, speculative: false }])
    assert.equal(s.handleOutcome('t1', 'A', { ok: true }, 5, 1), 'accepted')
    assert.deepEqual(drain(s), [{ type: 'done', taskId: 't1', ok: true, peerId: 'A', attempts: 1 }])
    assert.equal(s.handleOutcome('t1', 'A', { ok: true }, 6), 'stale')
    assert.equal(s.handleOutcome('t9', 'A', { ok: true }, 6), 'stale')
    assert.deepEqual(drain(s), [])
    assert.equal(s.counts().pending, 0)
    assert.equal(s.nextTimeoutMs(), undefined)
  })

  it('an outcome from the right peer but another attempt is stale', () => {
    const s = make()
    s.handlePeers([peer('A')], 0)
    s.handleSubmit(task('t1'), 0)
    drain(s)
    assert.equal(s.handleOutcome('t1', 'A', { ok: true }, 1, 2), 'stale')
    assert.equal(s.handleOutcome('t1', 'B', { ok: true }, 1, 1), 'stale')
    assert.equal(s.counts().running, 1)
  })

  it(`keeps each peer within slotsMax + queueShare (${SCHEDULER_OPTIONS_DEFAULTS.queueShare}): one past waits in FIFO order and goes when a copy ends`, () => {
    const s = make()
    s.handlePeers([peer('A', 2)], 0)
    const limit = 2 + SCHEDULER_OPTIONS_DEFAULTS.queueShare
    for (let i = 0; i <= limit + 1; i++) s.handleSubmit(task(`t${i}`), 0)
    const out = dispatches(drain(s))
    assert.deepEqual(out.map(o => o.taskId), ['t0', 't1', 't2', 't3'])
    assert.deepEqual(s.peers(), [{ peerId: 'A', live: true, inFlight: limit, limit }])
    assert.equal(s.counts().waiting, 2)
    s.handleOutcome('t2', 'A', { ok: true }, 1)
    assert.deepEqual(drain(s).map(o => o.type === 'dispatch' ? o.taskId : o.type), ['done', 't4'])
    s.handleOutcome('t0', 'A', { ok: false, retryable: false }, 2)
    assert.deepEqual(drain(s).map(o => o.type === 'dispatch' ? o.taskId : o.type), ['done', 't5'])
    assert.equal(s.counts().waiting, 0)
  })

  it('never places on a peer with no slots, and a peer out of the view gets nothing new', () => {
    const s = make()
    s.handlePeers([peer('A', 0), peer('B', 1)], 0)
    s.handleSubmit(task('t1'), 0)
    assert.equal(dispatches(drain(s))[0].peerId, 'B')
    s.handlePeers([peer('A', 0)], 1)
    s.handleSubmit(task('t2'), 1)
    assert.deepEqual(drain(s), [])
    // B still runs t1 (a suspect peer may come back): its outcome is accepted.
    assert.equal(s.handleOutcome('t1', 'B', { ok: true }, 2), 'accepted')
    assert.deepEqual(s.peers().map(p => p.peerId), ['A'])
    s.handlePeers([peer('A', 1)], 3)
    assert.deepEqual(drain(s).map(o => o.type), ['done', 'dispatch'])
  })

  it(`answers queue-full one past pendingMax, and accepts again after a done`, () => {
    const s = make({ pendingMax: 3 })
    for (let i = 0; i < 3; i++) assert.equal(s.handleSubmit(task(`t${i}`), 0), 'accepted')
    assert.equal(s.handleSubmit(task('t3'), 0), 'queue-full')
    assert.equal(s.counts().pending, 3)
    s.handleCancel('t0', 1)
    assert.equal(s.handleSubmit(task('t3'), 1), 'accepted')
  })

  it('refuses a task id it already holds (the shell joins duplicates)', () => {
    const s = make()
    s.handleSubmit(task('t1'), 0)
    assert.throws(() => s.handleSubmit(task('t1'), 0), /held once/)
  })

  it('scores every peer while few have room, samples candidatesSampled past SCAN_ALL_PEERS_MAX, and takes the most free', () => {
    const busy = { slotsFree: 0, queueLength: 1 }
    // SCAN_ALL_PEERS_MAX peers, one idle: all are scored, so the idle one always wins.
    for (let seed = 1; seed <= 50; seed++) {
      const s = make({}, seed)
      s.handlePeers(Array.from({ length: SCAN_ALL_PEERS_MAX }, (_, i) => peer(`P${i}`, 4, i === 0 ? {} : busy)), 0)
      s.handleSubmit(task('t'), 0)
      assert.equal(dispatches(drain(s))[0].peerId, 'P0', `seed ${seed}`)
    }
    // One more peer than that, one idle: two samples, so the idle one wins only when sampled.
    const n = SCAN_ALL_PEERS_MAX + 4
    let idleWins = 0
    for (let seed = 1; seed <= 400; seed++) {
      const s = make({}, seed)
      s.handlePeers(Array.from({ length: n }, (_, i) => peer(`P${i}`, 4, i === 0 ? {} : busy)), 0)
      s.handleSubmit(task('t'), 0)
      if (dispatches(drain(s))[0].peerId === 'P0') idleWins++
    }
    // P(sampled) = 1 − ((n−1)/n · (n−2)/(n−1)) = 2/n = 0.1 per seed: about 40 of 400, never all, never none.
    assert.ok(idleWins > 15 && idleWins < 80, `idle peer chosen ${idleWins} of 400`)
    let allWins = 0
    for (let seed = 1; seed <= 50; seed++) {
      const s = make({ candidatesSampled: 16 }, seed)
      s.handlePeers(Array.from({ length: n }, (_, i) => peer(`P${i}`, 4, i === 0 ? {} : busy)), 0)
      s.handleSubmit(task('t'), 0)
      if (dispatches(drain(s))[0].peerId === 'P0') allWins++
    }
    assert.ok(allWins > 35, `with 16 samples of ${n} the idle peer wins most of the time (${allWins} of 50)`)
  })

  it('prefers the peer holding a task\'s inputs (it joins the sample), and warm code breaks ties', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const s = make({}, seed)
      s.handlePeers(Array.from({ length: 20 }, (_, i) => peer(`P${i}`, 2)), 0)
      s.handleSubmit(task('t', [{ cid: 'bafyIn', peer: 'P7' }]), 0)
      assert.equal(dispatches(drain(s))[0].peerId, 'P7', `seed ${seed}`)
    }
    // Both sampled (two peers), equal capacity: the warm one wins; `holds` counts like the producer.
    for (let seed = 1; seed <= 20; seed++) {
      const s = make({}, seed)
      s.handlePeers([peer('A', 2), peer('B', 2, { warm: ['bafyFn'] })], 0)
      s.handleSubmit(task('t'), 0)
      assert.equal(dispatches(drain(s))[0].peerId, 'B')
      const h = make({}, seed)
      h.handlePeers([peer('A', 2, { holds: ['bafyIn'] }), peer('B', 2, { warm: ['bafyFn'] })], 0)
      h.handleSubmit(task('t', [{ cid: 'bafyIn', peer: 'gone-peer' }]), 0)
      assert.equal(dispatches(drain(h))[0].peerId, 'A', 'locality (2) beats warm code (1)')
    }
  })

  it('a busy holder loses to an idle peer: locality is a bonus, not a pin', () => {
    const s = make()
    s.handlePeers([peer('A', 4, { slotsFree: 0, queueLength: 3 }), peer('B', 4)], 0)
    s.handleSubmit(task('t', [{ cid: 'bafyIn', peer: 'A' }]), 0)
    assert.equal(dispatches(drain(s))[0].peerId, 'B')
  })
})

describe('scheduler: failures, retries and lost peers', () => {
  it('a peer whose dial failed is set aside for UNREACHABLE_COOLDOWN_MS: its tasks go elsewhere at once, none counts as a failed attempt', () => {
    const s = make({ attemptsMax: 1 })
    // B has the most room; everything lands there until its dial fails.
    s.handlePeers([peer('A', 1), peer('B', 4)], 0)
    for (const id of ['t1', 't2']) s.handleSubmit(task(id), 0)
    const first = dispatches(drain(s))
    assert.deepEqual(first.map(d => d.peerId), ['B', 'B'])
    s.handleOutcome('t1', 'B', { ok: false, retryable: true, unreachable: true }, 5, 1)
    const after = drain(s)
    // Both copies on B are placed again (A has one slot plus its queue share), with no backoff and no failure counted (attemptsMax is 1).
    assert.deepEqual(dispatches(after).map(d => [d.taskId, d.peerId]), [['t1', 'A'], ['t2', 'A']])
    assert.ok(!after.some(o => o.type === 'done'), 'nothing failed')
    // The view still lists B (membership has not noticed yet): it gets nothing until the cooldown ends.
    s.handlePeers([peer('A', 1), peer('B', 4)], 6)
    s.handleSubmit(task('t3'), 6)
    assert.deepEqual(dispatches(drain(s)).map(d => d.peerId), ['A'])
    s.handlePeers([peer('A', 1), peer('B', 4)], 5 + UNREACHABLE_COOLDOWN_MS - 1)
    s.handleSubmit(task('t4'), 5 + UNREACHABLE_COOLDOWN_MS - 1)
    assert.deepEqual(dispatches(drain(s)), [], 'A is full and B is still set aside one ms before the cooldown ends')
    s.handlePeers([peer('A', 1), peer('B', 4)], 5 + UNREACHABLE_COOLDOWN_MS)
    assert.deepEqual(dispatches(drain(s)).map(d => [d.taskId, d.peerId]), [['t4', 'B']])
  })

  it('retries a retryable failure on another peer after a backoff in [base/2, base], doubling, then ends after attemptsMax', () => {
    const s = make({ attemptsMax: 3, retryBaseMs: 100, retryMaxMs: 150 })
    s.handlePeers([peer('A'), peer('B'), peer('C')], 0)
    s.handleSubmit(task('t'), 0)
    const first = dispatches(drain(s))[0]
    s.handleOutcome('t', first.peerId, { ok: false, retryable: true }, 10)
    assert.deepEqual(drain(s), [])
    const retryAt = s.nextTimeoutMs() as number
    assert.ok(retryAt >= 60 && retryAt <= 110, `first backoff ends at ${retryAt}`)
    s.handleTimeout(retryAt - 1)
    assert.deepEqual(drain(s), [])
    s.handleTimeout(retryAt)
    const second = dispatches(drain(s))[0]
    assert.equal(second.attempt, 2)
    assert.notEqual(second.peerId, first.peerId)
    s.handleOutcome('t', second.peerId, { ok: false, retryable: true }, retryAt + 1)
    const again = s.nextTimeoutMs() as number
    // 200 capped to retryMaxMs 150: in [75, 150] after the failure.
    assert.ok(again - (retryAt + 1) >= 75 && again - (retryAt + 1) <= 150)
    s.handleTimeout(again)
    const third = dispatches(drain(s))[0]
    assert.ok(![first.peerId, second.peerId].includes(third.peerId), 'each retry avoids the peers that failed')
    // The attemptsMax-th failure: one past the last allowed retry ends the task.
    s.handleOutcome('t', third.peerId, { ok: false, retryable: true }, again + 1)
    assert.deepEqual(drain(s), [{ type: 'done', taskId: 't', ok: false, reason: 'attempts', peerId: third.peerId, attempts: 3 }])
  })

  it('retries on the same peer when it is the only one', () => {
    const s = make({ retryBaseMs: 10 })
    s.handlePeers([peer('A')], 0)
    s.handleSubmit(task('t'), 0)
    drain(s)
    s.handleOutcome('t', 'A', { ok: false, retryable: true }, 1)
    s.handleTimeout(s.nextTimeoutMs() as number)
    assert.equal(dispatches(drain(s))[0].peerId, 'A')
  })

  it('ends a non-retryable failure at once', () => {
    const s = make()
    s.handlePeers([peer('A'), peer('B')], 0)
    s.handleSubmit(task('t'), 0)
    const d = dispatches(drain(s))[0]
    s.handleOutcome('t', d.peerId, { ok: false, retryable: false }, 1)
    assert.deepEqual(drain(s), [{ type: 'done', taskId: 't', ok: false, reason: 'failed', peerId: d.peerId, attempts: 1 }])
  })

  it('treats silence past attemptTimeoutMs as a retryable failure: cancel, backoff, retry', () => {
    const s = make({ attemptTimeoutMs: 1000, retryBaseMs: 10, attemptsMax: 2 })
    s.handlePeers([peer('A'), peer('B')], 0)
    s.handleSubmit(task('t'), 0)
    const d = dispatches(drain(s))[0]
    assert.equal(s.nextTimeoutMs(), 1000)
    s.handleTimeout(999)
    assert.deepEqual(drain(s), [])
    s.handleTimeout(1000)
    assert.deepEqual(drain(s), [{ type: 'cancel', taskId: 't', peerId: d.peerId, attempt: 1 }])
    s.handleTimeout(s.nextTimeoutMs() as number)
    const retry = dispatches(drain(s))[0]
    assert.notEqual(retry.peerId, d.peerId)
    // The timed-out copy's late answer is stale; the second silence is the last allowed failure.
    assert.equal(s.handleOutcome('t', d.peerId, { ok: true }, 1500), 'stale')
    s.handleTimeout(s.nextTimeoutMs() as number)
    assert.deepEqual(drain(s).map(o => o.type === 'done' && !o.ok ? o.reason : o.type), ['cancel', 'attempts'])
  })

  it('re-places the work of a lost peer at once, not as a failed attempt; lossesMax losses end it', () => {
    const s = make({ attemptsMax: 1, lossesMax: 3 })
    s.handlePeers(['A', 'B', 'C', 'D'].map(id => peer(id)), 0)
    s.handleSubmit(task('t'), 0)
    let on = dispatches(drain(s))[0]
    for (let loss = 1; loss < 3; loss++) {
      s.handlePeerGone(on.peerId, loss)
      const out = drain(s)
      assert.deepEqual(out[0], { type: 'cancel', taskId: 't', peerId: on.peerId, attempt: loss })
      const next = dispatches(out)[0]
      assert.equal(next.attempt, loss + 1)
      assert.notEqual(next.peerId, on.peerId)
      on = next
    }
    // attemptsMax is 1: losses did not count as failed attempts, or it would have ended. The third loss ends it.
    s.handlePeerGone(on.peerId, 10)
    assert.deepEqual(drain(s).map(o => o.type === 'done' && !o.ok ? o.reason : o.type), ['cancel', 'lost'])
    s.handlePeerGone('nobody', 11)
    assert.deepEqual(drain(s), [])
  })

  it('a lost peer\'s tasks wait when no other peer has room, and go when one does', () => {
    const s = make()
    s.handlePeers([peer('A', 1)], 0)
    s.handleSubmit(task('t'), 0)
    drain(s)
    s.handlePeerGone('A', 1)
    assert.deepEqual(drain(s).map(o => o.type), ['cancel'])
    assert.equal(s.counts().waiting, 1)
    s.handlePeers([peer('B', 1)], 2)
    assert.deepEqual(dispatches(drain(s)).map(d => [d.peerId, d.attempt]), [['B', 2]])
  })
})

describe('scheduler: stragglers and cancellation', () => {
  /** A scheduler whose median runtime is 100 ms (eight tasks finished in 100 ms each). */
  function warmed (options: Partial<SchedulerOptions> = {}): Scheduler {
    const s = make({ stragglerMinMs: 50, stragglerFactor: 3, stragglerSamplesMin: 8, ...options })
    s.handlePeers([peer('A', 8), peer('B', 8)], 0)
    for (let i = 0; i < 8; i++) s.handleSubmit(task(`w${i}`), 0)
    for (const d of dispatches(drain(s))) s.handleOutcome(d.taskId, d.peerId, { ok: true }, 100)
    drain(s)
    return s
  }

  it('copies a straggler to another peer after stragglerFactor × median; the first success wins, the other is cancelled', () => {
    const s = warmed()
    s.handleSubmit(task('slow'), 1000)
    const primary = dispatches(drain(s))[0]
    assert.equal(s.nextTimeoutMs(), 1300)
    s.handleTimeout(1299)
    assert.deepEqual(drain(s), [])
    s.handleTimeout(1300)
    const copy = dispatches(drain(s))[0]
    assert.deepEqual({ ...copy, peerId: undefined }, { type: 'dispatch', taskId: 'slow', peerId: undefined, attempt: 2, speculative: true })
    assert.notEqual(copy.peerId, primary.peerId)
    assert.equal(s.counts().speculative, 1)
    s.handleOutcome('slow', copy.peerId, { ok: true }, 1350)
    assert.deepEqual(drain(s), [
      { type: 'cancel', taskId: 'slow', peerId: primary.peerId, attempt: 1 },
      { type: 'done', taskId: 'slow', ok: true, peerId: copy.peerId, attempts: 2 }
    ])
    assert.equal(s.handleOutcome('slow', primary.peerId, { ok: true }, 1400), 'stale')
  })

  it('never speculates before stragglerMinMs, nor before stragglerSamplesMin runtimes, nor twice', () => {
    const s = warmed({ stragglerMinMs: 500 })
    s.handleSubmit(task('slow'), 1000)
    drain(s)
    assert.equal(s.nextTimeoutMs(), 1500, 'max(500, 3 × 100)')
    s.handleTimeout(1500)
    assert.equal(dispatches(drain(s)).length, 1)
    s.handleTimeout(5000)
    assert.equal(dispatches(drain(s)).length, 0, 'one speculative copy per task')
    const cold = make({ stragglerMinMs: 50, stragglerSamplesMin: 8 })
    cold.handlePeers([peer('A', 8), peer('B', 8)], 0)
    for (let i = 0; i < 7; i++) cold.handleSubmit(task(`w${i}`), 0)
    for (const d of dispatches(drain(cold))) cold.handleOutcome(d.taskId, d.peerId, { ok: true }, 100)
    cold.handleSubmit(task('slow'), 1000)
    drain(cold)
    // Seven samples, one short of the minimum: only the attempt deadline is timed.
    assert.equal(cold.nextTimeoutMs(), 1000 + SCHEDULER_OPTIONS_DEFAULTS.attemptTimeoutMs)
  })

  it('does not speculate while tasks wait for capacity', () => {
    const s = warmed({ queueShare: 0 })
    s.handlePeers([peer('A', 1), peer('B', 1)], 1000)
    s.handleSubmit(task('slow1'), 1000)
    s.handleSubmit(task('slow2'), 1000)
    s.handleSubmit(task('waits'), 1000)
    assert.equal(dispatches(drain(s)).length, 2)
    s.handleTimeout(2000)
    assert.deepEqual(drain(s), [])
    s.handleOutcome('slow1', s.peers().find(p => p.inFlight === 1)!.peerId === 'A' ? 'A' : 'B', { ok: true }, 2001)
    const out = drain(s)
    assert.ok(out.some(o => o.type === 'dispatch' && o.taskId === 'waits' && !o.speculative))
  })

  it('a speculative copy\'s failure only counts while the primary runs', () => {
    const s = warmed({ attemptsMax: 1 })
    s.handleSubmit(task('slow'), 1000)
    const primary = dispatches(drain(s))[0]
    s.handleTimeout(1300)
    const copy = dispatches(drain(s))[0]
    s.handleOutcome('slow', copy.peerId, { ok: false, retryable: true }, 1310)
    assert.deepEqual(drain(s), [])
    s.handleOutcome('slow', primary.peerId, { ok: true }, 1400)
    assert.deepEqual(drain(s), [{ type: 'done', taskId: 'slow', ok: true, peerId: primary.peerId, attempts: 2 }])
  })

  it('cancels every copy in flight, then says done; a cancel of an unknown task is unknown', () => {
    const s = warmed()
    s.handleSubmit(task('slow'), 1000)
    const primary = dispatches(drain(s))[0]
    s.handleTimeout(1300)
    const copy = dispatches(drain(s))[0]
    assert.equal(s.handleCancel('slow', 1301), 'cancelled')
    assert.deepEqual(drain(s), [
      { type: 'cancel', taskId: 'slow', peerId: primary.peerId, attempt: 1 },
      { type: 'cancel', taskId: 'slow', peerId: copy.peerId, attempt: 2 },
      { type: 'done', taskId: 'slow', ok: false, reason: 'cancelled', attempts: 2 }
    ])
    assert.equal(s.handleCancel('slow', 1302), 'unknown')
    // A waiting task and one backing off are cancelled too, with no copy to cancel.
    const w = make({ retryBaseMs: 1000 })
    w.handleSubmit(task('waiting'), 0)
    w.handleCancel('waiting', 1)
    assert.deepEqual(drain(w), [{ type: 'done', taskId: 'waiting', ok: false, reason: 'cancelled', attempts: 0 }])
    w.handlePeers([peer('A')], 2)
    w.handleSubmit(task('b'), 2)
    drain(w)
    w.handleOutcome('b', 'A', { ok: false, retryable: true }, 3)
    w.handleCancel('b', 4)
    assert.deepEqual(drain(w), [{ type: 'done', taskId: 'b', ok: false, reason: 'cancelled', attempts: 1 }])
    assert.equal(w.counts().backoff, 0)
    w.handleTimeout(5000)
    assert.deepEqual(drain(w), [])
  })
})

describe('scheduler: clock and configuration', () => {
  it('holds time still when the clock steps back', () => {
    const s = make({ attemptTimeoutMs: 1000 })
    s.handlePeers([peer('A')], 5000)
    s.handleSubmit(task('t'), 5000)
    drain(s)
    s.handleTimeout(100) // the clock stepped back: still 5000, nothing is due
    assert.deepEqual(drain(s), [])
    assert.equal(s.nextTimeoutMs(), 6000)
  })

  it('names the field of a bad option, one past each bound', () => {
    const cases: Array<[Partial<SchedulerOptions>, string]> = [
      [{ pendingMax: 0 }, 'pendingMax'],
      [{ pendingMax: 1_000_001 }, 'pendingMax'],
      [{ candidatesSampled: 17 }, 'candidatesSampled'],
      [{ attemptsMax: 101 }, 'attemptsMax'],
      [{ lossesMax: 0 }, 'lossesMax'],
      [{ attemptTimeoutMs: 2_147_483_648 }, 'attemptTimeoutMs'],
      [{ stragglerFactor: 1001 }, 'stragglerFactor'],
      [{ retryBaseMs: 2000, retryMaxMs: 1999 }, 'retryBaseMs'],
      [{ stragglerSamplesMin: 9, runtimeSamplesMax: 8 }, 'stragglerSamplesMin'],
      [{ queueShare: 1.5 }, 'queueShare']
    ]
    for (const [options, field] of cases) {
      assert.throws(() => make(options), (err: unknown) => err instanceof ConfigError && err.field === field, JSON.stringify(options))
    }
    assert.throws(() => createScheduler({} as SchedulerOptions), (err: unknown) => err instanceof ConfigError && err.field === 'random')
    make({ pendingMax: 1_000_000, candidatesSampled: 16, attemptsMax: 100, stragglerFactor: 1000 })
  })

  it(`considers at most peersMax candidates of one view`, () => {
    const s = make({ peersMax: 2, queueShare: 0 })
    s.handlePeers([peer('A'), peer('B'), peer('C')], 0)
    assert.deepEqual(s.peers().map(p => p.peerId), ['A', 'B'])
  })
})

describe('scheduler: candidates and lost peers from membership', () => {
  it('schedulerCandidates lists this peer and the alive peers with their slotsMax', () => {
    const view = [
      { peerId: 'A', state: 'alive' as const, capacity: { slotsFree: 1, slotsMax: 4, queueLength: 2 } },
      { peerId: 'B', state: 'suspect' as const, capacity: { slotsFree: 4, slotsMax: 4, queueLength: 0 } },
      { peerId: 'self', state: 'alive' as const, capacity: { slotsFree: 0, slotsMax: 0, queueLength: 0 } }
    ]
    assert.deepEqual(schedulerCandidates({ peerId: 'self', slotsFree: 2, slotsMax: 2, queueLength: 0 }, view), [
      { peerId: 'self', slotsFree: 2, slotsMax: 2, queueLength: 0 },
      { peerId: 'A', slotsFree: 1, slotsMax: 4, queueLength: 2 }
    ])
  })

  it('PeerLossTracker: gone, removed and a restart lose work; a suspicion that ends does not', () => {
    const incarnations = new Map<string, number>([['A', 1]])
    const tracker = new PeerLossTracker(id => incarnations.get(id))
    assert.equal(tracker.handleEvent({ type: 'peer:joined', peerId: 'A', atMs: 0 }), false)
    assert.equal(tracker.handleEvent({ type: 'peer:suspect', peerId: 'A', atMs: 1 }), false)
    assert.equal(tracker.handleEvent({ type: 'peer:alive', peerId: 'A', atMs: 2 }), false)
    incarnations.set('A', 2)
    assert.equal(tracker.handleEvent({ type: 'peer:alive', peerId: 'A', atMs: 3 }), true)
    assert.equal(tracker.handleEvent({ type: 'peer:alive', peerId: 'A', atMs: 4 }), false)
    assert.equal(tracker.handleEvent({ type: 'peer:gone', peerId: 'A', atMs: 5 }), true)
    assert.equal(tracker.handleEvent({ type: 'peer:removed', peerId: 'A', atMs: 6 }), true)
  })
})
