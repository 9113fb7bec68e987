/**
 * Default timings of the run lease. The aim is "a dead driver is replaced in under a second"
 * without two drivers ever overlapping; the ratios matter more than the numbers:
 *
 * - `leaseMs` 600: how long one grant lasts on the grantor's clock. Short, because takeover
 *   cannot start before the last grant expires, and takeover time is roughly leaseMs + graceMs.
 *   Long enough for two renewals to be lost in a row (see renewMs) before the driver must stop.
 * - `renewMs` 200: the driver asks again every 200 ms, a third of the lease. The driver's lease
 *   ends `leaseMs - clockDriftMaxMs` (500 ms) after it SENT a round, so a round may go unanswered
 *   and the next one (200 ms later) still renews with 300 ms to spare — two lost rounds are
 *   survived at LAN latencies. Must be < leaseMs / 2.
 * - `graceMs` 100: a home-set peer waits this long past the expiry of its own last grant before
 *   it asks for the lease. The other grantors saw the same renewals up to one network delay
 *   later; waiting a delay's worth more means their grants have expired too when our request
 *   arrives, so the first takeover round is not refused as 'held'.
 * - `staggerMs` 100: the k-th peer after the failed driver in rendezvous order waits k × 100 ms
 *   more. One round trip on a LAN is well under 100 ms, so the next peer in order has usually
 *   won (and its requests have reset everyone's watch) before the one after it tries: no duel.
 * - `clockDriftMaxMs` 100: how far clocks may move against each other during one lease (a
 *   driver's clock stepping back plus a grantor's stepping forward; rate drift counts too). The
 *   driver stops believing in its lease this much earlier than the grantors stop honouring it.
 *   NTP keeps LAN clocks within milliseconds; 100 ms covers a step by a careless admin or a VM
 *   pause, while still leaving 500 ms of lease per round.
 *
 * With these, a driver that crashes right after a renewal is replaced after at most
 * leaseMs + graceMs (700 ms) on the next peer's clock, plus one round trip: under a second.
 */
export const LEASE_DEFAULTS = {
  leaseMs: 600,
  renewMs: 200,
  graceMs: 100,
  staggerMs: 100,
  clockDriftMaxMs: 100
} as const satisfies {
  leaseMs: number
  renewMs: number
  graceMs: number
  staggerMs: number
  clockDriftMaxMs: number
}

/** Most peers in a run's home set. A home set is a replication group (default 3); 15 tolerates 7
 *  failures, beyond any placement we plan, and bounds every per-round table and output burst. */
export const HOME_SET_MAX = 15

/** Epochs are safe integers; one epoch per takeover, so this is never reached in practice, but a
 *  peer sending a larger one is broken or hostile and is refused rather than trusted. */
export const EPOCH_MAX = Number.MAX_SAFE_INTEGER

/** Time options may not exceed this: shared by every protocol, so defined in src/model/limits.ts. */
export { DURATION_MS_LIMIT } from '../../model/limits.ts'
