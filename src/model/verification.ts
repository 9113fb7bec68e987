/**
 * Verification policies: how many peers must run a task, and agree on its result, before the
 * result is used. A function's manifest may carry one (`verification`); a function without one
 * gets the default of the peer that drives the call, by that peer's mode.
 *
 * The scheme is BOINC's redundant computing (https://github.com/BOINC/boinc/wiki/JobReplication):
 * each task runs on `replicas` distinct peers, and its result is accepted when `quorum` of them
 * return the same result (here: the same result CID, which the peers sign). A result accepted
 * from one peer alone may be re-run on another peer with probability `spotCheckRate`.
 *
 * Pure: no I/O, no clock. Shared by the manifest codec, the CLI and the verification machine.
 */

export interface VerificationPolicy {
  /** Distinct peers that run each task (1: no replication). */
  replicas: number
  /** Replicas whose result CIDs must agree for the result to be accepted. */
  quorum: number
  /** Probability (0..1) that a result accepted from a single peer is re-run on another peer. */
  spotCheckRate: number
}

/**
 * Most replicas of one task, extra replicas after a failed quorum included. BOINC bounds a
 * workunit's instances the same way (`max_total_results`), so a task whose peers never agree —
 * a non-deterministic function marked deterministic, or a network of liars — ends in a named
 * error instead of running forever. 16 peers running one task is already a broadcast: past that,
 * a disagreement says more about the function than about the peers. (Not the same limit as
 * src/model/limits.ts REPLICAS_MAX, the copies of a deployed function; the value is the same.)
 */
export const REPLICAS_MAX = 16

/** The fields of a policy, sorted (the order dag-cbor encodes them in). */
export const POLICY_FIELDS: readonly string[] = ['quorum', 'replicas', 'spotCheckRate']

/**
 * Why `p` is not a verification policy, or undefined if it is one: a plain map of exactly
 * `replicas`, `quorum` and `spotCheckRate` (own keys) with replicas 1..REPLICAS_MAX;
 * replicas 1 ⇒ quorum 1; replicas ≥ 2 ⇒ 2 ≤ quorum ≤ replicas; 0 ≤ spotCheckRate ≤ 1 (finite).
 * A quorum of 1 with more replicas would accept the first answer and make the others pointless.
 */
export function policyProblem (p: unknown): string | undefined {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) return 'must be a map of replicas, quorum and spotCheckRate'
  const proto = Object.getPrototypeOf(p)
  if (proto !== Object.prototype && proto !== null) return 'must be a plain map'
  for (const key of Object.keys(p)) {
    if (!POLICY_FIELDS.includes(key)) return `has an unknown field ${JSON.stringify(key.slice(0, 64))}; the fields are ${POLICY_FIELDS.join(', ')}`
  }
  for (const key of POLICY_FIELDS) {
    if (!Object.hasOwn(p, key)) return `is missing ${key}`
  }
  const { replicas, quorum, spotCheckRate } = p as Record<string, unknown>
  if (typeof replicas !== 'number' || !Number.isSafeInteger(replicas) || replicas < 1 || replicas > REPLICAS_MAX) {
    return `replicas must be an integer from 1 to ${REPLICAS_MAX}, got ${String(replicas)}`
  }
  if (typeof quorum !== 'number' || !Number.isSafeInteger(quorum)) return `quorum must be an integer, got ${String(quorum)}`
  if (replicas === 1 && quorum !== 1) return `quorum must be 1 when replicas is 1, got ${quorum}`
  if (replicas > 1 && (quorum < 2 || quorum > replicas)) return `quorum must be from 2 to replicas (${replicas}), got ${quorum}`
  if (typeof spotCheckRate !== 'number' || !Number.isFinite(spotCheckRate) || spotCheckRate < 0 || spotCheckRate > 1) {
    return `spotCheckRate must be a number from 0 to 1, got ${String(spotCheckRate)}`
  }
  return undefined
}

/**
 * How far a peer trusts the peers it sends work to. `trusted`: every peer is the operator's own
 * (a private devnet, one organisation's machines, a permissioned network), so a result is taken
 * from one peer. `open`: anyone may join, so results are replicated and compared.
 */
export type VerificationMode = 'trusted' | 'open'
export const VERIFICATION_MODES: readonly VerificationMode[] = ['trusted', 'open']

/**
 * The policy of a function whose manifest has none, by the driving peer's mode.
 * - trusted: one peer, no checks. Replicating work among one's own machines only costs capacity;
 *   a crashed or failing peer is already handled by the scheduler's retries.
 * - open: BOINC's common setting, a quorum of 2 out of 3 ("best two out of three", JobReplication
 *   above): one liar is outvoted, and two replicas that disagree are decided by the third without
 *   another round. 5% spot checks of results accepted from one (trusted) peer alone: a peer that
 *   lies on a share f of its tasks is caught after about 1/(0.05·f) of them, and one proven lie
 *   bans it and re-checks what it gave.
 */
export const VERIFICATION_DEFAULTS: Readonly<Record<VerificationMode, Readonly<VerificationPolicy>>> = Object.freeze({
  trusted: Object.freeze({ replicas: 1, quorum: 1, spotCheckRate: 0 }),
  open: Object.freeze({ replicas: 3, quorum: 2, spotCheckRate: 0.05 })
})

/** The manifest's policy if it has one, else the driving peer's mode default. */
export function resolvePolicy (manifest: VerificationPolicy | undefined, mode: VerificationMode): VerificationPolicy {
  const policy = manifest ?? VERIFICATION_DEFAULTS[mode]
  return { replicas: policy.replicas, quorum: policy.quorum, spotCheckRate: policy.spotCheckRate }
}

/** The quorum of `replicas` when only the replicas are given: a strict majority (1 for 1). */
export function majorityQuorum (replicas: number): number {
  return Math.floor(replicas / 2) + 1
}
