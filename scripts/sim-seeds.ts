#!/usr/bin/env node
// Run the membership simulator over many seeds (npm run test:sim).
//
//   node scripts/sim-seeds.ts [--seeds N] [--from S]     N seeds from S (default 2000 from 1)
//   node scripts/sim-seeds.ts --seed S [--trace]         replay one seed; print its violations,
//                                                        numbers and (--trace) every trace line
//
// Exits 1 if any seed fails, printing each failure with the command that replays it.
import { parseArgs } from 'node:util'
import { replayCommand, runMembershipScenario } from '../src/sim/index.ts'
import type { MembershipScenarioResult } from '../src/sim/index.ts'

const USAGE = 'usage: node scripts/sim-seeds.ts [--seeds N] [--from S] | --seed S [--trace]'
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
        seeds: { type: 'string' },
        from: { type: 'string' },
        seed: { type: 'string' },
        trace: { type: 'boolean', default: false },
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
  if (values.seed !== undefined) return replay(seedArg('seed', values.seed, 0), values.trace)
  const count = seedArg('seeds', values.seeds, 2000, SEEDS_MAX)
  const from = seedArg('from', values.from, 1)
  if (from + count - 1 > 0xffff_ffff) {
    console.error(`seeds are 32-bit: --from ${from} --seeds ${count} goes past ${0xffff_ffff}`)
    return 2
  }
  return sweep(from, count)
}

function replay (seed: number, trace: boolean): number {
  const started = performance.now()
  const r = runMembershipScenario({ seed, traceLinesKept: trace ? TRACE_LINES_MAX : 0 })
  const wallMs = performance.now() - started
  if (trace) for (const line of r.trace) console.log(line)
  console.log(summary(r))
  console.log(`  messages ${JSON.stringify(r.messages)}`)
  console.log(`  verdicts ${JSON.stringify(r.verdicts)}`)
  console.log(`  trace ${r.traceHash} (${r.simEvents} sim events, ${wallMs.toFixed(0)} ms wall)`)
  for (const v of r.violations) console.log(`  ✗ ${v}`)
  if (r.violationCount > r.violations.length) console.log(`  … and ${r.violationCount - r.violations.length} more`)
  return r.ok ? 0 : 1
}

function summary (r: MembershipScenarioResult): string {
  const converged = r.convergenceMs === undefined ? 'never converged' : `converged T+${r.convergenceMs} ms (bound ${r.boundMs} ms)`
  return `seed ${r.seed}: ${r.ok ? 'ok' : 'FAILED'} — ${r.nodes} peers, ${r.liveAtEnd} running at the end, faults until ${r.faultsEndMs} ms, ${converged}`
}

function sweep (from: number, count: number): number {
  const tty = process.stderr.isTTY === true
  const started = performance.now()
  const failures: MembershipScenarioResult[] = []
  let worst = 0
  let lastReport = 0
  for (let i = 0; i < count; i++) {
    const seed = from + i
    const r = runMembershipScenario({ seed })
    if (!r.ok) {
      failures.push(r)
      if (tty) process.stderr.write('\n')
      console.error(`✗ seed ${seed}: ${r.violations[0] ?? 'failed'}\n  replay: ${replayCommand(seed)}`)
    }
    if (r.convergenceMs !== undefined) worst = Math.max(worst, r.convergenceMs / r.boundMs)
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
  console.log(`${count} seeds from ${from}: ${count - failures.length} ok, ${failures.length} failed; slowest convergence used ${(worst * 100).toFixed(0)}% of its bound`)
  for (const r of failures) {
    console.log(summary(r))
    for (const v of r.violations.slice(0, 3)) console.log(`  ✗ ${v}`)
    console.log(`  replay: ${replayCommand(r.seed)}`)
  }
  return failures.length === 0 ? 0 : 1
}

process.exitCode = main()
