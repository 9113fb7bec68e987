/**
 * A peer's room for tasks: what its task slots report, what membership announces (bounded by
 * CAPACITY_VALUE_MAX on the wire) and what the API shows. One type for all three, so the numbers
 * a worker counts are the numbers its peers and its users read.
 */
export interface Capacity {
  /** Slots not running a task right now. */
  slotsFree: number
  /** Tasks the peer runs at once. */
  slotsMax: number
  /** Tasks waiting for a slot. */
  queueLength: number
}
