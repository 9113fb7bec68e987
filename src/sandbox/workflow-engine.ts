/**
 * The workflow engine: live workflow runs, each in an isolate of its own that lives as long as
 * the run (a workflow may be driven by any peer, so its code is untrusted there, like a
 * function's).
 *
 * Theory of operation. `openWorkflow` takes a slot (at most `runsOpenMax` runs are open; one more
 * is WorkflowRunsBusyError), creates the isolate and loads the bundle (workflow-load.ts). Each
 * `activate` then runs the code forward under a CPU-time budget (cpu-guard.ts): the first calls
 * the exported workflow, the next ones settle pending calls; each returns the commands recorded
 * meanwhile. The context is kept between activations, so a long sequential workflow costs the same
 * per step at step 2,000 as at step 2 (replaying from the start on every activation would make a
 * run of n steps cost O(n²)). A run that is closed, or evicted by its driver, replays from its
 * history in a fresh run: same code, same resolutions in the same order, same commands.
 *
 * Everything the code does wrong — throwing, a limit, the clock, a timer, a misuse of the SDK,
 * a deadlock — ends the run with `done: { ok: false, error }` and frees its isolate at once;
 * `activate` throws only for the caller's mistakes and when the engine closes.
 */

import * as dagCbor from '@ipld/dag-cbor'
import ivm from 'isolated-vm'
import { CID } from 'multiformats/cid'
import { ConfigError, InvalidInputError, RhizomeError, TooLargeError } from '../model/errors.ts'
import { exportNameProblem, isExportName } from '../model/export-name.ts'
import { CID_CHARS_MAX, DURATION_MS_LIMIT, signalNameProblem } from '../model/limits.ts'
import { CpuGuard } from './cpu-guard.ts'
import {
  SandboxClosedError, SandboxCrashedError, SandboxOutputLimitError, WorkflowArgsLimitError, WorkflowDefinitionError,
  WorkflowRunsBusyError
} from './errors.ts'
import { CODE_BYTES_MAX, DEFAULT_WORKFLOW_LIMITS, limitsProblem, THROWN_MESSAGE_LENGTH_MAX, THROWN_NAME_LENGTH_MAX, WORKFLOW_CALL_ARGS_BYTES_MAX, WORKFLOW_COMMANDS_PER_ACTIVATION_MAX } from './limits.ts'
import type { SandboxLimits } from './limits.ts'
import { engineError, readOutcome } from './outcome.ts'
import type { FailureData } from '../model/errors.ts'
import { copyInto, releaseAll } from './run-call.ts'
import { SEED_BYTES_MAX } from './validate.ts'
import { argsToTape, encodeResult, tapeToValue } from './values.ts'
import type { Tape } from './values.ts'
import { decodeSource, loadWorkflow } from './workflow-load.ts'
import type { ActivationResult, Resolution, WorkflowCommand, WorkflowDone, WorkflowEngineStats, WorkflowOpenOptions, WorkflowRun } from './workflow-types.ts'

/**
 * Most workflow runs open at once. Each holds an isolate between activations: a few MiB when
 * idle, up to its memory limit (64 MiB by default) when full, so 16 stay within 1 GiB. A driver
 * that needs more closes idle runs; they replay from their history when needed again.
 */
export const DEFAULT_WORKFLOW_RUNS_OPEN_MAX = 16
/** Bound on the option itself, so a typo cannot ask for a million isolates. */
export const WORKFLOW_RUNS_OPEN_CEILING = 1024

export interface WorkflowEngineOptions {
  /** Most runs open at once (default 16); one more is refused with WorkflowRunsBusyError. */
  runsOpenMax?: number
}

const MIB = 1024 * 1024

/** A checked WorkflowOpenOptions. */
interface OpenRequest {
  workflowId: string
  source: string
  exportName: string
  args: Tape
  seed: Uint8Array
  limits: SandboxLimits
}

export class WorkflowEngine {
  readonly runsOpenMax: number
  private readonly runs = new Set<LiveRun>()
  private closed = false

  constructor (options: WorkflowEngineOptions = {}) {
    const max = options.runsOpenMax ?? DEFAULT_WORKFLOW_RUNS_OPEN_MAX
    if (!Number.isSafeInteger(max) || max < 1 || max > WORKFLOW_RUNS_OPEN_CEILING) {
      throw new ConfigError('runsOpenMax', `must be an integer from 1 to ${WORKFLOW_RUNS_OPEN_CEILING}, not ${max}`)
    }
    this.runsOpenMax = max
  }

  /**
   * Open a run and load its code. Throws for bad options (InvalidInputError, TooLargeError), when
   * `runsOpenMax` runs are open (WorkflowRunsBusyError, retryable) and when the engine is closed.
   * A bundle that fails to load opens anyway: its first activation reports the failure in `done`.
   */
  async openWorkflow (options: WorkflowOpenOptions): Promise<WorkflowRun> {
    if (this.closed) throw new SandboxClosedError()
    const request = checkOpen(options)
    if (this.runs.size >= this.runsOpenMax) throw new WorkflowRunsBusyError(this.runsOpenMax)
    const run = new LiveRun(request, () => this.runs.delete(run))
    this.runs.add(run)
    await run.load()
    if (this.closed) {
      run.close()
      throw new SandboxClosedError()
    }
    return run
  }

  /** Close every run: activations in flight fail with SandboxClosedError. */
  close (): void {
    this.closed = true
    for (const run of [...this.runs]) run.close()
  }

  stats (): WorkflowEngineStats {
    return { runsOpen: this.runs.size, runsOpenMax: this.runsOpenMax }
  }
}

export function createWorkflowEngine (options: WorkflowEngineOptions = {}): WorkflowEngine {
  return new WorkflowEngine(options)
}

function checkOpen (options: WorkflowOpenOptions): OpenRequest {
  if (typeof options !== 'object' || options === null) throw new InvalidInputError('workflow options must be an object')
  const { workflowId, code, exportName, args, seed } = options
  if (typeof workflowId !== 'string' || workflowId.length === 0 || workflowId.length > CID_CHARS_MAX) {
    throw new InvalidInputError(`workflowId must be a string of 1 to ${CID_CHARS_MAX} characters`)
  }
  if (!(code instanceof Uint8Array)) throw new InvalidInputError('code must be a Uint8Array')
  if (code.length > CODE_BYTES_MAX.js) throw new TooLargeError('workflow code', code.length, CODE_BYTES_MAX.js)
  if (!isExportName(exportName)) throw new InvalidInputError(`exportName ${exportNameProblem(exportName) ?? ''}`)
  if (!Array.isArray(args)) throw new InvalidInputError('args must be an array')
  if (!(seed instanceof Uint8Array)) throw new InvalidInputError('seed must be a Uint8Array')
  if (seed.length > SEED_BYTES_MAX) throw new TooLargeError('seed', seed.length, SEED_BYTES_MAX)
  const limits = options.limits ?? DEFAULT_WORKFLOW_LIMITS
  const problem = limitsProblem(limits)
  if (problem !== undefined) throw new InvalidInputError(problem)
  const tape = argsToTape(args)
  const argsBytes = dagCbor.encode(args).length
  if (argsBytes > WORKFLOW_CALL_ARGS_BYTES_MAX) throw new TooLargeError('workflow arguments', argsBytes, WORKFLOW_CALL_ARGS_BYTES_MAX)
  return { workflowId, source: decodeSource(code), exportName, args: tape, seed: new Uint8Array(seed), limits }
}

/** A resolution as the prelude reads it: every field present, so nothing is read from a prototype. */
interface ResolutionRecord {
  seq: number
  ok: boolean
  kinds: number[]
  vals: unknown[]
  cid: string
  cidBytes: Uint8Array
  error: { name: string, code: string, message: string, retryable: boolean }
}

const NO_ERROR = { name: '', code: '', message: '', retryable: false }

const COMMAND_TYPES: ReadonlySet<unknown> = new Set(['call', 'child', 'sleep', 'signal'])

class LiveRun implements WorkflowRun {
  readonly workflowId: string
  readonly exportName: string
  private readonly request: OpenRequest
  private readonly isolate: ivm.Isolate
  private readonly references: Array<{ release: () => void }> = []
  private readonly onRelease: () => void
  private dispatch: ivm.Reference | undefined
  /** Seq → whether the call asked for a Ref. */
  private readonly pending = new Map<number, boolean>()
  private nextSeq = 0
  private started = false
  private busy = false
  private state: 'open' | 'ended' | 'closed' = 'open'
  private released = false
  /** Why the bundle did not load; the first activation reports it. */
  private loadFailure: WorkflowDone | undefined
  private guard: CpuGuard | undefined

  constructor (request: OpenRequest, onRelease: () => void) {
    this.request = request
    this.workflowId = request.workflowId
    this.exportName = request.exportName
    this.onRelease = onRelease
    this.isolate = new ivm.Isolate({ memoryLimit: Math.ceil(request.limits.memoryBytesMax / MIB) })
  }

  async load (): Promise<void> {
    const guard = new CpuGuard(this.isolate, this.request.limits.timeMs)
    this.guard = guard
    try {
      this.dispatch = await guard.race(loadWorkflow({
        isolate: this.isolate,
        source: this.request.source,
        workflowId: this.workflowId,
        seed: this.request.seed,
        limits: this.request.limits,
        stopped: () => guard.reason !== undefined,
        references: this.references
      }))
    } catch (err) {
      if (guard.reason === 'closed') throw new SandboxClosedError()
      this.loadFailure = { ok: false, error: this.failure(err, guard).toData() }
      this.release()
    } finally {
      guard.clear()
      this.guard = undefined
    }
  }

  async activate (resolutions: Resolution[]): Promise<ActivationResult> {
    if (this.state === 'closed') throw new InvalidInputError('the workflow run is closed')
    if (this.state === 'ended') throw new InvalidInputError('the workflow run has ended; open a new run to replay it')
    if (this.busy) throw new InvalidInputError('an activation of this run is still running: await it before the next')
    const records = this.checkResolutions(resolutions)
    if (this.loadFailure !== undefined) {
      this.started = true
      return this.end(this.loadFailure, [])
    }
    this.busy = true
    const guard = new CpuGuard(this.isolate, this.request.limits.timeMs)
    this.guard = guard
    try {
      const record = await guard.race(this.step(records, guard))
      return this.read(record)
    } catch (err) {
      if (guard.reason === 'closed' || this.isClosed()) throw new SandboxClosedError()
      return this.end({ ok: false, error: this.failure(err, guard).toData() }, [])
    } finally {
      guard.clear()
      this.guard = undefined
      this.busy = false
    }
  }

  /** Read through a method: close() may change the state while an activation awaits. */
  private isClosed (): boolean {
    return this.state === 'closed'
  }

  pendingSeqs (): number[] {
    return [...this.pending.keys()]
  }

  close (): void {
    if (this.state === 'closed') return
    this.state = 'closed'
    this.guard?.kill('closed')
    this.release()
  }

  /** Start or deliver, let the microtasks drain, then collect what the code did. */
  private async step (records: ResolutionRecord[], guard: CpuGuard): Promise<unknown> {
    const dispatch = this.dispatch as ivm.Reference
    try {
      if (!this.started) {
        this.started = true
        await dispatch.apply(undefined, ['start', this.exportName, copyInto(this.request.args.kinds), copyInto(this.request.args.vals)])
      } else {
        await dispatch.apply(undefined, ['deliver', copyInto(records)])
      }
    } catch (err) {
      // isolated-vm reports a promise the code rejected and never handled as an error of the
      // call that ran it. That is not the run's outcome: its workflow's own result is.
      if (guard.reason !== undefined || this.isolate.isDisposed) throw err
    }
    return await dispatch.apply(undefined, ['collect'], { result: { copy: true } })
  }

  private checkResolutions (resolutions: Resolution[]): ResolutionRecord[] {
    if (!Array.isArray(resolutions)) throw new InvalidInputError('resolutions must be an array')
    if (!this.started) {
      if (resolutions.length > 0) throw new InvalidInputError('the first activation starts the workflow: it takes no resolutions')
      return []
    }
    const seen = new Set<number>()
    const records = resolutions.map(r => {
      const seq: unknown = r?.seq
      if (typeof seq !== 'number' || !this.pending.has(seq) || seen.has(seq)) {
        throw new InvalidInputError(`resolution for seq ${String(seq)}: no such call is pending (pending: ${this.pendingSeqs().join(', ') || 'none'})`)
      }
      seen.add(seq)
      return resolutionRecord(r, this.pending.get(seq) === true)
    })
    for (const seq of seen) this.pending.delete(seq)
    return records
  }

  private read (record: unknown): ActivationResult {
    if (typeof record !== 'object' || record === null || !Array.isArray((record as { commands?: unknown }).commands)) {
      throw new SandboxCrashedError('the workflow sandbox returned no activation record')
    }
    const { commands: raw, done, continued } = record as { commands: unknown[], done: unknown, continued: unknown }
    if (raw.length > WORKFLOW_COMMANDS_PER_ACTIVATION_MAX) throw new SandboxCrashedError('the workflow sandbox returned too many commands')
    const commands = raw.map(c => this.readCommand(c))
    if (done === null) return { commands }
    const remote = remoteFailure(done)
    if (remote !== undefined) return this.end({ ok: false, error: remote }, commands)
    const outcome = readOutcome(done, this.request.limits, this.exportName)
    if (outcome.error !== undefined) return this.end({ ok: false, error: outcome.error.toData() }, commands)
    const encoded = outcome.encoded as { value: unknown, bytes: Uint8Array }
    if (continued !== null && continued !== undefined) {
      const args = tapeToValue(continued)
      if (!Array.isArray(args)) throw new SandboxCrashedError('the workflow sandbox returned continueAsNew arguments that are not a list')
      const next = encodeArgs(args)
      return this.end({ ok: true, value: encoded.value, bytes: encoded.bytes, continueAsNew: { args: next.value as unknown[], argsBytes: next.bytes } }, commands)
    }
    return this.end({ ok: true, value: encoded.value, bytes: encoded.bytes }, commands)
  }

  /** Check one recorded command (written next to the code, so untrusted) and note its seq as pending. */
  private readCommand (c: unknown): WorkflowCommand {
    const r = (typeof c === 'object' && c !== null ? c : {}) as Record<string, unknown>
    if (r.seq !== this.nextSeq || !COMMAND_TYPES.has(r.type)) throw new SandboxCrashedError('the workflow sandbox returned a malformed command')
    this.nextSeq++
    const seq = r.seq
    if (r.type === 'sleep' || r.type === 'signal') return this.readWait(seq, r)
    const args = tapeToValue(r)
    if (!Array.isArray(args)) throw new SandboxCrashedError('the workflow sandbox returned arguments that are not a list')
    const encoded = encodeArgs(args)
    const exportName = r.export as string
    if (!isExportName(exportName)) throw new WorkflowDefinitionError(`a remote call names export ${shown(exportName)}, which ${exportNameProblem(exportName) ?? 'is not an export name'}`)
    if (r.type === 'child') {
      this.pending.set(seq, false)
      return { type: 'child', seq, export: exportName, args: encoded.value as unknown[], argsBytes: encoded.bytes }
    }
    const fn = this.checkedFn(r.fn)
    const ref = r.ref === true
    this.pending.set(seq, ref)
    return { type: 'call', seq, fn, export: exportName, args: encoded.value as unknown[], argsBytes: encoded.bytes, ref }
  }

  /** Function ids this run's calls named that were checked already: a fan-out names the same few
   *  thousands of times, and parsing each again was a tenth of reading its commands. */
  private readonly fnsChecked = new Set<string>()

  private checkedFn (fn: unknown): string {
    if (typeof fn === 'string' && this.fnsChecked.has(fn)) return fn
    const checked = checkFunctionId(fn)
    if (this.fnsChecked.size < FNS_CHECKED_MAX) this.fnsChecked.add(checked)
    return checked
  }

  /** A sleep or a signal wait: checked here too (the prelude's checks run next to the code). */
  private readWait (seq: number, r: Record<string, unknown>): WorkflowCommand {
    if (r.type === 'sleep') {
      const ms = r.ms
      if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 0 || ms > DURATION_MS_LIMIT) throw new SandboxCrashedError('the workflow sandbox returned a malformed sleep')
      this.pending.set(seq, false)
      return { type: 'sleep', seq, ms }
    }
    const problem = signalNameProblem(r.name)
    if (problem !== undefined) throw new WorkflowDefinitionError(`signal(name): the name ${problem}`)
    this.pending.set(seq, false)
    return { type: 'signal', seq, name: r.name as string }
  }

  private failure (err: unknown, guard: CpuGuard): RhizomeError {
    if (guard.reason !== undefined) return guard.error(guard.reason)
    return engineError(err, this.request.limits)
  }

  private end (done: WorkflowDone, commands: WorkflowCommand[]): ActivationResult {
    this.state = 'ended'
    this.release()
    return { commands, done }
  }

  /** Dispose the isolate and give the slot back, once. */
  private release (): void {
    if (this.released) return
    this.released = true
    releaseAll(this.references)
    if (!this.isolate.isDisposed) {
      try {
        this.isolate.dispose()
      } catch {
        // Already disposed by isolated-vm itself (memory limit).
      }
    }
    this.onRelease()
  }
}

function resolutionRecord (r: Resolution, ref: boolean): ResolutionRecord {
  const base = { seq: r.seq, kinds: [] as number[], vals: [] as unknown[], cid: '', cidBytes: new Uint8Array(0), error: NO_ERROR }
  if (r.ok === false) return { ...base, ok: false, error: resolutionError(r.seq, r.error) }
  if (r.ok !== true) throw new InvalidInputError(`resolution for seq ${(r as { seq: number }).seq}: ok must be true or false`)
  if (ref) {
    const cid = parseCid(r.ref)
    if (cid === undefined) throw new InvalidInputError(`resolution for seq ${r.seq}: the call asked for a Ref, so ref must be the result's CID`)
    return { ...base, ok: true, cid: cid.toString(), cidBytes: new Uint8Array(cid.bytes) }
  }
  if (r.value === undefined) throw new InvalidInputError(`resolution for seq ${r.seq}: value is missing (null is a value; undefined is not)`)
  const tape = argsToTape([r.value])
  return { ...base, ok: true, kinds: tape.kinds, vals: tape.vals }
}

function resolutionError (seq: number, error: unknown): ResolutionRecord['error'] {
  const e = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>
  if (typeof e.name !== 'string' || typeof e.code !== 'string' || typeof e.message !== 'string' || typeof e.retryable !== 'boolean') {
    throw new InvalidInputError(`resolution for seq ${seq}: error must be { name, code, message: string, retryable: boolean }`)
  }
  return {
    name: e.name.slice(0, THROWN_NAME_LENGTH_MAX),
    code: e.code.slice(0, THROWN_NAME_LENGTH_MAX),
    message: e.message.slice(0, THROWN_MESSAGE_LENGTH_MAX),
    retryable: e.retryable
  }
}

/** Function ids remembered as checked per run: a workflow calls a handful of functions; past this
 *  many distinct ones each is simply checked again (the set never grows with the calls). */
const FNS_CHECKED_MAX = 1024

function parseCid (text: unknown): CID | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > CID_CHARS_MAX) return undefined
  try {
    return CID.parse(text)
  } catch {
    return undefined
  }
}

/** A remote stub's function id: a CID in its canonical string form, so one function has one spelling. */
function checkFunctionId (fn: unknown): string {
  const cid = parseCid(fn)
  if (cid === undefined || cid.toString() !== fn) {
    throw new WorkflowDefinitionError(`a remote call names function ${shown(fn)}, which is not a CID in canonical form`)
  }
  return fn
}

function encodeArgs (args: unknown[]): { value: unknown, bytes: Uint8Array } {
  try {
    return encodeResult(args, WORKFLOW_CALL_ARGS_BYTES_MAX)
  } catch (err) {
    if (err instanceof SandboxOutputLimitError) throw new WorkflowArgsLimitError(err.bytes, WORKFLOW_CALL_ARGS_BYTES_MAX)
    throw err
  }
}

/** A value from the isolate, quoted and cut short for a message. */
function shown (value: unknown): string {
  const text = JSON.stringify(typeof value === 'string' ? value.slice(0, CID_CHARS_MAX) : typeof value)
  return typeof value === 'string' && value.length > CID_CHARS_MAX ? `${text}…` : text
}

/** An uncaught remote failure, as the prelude recorded it (next to the code: checked field by field). */
function remoteFailure (done: unknown): FailureData | undefined {
  const r = (typeof done === 'object' && done !== null ? done : {}) as Record<string, unknown>
  if (r.kind !== 'remote') return undefined
  const text = (v: unknown, max: number): string | undefined => typeof v === 'string' && v.length <= max ? v : undefined
  const name = text(r.name, 128)
  const code = text(r.code, 64)
  const message = text(r.message, 4096)
  if (name === undefined || code === undefined || !/^ERR_[A-Z0-9_]+$/.test(code) || message === undefined || typeof r.retryable !== 'boolean') {
    throw new SandboxCrashedError('the workflow sandbox returned a malformed failure')
  }
  return { name, code, message, retryable: r.retryable }
}
