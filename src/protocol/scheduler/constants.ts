/**
 * Defaults and bounds of the scheduler. Why each number:
 *
 * - `pendingMax` 10,000 tasks held at once (submitted and not yet `done`: waiting, backing off or
 *   running). One run issues at most `commandsMax` (10,000) calls per execution, so one run never
 *   meets it alone; several runs on one peer share it, and past it `handleSubmit` answers
 *   'queue-full' so the run service holds back (backpressure) instead of the scheduler growing.
 *   A held task is a few hundred bytes here; the shell also keeps its arguments.
 * - `candidatesSampled` 2: "the power of two choices" (Mitzenmacher, 2001): taking the less loaded
 *   of two random peers cuts the maximum load from log n / log log n to log log n; a third choice
 *   gains only a constant factor, and asking everyone sends every driver to the same peer at once.
 * - `queueShare` 2 tasks past a peer's `slotsMax`: one waits to start the moment a slot frees (it
 *   hides the round trip between one result and the next dispatch), one more covers a result and
 *   a dispatch crossing on the wire. More would let a slow peer hoard work other peers could start
 *   now (Sparrow, SOSP 2013, keeps worker queues short for the same reason).
 * - `localityBonus` 2 free slots' worth when a peer holds all of a task's inputs (scaled by the
 *   share it holds): fetching inputs costs about as much as queueing behind a task or two, so a
 *   holder wins unless another peer is clearly idler.
 * - `warmBonus` 1 free slot's worth when the peer has the function loaded: it skips a code fetch
 *   and compile (tens of ms), less than the locality of data.
 * - `attemptsMax` 3 failed attempts: as for a single call (CALL_ATTEMPTS_MAX); a task that failed
 *   retryably on three peers is probably the problem. A lost peer is not a failed attempt.
 * - `lossesMax` 8 peers lost under one task (gone, restarted): a task that keeps taking its peer
 *   down with it (out of memory, a crash in the runtime) must not walk through the whole network;
 *   ordinary churn rarely hits one task more than once or twice.
 * - `retryBaseMs` 250 ms, doubling per failure up to `retryMaxMs` 10 s, with equal jitter
 *   (half fixed, half random: AWS Architecture Blog, "Exponential Backoff and Jitter", 2015): a
 *   burst of failures (a peer dying under many tasks) does not come back as a burst.
 * - `attemptTimeoutMs` 130 s: the task service's own call deadline (CALL_TIMEOUT_MS_DEFAULT, 120 s)
 *   fires first with a named error; this catches the silence that deadline cannot (a lost result,
 *   a call that never settles) and counts it as a retryable failure.
 * - `stragglerMinMs` 1 s and `stragglerFactor` 3: a copy running longer than
 *   max(1 s, 3 × the median runtime of recent tasks) is a straggler and gets a speculative copy on
 *   another peer — MapReduce's backup tasks (Dean & Ghemawat, OSDI 2004) with LATE's "much slower
 *   than typical" test (Zaharia et al., OSDI 2008). The floor keeps millisecond tasks from being
 *   duplicated over network jitter.
 * - `stragglerSamplesMin` 8 finished tasks before any speculation: a median of fewer says little.
 * - `runtimeSamplesMax` 128: the median is of the most recent 128 runtimes, so it follows a run
 *   whose tasks change size, and sorting it costs nothing.
 * - `peersMax` 1,024 peers considered, as membership's table: a longer candidate list is cut.
 * - `reputationBonus` 2 free slots' worth between a peer whose results were never borne out
 *   (reputation 0) and one always borne out (1): a peer with a record of agreement wins over an
 *   unknown one (0.5) unless the unknown one is clearly idler, so work flows to peers that earned
 *   it while new peers still get some and can build a record.
 */
export const SCHEDULER_DEFAULTS = {
  pendingMax: 10_000,
  candidatesSampled: 2,
  queueShare: 2,
  localityBonus: 2,
  warmBonus: 1,
  attemptsMax: 3,
  lossesMax: 8,
  retryBaseMs: 250,
  retryMaxMs: 10_000,
  attemptTimeoutMs: 130_000,
  stragglerMinMs: 1000,
  stragglerFactor: 3,
  stragglerSamplesMin: 8,
  runtimeSamplesMax: 128,
  peersMax: 1024,
  reputationBonus: 2
} as const satisfies Record<string, number>

/** Count options may not exceed this: a million held tasks is hundreds of MiB of state — a typo,
 *  not a configuration. */
export const SCHEDULER_COUNT_LIMIT = 1_000_000

/** `candidatesSampled` may not exceed this: sampling most of the network is asking everyone,
 *  which the power of two choices exists to avoid. */
export const CANDIDATES_SAMPLED_LIMIT = 16

/** `attemptsMax` and `lossesMax` may not exceed this: a task tried on a hundred peers is a loop. */
export const ATTEMPTS_LIMIT = 100

/** `stragglerFactor`, `localityBonus` and `warmBonus` may not exceed this. */
export const FACTOR_LIMIT = 1000

/** A task's inputs considered for locality: the first 16 (a fan-in of more is spread over many
 *  peers anyway, and this bounds the cost of scoring one candidate). */
export const LOCALITY_INPUTS_MAX = 16

/** Time options may not exceed this: shared by every protocol, so defined in src/model/limits.ts. */
export { DURATION_MS_LIMIT } from '../../model/limits.ts'

/**
 * While at most this many peers have room, placement scores every one of them instead of a
 * sample: 16 scores per dispatch cost nothing, and sampling two of a handful of peers misplaces
 * often (two of three simultaneous tasks on one of three peers, a third of the time). Past it,
 * the power of two choices keeps a dispatch O(1) however large the network.
 */
export const SCAN_ALL_PEERS_MAX = 16

/**
 * A peer that could not be reached (a dial failed) gets no copies for this long, even while the
 * live view still lists it: membership marks a dead peer suspect after 5 s and gone after 10 s
 * (src/protocol/membership/constants.ts), and until then every task placed on it would fail at
 * once — a dead peer has the most room of all, and would swallow every waiting task. Ten
 * seconds covers the default gone time; a peer that was only briefly unreachable comes back after it.
 */
export const UNREACHABLE_COOLDOWN_MS = 10_000

/**
 * A task whose `avoid` set and group cover every live peer ends with reason 'unplaceable' after
 * this long: long enough for a peer that is joining to appear in the view (announcements every
 * 2 s) or a briefly suspect one to come back, short enough that a run asking for three distinct
 * peers on a two-peer network hears why within seconds rather than at its deadline.
 */
export const UNPLACEABLE_AFTER_MS = 10_000

/**
 * Score (in free slots) taken from a peer whose address range another replica of the task's group
 * already uses (ran, runs or answered there): distinct peers are a must, distinct ranges only a
 * preference — one operator often holds a whole range, and two replicas in it are less
 * independent — but a preference strong enough that a peer of a new range with a little less room
 * wins, weaker than a slot or two of real idleness difference so a small or single-site network
 * still places every replica.
 */
export const SAME_RANGE_PENALTY = 2

/** A task's `avoid` list holds at most this many peers: the replicas of one verified task, extra
 *  replicas included (REPLICAS_MAX in src/model/verification.ts is 16), with room to spare. */
export const AVOID_PEERS_MAX = 64
