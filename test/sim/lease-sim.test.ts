// The lease scenario: the real run-lease machine on every home-set peer, over the generic
// simulator with crashes, restarts, loss, duplication, partitions and clock steps. Many seeds hold
// every invariant; a seed replays exactly; and the invariants catch a machine run outside its
// clock bound, one that grants before persisting, and one that forgets its promise on restart.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { createLease } from '../../src/protocol/lease/index.ts'
import type { Lease, LeaseOptions, LeaseOutput } from '../../src/protocol/lease/index.ts'
import { leaseScenarioFromSeed, runLeaseScenario } from '../../src/sim/lease-scenario.ts'
import type { LeaseScenarioResult, LeaseShape } from '../../src/sim/lease-scenario.ts'
import { replayCommand, SCENARIOS } from '../../src/sim/scenarios.ts'

/** Seeds 1..SEEDS run here (well under a second); `npm run test:sim -- --scenario lease` runs more. */
const SEEDS = 300

function explain (r: LeaseScenarioResult): string {
  return `seed ${r.seed} failed (${r.violationCount} violations) — replay: ${replayCommand(r.seed, 'lease')}\n  ${r.violations.join('\n  ')}`
}

/** The real machine with its outputs filtered or its options changed. */
function wrapped (change: { options?: (o: LeaseOptions) => LeaseOptions, output?: (out: LeaseOutput) => boolean }): (options: LeaseOptions, nowMs: number) => Lease {
  return (options, nowMs) => {
    const real = createLease(change.options?.(options) ?? options, nowMs)
    return {
      ...real,
      handleLeaseRequest: (f, e, r, n) => real.handleLeaseRequest(f, e, r, n),
      handleLeaseGrant: (f, e, r, n) => real.handleLeaseGrant(f, e, r, n),
      handleLeaseRefusal: (f, e, r, why, n) => real.handleLeaseRefusal(f, e, r, why, n),
      handleHomeSet: (h, n) => { real.handleHomeSet(h, n) },
      handleTimeout: (n) => { real.handleTimeout(n) },
      nextTimeoutMs: () => real.nextTimeoutMs(),
      holdsLease: (n) => real.holdsLease(n),
      snapshot: () => real.snapshot(),
      poll: () => {
        for (let out = real.poll(); out !== undefined; out = real.poll()) if (change.output?.(out) ?? true) return out
        return undefined
      }
    }
  }
}

/** The seeds among 1..count that report a violation matching `pattern`. */
function failing (count: number, pattern: RegExp, shape: Omit<LeaseShape, 'seed'>, hooks: Parameters<typeof runLeaseScenario>[1] = {}): number[] {
  const seeds: number[] = []
  for (let seed = 1; seed <= count; seed++) {
    const r = runLeaseScenario({ seed, ...shape }, hooks)
    if (r.violations.some(v => pattern.test(v))) seeds.push(seed)
  }
  return seeds
}

describe('lease simulator', () => {
  it(`holds its invariants on ${SEEDS} seeds, and the seeds exercise the faults`, () => {
    const failures: string[] = []
    const total = { becameDriver: 0, lostLease: 0, fenced: 0, refusals: 0, lost: 0, duplicated: 0, partitioned: 0, droppedAtDownPeer: 0, livenessChecked: 0, takeoverAfterT: 0, epochAbove2: 0 }
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = runLeaseScenario({ seed })
      if (!r.ok) failures.push(explain(r))
      total.becameDriver += r.counts.becameDriver
      total.lostLease += r.counts.lostLease
      total.fenced += r.counts.fenced
      total.refusals += r.counts.refusals
      total.lost += r.messages.lost
      total.duplicated += r.messages.duplicated
      total.partitioned += r.messages.partitioned
      total.droppedAtDownPeer += r.messages.droppedAtDownPeer
      if (r.livenessChecked) total.livenessChecked += 1
      if ((r.heldAfterTMs ?? 0) > 0) total.takeoverAfterT += 1
      if (r.counts.highestEpoch > 2) total.epochAbove2 += 1
    }
    assert.deepEqual(failures, [])
    for (const [key, n] of Object.entries(total)) assert.ok(n > 10, `${key}: ${n}`)
    assert.ok(total.becameDriver > SEEDS, 'takeovers happen, not only first drivers')
  })

  it('replays a seed exactly, and is registered for the seed sweep', () => {
    const a = runLeaseScenario({ seed: 42, traceLinesKept: 30 })
    const b = runLeaseScenario({ seed: 42, traceLinesKept: 30 })
    assert.deepEqual(a, b)
    assert.equal(a.trace.length, 30)
    const outcome = SCENARIOS.lease.runSeed(42)
    assert.equal(outcome.ok, true)
    assert.equal(outcome.traceHash, a.traceHash)
    const out = execFileSync(process.execPath, ['scripts/sim-seeds.ts', '--scenario', 'lease', '--seeds', '20'], { encoding: 'utf8', timeout: 60_000, cwd: new URL('../../', import.meta.url) })
    assert.match(out, /lease: 20 seeds from 1: 20 ok, 0 failed/)
  })

  it('without faults the first peer drives from the start and never loses the lease', () => {
    const r = runLeaseScenario({ seed: 5, faults: false })
    assert.ok(r.ok, explain(r))
    assert.equal(r.counts.becameDriver, 1)
    assert.equal(r.counts.lostLease, 0)
    assert.ok(r.heldAfterTMs !== undefined && r.heldAfterTMs <= 80, 'T is the last start: one round trip later the first peer holds')
  })

  it('a crashed driver is replaced within leaseMs + graceMs + a stagger and a round trip', () => {
    const r = runLeaseScenario({ seed: 3, nodes: 3, faults: false, crashes: [{ atMs: 2000, node: 0 }] })
    assert.ok(r.ok, explain(r))
    assert.equal(r.counts.becameDriver, 2)
    assert.ok(r.heldAfterTMs !== undefined && r.heldAfterTMs <= 600 + 100 + 100 + 80, `held after ${r.heldAfterTMs} ms`)
  })

  /** Node 0 drives; at 2 s it is cut off from the others, whose clocks jump 400 ms ahead. */
  function clockJump (clockDriftMaxMs: number, renewMs: number): LeaseScenarioResult {
    const base = leaseScenarioFromSeed(1, { nodes: 3, faults: false, skewMaxMs: 400 })
    return runLeaseScenario({
      ...base,
      timings: { ...base.timings, renewMs, clockDriftMaxMs },
      startTimesMs: [0, 0, 0],
      initialSkewsMs: [0, 0, 0],
      skewSteps: [{ atMs: 2000, node: 1, skewMs: 400 }, { atMs: 2000, node: 2, skewMs: 400 }],
      partitions: [{ atMs: 2000, untilMs: 4000, sideOf: [0, 1, 1] }],
      faultsEndMs: 4000
    })
  }

  it('catches two leases at once when clocks jump past the bound the machine was given, and not within it', () => {
    const outside = clockJump(0, 100)
    assert.ok(outside.violations.some(v => /two leases at once/.test(v)), outside.violations.join('\n'))
    const within = clockJump(400, 90) // the bound needs renewMs < (leaseMs − 400) / 2
    assert.ok(within.ok, explain(within))
    assert.ok(within.counts.becameDriver >= 2, 'the cut-off driver was replaced')
  })

  it('catches a grantor that answers before persisting its promise', () => {
    const seeds = failing(20, /without persisting it first/, {}, { createLease: wrapped({ output: out => out.type !== 'persist' }) })
    assert.equal(seeds.length, 20)
  })

  it('catches a grantor that forgets its promise on restart', () => {
    const seeds = failing(300, /two drivers|two leases at once|epochs only grow/, {}, {
      createLease: wrapped({ options: o => ({ ...o, restored: undefined }) })
    })
    assert.ok(seeds.length > 0, 'no seed caught it')
  })
})
