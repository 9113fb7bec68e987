/**
 * Memo replication for durable runs: a run's memo (id → accepted result, and every
 * nondeterministic input) lives on the run's *home set*, R peers chosen by rendezvous hashing on
 * the run id. Two sans-I/O machines:
 *
 *  - the DRIVER side (`createMemoDriver`, ./driver.ts), on the peer that drives the run: it pushes
 *    every new entry to the home set, and says `durable` once a majority has persisted it — the
 *    shell delivers an entry to the workflow code only after that. After a takeover the new driver
 *    first *gathers* the memo from a majority and merges by union. It also repairs replicas that
 *    fell behind and new members of the home set.
 *  - the REPLICA side (`createMemoReplica`, ./replica.ts), on every home-set peer: it stores what
 *    it is sent (the shell persists before the ack leaves), refuses stale drivers (fencing by
 *    epoch), and answers gathers and digest probes.
 *
 * The memo itself (./memo-set.ts) is a grow-only map with a deterministic merge, so replicas that
 * see the same entries in any order, any number of times, hold the same memo.
 *
 * Not yet wired into the run service: the shell (routing messages by run id, persisting, feeding
 * the lease epoch) is the next step. Theory of operation: ./driver.ts.
 */
import { MEMO_DEFAULTS } from './constants.ts'
import { MemoDriverMachine } from './driver.ts'
import { MemoReplicaMachine } from './replica.ts'

/** Where an accepted result is (the run driver's ResultRef without inline bytes). */
export interface MemoValue {
  cid: string
  peer: string
  /** The value's bytes, when small (≤ MEMO_INLINE_BYTES_MAX): timer deadlines, signals, small
   *  results. They travel with the entry, so a new driver needs no blob fetch to use them. The
   *  merge rule and the digest look at `cid` only: the bytes are checked against it by the shell
   *  before use. */
  bytes?: Uint8Array
}

/** One memo entry: the id (task id, child run id, or the id of a timer firing or signal), its
 *  value, and the epoch of the driver that last vouched for it (the conflict rule needs it). */
export interface MemoEntry {
  id: string
  epoch: number
  value: MemoValue
}

/** A cheap summary of a memo: equal digests mean (but for a 2^-64 chance) equal memos. */
export interface MemoDigest {
  count: number
  /** Two independent 32-bit sums of per-entry hashes, order-free so they update in O(1). */
  hashA: number
  hashB: number
}

/** Driver → replica. */
export type DriverMessage =
  | { type: 'append', epoch: number, entries: MemoEntry[] }
  /** Send me your whole memo (takeover, or repair after a digest mismatch). */
  | { type: 'gather', epoch: number, nonce: number }
  | { type: 'probe', epoch: number, digest: MemoDigest }

/** Replica → driver. */
export type ReplicaMessage =
  /** These ids are persisted with exactly the values sent. */
  | { type: 'ack', epoch: number, ids: string[] }
  /** Your epoch is stale: `epoch` is the highest this replica has seen. */
  | { type: 'refused', epoch: number }
  /** Part `part` of `parts` of this replica's memo, answering gather `nonce`. */
  | { type: 'memo-part', epoch: number, nonce: number, part: number, parts: number, entries: MemoEntry[] }
  | { type: 'probe-reply', epoch: number, digest: MemoDigest }

export type MemoMessage = DriverMessage | ReplicaMessage

/** Two values for one id, resolved by the rule in ./memo-set.ts. Only nondeterminism makes one. */
export interface MemoConflict {
  type: 'conflict'
  id: string
  kept: MemoEntry
  dropped: MemoEntry
}

export type DriverOutput =
  | { type: 'send', to: string, message: DriverMessage }
  /** A majority of the home set persisted this entry: the code may now depend on it. Once per id. */
  | { type: 'durable', id: string }
  /** The takeover gather is done: this is the memo (each entry is `durable` only once its own
   *  event says so). Once, and only for a driver created with `gather: true`. */
  | { type: 'gathered', entries: MemoEntry[] }
  | MemoConflict
  /** A replica has seen a newer epoch: this driver is deposed and does nothing more. */
  | { type: 'fenced', epoch: number }

export type ReplicaOutput =
  /** Write these entries (the replica's new values for their ids) and the fencing epoch, and
   *  finish the write before sending anything that follows in poll(). */
  | { type: 'persist', entries: MemoEntry[], epoch: number }
  | { type: 'send', to: string, message: ReplicaMessage }
  | MemoConflict

/** What became of a message: used; refused (stale epoch); ignored (not for this life, a
 *  duplicate); malformed (broke the protocol: the shell may score the peer). */
export type MessageVerdict = 'accepted' | 'refused' | 'ignored' | 'malformed'

export type MemoDriverState = 'gathering' | 'ready' | 'fenced'

export interface MemoLimits {
  /** Default 10,000 entries per run (MemoFullError past it on the driver; ignored on a replica). */
  memoEntriesMax?: number
  /** Default 256 entries per append or memo-part message. */
  batchEntriesMax?: number
  /** Default 15 peers in a home set. */
  homeSetSizeMax?: number
}

export interface MemoDriverOptions extends MemoLimits {
  /** This peer's id. If it is in the home set, its own replica counts too: the shell hands the
   *  messages addressed to `self` to the local replica and its answers back. */
  self: string
  /** This driver's epoch (from the lease): every message carries it, and replicas that saw a
   *  higher one refuse. ≥ 1. */
  epoch: number
  homeSet: string[]
  /** A takeover: gather the memo from a majority before accepting local entries. Default false
   *  (a new run: the memo starts empty). */
  gather?: boolean
  /** Default 1 s, doubling per unanswered send up to `resendMaxMs`. */
  resendMs?: number
  /** Default 30 s. */
  resendMaxMs?: number
  /** Default 8 unanswered sends of a batch, then the replica is only probed. */
  attemptsMax?: number
  /** Default 10 s between digest probes of an idle replica. */
  probeIntervalMs?: number
}

export interface MemoDriver {
  /** The run accepted a result (or saw a timer fire, a signal): replicate it. Throws MemoFullError
   *  past memoEntriesMax. Not while gathering (a bug). An id already in the memo with the same
   *  value is a no-op; with another value it is a `conflict`, and the memo's value stands: the
   *  code must be given that one. */
  handleLocalEntry (entry: { id: string, value: MemoValue }, nowMs: number): void
  /** Several local entries at once (those of one turn of the shell's event loop): as many
   *  `handleLocalEntry` calls, but an idle replica gets them in one append (one commit, one ack)
   *  instead of the first alone and the rest after its ack. */
  handleLocalEntries (entries: ReadonlyArray<{ id: string, value: MemoValue }>, nowMs: number): void
  /** The home set changed (a peer gone for good was replaced). New members are repaired: their
   *  memo is gathered, compared, and what they lack is pushed. */
  handleHomeSet (peers: string[], nowMs: number): void
  handleMessage (from: string, message: ReplicaMessage, nowMs: number): MessageVerdict
  handleTimeout (nowMs: number): void
  poll (): DriverOutput | undefined
  /** undefined when nothing is timed (fenced). */
  nextTimeoutMs (): number | undefined
  state (): MemoDriverState
  /** A copy of the memo, sorted by id. */
  memo (): MemoEntry[]
  isDurable (id: string): boolean
}

export interface MemoReplicaOptions extends MemoLimits {
  /** What storage holds: the entries and the fencing epoch persisted by earlier lives. */
  entries?: MemoEntry[]
  epoch?: number
}

export interface MemoReplica {
  handleAppend (from: string, epoch: number, entries: MemoEntry[], nowMs: number): MessageVerdict
  handleGather (from: string, epoch: number, nonce: number, nowMs: number): MessageVerdict
  handleProbe (from: string, epoch: number, digest: MemoDigest, nowMs: number): MessageVerdict
  /** Any driver message (dispatches to the three above; malformed ones are refused here). */
  handleMessage (from: string, message: DriverMessage, nowMs: number): MessageVerdict
  /** The lease part saw this epoch: refuse drivers below it from now on. */
  handleEpoch (epoch: number, nowMs: number): void
  poll (): ReplicaOutput | undefined
  /** The replica has no timers (it only answers); always undefined. */
  nextTimeoutMs (): number | undefined
  /** The highest epoch seen (the fence). */
  epoch (): number
  /** A copy of the memo, sorted by id. */
  memo (): MemoEntry[]
  digest (): MemoDigest
}

export const MEMO_OPTIONS_DEFAULTS = Object.freeze({ ...MEMO_DEFAULTS })

export function createMemoDriver (options: MemoDriverOptions): MemoDriver {
  return new MemoDriverMachine(options)
}

export function createMemoReplica (options: MemoReplicaOptions = {}): MemoReplica {
  return new MemoReplicaMachine(options)
}

export { MEMO_EPOCH_MAX, MEMO_INLINE_BYTES_MAX, MEMO_STRING_CHARS_MAX } from './constants.ts'
export { MemoFullError } from './memo-set.ts'
export { betterEntry, copyEntry, entryProblem, MemoSet, sameEntry } from './memo-set.ts'
