/**
 * Resource limits of one sandboxed call, their defaults, and the ceilings a function manifest
 * may ask for. Every number says why it is what it is.
 */

import { TASK_ARGS_BYTES_MAX } from '../wire/task-codec.ts'

const KIB = 1024
const MIB = 1024 * KIB

export interface SandboxLimits {
  /**
   * JS: the isolate's heap (V8 may overshoot by a few MiB before it stops the isolate).
   * wasm: the module's linear memory (and, separately, the same cap on the engine's heap).
   */
  memoryBytesMax: number
  /** Wall-clock budget for one call: isolate setup, module evaluation, the call and encoding its result. */
  timeMs: number
  /** Size cap on the result encoded as dag-cbor. */
  outputBytesMax: number
}

/*
 * There is no `stackDepthMax`: V8 offers no per-isolate stack depth setting, so the engine's
 * own stack limit (about 10,000 frames) applies and overflowing it is reported as
 * SandboxStackOverflowError.
 */

export const DEFAULT_LIMITS: SandboxLimits = Object.freeze({
  // isolated-vm's own default, and enough for real data work; eight calls at once (the default
  // callsConcurrentMax) stay within 1 GiB on a small peer.
  memoryBytesMax: 128 * MIB,
  // Long enough for real work on one core; short enough that a stuck task frees its slot
  // quickly. Functions that need longer say so in their manifest.
  timeMs: 10_000,
  // Results travel inside attestations and memo entries; larger data belongs in a blob whose
  // CID the function returns.
  outputBytesMax: 1 * MIB
})

/** The lowest values a call may ask for. */
export const LIMITS_FLOOR: SandboxLimits = Object.freeze({
  // isolated-vm refuses isolates smaller than 8 MiB.
  memoryBytesMax: 8 * MIB,
  timeMs: 1,
  // `null` encodes to one byte.
  outputBytesMax: 1
})

/** The highest values a call (or a function manifest) may ask for. Peers refuse more. */
export const LIMITS_CEILING: SandboxLimits = Object.freeze({
  // A peer runs several calls at once; one call holding more than 1 GiB would starve the rest.
  memoryBytesMax: 1024 * MIB,
  // 15 minutes: beyond that a task should checkpoint through a workflow, so a peer crash does
  // not lose hours of work.
  timeMs: 15 * 60_000,
  // 64 MiB: the largest value worth keeping inline; bigger results belong in blobs.
  outputBytesMax: 64 * MIB
})

/**
 * Largest code a function may have, by kind. JS bundles of real functions are tens to hundreds
 * of KiB; 4 MiB leaves room for bundled libraries while keeping compile time (tens of ms) and
 * replication cheap. Compiled-language wasm modules carry their runtime and are larger: 16 MiB.
 */
export const CODE_BYTES_MAX: Readonly<{ js: number, wasm: number }> = Object.freeze({
  js: 4 * MIB,
  wasm: 16 * MIB
})

/**
 * Deepest nesting of arrays and maps in an argument or result. Deep enough for any real data
 * structure; shallow enough that the recursive dag-cbor encoders and decoders on every peer stay
 * far from their stack limit.
 */
export const VALUE_DEPTH_MAX = 256

/** Longest error name and message kept from a thrown value; errors travel on the wire. */
export const THROWN_NAME_LENGTH_MAX = 128
export const THROWN_MESSAGE_LENGTH_MAX = 4096

/** Say what is wrong with `value` as SandboxLimits, or return undefined when it is valid. */
export function limitsProblem (value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'limits must be an object'
  const keys = Object.keys(value)
  for (const key of keys) {
    // Own keys only: `in` would also accept "__proto__", "toString" and the rest of Object.prototype.
    if (!Object.hasOwn(DEFAULT_LIMITS, key)) return `limits has an unknown field "${key}"`
  }
  const record = value as Record<string, unknown>
  for (const key of Object.keys(DEFAULT_LIMITS) as Array<keyof SandboxLimits>) {
    const n = record[key]
    if (typeof n !== 'number' || !Number.isSafeInteger(n)) return `limits.${key} must be an integer`
    if (n < LIMITS_FLOOR[key]) return `limits.${key} is ${n}, less than the floor of ${LIMITS_FLOOR[key]}`
    if (n > LIMITS_CEILING[key]) return `limits.${key} is ${n}, more than the ceiling of ${LIMITS_CEILING[key]}`
  }
  return undefined
}

// --- Workflows ---------------------------------------------------------------------------------

/**
 * Limits of one workflow run (the same fields; `timeMs` is CPU time per activation, not wall time
 * per call). The run's isolate lives as long as the run, between activations.
 */
export const DEFAULT_WORKFLOW_LIMITS: SandboxLimits = Object.freeze({
  // Orchestration holds little: results by value up to 1 MiB each, and the code's own state. 64
  // MiB keeps the default number of open runs (16) within 1 GiB even if each fills its heap.
  memoryBytesMax: 64 * MIB,
  // Code between two awaits takes microseconds to a few milliseconds; a second of CPU in one
  // activation is an endless loop, or computing that belongs in a function (which runs on any
  // peer, in parallel). CPU time, so a busy peer does not fail a run that did nothing wrong.
  timeMs: 1_000,
  // The run's result travels like a task's: in memo entries and the run's record.
  outputBytesMax: 1 * MIB
})

/**
 * Most calls (remote and child) one activation may record. A fan-out over a list of a few thousand
 * items is real; more in one go is a runaway loop, and every command is copied out of the isolate
 * and becomes a scheduled task.
 */
export const WORKFLOW_COMMANDS_PER_ACTIVATION_MAX = 4096

/**
 * Largest arguments of one remote call, as dag-cbor: they become a task request, whose frame
 * carries at most TASK_ARGS_BYTES_MAX; larger inputs go by reference (a Ref is a CID link).
 */
export const WORKFLOW_CALL_ARGS_BYTES_MAX = TASK_ARGS_BYTES_MAX
