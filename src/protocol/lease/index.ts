/**
 * Run leases: which home-set peer drives a durable run, and with what epoch.
 *
 * Each run has a home set of R peers (rendezvous hashing on the run id among alive peers,
 * src/protocol/placement.ts `rendezvousOwners`). One of them, the driver, holds a lease with an
 * epoch, renewed by a majority of the home set; when it lapses, the next home-set peer in
 * rendezvous order takes over with a higher epoch, and anything sent with an older epoch is
 * refused (fencing). This is the contract; the state machine is in ./lease.ts (read its theory of
 * operation, including the clock bound that safety rests on).
 *
 * One machine per peer per run. Sans-I/O (STYLE.md §4): the shell feeds inputs (`handle*`, with
 * the current time), drains `poll()` after every call — writing each `persist` to durable storage
 * BEFORE sending any message that follows it — and calls `handleTimeout` at `nextTimeoutMs()`.
 * Not yet wired into the peer: the memo gathering and replay that follow `became-driver` are
 * another part's job.
 */
import { LEASE_DEFAULTS as DEFAULTS } from './constants.ts'
import { LeaseMachine } from './lease.ts'

/** What a grantor must keep across a restart: the highest epoch it granted, and to whom. */
export interface LeasePromise {
  epoch: number
  holder: string
}

export type RefusalReason =
  /** The request's epoch is below the grantor's highest (or equal, for another driver): fenced. */
  | 'stale-epoch'
  /** The grantor's grant to another driver has not expired yet. */
  | 'held'
  /** The requester is not in the grantor's home set for this run. */
  | 'not-home'

export type LeaseOutput =
  /** Ask `to` to grant (or renew) `epoch`; `round` is echoed in the answer. */
  | { type: 'request', to: string, epoch: number, round: number }
  | { type: 'grant', to: string, epoch: number, round: number }
  /** `epoch` is the highest epoch this grantor has seen (the fencing token to beat). */
  | { type: 'refuse', to: string, epoch: number, round: number, reason: RefusalReason }
  /** Write this to durable storage before sending anything polled after it. */
  | { type: 'persist', promise: LeasePromise }
  /** This peer won a majority for `epoch`: it must gather the memo and replay, then drive. */
  | { type: 'became-driver', epoch: number }
  /** Its lease ran out (renewals did not reach a majority in time): stop driving at once. */
  | { type: 'lost-lease', epoch: number }
  /** A peer acted with a stale epoch: `from` sent `epoch` below `highestEpoch` (we refused it),
   *  or refused ours because it has seen `highestEpoch`. */
  | { type: 'fenced', from: string, epoch: number, highestEpoch: number }

export type LeaseRole = 'follower' | 'candidate' | 'driver' | 'outside'

export interface LeaseOptions {
  selfId: string
  /** The run's home set in rendezvous order (best first); must include selfId to take part. */
  homeSet: readonly string[]
  /** What storage holds from an earlier life, if anything. */
  restored?: LeasePromise
  /** Default 600: a grant lasts this long on the grantor's clock. */
  leaseMs?: number
  /** Default 200: the driver renews this often; < leaseMs / 2. */
  renewMs?: number
  /** Default 100: extra wait past a lapsed grant before asking for the lease. */
  graceMs?: number
  /** Default 100: per rank in rendezvous order after the last holder. */
  staggerMs?: number
  /** Default 100: the most clocks may move against each other during one lease (see lease.ts). */
  clockDriftMaxMs?: number
}

export type InputVerdict = 'accepted' | 'ignored' | 'invalid'

export interface LeaseSnapshot {
  role: LeaseRole
  /** The epoch this peer drives or asks for (0: none). */
  epoch: number
  /** The highest epoch this peer has seen anywhere. */
  highestEpoch: number
  promise: LeasePromise | undefined
  /** Local ms until which this peer's own lease is valid (drivers only). */
  leaseEndMs: number | undefined
}

export interface Lease {
  /** Another peer asks to hold or renew the lease for `epoch`. Answers with a grant or refusal. */
  handleLeaseRequest (from: string, epoch: number, round: number, nowMs: number): InputVerdict
  /** A grant of one of our own requests. */
  handleLeaseGrant (from: string, epoch: number, round: number, nowMs: number): InputVerdict
  /** A refusal of one of our own requests; `epoch` is the refuser's highest seen. */
  handleLeaseRefusal (from: string, epoch: number, round: number, reason: RefusalReason, nowMs: number): InputVerdict
  /** The home set changed (a reconfiguration: see lease.ts, HOME SET). */
  handleHomeSet (homeSet: readonly string[], nowMs: number): void
  handleTimeout (nowMs: number): void
  poll (): LeaseOutput | undefined
  /** Absolute local ms at which handleTimeout should next be called (Infinity: never). */
  nextTimeoutMs (): number
  /** True if this peer is the driver and its lease is valid at `nowMs` (a query: no outputs). */
  holdsLease (nowMs: number): boolean
  snapshot (): LeaseSnapshot
}

/** Defaults of the optional timings (frozen; see ./constants.ts for why each). */
export const LEASE_TIMING_DEFAULTS: Required<Pick<LeaseOptions, 'leaseMs' | 'renewMs' | 'graceMs' | 'staggerMs' | 'clockDriftMaxMs'>> = Object.freeze({ ...DEFAULTS })

/** Validates the options (ConfigError naming the field) and returns a fresh machine. `nowMs` is
 *  the time of this (re)start: a restored grant is honoured until nowMs + leaseMs. */
export function createLease (options: LeaseOptions, nowMs: number): Lease {
  return new LeaseMachine(options, nowMs)
}

export { EPOCH_MAX, HOME_SET_MAX, DURATION_MS_LIMIT } from './constants.ts'
