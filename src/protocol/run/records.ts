/**
 * Recorded inputs: the memo ids and values of what a workflow's code waits on besides remote
 * calls — timers and signals. Each is a memo entry like an accepted task result, so a replay (after
 * an eviction, a restart, a takeover) sees the same thing the first execution saw:
 *
 *   sleep:<k>          the k-th sleep of the code started; value: its wake time (dag-cbor uint, ms)
 *   wake:<k>           the k-th sleep's timer fired; value: dag-cbor null
 *   signal:<name>:<n>  the n-th signal `name` the run received; value: the signal's dag-cbor value
 *
 * One more kind of entry is not an input but a correction: `fix:<taskId>` is the result of task
 * `taskId` that verification proved correct after a different one was accepted (its value: that
 * ResultRef). The run service stores it before telling the driver (handleVerdict 'disproven'), and a
 * driver given a memo holding it resolves calls of `taskId` with it, not with the entry for `taskId`.
 *
 * None of them can be mistaken for a task or child run id: those are CIDs, which hold no ':'. Nor
 * for each other: each kind has its own first word (`sleep`, `wake`, `signal`, `fix`; the home set's
 * `run:result` another), and a fix names a task id, never a record or another fix.
 * The two values the driver writes itself (a uint, a null) are encoded here by hand, so the pure
 * core needs no codec library; they are exactly what @ipld/dag-cbor writes for the same values.
 */
import { assert } from '../../model/errors.ts'

export type RecordId =
  | { kind: 'sleep', k: number }
  | { kind: 'wake', k: number }
  | { kind: 'signal', name: string, n: number }

export function sleepId (k: number): string {
  return `sleep:${k}`
}

export function wakeId (k: number): string {
  return `wake:${k}`
}

export function signalId (name: string, n: number): string {
  return `signal:${name}:${n}`
}

/** What every fix entry's id starts with. */
export const FIX_ENTRY_PREFIX = 'fix:'

/** The memo id of task `taskId`'s corrected result. `taskId` is a task id (a CID: no ':'). */
export function fixEntryId (taskId: string): string {
  assert(taskId.length > 0 && !taskId.includes(':'), 'a fix names a task id, never a record or another fix')
  return FIX_ENTRY_PREFIX + taskId
}

/** The task id a fix entry id names, or undefined for any other id. */
export function parseFixEntryId (id: string): string | undefined {
  if (!id.startsWith(FIX_ENTRY_PREFIX)) return undefined
  const taskId = id.slice(FIX_ENTRY_PREFIX.length)
  return taskId.length > 0 && !taskId.includes(':') ? taskId : undefined
}

/** What every check marker's id starts with. */
export const CHECK_ENTRY_PREFIX = 'check:'

/**
 * The memo id that marks task `taskId`'s accepted result as under check (a spot check, or a
 * re-check of a peer proven to lie) when the check opened. It is written to a durable run's memo
 * next to the result, so a driver that takes the run over knows which results were not yet borne
 * out: without the check's verdict (only a fix is written when a result is disproven), it cannot
 * trust them, and `verifiedMemo` leaves them out so the replay runs them again.
 */
export function checkEntryId (taskId: string): string {
  assert(taskId.length > 0 && !taskId.includes(':'), 'a check marker names a task id')
  return CHECK_ENTRY_PREFIX + taskId
}

/**
 * The memo a driver may resume from: check markers removed, and every result that was under
 * check without a fix (its verdict unknown to the memo) removed with its marker, so the code's
 * replay runs that task again under verification instead of trusting an unverified answer.
 * Fixes stay (the driver puts each in place of the result it corrects). O(entries).
 */
export function verifiedMemo<T extends { id: string }> (entries: readonly T[]): T[] {
  const checked = new Set<string>()
  const fixed = new Set<string>()
  for (const e of entries) {
    if (e.id.startsWith(CHECK_ENTRY_PREFIX)) checked.add(e.id.slice(CHECK_ENTRY_PREFIX.length))
    const fix = parseFixEntryId(e.id)
    if (fix !== undefined) fixed.add(fix)
  }
  return entries.filter(e => !e.id.startsWith(CHECK_ENTRY_PREFIX) && !(checked.has(e.id) && !fixed.has(e.id)))
}

const INDEX = /^(?:0|[1-9][0-9]{0,14})$/

/** The record an id names, or undefined for any other id (a task or child run). */
export function parseRecordId (id: string): RecordId | undefined {
  const parts = id.split(':')
  if (parts.length === 2 && (parts[0] === 'sleep' || parts[0] === 'wake') && INDEX.test(parts[1])) {
    return { kind: parts[0], k: Number(parts[1]) }
  }
  if (parts.length === 3 && parts[0] === 'signal' && parts[1].length > 0 && INDEX.test(parts[2])) {
    return { kind: 'signal', name: parts[1], n: Number(parts[2]) }
  }
  return undefined
}

/** dag-cbor null. */
export const CBOR_NULL = new Uint8Array([0xf6])

/** dag-cbor of a non-negative safe integer, in its shortest form (as dag-cbor requires). */
export function encodeUint (value: number): Uint8Array {
  if (value < 24) return new Uint8Array([value])
  if (value < 0x100) return new Uint8Array([0x18, value])
  if (value < 0x10000) return new Uint8Array([0x19, value >>> 8, value & 0xff])
  if (value < 0x100000000) return new Uint8Array([0x1a, value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff])
  const out = new Uint8Array(9)
  out[0] = 0x1b
  const view = new DataView(out.buffer)
  view.setUint32(1, Math.floor(value / 0x100000000))
  view.setUint32(5, value % 0x100000000)
  return out
}

/** The non-negative safe integer in `bytes` (dag-cbor, shortest form), or undefined if they hold anything else. */
export function decodeUint (bytes: Uint8Array): number | undefined {
  if (bytes.byteLength === 0) return undefined
  const head = bytes[0]
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let value: number
  if (head < 24 && bytes.byteLength === 1) value = head
  else if (head === 0x18 && bytes.byteLength === 2) value = bytes[1]
  else if (head === 0x19 && bytes.byteLength === 3) value = view.getUint16(1)
  else if (head === 0x1a && bytes.byteLength === 5) value = view.getUint32(1)
  else if (head === 0x1b && bytes.byteLength === 9) value = view.getUint32(1) * 0x100000000 + view.getUint32(5)
  else return undefined
  if (!Number.isSafeInteger(value)) return undefined
  // Shortest form only: the same number has one encoding, so one CID.
  const again = encodeUint(value)
  return again.byteLength === bytes.byteLength ? value : undefined
}
