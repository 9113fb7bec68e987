/**
 * Constants of durable runs' home sets. Why each:
 *
 * - `HOME_SET_SIZE_DEFAULT` 3: the smallest home set that survives the loss of one peer — the
 *   driver included — with a majority (2) left to renew a lease and to hold every durable entry.
 *   Each extra pair of peers tolerates one more loss at the cost of one more copy of the memo and
 *   one more message per durable step.
 * - `RESULT_ENTRY_ID`: the run's outcome is itself a memo entry (DESIGN.md §3 step 8), so it is
 *   durable like any other, any home-set peer can answer for it, and a later driver that gathers
 *   the memo learns the run is over instead of replaying it. The id cannot collide with a task
 *   or child run id (CIDs) nor with the ids of timers and signals (`sleep:`, `wake:`, `signal:`).
 */
export const HOME_SET_SIZE_DEFAULT = 3

export const RESULT_ENTRY_ID = 'run:result'
