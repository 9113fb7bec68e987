#!/usr/bin/env node
// Run a simulator scenario over many seeds (npm run test:sim).
//
//   node scripts/sim-seeds.ts [--scenario NAME] [--seeds N] [--from S]   N seeds from S (default 2000 from 1)
//   node scripts/sim-seeds.ts [--scenario NAME] --seed S [--trace]       replay one seed; print its
//                                                                        violations, numbers and
//                                                                        (--trace) every trace line
//   node scripts/sim-seeds.ts --list                                     the scenarios
//
// The scenario defaults to membership. Exits 1 if any seed fails, printing each failure with the
// command that replays it (scenario included).
import { parseArgs } from 'node:util'
import { replayCommand, SCENARIOS } from '../src/sim/index.ts'
import type { ScenarioEntry, SeedOutcome } from '../src/sim/index.ts'

const USAGE = 'usage: node scripts/sim-seeds.ts [--scenario NAME] [--seeds N] [--from S] | [--scenario NAME] --seed S [--trace] | --list'
/** Keep a run finite: a typo like --seeds 1e9 should not pin a CPU for a week. */
const SEEDS_MAX = 1_000_000
/** The trace of one seed kept in --trace mode: a few MB of text at most. */
const TRACE_LINES_MAX = 200_000

function seedArg (name: string, text: string | undefined, fallback: number, max = 0xffff_ffff): number {
  if (text === undefined) return fallback
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < 0 || n > max) {
    console.error(`--${name} must be an integer in 0..${max}, got ${JSON.stringify(text)}\n${USAGE}`)
    process.exit(2)
  }
  return n
}

function main (): number {
  let values
  try {
    ({ values } = parseArgs({
      options: {
        scenario: { type: 'string', default: 'membership' },
        seeds: { type: 'string' },
        from: { type: 'string' },
        seed: { type: 'string' },
        trace: { type: 'boolean', default: false },
        list: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false }
      }
    }))
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`)
    return 2
  }
  if (values.help) {
    console.log(USAGE)
    return 0
  }
  if (values.list) {
    for (const s of Object.values(SCENARIOS)) console.log(`${s.name.padEnd(12)} ${s.description}`)
    return 0
  }
  const scenario = Object.hasOwn(SCENARIOS, values.scenario) ? SCENARIOS[values.scenario] : undefined
  if (scenario === undefined) {
    console.error(`--scenario: no scenario ${JSON.stringify(values.scenario)}; there are ${Object.keys(SCENARIOS).join(', ')}\n${USAGE}`)
    return 2
  }
  if (values.seed !== undefined) return replay(scenario, seedArg('seed', values.seed, 0), values.trace)
  const count = seedArg('seeds', values.seeds, 2000, SEEDS_MAX)
  const from = seedArg('from', values.from, 1)
  if (from + count - 1 > 0xffff_ffff) {
    console.error(`seeds are 32-bit: --from ${from} --seeds ${count} goes past ${0xffff_ffff}`)
    return 2
  }
  return sweep(scenario, from, count)
}

function replay (scenario: ScenarioEntry, seed: number, trace: boolean): number {
  const started = performance.now()
  const r = scenario.runSeed(seed, { traceLinesKept: trace ? TRACE_LINES_MAX : 0 })
  const wallMs = performance.now() - started
  if (trace) for (const line of r.trace) console.log(line)
  console.log(summary(r))
  for (const line of r.details) console.log(`  ${line}`)
  console.log(`  trace ${r.traceHash} (${r.simEvents} sim events, ${wallMs.toFixed(0)} ms wall)`)
  for (const v of r.violations) console.log(`  ✗ ${v}`)
  if (r.violationCount > r.violations.length) console.log(`  … and ${r.violationCount - r.violations.length} more`)
  return r.ok ? 0 : 1
}

function summary (r: SeedOutcome): string {
  return `${r.scenario} seed ${r.seed}: ${r.ok ? 'ok' : 'FAILED'} — ${r.summary}`
}

function sweep (scenario: ScenarioEntry, from: number, count: number): number {
  const tty = process.stderr.isTTY === true
  const started = performance.now()
  const failures: SeedOutcome[] = []
  let worst = 0
  let lastReport = 0
  for (let i = 0; i < count; i++) {
    const seed = from + i
    const r = scenario.runSeed(seed)
    if (!r.ok) {
      failures.push(r)
      if (tty) process.stderr.write('\n')
      console.error(`✗ ${scenario.name} seed ${seed}: ${r.violations[0] ?? 'failed'}\n  replay: ${replayCommand(seed, scenario.name)}`)
    }
    if (r.boundUsed !== undefined) worst = Math.max(worst, r.boundUsed)
    const done = i + 1
    const now = performance.now()
    if (done === count || (tty ? now - lastReport > 200 : done % Math.max(1, Math.floor(count / 10)) === 0)) {
      lastReport = now
      const line = `${done}/${count} seeds, ${failures.length} failed, ${((now - started) / 1000).toFixed(1)} s`
      if (tty) process.stderr.write(`\r${line}`)
      else console.error(line)
    }
  }
  if (tty) process.stderr.write('\n')
  console.log(`${scenario.name}: ${count} seeds from ${from}: ${count - failures.length} ok, ${failures.length} failed; the slowest used ${(worst * 100).toFixed(0)}% of its liveness bound`)
  for (const r of failures) {
    console.log(summary(r))
    for (const v of r.violations.slice(0, 3)) console.log(`  ✗ ${v}`)
    console.log(`  replay: ${replayCommand(r.seed, r.scenario)}`)
  }
  return failures.length === 0 ? 0 : 1
}

process.exitCode = main()
