// The run scenario: the real run driver and scheduler over simulated workers that crash, lose and
// duplicate messages. Many seeds hold every invariant; a seed replays exactly; a large shape
// (hundreds of peers, over ten thousand tasks) finishes with the direct value; and the invariants
// catch schedulers that lose a task, say done twice, overfill a peer or accept a result nobody sent.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { createScheduler } from '../../src/protocol/scheduler/index.ts'
import type { Scheduler, SchedulerOptions, SchedulerOutput } from '../../src/protocol/scheduler/index.ts'
import {
  createRandom, drawGraph, evaluateGraph, FAN_IN_MAX, LARGE_RUN_SHAPE, replayCommand, runRunScenario, SCENARIOS
} from '../../src/sim/index.ts'
import type { RunScenarioResult } from '../../src/sim/index.ts'

/** Seeds 1..SEEDS run here (a few seconds); `npm run test:sim -- --scenario run` runs more. */
const SEEDS = 200

function explain (r: RunScenarioResult): string {
  return `seed ${r.seed} failed (${r.violationCount} violations) — replay: ${replayCommand(r.seed, 'run')}\n  ${r.violations.join('\n  ')}`
}

/** The real scheduler with its outputs changed. */
function wrapped (change: (out: SchedulerOutput, emit: (o: SchedulerOutput) => void) => void): (options: SchedulerOptions) => Scheduler {
  return (options) => {
    const real = createScheduler(options)
    const queue: SchedulerOutput[] = []
    return {
      ...real,
      handleSubmit: (t, n) => real.handleSubmit(t, n),
      handlePeers: (c, n) => { real.handlePeers(c, n) },
      handlePeerGone: (p, n) => { real.handlePeerGone(p, n) },
      handleOutcome: (t, p, o, n, a) => real.handleOutcome(t, p, o, n, a),
      handleCancel: (t, n) => real.handleCancel(t, n),
      handleTimeout: (n) => { real.handleTimeout(n) },
      nextTimeoutMs: () => real.nextTimeoutMs(),
      counts: () => real.counts(),
      peers: () => real.peers(),
      checkInvariants: () => { real.checkInvariants() },
      poll: () => {
        for (let out = real.poll(); out !== undefined; out = real.poll()) change(out, o => queue.push(o))
        return queue.shift()
      }
    }
  }
}

describe('run simulator', () => {
  it(`holds its invariants on ${SEEDS} seeds, and the seeds exercise the faults`, () => {
    const failures: string[] = []
    const total = { speculative: 0, retried: 0, exhausted: 0, refused: 0, peersLost: 0, staleOutcomes: 0, failed: 0, lost: 0, duplicated: 0, partitioned: 0, tasks: 0 }
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = runRunScenario({ seed })
      if (!r.ok) failures.push(explain(r))
      for (const key of ['speculative', 'retried', 'exhausted', 'refused', 'peersLost', 'staleOutcomes', 'failed'] as const) total[key] += r.counts[key]
      total.lost += r.messages.lost
      total.duplicated += r.messages.duplicated
      total.partitioned += r.messages.partitioned
      total.tasks += r.tasks
    }
    assert.deepEqual(failures, [])
    for (const [key, n] of Object.entries(total)) assert.ok(n > 10, `${key}: ${n}`)
  })

  it('replays a seed exactly', () => {
    const a = runRunScenario({ seed: 42, traceLinesKept: 50 })
    const b = runRunScenario({ seed: 42, traceLinesKept: 50 })
    assert.deepEqual(a, b)
    assert.notEqual(a.traceHash, runRunScenario({ seed: 43 }).traceHash)
    assert.ok(a.trace.some(line => /^\d+ dispatch \S+ >\d+ #1$/.test(line)), a.trace.join('\n'))
  })

  it(`a large shape — ${LARGE_RUN_SHAPE.workers} workers, ${LARGE_RUN_SHAPE.tasks} calls — finishes with the direct value`, () => {
    const r = runRunScenario({ seed: 1, ...LARGE_RUN_SHAPE })
    assert.ok(r.ok, explain(r))
    assert.ok(r.tasks >= 10_000, `${r.tasks} distinct tasks`)
    assert.equal(r.value, r.expected)
    assert.ok(r.counts.peersLost > 0 && r.counts.speculative > 0, JSON.stringify(r.counts))
  })

  it('catches a scheduler that loses a task (never says done): its books disagree, and the run never finishes', () => {
    let n = 0
    const r = runRunScenario({ seed: 3, faults: false }, { createScheduler: wrapped((out, emit) => { if (out.type !== 'done' || ++n !== 20) emit(out) }) })
    assert.equal(r.ok, false)
    assert.equal(r.finishedMs, undefined)
    assert.match(r.violations.join('\n'), /the shell counts/)
  })

  it('catches a scheduler that says done twice', () => {
    let n = 0
    const r = runRunScenario({ seed: 3, faults: false }, { createScheduler: wrapped((out, emit) => { emit(out); if (out.type === 'done' && ++n === 5) emit(out) }) })
    assert.equal(r.ok, false)
    assert.match(r.violations.join('\n'), /not held \(a second done\?\)/)
  })

  it('catches a scheduler that overfills a peer', () => {
    const r = runRunScenario({ seed: 5, faults: false }, { createScheduler: (options) => createScheduler({ ...options, queueShare: (options.queueShare ?? 0) + 3 }) })
    assert.equal(r.ok, false)
    assert.match(r.violations.join('\n'), /more than its limit/)
  })

  it('catches a scheduler that accepts a result from the wrong peer', () => {
    const r = runRunScenario({ seed: 3, faults: false }, {
      createScheduler: wrapped((out, emit) => { emit(out.type === 'done' && out.ok ? { ...out, peerId: `${out.peerId}x` } : out) })
    })
    assert.equal(r.ok, false)
  })

  it('a graph fans out and in within FAN_IN_MAX, and evaluates the same as the scenario expects', () => {
    const graph = drawGraph(createRandom(9), 500)
    assert.ok(graph.every(node => node.deps.length <= FAN_IN_MAX))
    assert.ok(graph.some(node => node.deps.length > 1), 'some fan-in')
    const dependants = new Map<number, number>()
    for (const node of graph) for (const d of node.deps) dependants.set(d, (dependants.get(d) ?? 0) + 1)
    assert.ok([...dependants.values()].some(n => n > 2), 'some fan-out')
    assert.equal(evaluateGraph(graph), evaluateGraph(graph))
  })
})

describe('sim-seeds: the run scenario', () => {
  it('is registered, and its replay command replays a seed exactly', () => {
    assert.ok(Object.hasOwn(SCENARIOS, 'run'))
    const command = replayCommand(7, 'run')
    assert.equal(command, 'node scripts/sim-seeds.ts --scenario run --seed 7')
    const out = execFileSync(process.execPath, command.split(' ').slice(1), { encoding: 'utf8', timeout: 60_000, cwd: new URL('../../', import.meta.url) })
    assert.match(out, new RegExp(`trace ${runRunScenario({ seed: 7 }).traceHash} `))
    assert.equal(SCENARIOS.run.runSeed(7).ok, true)
  })
})
