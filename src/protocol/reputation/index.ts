/**
 * The reputation machine: what this peer has seen of every other peer's answers, and who may get
 * work. It turns the verification machine's observations (agreed, disagreed, failed) and proofs
 * of lies (found here or gossiped) into a score, a standing (trusted, unknown, doubtful, banned)
 * and bans. The formula, thresholds and ban times are in ./constants.ts; the machine in
 * ./reputation.ts.
 *
 * Sans-I/O (STYLE.md §4): the shell loads the stored records at creation, feeds inputs, drains
 * `poll()` after every call — writes each `persist`d record (SQLite), deletes each `evicted` one,
 * tells the scheduler and gossip about `banned`/`unbanned` — and calls `handleTimeout` at
 * `nextTimeoutMs()`. `standing` and `score` are read-only queries (the verifier's `standing`).
 */
import type { PeerStanding } from '../verify/index.ts'
import { REPUTATION_DEFAULTS } from './constants.ts'
import { ReputationMachine } from './reputation.ts'

export type { PeerStanding }

export interface ReputationRecord {
  peerId: string
  agreements: number
  disagreements: number
  failures: number
  /** Proven lies, ever. */
  lies: number
  /** The running ban's end (ms); 0 when not banned. */
  bannedUntilMs: number
  updatedMs: number
}

export type Observation = 'agreed' | 'disagreed' | 'failed'

/** A proof as the reputation machine needs it: the shell has checked every signature. */
export interface ProofOfLie { taskId: string, liar: string, witnesses: string[] }

export type ReputationOutput =
  | { type: 'persist', record: ReputationRecord }
  | { type: 'banned', peerId: string, untilMs: number }
  | { type: 'unbanned', peerId: string }
  /** The record was forgotten to stay within recordsMax: delete it from storage. */
  | { type: 'evicted', peerId: string }

export interface ReputationOptions {
  /** Stored records (at most recordsMax are kept: the most recently updated). */
  records?: readonly ReputationRecord[]
  /** Default 10,000: records held. */
  recordsMax?: number
}

export interface ReputationCounts { records: number, banned: number, proofsRemembered: number }

export interface Reputation {
  handleObserved (peerId: string, kind: Observation, nowMs: number): void
  /** 'duplicate': this (taskId, liar) already counted. 'invalid': fewer than two distinct
   *  witnesses other than the liar (a shell bug or a forged gossip message; nothing changes). */
  handleProof (proof: ProofOfLie, nowMs: number): 'accepted' | 'duplicate' | 'invalid'
  /** At `nowMs` (default: the latest time seen). */
  standing (peerId: string, nowMs?: number): PeerStanding
  /** The documented Beta-posterior mean (0.5 for a peer never seen). */
  score (peerId: string): number
  /** Lift bans that ran out. */
  handleTimeout (nowMs: number): void
  nextTimeoutMs (): number | undefined
  poll (): ReputationOutput | undefined
  /** Copies of every record (O(records): for status and tests). */
  records (): ReputationRecord[]
  counts (): ReputationCounts
  checkInvariants (): void
}

export const REPUTATION_OPTIONS_DEFAULTS: Required<Omit<ReputationOptions, 'records'>> = Object.freeze({ ...REPUTATION_DEFAULTS })

/** Validates the options (ConfigError naming the field) and returns the machine. */
export function createReputation (options: ReputationOptions = {}): Reputation {
  return new ReputationMachine(options)
}

export {
  BAN_FIRST_MS, BAN_MAX_MS, DOUBTFUL_SCORE_BELOW, FAILURE_WEIGHT, PROOFS_REMEMBERED_MAX, RECORDS_COUNT_LIMIT, TRUSTED_AGREEMENTS_MIN,
  TRUSTED_SCORE_MIN, banMs, scoreOf
} from './constants.ts'
