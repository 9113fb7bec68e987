/**
 * The run driver: one workflow run, from start to its outcome.
 *
 * A workflow is deterministic code that calls remote functions. The driver does not run that
 * code; it decides what happens around it: which calls become tasks (each distinct task id
 * once), when the code runs forward (an *activation*, delivering the calls that settled), what is
 * remembered (the *memo*: task id → accepted result, which makes a replay of the code cheap), and
 * how the run ends. The state machine and its theory of operation are in ./driver.ts; the design
 * is "The run driver" in docs/ARCHITECTURE.md.
 *
 * Sans-I/O (STYLE.md §4): the shell (the run service) feeds inputs (`handle*`, with the current
 * time), drains `poll()` after every call — runs the workflow code on `activate`, submits
 * `schedule`d tasks to the scheduler, starts children, cancels, persists `event`s — and calls
 * `handleTimeout` at `nextTimeoutMs()`.
 */
import type { FailureData } from '../../model/errors.ts'
import { RUN_DRIVER_DEFAULTS as DEFAULTS } from './constants.ts'
import { RunDriverMachine } from './driver.ts'

/** Where an accepted result is: its CID, the bytes when small enough to travel inline, and the
 *  peer that produced it (for a child run: the peer that drove it). */
export interface ResultRef {
  cid: string
  /** Inline dag-cbor bytes of the result. Absent: the shell reads the blob `cid`. */
  bytes?: Uint8Array
  peer: string
}

/** How a task or a child run ended, as the scheduler (or the child's driver) reports it. A
 *  failure here is final: retries were the scheduler's business. */
export type Outcome =
  | { ok: true, result: ResultRef }
  | { ok: false, error: FailureData }

/** A settled call, delivered to the workflow code. `seq` is the call's number in this execution. */
export type Resolution =
  | { seq: number, ok: true, result: ResultRef }
  | { seq: number, ok: false, error: FailureData }

/** The code called a remote function. The shell computed `taskId` (the CID of `{ fn, export, args }`,
 *  src/wire/task-codec.ts) and `inputs` (the CIDs of Ref arguments, for placement by locality). */
export interface CallCommand {
  type: 'call'
  /** Numbers calls and child starts in program order within one execution of the code, strictly
   *  increasing. A replay may number them differently: the memo is keyed by id, not by seq. */
  seq: number
  taskId: string
  fn: string
  export: string
  /** dag-cbor array of the arguments. */
  args: Uint8Array
  /** The code asked for a Ref (a handle on the result's CID) rather than the value. */
  ref: boolean
  /** CIDs of Ref arguments. Default []. */
  inputs?: string[]
}

/** The code started a child workflow run. `runId` is the CID of `{ workflow, export, args, parent }`. */
export interface ChildCommand {
  type: 'child'
  seq: number
  runId: string
  workflow: string
  export: string
  args: Uint8Array
}

/** The code awaits `sleep(ms)`: its k-th sleep in this execution is timer `sleep:k` (./records.ts). */
export interface SleepCommand {
  type: 'sleep'
  seq: number
  /** Whole ms, 0..RUN_DURATION_MS_LIMIT (the sandbox checked). */
  ms: number
}

/** The code awaits `signal(name)`: its k-th wait for `name` in this execution is `signal:<name>:k`. */
export interface SignalCommand {
  type: 'signal'
  seq: number
  /** A signal name (signalNameProblem in src/model/limits.ts is undefined for it). */
  name: string
}

export type Command = CallCommand | ChildCommand | SleepCommand | SignalCommand

/** What the workflow code ended with: its return value (dag-cbor) or what it threw. `continueAs`:
 *  the code returned `continueAsNew(...args)` — the run ends as 'continued', and the shell starts
 *  a new run of the same workflow export with these arguments (a dag-cbor array) and a fresh history. */
export type RunOutcome =
  | { ok: true, value: Uint8Array, continueAs?: Uint8Array }
  | { ok: false, error: FailureData }

/** What the code did in one activation: the calls it issued, in order, and `done` if it returned or threw. */
export interface ActivationResult {
  commands: Command[]
  done?: RunOutcome
}

export interface TaskSpec {
  taskId: string
  fn: string
  export: string
  args: Uint8Array
  inputs: string[]
}

export interface ChildSpec {
  runId: string
  workflow: string
  export: string
  args: Uint8Array
  /** This run's ancestors then this run, root first: the child driver's `ancestors`. */
  ancestors: string[]
}

export type RunStatus = 'created' | 'running' | 'finished' | 'continued' | 'failed' | 'cancelled'

/** Progress and history, for persistence (`run_events`) and streaming. Every event names its run
 *  and carries the driver's time; the peer that ran a task is in its `ResultRef`. */
export type RunEvent =
  | { type: 'run:started', runId: string, atMs: number, memoEntries: number }
  /** The code is run forward, delivering the calls numbered `seqs`. `replay`: from the start, in a new context. */
  | { type: 'run:activation', runId: string, atMs: number, activation: number, seqs: number[], replay: boolean }
  /** The activation answered with `commands` new calls. */
  | { type: 'run:activation:done', runId: string, atMs: number, activation: number, commands: number, done: boolean }
  | { type: 'run:task:scheduled', runId: string, atMs: number, seq: number, taskId: string, fn: string, export: string, inputs: string[] }
  /** A call answered without scheduling: from the memo (`from: 'memo'`), from a failure seen
   *  earlier in this run (`'failure'`), or by joining the task already in flight (`'in-flight'`). */
  | { type: 'run:task:reused', runId: string, atMs: number, seq: number, taskId: string, from: 'memo' | 'failure' | 'in-flight' }
  | { type: 'run:task:accepted', runId: string, atMs: number, taskId: string, cid: string, peer: string, inlineBytes: number, scheduledAtMs: number, seqs: number[] }
  | { type: 'run:task:failed', runId: string, atMs: number, taskId: string, error: FailureData, scheduledAtMs: number, seqs: number[] }
  | { type: 'run:task:cancelled', runId: string, atMs: number, taskId: string }
  | { type: 'run:child:started', runId: string, atMs: number, seq: number, childRunId: string, workflow: string, export: string }
  | { type: 'run:child:reused', runId: string, atMs: number, seq: number, childRunId: string, from: 'memo' | 'failure' | 'in-flight' }
  /** A child start refused by rule (cycle, depth): delivered to the code as a rejection. */
  | { type: 'run:child:refused', runId: string, atMs: number, seq: number, childRunId: string, error: FailureData }
  | { type: 'run:child:accepted', runId: string, atMs: number, childRunId: string, cid: string, peer: string, startedAtMs: number, seqs: number[] }
  | { type: 'run:child:failed', runId: string, atMs: number, childRunId: string, error: FailureData, startedAtMs: number, seqs: number[] }
  | { type: 'run:child:cancelled', runId: string, atMs: number, childRunId: string }
  /** Timer `timerId` (`sleep:k`) was recorded: it fires at `wakeAtMs`, on any peer that replays the run. */
  | { type: 'run:timer:started', runId: string, atMs: number, timerId: string, wakeAtMs: number }
  /** Timer `timerId` fired and that was recorded (`wake:k`): it never fires again, whoever replays the run. */
  | { type: 'run:timer:fired', runId: string, atMs: number, timerId: string, seqs: number[] }
  /** Signal `name` was recorded as `signalId` (`signal:<name>:n`); `seqs` are the waits it answered at once. */
  | { type: 'run:signal:received', runId: string, atMs: number, name: string, signalId: string, bytes: number, seqs: number[] }
  /** A check of task `taskId`'s accepted result is under way: the run does not end before it closes. */
  | { type: 'run:task:checking', runId: string, atMs: number, taskId: string }
  /** The check found the accepted result right. */
  | { type: 'run:task:confirmed', runId: string, atMs: number, taskId: string }
  /** The check found it wrong: `resultCid` (memo entry `fix:<taskId>`) replaces it, and the code replays. */
  | { type: 'run:task:disproven', runId: string, atMs: number, taskId: string, resultCid: string }
  /** The workflow code's context was dropped; the next activation replays it from the memo. */
  | { type: 'run:evicted', runId: string, atMs: number }
  | { type: 'run:finished', runId: string, atMs: number, status: 'finished' | 'continued' | 'failed' | 'cancelled', error?: FailureData, activations: number, tasksScheduled: number, memoEntries: number }

export type RunOutput =
  /** Run the workflow code forward, delivering these settled calls (in seq order). At most one is
   *  outstanding: answer it with `handleActivation`. `replay`: start the code afresh first. */
  | { type: 'activate', activation: number, replay: boolean, resolutions: Resolution[] }
  /** Submit this task to the scheduler. Once per distinct task id per run. */
  | { type: 'schedule', task: TaskSpec }
  /** Start this child run (once per child run id). */
  | { type: 'start-child', child: ChildSpec }
  /** Stop a task still in flight: the run has ended without needing it. */
  | { type: 'cancel', taskId: string }
  /** Cancel a child run still in flight. */
  | { type: 'cancel-child', runId: string }
  /** Make this nondeterministic input durable (a timer's deadline or firing, a signal): store
   *  `value` (dag-cbor) as memo entry `id`, then answer `handleRecorded`. Once per id per run. */
  | { type: 'record', id: string, value: Uint8Array }
  /** The run's outcome. Exactly once, last of the run's outputs but for the events after it. */
  | { type: 'finished', outcome: RunOutcome }
  | { type: 'event', event: RunEvent }

/** What became of an outcome: used it; or the run had already ended ('late': ignored by rule). */
export type OutcomeVerdict = 'accepted' | 'late'

/** What verification says of a task's accepted result (the verifier's `accepted` with `checking`,
 *  `reopened`, then its `verdict`). 'open': a check is under way; 'confirmed': the result stands;
 *  'disproven': `result` is the correct one — already stored as memo entry `fix:<taskId>`. */
export type CheckVerdict =
  | { type: 'open' }
  | { type: 'confirmed' }
  | { type: 'disproven', result: ResultRef }

/** One memo entry: a task id (or a child run id, or a recorded input: `sleep:k`, `wake:k`,
 *  `signal:<name>:n`, see ./records.ts) and its accepted result. A recorded input's entry always
 *  carries its bytes. */
export interface MemoEntry {
  id: string
  result: ResultRef
}

export interface RunDriverOptions {
  runId: string
  /** Ids of the runs above this one, root first (not this run). Default []. A child whose id is in
   *  here, or is `runId`, fails with WorkflowCycleError instead of starting. */
  ancestors?: string[]
  /** The memo of an earlier life of this run (restart): these ids resolve at once, never scheduled
   *  again; an id with a `fix:<id>` entry resolves with the fix. */
  memo?: MemoEntry[]
  /** When the run first started, if it is resuming (ms, the shell's clock): the run deadline counts
   *  from it. Default: the `handleStart` time. */
  startedMs?: number
  /** Default 10,000: commands per execution of the code (RunHistoryLimitError). */
  commandsMax?: number
  /** Default 10,000: distinct task and child-run ids per run (RunHistoryLimitError). */
  memoEntriesMax?: number
  /** Default 64 MiB: bytes of call arguments per execution of the code (RunHistoryLimitError). */
  argsBytesMax?: number
  /** Default 16 MiB: inline result bytes kept in the memo; past it, results are kept by CID only. */
  memoInlineBytesMax?: number
  /** Default 16: levels of child runs below the root (WorkflowDepthError for the call past it). */
  childDepthMax?: number
  /** Default 60 s: an unanswered activation ends the run (ActivationTimeoutError). */
  activationTimeoutMs?: number
  /** Default 24 h: the run ends (RunTimeoutError) this long after it started. */
  runTimeoutMs?: number
}

export interface RunCounts {
  /** Activations emitted. */
  activations: number
  /** Commands of the current execution of the code. */
  commands: number
  /** Distinct tasks and child runs scheduled by this driver (not answered by the memo). */
  scheduled: number
  memoEntries: number
  inFlight: number
  /** Argument bytes of the current execution of the code. */
  argsBytes: number
  /** Inline result bytes held by the memo. */
  memoInlineBytes: number
  /** Timers armed (recorded, not yet fired). */
  timersArmed: number
  /** `record` outputs not yet answered by handleRecorded. */
  recordsPending: number
  /** Bytes of recorded inputs held by the memo (within RUN_RECORD_BYTES_MAX). */
  recordBytes: number
  /** Checks open on accepted results (each names a memo entry, so at most memoEntries). */
  checksOpen: number
}

export interface RunDriver {
  /** The run begins (or resumes from `memo`): the first activation. Ignored once the run has
   *  ended (cancelled before it started); a second start is a bug and throws. */
  handleStart (nowMs: number): void
  /** The answer to the outstanding activation. Ignored once the run has ended (it raced the
   *  end); with no activation outstanding it is a bug and throws. */
  handleActivation (result: ActivationResult, nowMs: number): void
  /** A scheduled task settled. 'late' once the run has ended; for a task not in flight it throws. */
  handleTaskOutcome (taskId: string, outcome: Outcome, nowMs: number): OutcomeVerdict
  /** A started child run settled. 'late' once the run has ended; for a child not in flight it throws. */
  handleChildOutcome (runId: string, outcome: Outcome, nowMs: number): OutcomeVerdict
  /** Several tasks and child runs settled at once (delivered together): as many
   *  handleTaskOutcome / handleChildOutcome calls, but one activation hands the code all of them
   *  (with no activation outstanding) instead of the first alone and the rest after it. */
  handleOutcomes (outcomes: ReadonlyArray<{ kind: 'task' | 'child', id: string, outcome: Outcome }>, nowMs: number): OutcomeVerdict[]
  /** The workflow code's context was dropped (to make room). Keeps the memo and the tasks in
   *  flight; the next activation (when something settles) replays the code from the start. No
   *  activation may be outstanding. Ignored once the run has ended. */
  handleEvict (nowMs: number): void
  /** Cancel the run: `cancel` each task and child in flight, then `finished` with RunCancelledError.
   *  Ignored once the run has ended. */
  handleCancel (nowMs: number): void
  /** `record` output `id` was stored; `result` is its CID, bytes (the value recorded) and the peer
   *  that stored it. Only now does the driver put it in the memo and act on it (arm the timer,
   *  resolve the waits). 'late' once the run has ended; for an id not being recorded it throws. */
  handleRecorded (id: string, result: ResultRef, nowMs: number): OutcomeVerdict
  /** Signal `name` with `value` (dag-cbor) arrived: it is recorded as the run's next
   *  `signal:<name>:n` and answers the wait for it, now or later. Throws InvalidInputError for a
   *  bad name, TooLargeError for a value past SIGNAL_VALUE_BYTES_MAX, RunHistoryLimitError when
   *  the run holds no more; 'late' once the run has ended. */
  handleSignal (name: string, value: Uint8Array, nowMs: number): OutcomeVerdict
  /**
   * Verification's word on task `taskId`'s accepted result (call it after handleTaskOutcome
   * accepted it). 'open': the run's end waits for the check — if the code returns meanwhile, its
   * outcome is held, and the run ends with it when the last open check closes (run timeout and
   * cancel still end it). 'confirmed' closes the check. 'disproven' (the shell has ALREADY stored
   * memo entry `fix:<taskId>` = `result`): the memo's result for `taskId` becomes `result`, the
   * check closes, a held outcome is dropped, and the code is evicted and replayed (at once, or when
   * the outstanding activation is answered — that answer is then discarded); tasks in flight carry
   * on, nothing is scheduled twice. 'late' (ignored) for an id the memo does not hold as a task or
   * child result, or once the run has ended. Before handleStart it still records (a resumed run
   * told of checks its former driver had open).
   */
  handleVerdict (taskId: string, verdict: CheckVerdict, nowMs: number): OutcomeVerdict
  /** Several verdicts at once: as many handleVerdict calls, but any number of disproofs among them
   *  cost one replay of the code, not one each. */
  handleVerdicts (verdicts: ReadonlyArray<{ taskId: string, verdict: CheckVerdict }>, nowMs: number): OutcomeVerdict[]
  /** Fire due deadlines (activation, run) and due timers. */
  handleTimeout (nowMs: number): void
  /** Drain outputs in order. */
  poll (): RunOutput | undefined
  /** Absolute ms time at which handleTimeout should next be called; undefined when nothing is
   *  timed (not started, or ended). */
  nextTimeoutMs (): number | undefined
  status (): RunStatus
  /** A copy of the memo, in the order entries were accepted; a disproven task's entry holds its fix. */
  memo (): MemoEntry[]
  counts (): RunCounts
}

/** Defaults of the optional limits (frozen; see ./constants.ts for why each). */
export const RUN_DRIVER_OPTIONS_DEFAULTS: Required<Omit<RunDriverOptions, 'runId' | 'ancestors' | 'memo' | 'startedMs'>> = Object.freeze({ ...DEFAULTS })

/** Validates the options (ConfigError naming the field) and returns a driver in state 'created'. */
export function createRunDriver (options: RunDriverOptions): RunDriver {
  return new RunDriverMachine(options)
}

export { CHILD_DEPTH_LIMIT, RUN_BYTES_LIMIT, RUN_COUNT_LIMIT, RUN_DURATION_MS_LIMIT, RUN_RECORD_BYTES_MAX } from './constants.ts'
export { CBOR_NULL, CHECK_ENTRY_PREFIX, FIX_ENTRY_PREFIX, checkEntryId, decodeUint, encodeUint, fixEntryId, parseFixEntryId, parseRecordId, signalId, sleepId, verifiedMemo, wakeId } from './records.ts'
export type { RecordId } from './records.ts'
export {
  ActivationTimeoutError, RunCancelledError, RunHistoryLimitError, RunTimeoutError, WorkflowCycleError, WorkflowDepthError,
  WorkflowStalledError
} from './errors.ts'
