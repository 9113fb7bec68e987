/**
 * Seeded fuzzing of every decoder of network, disk and API input (./targets.ts). `npm test` runs
 * a few hundred inputs per decoder with a fixed seed; `npm run fuzz -- --inputs N [--seed S]`
 * runs more and prints the seed that replays a failure.
 */
import { after, before, describe, test } from 'node:test'
import { FUZZ_SEED_DEFAULT, fuzz } from './run.ts'
import { makeTargets } from './targets.ts'
import type { Target } from './targets.ts'

/** Inputs per decoder in `npm test`: 15 decoders × 300 is a few thousand, in seconds. */
const INPUTS_PER_TARGET = 300

const targets = await makeTargets()

describe('fuzz: every decoder accepts a valid value or refuses with a named error', () => {
  before(() => {})
  after(() => { for (const target of targets) target.close?.() })
  for (const target of targets as Array<Target<unknown>>) {
    test(target.name, async () => {
      await fuzz(target, { inputs: INPUTS_PER_TARGET, seed: FUZZ_SEED_DEFAULT, targetMsMax: 60_000 })
    })
  }
})
