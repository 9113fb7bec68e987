/**
 * The verification machine: which replicas of a task run where, and when a result from
 * untrusted peers may be used.
 *
 * One machine per driving peer, for all its tasks. A *replica* is one execution of a task on one
 * peer; the shell submits each `place` to the scheduler as its own scheduler task (id
 * `${taskId}#${replica}`, `group: taskId`, `avoid`), so the scheduler does the retries and
 * timeouts of each replica, and reports here where it ran (`handlePlaced`) and how it ended
 * (`handleResult`, `handleFailed`). A task's result is `accepted` once its policy is met —
 * `quorum` agreeing attestations from distinct peers, or a single answer for `replicas 1` or a
 * trusted peer (adaptive replication) — and a sample of single-peer results is spot-checked on
 * other peers; a later disagreement is a `proof` against the liar and can replace the result
 * (`verdict` disproven). The state machine and its theory of operation are in ./verifier.ts.
 *
 * Sans-I/O (STYLE.md §4): the shell feeds inputs with the current time, drains `poll()` after
 * every call, and calls `handleTimeout` at `nextTimeoutMs()`.
 */
import type { Random } from '../random.ts'
import { VERIFIER_DEFAULTS } from './constants.ts'
import { VerifierMachine } from './verifier.ts'
import type { VerificationPolicy } from '../../model/verification.ts'

/** How a task's result is verified (the function's manifest, else the peer's mode default).
 *  replicas 1 ⇒ quorum 1; replicas ≥ 2 ⇒ 2 ≤ quorum ≤ replicas; 0 ≤ spotCheckRate ≤ 1.
 *  (src/model/verification.ts, where manifests get it checked.) */
export type { VerificationPolicy }

/** A replica's answer: who ran it, the result CID, and the peer's signature over both. */
export interface Attested { peerId: string, resultCid: string, signature: Uint8Array }

/** How the reputation machine rates a peer. */
export type PeerStanding = 'trusted' | 'unknown' | 'doubtful' | 'banned'

export interface ReplicaFailure { retryable: boolean, code: string, message: string }

/** A peer's attestation against at least two agreeing attestations of other peers for one task. */
export interface LieProof { taskId: string, liar: Attested, witnesses: Attested[] }

export type VerifierOutput =
  /** Submit replica `replica` of the task to the scheduler, never on a peer in `avoid` (every peer
   *  that ran or runs a replica of it). `check`: a spot check or re-check — for statistics only;
   *  it must be sent exactly like any other task request. */
  | { type: 'place', taskId: string, replica: number, avoid: string[], check: boolean }
  /** Cancel that replica (task cancelled, forgotten, or the replica is not wanted). */
  | { type: 'drop', taskId: string, replica: number }
  /** The result may be used now: exactly once per task, or a `failed` instead. `replica`: whose
   *  answer carries the bytes; `attestations`: the agreeing ones; `solo`: one peer only;
   *  `checking`: a spot check is under way and a `verdict` follows. */
  | { type: 'accepted', taskId: string, resultCid: string, replica: number, attestations: Attested[], solo: boolean, checking: boolean }
  /** The task's end without a result: exactly once per task, instead of `accepted`. */
  | { type: 'failed', taskId: string, error: ReplicaFailure, attestations: Attested[] }
  /** An accepted result is being re-checked (a peer behind it was proven to lie, or a late
   *  replica disagreed with a single-peer result): a `verdict` follows. */
  | { type: 'reopened', taskId: string }
  /** The end of a check. confirmed: the accepted result stands. disproven: `resultCid` is the
   *  correct one (`replica` carries it). undecided: no answer reached the check quorum within
   *  REPLICAS_MAX — nothing better is known, so the accepted result stands (the shell closes the
   *  check as it does for confirmed). `attestations`: the agreeing ones (of the accepted result,
   *  for undecided). */
  | { type: 'verdict', taskId: string, verdict: 'confirmed' | 'disproven' | 'undecided', resultCid: string, replica: number, attestations: Attested[] }
  | { type: 'proof', proof: LieProof }
  /** Feed to the reputation machine: each replica's answer is observed once. */
  | { type: 'observed', peerId: string, kind: 'agreed' | 'disagreed' | 'failed' }

export interface VerifierOptions {
  random: Random
  /** Read-only query of the reputation machine. */
  standing: (peerId: string) => PeerStanding
  /** Default 20,000: accepted tasks kept for re-checks. */
  retainMax?: number
  /** Default 30 min: how long (ms) an accepted task is kept for re-checks. */
  retainMs?: number
}

export interface VerifierCounts {
  /** Tasks without an accepted-or-failed yet. */
  open: number
  /** Accepted tasks kept for re-checks, no check open: at most retainMax. */
  retained: number
  /** Accepted tasks with a check open (a verdict owed). */
  checking: number
  /** Replicas queued or running. */
  replicasLive: number
  /** Proven liars remembered: at most LIARS_MAX. */
  liars: number
}

export interface Verifier {
  /** A task to verify: places replica 1. 'duplicate' if the id is held (open or retained). */
  handleSubmit (taskId: string, policy: VerificationPolicy, nowMs: number): 'accepted' | 'duplicate'
  /** The scheduler dispatched this replica to `peerId` (again, after a retry elsewhere). */
  handlePlaced (taskId: string, replica: number, peerId: string, nowMs: number): void
  /** A replica's attested answer. 'stale': no such replica is running there (any more). */
  handleResult (taskId: string, replica: number, attested: Attested, nowMs: number): 'accepted' | 'stale'
  /** A replica ended without an answer (the scheduler gave up on it). */
  handleFailed (taskId: string, replica: number, failure: ReplicaFailure, nowMs: number): 'accepted' | 'stale'
  /** A peer was proven to lie (here or by gossip): its answers no longer count, and the accepted
   *  results it stood behind are re-checked. */
  handleLiar (peerId: string, nowMs: number): void
  /** Every caller gave up: every replica is dropped and the task forgotten (no further output). */
  handleCancel (taskId: string, nowMs: number): void
  /** Forget accepted tasks past retainMs. */
  handleTimeout (nowMs: number): void
  nextTimeoutMs (): number | undefined
  poll (): VerifierOutput | undefined
  counts (): VerifierCounts
  /** Every invariant the hard way (O(tasks)); throws on a broken one. */
  checkInvariants (): void
}

export const VERIFIER_OPTIONS_DEFAULTS: Required<Omit<VerifierOptions, 'random' | 'standing'>> = Object.freeze({ ...VERIFIER_DEFAULTS })

/** Validates the options (ConfigError naming the field) and returns an empty verifier. */
export function createVerifier (options: VerifierOptions): Verifier {
  return new VerifierMachine(options)
}

export {
  ADAPTIVE_SPOT_CHECK_RATE, CHECK_QUORUM_MIN, EXTRA_REPLICAS_MAX, LIARS_MAX, QUORUM_NOT_REACHED, REPLICAS_MAX, RETAIN_COUNT_LIMIT
} from './constants.ts'
