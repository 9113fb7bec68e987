/**
 * Limits and defaults of the verification machine. Why each number:
 *
 * - `REPLICAS_MAX` 16 replicas of one task at most, extra replicas after a failed quorum and
 *   spot-check replicas included: a task run on sixteen peers without two of them agreeing is
 *   not going to agree on the seventeenth; past it the task fails with ERR_QUORUM_NOT_REACHED.
 *   (Defined with the policy in src/model/verification.ts, which manifests are checked against.)
 * - `EXTRA_REPLICAS_MAX` 4 replicas beyond the policy's `replicas` (bounded by REPLICAS_MAX): with
 *   honest peers a majority, each extra replica agrees with the correct answer more often than
 *   not, so four more reach a quorum of 2 or 3 after one disagreement in nearly every case; a task
 *   that needs more is not deterministic (its replicas will never agree) and should fail fast.
 * - `ADAPTIVE_SPOT_CHECK_RATE` 0.1: a trusted peer runs tasks alone; one in ten of its results is
 *   re-run on another peer (at least — the policy's rate applies when higher). A trusted peer that
 *   turns to lying is caught after ten lies on average, and each lie costs it its standing and a
 *   ban, so lying pays less than it costs; BOINC's adaptive replication samples at a like rate.
 * - `CHECK_QUORUM_MIN` 2: a check (spot check or re-check) decides when two answers from distinct
 *   peers agree (or the policy's quorum, when larger): one answer against one is a tie, and a
 *   proof needs two witnesses that agree against the liar.
 * - `retainMax` 20,000 accepted tasks kept for re-checks (a late replica's answer, a peer proven
 *   to lie later): two runs' worth of calls (commandsMax 10,000); each is a few hundred bytes.
 * - `retainMs` 30 min: a lie is usually proven within seconds (the replicas of the same task) or
 *   within a spot check's round trip; half an hour covers gossip of a proof from elsewhere while
 *   the runs that used the result are still likely to be running.
 * - `LIARS_MAX` 4,096 proven liars remembered here (oldest forgotten first): the reputation
 *   machine keeps the bans; this set only keeps a liar's answers out of tallies in the meantime.
 */
export { REPLICAS_MAX } from '../../model/verification.ts'
export const EXTRA_REPLICAS_MAX = 4
export const ADAPTIVE_SPOT_CHECK_RATE = 0.1
export const CHECK_QUORUM_MIN = 2
export const LIARS_MAX = 4096

export const VERIFIER_DEFAULTS = {
  retainMax: 20_000,
  retainMs: 30 * 60_000
} as const satisfies Record<string, number>

/** `retainMax` may not exceed this: a million retained tasks is hundreds of MiB — a typo. */
export const RETAIN_COUNT_LIMIT = 1_000_000

/** Time options may not exceed this: shared by every protocol, so defined in src/model/limits.ts. */
export { DURATION_MS_LIMIT } from '../../model/limits.ts'

/** The error code of a task whose replicas did not agree within its replica limit. */
export const QUORUM_NOT_REACHED = 'ERR_QUORUM_NOT_REACHED'
