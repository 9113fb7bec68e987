/**
 * Seeded pseudo-random numbers for the pure core and the simulator (STYLE.md §4: randomness is
 * passed in, never taken from `Math.random`). A protocol state machine that needs to sample
 * (placement, jitter) takes a `Random`; the shell gives it one seeded from the OS, the simulator
 * one seeded from the scenario seed, so a whole network replays from one 32-bit number.
 *
 * Generator: sfc32, Chris Doty-Humphrey's "Small Fast Counting" generator from PractRand
 * (passes PractRand and BigCrush; 128-bit state, period at least 2^32 because of the counter).
 * Its state is filled from the 32-bit seed by splitmix32 and the first 15 outputs are dropped,
 * as PractRand's author recommends, so nearby seeds give unrelated streams.
 * Not for cryptography.
 */

export interface Random {
  /** A uniform unsigned 32-bit integer. */
  u32 (): number
  /** A uniform float in [0, 1) with 32 bits of resolution. */
  float (): number
  /** A uniform integer in [min, max], both inclusive. Bias is below (max - min + 1) / 2^32. */
  int (min: number, max: number): number
  /** True with probability `p` (0 ≤ p ≤ 1). */
  chance (p: number): boolean
  /** One element of a non-empty array. */
  pick<T> (items: readonly T[]): T
  /** An independent generator seeded from this one: lets one part of a program draw numbers
   *  without shifting the stream another part sees. */
  fork (): Random
}

const TWO_POW_32 = 0x1_0000_0000

function splitmix32 (seed: number): () => number {
  let state = seed | 0
  return () => {
    state = (state + 0x9e3779b9) | 0
    let t = state ^ (state >>> 16)
    t = Math.imul(t, 0x21f0aaad)
    t = t ^ (t >>> 15)
    t = Math.imul(t, 0x735a2d97)
    return (t ^ (t >>> 15)) >>> 0
  }
}

class Sfc32 implements Random {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor (seed: number) {
    const mix = splitmix32(seed)
    this.a = mix()
    this.b = mix()
    this.c = mix()
    this.d = mix()
    for (let i = 0; i < 15; i++) this.u32()
  }

  u32 (): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0
    this.d = (this.d + 1) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) | 0
    return t >>> 0
  }

  float (): number {
    return this.u32() / TWO_POW_32
  }

  int (min: number, max: number): number {
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || max < min || max - min >= TWO_POW_32) {
      throw new RangeError(`random.int(${min}, ${max}): need safe integers with min <= max and a range below 2^32`)
    }
    return min + Math.floor(this.float() * (max - min + 1))
  }

  chance (p: number): boolean {
    return this.float() < p
  }

  pick<T> (items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('random.pick: the array is empty')
    return items[this.int(0, items.length - 1)]
  }

  fork (): Random {
    return new Sfc32(this.u32())
  }
}

/** A generator seeded from a 32-bit integer (other numbers are truncated to 32 bits). */
export function createRandom (seed: number): Random {
  return new Sfc32(seed >>> 0)
}
