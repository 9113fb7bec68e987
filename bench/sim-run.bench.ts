#!/usr/bin/env node
// A workflow run in the deterministic simulator: the real run driver, scheduler and membership on
// one peer, simulated workers (numbers printed, never asserted — STYLE.md §17).
//
//   node bench/sim-run.bench.ts [--seeds 3] [--workers 300] [--tasks 12000]
//
// Per seed, two runs of the same graph on the same workers: one without faults (the baseline) and
// one with the seed's faults (crashes and restarts, loss, duplication, partitions, clock steps).
// Printed: distinct tasks, the simulated time the run took, tasks per simulated second (the
// scheduler's throughput: how well it keeps the workers' slots busy), copies dispatched per task
// (retries and speculation), sim events and wall time (the simulator's own speed).
import { parseArgs } from 'node:util'
import { runRunScenario, runScenarioFromSeed } from '../src/sim/index.ts'

const { values } = parseArgs({ options: { seeds: { type: 'string', default: '3' }, workers: { type: 'string', default: '300' }, tasks: { type: 'string', default: '12000' } } })
const seeds = Number(values.seeds)
const workers = Number(values.workers)
const tasks = Number(values.tasks)
if (![seeds, workers, tasks].every(n => Number.isSafeInteger(n) && n >= 1) || workers > 5000 || tasks > 200_000 || seeds > 100) {
  console.error('--seeds 1..100, --workers 1..5000, --tasks 1..200000')
  process.exit(2)
}

const rows = []
for (let seed = 1; seed <= seeds; seed++) {
  for (const faults of [false, true]) {
    const scenario = runScenarioFromSeed(seed, { workers, tasks, faults })
    const started = performance.now()
    const r = runRunScenario(scenario)
    const wallMs = performance.now() - started
    const simS = (r.finishedMs ?? NaN) / 1000
    rows.push({
      seed,
      faults: faults ? `until ${(r.faultsEndMs / 1000).toFixed(1)} s` : 'none',
      tasks: r.tasks,
      simulatedS: simS.toFixed(1),
      tasksPerSimS: (r.tasks / simS).toFixed(0),
      copiesPerTask: (r.counts.dispatched / r.tasks).toFixed(2),
      speculative: r.counts.speculative,
      peersLost: r.counts.peersLost,
      simEvents: r.simEvents,
      eventsPerWallS: (r.simEvents / (wallMs / 1000)).toFixed(0),
      wallS: (wallMs / 1000).toFixed(2),
      ok: r.ok ? 'ok' : `FAILED: ${r.violations[0]}`
    })
  }
}
console.log(`run scenario: ${workers} workers, ${tasks} calls per graph`)
console.table(rows)
