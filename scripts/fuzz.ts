#!/usr/bin/env node
// Fuzz every decoder of network, disk and API input (npm run fuzz).
//
//   node scripts/fuzz.ts [--inputs N] [--seed S] [--only TEXT]
//
// Runs N inputs per decoder (default 10,000) from seed S (default: a fresh random seed, printed
// first). On a failure it prints the decoder, the smallest failing input, and the command that
// replays it exactly; it exits 1. The decoders and generators are test/fuzz/targets.ts.
import { parseArgs } from 'node:util'
import { fuzz } from '../test/fuzz/run.ts'
import { makeTargets } from '../test/fuzz/targets.ts'
import type { Target } from '../test/fuzz/targets.ts'

const USAGE = 'usage: npm run fuzz -- [--inputs N] [--seed S] [--only TEXT]'
/** Keep a run finite: a typo like --inputs 1e9 should not pin a CPU for a week. */
const INPUTS_MAX = 10_000_000
/** Per decoder: about 1 ms an input on the slowest (disk) targets, with room; past it the run fails as a hang. */
const TARGET_MS_PER_INPUT = 5

function intArg (name: string, text: string | undefined, fallback: number, max: number): number {
  if (text === undefined) return fallback
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < 0 || n > max) {
    console.error(`--${name} must be an integer in 0..${max}, got ${JSON.stringify(text)}\n${USAGE}`)
    process.exit(2)
  }
  return n
}

async function main (): Promise<number> {
  let values
  try {
    ({ values } = parseArgs({
      options: {
        inputs: { type: 'string' },
        seed: { type: 'string' },
        only: { type: 'string' },
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
  const inputs = intArg('inputs', values.inputs, 10_000, INPUTS_MAX)
  // A fresh seed each run finds new inputs; the printed seed replays the run.
  const seed = intArg('seed', values.seed, Math.floor(Math.random() * 0x7fff_ffff), 0x7fff_ffff)
  const targets = (await makeTargets()) as Array<Target<unknown>>
  const chosen = targets.filter(t => values.only === undefined || t.name.includes(values.only))
  console.log(`fuzzing ${chosen.length} decoders, ${inputs} inputs each, seed ${seed}`)
  let failed = 0
  try {
    for (const target of chosen) {
      const started = performance.now()
      try {
        await fuzz(target, { inputs, seed, targetMsMax: Math.max(60_000, inputs * TARGET_MS_PER_INPUT) })
        console.log(`ok   ${target.name} (${Math.round(performance.now() - started)} ms)`)
      } catch (err) {
        failed++
        const cause = (err as Error).cause as Error | undefined
        console.log(`FAIL ${target.name}\n${(err as Error).message}${cause !== undefined ? `\ncause: ${cause.message}` : ''}`)
        console.log(`replay: npm run fuzz -- --inputs ${inputs} --seed ${seed} --only ${JSON.stringify(target.name.split(' (')[0])}`)
      }
    }
  } finally {
    for (const target of targets) target.close?.()
  }
  return failed > 0 ? 1 : 0
}

process.exitCode = await main()
