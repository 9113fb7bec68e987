/**
 * The scheduler: which peer runs each task of this peer's workflow runs, and what happens when
 * that goes wrong.
 *
 * Tasks come in from the run service (`handleSubmit`), the live view of peers from membership
 * (`handlePeers`, `handlePeerGone`), and the outcome of each dispatched copy from the task
 * protocol (`handleOutcome`). The scheduler places each task on a sampled peer with room, keeps
 * every peer within what it advertises, retries retryable failures elsewhere after a backoff,
 * re-places the work of peers that vanish, duplicates stragglers, and says `done` exactly once
 * per task. The state machine and its theory of operation are in ./scheduler.ts; the design is
 * "Scheduler" in docs/ARCHITECTURE.md. It absorbs what src/protocol/placement.ts does for a single
 * call (TaskPlacement), for many tasks at once.
 *
 * Sans-I/O (STYLE.md §4): the shell (src/net/scheduler-service.ts) feeds inputs (`handle*`, with
 * the current time), drains `poll()` after every call — sends each `dispatch` with the task
 * protocol, aborts the copy named by each `cancel`, settles the task on `done` — and calls
 * `handleTimeout` at `nextTimeoutMs()`.
 */
import type { Random } from '../random.ts'
import { SCHEDULER_DEFAULTS as DEFAULTS } from './constants.ts'
import { SchedulerMachine } from './scheduler.ts'

/** A task to place. `inputs` are the Ref arguments (result CIDs) and the peer known to hold each. */
export interface SchedulerTask {
  taskId: string
  /** The function's id (its manifest CID): matched against a peer's `warm` list. */
  fn: string
  inputs: Array<{ cid: string, peer: string }>
  /** Peers never to place it on (e.g. those that already ran another replica of the same work). */
  avoid?: string[]
  /** Tasks of one group never run on one peer: while a task of the group is held, a peer that runs
   *  a copy of one of them, or gave one a result, takes no copy of another (replicas of a verified
   *  task: src/protocol/verify). */
  group?: string
}

/** One peer of the live view, as membership last heard it (and what else the shell knows of it). */
export interface PeerCandidate {
  peerId: string
  slotsFree: number
  slotsMax: number
  queueLength: number
  /** CIDs of inputs the peer holds (beyond those whose `peer` names it). */
  holds?: string[]
  /** Function ids the peer has loaded. */
  warm?: string[]
  /** 0..1: how far this peer's results have been borne out (src/protocol/reputation `score`);
   *  absent: 0.5, the prior of a peer with no record. */
  reputation?: number
  /** The address range of its address (src/protocol/placement.ts `addressRange`): replicas of
   *  one group prefer peers of ranges the group does not use yet. */
  range?: string
}

/** How one dispatched copy ended, as the task protocol reported it. */
/** How one copy ended. `unreachable`: the peer could not be reached at all (a dial failed) — its
 *  fault, not the task's: the peer is set aside for UNREACHABLE_COOLDOWN_MS and its copies are
 *  placed again, not counted as failed attempts. */
export type CopyOutcome = { ok: true } | { ok: false, retryable: boolean, unreachable?: boolean }

/** Why a task ended without a result. */
export type DoneReason =
  /** A non-retryable failure (the function threw, bad input): running it again ends the same way. */
  | 'failed'
  /** `attemptsMax` retryable failures. */
  | 'attempts'
  /** `lossesMax` peers vanished under it. */
  | 'lost'
  /** Every live peer is in its `avoid` set or its group's, for UNPLACEABLE_AFTER_MS: the network
   *  has too few distinct peers for it. */
  | 'unplaceable'
  | 'cancelled'

export type SchedulerOutput =
  /** Run the task on `peerId`. `attempt` numbers the task's copies from 1 (retries, re-placements
   *  after a lost peer and speculative copies alike); `speculative`: another copy is running. */
  | { type: 'dispatch', taskId: string, peerId: string, attempt: number, speculative: boolean }
  /** Abort the copy on `peerId`: another copy won, the task was cancelled, it timed out or its
   *  peer is gone. Its outcome, if one still comes, is 'stale'. */
  | { type: 'cancel', taskId: string, peerId: string, attempt: number }
  /** The task's end: exactly one per accepted submission. `peerId`: whose result (ok) or whose
   *  failure ended it. `attempts`: copies dispatched. */
  | { type: 'done', taskId: string, ok: true, peerId: string, attempts: number }
  | { type: 'done', taskId: string, ok: false, reason: DoneReason, peerId?: string, attempts: number }

export type SubmitVerdict = 'accepted' | 'queue-full'
/** 'stale': no copy of that task is running on that peer (any more) — late, duplicated, or for a
 *  copy that was cancelled; ignored. */
export type OutcomeVerdict = 'accepted' | 'stale'
export type CancelVerdict = 'cancelled' | 'unknown'

export interface SchedulerOptions {
  /** Samples peers and jitters backoff (src/protocol/random.ts): seeded, so the simulator replays. */
  random: Random
  /** Default 10,000: tasks held (submitted, not done); the next submission is 'queue-full'. */
  pendingMax?: number
  /** Default 2: random peers with room sampled per placement (plus the holders of its inputs). */
  candidatesSampled?: number
  /** Default 2: tasks a peer may hold past its slotsMax. */
  queueShare?: number
  /** Default 2: score for holding all of a task's inputs, in free slots. */
  localityBonus?: number
  /** Default 1: score for having the function loaded, in free slots. */
  warmBonus?: number
  /** Default 3: retryable failures before a task ends with reason 'attempts'. */
  attemptsMax?: number
  /** Default 8: lost peers before a task ends with reason 'lost'. */
  lossesMax?: number
  /** Default 250: the first retry's backoff (ms), doubling per failure. */
  retryBaseMs?: number
  /** Default 10,000: the longest backoff (ms). */
  retryMaxMs?: number
  /** Default 130,000: a copy silent this long (ms) failed, retryably. */
  attemptTimeoutMs?: number
  /** Default 1000: a copy is never a straggler before this (ms). */
  stragglerMinMs?: number
  /** Default 3: a copy is a straggler past this many times the median runtime. */
  stragglerFactor?: number
  /** Default 8: finished tasks needed before the median is trusted. */
  stragglerSamplesMin?: number
  /** Default 128: recent runtimes the median is taken over. */
  runtimeSamplesMax?: number
  /** Default 1,024: candidates considered from one view (the rest are ignored). */
  peersMax?: number
  /** Default 2: score for a reputation of 1 over one of 0, in free slots. */
  reputationBonus?: number
}

/** A peer as the scheduler sees it (copies; for tests, the simulator and status pages). */
export interface SchedulerPeer {
  peerId: string
  /** In the latest view (placeable). A peer out of the view is kept while copies run on it. */
  live: boolean
  /** Copies of this scheduler's tasks running there. */
  inFlight: number
  /** The most it may hold: slotsMax + queueShare (0 when slotsMax is 0). */
  limit: number
}

export interface SchedulerCounts {
  /** Tasks held (submitted, not done): at most pendingMax. */
  pending: number
  /** Waiting for a peer with room. */
  waiting: number
  /** Waiting for a peer outside its `avoid` set and group (every peer with room is in them). */
  parked: number
  backoff: number
  /** Copies running (speculative included). */
  running: number
  speculative: number
  /** Peers with room for one more copy. */
  peersWithRoom: number
  /** Runtimes the median is taken over. */
  runtimeSamples: number
}

export interface Scheduler {
  /** A task to place. 'queue-full' when pendingMax are held (the shell retries after a `done`).
   *  A task id already held is a bug in the shell (it joins duplicates) and throws. */
  handleSubmit (task: SchedulerTask, nowMs: number): SubmitVerdict
  /** The live view: replaces the previous one. A peer left out gets no new copies; those it runs
   *  go on (a suspect peer may come back) until it is gone or they time out. */
  handlePeers (candidates: readonly PeerCandidate[], nowMs: number): void
  /** The peer is gone, or restarted: every copy on it is cancelled and its task placed again
   *  elsewhere (not counted as a failed attempt; `lossesMax` bounds it). Unknown peers: ignored. */
  handlePeerGone (peerId: string, nowMs: number): void
  /** A copy's outcome. `attempt` (from its dispatch), when given, must match the running copy. */
  handleOutcome (taskId: string, peerId: string, outcome: CopyOutcome, nowMs: number, attempt?: number): OutcomeVerdict
  /** Cancel a task: `cancel` for every copy running, then `done` with reason 'cancelled'. */
  handleCancel (taskId: string, nowMs: number): CancelVerdict
  /** Fire due deadlines: attempt timeouts, backoffs, stragglers. */
  handleTimeout (nowMs: number): void
  /** Drain outputs in order. */
  poll (): SchedulerOutput | undefined
  /** Absolute ms time at which handleTimeout should next be called; undefined when nothing is timed. */
  nextTimeoutMs (): number | undefined
  counts (): SchedulerCounts
  /** Every peer held, sorted by id. O(peers): for checks and status, not for every input. */
  peers (): SchedulerPeer[]
  /** Check every invariant the hard way (O(tasks + peers)); throws on a broken one. For tests
   *  and the simulator: every input already checks what is cheap to check. */
  checkInvariants (): void
}

/** Defaults of the optional options (frozen; see ./constants.ts for why each). */
export const SCHEDULER_OPTIONS_DEFAULTS: Required<Omit<SchedulerOptions, 'random'>> = Object.freeze({ ...DEFAULTS })

/** Validates the options (ConfigError naming the field) and returns an empty scheduler. */
export function createScheduler (options: SchedulerOptions): Scheduler {
  return new SchedulerMachine(options)
}

export {
  ATTEMPTS_LIMIT, CANDIDATES_SAMPLED_LIMIT, DURATION_MS_LIMIT, FACTOR_LIMIT, LOCALITY_INPUTS_MAX, SCHEDULER_COUNT_LIMIT
} from './constants.ts'
export { PeerLossTracker } from './peer-loss.ts'
