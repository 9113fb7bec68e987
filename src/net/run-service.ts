/**
 * Workflow runs on the peer that drives them: the shell around the run driver
 * (src/protocol/run/). For each live run it
 *   - runs the workflow code forward in the workflow sandbox when the driver asks (`activate`),
 *     turning what the code did into driver commands: each remote call gets its task id (the CID
 *     of `{ fn, export, args }`, src/wire/task-codec.ts), each child workflow its run id;
 *   - executes each task the driver `schedule`s through `execute` (placement, retries), and feeds
 *     the outcome back; cancels what the driver cancels;
 *   - starts child runs on this peer and reports their outcome to the parent;
 *   - persists the run, its tasks, its memo and its events in SQLite (src/store/run-repo.ts), and
 *     reports progress events (`run:*`, src/api/events.ts) for the CLI and the dashboard.
 * The driver decides; this file only moves data between it, the sandbox, the network and disk.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { InvalidInputError, RhizomeError, NotFoundError, assert } from '../model/errors.ts'
import { checkEntryId, createRunDriver, fixEntryId, verifiedMemo } from '../protocol/run/index.ts'
import { taskId as computeTaskId } from '../wire/task-codec.ts'
import { decodeRemoteValue } from '../wire/value.ts'
import { toJson } from '../api/dag-json.ts'
import { Lifecycle } from './lifecycle.ts'
import { RUN_EVENT_DEPS_MAX } from '../api/events.ts'
import type { ProgressEvent } from '../api/events.ts'
import type { RunReport, RunSummary, RunTaskReport } from '../api/types.ts'
import type { FailureData } from '../model/errors.ts'
import type { Logger } from '../model/log.ts'
import type { ActivationResult, ChildSpec, Command, Outcome, Resolution, ResultRef, RunDriver, RunEvent, RunOutcome, RunOutput, TaskSpec } from '../protocol/run/index.ts'
import type { WorkflowRun, WorkflowOpenOptions, Resolution as SandboxResolution, ActivationResult as SandboxActivation } from '../sandbox/index.ts'
import type { RunRepo, RunRow, RunTaskRow } from '../store/index.ts'
import { RESULT_ENTRY_ID } from '../protocol/home/index.ts'
import { MEMO_INLINE_BYTES_MAX } from '../protocol/memo/index.ts'
import type { MemoEntry as HomeMemoEntry, MemoValue } from '../protocol/memo/index.ts'
import type { MemoEntry as DriverMemoEntry } from '../protocol/run/index.ts'
import type { RunSpec } from './home-service.ts'
import { parseRunSpec } from '../wire/home-codec.ts'
import type { HomeStatus } from '../wire/home-codec.ts'

/** Runs driven at once by one peer: each holds a sandbox context and its tasks' state. */
export const LIVE_RUNS_MAX = 64
/** Progress events kept per live run for late subscribers (`GET /v1/runs/:id/events`). */
export const RUN_EVENTS_KEPT = 10_000
/** Interrupted runs closed per status when the service starts: one `listRuns` page (its maximum). */
const INTERRUPTED_RUNS_CLOSED_MAX = 10_000
/** Result bytes stored inline with a finished run (larger results stay a blob, by CID). */
const RUN_RESULT_INLINE_BYTES_MAX = 256 * 1024

/** A run was asked for an export its workflow bundle does not have. */
export class WorkflowExportNotFoundError extends RhizomeError {
  constructor (workflow: string, exportName: string, available: string[]) {
    const list = available.length > 0 ? available.join(', ') : 'none'
    super('ERR_EXPORT_NOT_FOUND', `workflow ${workflow} has no export ${JSON.stringify(exportName)} (it exports ${list})`, {
      hint: `start one of the workflow's exports: ${list}`
    })
    this.name = 'ExportNotFoundError'
  }
}

/** What to do when the workflow code itself threw (the sandbox's hint speaks of a function). */
const WORKFLOW_THREW_HINT = 'the workflow code itself threw: fix the workflow or its arguments (a call that fails and is not caught ends the run with that call\'s own error)'

/** The peer driving a run stopped before the run ended. */
export class RunInterruptedError extends RhizomeError {
  constructor (runId: string) {
    super('ERR_RUN_INTERRUPTED', `run ${runId} was interrupted: the peer driving it stopped before it ended`, {
      hint: 'start it again (`rhizome run FILE EXPORT ARGS...`); runs that survive their driver come with durable runs'
    })
    this.name = 'RunInterruptedError'
  }
}

export interface RunTask {
  taskId: string
  fn: CID
  export: string
  args: unknown[]
  /** The arguments' dag-cbor size (the run already holds them encoded). */
  argsBytes?: number
  /** CIDs of Ref arguments and the peer that made each (placement and fetching prefer it). */
  inputs: Array<{ cid: string, peer: string }>
  /** Only Refs to the result are wanted: its bytes need not come to this peer. */
  ref: boolean
  /** The peer that is running (or ran) this task for an earlier driver of the run: ask it first. */
  attach?: string
}

export interface TaskExecution {
  resultCid: string
  /** The result's dag-cbor bytes, when they came here (absent for a ref-only task). */
  bytes?: Uint8Array
  peer: string
  attempts: number
  timings: { queueMs: number, fetchMs: number, runMs: number, totalMs: number }
  /** A spot check of this result is under way: a verdict follows (`RunService.verdict`). */
  checking?: boolean
}

/** What became of an accepted result once checked (src/net/scheduler-service.ts TaskVerdict). */
export type ResultVerdict =
  | { type: 'open' }
  | { type: 'confirmed' }
  | { type: 'disproven', result: { resultCid: string, bytes?: Uint8Array, peer: string } }

/** The home sets of durable runs (src/net/home-service.ts), as the run service uses them. */
export interface RunHome {
  /** Open a run: resolves once a majority of its home set keeps it. */
  open: (runId: string, spec: RunSpec) => Promise<string[]>
  /** Replicate an entry of a run driven here; false if this peer no longer drives it. */
  localEntry: (runId: string, entry: { id: string, value: MemoValue }) => boolean
  /** What the run's home set knows (this peer's, or the first reachable peer that keeps it). */
  findRun: (runId: string) => Promise<HomeStatus>
  /** The first other peer that has the run settled (or any that knows it). */
  findSettled: (runId: string) => Promise<HomeStatus>
  /** True if this peer keeps the run in a home set (it is durable, not interrupted by a restart). */
  keeps: (runId: string) => boolean
  /** The run's home set, if this peer keeps the run. */
  homeSetOf: (runId: string) => string[] | undefined
  /** Send a signal to whoever drives the run now. */
  relaySignal: (runId: string, name: string, value: Uint8Array) => Promise<void>
  /** A run whose open failed: stop its machine here. */
  forget: (runId: string) => void
}

export interface RunServiceComponents {
  runs: RunRepo
  /** A blob this peer holds, or fetches (verified) from `from`: a result, a run's outcome. */
  readBlob: (cid: CID, from?: string) => Promise<Uint8Array>
  /** True if this peer holds the blob. */
  hasBlob: (cid: CID) => Promise<boolean>
  /** Store bytes as a blob here (a run outcome too large to travel inline in the memo). */
  putBlob: (bytes: Uint8Array) => Promise<CID>
  /** Durable runs. Absent: runs live with the peer that drives them (unit tests of the shell). */
  home?: RunHome
  /** The workflow bundle deployed as `id` (fetched and verified if this peer lacks it), and the exports its manifest lists. */
  loadWorkflow: (id: CID, options: { signal: AbortSignal }) => Promise<{ code: Uint8Array, manifest: { exports: string[] } }>
  openWorkflow: (options: WorkflowOpenOptions) => Promise<WorkflowRun>
  /** Which peer holds each of these tasks (running it, or its result): after a takeover, the
   *  tasks the old driver had in flight are asked of their worker again, not run elsewhere. */
  locateTasks?: (taskIds: string[]) => Promise<Map<string, string>>
  /** Run one task somewhere (placement, retries): resolves with the accepted result. */
  execute: (task: RunTask, options: { signal: AbortSignal, onAttempt: (attempt: number, peer: string) => void }) => Promise<TaskExecution>
  emit: (event: ProgressEvent) => void
  /** The signed answers kept for a task (src/store/verify-repo.ts), for the report's provenance. */
  attestationsOf?: (taskId: string) => Array<{ peerId: string, role: string }>
  selfId: string
  log: Logger
}

export class RunService {
  private readonly c: RunServiceComponents
  private readonly lifecycle = new Lifecycle('the run service')
  private readonly live = new Map<string, LiveRun>()

  constructor (components: RunServiceComponents) {
    this.c = components
  }

  start (): void {
    this.lifecycle.start()
    this.closeInterrupted()
  }

  /** Runs by status (all this peer recorded), runs driven here now, and their memo entries: one pass over the live runs. */
  stats (): { byStatus: Record<string, number>, driving: number, memoEntries: number } {
    let memoEntries = 0
    for (const run of this.live.values()) memoEntries += run.driver.counts().memoEntries
    return { byStatus: this.c.runs.countByStatus(), driving: this.live.size, memoEntries }
  }

  /** A verdict on an accepted task result (verification): every run driven here that used it hears it. */
  verdict (taskId: string, verdict: ResultVerdict): void {
    for (const run of this.live.values()) run.verdict(taskId, verdict)
  }

  /**
   * Runs this peer was driving when it stopped (or died) cannot go on: their workflow context and
   * tasks in flight are gone. Say so, instead of leaving them 'running' forever. (Durable runs —
   * a home set that takes a run over — are the next step; until then a run lives with its driver.)
   */
  private closeInterrupted (): void {
    for (const status of ['created', 'running'] as const) {
      for (const row of this.c.runs.listRuns({ status, limit: INTERRUPTED_RUNS_CLOSED_MAX })) {
        if (row.driverPeer !== this.c.selfId || this.c.home?.keeps(row.runId) === true) continue
        this.c.runs.finishRun(row.runId, { status: 'failed', finishedMs: Date.now(), error: new RunInterruptedError(row.runId).toData() })
      }
    }
  }

  async stop (): Promise<void> {
    this.lifecycle.stop()
    for (const run of this.live.values()) run.close()
    this.live.clear()
  }

  /** Start a run of `exportName` of the workflow `workflow` with `args`; resolves once it is under way. */
  async startRun (workflow: CID, exportName: string, args: unknown[]): Promise<{ runId: string }> {
    if (this.lifecycle.stopping) throw new RhizomeError('ERR_ABORTED', 'the peer is stopping', { retryable: true })
    if (this.live.size >= LIVE_RUNS_MAX) throw new RhizomeError('ERR_PEER_BUSY', `this peer drives ${LIVE_RUNS_MAX} runs already`, { retryable: true, hint: 'wait for a run to finish, or start it on another peer' })
    const nonce = crypto.getRandomValues(new Uint8Array(16))
    const runId = (await cidOf({ workflow, export: exportName, args, nonce })).toString()
    const { code, manifest } = await this.c.loadWorkflow(workflow, { signal: this.lifecycle.signal })
    // Refused here, by name and with the list, rather than as a run that fails at once: the
    // caller typed the name, and nothing has been recorded yet.
    if (!manifest.exports.includes(exportName)) throw new WorkflowExportNotFoundError(workflow.toString(), exportName, manifest.exports)
    if (this.c.home === undefined) {
      await this.begin({ runId, workflow: workflow.toString(), exportName, args, code, ancestors: [] })
      return { runId }
    }
    // Durable: the home set keeps the run before the client hears of it; this peer, first in
    // the home set, wins the lease at once and drives (`drive`, below).
    const startedMs = Date.now()
    this.c.runs.createRun({ runId, workflow: workflow.toString(), export: exportName, args: dagCbor.encode(args), status: 'running', startedMs, driverPeer: this.c.selfId })
    try {
      await this.c.home.open(runId, { workflow: workflow.toString(), export: exportName, args: dagCbor.encode(args), startedMs, opener: this.c.selfId })
    } catch (err) {
      // Not started: too few peers keep it. Said so here too, not left 'running' forever.
      this.c.home.forget(runId)
      this.c.runs.finishRun(runId, { status: 'failed', finishedMs: Date.now(), error: failureOf(err) })
      throw err
    }
    return { runId }
  }

  // --- durable runs: what the home set says (src/net/home-service.ts HomeRuns) ------------------

  /** This peer keeps a durable run in its home set: it knows the run, and answers for it. */
  opened (runId: string, spec: RunSpec): void {
    this.c.runs.createRun({ runId, workflow: spec.workflow, export: spec.export, args: spec.args, status: 'running', startedMs: spec.startedMs, driverPeer: spec.opener })
  }

  /** This peer won the run's lease and gathered its memo: drive it from there. */
  drive (runId: string, spec: RunSpec, epoch: number, memo: HomeMemoEntry[]): void {
    if (this.lifecycle.stopping) return
    this.live.get(runId)?.close()
    this.live.delete(runId)
    this.drivingEpochs.set(runId, epoch)
    this.resume(runId, spec, epoch, memo).catch((err: unknown) => {
      this.c.log.warn('could not drive a durable run', { run: runId, epoch, error: (err as Error).message })
    })
  }

  private async resume (runId: string, spec: RunSpec, epoch: number, memo: HomeMemoEntry[]): Promise<void> {
    const { code } = await this.c.loadWorkflow(CID.parse(spec.workflow), { signal: this.lifecycle.signal })
    // Results still under check when the last driver stopped are left out: the replay runs them again.
    const driverMemo = await Promise.all(verifiedMemo(memo.filter(e => e.id !== RESULT_ENTRY_ID)).map(async e => await driverEntryOf(e, this.c.readBlob)))
    const args = dagCbor.decode(spec.args) as unknown[]
    if (!this.c.runs.createRun({ runId, workflow: spec.workflow, export: spec.export, args: spec.args, parentRunId: spec.parent, status: 'running', startedMs: spec.startedMs, driverPeer: this.c.selfId })) {
      this.c.runs.setRunDriver(runId, this.c.selfId)
    }
    // Stopped, or driving a newer epoch, while the code loaded: this drive is stale.
    if (this.drivingEpochs.get(runId) !== epoch || this.lifecycle.stopping) return
    const run = new LiveRun(this, this.c, { runId, workflow: spec.workflow, exportName: spec.export, args, code, ancestors: spec.ancestors ?? [], durable: { epoch, memo: driverMemo, startedMs: spec.startedMs } })
    this.live.set(runId, run)
    for (const listener of this.waiters.get(runId) ?? []) run.listen(listener)
    this.waiters.delete(runId)
    if (epoch === 1) run.report({ type: 'run:started', runId, workflow: spec.workflow, export: spec.export, atMs: Date.now() })
    run.report({ type: 'run:driver', runId, peer: this.c.selfId, epoch, memoEntries: driverMemo.length, atMs: Date.now() })
    run.driver.handleStart(Date.now())
    run.pump()
  }

  /** Entries of a run driven here are durable: the code may see them (in one activation). */
  deliver (runId: string, ids: string[]): void {
    this.live.get(runId)?.delivered(ids)
  }

  /** This peer lost the run's lease (or was fenced): stop driving at once; the run goes on elsewhere. */
  stopDriving (runId: string, reason: 'lost-lease' | 'fenced'): void {
    this.drivingEpochs.delete(runId)
    const run = this.live.get(runId)
    if (run === undefined) return
    run.report({ type: 'run:driver:lost', runId, peer: this.c.selfId, reason, atMs: Date.now() })
    // Whoever follows the run here keeps following it: it settles here, or comes back.
    const listeners = this.waiters.get(runId) ?? new Set()
    for (const listener of run.takeListeners()) listeners.add(listener)
    this.waiters.set(runId, listeners)
    run.close()
    this.live.delete(runId)
  }

  /** The run's outcome is in this peer's memo replica: record it here, and tell whoever follows the run. */
  runSettled (runId: string, spec: RunSpec, outcome: HomeMemoEntry): void {
    const run = this.live.get(runId)
    if (run !== undefined && !run.finishing) {
      // Driven here but over elsewhere (a newer driver finished it): this copy stops.
      run.close()
      this.live.delete(runId)
    }
    if (run?.finishing === true) return // our own outcome: finished by `deliver`
    this.recordOutcome(runId, spec, outcome.value).catch((err: unknown) => {
      this.c.log.warn('could not record a settled run', { run: runId, error: (err as Error).message })
    })
  }

  private async recordOutcome (runId: string, spec: RunSpec | undefined, value: MemoValue): Promise<void> {
    const bytes = value.bytes ?? await this.c.readBlob(CID.parse(value.cid), value.peer)
    await checkCid(bytes, value.cid)
    const record = dagCbor.decode(bytes) as OutcomeRecord
    if (spec !== undefined) this.c.runs.createRun({ runId, workflow: spec.workflow, export: spec.export, args: spec.args, status: 'running', startedMs: spec.startedMs, driverPeer: value.peer })
    const row = this.c.runs.getRun(runId)
    if (row !== undefined && row.status !== 'running' && row.status !== 'created') return
    this.c.runs.setRunDriver(runId, value.peer) // the peer that drove it to its end
    const finishedMs = record.atMs
    if (record.status === 'finished') this.c.runs.finishRun(runId, { status: 'finished', finishedMs, result: record.value })
    else if (record.status === 'continued') {
      this.c.runs.appendEvent(runId, 'run:continued', finishedMs, { nextRunId: record.continuedAs })
      this.c.runs.finishRun(runId, { status: 'continued', finishedMs })
    } else this.c.runs.finishRun(runId, { status: record.status, finishedMs, error: record.error })
    const event: ProgressEvent = { type: 'run:finished', runId, status: record.status, error: record.error, continuedAs: record.continuedAs, atMs: finishedMs }
    this.c.emit(event)
    for (const listener of this.waiters.get(runId) ?? []) listener(event)
    this.waiters.delete(runId)
  }

  /**
   * Make a run known here that only other peers keep: a client may ask any peer about any run.
   * The peer finds the run's home set, records what it learns (and the outcome, if it ended), and
   * from then on answers like a home-set peer (following the run by asking the others). A run
   * nobody reachable knows stays unknown: `report` and `subscribe` then say so.
   */
  async locate (runId: string): Promise<void> {
    const home = this.c.home
    if (home === undefined || this.live.has(runId) || this.c.runs.getRun(runId) !== undefined || home.keeps(runId)) return
    const found = await home.findRun(runId)
    if (!found.known || found.spec === undefined) return
    const spec = parseRunSpec(found.spec)
    this.c.runs.createRun({ runId, workflow: spec.workflow, export: spec.export, args: spec.args, status: 'running', startedMs: spec.startedMs, driverPeer: found.driver ?? spec.opener })
    if (found.state === 'settled' && found.outcome !== undefined) await this.recordOutcome(runId, undefined, found.outcome)
  }

  /** A signal relayed by the home set for a run driven here. */
  signalFromHome (runId: string, name: string, value: Uint8Array): void {
    const run = this.live.get(runId)
    if (run === undefined) throw new NotFoundError(`this peer does not drive run ${runId}`, { retryable: true, hint: 'the run changed driver; send the signal again' })
    if (run.driver.handleSignal(name, value, Date.now()) === 'late') throw new RhizomeError('ERR_RUN_ENDED', `run ${runId} is not running any more (it has ended): it takes no more signals`, { hint: 'see its result with `rhizome run-status`' })
    run.pump()
  }

  /** The lease epoch each durable run is (about to be) driven in here: a drive whose code is still
   *  loading when a newer one (or a stop) comes is dropped. */
  private readonly drivingEpochs = new Map<string, number>()

  /** Followers of runs kept here but not driven here: told when the run settles. */
  private readonly waiters = new Map<string, Set<(event: ProgressEvent) => void>>()

  private async begin (spec: LiveRunSpec): Promise<LiveRun> {
    const run = new LiveRun(this, this.c, spec)
    this.live.set(spec.runId, run)
    this.c.runs.createRun({ runId: spec.runId, workflow: spec.workflow, export: spec.exportName, args: dagCbor.encode(spec.args), parentRunId: spec.parent?.runId, status: 'running', startedMs: Date.now(), driverPeer: this.c.selfId })
    run.report({ type: 'run:started', runId: spec.runId, workflow: spec.workflow, export: spec.exportName, atMs: Date.now() })
    run.driver.handleStart(Date.now())
    run.pump()
    return run
  }

  /**
   * Go on from `from` as a new run (continueAsNew): the same workflow export with `args`, a fresh
   * history and a new run id; a child run's parent then waits on the new run. Resolves with its id.
   */
  async continueRun (from: LiveRunSpec, args: unknown[]): Promise<string> {
    if (this.lifecycle.stopping) throw new RhizomeError('ERR_ABORTED', 'the peer is stopping', { retryable: true })
    const nonce = crypto.getRandomValues(new Uint8Array(16))
    const runId = (await cidOf({ workflow: CID.parse(from.workflow), export: from.exportName, args, nonce, previous: CID.parse(from.runId) })).toString()
    const settleAs = from.parent === undefined ? undefined : (from.settleAs ?? from.runId)
    await this.begin({ runId, workflow: from.workflow, exportName: from.exportName, args, code: from.code, ancestors: from.ancestors, parent: from.parent, settleAs })
    return runId
  }

  /** A durable run continues as new: open the next run durably (once: its id is derived, and a
   *  run some peer keeps already is not opened again). Resolves with its id. */
  async openContinuation (from: LiveRunSpec, args: unknown[]): Promise<string> {
    const home = this.c.home!
    const runId = (await cidOf({ workflow: CID.parse(from.workflow), export: from.exportName, args, previous: CID.parse(from.runId) })).toString()
    await this.locate(runId)
    if (this.c.runs.getRun(runId) === undefined && !home.keeps(runId)) {
      const startedMs = Date.now()
      const argsBytes = dagCbor.encode(args)
      this.c.runs.createRun({ runId, workflow: from.workflow, export: from.exportName, args: argsBytes, status: 'running', startedMs, driverPeer: this.c.selfId })
      const spec: RunSpec = { workflow: from.workflow, export: from.exportName, args: argsBytes, startedMs, opener: this.c.selfId }
      if (from.ancestors.length > 0) spec.ancestors = from.ancestors
      await home.open(runId, spec)
    }
    return runId
  }

  /** A child run the driver of `parent` asked for: same bundle, driven here too. */
  startChild (parent: LiveRun, child: ChildSpec): void {
    if (this.c.home !== undefined && parent.durable) {
      this.startDurableChild(parent, child).catch((err: unknown) => { parent.childSettled(child.runId, { ok: false, error: failureOf(err) }) })
      return
    }
    const args = dagCbor.decode(child.args) as unknown[]
    this.begin({ runId: child.runId, workflow: child.workflow, exportName: child.export, args, code: parent.code, ancestors: child.ancestors, parent })
      .catch((err: unknown) => { parent.childSettled(child.runId, { ok: false, error: failureOf(err) }) })
  }

  /**
   * A durable run's child is durable too: it has its own home set (this peer first: it drives the
   * child, as it drives the parent), and the parent hears its outcome like any follower of it. A
   * parent replayed after a takeover asks for the same child id again: if some peer keeps it
   * already, the child goes on (or has ended) where it is, and is not opened a second time.
   */
  private async startDurableChild (parent: LiveRun, child: ChildSpec): Promise<void> {
    const home = this.c.home!
    const runId = child.runId
    await this.locate(runId)
    if (this.c.runs.getRun(runId) === undefined && !home.keeps(runId)) {
      const startedMs = Date.now()
      this.c.runs.createRun({ runId, workflow: child.workflow, export: child.export, args: child.args, parentRunId: parent.runId, status: 'running', startedMs, driverPeer: this.c.selfId })
      await home.open(runId, { workflow: child.workflow, export: child.export, args: child.args, startedMs, opener: this.c.selfId, parent: parent.runId, ancestors: child.ancestors })
    }
    this.awaitChild(parent, runId)
  }

  /** Tell `parent` how its durable child ended, once it has (at once if it has). */
  private awaitChild (parent: LiveRun, runId: string, settleAs = runId): void {
    let told = false
    const tell = (): void => {
      if (told) return
      told = true
      queueMicrotask(() => { unsubscribe() })
      const row = this.c.runs.getRun(runId)
      const next = row?.status === 'continued' ? this.report(runId).continuedAs : undefined
      if (next !== undefined) {
        // The child went on as another run: the parent waits for the chain's end, under the id it knows.
        this.locate(next).then(() => { this.awaitChild(parent, next, settleAs) }, (err: unknown) => { parent.childSettled(settleAs, { ok: false, error: failureOf(err) }) })
        return
      }
      if (row?.status === 'finished' && row.result !== undefined) {
        const bytes = row.result
        cidOfBytes(bytes).then(
          cid => { parent.childSettled(settleAs, { ok: true, result: { cid: cid.toString(), bytes, peer: row.driverPeer } }) },
          (err: unknown) => { parent.childSettled(settleAs, { ok: false, error: failureOf(err) }) }
        )
        return
      }
      const error = row?.error ?? new RhizomeError('ERR_INTERNAL', `child run ${runId} ended (${row?.status ?? 'unknown'}) without a result this peer can read`).toData()
      parent.childSettled(settleAs, { ok: false, error })
    }
    const unsubscribe = this.subscribe(runId, (event) => { if (event.type === 'run:finished') tell() })
    if (told) unsubscribe()
  }

  ended (run: LiveRun): void {
    this.live.delete(run.runId)
    this.drivingEpochs.delete(run.runId)
  }

  cancel (runId: string): void {
    // A child run that continued as new lives on under another id; its parent cancels the one it knows.
    const run = this.live.get(runId) ?? [...this.live.values()].find(r => r.settlesAs === runId)
    if (run === undefined) {
      if (this.c.runs.getRun(runId) === undefined) throw new NotFoundError(`run ${runId} is not known to this peer`, { hint: 'see `rhizome runs`' })
      return // already ended: nothing to cancel
    }
    run.driver.handleCancel(Date.now())
    run.pump()
  }

  list (options: { limit?: number, status?: RunSummary['status'] } = {}): RunSummary[] {
    return this.c.runs.listRuns(options).map(summaryOf)
  }

  /** What the run did: its status, result or error, its tasks, and its critical path. */
  report (runId: string): RunReport {
    const row = this.c.runs.getRun(runId)
    if (row === undefined) throw new NotFoundError(`run ${runId} is not known to this peer`, { hint: 'see `rhizome runs`; a run is known to the peer that drives it' })
    const tasks = this.c.runs.listTasks(runId).map(taskReportOf)
    this.live.get(runId)?.depsInto(tasks)
    if (this.c.attestationsOf !== undefined) for (const task of tasks) withProvenance(task, this.c.attestationsOf(task.taskId))
    const report: RunReport = { ...summaryOf(row), tasks }
    if (row.result !== undefined) report.result = toJson(dagCbor.decode(row.result))
    if (row.error !== undefined) report.error = row.error
    if (row.status === 'continued') {
      const link = this.c.runs.listEvents(runId).findLast(e => e.type === 'run:continued')?.data as { nextRunId?: string } | undefined
      if (typeof link?.nextRunId === 'string') report.continuedAs = link.nextRunId
    }
    const path = this.live.get(runId)?.criticalPath() ?? criticalPathFromEvents(this.c.runs, runId)
    if (path !== undefined) report.criticalPath = path
    const homeSet = this.c.home?.homeSetOf(runId)
    if (homeSet !== undefined) report.homeSet = homeSet
    const verification = verificationFromEvents(this.c.runs, runId)
    if (verification !== undefined) report.verification = verification
    return report
  }

  /** The run's progress events so far, then live ones; `onEvent` returns false to stop. Ended runs get their `run:finished`. */
  subscribe (runId: string, onEvent: (event: ProgressEvent) => void): () => void {
    const run = this.live.get(runId)
    if (run !== undefined) return run.subscribe(onEvent)
    const row = this.c.runs.getRun(runId)
    if (row === undefined && this.c.home?.keeps(runId) !== true) throw new NotFoundError(`run ${runId} is not known to this peer`, { hint: 'see `rhizome runs`' })
    if (row !== undefined && (row.status === 'finished' || row.status === 'failed' || row.status === 'cancelled')) {
      onEvent({ type: 'run:finished', runId, status: row.status, error: row.error, atMs: row.finishedMs ?? row.startedMs })
      return () => {}
    }
    if (row !== undefined && row.status === 'continued') {
      onEvent({ type: 'run:finished', runId, status: row.status, continuedAs: this.report(runId).continuedAs, atMs: row.finishedMs ?? row.startedMs })
      return () => {}
    }
    // Kept here, driven elsewhere (or not yet): hear of it when it settles here, or when this peer
    // takes it over — or, if this peer fell behind (replaced in the home set while it was down),
    // from the peers that have it settled.
    const listeners = this.waiters.get(runId) ?? new Set()
    this.waiters.set(runId, listeners)
    listeners.add(onEvent)
    this.followElsewhere(runId)
    return () => { listeners.delete(onEvent) }
  }

  private readonly following = new Set<string>()

  /** While someone here waits for a run not driven here, ask the others every second whether it ended. */
  private followElsewhere (runId: string): void {
    const home = this.c.home
    if (home === undefined || this.following.has(runId)) return
    this.following.add(runId)
    const poll = async (): Promise<void> => {
      while (!this.lifecycle.stopping && (this.waiters.get(runId)?.size ?? 0) > 0) {
        await new Promise(resolve => setTimeout(resolve, FOLLOW_POLL_MS).unref?.())
        if (this.live.has(runId)) continue // driven here now: its own events reach the waiters
        const found = await home.findSettled(runId).catch(() => undefined)
        if (found?.state === 'settled' && found.outcome !== undefined && this.waiters.has(runId)) {
          await this.recordOutcome(runId, undefined, found.outcome)
          return
        }
      }
    }
    poll().catch((err: unknown) => { this.c.log.debug('following a run elsewhere failed', { run: runId, error: (err as Error).message }) })
      .finally(() => { this.following.delete(runId) })
  }

  /**
   * Send signal `name` with `value` (plain data) to run `runId`, which this peer drives: recorded
   * in its memo, then delivered to the code's wait for it (now, or when it waits). Resolves once
   * the signal is stored, so an acknowledged signal survives this peer stopping.
   */
  async signal (runId: string, name: string, value: unknown): Promise<void> {
    const run = this.live.get(runId)
    if (run === undefined && this.c.home !== undefined) {
      // A durable run: whoever drives it now (found through its home set) takes the signal.
      await this.c.home.relaySignal(runId, name, encodeSignal(value))
      return
    }
    if (run === undefined) {
      const known = this.c.runs.getRun(runId)
      throw new NotFoundError(known === undefined ? `run ${runId} is not known to this peer` : `run ${runId} is not running on this peer (it is ${known.status})`, {
        hint: known === undefined ? 'signal the peer that drives the run (see `rhizome runs` there)' : 'a signal reaches a run only while it runs; start a new run'
      })
    }
    const bytes = encodeSignal(value)
    if (run.driver.handleSignal(name, bytes, Date.now()) === 'late') {
      throw new NotFoundError(`run ${runId} has ended`, { hint: 'a signal reaches a run only while it runs; start a new run' })
    }
    run.pump()
    await run.lastRecord
  }

  /** Resolves when the run has ended (at once if it has). */
  async settled (runId: string): Promise<void> {
    const live = this.live.get(runId)
    if (live !== undefined || this.c.home === undefined) {
      await live?.settled
      return
    }
    // A durable run may not be driven here yet (its drive follows its open), or any more.
    await new Promise<void>((resolve) => {
      let done = false
      const unsubscribe = this.subscribe(runId, (event) => {
        if (event.type !== 'run:finished' || done) return
        done = true
        queueMicrotask(() => { unsubscribe() })
        resolve()
      })
      if (done) unsubscribe()
    })
  }
}

interface LiveRunSpec {
  runId: string
  workflow: string
  exportName: string
  args: unknown[]
  code: Uint8Array
  ancestors: string[]
  parent?: LiveRun
  /** A durable run (its home set keeps it): the lease epoch it is driven in, and the memo it resumes from. */
  durable?: { epoch: number, memo: DriverMemoEntry[], startedMs: number }
  /** The child run id the parent waits on, when this run continues one (continueAsNew): its outcome settles that id. */
  settleAs?: string
}

/** A durable run's outcome, as its RESULT_ENTRY_ID memo entry holds it (dag-cbor). */
interface OutcomeRecord {
  status: 'finished' | 'failed' | 'cancelled' | 'continued'
  /** status 'continued': the run this one goes on as. */
  continuedAs?: string
  /** dag-cbor of the return value. */
  value?: Uint8Array
  error?: FailureData
  atMs: number
}

interface TaskState {
  spec: TaskSpec
  ref: boolean
  queuedMs: number
  startedMs?: number
  finishedMs?: number
  peer?: string
  attempt: number
  status: RunTaskRow['status']
  /** Tasks whose results the code had received when it asked for this one: its dependencies. */
  deps: string[]
  /** Whether a committed write of the task's row carried `deps` (later writes leave them be). */
  depsSaved?: boolean
  controller: AbortController
  error?: FailureData
}

/**
 * One run being driven here: its driver, its workflow context, its tasks. `pump()` drains the
 * driver's outputs after every input, and re-arms the driver's one timer.
 */
class LiveRun {
  readonly runId: string
  readonly code: Uint8Array
  readonly driver: RunDriver
  readonly settled: Promise<void>
  private readonly service: RunService
  private readonly c: RunServiceComponents
  private readonly spec: LiveRunSpec
  private context: WorkflowRun | undefined
  private readonly tasks = new Map<string, TaskState>()
  /** seq → the task or child id it names, and whether the code asked for a Ref. */
  private readonly seqs = new Map<number, { id: string, ref: boolean }>()
  /** The arguments of calls not dispatched yet, as the sandbox gave them (dispatch need not decode them again). */
  private readonly callArgs = new Map<string, unknown[]>()
  /** Function ids parsed once per run: a fan-out calls the same few functions thousands of times. */
  private readonly fnCids = new Map<string, CID>()

  private fnCid (fn: string): CID {
    let cid = this.fnCids.get(fn)
    if (cid === undefined) {
      cid = CID.parse(fn)
      this.fnCids.set(fn, cid)
    }
    return cid
  }

  /** Task id → whether every call of it asked only for a Ref (its bytes need not come here).
   *  Kept as the calls come, so scheduling a task does not scan every seq of the run. */
  private readonly refOnly = new Map<string, boolean>()
  /** Result CID → the peer that made it (for Ref inputs). */
  private readonly holders = new Map<string, string>()
  private readonly history: ProgressEvent[] = []
  private readonly listeners = new Set<(event: ProgressEvent) => void>()
  private timer: ReturnType<typeof setTimeout> | undefined
  private closed = false
  /** Durable runs: accepted outcomes waiting for a majority of the home set (`delivered`). */
  private readonly undelivered = new Map<string, { kind: 'task' | 'child' | 'record', outcome: Outcome } | { kind: 'outcome', outcome: RunOutcome, continuedAs?: string } | { kind: 'fix', taskId: string, result: ResultRef }>()
  /** Accepted task results of this run: verdicts on others are not this run's. */
  private readonly accepted = new Map<string, { cid: string, peer: string }>()
  /** Tasks whose fix this run has written (a second disproof goes to the driver alone). */
  private readonly fixes = new Set<string>()
  /** Results accepted with a check under way whose outcome has not reached the driver yet: the
   *  check opens in the driver once it has; a verdict that comes first replaces it. */
  private readonly checksBeforeDelivery = new Map<string, ResultVerdict>()
  /** The run's outcome is being made durable (or is): the end is this copy's own. */
  finishing = false

  /** A durable run (its home set keeps it). */
  get durable (): boolean {
    return this.spec.durable !== undefined
  }
  /** The latest `record` output being stored: resolves once it is (or failed). */
  lastRecord: Promise<void> = Promise.resolve()
  /** After a takeover, the tasks of each activation wait here until their workers are located. */
  private locating: TaskState[] | undefined
  private locateUntilMs = 0
  private resolveSettled!: () => void

  constructor (service: RunService, c: RunServiceComponents, spec: LiveRunSpec) {
    this.service = service
    this.c = c
    this.spec = spec
    this.runId = spec.runId
    this.code = spec.code
    this.driver = createRunDriver({ runId: spec.runId, ancestors: spec.ancestors, memo: spec.durable?.memo, startedMs: spec.durable?.startedMs })
    if (spec.durable !== undefined && spec.durable.epoch > 1 && c.locateTasks !== undefined) {
      this.locating = []
      this.locateUntilMs = Date.now() + TAKEOVER_LOCATE_WINDOW_MS
    }
    this.settled = new Promise(resolve => { this.resolveSettled = resolve })
  }

  /** Drain the driver's outputs; called after every input. */
  pump (): void {
    for (let out = this.driver.poll(); out !== undefined; out = this.driver.poll()) this.handleOutput(out)
    clearTimeout(this.timer)
    const next = this.driver.nextTimeoutMs()
    if (next !== undefined && !this.closed) {
      this.timer = setTimeout(() => { this.driver.handleTimeout(Date.now()); this.pump() }, Math.max(0, next - Date.now()))
      this.timer.unref?.()
    }
  }

  private handleOutput (out: RunOutput): void {
    switch (out.type) {
      case 'activate':
        this.activate(out.replay, out.resolutions).catch((err: unknown) => { this.activationFailed(err) })
        return
      case 'schedule':
        this.schedule(out.task)
        return
      case 'start-child':
        this.service.startChild(this, out.child)
        return
      case 'cancel':
        this.tasks.get(out.taskId)?.controller.abort()
        return
      case 'cancel-child':
        this.service.cancel(out.runId)
        return
      case 'finished':
        this.finish(out.outcome)
        return
      case 'record':
        this.record(out.id, out.value)
        return
      case 'event':
        this.recordEvent(out.event)
    }
  }

  private async activate (replay: boolean, resolutions: Resolution[]): Promise<void> {
    if (replay || this.context === undefined) {
      this.context?.close()
      this.context = await this.c.openWorkflow({ workflowId: this.spec.workflow, code: this.code, exportName: this.spec.exportName, args: this.spec.args, seed: CID.parse(this.runId).bytes })
      // Ended (cancelled, stopped) while the context opened: free its isolate now, not never.
      if (this.closed) {
        this.context.close()
        return
      }
    }
    const delivered = resolutions.map(r => this.seqs.get(r.seq)?.id).filter((id): id is string => id !== undefined)
    const answer = await this.context.activate(await Promise.all(resolutions.map(async r => await this.toSandbox(r))))
    const commands: Command[] = []
    for (let at = 0; at < answer.commands.length; at += COMMANDS_PER_TURN_MAX) {
      // A big fan-out is thousands of calls, each hashed to its task id: a turn of the event loop
      // at a time, so lease renewals and answers are not held up behind them.
      if (at > 0) await nextTurn()
      if (this.closed) return
      commands.push(...await Promise.all(answer.commands.slice(at, at + COMMANDS_PER_TURN_MAX).map(async command => await this.toDriver(command))))
    }
    for (const command of commands) {
      if (command.type === 'call' && !this.tasks.has(command.taskId)) this.pendingDeps.set(command.taskId, delivered)
    }
    this.answer({ commands, done: this.outcomeOf(answer) })
    // Calls answered from the memo, or joined to a task in flight, are never dispatched.
    for (const command of commands) if (command.type === 'call' && !this.tasks.has(command.taskId)) this.callArgs.delete(command.taskId)
  }

  /** Failures delivered to the code (task and child outcomes), by name, code and message: at most one per call. */
  private readonly failuresDelivered = new Map<string, FailureData>()

  /** Deps of a call, kept from its activation until the driver schedules it. */
  private readonly pendingDeps = new Map<string, string[]>()

  private answer (result: ActivationResult): void {
    if (this.closed) return
    this.driver.handleActivation(result, Date.now())
    this.pump()
    if (this.locating !== undefined) this.reattach(this.locating)
  }

  /**
   * A takeover's first activation asked again for every call not in the memo; some of those were
   * in flight for the old driver, or finished but not yet durable. Each is sent first to the peer
   * that holds it (which joins the running task or answers from its stored result), the rest to
   * placement as usual.
   */
  private reattach (tasks: TaskState[]): void {
    // The replay reaches the calls the old driver had in flight over a few activations (each
    // layer resolves from the memo in turn): keep locating for a while after the takeover.
    this.locating = Date.now() < this.locateUntilMs ? [] : undefined
    if (tasks.length === 0) return
    this.c.locateTasks!(tasks.map(t => t.spec.taskId)).then(
      (holders) => { for (const task of tasks) this.dispatch(task, holders.get(task.spec.taskId)) },
      (err: unknown) => {
        this.c.log.debug('could not locate tasks after a takeover', { run: this.runId, error: (err as Error).message })
        for (const task of tasks) this.dispatch(task)
      }
    )
  }

  private activationFailed (err: unknown): void {
    this.c.log.warn('workflow activation failed', { run: this.runId, error: (err as Error).message })
    this.answer({ commands: [], done: { ok: false, error: failureOf(err) } })
  }

  private async toSandbox (r: Resolution): Promise<SandboxResolution> {
    if (!r.ok) {
      this.failuresDelivered.set(`${r.error.name}\0${r.error.code}\0${r.error.message}`, r.error)
      return { seq: r.seq, ok: false, error: r.error }
    }
    this.holders.set(r.result.cid, r.result.peer)
    if (this.seqs.get(r.seq)?.ref === true) return { seq: r.seq, ok: true, ref: r.result.cid }
    const bytes = r.result.bytes ?? await this.c.readBlob(CID.parse(r.result.cid), r.result.peer)
    return { seq: r.seq, ok: true, value: decodeRemoteValue(bytes, `the result ${r.result.cid}`) }
  }

  private outcomeOf (answer: SandboxActivation): RunOutcome | undefined {
    if (answer.done === undefined) return undefined
    if (!answer.done.ok) return { ok: false, error: this.explained(answer.done.error) }
    const next = answer.done.continueAsNew
    return next === undefined ? { ok: true, value: answer.done.bytes } : { ok: true, value: answer.done.bytes, continueAs: next.argsBytes }
  }

  /**
   * The failure a run ends with, with its hint. A remote failure the code did not catch comes
   * back from the sandbox as itself but without its hint (hints stay outside the code, and
   * the sandbox may cut its name and message short): it is matched to the failure delivered and
   * ends the run as that. A throw of the code's own is the workflow's failure, not a function's.
   */
  private explained (error: FailureData): FailureData {
    for (const delivered of this.failuresDelivered.values()) {
      if (delivered.code === error.code && delivered.name.startsWith(error.name) && delivered.message.startsWith(error.message)) return delivered
    }
    if (error.code === 'ERR_FUNCTION_THREW') return { ...error, hint: WORKFLOW_THREW_HINT }
    return error
  }

  private async toDriver (command: SandboxActivation['commands'][number]): Promise<Command> {
    if (command.type === 'sleep') return { type: 'sleep', seq: command.seq, ms: command.ms }
    if (command.type === 'signal') return { type: 'signal', seq: command.seq, name: command.name }
    if (command.type === 'call') {
      const fn = this.fnCid(command.fn)
      const id = (await computeTaskId(fn, command.export, command.args)).toString()
      this.seqs.set(command.seq, { id, ref: command.ref })
      this.refOnly.set(id, (this.refOnly.get(id) ?? true) && command.ref)
      if (!this.tasks.has(id)) this.callArgs.set(id, command.args)
      const inputs = linksIn(command.args)
      return { type: 'call', seq: command.seq, taskId: id, fn: command.fn, export: command.export, args: command.argsBytes, ref: command.ref, inputs }
    }
    // Named by the root run, not the parent: a workflow that calls itself with the same
    // arguments asks for its own id again, which the driver refuses as a cycle.
    const root = CID.parse(this.spec.ancestors[0] ?? this.runId)
    const runId = (await cidOf({ workflow: CID.parse(this.spec.workflow), export: command.export, args: command.args, root })).toString()
    this.seqs.set(command.seq, { id: runId, ref: false })
    return { type: 'child', seq: command.seq, runId, workflow: this.spec.workflow, export: command.export, args: command.argsBytes }
  }

  private schedule (spec: TaskSpec): void {
    const ref = this.refOnly.get(spec.taskId) ?? true
    const task: TaskState = { spec, ref, queuedMs: Date.now(), attempt: 0, status: 'scheduled', deps: this.pendingDeps.get(spec.taskId) ?? [], controller: new AbortController() }
    this.pendingDeps.delete(spec.taskId)
    this.tasks.set(spec.taskId, task)
    this.saveTask(task)
    this.report({ type: 'run:task:scheduled', runId: this.runId, taskId: spec.taskId, fn: spec.fn, export: spec.export, deps: task.deps.slice(-RUN_EVENT_DEPS_MAX), depsCount: task.deps.length, atMs: task.queuedMs })
    if (this.locating !== undefined) this.locating.push(task)
    else this.dispatchSoon(task)
  }

  /** Tasks scheduled past this turn's DISPATCHES_PER_TURN_MAX, in schedule order (from `backlogHead`). */
  private backlog: TaskState[] = []
  private backlogHead = 0
  /** Dispatches left in this turn of the event loop; refilled by the turn armed in `spend`. */
  private dispatchBudget = DISPATCHES_PER_TURN_MAX
  private turnArmed = false

  /** Dispatch now if this turn has room (a chain's next call goes at once), else in a later turn. */
  private dispatchSoon (task: TaskState): void {
    if (this.backlogHead === this.backlog.length && this.dispatchBudget > 0) {
      this.spend()
      this.dispatch(task)
      return
    }
    this.backlog.push(task)
    this.armTurn()
  }

  private spend (): void {
    this.dispatchBudget -= 1
    this.armTurn()
  }

  private armTurn (): void {
    if (this.turnArmed || this.closed) return
    this.turnArmed = true
    setImmediate(() => {
      this.turnArmed = false
      this.dispatchBudget = DISPATCHES_PER_TURN_MAX
      while (this.backlogHead < this.backlog.length && this.dispatchBudget > 0 && !this.closed) {
        this.spend()
        this.dispatch(this.backlog[this.backlogHead++])
      }
      if (this.backlogHead === this.backlog.length) {
        this.backlog = []
        this.backlogHead = 0
      }
    })
  }

  private dispatch (task: TaskState, attach?: string): void {
    const { spec, ref } = task
    const decoded = this.callArgs.get(spec.taskId)
    this.callArgs.delete(spec.taskId)
    if (this.closed || task.controller.signal.aborted) return
    const inputs = spec.inputs.map(cid => ({ cid, peer: this.holders.get(cid) ?? this.c.selfId }))
    const args = decoded ?? dagCbor.decode(spec.args) as unknown[]
    executeWithBackpressure(this.c.execute, { taskId: spec.taskId, fn: this.fnCid(spec.fn), export: spec.export, args, argsBytes: spec.args.byteLength, inputs, ref, attach }, {
      signal: task.controller.signal,
      onAttempt: (attempt, peer) => {
        Object.assign(task, { attempt, peer, status: 'running', startedMs: Date.now() })
        this.saveTask(task)
        this.report({ type: 'run:task:started', runId: this.runId, taskId: spec.taskId, peer, attempt, atMs: Date.now() })
      }
    }).then(
      (done) => { this.taskSettled(task, { ok: true, result: { cid: done.resultCid, bytes: done.bytes, peer: done.peer } }, done) },
      (err: unknown) => { this.taskSettled(task, { ok: false, error: failureOf(err) }) }
    )
  }

  private taskSettled (task: TaskState, outcome: Outcome, done?: TaskExecution): void {
    const now = Date.now()
    task.finishedMs = now
    if (done !== undefined) {
      task.peer = done.peer
      task.attempt = done.attempts
      // The execution interval on the worker, on this peer's clock: it ended when the answer came.
      task.startedMs = Math.max(task.queuedMs, now - Math.round(done.timings.runMs) - Math.round(Math.max(0, done.timings.totalMs - done.timings.runMs - done.timings.queueMs - done.timings.fetchMs) / 2))
    }
    task.status = outcome.ok ? 'accepted' : task.controller.signal.aborted ? 'cancelled' : 'failed'
    if (!outcome.ok) task.error = outcome.error
    this.saveTask(task)
    if (this.closed) return
    if (outcome.ok) this.report({ type: 'run:task:done', runId: this.runId, taskId: task.spec.taskId, peer: outcome.result.peer, ms: now - (task.startedMs ?? task.queuedMs), atMs: now })
    else this.report({ type: 'run:task:failed', runId: this.runId, taskId: task.spec.taskId, error: outcome.error, atMs: now })
    if (outcome.ok) this.accepted.set(task.spec.taskId, { cid: outcome.result.cid, peer: outcome.result.peer })
    if (done?.checking === true) {
      this.checksBeforeDelivery.set(task.spec.taskId, { type: 'open' })
      this.markCheck(task.spec.taskId)
    }
    if (this.gate(task.spec.taskId, 'task', outcome)) return
    this.driver.handleTaskOutcome(task.spec.taskId, outcome, now)
    this.afterDelivery(task.spec.taskId, now)
    this.pump()
  }

  /**
   * A durable run's result under check is marked in its memo (`check:<taskId>`, with the result),
   * before the result itself when the check opens at once: a driver that takes the run over then
   * runs it again under verification rather than trust it (`verifiedMemo`, in `resume`).
   */
  private markCheck (taskId: string): void {
    const result = this.accepted.get(taskId)
    if (this.spec.durable === undefined || result === undefined) return
    if (!this.c.home!.localEntry(this.runId, { id: checkEntryId(taskId), value: { cid: result.cid, peer: result.peer } })) this.service.stopDriving(this.runId, 'lost-lease')
  }

  /** The driver holds the task's result now: open its check, or apply the verdict that came first. */
  private afterDelivery (taskId: string, now: number): void {
    const early = this.checksBeforeDelivery.get(taskId)
    if (early === undefined) return
    this.checksBeforeDelivery.delete(taskId)
    if (early.type === 'confirmed') return
    if (early.type === 'open') this.driver.handleVerdict(taskId, { type: 'open' }, now)
    else this.verdict(taskId, early)
  }

  /**
   * A verdict on a result this run may have used. Open and confirmed go to the driver as they
   * are. A disproof first makes the right result memo entry `fix:<taskId>` durable (as a task
   * result is: this peer's memo, and a majority of the home set for a durable run); only then does
   * the driver replay the code on it.
   */
  verdict (taskId: string, verdict: ResultVerdict): void {
    if (this.closed || !this.accepted.has(taskId)) return
    if (verdict.type === 'open') this.markCheck(taskId)
    // The driver does not hold the result yet (a durable run's result waits for its home set):
    // keep the verdict until it does, or an 'open' would be 'late' and the run could end on a
    // result under check.
    if (this.checksBeforeDelivery.has(taskId) || this.undelivered.has(taskId)) {
      this.checksBeforeDelivery.set(taskId, verdict)
      return
    }
    const now = Date.now()
    if (verdict.type !== 'disproven') {
      this.driver.handleVerdict(taskId, verdict, now)
      this.pump()
      return
    }
    const id = fixEntryId(taskId)
    const { resultCid: cid, peer, bytes } = verdict.result
    const result: ResultRef = bytes === undefined ? { cid, peer } : { cid, peer, bytes }
    this.accepted.set(taskId, { cid, peer })
    const again = this.fixes.has(taskId)
    this.fixes.add(taskId)
    if (!again) this.write(() => { this.c.runs.addMemo({ runId: this.runId, taskId: id, resultCid: cid, peer, bytes }) })
    // A second disproof of one task (it was re-checked again) is not written twice: the memo keeps
    // one value per id, and a repeated entry is never delivered.
    if (this.spec.durable === undefined || again) {
      this.driver.handleVerdict(taskId, { type: 'disproven', result }, now)
      this.pump()
      return
    }
    this.undelivered.set(id, { kind: 'fix', taskId, result })
    const value: MemoValue = bytes !== undefined && bytes.byteLength <= MEMO_INLINE_BYTES_MAX ? { cid, peer, bytes } : { cid, peer }
    if (!this.c.home!.localEntry(this.runId, { id, value })) this.service.stopDriving(this.runId, 'lost-lease')
  }

  /** A child run of this one ended. */
  childSettled (childRunId: string, outcome: Outcome): void {
    if (this.closed) return
    if (this.gate(childRunId, 'child', outcome)) return
    this.driver.handleChildOutcome(childRunId, outcome, Date.now())
    this.pump()
  }

  /**
   * A durable run gives the code an accepted result only once a majority of its home set keeps
   * it (src/protocol/home/): true if the outcome now waits for `delivered`. Failures are not
   * kept: after a takeover the call is made again.
   */
  private gate (id: string, kind: 'task' | 'child', outcome: Outcome): boolean {
    if (this.spec.durable === undefined || !outcome.ok) return false
    this.undelivered.set(id, { kind, outcome })
    this.inlineBytes(outcome.result).then((bytes) => {
      if (this.closed) return
      const { cid, peer } = outcome.result
      const value: MemoValue = bytes !== undefined && bytes.byteLength <= MEMO_INLINE_BYTES_MAX ? { cid, peer, bytes } : { cid, peer }
      if (!this.c.home!.localEntry(this.runId, { id, value })) this.service.stopDriving(this.runId, 'lost-lease')
    }, (err: unknown) => { this.c.log.warn('could not keep a result in the memo', { run: this.runId, id, error: (err as Error).message }) })
    return true
  }

  /** A small result's bytes travel in the memo, so a later driver needs no peer to replay it:
   *  the bytes that came with the answer, or this peer's copy (a task it ran itself). */
  private async inlineBytes (result: { cid: string, bytes?: Uint8Array }): Promise<Uint8Array | undefined> {
    if (result.bytes !== undefined) return result.bytes
    const cid = CID.parse(result.cid)
    return await this.c.hasBlob(cid) ? await this.c.readBlob(cid) : undefined
  }

  /**
   * Gated entries are durable: hand them to the driver (or, for the outcome, end the run). Task
   * and child outcomes go in together, so the code gets all of them in one activation.
   */
  delivered (ids: string[]): void {
    if (this.closed) return
    const outcomes: Array<{ kind: 'task' | 'child', id: string, outcome: Outcome }> = []
    const now = Date.now()
    for (const id of ids) {
      const waiting = this.undelivered.get(id)
      if (waiting === undefined || this.closed) continue
      this.undelivered.delete(id)
      if (waiting.kind === 'task' || waiting.kind === 'child') {
        outcomes.push({ kind: waiting.kind, id, outcome: waiting.outcome })
        continue
      }
      if (waiting.kind === 'fix') {
        this.driver.handleVerdict(waiting.taskId, { type: 'disproven', result: waiting.result }, now)
        continue
      }
      if (waiting.kind === 'outcome' && waiting.continuedAs !== undefined) this.continued(waiting.continuedAs)
      else if (waiting.kind === 'outcome') this.finished(waiting.outcome)
      else if (waiting.outcome.ok) this.driver.handleRecorded(id, waiting.outcome.result, now)
    }
    if (outcomes.length > 0 && !this.closed) {
      this.driver.handleOutcomes(outcomes, now)
      for (const o of outcomes) if (o.kind === 'task') this.afterDelivery(o.id, now)
    }
    this.pump()
  }

  /** A task's row is written once per flush, as the task is then: a task scheduled, started and
   *  done within one turn costs one upsert, not three. */
  private saveTask (task: TaskState): void {
    if (this.unsaved.has(task)) return
    this.unsaved.add(task)
    this.write(() => {
      this.unsaved.delete(task)
      const { spec } = task
      // The deps go with the row's first write only (the repo keeps the last RUN_EVENT_DEPS_MAX,
      // and a write without them keeps the row's): they never change, and writing them with each
      // of a task's upserts cost ~0.3 µs more CPU per upsert for one dep, ~2.7 µs for sixteen.
      this.c.runs.upsertTask({ runId: this.runId, taskId: spec.taskId, fn: spec.fn, export: spec.export, peer: task.peer, attempt: task.attempt, status: task.status, error: task.error, queuedMs: task.queuedMs, startedMs: task.startedMs, finishedMs: task.finishedMs, deps: task.depsSaved === true ? undefined : task.deps })
      task.depsSaved = true
    })
  }

  /** Tasks whose row waits in `writes`. */
  private readonly unsaved = new Set<TaskState>()

  /**
   * Make a recorded input (a timer's deadline or firing, a signal) durable — a memo row with its
   * bytes, as for an accepted result — and only then hand it to the driver, which acts on it.
   */
  private record (id: string, value: Uint8Array): void {
    const durable = this.spec.durable !== undefined
    // A durable run's input larger than a memo entry carries inline is kept as a blob here, and
    // fetched from here by a driver that takes the run over.
    const stored = (durable && value.byteLength > MEMO_INLINE_BYTES_MAX ? this.c.putBlob(value) : cidOfBytes(value)).then((cid) => {
      if (this.closed) return
      const result = { cid: cid.toString(), bytes: value, peer: this.c.selfId }
      this.write(() => { this.c.runs.addMemo({ runId: this.runId, taskId: id, resultCid: result.cid, peer: result.peer, bytes: value }) })
      if (durable) {
        // Like a result, a timer firing or a signal reaches the code only once a majority keeps it.
        this.undelivered.set(id, { kind: 'record', outcome: { ok: true, result } })
        const inline = value.byteLength <= MEMO_INLINE_BYTES_MAX
        if (!this.c.home!.localEntry(this.runId, { id, value: inline ? { cid: result.cid, peer: result.peer, bytes: value } : { cid: result.cid, peer: result.peer } })) this.service.stopDriving(this.runId, 'lost-lease')
        return
      }
      this.driver.handleRecorded(id, result, Date.now())
      this.pump()
    })
    // Not stored: the input never reaches the code (a signal's sender hears why, through lastRecord).
    stored.catch((err: unknown) => { this.c.log.error('recording a run input failed', { run: this.runId, id, error: (err as Error).message }) })
    this.lastRecord = stored
  }

  /** Driver events: persisted, and accepted results remembered in the memo table. */
  private recordEvent (event: RunEvent): void {
    this.write(() => { this.c.runs.appendEvent(this.runId, event.type, event.atMs, event) })
    this.reportRecorded(event)
    if (event.type === 'run:task:accepted') {
      const task = this.tasks.get(event.taskId)
      this.write(() => { this.c.runs.addMemo({ runId: this.runId, taskId: event.taskId, resultCid: event.cid, peer: event.peer }) })
      if (task !== undefined) this.holders.set(event.cid, event.peer)
    }
  }

  /** Timers and signals, as progress events (the CLI's follow output shows them). */
  private reportRecorded (event: RunEvent): void {
    const { runId, atMs } = event
    if (event.type === 'run:timer:started') this.report({ type: 'run:timer:started', runId, timerId: event.timerId, wakeAtMs: event.wakeAtMs, atMs })
    else if (event.type === 'run:timer:fired') this.report({ type: 'run:timer:fired', runId, timerId: event.timerId, atMs })
    else if (event.type === 'run:signal:received') this.report({ type: 'run:signal:received', runId, name: event.name, bytes: event.bytes, atMs })
  }

  private finish (outcome: RunOutcome): void {
    if (outcome.ok && outcome.continueAs !== undefined && this.spec.durable === undefined) {
      this.continueAsNew(outcome.continueAs)
      return
    }
    if (this.spec.durable === undefined) {
      this.finished(outcome)
      return
    }
    // The outcome is a memo entry like any other: the run ends once a majority keeps it, so any
    // home-set peer can answer for it and a later driver knows the run is over.
    this.finishing = true
    if (outcome.ok && outcome.continueAs !== undefined) {
      // The next run is opened durably first (its id is a function of this run and the new
      // arguments, so a driver that replays this run after a takeover finds it, not a second
      // chain), then this run's outcome names it.
      const args = dagCbor.decode(outcome.continueAs) as unknown[]
      this.service.openContinuation(this.spec, args).then(
        (next) => { this.keepOutcome({ status: 'continued', continuedAs: next, atMs: Date.now() }, outcome) },
        (err: unknown) => { this.keepOutcome({ status: 'failed', error: failureOf(err), atMs: Date.now() }, { ok: false, error: failureOf(err) }) }
      )
      return
    }
    const status = outcome.ok ? 'finished' : outcome.error.code === 'ERR_RUN_CANCELLED' ? 'cancelled' : 'failed'
    this.keepOutcome(outcome.ok ? { status, value: outcome.value, atMs: Date.now() } : { status, error: outcome.error, atMs: Date.now() }, outcome)
  }

  /** Make the run's outcome a durable memo entry; the run ends (`delivered`) once a majority keeps it. */
  private keepOutcome (record: OutcomeRecord, outcome: RunOutcome): void {
    const bytes = dagCbor.encode(record)
    const stored = bytes.byteLength <= MEMO_INLINE_BYTES_MAX ? cidOfBytes(bytes) : this.c.putBlob(bytes)
    stored.then((cid) => {
      if (this.closed) return
      const value: MemoValue = bytes.byteLength <= MEMO_INLINE_BYTES_MAX ? { cid: cid.toString(), peer: this.c.selfId, bytes } : { cid: cid.toString(), peer: this.c.selfId }
      this.undelivered.set(RESULT_ENTRY_ID, { kind: 'outcome', outcome, continuedAs: record.continuedAs })
      if (!this.c.home!.localEntry(this.runId, { id: RESULT_ENTRY_ID, value })) this.service.stopDriving(this.runId, 'lost-lease')
    }, (err: unknown) => {
      this.c.log.warn('could not store a run outcome', { run: this.runId, error: (err as Error).message })
    })
  }

  /**
   * The run's history (tasks, events, the local memo table) is written behind, all writes of
   * HISTORY_FLUSH_MS in one transaction: with synchronous=FULL a commit costs a disk sync
   * (~0.8 ms here), and a fan-out of 200 tasks would otherwise block the peer for a third of a
   * second — long enough to miss its lease renewals. The history is a record, not what makes the
   * run durable (that is the home set's memo, written before each ack): so it is committed without
   * a disk sync at all (`batchHistory`, synchronous=NORMAL; the memo and the lease stay FULL), and
   * it may lag the run by HISTORY_FLUSH_MS (the run's end writes all of it at once).
   */
  private write (op: () => void): void {
    this.writes.push(op)
    if (this.writes.length === 1) {
      this.flushTimer = setTimeout(() => { this.flush(HISTORY_WRITES_PER_COMMIT_MAX) }, HISTORY_FLUSH_MS)
      this.flushTimer.unref?.()
    }
  }

  private flushTimer: ReturnType<typeof setTimeout> | undefined

  private writes: Array<() => void> = []

  /** Write the queued history in commits of at most HISTORY_WRITES_PER_COMMIT_MAX writes: one
   *  commit now and the rest in later turns (`max`, from the timers), or all of it now (the run's
   *  end and stop), still one bounded commit after another, so no commit grows with the run. */
  flush (max = Infinity): void {
    clearTimeout(this.flushTimer)
    let left = max
    while (this.writes.length > 0 && left > 0) {
      const ops = this.writes.splice(0, Math.min(HISTORY_WRITES_PER_COMMIT_MAX, left))
      left -= ops.length
      this.commitHistory(ops)
    }
    if (this.writes.length > 0) setImmediate(() => { this.flush(HISTORY_WRITES_PER_COMMIT_MAX) })
  }

  private commitHistory (ops: Array<() => void>): void {
    try {
      this.c.runs.batchHistory(() => { for (const op of ops) op() })
    } catch (err) {
      this.c.log.warn('could not record run history', { run: this.runId, error: (err as Error).message })
      // Rolled back: a task changed later writes its row again, with its deps.
      this.unsaved.clear()
      for (const task of this.tasks.values()) task.depsSaved = false
    }
  }

  private finished (outcome: RunOutcome): void {
    const now = Date.now()
    const status = outcome.ok ? 'finished' : outcome.error.code === 'ERR_RUN_CANCELLED' ? 'cancelled' : 'failed'
    const path = this.criticalPath()
    if (path !== undefined) this.write(() => { this.c.runs.appendEvent(this.runId, 'run:critical-path', now, path) })
    this.flush()
    if (outcome.ok) {
      this.c.runs.finishRun(this.runId, { status, finishedMs: now, result: outcome.value.byteLength <= RUN_RESULT_INLINE_BYTES_MAX ? outcome.value : undefined })
    } else {
      this.c.runs.finishRun(this.runId, { status, finishedMs: now, error: outcome.error })
    }
    this.report({ type: 'run:finished', runId: this.runId, status, error: outcome.ok ? undefined : outcome.error, atMs: now })
    this.close()
    this.service.ended(this)
    const parent = this.spec.parent
    if (parent === undefined) return
    const settleAs = this.settlesAs
    if (!outcome.ok) {
      parent.childSettled(settleAs, { ok: false, error: outcome.error })
      return
    }
    const value = outcome.value
    cidOfBytes(value).then(
      cid => { parent.childSettled(settleAs, { ok: true, result: { cid: cid.toString(), bytes: value, peer: this.c.selfId } }) },
      (err: unknown) => { parent.childSettled(settleAs, { ok: false, error: failureOf(err) }) }
    )
  }

  /** The run id this run's outcome settles in its parent's driver. */
  get settlesAs (): string {
    return this.spec.settleAs ?? this.runId
  }

  /**
   * The code returned continueAsNew: start the next run, then end this one as 'continued', naming
   * it (a `run:continued` event and `continuedAs` on `run:finished`). If the next run cannot
   * start, this one fails with the reason instead.
   */
  private continueAsNew (argsBytes: Uint8Array): void {
    const now = Date.now()
    this.service.continueRun(this.spec, dagCbor.decode(argsBytes) as unknown[]).then((nextRunId) => {
      this.continued(nextRunId, now)
    }, (err: unknown) => {
      this.finish({ ok: false, error: failureOf(err) })
    })
  }

  /** End this run as 'continued', naming the run it goes on as. */
  private continued (nextRunId: string, now = Date.now()): void {
    this.flush()
    try {
      this.c.runs.appendEvent(this.runId, 'run:continued', now, { nextRunId })
      this.c.runs.finishRun(this.runId, { status: 'continued', finishedMs: now })
    } catch (err) {
      // The next run is under way: this one's record is what suffers, not the peer.
      this.c.log.error('recording a continued run failed', { run: this.runId, next: nextRunId, error: (err as Error).message })
    }
    this.report({ type: 'run:finished', runId: this.runId, status: 'continued', continuedAs: nextRunId, atMs: now })
    this.close()
    this.service.ended(this)
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    this.flush()
    clearTimeout(this.timer)
    this.context?.close()
    for (const task of this.tasks.values()) task.controller.abort()
    this.listeners.clear()
    this.resolveSettled()
  }

  report (event: ProgressEvent): void {
    if (this.history.length < RUN_EVENTS_KEPT) this.history.push(event)
    this.c.emit(event)
    for (const listener of this.listeners) listener(event)
  }

  subscribe (onEvent: (event: ProgressEvent) => void): () => void {
    for (const event of this.history) onEvent(event)
    this.listeners.add(onEvent)
    return () => { this.listeners.delete(onEvent) }
  }

  /** Add a follower without the history (it followed the run on this peer before this copy drove it). */
  listen (onEvent: (event: ProgressEvent) => void): void {
    this.listeners.add(onEvent)
  }

  /** The followers, handed over when this copy stops driving. */
  takeListeners (): Array<(event: ProgressEvent) => void> {
    const taken = [...this.listeners]
    this.listeners.clear()
    return taken
  }

  /**
   * The deps of the tasks this drive scheduled, from memory: a task scheduled since the last
   * write-behind flush has no row yet, or one without its deps. A driver that took the run over
   * knows only its own drive's tasks: those an earlier driver scheduled and finished are answered
   * from the memo and never scheduled here, so they have no row on this peer (the earlier
   * driver's rows, deps and all, stay on that peer).
   */
  depsInto (reports: RunTaskReport[]): void {
    for (const report of reports) {
      const task = this.tasks.get(report.taskId)
      if (task !== undefined) withDeps(report, task.deps)
    }
  }

  /** The chain of dependent tasks ending last, walking back through the dependency that finished last. */
  criticalPath (): { taskIds: string[], ms: number } | undefined {
    return criticalPathOf([...this.tasks.values()].map(t => ({ taskId: t.spec.taskId, queuedMs: t.queuedMs, finishedMs: t.finishedMs, deps: t.deps })))
  }
}

/**
 * How long after a takeover the tasks a run schedules are first located on the peers (one
 * task-locate message per peer per activation). The replay reaches the old driver's calls in a
 * few activations, within milliseconds; a task the old driver sent more than a few seconds
 * before its death has either finished (and is in the memo, or remembered by its worker) or its
 * worker is gone too. 10 s covers a slow replay many times over.
 */
export const TAKEOVER_LOCATE_WINDOW_MS = 10_000

/**
 * Calls of one activation hashed to task ids per turn of the event loop, and tasks dispatched per
 * turn. A fan-out of 3,000 calls done in one turn held the peer up to ~0.9 s here (hashing,
 * scheduling, placing each) — about what a durable run's lease survives without a renewal (650 ms,
 * home-service.ts PEER_LEASE_TIMINGS): 2,000-task fan-outs on a loaded 2-core machine lost their
 * lease to another home-set peer, which replayed the run for nothing.
 * At ~0.1–0.3 ms per call, 256 is a turn of well under 100 ms; a chain (one call per activation)
 * never waits for a turn.
 */
export const COMMANDS_PER_TURN_MAX = 256
export const DISPATCHES_PER_TURN_MAX = 256
/** History writes per commit (each a row or an event, ~20–40 µs): the history of a 3,000-task fan-out
 *  written in one transaction held the peer ~0.1 s; 2,048 bounds a commit to ~80 ms. */
export const HISTORY_WRITES_PER_COMMIT_MAX = 2048
/**
 * How long history writes gather before they are committed. Each commit, even without a disk
 * sync, appends to the WAL (~0.1–0.3 ms here); a chain's hop spans three turns of the event loop
 * (scheduled, answered, delivered), so a commit per turn was three per hop. 20 ms makes it one per
 * 20 ms, and a follower of `run-status` sees rows at most that late (the events stream is live).
 */
export const HISTORY_FLUSH_MS = 20

/** A later turn of the event loop (setImmediate): timers and I/O waiting meanwhile get to run in between. */
async function nextTurn (): Promise<void> {
  await new Promise<void>(resolve => { setImmediate(resolve) })
}

/** How often a peer asks the others whether a run it is asked about, but does not drive, has ended. */
const FOLLOW_POLL_MS = 1_000

/** First wait after the scheduler refuses a task as full; doubled per refusal up to the max. */
export const BACKPRESSURE_WAIT_MS = 50
const BACKPRESSURE_WAIT_MS_MAX = 2000

/**
 * Backpressure from the scheduler reaches the run, not its code: a task refused because this
 * peer already holds as many tasks as it may (ERR_SCHEDULER_QUEUE_FULL) waits and is submitted
 * again — for as long as the run wants it (its signal) — instead of failing the workflow's call.
 */
async function executeWithBackpressure (execute: RunServiceComponents['execute'], task: RunTask, options: { signal: AbortSignal, onAttempt: (attempt: number, peer: string) => void }): Promise<TaskExecution> {
  for (let waitMs = BACKPRESSURE_WAIT_MS; ; waitMs = Math.min(BACKPRESSURE_WAIT_MS_MAX, waitMs * 2)) {
    try {
      return await execute(task, options)
    } catch (err) {
      if (!(err instanceof RhizomeError) || err.code !== 'ERR_SCHEDULER_QUEUE_FULL' || options.signal.aborted) throw err
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, waitMs)
      options.signal.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
    })
  }
}

interface PathNode { taskId: string, queuedMs: number, finishedMs?: number, deps: string[] }

function criticalPathOf (nodes: PathNode[]): { taskIds: string[], ms: number } | undefined {
  const byId = new Map(nodes.map(n => [n.taskId, n]))
  let last: PathNode | undefined
  for (const node of nodes) if (node.finishedMs !== undefined && (last === undefined || node.finishedMs > last.finishedMs!)) last = node
  if (last === undefined) return undefined
  const path: string[] = []
  const seen = new Set<string>()
  for (let node: PathNode | undefined = last; node !== undefined && !seen.has(node.taskId); ) {
    seen.add(node.taskId)
    path.unshift(node.taskId)
    let next: PathNode | undefined
    for (const dep of node.deps) {
      const candidate = byId.get(dep)
      if (candidate?.finishedMs !== undefined && (next === undefined || candidate.finishedMs > next.finishedMs!)) next = candidate
    }
    node = next
  }
  const first = byId.get(path[0])!
  return { taskIds: path, ms: last.finishedMs! - first.queuedMs }
}

/** Who answered for a task besides the peer whose result stands (after a disproof, the one the
 *  quorum agreed with: the task's row still names the peer first accepted). */
function withProvenance (task: RunTaskReport, rows: Array<{ peerId: string, role: string }>): void {
  if (rows.length === 0) return
  const accepted = rows.findLast(r => r.role === 'accepted')
  if (accepted !== undefined) task.peer = accepted.peerId
  const agreed = rows.filter(r => r.role === 'agreed' || r.role === 'checked').map(r => r.peerId).filter(p => p !== task.peer)
  const disagreed = rows.filter(r => r.role === 'disagreed').map(r => r.peerId)
  if (agreed.length > 0) task.agreed = [...new Set(agreed)]
  if (disagreed.length > 0) task.disagreed = [...new Set(disagreed)]
}

/** What checks of its results the run saw (driver events `run:task:checking|confirmed|disproven`); undefined if none. */
function verificationFromEvents (runs: RunRepo, runId: string): RunReport['verification'] {
  let checks = 0
  let confirmed = 0
  const disproven: Array<{ taskId: string, resultCid: string }> = []
  for (const e of runs.listEvents(runId)) {
    if (e.type === 'run:task:checking') checks += 1
    else if (e.type === 'run:task:confirmed') confirmed += 1
    else if (e.type === 'run:task:disproven') {
      const data = e.data as { taskId: string, resultCid: string }
      disproven.push({ taskId: data.taskId, resultCid: data.resultCid })
    }
  }
  if (checks === 0 && disproven.length === 0) return undefined
  return { checks, confirmed, disproven }
}

function criticalPathFromEvents (runs: RunRepo, runId: string): { taskIds: string[], ms: number } | undefined {
  const events = runs.listEvents(runId)
  const found = events.findLast(e => e.type === 'run:critical-path')
  return found?.data as { taskIds: string[], ms: number } | undefined
}

function summaryOf (row: RunRow): RunSummary {
  const summary: RunSummary = { runId: row.runId, workflow: row.workflow, export: row.export, status: row.status, startedMs: row.startedMs, driver: row.driverPeer }
  if (row.finishedMs !== undefined) summary.finishedMs = row.finishedMs
  return summary
}

function taskReportOf (row: RunTaskRow): RunTaskReport {
  const report: RunTaskReport = { taskId: row.taskId, fn: row.fn, export: row.export, attempt: row.attempt, status: row.status, queuedMs: row.queuedMs }
  if (row.peer !== undefined) report.peer = row.peer
  if (row.startedMs !== undefined) report.startedMs = row.startedMs
  if (row.finishedMs !== undefined) report.finishedMs = row.finishedMs
  if (row.error !== undefined) report.error = row.error
  if (row.deps !== undefined) {
    report.deps = row.deps
    if (row.depsCount !== undefined) report.depsCount = row.depsCount
  }
  return report
}

/** A task's dependencies as the report names them: the last RUN_EVENT_DEPS_MAX, and the full count when more. */
function withDeps (report: RunTaskReport, deps: string[]): void {
  report.deps = deps.slice(-RUN_EVENT_DEPS_MAX)
  if (deps.length > report.deps.length) report.depsCount = deps.length
  else delete report.depsCount
}


/** Top-level arguments that are CID links (Refs): the task's inputs by content. */
function linksIn (args: unknown[]): string[] {
  const links = new Set<string>()
  for (const arg of args) {
    const cid = CID.asCID(arg)
    if (cid !== null) links.add(cid.toString())
  }
  return [...links]
}

function failureOf (err: unknown): FailureData {
  if (err instanceof RhizomeError) return err.toData()
  return { name: 'InternalError', code: 'ERR_INTERNAL', message: (err as Error)?.message ?? String(err), retryable: false }
}

function encodeSignal (value: unknown): Uint8Array {
  try {
    return dagCbor.encode(value)
  } catch (err) {
    throw new InvalidInputError('the signal value is not plain data', { cause: err, hint: 'send JSON: null, booleans, numbers, strings, lists and objects' })
  }
}

/** A home memo entry as the run driver keeps it; inline bytes are checked against their CID (a home-set peer sent them). */
async function driverEntryOf (e: HomeMemoEntry, readBlob: RunServiceComponents['readBlob']): Promise<DriverMemoEntry> {
  // Timers and signals must come with their bytes (the driver reads them); results may stay a CID.
  const isRecord = /^(sleep|wake|signal):/.test(e.id)
  const bytes = e.value.bytes ?? (isRecord ? await readBlob(CID.parse(e.value.cid), e.value.peer) : undefined)
  if (bytes === undefined) return { id: e.id, result: { cid: e.value.cid, peer: e.value.peer } }
  await checkCid(bytes, e.value.cid)
  return { id: e.id, result: { cid: e.value.cid, peer: e.value.peer, bytes } }
}

async function checkCid (bytes: Uint8Array, cid: string): Promise<void> {
  const actual = await cidOfBytes(bytes)
  if (actual.toString() !== cid) throw new RhizomeError('ERR_PROTOCOL_VIOLATION', `memo bytes do not hash to ${cid}`, { hint: 'a home-set peer holds a damaged memo entry; the run resumes from another' })
}

async function cidOf (value: unknown): Promise<CID> {
  return await cidOfBytes(dagCbor.encode(value))
}

async function cidOfBytes (bytes: Uint8Array): Promise<CID> {
  return CID.create(1, dagCbor.code, await sha256.digest(bytes))
}

assert(RUN_EVENTS_KEPT > 0 && LIVE_RUNS_MAX > 0, 'run service limits are positive')
