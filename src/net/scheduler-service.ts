/**
 * The shell around the scheduler (src/protocol/scheduler): runs workflow tasks on the peers the
 * scheduler picks. A thin loop, like src/net/membership-service.ts: feed the machine (a task
 * submitted, the live view, a lost peer, an outcome, a due timer), drain `poll()` — start a call
 * for each `dispatch`, abort the copy named by each `cancel`, settle the task on `done` — and
 * re-arm one timer from `nextTimeoutMs()`.
 *
 * The run service uses it through `TaskExecutor.run`: one promise per task. Two runs asking for
 * the same task id at once share one scheduled task (its id names its function and inputs by
 * content, so it is the same work); it is cancelled only when every caller has given up.
 */
import { AbortedError, RhizomeError, TimeoutError } from '../model/errors.ts'
import type { Logger } from '../model/log.ts'
import { createScheduler } from '../protocol/scheduler/index.ts'
import type { DoneReason, PeerCandidate, Scheduler, SchedulerOptions } from '../protocol/scheduler/index.ts'
import type { Random } from '../protocol/random.ts'
import { SCHEDULER_OPTIONS_DEFAULTS } from '../protocol/scheduler/index.ts'
import { Lifecycle } from './lifecycle.ts'
import type { Operation } from './lifecycle.ts'
import type { CID } from 'multiformats/cid'

/**
 * How often the live view is read from membership while tasks are held: twice per default
 * announce interval (2 s), so a change of capacity or liveness reaches placement within a second,
 * without copying the view on every input. A lost peer is fed at once (`onPeerGone`).
 */
export const PEERS_REFRESH_MS = 1000
/** Timer floor: never spin faster than this even if the machine asks for "now" (as membership). */
const TICK_MS_MIN = 1

export interface ExecutorTask {
  /** The task's id (src/wire/task-codec.ts `taskId`): two calls with one id are one task. */
  taskId: string
  fn: CID
  export: string
  args: unknown[]
  /** Ref arguments (result CIDs) and the peer known to hold each: placement prefers holders. */
  inputs: Array<{ cid: string, peer: string }>
  /** The caller wants a Ref (the result's CID) rather than the value. */
  ref: boolean
}

export interface ExecutorResult {
  resultCid: string
  /** Inline dag-cbor bytes of the result, when the worker sent them. */
  bytes?: Uint8Array
  value?: unknown
  peer: string
  /** Copies dispatched (retries, re-placements and a speculative copy included). */
  attempts: number
  /** queueMs: waiting for a peer here plus in the worker's queue; fetchMs, runMs: the worker's;
   *  totalMs: from `run` to the result. */
  timings: { queueMs: number, fetchMs: number, runMs: number, totalMs: number }
}

export interface RunTaskOptions {
  signal?: AbortSignal
  /** Told of each copy as it is dispatched (progress events). */
  onAttempt?: (attempt: number, peer: string) => void
}

export interface TaskExecutor {
  run: (task: ExecutorTask, options?: RunTaskOptions) => Promise<ExecutorResult>
}

export interface CallTaskOptions {
  signal: AbortSignal
  ref?: boolean
  inputs?: Array<{ cid: string, peer: string }>
}

export interface CallTaskResult {
  resultCid: string
  bytes?: Uint8Array
  value?: unknown
  peer: string
  timings: { queueMs: number, fetchMs: number, runMs: number, totalMs?: number }
}

export interface SchedulerServiceComponents {
  /** Run one copy on one peer and verify the answer (TaskService.call). */
  callTask: (fn: CID, exportName: string, args: unknown[], peer: string, options: CallTaskOptions) => Promise<CallTaskResult>
  /** The live view (src/protocol/placement.ts `schedulerCandidates`). */
  candidates: () => PeerCandidate[]
  /** Subscribe to lost peers (gone, or restarted: src/protocol/scheduler `PeerLossTracker` over
   *  membership events); returns the unsubscribe. */
  onPeerGone: (listener: (peerId: string) => void) => () => void
  /** A monotonic ms clock. */
  now: () => number
  random: Random
  log: Logger
}

export type SchedulerServiceInit = Omit<SchedulerOptions, 'random'>

export class SchedulerQueueFullError extends RhizomeError {
  constructor (pendingMax: number) {
    super('ERR_SCHEDULER_QUEUE_FULL', `this peer already holds ${pendingMax} tasks to place`, {
      retryable: true,
      hint: 'wait for running tasks to finish before submitting more; the run service retries after the next task ends'
    })
    this.name = 'SchedulerQueueFullError'
  }
}

/** A task ended because `lossesMax` peers vanished while running it: it may be what kills them. */
export class TaskLostError extends RhizomeError {
  constructor (taskId: string, attempts: number) {
    super('ERR_TASK_LOST', `task ${taskId} lost its peer ${attempts} times`, {
      hint: 'the task may crash the peers that run it (memory, a runtime bug); run it alone with `rhizome call` to see'
    })
    this.name = 'TaskLostError'
  }
}

interface Waiter {
  resolve: (result: ExecutorResult) => void
  reject: (err: Error) => void
  onAttempt?: (attempt: number, peer: string) => void
  detach: () => void
}

interface RunningCopy {
  attempt: number
  controller: AbortController
  operation: Operation
  dispatchedMs: number
}

interface Entry {
  task: ExecutorTask
  submittedMs: number
  waiters: Set<Waiter>
  /** By peer id (the scheduler never runs two copies of a task on one peer). */
  copies: Map<string, RunningCopy>
  /** Answers of copies, by peer, until `done` picks the winner's. */
  results: Map<string, { result: CallTaskResult, dispatchedMs: number }>
  lastError: Error | undefined
}

export class SchedulerService implements TaskExecutor {
  private readonly components: SchedulerServiceComponents
  private readonly scheduler: Scheduler
  private readonly pendingMax: number
  private readonly attemptTimeoutMs: number
  private readonly lifecycle = new Lifecycle('the scheduler')
  private readonly entries = new Map<string, Entry>()
  private timer: ReturnType<typeof setTimeout> | undefined
  private lastRefreshMs = -Infinity
  private unsubscribe: (() => void) | undefined

  constructor (components: SchedulerServiceComponents, init: SchedulerServiceInit = {}) {
    this.components = components
    this.scheduler = createScheduler({ ...init, random: components.random })
    this.pendingMax = init.pendingMax ?? SCHEDULER_OPTIONS_DEFAULTS.pendingMax
    this.attemptTimeoutMs = init.attemptTimeoutMs ?? SCHEDULER_OPTIONS_DEFAULTS.attemptTimeoutMs
  }

  start (): void {
    this.lifecycle.start()
    this.unsubscribe = this.components.onPeerGone(peerId => {
      if (!this.lifecycle.started) return
      this.components.log.info('peer lost', { peer: peerId })
      this.scheduler.handlePeerGone(peerId, this.components.now())
      this.drain()
    })
  }

  /** Abort every copy in flight; every caller still waiting gets AbortedError. */
  stop (): void {
    this.lifecycle.stop()
    this.unsubscribe?.()
    this.unsubscribe = undefined
    for (const taskId of [...this.entries.keys()]) this.scheduler.handleCancel(taskId, this.components.now())
    this.drain()
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }

  /** Counts of the machine, for status and tests. */
  counts (): ReturnType<Scheduler['counts']> {
    return this.scheduler.counts()
  }

  async run (task: ExecutorTask, options: RunTaskOptions = {}): Promise<ExecutorResult> {
    if (!this.lifecycle.started) throw this.lifecycle.stoppedError()
    if (options.signal?.aborted === true) throw new AbortedError('the task was cancelled before it was scheduled')
    let entry = this.entries.get(task.taskId)
    if (entry === undefined) {
      const now = this.components.now()
      this.refreshPeers(now, false)
      entry = { task, submittedMs: now, waiters: new Set(), copies: new Map(), results: new Map(), lastError: undefined }
      this.entries.set(task.taskId, entry)
      const verdict = this.scheduler.handleSubmit({ taskId: task.taskId, fn: task.fn.toString(), inputs: task.inputs }, now)
      if (verdict === 'queue-full') {
        this.entries.delete(task.taskId)
        throw new SchedulerQueueFullError(this.pendingMax)
      }
    }
    const joined = entry
    const promise = new Promise<ExecutorResult>((resolve, reject) => {
      const signal = options.signal
      const onAbort = (): void => { this.leave(joined, waiter) }
      const waiter: Waiter = {
        resolve,
        reject,
        onAttempt: options.onAttempt,
        detach: () => signal?.removeEventListener('abort', onAbort)
      }
      joined.waiters.add(waiter)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
    this.drain()
    return await promise
  }

  /** A caller gave up: it hears AbortedError; the task is cancelled once nobody waits for it. */
  private leave (entry: Entry, waiter: Waiter): void {
    if (!entry.waiters.delete(waiter)) return
    waiter.detach()
    waiter.reject(new AbortedError('the task was cancelled by its caller'))
    if (entry.waiters.size > 0 || this.entries.get(entry.task.taskId) !== entry) return
    this.scheduler.handleCancel(entry.task.taskId, this.components.now())
    this.drain()
  }

  /** Carry out the machine's outputs; the one place the timer is re-armed. */
  private drain (): void {
    for (let out = this.scheduler.poll(); out !== undefined; out = this.scheduler.poll()) {
      const entry = this.entries.get(out.taskId)
      if (entry === undefined) continue // only a task this shell submitted has outputs
      if (out.type === 'dispatch') this.dispatch(entry, out.peerId, out.attempt)
      else if (out.type === 'cancel') {
        const copy = entry.copies.get(out.peerId)
        if (copy !== undefined && copy.attempt === out.attempt) {
          entry.copies.delete(out.peerId)
          copy.controller.abort(new AbortedError('another copy answered, or the task was cancelled'))
        }
      } else if (out.ok) {
        this.settle(entry, out.peerId, out.attempts)
      } else {
        this.fail(entry, out.reason, out.attempts)
      }
    }
    this.arm()
  }

  private dispatch (entry: Entry, peerId: string, attempt: number): void {
    const { task } = entry
    const controller = new AbortController()
    // The machine times the attempt (attemptTimeoutMs); this deadline only bounds the call's
    // resources if an answer to the machine's cancel never comes.
    const operation = this.lifecycle.operation({ signal: controller.signal, timeoutMs: this.attemptTimeoutMs })
    const copy: RunningCopy = { attempt, controller, operation, dispatchedMs: this.components.now() }
    entry.copies.set(peerId, copy)
    for (const waiter of entry.waiters) waiter.onAttempt?.(attempt, peerId)
    this.components.log.debug('task dispatched', { task: task.taskId, peer: peerId, attempt })
    this.components.callTask(task.fn, task.export, task.args, peerId, { signal: operation.signal, ref: task.ref, inputs: task.inputs }).then(result => {
      if (controller.signal.aborted || this.lifecycle.stopping) return
      entry.results.set(peerId, { result, dispatchedMs: copy.dispatchedMs })
      this.outcome(entry, peerId, attempt, true, false)
    }, (err: unknown) => {
      if (controller.signal.aborted || this.lifecycle.stopping) return
      const error = err instanceof Error ? err : new Error(String(err))
      entry.lastError = error
      const retryable = error instanceof RhizomeError ? error.retryable : false
      // A dial that failed says the peer is gone, whatever the view says yet (scheduler UNREACHABLE_COOLDOWN_MS).
      const unreachable = error instanceof RhizomeError && error.code === 'ERR_PEER_UNAVAILABLE'
      this.components.log.info('task attempt failed', { task: task.taskId, peer: peerId, attempt, retryable, unreachable, error: error.message })
      this.outcome(entry, peerId, attempt, false, retryable, unreachable)
    }).finally(() => {
      operation.release()
      if (entry.copies.get(peerId) === copy) entry.copies.delete(peerId)
    })
  }

  private outcome (entry: Entry, peerId: string, attempt: number, ok: boolean, retryable: boolean, unreachable = false): void {
    this.scheduler.handleOutcome(entry.task.taskId, peerId, ok ? { ok: true } : { ok: false, retryable, unreachable }, this.components.now(), attempt)
    this.drain()
  }

  private settle (entry: Entry, peerId: string, attempts: number): void {
    this.entries.delete(entry.task.taskId)
    const answer = entry.results.get(peerId)
    if (answer === undefined) {
      this.rejectAll(entry, new Error(`assertion failed: the scheduler accepted an answer from ${peerId} that never came`))
      return
    }
    const { result, dispatchedMs } = answer
    const now = this.components.now()
    const out: ExecutorResult = {
      resultCid: result.resultCid,
      peer: result.peer,
      attempts,
      timings: {
        queueMs: Math.max(0, dispatchedMs - entry.submittedMs) + result.timings.queueMs,
        fetchMs: result.timings.fetchMs,
        runMs: result.timings.runMs,
        totalMs: Math.max(0, now - entry.submittedMs)
      }
    }
    if (result.bytes !== undefined) out.bytes = result.bytes
    if (result.value !== undefined) out.value = result.value
    for (const waiter of entry.waiters) {
      waiter.detach()
      waiter.resolve(out)
    }
    entry.waiters.clear()
  }

  private fail (entry: Entry, reason: DoneReason, attempts: number): void {
    this.entries.delete(entry.task.taskId)
    let error: Error
    if (reason === 'cancelled') error = this.lifecycle.stopping ? this.lifecycle.stoppedError() : new AbortedError('the task was cancelled')
    else if (reason === 'lost') error = new TaskLostError(entry.task.taskId, attempts)
    else {
      error = entry.lastError ?? new TimeoutError(`task ${entry.task.taskId} got no answer within ${this.attemptTimeoutMs} ms on ${attempts} peers`, {
        hint: 'the peers may be overloaded or unreachable; `rhizome peers` shows their state'
      })
    }
    this.rejectAll(entry, error)
  }

  private rejectAll (entry: Entry, error: Error): void {
    for (const waiter of entry.waiters) {
      waiter.detach()
      waiter.reject(error)
    }
    entry.waiters.clear()
  }

  /** Feed the live view if it is older than PEERS_REFRESH_MS (or `force`). */
  private refreshPeers (now: number, force: boolean): void {
    if (!force && now - this.lastRefreshMs < PEERS_REFRESH_MS) return
    this.lastRefreshMs = now
    this.scheduler.handlePeers(this.components.candidates(), now)
  }

  private tick (): void {
    this.timer = undefined
    if (!this.lifecycle.started) return
    const now = this.components.now()
    if (this.entries.size > 0) this.refreshPeers(now, false)
    this.scheduler.handleTimeout(now)
    this.drain()
  }

  private arm (): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    if (!this.lifecycle.started || this.entries.size === 0) return
    const now = this.components.now()
    let at = this.lastRefreshMs + PEERS_REFRESH_MS
    const next = this.scheduler.nextTimeoutMs()
    if (next !== undefined && next < at) at = next
    this.timer = setTimeout(() => { this.tick() }, Math.max(TICK_MS_MIN, at - now))
    this.timer.unref?.()
  }
}
