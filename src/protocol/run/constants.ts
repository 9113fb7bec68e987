/**
 * Defaults and bounds of the run driver. Why each number:
 *
 * - `commandsMax` 10,000 commands (calls and child starts) per execution of the workflow code.
 *   Temporal refuses a workflow history past 51,200 events and warns from 10,240; one remote call
 *   is three or four of its events (scheduled, started, completed), so ~10k calls is where its
 *   limit bites too. The seq table (seq → id) is the driver state this bounds: a workflow that
 *   needs more is a loop that should be split into child runs.
 * - `memoEntriesMax` 10,000 distinct task and child-run ids per run: each is a memo entry that is
 *   kept for the whole run and persisted (`run_memo`), and every replay reads it back. Equal to
 *   `commandsMax` because in a workflow without repeats every command is a distinct id.
 * - `argsBytesMax` 64 MiB of call arguments per execution of the code: arguments are what makes a
 *   history big (Temporal: 50 MB per history). 64 MiB is the peer's default blob limit, so a run's
 *   history could travel as one blob when another peer takes the run over.
 * - `memoInlineBytesMax` 16 MiB of inline result bytes kept in the memo. A result up to 256 KiB
 *   arrives inline (src/wire/task-codec.ts); keeping all 10,000 inline would be 2.5 GiB. Past this
 *   budget the memo keeps only the result CID and the shell reads the bytes from its blob store:
 *   slower replay, never a failure.
 * - `childDepthMax` 16 levels of child runs: a deeper tree is runaway recursion, not a design; it
 *   also bounds the ancestor chain every driver is given.
 * - `activationTimeoutMs` 60 s: an activation only runs workflow code forward between awaits
 *   (CPU-bound, sandbox-limited to seconds); one unanswered after a minute was lost by the shell.
 * - `runTimeoutMs` 24 h: a run of remote tasks that has not finished in a day is stuck or waiting
 *   on something that will not come; a longer one asks for it explicitly (up to DURATION_MS_LIMIT).
 */
export const RUN_DRIVER_DEFAULTS = {
  commandsMax: 10_000,
  memoEntriesMax: 10_000,
  argsBytesMax: 64 * 1024 * 1024,
  memoInlineBytesMax: 16 * 1024 * 1024,
  childDepthMax: 16,
  activationTimeoutMs: 60_000,
  runTimeoutMs: 24 * 60 * 60_000
} as const satisfies {
  commandsMax: number
  memoEntriesMax: number
  argsBytesMax: number
  memoInlineBytesMax: number
  childDepthMax: number
  activationTimeoutMs: number
  runTimeoutMs: number
}

/** `commandsMax` and `memoEntriesMax` may not exceed this: a million entries of CIDs and seqs is
 *  already hundreds of MiB of driver state — a typo, not a configuration. */
export const RUN_COUNT_LIMIT = 1_000_000

/** `argsBytesMax` and `memoInlineBytesMax` may not exceed this (1 GiB): a run holding more is a
 *  data pipeline that belongs in blobs passed by reference. */
export const RUN_BYTES_LIMIT = 1024 * 1024 * 1024

/** `childDepthMax` may not exceed this: the ancestor chain travels with every child start. */
export const CHILD_DEPTH_LIMIT = 256

/** Time options may not exceed this (about 24.8 days, the largest delay Node's timers accept),
 *  so the shell can always arm the next timeout. */
export const RUN_DURATION_MS_LIMIT = 2_147_483_647

/** Bytes of recorded inputs (signal values, timer deadlines) one run's memo holds, at most. They are
 *  kept inline whatever memoInlineBytesMax says — no blob store holds them — so they have a budget
 *  of their own: 256 signals of the largest size (SIGNAL_VALUE_BYTES_MAX, 64 KiB), or a million
 *  timers. A run that needs more takes its signals as blobs, or continues as a new run. */
export const RUN_RECORD_BYTES_MAX = 16 * 1024 * 1024
