/**
 * The failures a run driver names. Each reaches the workflow code (a rejected call) or the run's
 * outcome as `FailureData` (`toData()`), never as a thrown exception: they are expected ends of
 * a run, not bugs. None is retryable: running the same code on the same inputs ends the same way.
 */
import { RhizomeError } from '../../model/errors.ts'
import type { RhizomeErrorOptions } from '../../model/errors.ts'

/** A child run's id equals the id of this run or of one of its ancestors: starting it would wait
 *  on itself forever. Delivered to the code as the rejection of that child call. */
export class WorkflowCycleError extends RhizomeError {
  readonly runId: string
  constructor (runId: string, options: RhizomeErrorOptions = {}) {
    super('ERR_WORKFLOW_CYCLE', `child run ${runId} is this run or one of its ancestors: it would wait on itself`, {
      hint: 'a workflow that calls itself must change its arguments on every level (e.g. n - 1), so each child is a new run',
      ...options
    })
    this.name = 'WorkflowCycleError'
    this.runId = runId
  }
}

/** A child run would be nested deeper than `childDepthMax`. Delivered as the rejection of that call. */
export class WorkflowDepthError extends RhizomeError {
  readonly depthMax: number
  constructor (depthMax: number, options: RhizomeErrorOptions = {}) {
    super('ERR_WORKFLOW_DEPTH', `a child run here would be nested more than ${depthMax} levels deep`, {
      hint: 'flatten the recursion: start the children from one parent, or do the inner levels as plain function calls',
      ...options
    })
    this.name = 'WorkflowDepthError'
    this.depthMax = depthMax
  }
}

export type HistoryLimit = 'commandsMax' | 'memoEntriesMax' | 'argsBytesMax' | 'recordBytesMax'

const HISTORY_LIMIT_WHAT: Record<HistoryLimit, string> = {
  commandsMax: 'calls',
  memoEntriesMax: 'distinct tasks, child runs, timers and signals',
  argsBytesMax: 'bytes of call arguments',
  recordBytesMax: 'bytes of recorded signals and timers'
}

/** The run's history outgrew one of its limits (`limit` names the option). Ends the run. */
export class RunHistoryLimitError extends RhizomeError {
  readonly limit: HistoryLimit
  readonly value: number
  constructor (limit: HistoryLimit, value: number, options: RhizomeErrorOptions = {}) {
    const what = HISTORY_LIMIT_WHAT[limit]
    super('ERR_RUN_HISTORY_LIMIT', `the run issued more than ${value} ${what} (${limit})`, {
      hint: 'end the run with `return continueAsNew(...args)` to go on as a new run with a fresh history, split the work into child runs, or pass large inputs as blobs (Ref) instead of arguments',
      ...options
    })
    this.name = 'RunHistoryLimitError'
    this.limit = limit
    this.value = value
  }
}

/** The workflow code is waiting, but on nothing Rhizome started: no call of it is in flight and it
 *  did not return (e.g. it awaits a promise that nothing resolves). It could never go on. */
export class WorkflowStalledError extends RhizomeError {
  constructor (options: RhizomeErrorOptions = {}) {
    super('ERR_WORKFLOW_STALLED', 'the workflow is waiting, but no call it made is still running', {
      hint: 'await only remote calls (and values derived from them); a promise that nothing resolves never returns',
      ...options
    })
    this.name = 'WorkflowStalledError'
  }
}

/** The run was cancelled (by its caller, or because its parent ended). */
export class RunCancelledError extends RhizomeError {
  constructor (options: RhizomeErrorOptions = {}) {
    super('ERR_RUN_CANCELLED', 'the run was cancelled', options)
    this.name = 'RunCancelledError'
  }
}

/** The run did not finish within `runTimeoutMs` of its start. */
export class RunTimeoutError extends RhizomeError {
  readonly timeoutMs: number
  constructor (timeoutMs: number, options: RhizomeErrorOptions = {}) {
    super('ERR_RUN_TIMEOUT', `the run did not finish within ${timeoutMs} ms`, {
      hint: 'start it with a longer runTimeoutMs if it is expected to take this long',
      ...options
    })
    this.name = 'RunTimeoutError'
    this.timeoutMs = timeoutMs
  }
}

/** One activation of the workflow code was not answered within `activationTimeoutMs`. */
export class ActivationTimeoutError extends RhizomeError {
  readonly timeoutMs: number
  constructor (timeoutMs: number, options: RhizomeErrorOptions = {}) {
    super('ERR_ACTIVATION_TIMEOUT', `the workflow code did not answer an activation within ${timeoutMs} ms`, {
      hint: 'workflow code should only call functions and combine their results; move heavy computation into a function',
      ...options
    })
    this.name = 'ActivationTimeoutError'
    this.timeoutMs = timeoutMs
  }
}
