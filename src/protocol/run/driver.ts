/**
 * Run driver state machine — theory of operation.
 *
 * WHAT IT DRIVES. A workflow run is deterministic code (run by the shell in the workflow sandbox)
 * that calls remote functions and starts child runs. The code runs in *activations*: the driver
 * says `activate` with the calls that have settled since the last one; the code runs until every
 * path is waiting again (or it returned) and the shell answers `handleActivation` with the
 * *commands* it issued meanwhile and, if it ended, `done`. Between activations the code does not
 * run; calls settle (`handleTaskOutcome`, `handleChildOutcome`) and the driver collects them.
 *
 * STATES of the run:
 *
 *   created ─handleStart─► running ─done ok──────────────────────────► finished
 *      │                     ├──── done ok with continueAs (continueAsNew) ─────────► continued
 *      │                     ├──── done failed, a history limit, a stall, a timeout ─► failed
 *      └────handleCancel─────┴──── handleCancel ─────────────────────────────────────► cancelled
 *
 * While running, at most one activation is outstanding. A call that settles meanwhile becomes a
 * *resolution* in `ready`; when the activation is answered, everything ready goes out in the next
 * one, sorted by seq (one activation per batch, not per call: a fan-out of a thousand calls that
 * finish together costs one run of the code, not a thousand). Hence the invariant: running with
 * no activation outstanding ⇒ nothing ready.
 *
 * ONE TASK PER ID. A call names its task by id (the CID of function, export and arguments), so two
 * calls with the same id are the same work. For each command the driver looks the id up, in order:
 *  - the memo (id → accepted result): resolved at once, nothing scheduled. On a restart the shell
 *    passes the persisted memo to `createRunDriver`, and the code's replay resolves every call that
 *    was already accepted without running it again — replay is cheap, and another peer with the
 *    memo could take the run over;
 *  - the failures of this run: resolved at once with the same failure (a failure is final — the
 *    scheduler did the retrying — and the code must see the same thing on every ask);
 *  - the tasks in flight: the seq joins its waiters and gets the same resolution when it settles;
 *  - otherwise it is new: `schedule` (a child run: `start-child`), once per id per run.
 * Child runs share this path, keyed by child run id (a CID of a different shape than any task id,
 * so one map serves both). A child whose id is this run's or an ancestor's would wait on itself:
 * its seq is rejected with WorkflowCycleError instead, as is one nested deeper than childDepthMax.
 *
 * Seq numbers are the code's own numbering of its calls within one execution; they must grow, but
 * need not match across replays (which calls are issued first depends on the order things settle).
 * Only ids carry over. A workflow whose *result* depends on settling order (Promise.race) is
 * therefore not replay-safe; the events record the live order.
 *
 * FAILURES reach the code as rejections; the run fails only if the code says so in `done` (it may
 * catch). The driver itself ends the run, cancelling whatever is in flight, when: the code's history
 * outgrows a limit (RunHistoryLimitError: commandsMax, argsBytesMax per execution of the code;
 * memoEntriesMax distinct ids per run, checked before scheduling, so no work is started whose result
 * could not be kept); the code waits with nothing in flight (WorkflowStalledError — it could never
 * go on); an activation or the run outlives its deadline (ActivationTimeoutError, RunTimeoutError);
 * or it is cancelled (RunCancelledError). When the code returns, calls it did not await are
 * cancelled: a workflow's result is its return value, and work nobody awaits is not done. Commands
 * issued in the activation that returned are therefore dropped, not scheduled.
 *
 * AFTER THE END every input is ignored (outcomes answer 'late'): each can race the end honestly —
 * a task settles as the run is cancelled, an activation answers after a timeout. Inputs that no race
 * explains (an activation answered twice, an outcome for an id never in flight, a second start,
 * seqs that do not grow) are bugs in the shell and fail an assertion.
 *
 * EVICTION. The shell may drop the code's context between activations to free memory
 * (`handleEvict`). The driver forgets seqs and waiters but keeps the memo, the failures and the
 * tasks in flight; the next time something settles it asks for an activation with `replay: true`,
 * the code starts over, and every call it makes again resolves from the memo or joins the task in
 * flight. Nothing is scheduled twice.
 *
 * TIMERS AND SIGNALS are inputs the code cannot compute: when a timer fires, what a signal says.
 * Each is made durable before the code sees it — the driver emits `record` (id, dag-cbor value),
 * the shell stores it as a memo entry and answers `handleRecorded`, and only then does the driver
 * act on it — so every replay, on this peer or another, sees the same thing (ids in ./records.ts).
 * The code's k-th `sleep(ms)` first records `sleep:k` = now + ms (the deadline, once), then the timer
 * is armed at that deadline; when it is due (`handleTimeout`, `nextTimeoutMs` counts armed timers)
 * the driver records `wake:k` and resolves the sleep. A replay finds `wake:k` and resolves at once,
 * or finds `sleep:k` and re-arms the same deadline: a timer fires once, however often the run is
 * taken over. A signal (`handleSignal`) is recorded as the n-th of its name, `signal:<name>:n`,
 * whether or not the code waits yet; the code's n-th `signal(name)` resolves from that entry. A
 * run waiting only on timers or signals is not stalled: something can still move it.
 *
 * CHECKS. Verification may accept a task's result before it is sure of it (a spot check, a re-check
 * once its peer was proven to lie), and say so (`handleVerdict`). 'open' puts the id in `checks`;
 * the code goes on using the result, but the run may not end on it: when the code returns while a
 * check is open, its outcome is *held* — the code is done, the run stays running (its deadline and
 * cancel still apply, tasks in flight carry on unawaited), and it ends with that outcome when the
 * last check closes ('confirmed'). 'disproven' means the accepted result was wrong and names the
 * right one, which the shell has already stored as memo entry `fix:<id>` (./records.ts): the driver
 * puts it in the memo in place of the wrong one (a driver created from a memo with `fix:<id>` does
 * the same), drops a held outcome, and replays the code like after an eviction — everything it
 * computed may rest on the wrong value. The replay resolves the id with the fix; calls the code
 * made from the wrong value are not asked again (their arguments, hence their ids, differ) and
 * calls it makes from the fix are new ids, scheduled once like any. Tasks in flight carry on, and
 * the replay joins those it still wants. With an activation outstanding the code cannot be
 * evicted: the replay waits for its answer, which is discarded (it too may rest on the wrong
 * value). However many disproofs come before the replay starts, it is one replay.
 *
 * CLOCK. As in membership: the largest `nowMs` seen is "now"; time never runs backwards.
 */
import { OutputQueue } from '../output-queue.ts'
import { ConfigError, InvalidInputError, TooLargeError, assert } from '../../model/errors.ts'
import type { FailureData } from '../../model/errors.ts'
import { SIGNAL_VALUE_BYTES_MAX, signalNameProblem } from '../../model/limits.ts'
import { CHILD_DEPTH_LIMIT, RUN_BYTES_LIMIT, RUN_COUNT_LIMIT, RUN_DRIVER_DEFAULTS, RUN_DURATION_MS_LIMIT, RUN_RECORD_BYTES_MAX } from './constants.ts'
import { CBOR_NULL, decodeUint, encodeUint, parseFixEntryId, parseRecordId, signalId, sleepId, wakeId } from './records.ts'
import {
  ActivationTimeoutError, RunCancelledError, RunHistoryLimitError, RunTimeoutError, WorkflowCycleError, WorkflowDepthError,
  WorkflowStalledError
} from './errors.ts'
import type {
  ActivationResult, CheckVerdict, ChildCommand, Command, CallCommand, MemoEntry, Outcome, OutcomeVerdict, Resolution, ResultRef, RunCounts,
  RunDriver, RunDriverOptions, RunEvent, RunOutcome, RunOutput, RunStatus, SignalCommand, SleepCommand
} from './index.ts'

interface Settings {
  runId: string
  ancestors: string[]
  commandsMax: number
  memoEntriesMax: number
  argsBytesMax: number
  memoInlineBytesMax: number
  childDepthMax: number
  activationTimeoutMs: number
  runTimeoutMs: number
}

/** A task or child run in flight, and the seqs (of the current execution) waiting on it. */
interface Pending {
  kind: 'task' | 'child'
  id: string
  seqs: number[]
  sinceMs: number
}

type Terminal = 'finished' | 'continued' | 'failed' | 'cancelled'

export class RunDriverMachine implements RunDriver {
  private readonly s: Settings
  private readonly ancestorSet: Set<string>
  private state: RunStatus = 'created'
  private clockMs: number | undefined
  private startedMs: number | undefined

  /** Grow-only: id → accepted result (bytes kept while within memoInlineBytesMax). */
  private readonly memoMap = new Map<string, ResultRef>()
  private memoInlineBytes = 0
  /** Final failures of ids in this run. */
  private readonly failures = new Map<string, FailureData>()
  /** In schedule order, so cancels go out in that order. */
  private readonly inFlight = new Map<string, Pending>()
  private scheduled = 0
  /** Recorded inputs being stored (a `record` out, handleRecorded not yet in): id → value bytes. */
  private readonly recording = new Map<string, number>()
  /** Timers recorded and not yet fired: k (of `sleep:k`) → wake time. */
  private readonly armed = new Map<number, number>()
  /** Signals received (memo and recording), per name: the next one's n. */
  private readonly signalsReceived = new Map<string, number>()
  /** Bytes of recorded inputs in the memo. */
  private recordBytes = 0

  // The current execution of the code (reset by eviction).
  private lastSeq = -1
  private commands = 0
  private argsBytes = 0
  private evicted = false
  /** Sleeps of this execution so far: the next one is `sleep:<sleeps>`. */
  private sleeps = 0
  /** Waits of this execution per signal name so far: the next one is `signal:<name>:<n>`. */
  private readonly signalWaits = new Map<string, number>()
  /** Seqs of this execution waiting on a recorded input not in the memo yet: `wake:k` or `signal:<name>:n` → seqs. */
  private readonly waits = new Map<string, number[]>()

  /** Ids whose accepted result is being checked (each in the memo). */
  private readonly checks = new Set<string>()
  /** The code returned while checks were open: how the run ends when they close. */
  private held: { status: Terminal, outcome: RunOutcome } | undefined
  /** A disproof came with an activation outstanding: replay when it is answered (discarding the answer). */
  private replayPending = false

  private ready: Resolution[] = []
  private activations = 0
  /** When the outstanding activation was emitted; undefined when none is. */
  private outstandingSinceMs: number | undefined

  private readonly outputs: OutputQueue<RunOutput>

  constructor (options: RunDriverOptions) {
    this.s = resolveOptions(options)
    this.ancestorSet = new Set(this.s.ancestors)
    if (options.startedMs !== undefined) {
      if (!Number.isSafeInteger(options.startedMs) || options.startedMs < 0) {
        throw new ConfigError('startedMs', `must be a non-negative whole number of ms, got ${String(options.startedMs)}`)
      }
      this.startedMs = options.startedMs
    }
    const fixes: Array<[string, ResultRef]> = []
    for (const [i, entry] of (options.memo ?? []).entries()) this.restore(entry, i, fixes)
    // After every entry: a fix may come before the entry it replaces.
    for (const [taskId, fix] of fixes) this.putFix(taskId, fix)
    if (this.memoMap.size > this.s.memoEntriesMax) {
      throw new ConfigError('memo', `holds ${this.memoMap.size} entries, more than memoEntriesMax (${this.s.memoEntriesMax})`, {
        hint: 'resume the run with the memoEntriesMax it was started with'
      })
    }
    // One input emits at most: per command a schedule and an event, per id in flight a cancel and
    // an event, plus a handful. More queued means the shell is not draining poll(): a bug.
    this.outputs = new OutputQueue(4 * (this.s.commandsMax + this.s.memoEntriesMax) + 1024)
  }

  handleStart (nowMs: number): void {
    const now = this.advance(nowMs)
    if (this.isOver()) return
    assert(this.state === 'created', 'a run starts once')
    this.state = 'running'
    this.startedMs ??= now
    this.event({ type: 'run:started', runId: this.s.runId, atMs: now, memoEntries: this.memoMap.size })
    this.activate(now)
    this.check()
  }

  handleActivation (result: ActivationResult, nowMs: number): void {
    const now = this.advance(nowMs)
    if (this.isOver()) return
    assert(this.state === 'running' && this.outstandingSinceMs !== undefined, 'an activation is answered once, after it was asked for')
    assert(typeof result === 'object' && result !== null && Array.isArray(result.commands), 'an activation result has a commands array')
    this.outstandingSinceMs = undefined
    const activation = this.activations
    this.event({ type: 'run:activation:done', runId: this.s.runId, atMs: now, activation, commands: result.commands.length, done: result.done !== undefined })
    if (this.replayPending) {
      // A disproof came while the code ran: what it answered may rest on the wrong value.
      this.replayPending = false
      this.replay(now)
      this.activate(now)
    } else if (result.done !== undefined) {
      this.settle(result.done, now)
    } else {
      this.runCommands(result.commands, now)
    }
    this.check()
  }

  /** The code returned (or threw): the run ends so — or, while checks are open, holds that end. */
  private settle (done: RunOutcome, now: number): void {
    let status: Terminal
    let outcome: RunOutcome
    if (done.ok) {
      assert(done.value instanceof Uint8Array, 'a workflow value is dag-cbor bytes')
      if (done.continueAs !== undefined) {
        assert(done.continueAs instanceof Uint8Array, 'continue-as-new arguments are dag-cbor bytes')
        status = 'continued'
        outcome = { ok: true, value: done.value, continueAs: done.continueAs }
      } else {
        status = 'finished'
        outcome = { ok: true, value: done.value }
      }
    } else {
      checkFailure(done.error)
      status = 'failed'
      outcome = { ok: false, error: done.error }
    }
    if (this.checks.size === 0) {
      this.end(status, outcome, now)
      return
    }
    // The code is done with this execution; timers it did not await need not fire (a replay re-arms them).
    this.held = { status, outcome }
    this.resetExecution()
    this.armed.clear()
  }

  private runCommands (commands: Command[], now: number): void {
    for (const command of commands) {
      if (!this.command(command, now)) return
    }
    if (this.ready.length > 0) this.activate(now)
    else if (this.inFlight.size === 0 && this.waits.size === 0) this.fail(new WorkflowStalledError().toData(), now)
  }

  handleTaskOutcome (taskId: string, outcome: Outcome, nowMs: number): OutcomeVerdict {
    return this.handleOutcome('task', taskId, outcome, nowMs)
  }

  handleChildOutcome (runId: string, outcome: Outcome, nowMs: number): OutcomeVerdict {
    return this.handleOutcome('child', runId, outcome, nowMs)
  }

  handleOutcomes (outcomes: ReadonlyArray<{ kind: 'task' | 'child', id: string, outcome: Outcome }>, nowMs: number): OutcomeVerdict[] {
    this.holding = true
    let verdicts: OutcomeVerdict[]
    try {
      verdicts = outcomes.map(o => this.handleOutcome(o.kind, o.id, o.outcome, nowMs))
    } finally {
      this.holding = false
    }
    this.maybeActivate(this.advance(nowMs))
    this.check()
    return verdicts
  }

  /** Inside handleOutcomes: outcomes collect, the one activation comes after the last. */
  private holding = false

  handleEvict (nowMs: number): void {
    const now = this.advance(nowMs)
    if (this.isOver()) return
    assert(this.state === 'running', 'only a started run has code to evict')
    assert(this.outstandingSinceMs === undefined, 'the code is evicted between activations, never during one')
    this.replay(now)
    this.check()
  }

  /** Drop the code's execution (keeping the memo, failures and tasks in flight): the next activation replays it. */
  private replay (now: number): void {
    this.resetExecution()
    this.evicted = true
    this.event({ type: 'run:evicted', runId: this.s.runId, atMs: now })
  }

  private resetExecution (): void {
    this.lastSeq = -1
    this.commands = 0
    this.argsBytes = 0
    this.sleeps = 0
    this.signalWaits.clear()
    this.waits.clear()
    this.ready = []
    for (const pending of this.inFlight.values()) pending.seqs = []
  }

  /** Between activations, with something to deliver (or a replay due) and the code not done: activate. */
  private maybeActivate (now: number): void {
    if (this.state === 'running' && this.held === undefined && this.outstandingSinceMs === undefined && (this.ready.length > 0 || this.evicted)) this.activate(now)
  }

  handleVerdict (taskId: string, verdict: CheckVerdict, nowMs: number): OutcomeVerdict {
    const now = this.advance(nowMs)
    assert(typeof verdict === 'object' && verdict !== null && VERDICT_TYPES.has(verdict.type), 'a verdict is open, confirmed or disproven')
    if (this.isOver() || !this.holdsResult(taskId)) return 'late'
    const runId = this.s.runId
    if (verdict.type === 'open') {
      if (!this.checks.has(taskId)) {
        this.checks.add(taskId)
        this.event({ type: 'run:task:checking', runId, atMs: now, taskId })
      }
    } else if (verdict.type === 'confirmed') {
      this.checks.delete(taskId)
      this.event({ type: 'run:task:confirmed', runId, atMs: now, taskId })
      this.release(now)
    } else {
      checkRef(verdict.result)
      this.checks.delete(taskId)
      this.event({ type: 'run:task:disproven', runId, atMs: now, taskId, resultCid: verdict.result.cid })
      // The same result again (a repeated disproof) changes nothing the code saw.
      if (this.putFix(taskId, copyRef(verdict.result))) this.disprove(now)
      else this.release(now)
    }
    if (this.holding) return 'accepted'
    this.maybeActivate(now)
    this.check()
    return 'accepted'
  }

  handleVerdicts (verdicts: ReadonlyArray<{ taskId: string, verdict: CheckVerdict }>, nowMs: number): OutcomeVerdict[] {
    this.holding = true
    let answers: OutcomeVerdict[]
    try {
      answers = verdicts.map(v => this.handleVerdict(v.taskId, v.verdict, nowMs))
    } finally {
      this.holding = false
    }
    this.maybeActivate(this.advance(nowMs))
    this.check()
    return answers
  }

  /** A task or child result the memo holds (not a recorded input). */
  private holdsResult (id: unknown): id is string {
    return typeof id === 'string' && this.memoMap.has(id) && parseRecordId(id) === undefined
  }

  /** A result the code may have used was wrong: a held end is void, and the code replays (now, or after the outstanding activation). */
  private disprove (now: number): void {
    this.held = undefined
    if (this.state !== 'running') return // not started yet: its first activation sees the fix
    if (this.outstandingSinceMs !== undefined) this.replayPending = true
    else this.replay(now)
  }

  /** The last open check closed on a held end: the run ends with it. */
  private release (now: number): void {
    if (this.held === undefined || this.checks.size > 0) return
    const { status, outcome } = this.held
    this.held = undefined
    this.end(status, outcome, now)
  }

  /** The memo's result for `taskId` becomes `fix`. False if it already was that result. */
  private putFix (taskId: string, fix: ResultRef): boolean {
    const old = this.memoMap.get(taskId)
    if (old === undefined) {
      this.remember(taskId, fix)
      return true
    }
    if (old.cid === fix.cid) return false
    this.memoInlineBytes -= old.bytes?.byteLength ?? 0
    const bytes = fix.bytes?.byteLength ?? 0
    if (bytes > 0 && this.memoInlineBytes + bytes <= this.s.memoInlineBytesMax) {
      this.memoMap.set(taskId, fix)
      this.memoInlineBytes += bytes
    } else {
      this.memoMap.set(taskId, { cid: fix.cid, peer: fix.peer })
    }
    return true
  }

  handleCancel (nowMs: number): void {
    const now = this.advance(nowMs)
    if (this.isOver()) return
    this.end('cancelled', { ok: false, error: new RunCancelledError().toData() }, now)
    this.check()
  }

  handleTimeout (nowMs: number): void {
    const now = this.advance(nowMs)
    if (this.state !== 'running') return
    assert(this.startedMs !== undefined, 'a running run has a start time')
    if (now >= this.startedMs + this.s.runTimeoutMs) {
      this.fail(new RunTimeoutError(this.s.runTimeoutMs).toData(), now)
    } else if (this.outstandingSinceMs !== undefined && now >= this.outstandingSinceMs + this.s.activationTimeoutMs) {
      this.fail(new ActivationTimeoutError(this.s.activationTimeoutMs).toData(), now)
    } else {
      this.fireTimers(now)
    }
    this.check()
  }

  handleRecorded (id: string, result: ResultRef, nowMs: number): OutcomeVerdict {
    const now = this.advance(nowMs)
    if (this.isOver()) return 'late'
    assert(this.state === 'running' && this.recording.has(id), 'a record is answered once, for an id being recorded')
    checkRef(result)
    assert(result.bytes instanceof Uint8Array, 'a recorded input comes back with its bytes')
    this.recording.delete(id)
    const ref = copyRef(result)
    this.remember(id, ref)
    const record = parseRecordId(id)
    assert(record !== undefined, 'only recorded inputs are recorded')
    const runId = this.s.runId
    if (record.kind === 'sleep') {
      const wakeAtMs = decodeUint(ref.bytes!)
      assert(wakeAtMs !== undefined, 'a sleep record holds its wake time')
      if (this.held === undefined && !this.memoMap.has(wakeId(record.k)) && !this.recording.has(wakeId(record.k))) this.armed.set(record.k, wakeAtMs)
      this.event({ type: 'run:timer:started', runId, atMs: now, timerId: id, wakeAtMs })
    } else {
      const seqs = this.resolveWaits(id, ref)
      this.event(record.kind === 'wake'
        ? { type: 'run:timer:fired', runId, atMs: now, timerId: sleepId(record.k), seqs }
        : { type: 'run:signal:received', runId, atMs: now, name: record.name, signalId: id, bytes: ref.bytes!.byteLength, seqs })
      this.maybeActivate(now)
    }
    this.check()
    return 'accepted'
  }

  handleSignal (name: string, value: Uint8Array, nowMs: number): OutcomeVerdict {
    const problem = signalNameProblem(name)
    if (problem !== undefined) throw new InvalidInputError(`signal name ${problem}`, { hint: 'name the signal the workflow waits for with signal(name): letters, digits, \'_\', \'.\', \'-\'' })
    assert(value instanceof Uint8Array, 'a signal value is dag-cbor bytes')
    if (value.byteLength > SIGNAL_VALUE_BYTES_MAX) {
      throw new TooLargeError('the signal value', value.byteLength, SIGNAL_VALUE_BYTES_MAX, { hint: 'send a small value; put bulk data in a blob (`rhizome blob put`) and signal its CID' })
    }
    const now = this.advance(nowMs)
    if (this.isOver()) return 'late'
    assert(this.state === 'running', 'signals arrive for a started run')
    if (this.distinctIds() >= this.s.memoEntriesMax) throw new RunHistoryLimitError('memoEntriesMax', this.s.memoEntriesMax)
    if (!this.recordFits(value.byteLength)) throw new RunHistoryLimitError('recordBytesMax', RUN_RECORD_BYTES_MAX)
    const n = this.signalsReceived.get(name) ?? 0
    this.signalsReceived.set(name, n + 1)
    this.startRecord(signalId(name, n), value, now)
    this.check()
    return 'accepted'
  }

  poll (): RunOutput | undefined {
    return this.outputs.poll()
  }

  nextTimeoutMs (): number | undefined {
    if (this.state !== 'running') return undefined
    assert(this.startedMs !== undefined, 'a running run has a start time')
    let next = this.startedMs + this.s.runTimeoutMs
    if (this.outstandingSinceMs !== undefined) next = Math.min(next, this.outstandingSinceMs + this.s.activationTimeoutMs)
    for (const wakeAtMs of this.armed.values()) next = Math.min(next, wakeAtMs)
    return next
  }

  status (): RunStatus {
    return this.state
  }

  memo (): MemoEntry[] {
    return Array.from(this.memoMap, ([id, result]) => ({ id, result: copyRef(result) }))
  }

  counts (): RunCounts {
    return {
      activations: this.activations,
      commands: this.commands,
      scheduled: this.scheduled,
      memoEntries: this.memoMap.size,
      inFlight: this.inFlight.size,
      argsBytes: this.argsBytes,
      memoInlineBytes: this.memoInlineBytes,
      timersArmed: this.armed.size,
      recordsPending: this.recording.size,
      recordBytes: this.recordBytes,
      checksOpen: this.checks.size
    }
  }

  private handleOutcome (kind: 'task' | 'child', id: string, outcome: Outcome, nowMs: number): OutcomeVerdict {
    const now = this.advance(nowMs)
    if (this.isOver()) return 'late'
    assert(this.state === 'running', 'outcomes arrive for a started run')
    const pending = this.inFlight.get(id)
    assert(pending !== undefined && pending.kind === kind, `an outcome arrives once, for a ${kind} in flight`)
    this.inFlight.delete(id)
    const runId = this.s.runId
    if (outcome.ok) {
      checkRef(outcome.result)
      const result = copyRef(outcome.result)
      this.remember(id, result)
      for (const seq of pending.seqs) this.ready.push({ seq, ok: true, result })
      const seqs = [...pending.seqs]
      this.event(kind === 'task'
        ? { type: 'run:task:accepted', runId, atMs: now, taskId: id, cid: result.cid, peer: result.peer, inlineBytes: result.bytes?.byteLength ?? 0, scheduledAtMs: pending.sinceMs, seqs }
        : { type: 'run:child:accepted', runId, atMs: now, childRunId: id, cid: result.cid, peer: result.peer, startedAtMs: pending.sinceMs, seqs })
    } else {
      checkFailure(outcome.error)
      const error = { ...outcome.error }
      this.failures.set(id, error)
      for (const seq of pending.seqs) this.ready.push({ seq, ok: false, error })
      const seqs = [...pending.seqs]
      this.event(kind === 'task'
        ? { type: 'run:task:failed', runId, atMs: now, taskId: id, error, scheduledAtMs: pending.sinceMs, seqs }
        : { type: 'run:child:failed', runId, atMs: now, childRunId: id, error, startedAtMs: pending.sinceMs, seqs })
    }
    if (this.holding) return 'accepted'
    this.maybeActivate(now)
    this.check()
    return 'accepted'
  }

  /** One command of an activation. False if it ended the run (a history limit). */
  private command (command: Command, now: number): boolean {
    assert(typeof command === 'object' && command !== null, 'a command is an object')
    assert(COMMAND_TYPES.has(command.type), 'a command is a call, a child start, a sleep or a signal wait')
    assert(Number.isSafeInteger(command.seq) && command.seq > this.lastSeq, 'seqs grow within one execution of the code')
    this.lastSeq = command.seq
    this.commands += 1
    if (this.commands > this.s.commandsMax) {
      this.fail(new RunHistoryLimitError('commandsMax', this.s.commandsMax).toData(), now)
      return false
    }
    if (command.type === 'sleep') return this.sleep(command, now)
    if (command.type === 'signal') return this.waitSignal(command)
    assert(command.args instanceof Uint8Array, 'command args are dag-cbor bytes')
    this.argsBytes += command.args.byteLength
    if (this.argsBytes > this.s.argsBytesMax) {
      this.fail(new RunHistoryLimitError('argsBytesMax', this.s.argsBytesMax).toData(), now)
      return false
    }
    if (command.type === 'call') return this.call(command, now)
    return this.child(command, now)
  }

  private call (command: CallCommand, now: number): boolean {
    assert(isId(command.taskId) && isId(command.fn) && typeof command.export === 'string', 'a call names its task, function and export')
    const inputs = command.inputs ?? []
    assert(Array.isArray(inputs) && inputs.every(isId), 'call inputs are CID strings')
    const { seq, taskId } = command
    const runId = this.s.runId
    const from = this.reuse(taskId, seq)
    if (from !== undefined) {
      this.event({ type: 'run:task:reused', runId, atMs: now, seq, taskId, from })
      return true
    }
    if (!this.admitNew(now)) return false
    this.inFlight.set(taskId, { kind: 'task', id: taskId, seqs: [seq], sinceMs: now })
    this.scheduled += 1
    this.emit({ type: 'schedule', task: { taskId, fn: command.fn, export: command.export, args: command.args, inputs: [...inputs] } })
    this.event({ type: 'run:task:scheduled', runId, atMs: now, seq, taskId, fn: command.fn, export: command.export, inputs: [...inputs] })
    return true
  }

  private child (command: ChildCommand, now: number): boolean {
    assert(isId(command.runId) && isId(command.workflow) && typeof command.export === 'string', 'a child start names its run, workflow and export')
    const { seq, runId: childRunId } = command
    const runId = this.s.runId
    const refusal = childRunId === runId || this.ancestorSet.has(childRunId)
      ? new WorkflowCycleError(childRunId)
      : this.s.ancestors.length + 1 > this.s.childDepthMax ? new WorkflowDepthError(this.s.childDepthMax) : undefined
    if (refusal !== undefined) {
      const error = refusal.toData()
      this.ready.push({ seq, ok: false, error })
      this.event({ type: 'run:child:refused', runId, atMs: now, seq, childRunId, error })
      return true
    }
    const from = this.reuse(childRunId, seq)
    if (from !== undefined) {
      this.event({ type: 'run:child:reused', runId, atMs: now, seq, childRunId, from })
      return true
    }
    if (!this.admitNew(now)) return false
    this.inFlight.set(childRunId, { kind: 'child', id: childRunId, seqs: [seq], sinceMs: now })
    this.scheduled += 1
    const ancestors = [...this.s.ancestors, runId]
    this.emit({ type: 'start-child', child: { runId: childRunId, workflow: command.workflow, export: command.export, args: command.args, ancestors } })
    this.event({ type: 'run:child:started', runId, atMs: now, seq, childRunId, workflow: command.workflow, export: command.export })
    return true
  }

  /** Answer a seq without new work if the id is known; how, or undefined if it is new. */
  private reuse (id: string, seq: number): 'memo' | 'failure' | 'in-flight' | undefined {
    const result = this.memoMap.get(id)
    if (result !== undefined) {
      this.ready.push({ seq, ok: true, result })
      return 'memo'
    }
    const error = this.failures.get(id)
    if (error !== undefined) {
      this.ready.push({ seq, ok: false, error })
      return 'failure'
    }
    const pending = this.inFlight.get(id)
    if (pending !== undefined) {
      pending.seqs.push(seq)
      return 'in-flight'
    }
    return undefined
  }

  /**
   * The code's k-th sleep: woken already (the memo has `wake:k`) → resolved now; its deadline
   * recorded (`sleep:k`) → the timer armed at that deadline, not a new one; else the deadline
   * now + ms is recorded first, and the timer armed when it is.
   */
  private sleep (command: SleepCommand, now: number): boolean {
    assert(Number.isSafeInteger(command.ms) && command.ms >= 0 && command.ms <= RUN_DURATION_MS_LIMIT, 'a sleep is whole ms within RUN_DURATION_MS_LIMIT')
    const k = this.sleeps++
    const woke = this.memoMap.get(wakeId(k))
    if (woke !== undefined) {
      this.ready.push({ seq: command.seq, ok: true, result: woke })
      return true
    }
    this.wait(wakeId(k), command.seq)
    if (this.armed.has(k) || this.recording.has(sleepId(k)) || this.recording.has(wakeId(k))) return true
    const started = this.memoMap.get(sleepId(k))
    if (started !== undefined) {
      this.armed.set(k, decodeUint(started.bytes ?? new Uint8Array(0)) ?? now)
      return true
    }
    return this.startRecord(sleepId(k), encodeUint(now + command.ms), now)
  }

  /** The code's n-th wait for signal `name`: answered now if the n-th such signal is in the memo. */
  private waitSignal (command: SignalCommand): boolean {
    assert(signalNameProblem(command.name) === undefined, 'a signal wait names a valid signal')
    const n = this.signalWaits.get(command.name) ?? 0
    this.signalWaits.set(command.name, n + 1)
    const id = signalId(command.name, n)
    const got = this.memoMap.get(id)
    if (got !== undefined) this.ready.push({ seq: command.seq, ok: true, result: got })
    else this.wait(id, command.seq)
    return true
  }

  private wait (id: string, seq: number): void {
    const seqs = this.waits.get(id)
    if (seqs === undefined) this.waits.set(id, [seq])
    else seqs.push(seq)
  }

  /** A recorded input reached the memo: every seq waiting on it is ready. */
  private resolveWaits (id: string, result: ResultRef): number[] {
    const seqs = this.waits.get(id) ?? []
    this.waits.delete(id)
    for (const seq of seqs) this.ready.push({ seq, ok: true, result })
    return [...seqs]
  }

  /** Due timers fire: each records its `wake:k`, in deadline order. */
  private fireTimers (now: number): void {
    const due = [...this.armed].filter(([, at]) => at <= now).sort((a, b) => a[1] - b[1] || a[0] - b[0])
    for (const [k] of due) {
      this.armed.delete(k)
      if (!this.startRecord(wakeId(k), CBOR_NULL, now)) return
    }
  }

  /** Emit `record` for a new recorded input, if the run has room for it; else the run ends. */
  private startRecord (id: string, value: Uint8Array, now: number): boolean {
    if (!this.admitNew(now)) return false
    if (!this.recordFits(value.byteLength)) {
      this.fail(new RunHistoryLimitError('recordBytesMax', RUN_RECORD_BYTES_MAX).toData(), now)
      return false
    }
    this.recording.set(id, value.byteLength)
    this.emit({ type: 'record', id, value })
    return true
  }

  private recordFits (bytes: number): boolean {
    let pending = 0
    for (const b of this.recording.values()) pending += b
    return this.recordBytes + pending + bytes <= RUN_RECORD_BYTES_MAX
  }

  private distinctIds (): number {
    return this.memoMap.size + this.failures.size + this.inFlight.size + this.recording.size
  }

  /** Room for one more distinct id, or the run ends (checked before work starts whose result could not be kept). */
  private admitNew (now: number): boolean {
    if (this.distinctIds() < this.s.memoEntriesMax) return true
    this.fail(new RunHistoryLimitError('memoEntriesMax', this.s.memoEntriesMax).toData(), now)
    return false
  }

  private remember (id: string, result: ResultRef): void {
    assert(!this.memoMap.has(id), 'the memo is grow-only: an id is accepted once')
    const bytes = result.bytes?.byteLength ?? 0
    const record = parseRecordId(id)
    if (record !== undefined) {
      // No blob store holds a recorded input: its bytes stay, on a budget of their own.
      assert(result.bytes !== undefined, 'a recorded input keeps its bytes')
      this.memoMap.set(id, result)
      this.recordBytes += bytes
      if (record.kind === 'signal') this.signalsReceived.set(record.name, Math.max(this.signalsReceived.get(record.name) ?? 0, record.n + 1))
      return
    }
    if (bytes > 0 && this.memoInlineBytes + bytes <= this.s.memoInlineBytesMax) {
      this.memoMap.set(id, result)
      this.memoInlineBytes += bytes
    } else {
      this.memoMap.set(id, { cid: result.cid, peer: result.peer })
    }
  }

  private restore (entry: MemoEntry, i: number, fixes: Array<[string, ResultRef]>): void {
    if (typeof entry !== 'object' || entry === null || !isId(entry.id)) throw new ConfigError(`memo[${i}].id`, 'must be a task or child run id string')
    if (!isRef(entry.result)) throw new ConfigError(`memo[${i}].result`, 'must be { cid, peer, bytes? } with non-empty cid and peer strings')
    const fixed = parseFixEntryId(entry.id)
    if (fixed !== undefined) {
      if (fixes.some(([taskId]) => taskId === fixed)) throw new ConfigError(`memo[${i}].id`, `${entry.id} appears twice`)
      fixes.push([fixed, copyRef(entry.result)])
      return
    }
    if (this.memoMap.has(entry.id)) throw new ConfigError(`memo[${i}].id`, `${entry.id} appears twice`)
    const record = parseRecordId(entry.id)
    if (record !== undefined) {
      if (entry.result.bytes === undefined) throw new ConfigError(`memo[${i}].result.bytes`, `${entry.id} is a recorded input: its bytes travel with it`)
      if (record.kind === 'sleep' && decodeUint(entry.result.bytes) === undefined) throw new ConfigError(`memo[${i}].result.bytes`, `${entry.id} must hold its wake time (a dag-cbor unsigned integer)`)
      if (record.kind === 'signal' && signalNameProblem(record.name) !== undefined) throw new ConfigError(`memo[${i}].id`, `${entry.id} names no valid signal`)
      if (this.recordBytes + entry.result.bytes.byteLength > RUN_RECORD_BYTES_MAX) throw new ConfigError(`memo[${i}]`, `recorded inputs exceed ${RUN_RECORD_BYTES_MAX} bytes`)
    }
    this.remember(entry.id, copyRef(entry.result))
  }

  private activate (now: number): void {
    assert(this.state === 'running' && this.outstandingSinceMs === undefined, 'one activation outstanding at a time')
    const resolutions = this.ready.sort((a, b) => a.seq - b.seq)
    this.ready = []
    const replay = this.evicted
    this.evicted = false
    this.activations += 1
    this.outstandingSinceMs = now
    this.emit({ type: 'activate', activation: this.activations, replay, resolutions })
    this.event({ type: 'run:activation', runId: this.s.runId, atMs: now, activation: this.activations, seqs: resolutions.map(r => r.seq), replay })
  }

  private fail (error: FailureData, now: number): void {
    this.end('failed', { ok: false, error }, now)
  }

  /** The run ends: cancel everything in flight (in schedule order), then `finished`. */
  private end (status: Terminal, outcome: RunOutcome, now: number): void {
    assert(this.state === 'running' || (this.state === 'created' && status === 'cancelled'), 'a run ends once')
    const runId = this.s.runId
    for (const pending of this.inFlight.values()) {
      if (pending.kind === 'task') {
        this.emit({ type: 'cancel', taskId: pending.id })
        this.event({ type: 'run:task:cancelled', runId, atMs: now, taskId: pending.id })
      } else {
        this.emit({ type: 'cancel-child', runId: pending.id })
        this.event({ type: 'run:child:cancelled', runId, atMs: now, childRunId: pending.id })
      }
    }
    this.inFlight.clear()
    this.checks.clear()
    this.held = undefined
    this.replayPending = false
    this.armed.clear()
    this.recording.clear()
    this.waits.clear()
    this.ready = []
    this.outstandingSinceMs = undefined
    this.state = status
    this.emit({ type: 'finished', outcome })
    const finished: RunEvent = {
      type: 'run:finished', runId, atMs: now, status, activations: this.activations, tasksScheduled: this.scheduled, memoEntries: this.memoMap.size
    }
    if (!outcome.ok) finished.error = outcome.error
    this.event(finished)
  }

  private isOver (): boolean {
    return this.state === 'finished' || this.state === 'continued' || this.state === 'failed' || this.state === 'cancelled'
  }

  private event (event: RunEvent): void {
    this.emit({ type: 'event', event })
  }

  private emit (output: RunOutput): void {
    this.outputs.push(output)
  }

  private advance (nowMs: number): number {
    assert(Number.isFinite(nowMs), 'nowMs is a finite number')
    if (this.clockMs === undefined || nowMs > this.clockMs) this.clockMs = nowMs
    return this.clockMs
  }

  private check (): void {
    if (this.state === 'running') {
      if (this.outstandingSinceMs === undefined) {
        assert(this.ready.length === 0, 'between activations nothing settled is left undelivered')
        assert(this.evicted || this.held !== undefined || this.inFlight.size > 0 || this.waits.size > 0, 'between activations the code waits on something in flight, a timer or a signal')
        assert(!this.replayPending, 'a replay waits only on an outstanding activation')
      }
      assert(this.held === undefined || (this.checks.size > 0 && this.outstandingSinceMs === undefined && this.armed.size === 0), 'an end is held only while checks are open, with the code done')
    } else {
      // Not started (checks may be told already) or ended (none left).
      assert(this.held === undefined && !this.replayPending, 'only a running run holds an end or a replay')
      assert(this.state === 'created' || this.checks.size === 0, 'an ended run holds no checks')
      assert(this.inFlight.size === 0 && this.ready.length === 0 && this.outstandingSinceMs === undefined, 'an ended run holds no work')
      assert(this.armed.size === 0 && this.recording.size === 0 && this.waits.size === 0, 'an ended run holds no timers or records')
    }
    assert(this.distinctIds() <= this.s.memoEntriesMax, 'distinct ids stay within memoEntriesMax')
    assert(this.checks.size <= this.memoMap.size, 'every open check names a memo entry')
    assert(this.recordBytes <= RUN_RECORD_BYTES_MAX, 'recorded inputs stay within RUN_RECORD_BYTES_MAX')
    assert(this.memoInlineBytes <= this.s.memoInlineBytesMax, 'inline memo bytes stay within memoInlineBytesMax')
  }
}

const COMMAND_TYPES: ReadonlySet<string> = new Set(['call', 'child', 'sleep', 'signal'])
const VERDICT_TYPES: ReadonlySet<string> = new Set(['open', 'confirmed', 'disproven'])

function isId (value: unknown): value is string {
  return typeof value === 'string' && value.length > 0
}

function isRef (value: unknown): value is ResultRef {
  if (typeof value !== 'object' || value === null) return false
  const ref = value as Record<string, unknown>
  return isId(ref.cid) && isId(ref.peer) && (ref.bytes === undefined || ref.bytes instanceof Uint8Array)
}

function checkRef (value: unknown): void {
  assert(isRef(value), 'an accepted result is { cid, peer, bytes? }')
}

function checkFailure (value: unknown): void {
  assert(typeof value === 'object' && value !== null, 'a failure is FailureData')
  const f = value as Record<string, unknown>
  assert(typeof f.name === 'string' && typeof f.code === 'string' && typeof f.message === 'string' && typeof f.retryable === 'boolean', 'a failure is { name, code, message, retryable }')
}

function copyRef (ref: ResultRef): ResultRef {
  return ref.bytes === undefined ? { cid: ref.cid, peer: ref.peer } : { cid: ref.cid, peer: ref.peer, bytes: ref.bytes }
}

function resolveOptions (options: RunDriverOptions): Settings {
  if (typeof options !== 'object' || options === null) throw new ConfigError('options', 'must be an object')
  if (!isId(options.runId)) throw new ConfigError('runId', 'must be a non-empty run id string')
  const ancestors = options.ancestors ?? []
  if (!Array.isArray(ancestors) || !ancestors.every(isId)) throw new ConfigError('ancestors', 'must be an array of run id strings, root first')
  const settings: Settings = {
    runId: options.runId,
    ancestors: [...ancestors],
    commandsMax: bounded(options, 'commandsMax', RUN_COUNT_LIMIT),
    memoEntriesMax: bounded(options, 'memoEntriesMax', RUN_COUNT_LIMIT),
    argsBytesMax: bounded(options, 'argsBytesMax', RUN_BYTES_LIMIT),
    memoInlineBytesMax: bounded(options, 'memoInlineBytesMax', RUN_BYTES_LIMIT),
    childDepthMax: bounded(options, 'childDepthMax', CHILD_DEPTH_LIMIT),
    activationTimeoutMs: bounded(options, 'activationTimeoutMs', RUN_DURATION_MS_LIMIT),
    runTimeoutMs: bounded(options, 'runTimeoutMs', RUN_DURATION_MS_LIMIT)
  }
  if (settings.ancestors.length > settings.childDepthMax) {
    throw new ConfigError('ancestors', `${settings.ancestors.length} levels is more than childDepthMax (${settings.childDepthMax})`)
  }
  return settings
}

type BoundedField = 'commandsMax' | 'memoEntriesMax' | 'argsBytesMax' | 'memoInlineBytesMax' | 'childDepthMax' | 'activationTimeoutMs' | 'runTimeoutMs'

function bounded (options: RunDriverOptions, field: BoundedField, max: number): number {
  const value = options[field] ?? RUN_DRIVER_DEFAULTS[field]
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new ConfigError(field, `must be an integer in 1..${max}, got ${String(value)}`)
  }
  return value
}
