// The memo simulator: memo replication under loss, duplication, partitions, replica crashes and a
// takeover by a second driver. Many seeds hold; a seed replays exactly; and the invariants catch a
// replica that acks before persisting and a driver that counts a majority wrong.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createMemoDriver, createMemoReplica } from '../../src/protocol/memo/index.ts'
import type { MemoReplica, ReplicaOutput } from '../../src/protocol/memo/index.ts'
import { runMemoScenario } from '../../src/sim/memo-scenario.ts'
import type { MemoScenarioResult } from '../../src/sim/memo-scenario.ts'
import { replayCommand, SCENARIOS } from '../../src/sim/scenarios.ts'

/** Seeds 1..SEEDS run here (well under a second); `npm run test:sim -- --scenario memo` runs more. */
const SEEDS = 200

function explain (r: MemoScenarioResult): string {
  return `seed ${r.seed} failed (${r.violationCount} violations) — replay: ${replayCommand(r.seed, 'memo')}\n  ${r.violations.join('\n  ')}`
}

describe('memo simulator', () => {
  it(`holds its invariants on ${SEEDS} seeds, and the seeds exercise the faults`, () => {
    const failures: string[] = []
    const total = { durableA: 0, durableB: 0, gathered: 0, conflicts: 0, fencedA: 0, lost: 0, duplicated: 0, partitioned: 0, droppedAtDownPeer: 0 }
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = runMemoScenario({ seed })
      if (!r.ok) failures.push(explain(r))
      total.durableA += r.counts.durableA
      total.durableB += r.counts.durableB
      total.gathered += r.counts.gathered
      total.conflicts += r.counts.conflicts
      total.fencedA += r.counts.fencedA ? 1 : 0
      total.lost += r.messages.lost
      total.duplicated += r.messages.duplicated
      total.partitioned += r.messages.partitioned
      total.droppedAtDownPeer += r.messages.droppedAtDownPeer
    }
    assert.deepEqual(failures, [])
    for (const [key, n] of Object.entries(total)) assert.ok(n > 10, `${key}: ${n}`)
  })

  it('replays a seed exactly, and is registered as scenario memo', () => {
    const a = runMemoScenario({ seed: 42, traceLinesKept: 50 })
    assert.deepEqual(runMemoScenario({ seed: 42, traceLinesKept: 50 }), a)
    assert.notEqual(runMemoScenario({ seed: 43 }).traceHash, a.traceHash)
    assert.ok(a.trace.some(line => / durable /.test(line)))
    assert.equal(SCENARIOS.memo.runSeed(42).traceHash, a.traceHash)
  })

  it('catches a replica that acks what it did not persist', () => {
    const noPersist = (options?: Parameters<typeof createMemoReplica>[0]): MemoReplica => {
      const real = createMemoReplica(options)
      return Object.assign(Object.create(real) as MemoReplica, {
        poll: (): ReplicaOutput | undefined => {
          for (let out = real.poll(); out !== undefined; out = real.poll()) if (out.type !== 'persist') return out
          return undefined
        }
      })
    }
    let caught = 0
    for (let seed = 1; seed <= 5; seed++) if (/storage hold/.test(runMemoScenario({ seed }, { createReplica: noPersist }).violations.join('\n'))) caught += 1
    assert.ok(caught >= 4, `caught in ${caught} of 5 seeds`)
  })

  it('catches a driver that counts a majority of the wrong set (one replica)', () => {
    let caught = 0
    for (let seed = 1; seed <= 5; seed++) {
      const r = runMemoScenario({ seed }, { createDriver: (options) => createMemoDriver({ ...options, homeSet: options.homeSet.slice(0, 1) }) })
      if (/replicas' storage hold/.test(r.violations.join('\n'))) caught += 1
    }
    assert.ok(caught >= 4, `caught in ${caught} of 5 seeds`)
  })
})
