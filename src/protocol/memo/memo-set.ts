/**
 * The memo as a replicated value: a grow-only map id → entry with a deterministic merge.
 *
 * MERGE RULE. Two entries for one id: the one with the HIGHER epoch wins; at equal epochs the
 * lower result CID, then the lower peer id. Why the higher epoch and not the first: a driver of
 * epoch e gathered the memo from a majority before it wrote anything (./driver.ts), so it knows
 * every entry that was durable before it, and re-stamps each with its own epoch. An entry of a
 * lower epoch that it did not know was never durable (a deposed driver got it onto a minority
 * only): the newer driver's value must win over it, or a reported result could change when that
 * minority copy spreads. Equal epochs with different values come from one driver only, which
 * never writes two values for one id; the CID order just makes the outcome the same everywhere.
 * A merge that sees two different values reports a conflict (they can only come from
 * nondeterminism: a workflow that read a clock, a task whose result is not a function of its
 * inputs) and keeps the winner.
 *
 * The rule is a total order per id, so merging is taking a maximum: commutative, associative and
 * idempotent. Replicas that receive the same entries in any order, with any duplicates, hold the
 * same memo — the property the simulator and a fast-check test check.
 *
 * DIGEST. Count plus two 32-bit sums of per-entry hashes (FNV-1a with two offset bases). A sum is
 * order-free, so the digest updates in O(1) per merge, and comparing two memos is one message.
 */
import { assert, RhizomeError } from '../../model/errors.ts'
import type { RhizomeErrorOptions } from '../../model/errors.ts'
import { MEMO_EPOCH_MAX, MEMO_INLINE_BYTES_MAX, MEMO_STRING_CHARS_MAX } from './constants.ts'
import type { MemoDigest, MemoEntry, MemoValue } from './index.ts'

/** The driver was given one entry more than memoEntriesMax. */
export class MemoFullError extends RhizomeError {
  constructor (entriesMax: number, options: RhizomeErrorOptions = {}) {
    super('ERR_MEMO_FULL', `the run's memo holds its limit of ${entriesMax} entries`, {
      hint: 'split the workflow into child runs: each has its own memo',
      ...options
    })
    this.name = 'MemoFullError'
  }
}

/** True if `a` wins over `b` by the merge rule (both for the same id). */
export function betterEntry (a: MemoEntry, b: MemoEntry): boolean {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch
  if (a.value.cid !== b.value.cid) return a.value.cid < b.value.cid
  return a.value.peer < b.value.peer
}

export function sameValue (a: MemoEntry, b: MemoEntry): boolean {
  return a.value.cid === b.value.cid && a.value.peer === b.value.peer
}

export function sameEntry (a: MemoEntry, b: MemoEntry): boolean {
  return a.id === b.id && a.epoch === b.epoch && sameValue(a, b)
}

function goodString (s: unknown): boolean {
  return typeof s === 'string' && s.length >= 1 && s.length <= MEMO_STRING_CHARS_MAX
}

/** Why `entry` (from the network) is not an entry, or undefined if it is one. */
export function entryProblem (entry: unknown): string | undefined {
  if (typeof entry !== 'object' || entry === null) return 'an entry is an object'
  const e = entry as Partial<MemoEntry>
  if (!goodString(e.id)) return `an entry id is 1..${MEMO_STRING_CHARS_MAX} chars`
  if (!Number.isSafeInteger(e.epoch) || (e.epoch as number) < 0 || (e.epoch as number) > MEMO_EPOCH_MAX) return 'an entry epoch is a whole number ≥ 0'
  if (typeof e.value !== 'object' || e.value === null) return 'an entry has a value'
  if (!goodString(e.value.cid) || !goodString(e.value.peer)) return `a value's cid and peer are 1..${MEMO_STRING_CHARS_MAX} chars`
  const bytes = e.value.bytes
  if (bytes !== undefined && (!(bytes instanceof Uint8Array) || bytes.byteLength > MEMO_INLINE_BYTES_MAX)) return `a value's inline bytes are at most ${MEMO_INLINE_BYTES_MAX}`
  return undefined
}

export function copyEntry (e: MemoEntry): MemoEntry {
  return { id: e.id, epoch: e.epoch, value: copyValue(e.value) }
}

/** A value's inline bytes are immutable by contract (never written after creation), so they are shared, not copied. */
export function copyValue (v: MemoValue): MemoValue {
  return v.bytes === undefined ? { cid: v.cid, peer: v.peer } : { cid: v.cid, peer: v.peer, bytes: v.bytes }
}

function fnv1a (text: string, basis: number): number {
  let h = basis
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

function entryHashes (e: MemoEntry): [number, number] {
  const text = `${e.id}\u0000${e.epoch}\u0000${e.value.cid}\u0000${e.value.peer}`
  return [fnv1a(text, 0x811c9dc5), fnv1a(text, 0x050c5d1f)]
}

export type MergeResult =
  /** New id, or a winning value (or epoch) for a known id: the set changed. */
  | { changed: true, conflict?: { kept: MemoEntry, dropped: MemoEntry } }
  /** Known already, or lost to what is held. */
  | { changed: false, conflict?: { kept: MemoEntry, dropped: MemoEntry } }
  /** A new id, and the set is at entriesMax. */
  | { changed: false, full: true }

export class MemoSet {
  private readonly map = new Map<string, MemoEntry>()
  private hashA = 0
  private hashB = 0
  readonly entriesMax: number

  constructor (entriesMax: number) {
    assert(Number.isSafeInteger(entriesMax) && entriesMax >= 1, 'a memo holds at least one entry')
    this.entriesMax = entriesMax
  }

  get size (): number {
    return this.map.size
  }

  get (id: string): MemoEntry | undefined {
    return this.map.get(id)
  }

  has (id: string): boolean {
    return this.map.has(id)
  }

  /** Merge one (valid) entry by the rule; the set keeps its own copy. */
  merge (entry: MemoEntry): MergeResult {
    const held = this.map.get(entry.id)
    if (held === undefined) {
      if (this.map.size >= this.entriesMax) return { changed: false, full: true }
      this.put(copyEntry(entry), undefined)
      return { changed: true }
    }
    if (sameEntry(held, entry)) return { changed: false }
    const conflict = sameValue(held, entry) ? undefined : { kept: held, dropped: entry }
    if (!betterEntry(entry, held)) return conflict === undefined ? { changed: false } : { changed: false, conflict: { kept: copyEntry(held), dropped: copyEntry(entry) } }
    const kept = copyEntry(entry)
    this.put(kept, held)
    return conflict === undefined ? { changed: true } : { changed: true, conflict: { kept: copyEntry(kept), dropped: copyEntry(held) } }
  }

  private put (entry: MemoEntry, replaced: MemoEntry | undefined): void {
    if (replaced !== undefined) {
      const [a, b] = entryHashes(replaced)
      this.hashA = (this.hashA - a) >>> 0
      this.hashB = (this.hashB - b) >>> 0
    }
    const [a, b] = entryHashes(entry)
    this.hashA = (this.hashA + a) >>> 0
    this.hashB = (this.hashB + b) >>> 0
    this.map.set(entry.id, entry)
  }

  digest (): MemoDigest {
    return { count: this.map.size, hashA: this.hashA, hashB: this.hashB }
  }

  /** Copies, sorted by id (a deterministic order for messages and comparisons). */
  sorted (): MemoEntry[] {
    return [...this.map.values()].sort((x, y) => x.id < y.id ? -1 : x.id > y.id ? 1 : 0).map(copyEntry)
  }

  /** Iterate held entries (not copies: do not change them). */
  values (): IterableIterator<MemoEntry> {
    return this.map.values()
  }
}

export function sameDigest (a: MemoDigest, b: MemoDigest): boolean {
  return a.count === b.count && a.hashA === b.hashA && a.hashB === b.hashB
}

export function digestProblem (d: unknown): string | undefined {
  if (typeof d !== 'object' || d === null) return 'a digest is an object'
  const x = d as Partial<MemoDigest>
  const u32 = (n: unknown): boolean => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 0xffffffff
  if (!Number.isSafeInteger(x.count) || (x.count as number) < 0 || !u32(x.hashA) || !u32(x.hashB)) return 'a digest is a count and two 32-bit hashes'
  return undefined
}

export function validEpoch (epoch: unknown): epoch is number {
  return Number.isSafeInteger(epoch) && (epoch as number) >= 0
}

/** Split into chunks of at most `size` (at least one chunk, possibly empty). */
export function chunks<T> (items: T[], size: number): T[][] {
  if (items.length === 0) return [[]]
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}
