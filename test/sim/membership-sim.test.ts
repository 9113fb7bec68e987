// The membership simulator: many seeds must converge within the documented bound; a seed
// replays bit for bit; and the checks do catch a broken state machine.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  convergenceBoundMs, membershipScenarioFromSeed, replayCommand, runMembershipScenario
} from '../../src/sim/index.ts'
import type { MembershipScenarioResult } from '../../src/sim/index.ts'
import { createMembership } from '../../src/protocol/membership/index.ts'
import type { Membership, MembershipOptions } from '../../src/protocol/membership/index.ts'

/** The real state machine with some methods replaced. */
function delegate (real: Membership, overrides: Partial<Membership>): Membership {
  return {
    handleAnnouncement: (a, nowMs) => real.handleAnnouncement(a, nowMs),
    handleCapacity: (c) => real.handleCapacity(c),
    handleAddrs: (addrs) => real.handleAddrs(addrs),
    handleTick: (nowMs) => real.handleTick(nowMs),
    poll: () => real.poll(),
    nextTimeoutMs: () => real.nextTimeoutMs(),
    view: () => real.view(),
    get: (peerId) => real.get(peerId),
    stateOf: (peerId) => real.stateOf(peerId),
    counts: () => real.counts(),
    ...overrides
  }
}

/** Seeds 1..SEEDS run here (a few seconds); `npm run test:sim` runs thousands. */
const SEEDS = 150

function explain (r: MembershipScenarioResult): string {
  return `seed ${r.seed} failed (${r.violationCount} violations) — replay: ${replayCommand(r.seed)}\n  ${r.violations.join('\n  ')}`
}

describe('membership simulator', () => {
  it(`converges within convergenceBoundMs after the faults stop, on ${SEEDS} seeds`, () => {
    const failures: string[] = []
    let crashedForGood = 0
    let restarts = 0
    let partitions = 0
    for (let seed = 1; seed <= SEEDS; seed++) {
      const scenario = membershipScenarioFromSeed(seed)
      const r = runMembershipScenario(scenario)
      if (!r.ok) {
        failures.push(explain(r))
        console.error(explain(r))
      }
      if (r.liveAtEnd < r.nodes) crashedForGood++
      restarts += scenario.crashes.filter(c => c.restartAtMs !== undefined).length
      partitions += scenario.partitions.length
    }
    assert.deepEqual(failures, [])
    // The seeds do exercise the faults the bound is about.
    assert.ok(crashedForGood > 20 && restarts > 50 && partitions > 50, JSON.stringify({ crashedForGood, restarts, partitions }))
  })

  it('replays a seed exactly: same trace hash, same numbers', () => {
    for (const seed of [3, 77]) {
      const a = runMembershipScenario({ seed })
      const b = runMembershipScenario({ seed })
      assert.equal(a.traceHash, b.traceHash)
      assert.deepEqual(a, b)
    }
    assert.notEqual(runMembershipScenario({ seed: 3 }).traceHash, runMembershipScenario({ seed: 4 }).traceHash)
  })

  it('keeps the first trace lines on request, and they describe the run', () => {
    const r = runMembershipScenario({ seed: 5, traceLinesKept: 50 })
    assert.equal(r.trace.length, 50)
    assert.ok(r.trace.every(line => /^\d+ /.test(line)))
    assert.ok(r.trace.some(line => /^\d+ start \d+ inc=\d+$/.test(line)))
    assert.ok(r.trace.some(line => /^\d+ announce \d+ \d+\/1$/.test(line)))
  })

  it('marks a peer that crashed for good gone everywhere, within the bound', () => {
    const r = runMembershipScenario({
      seed: 9, nodes: 12, faults: false, startWindowMs: 1000, crashes: [{ atMs: 6000, node: 4 }]
    })
    assert.ok(r.ok, explain(r))
    assert.equal(r.liveAtEnd, 11)
    assert.equal(r.faultsEndMs, 6001)
    assert.ok(r.convergenceMs !== undefined && r.convergenceMs <= r.boundMs)
    // Its last announcement left at most one interval before the crash: gone ≈ goneAfterMs later.
    assert.ok(r.convergenceMs > 10_000 - 2000 - 100, `converged ${r.convergenceMs} ms after the crash`)
  })

  it('derives the bound from the timings, the delay and the skew', () => {
    assert.equal(convergenceBoundMs({ goneAfterMs: 10_000, announceIntervalMs: 2000, delayMaxMs: 50, skewMaxMs: 500 }), 12_550)
  })

  it('refuses scenarios whose timings break the bound\'s assumptions', () => {
    assert.throws(() => runMembershipScenario({ seed: 1, membership: { announceIntervalMs: 2400, suspectAfterMs: 4800 } }), /suspectAfterMs/)
  })

  it('catches a state machine whose timers fire late', () => {
    const late = (options: MembershipOptions): Membership => {
      const real = createMembership(options)
      return delegate(real, { nextTimeoutMs: () => real.nextTimeoutMs() + 3000 })
    }
    const r = runMembershipScenario({ seed: 9, nodes: 6, faults: false, crashes: [{ atMs: 6000, node: 1 }] }, { createMembership: late })
    assert.equal(r.ok, false)
    assert.match(r.violations.join('\n'), /overdue/)
  })

  it('catches a state machine that ignores restarts', () => {
    const forgetful = (options: MembershipOptions): Membership => {
      const real = createMembership(options)
      return delegate(real, {
        handleAnnouncement: (a, nowMs) => {
          const known = real.get(a.peerId)
          return known !== undefined && a.incarnation > known.incarnation ? 'stale' : real.handleAnnouncement(a, nowMs)
        }
      })
    }
    const r = runMembershipScenario({
      seed: 9, nodes: 6, faults: false, checkEveryStep: false, crashes: [{ atMs: 6000, node: 1, restartAtMs: 8000 }]
    }, { createMembership: forgetful })
    assert.equal(r.ok, false)
    assert.match(r.violations.join('\n'), /not converged/)
  })
})
