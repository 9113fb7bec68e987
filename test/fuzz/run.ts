/**
 * The fuzz property, shared by `npm test` (test/fuzz/decoders.test.ts) and `npm run fuzz`
 * (scripts/fuzz.ts): every input is accepted as a valid value or refused with a named
 * RhizomeError, and no input takes longer than INPUT_MS_MAX.
 */
import fc from 'fast-check'
import { RhizomeError } from '../../src/model/errors.ts'
import type { Target } from './targets.ts'

/**
 * Longest one input may take. Decoding a few hundred bytes takes microseconds; the slowest
 * targets touch the disk (config, identity). A slower input is a hang or a cost bug.
 * (fast-check can time out an async run; a synchronous endless loop is caught by the test runner's timeout.)
 */
export const INPUT_MS_MAX = 2_000

/** Seed of `npm test`'s fuzz run: fixed, so a failure in CI replays exactly. */
export const FUZZ_SEED_DEFAULT = 0x5eed

/** Whether `err` is a refusal the property accepts: a RhizomeError subclass with its own name. */
export function isNamedRefusal (err: unknown): boolean {
  return err instanceof RhizomeError && err.name !== 'RhizomeError' && err.name !== 'Error' && err.name.endsWith('Error')
}

export function property<T> (target: Target<T>): fc.IAsyncProperty<[T]> {
  return fc.asyncProperty(target.inputs, async (input) => {
    let value: unknown
    try {
      value = await target.decode(input)
    } catch (err) {
      if (isNamedRefusal(err)) return
      const e = err as Error
      throw new Error(`${target.name}: refused with ${e?.name ?? typeof err} (not a named RhizomeError): ${e?.message ?? String(err)}`, { cause: err })
    }
    target.check?.(value, input)
  })
}

export interface FuzzOptions {
  inputs: number
  seed: number
  /** Whole-target budget: past it, the run stops and fails (a hang or a cost bug). */
  targetMsMax: number
}

/** Run one target; throws fast-check's report (with the seed and path to replay) on failure. */
export async function fuzz<T> (target: Target<T>, options: FuzzOptions): Promise<void> {
  await fc.assert(property(target), {
    numRuns: options.inputs,
    seed: options.seed,
    timeout: INPUT_MS_MAX,
    interruptAfterTimeLimit: options.targetMsMax,
    markInterruptAsFailure: true
  })
}
