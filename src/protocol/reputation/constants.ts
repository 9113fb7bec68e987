/**
 * The reputation machine's formula, thresholds and limits. Why each:
 *
 * SCORE. A peer's score is the mean of a Beta posterior over "its next answer is right":
 *   α = 1 + agreements,  β = 1 + disagreements + FAILURE_WEIGHT × failures,  score = α / (α + β).
 * The prior Beta(1, 1) (uniform) puts a peer never seen at 0.5 and lets evidence move it in
 * proportion to its amount: 10 agreements give 11/12 ≈ 0.92, one disagreement among them 11/13 ≈
 * 0.85 (the same shape as the Beta reputation system of Jøsang & Ismail, 2002).
 * - `FAILURE_WEIGHT` 0.25: a failure (timeout, crash, unreachable) is often not the peer's doing
 *   and never a wrong answer, so it counts a quarter of a disagreement: a flaky peer loses trust
 *   slowly, a peer that answers wrongly loses it fast.
 *
 * STANDING.
 * - trusted: at least `TRUSTED_AGREEMENTS_MIN` 10 agreements, score ≥ `TRUSTED_SCORE_MIN` 0.9 and
 *   no lie ever. Ten agreeing answers with at most one disagreement is a long enough record that
 *   running its tasks alone (spot-checked) is a fair bet; a single proven lie ends it for good.
 * - doubtful: any past lie, or a score below `DOUBTFUL_SCORE_BELOW` 0.5 — more disagreements than
 *   agreements. A peer never seen scores exactly 0.5 and is `unknown`, not doubtful.
 * - banned: while a ban runs.
 * - unknown: everything else (little record).
 *
 * BANS. A proven lie bans the peer for `BAN_FIRST_MS` 1 h, doubling with each lie up to
 * `BAN_MAX_MS` 7 days: one lie can be a bug or a bad bit flip and an hour costs little; a peer
 * that keeps lying is out for a week per lie, long enough that a new identity is cheaper — which
 * is why a new identity starts `unknown` (one replica of N), never trusted.
 *
 * LIMITS.
 * - `recordsMax` 10,000 records (a few hundred bytes each, in memory and in SQLite): ten times
 *   membership's table of 1,024 peers, so peers that come and go keep their record a long while;
 *   past it the least recently updated record that is not banned is forgotten.
 * - `PROOFS_REMEMBERED_MAX` 10,000 (task, liar) pairs: a proof is gossiped to every peer and may
 *   come back many times; each counts once while remembered (a replay much later is a new ban of
 *   a peer that has already served its time, so the window only needs to outlast gossip).
 */
export const FAILURE_WEIGHT = 0.25
export const TRUSTED_AGREEMENTS_MIN = 10
export const TRUSTED_SCORE_MIN = 0.9
export const DOUBTFUL_SCORE_BELOW = 0.5
export const BAN_FIRST_MS = 60 * 60_000
export const BAN_MAX_MS = 7 * 24 * 60 * 60_000
export const PROOFS_REMEMBERED_MAX = 10_000

export const REPUTATION_DEFAULTS = {
  recordsMax: 10_000
} as const satisfies Record<string, number>

/** `recordsMax` may not exceed this: a million records is hundreds of MiB — a typo. */
export const RECORDS_COUNT_LIMIT = 1_000_000

/** The ban for a peer's `lies`-th proven lie (lies ≥ 1). */
export function banMs (lies: number): number {
  return Math.min(BAN_MAX_MS, BAN_FIRST_MS * 2 ** Math.min(30, Math.max(0, lies - 1)))
}

/** The score of a record (see SCORE above). */
export function scoreOf (r: { agreements: number, disagreements: number, failures: number }): number {
  const alpha = 1 + r.agreements
  const beta = 1 + r.disagreements + FAILURE_WEIGHT * r.failures
  return alpha / (alpha + beta)
}
