/**
 * Default timings and sizes of membership. The ratios matter more than the numbers:
 * - a peer announces every 2 s, and is suspected after 5 s of silence: two announcements may be
 *   lost (or arrive late by up to a second) before anyone suspects it — SWIM-style suspicion
 *   instead of declaring a peer dead on the first miss (Das, Gupta, Motivala: SWIM, DSN 2002);
 * - gone after 10 s: long enough to ride out a GC pause or a brief network blip, short enough that
 *   the scheduler stops placing tasks on a dead peer within one typical task's duration;
 * - a gone entry is kept 60 s so that a peer returning from a short outage is reported as `alive`
 *   (same peer back) rather than `joined`, and so old gossip still in flight cannot resurrect it
 *   as new;
 * - 1,024 entries: the networks Rhizome targets are tens to hundreds of peers; beyond that a peer
 *   should learn a sample, not everyone (a later issue);
 * - 500 ms between announcements of one peer: a quarter of the cadence, so an honest peer is never
 *   throttled even with 50 ms of jitter, while a flooding peer costs us at most 2 updates a second.
 */
export const MEMBERSHIP_DEFAULTS = {
  announceIntervalMs: 2000,
  suspectAfterMs: 5000,
  goneAfterMs: 10_000,
  goneRetainMs: 60_000,
  peersMax: 1024,
  announceMinIntervalMs: 500
} as const satisfies {
  announceIntervalMs: number
  suspectAfterMs: number
  goneAfterMs: number
  goneRetainMs: number
  peersMax: number
  announceMinIntervalMs: number
}

/** `peersMax` may not exceed this: an entry costs a few hundred bytes, so 2^20 entries is already
 *  hundreds of MiB — a typo, not a configuration. */
export const PEERS_MAX_LIMIT = 1_048_576

/** Time options may not exceed this: shared by every protocol, so defined in src/model/limits.ts. */
export { DURATION_MS_LIMIT } from '../../model/limits.ts'
