// The durable-run simulator: the home-set machine (lease, memo replica, memo driver), the run
// driver on whichever peer holds the lease, and workers with a result store, under crashes,
// partitions, loss, duplication and clock steps. Many seeds hold every invariant; a seed replays
// exactly; the driver crashing, being cut off, and every home-set peer restarting in turn each
// keep one result and run no finished task again; and the invariants catch workers that keep no
// results, a takeover that forgets the memo, and home-set peers that count a majority of
// themselves alone.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createHomeRun } from '../../src/protocol/home/index.ts'
import type { HomeRun, HomeRunOptions } from '../../src/protocol/home/index.ts'
import { durableScenarioFromSeed, minorityCrashes, replayCommand, runDurableScenario, SCENARIOS } from '../../src/sim/index.ts'
import type { DurableScenario, DurableScenarioResult } from '../../src/sim/index.ts'

/** Seeds 1..SEEDS run here (a few seconds); `npm run test:sim -- --scenario durable` runs more. */
const SEEDS = 200

function explain (r: DurableScenarioResult): string {
  return `seed ${r.seed} failed (${r.violationCount} violations) — replay: ${replayCommand(r.seed, 'durable')}\n  ${r.violations.join('\n  ')}`
}

/** A fault-free scenario, and when (and where) its run was first driven and reported finished. */
function faultFree (seed: number, tasks: number): { s: DurableScenario, driver: number, driveMs: number, finishedMs: number } {
  const s = durableScenarioFromSeed(seed, { faults: false, tasks, traceLinesKept: 10_000 })
  const r = runDurableScenario(s)
  assert.ok(r.ok, explain(r))
  assert.ok(r.firstDrive !== undefined && r.finishedMs !== undefined)
  assert.equal(r.counts.takeovers, 0)
  assert.equal(r.counts.executions, r.tasks, 'without faults every task runs once')
  return { s, driver: r.firstDrive.node, driveMs: r.firstDrive.atMs, finishedMs: r.finishedMs }
}

function lines (r: DurableScenarioResult, pattern: RegExp): string[] {
  return r.trace.filter(line => pattern.test(line))
}

describe('durable-run simulator', () => {
  it(`holds its invariants on ${SEEDS} seeds, and the seeds exercise the faults`, () => {
    const failures: string[] = []
    const total = { takeovers: 0, stops: 0, reExecuted: 0, lostInCrash: 0, fallbacks: 0, answeredFromStore: 0, joined: 0, lateAnswers: 0, lost: 0, duplicated: 0, partitioned: 0, afterT: 0 }
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = runDurableScenario({ seed })
      if (!r.ok) failures.push(explain(r))
      for (const key of ['takeovers', 'stops', 'reExecuted', 'lostInCrash', 'fallbacks', 'answeredFromStore', 'joined', 'lateAnswers'] as const) total[key] += r.counts[key]
      total.lost += r.messages.lost
      total.duplicated += r.messages.duplicated
      total.partitioned += r.messages.partitioned
      if (r.finishedMs !== undefined && r.finishedMs > r.faultsEndMs) total.afterT += 1
    }
    assert.deepEqual(failures, [])
    for (const [key, n] of Object.entries(total)) assert.ok(n >= 5, `${key}: ${n}`)
  })

  it('replays a seed exactly, and is registered as scenario durable', () => {
    const a = runDurableScenario({ seed: 42, traceLinesKept: 50 })
    assert.deepEqual(runDurableScenario({ seed: 42, traceLinesKept: 50 }), a)
    assert.notEqual(runDurableScenario({ seed: 43 }).traceHash, a.traceHash)
    assert.ok(a.trace.some(line => / drive /.test(line)))
    const entry = SCENARIOS.durable.runSeed(42)
    assert.equal(entry.traceHash, a.traceHash)
    assert.match(entry.summary, /takeovers/)
    assert.match(entry.summary, /re-executed/)
    assert.match(entry.summary, /messages/)
  })

  it('keeps at most one home-set peer down at a time when it draws crashes', () => {
    const kept = minorityCrashes([
      { atMs: 100, node: 0, restartAtMs: 500 },
      { atMs: 300, node: 1, restartAtMs: 400 }, // overlaps node 0's downtime: dropped
      { atMs: 350, node: 5 }, // not in the home set: kept
      { atMs: 600, node: 1 }, // node 0 is back: kept, and down for good
      { atMs: 9000, node: 2, restartAtMs: 9100 } // node 1 is still down: dropped
    ], [0, 1, 2])
    assert.deepEqual(kept.map(c => `${c.atMs}:${c.node}`), ['100:0', '350:5', '600:1'])
  })

  it('the driver crashes mid-run: a peer takes over from the memo, re-attaches to the work in flight, and reports the same value', () => {
    let reattached = 0
    for (const seed of [1, 2, 3, 4]) {
      const base = faultFree(seed, 60)
      const atMs = Math.floor((base.driveMs + base.finishedMs) / 2)
      const s = { ...base.s, crashes: [{ atMs, node: base.driver, restartAtMs: atMs + 1500 }], faultsEndMs: atMs + 1501 }
      const r = runDurableScenario(s)
      assert.ok(r.ok, explain(r))
      assert.ok(r.counts.takeovers >= 1, `seed ${seed}: a takeover`)
      assert.equal(r.value, r.expected)
      const takeover = lines(r, / drive /)[1]
      assert.ok(takeover !== undefined && !takeover.includes('memo=0'), `seed ${seed}: the new driver starts from a memo: ${takeover}`)
      // No message is lost here: a task runs twice only if the crashed peer was running it, or its
      // first owner (the crashed peer) did not answer.
      assert.ok(r.counts.executions - r.tasks <= r.counts.lostInCrash + r.counts.fallbacks, `seed ${seed}: ${JSON.stringify(r.counts)}`)
      reattached += r.counts.answeredFromStore + r.counts.joined
    }
    assert.ok(reattached > 0, 'some new driver was answered from a worker\'s store or joined a running task')
  })

  it('the driver is cut off, then the partition heals: its lease runs out, a new epoch drives, the old one never delivers again', () => {
    for (const seed of [5, 6, 7]) {
      const base = faultFree(seed, 60)
      const atMs = Math.floor((base.driveMs + base.finishedMs) / 2)
      const sideOf = base.s.peerIds.map((_, i) => i === base.driver ? 1 : 0)
      const s = { ...base.s, partitions: [{ atMs, untilMs: atMs + 3000, sideOf }], faultsEndMs: atMs + 3000 }
      const r = runDurableScenario(s)
      assert.ok(r.ok, explain(r))
      assert.equal(r.value, r.expected)
      assert.ok(r.counts.highestEpoch >= 2, `seed ${seed}: a new epoch`)
      const stop = lines(r, new RegExp(` stop ${base.driver} epoch=1 `))
      assert.equal(stop.length, 1, `seed ${seed}: the old driver stopped`)
      const stopMs = Number(stop[0].split(' ')[0])
      assert.ok(stopMs < atMs + 3000, 'before the partition healed')
      assert.deepEqual(lines(r, new RegExp(` deliver ${base.driver} .* epoch=1$`)).filter(l => Number(l.split(' ')[0]) > stopMs), [], 'nothing delivered in epoch 1 after the stop')
      // Tasks it had sent stayed with their workers: no task delivered before the cut ran again.
      assert.ok(r.counts.executions - r.tasks <= r.counts.fallbacks, `seed ${seed}: ${JSON.stringify(r.counts)}`)
    }
  })

  it('every home-set peer restarts in turn during the run: each comes back from its storage, the run finishes once, and all end settled', () => {
    for (const seed of [8, 9]) {
      const base = faultFree(seed, 250)
      const crashes = base.s.homeSet.map((node, k) => {
        const atMs = base.driveMs + 200 + k * 1000
        return { atMs, node, restartAtMs: atMs + 500 }
      })
      const s = { ...base.s, crashes, faultsEndMs: crashes[2].restartAtMs + 1 }
      assert.ok(crashes[2].atMs < base.finishedMs, `seed ${seed}: the last restart is during the run (${crashes[2].atMs} < ${base.finishedMs})`)
      const r = runDurableScenario(s)
      assert.ok(r.ok, explain(r))
      assert.equal(r.value, r.expected)
      assert.equal(lines(r, / start \d+ home /).length, 6, 'three first starts, three restarts')
      assert.ok(r.counts.takeovers >= 1, `seed ${seed}: ${JSON.stringify(r.counts)}`)
      assert.ok(lines(r, / start \d+ home entries=[1-9]/).length >= 2, 'restarted peers read their memo back')
    }
  })

  it('catches workers that keep no results: a task asked again runs again', () => {
    let caught = 0
    for (let seed = 1; seed <= 20; seed++) {
      const r = runDurableScenario({ seed }, { workersKeepNoResults: true })
      if (/completed .* 2 times|executed \d+ times with/.test(r.violations.join('\n'))) caught += 1
    }
    assert.ok(caught >= 15, `caught in ${caught} of 20 seeds`)
  })

  it('catches a peer that drives a takeover from an empty memo: it schedules tasks delivered in an earlier epoch', () => {
    const forgetful = (options: HomeRunOptions, nowMs: number): HomeRun => {
      const real = createHomeRun(options, nowMs)
      const poll = real.poll.bind(real)
      real.poll = () => {
        const o = poll()
        return o?.type === 'drive' ? { ...o, memo: [] } : o
      }
      return real
    }
    let caught = 0
    for (const seed of [1, 2, 3, 4]) {
      const base = faultFree(seed, 60)
      const atMs = Math.floor((base.driveMs + base.finishedMs) / 2)
      const s = { ...base.s, crashes: [{ atMs, node: base.driver }], faultsEndMs: atMs + 1 }
      const r = runDurableScenario(s, { createHomeRun: forgetful })
      if (/scheduled .* whose result was delivered in epoch 1/.test(r.violations.join('\n'))) caught += 1
    }
    assert.equal(caught, 4)
  })

  it('catches home-set peers that each count a majority of themselves alone', () => {
    let caught = 0
    for (let seed = 1; seed <= 5; seed++) {
      const r = runDurableScenario({ seed, faults: false }, { createHomeRun: (options, nowMs) => createHomeRun({ ...options, homeSet: [options.selfId] }, nowMs) })
      if (/driven by peer \d+ and again by peer/.test(r.violations.join('\n'))) caught += 1
    }
    assert.equal(caught, 5)
  })
})
