/**
 * The shell around the scheduler (src/protocol/scheduler) and the verification machine
 * (src/protocol/verify): runs workflow tasks on the peers the scheduler picks, as many times as
 * the task's verification policy asks. A thin loop, like src/net/membership-service.ts: feed the
 * machines (a task submitted, the live view, a lost peer, an outcome, a due timer, a proven
 * liar), drain both `poll()`s — submit each replica the verifier `place`s to the scheduler (its
 * own scheduler task `TASK#n`, in the task's group, so replicas land on distinct peers), start a
 * call for each `dispatch`, abort the copy named by each `cancel`, hand each replica's answer to
 * the verifier, settle the task on `accepted` / `failed`, pass `verdict`s to the run service,
 * lie proofs and observations to the trust service — and re-arm one timer.
 *
 * The run service uses it through `TaskExecutor.run`: one promise per task. Two runs asking for
 * the same task id at once share one task (its id names its function and inputs by content, so it
 * is the same work); it is cancelled only when every caller has given up. An accepted task is
 * kept a while (RETAINED_TASKS_MAX, RETAINED_BYTES_MAX): a later ask is answered from it, and a
 * re-check (its peer proven a liar) can run it again.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { AbortedError, RhizomeError, TimeoutError } from '../model/errors.ts'
import type { Logger } from '../model/log.ts'
import type { VerificationPolicy } from '../model/verification.ts'
import { createScheduler } from '../protocol/scheduler/index.ts'
import type { DoneReason, PeerCandidate, Scheduler, SchedulerOptions, SchedulerOutput } from '../protocol/scheduler/index.ts'
import type { Random } from '../protocol/random.ts'
import { SCHEDULER_OPTIONS_DEFAULTS } from '../protocol/scheduler/index.ts'
import { createVerifier } from '../protocol/verify/index.ts'
import type { Attested, PeerStanding, Verifier, VerifierOutput } from '../protocol/verify/index.ts'
import type { LieProof } from '../wire/proof-codec.ts'
import { Lifecycle } from './lifecycle.ts'
import type { Operation } from './lifecycle.ts'

/**
 * How often the live view is read from membership while tasks are held: twice per default
 * announce interval (2 s), so a change of capacity or liveness reaches placement within a second,
 * without copying the view on every input. A lost peer is fed at once (`onPeerGone`).
 */
export const PEERS_REFRESH_MS = 1000
/** Timer floor: never spin faster than this even if the machine asks for "now" (as membership). */
const TICK_MS_MIN = 1
/**
 * Accepted tasks kept after they settle, so a later ask is answered without running them again
 * and a re-check (their peer proven to lie) still has their function and arguments: the most
 * recent 4,096, and their arguments at most 64 MiB in all (a task's arguments may be up to 1 MiB;
 * a fan of small tasks keeps thousands). A re-check of a task no longer kept fails by name.
 */
export const RETAINED_TASKS_MAX = 4096
export const RETAINED_BYTES_MAX = 64 * 1024 * 1024

/** One execution (replica 1) on one peer, no spot checks: what a task without a policy gets. */
export const SOLO_POLICY: VerificationPolicy = Object.freeze({ replicas: 1, quorum: 1, spotCheckRate: 0 })

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
  /** How its result is verified (the function's, or the driving peer's default). Default SOLO_POLICY. */
  policy?: VerificationPolicy
  /** Its arguments' encoded size, when the caller has it (RETAINED_BYTES_MAX): else encoded again here. */
  argsBytes?: number
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
  /** The signed answers that agreed on this result (the first is `peer`'s). */
  attestations: Provenance[]
  /** A spot check of this result is under way: a `verdict` for its task id follows. */
  checking: boolean
}

/** One signed answer for a task, and how verification counted it. */
export interface Provenance {
  peer: string
  resultCid: string
  signature: Uint8Array
  /** accepted: its result was used; agreed: it matched the accepted one; disagreed: it did not;
   *  checked: a spot check or re-check that matched. */
  role: 'accepted' | 'agreed' | 'disagreed' | 'checked'
}

/** What happened to an accepted result after it was used (the run service passes it to the run driver). */
export type TaskVerdict =
  /** It is being re-checked: its peer was proven to lie. */
  | { type: 'open' }
  | { type: 'confirmed' }
  /** It was wrong: `result` is the one a quorum agreed on instead. */
  | { type: 'disproven', result: { resultCid: string, bytes?: Uint8Array, peer: string } }

/** What verification needs of the trust service (src/net/trust-service.ts). */
export interface SchedulerTrust {
  standing: (peerId: string) => PeerStanding
  /** 0..1, for placement. */
  score: (peerId: string) => number
  observe: (peerId: string, kind: 'agreed' | 'disagreed' | 'failed') => void
  prove: (proof: LieProof) => void
  onLiar: (listener: (peerId: string) => void) => () => void
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
  /** The worker's attestation signature (absent only from test stubs). */
  signature?: Uint8Array
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
  /** Reputation and lie proofs. Absent: every peer is 'unknown' and nothing is proven. */
  trust?: SchedulerTrust
  /** Keep a task's signed answers (src/store/verify-repo.ts), for `rhizome attestations`. */
  recordAttestations?: (taskId: string, rows: Provenance[]) => void
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

/** One replica of a task: a scheduler task of its own (`TASK#n`). */
interface Replica {
  n: number
  /** By peer id (the scheduler never runs two copies of a task on one peer). */
  copies: Map<string, RunningCopy>
  /** Answers of copies, by peer, until the scheduler's `done` picks the winner's. */
  results: Map<string, { result: CallTaskResult, dispatchedMs: number }>
  /** The answer the scheduler accepted for this replica. */
  answer: { result: CallTaskResult, dispatchedMs: number } | undefined
  lastError: Error | undefined
  /** Still held by the scheduler. */
  scheduled: boolean
  /** The peer the verifier was last told this replica runs on. */
  placedOn: string | undefined
}

interface Entry {
  task: ExecutorTask
  policy: VerificationPolicy
  submittedMs: number
  waiters: Set<Waiter>
  replicas: Map<number, Replica>
  /** Copies dispatched over all replicas. */
  attempts: number
  /** Set once the verifier accepted a result: later asks are answered with it. */
  accepted: ExecutorResult | undefined
  /** The verifier ended the task (accepted or failed). */
  settled: boolean
  /** Estimated bytes of its arguments, counted against RETAINED_BYTES_MAX once settled. */
  retainedBytes: number
}

/** No `quorum` of a task's replicas agreed, even after extra replicas. */
export class QuorumNotReachedError extends RhizomeError {
  readonly attestations: Array<{ peer: string, resultCid: string }>
  constructor (taskId: string, quorum: number | undefined, attestations: Array<{ peer: string, resultCid: string }>) {
    const listed = attestations.map(a => `${a.peer} → ${a.resultCid}`).join('; ')
    super('ERR_QUORUM_NOT_REACHED', `no ${quorum ?? 'quorum'} of the answers for task ${taskId} agreed: ${listed === '' ? 'no answers' : listed}`, {
      hint: 'peers disagree on this result: a function that is not deterministic cannot be verified by replicas (deploy it with --replicas 1), otherwise several peers are lying; `rhizome attestations TASK` shows who said what'
    })
    this.name = 'QuorumNotReachedError'
    this.attestations = attestations
  }
}

/** A task's replicas need more distinct peers than the network has. */
export class NotEnoughPeersError extends RhizomeError {
  constructor (taskId: string, replicas: number) {
    super('ERR_NOT_ENOUGH_PEERS', `task ${taskId} needs ${replicas} distinct peers to run its replicas on, and the network has too few`, {
      hint: 'start more peers (`rhizome node start`), or deploy the function with fewer --replicas'
    })
    this.name = 'NotEnoughPeersError'
  }
}

/** A re-check needs a task this peer no longer keeps (RETAINED_TASKS_MAX). */
export class TaskForgottenError extends RhizomeError {
  constructor (taskId: string) {
    super('ERR_TASK_FORGOTTEN', `task ${taskId} is no longer kept here, so it cannot be checked again`, {
      hint: 'its run has ended long ago; run it again to get a verified result'
    })
    this.name = 'TaskForgottenError'
  }
}

export class SchedulerService implements TaskExecutor {
  private readonly components: SchedulerServiceComponents
  private readonly scheduler: Scheduler
  private readonly verifier: Verifier
  private readonly pendingMax: number
  private readonly attemptTimeoutMs: number
  private readonly lifecycle = new Lifecycle('the scheduler')
  /** Held and retained tasks, in the order they were submitted (retained ones evicted oldest first). */
  private readonly entries = new Map<string, Entry>()
  private retainedBytes = 0
  private retainedCount = 0
  /** Accepted results a check is open on. */
  private readonly checking = new Set<string>()
  private readonly verdictListeners = new Set<(taskId: string, verdict: TaskVerdict) => void>()
  private timer: ReturnType<typeof setTimeout> | undefined
  private lastRefreshMs = -Infinity
  private unsubscribe: Array<() => void> = []
  /** Replicas placed, spot checks and re-checks among them, lies proven (status, tests, bench). */
  readonly counters = { replicas: 0, checks: 0, lies: 0, quorumFailures: 0 }

  constructor (components: SchedulerServiceComponents, init: SchedulerServiceInit = {}) {
    this.components = components
    this.scheduler = createScheduler({ ...init, random: components.random })
    const trust = components.trust
    this.verifier = createVerifier({ random: components.random.fork(), standing: (peerId) => trust?.standing(peerId) ?? 'unknown', retainMax: RETAINED_TASKS_MAX })
    this.pendingMax = init.pendingMax ?? SCHEDULER_OPTIONS_DEFAULTS.pendingMax
    this.attemptTimeoutMs = init.attemptTimeoutMs ?? SCHEDULER_OPTIONS_DEFAULTS.attemptTimeoutMs
  }

  start (): void {
    this.lifecycle.start()
    this.unsubscribe.push(this.components.onPeerGone(peerId => {
      if (!this.lifecycle.started) return
      this.components.log.info('peer lost', { peer: peerId })
      this.scheduler.handlePeerGone(peerId, this.components.now())
      this.drain()
    }))
    const trust = this.components.trust
    if (trust !== undefined) {
      this.unsubscribe.push(trust.onLiar(peerId => {
        if (!this.lifecycle.started) return
        const now = this.components.now()
        this.verifier.handleLiar(peerId, now)
        this.refreshPeers(now, true)
        this.drain()
      }))
    }
  }

  /** Abort every copy in flight; every caller still waiting gets AbortedError. */
  stop (): void {
    this.lifecycle.stop()
    for (const unsubscribe of this.unsubscribe) unsubscribe()
    this.unsubscribe = []
    const now = this.components.now()
    for (const [taskId, entry] of [...this.entries]) {
      if (!entry.settled) this.rejectAll(entry, this.lifecycle.stoppedError())
      this.verifier.handleCancel(taskId, now)
    }
    this.drain()
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }

  /** Counts of the scheduler machine, for status and tests. */
  counts (): ReturnType<Scheduler['counts']> {
    return this.scheduler.counts()
  }

  /** Listen for verdicts on accepted results (the run service); returns the unsubscribe. */
  onVerdict (listener: (taskId: string, verdict: TaskVerdict) => void): () => void {
    this.verdictListeners.add(listener)
    return () => { this.verdictListeners.delete(listener) }
  }

  async run (task: ExecutorTask, options: RunTaskOptions = {}): Promise<ExecutorResult> {
    if (!this.lifecycle.started) throw this.lifecycle.stoppedError()
    if (options.signal?.aborted === true) throw new AbortedError('the task was cancelled before it was scheduled')
    let entry = this.entries.get(task.taskId)
    if (entry?.accepted !== undefined) return { ...entry.accepted, checking: this.checking.has(task.taskId) }
    if (entry !== undefined && entry.settled) {
      // Failed earlier and still kept: ask again afresh.
      this.forget(entry)
      entry = undefined
    }
    if (entry === undefined) {
      const policy = task.policy ?? SOLO_POLICY
      if (this.scheduler.counts().pending + policy.replicas > this.pendingMax) throw new SchedulerQueueFullError(this.pendingMax)
      const now = this.components.now()
      this.refreshPeers(now, false)
      entry = { task, policy, submittedMs: now, waiters: new Set(), replicas: new Map(), attempts: 0, accepted: undefined, settled: false, retainedBytes: 0 }
      this.entries.set(task.taskId, entry)
      if (this.verifier.handleSubmit(task.taskId, policy, now) === 'duplicate') {
        // The verifier still keeps it for re-checks, but this shell let its result go: start afresh.
        this.verifier.handleCancel(task.taskId, now)
        this.verifier.handleSubmit(task.taskId, policy, now)
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
    if (entry.waiters.size > 0 || entry.settled || this.entries.get(entry.task.taskId) !== entry) return
    this.verifier.handleCancel(entry.task.taskId, this.components.now())
    this.drain() // its replicas' copies are aborted here, while the entry still names them
    this.forget(entry)
  }

  /** Carry out both machines' outputs until neither has more; the one place the timer is re-armed. */
  private drain (): void {
    for (let moved = true; moved;) {
      moved = false
      for (let out = this.verifier.poll(); out !== undefined; out = this.verifier.poll()) {
        moved = true
        this.onVerifier(out)
      }
      for (let out = this.scheduler.poll(); out !== undefined; out = this.scheduler.poll()) {
        moved = true
        this.onScheduler(out)
      }
    }
    this.arm()
  }

  private onVerifier (out: VerifierOutput): void {
    if (out.type === 'place') this.place(out.taskId, out.replica, out.avoid, out.check)
    else if (out.type === 'drop') this.scheduler.handleCancel(replicaId(out.taskId, out.replica), this.components.now())
    else if (out.type === 'accepted') this.accept(out)
    else if (out.type === 'failed') this.failTask(out)
    else if (out.type === 'reopened') {
      this.checking.add(out.taskId)
      this.tell(out.taskId, { type: 'open' })
    } else if (out.type === 'verdict') this.verdict(out)
    else if (out.type === 'proof') this.proof(out.proof)
    else this.components.trust?.observe(out.peerId, out.kind)
  }

  private onScheduler (out: SchedulerOutput): void {
    const [taskId, n] = parseReplicaId(out.taskId)
    const entry = this.entries.get(taskId)
    const replica = entry?.replicas.get(n)
    if (entry === undefined || replica === undefined) return // only a replica this shell submitted has outputs
    if (out.type === 'dispatch') this.dispatch(entry, replica, out.peerId, out.attempt, out.speculative)
    else if (out.type === 'cancel') {
      const copy = replica.copies.get(out.peerId)
      if (copy !== undefined && copy.attempt === out.attempt) {
        replica.copies.delete(out.peerId)
        copy.controller.abort(new AbortedError('another copy answered, or the task was cancelled'))
      }
    } else {
      replica.scheduled = false
      if (out.ok) this.replicaAnswered(entry, replica, out.peerId)
      else this.replicaFailed(entry, replica, out.reason, out.attempts)
      this.evict()
    }
  }

  /** The verifier wants replica `n` run, on none of `avoid`. */
  private place (taskId: string, n: number, avoid: string[], check: boolean): void {
    const now = this.components.now()
    const entry = this.entries.get(taskId)
    if (entry === undefined) {
      const error = new TaskForgottenError(taskId)
      this.verifier.handleFailed(taskId, n, { retryable: false, code: error.code, message: error.message }, now)
      return
    }
    this.counters.replicas += 1
    if (check) this.counters.checks += 1
    const { task } = entry
    const replica: Replica = { n, copies: new Map(), results: new Map(), answer: undefined, lastError: undefined, scheduled: true, placedOn: undefined }
    entry.replicas.set(n, replica)
    const verdict = this.scheduler.handleSubmit({ taskId: replicaId(taskId, n), fn: task.fn.toString(), inputs: task.inputs, avoid, group: taskId }, now)
    if (verdict === 'queue-full') {
      replica.scheduled = false
      const error = new SchedulerQueueFullError(this.pendingMax)
      replica.lastError = error
      this.verifier.handleFailed(taskId, n, { retryable: true, code: error.code, message: error.message }, now)
    }
  }

  private dispatch (entry: Entry, replica: Replica, peerId: string, attempt: number, speculative: boolean): void {
    const { task } = entry
    const controller = new AbortController()
    // The machine times the attempt (attemptTimeoutMs); this deadline only bounds the call's
    // resources if an answer to the machine's cancel never comes.
    const operation = this.lifecycle.operation({ signal: controller.signal, timeoutMs: this.attemptTimeoutMs })
    const copy: RunningCopy = { attempt, controller, operation, dispatchedMs: this.components.now() }
    replica.copies.set(peerId, copy)
    entry.attempts += 1
    // A speculative copy (the scheduler's backup for a straggler) is the same replica on a second
    // peer: the verifier hears of it only if it is the copy that answers (replicaAnswered).
    if (!speculative) this.tellPlaced(task.taskId, replica, peerId)
    for (const waiter of entry.waiters) waiter.onAttempt?.(entry.attempts, peerId)
    this.components.log.debug('task dispatched', { task: task.taskId, replica: replica.n, peer: peerId, attempt })
    const rid = replicaId(task.taskId, replica.n)
    this.components.callTask(task.fn, task.export, task.args, peerId, { signal: operation.signal, ref: task.ref, inputs: task.inputs }).then(result => {
      if (controller.signal.aborted || this.lifecycle.stopping) return
      replica.results.set(peerId, { result, dispatchedMs: copy.dispatchedMs })
      this.outcome(rid, peerId, attempt, true, false)
    }, (err: unknown) => {
      if (controller.signal.aborted || this.lifecycle.stopping) return
      const error = err instanceof Error ? err : new Error(String(err))
      replica.lastError = error
      const retryable = error instanceof RhizomeError ? error.retryable : false
      // A dial that failed says the peer is gone, whatever the view says yet (scheduler UNREACHABLE_COOLDOWN_MS).
      const unreachable = error instanceof RhizomeError && error.code === 'ERR_PEER_UNAVAILABLE'
      this.components.log.info('task attempt failed', { task: task.taskId, replica: replica.n, peer: peerId, attempt, retryable, unreachable, error: error.message })
      this.outcome(rid, peerId, attempt, false, retryable, unreachable)
    }).finally(() => {
      operation.release()
      if (replica.copies.get(peerId) === copy) replica.copies.delete(peerId)
    })
  }

  private outcome (rid: string, peerId: string, attempt: number, ok: boolean, retryable: boolean, unreachable = false): void {
    this.scheduler.handleOutcome(rid, peerId, ok ? { ok: true } : { ok: false, retryable, unreachable }, this.components.now(), attempt)
    this.drain()
  }

  private replicaAnswered (entry: Entry, replica: Replica, peerId: string): void {
    const answer = replica.results.get(peerId)
    replica.results.clear()
    if (answer === undefined) {
      const error = new Error(`assertion failed: the scheduler accepted an answer from ${peerId} that never came`)
      this.verifier.handleFailed(entry.task.taskId, replica.n, { retryable: false, code: 'ERR_INTERNAL', message: error.message }, this.components.now())
      return
    }
    replica.answer = answer
    const { result } = answer
    if (replica.placedOn !== peerId) this.tellPlaced(entry.task.taskId, replica, peerId)
    const attested: Attested = { peerId: result.peer, resultCid: result.resultCid, signature: result.signature ?? new Uint8Array() }
    this.verifier.handleResult(entry.task.taskId, replica.n, attested, this.components.now())
  }

  private tellPlaced (taskId: string, replica: Replica, peerId: string): void {
    replica.placedOn = peerId
    this.verifier.handlePlaced(taskId, replica.n, peerId, this.components.now())
  }

  private replicaFailed (entry: Entry, replica: Replica, reason: DoneReason, attempts: number): void {
    const taskId = entry.task.taskId
    let error: Error
    if (reason === 'cancelled') error = this.lifecycle.stopping ? this.lifecycle.stoppedError() : new AbortedError('the task was cancelled')
    else if (reason === 'lost') error = new TaskLostError(taskId, attempts)
    else if (reason === 'unplaceable') error = new NotEnoughPeersError(taskId, entry.policy.replicas)
    else {
      error = replica.lastError ?? new TimeoutError(`task ${taskId} got no answer within ${this.attemptTimeoutMs} ms on ${attempts} peers`, {
        hint: 'the peers may be overloaded or unreachable; `rhizome peers` shows their state'
      })
    }
    replica.lastError = error
    const retryable = error instanceof RhizomeError ? error.retryable : false
    const code = error instanceof RhizomeError ? error.code : 'ERR_INTERNAL'
    this.verifier.handleFailed(taskId, replica.n, { retryable, code, message: error.message }, this.components.now())
  }

  private accept (out: Extract<VerifierOutput, { type: 'accepted' }>): void {
    const entry = this.entries.get(out.taskId)
    const answer = entry?.replicas.get(out.replica)?.answer
    if (entry === undefined || answer === undefined) return
    const { result, dispatchedMs } = answer
    const now = this.components.now()
    const attestations = provenance(out.attestations, result.peer)
    const accepted: ExecutorResult = {
      resultCid: out.resultCid,
      peer: result.peer,
      attempts: entry.attempts,
      timings: {
        queueMs: Math.max(0, dispatchedMs - entry.submittedMs) + result.timings.queueMs,
        fetchMs: result.timings.fetchMs,
        runMs: result.timings.runMs,
        totalMs: Math.max(0, now - entry.submittedMs)
      },
      attestations,
      checking: out.checking
    }
    if (result.bytes !== undefined) accepted.bytes = result.bytes
    if (result.value !== undefined) accepted.value = result.value
    entry.settled = true
    entry.accepted = { ...accepted, value: undefined }
    if (out.checking) this.checking.add(out.taskId)
    for (const waiter of entry.waiters) {
      waiter.detach()
      waiter.resolve(accepted)
    }
    entry.waiters.clear()
    this.components.recordAttestations?.(out.taskId, attestations)
    this.retain(entry)
  }

  private failTask (out: Extract<VerifierOutput, { type: 'failed' }>): void {
    const entry = this.entries.get(out.taskId)
    if (entry === undefined) return
    entry.settled = true
    const answers = out.attestations.map(a => ({ peer: a.peerId, resultCid: a.resultCid }))
    let error: Error
    if (out.error.code === 'ERR_QUORUM_NOT_REACHED') {
      this.counters.quorumFailures += 1
      error = new QuorumNotReachedError(out.taskId, entry.policy.quorum, answers)
    } else {
      const replicaError = [...entry.replicas.values()].map(r => r.lastError).find(e => e instanceof RhizomeError && e.code === out.error.code)
      error = replicaError ?? new RhizomeError(out.error.code, out.error.message, { retryable: out.error.retryable })
    }
    this.rejectAll(entry, error)
    if (out.attestations.length > 0) this.components.recordAttestations?.(out.taskId, out.attestations.map(a => ({ peer: a.peerId, resultCid: a.resultCid, signature: a.signature, role: 'disagreed' as const })))
    this.retain(entry)
  }

  private verdict (out: Extract<VerifierOutput, { type: 'verdict' }>): void {
    this.checking.delete(out.taskId)
    const entry = this.entries.get(out.taskId)
    if (out.verdict !== 'disproven') {
      // 'undecided': no answer reached a quorum; nothing better is known, so the result stands.
      // The answers that checked it are recorded as such; the one whose result is used stays 'accepted'.
      const used = entry?.accepted?.peer
      const checks = out.attestations.filter(a => a.peerId !== used)
      this.components.recordAttestations?.(out.taskId, checks.map(a => ({ peer: a.peerId, resultCid: a.resultCid, signature: a.signature, role: 'checked' as const })))
      this.tell(out.taskId, { type: 'confirmed' })
      return
    }
    const answer = entry?.replicas.get(out.replica)?.answer?.result
    const peer = answer?.peer ?? out.attestations[0]?.peerId
    const fixed: { resultCid: string, bytes?: Uint8Array, peer: string } = { resultCid: out.resultCid, peer }
    if (answer?.bytes !== undefined) fixed.bytes = answer.bytes
    const wrong = entry?.accepted
    if (entry !== undefined && wrong !== undefined) {
      entry.accepted = { ...wrong, resultCid: out.resultCid, peer, bytes: fixed.bytes, attestations: provenance(out.attestations, peer), checking: false }
    }
    const rows = provenance(out.attestations, peer)
    if (wrong !== undefined) rows.push({ ...wrong.attestations[0], role: 'disagreed' })
    this.components.recordAttestations?.(out.taskId, rows)
    this.components.log.warn('an accepted result was disproven', { task: out.taskId, wrong: wrong?.resultCid, right: out.resultCid })
    this.tell(out.taskId, { type: 'disproven', result: fixed })
  }

  private proof (p: Extract<VerifierOutput, { type: 'proof' }>['proof']): void {
    this.counters.lies += 1
    this.components.recordAttestations?.(p.taskId, [{ peer: p.liar.peerId, resultCid: p.liar.resultCid, signature: p.liar.signature, role: 'disagreed' }])
    const task = CID.parse(p.taskId)
    const attestation = (a: Attested): LieProof['liar'] => ({ task, result: CID.parse(a.resultCid), peer: a.peerId, signature: a.signature })
    this.components.trust?.prove({ task, liar: attestation(p.liar), witnesses: p.witnesses.map(attestation) })
  }

  private tell (taskId: string, verdict: TaskVerdict): void {
    for (const listener of this.verdictListeners) listener(taskId, verdict)
  }

  private rejectAll (entry: Entry, error: Error): void {
    for (const waiter of entry.waiters) {
      waiter.detach()
      waiter.reject(error)
    }
    entry.waiters.clear()
  }

  /** Keep a settled task (RETAINED_TASKS_MAX, RETAINED_BYTES_MAX), evicting the oldest idle ones. */
  private retain (entry: Entry): void {
    if (entry.retainedBytes > 0) return
    let bytes = 1 + (entry.accepted?.bytes?.byteLength ?? 0)
    try {
      bytes += entry.task.argsBytes ?? dagCbor.encode(entry.task.args).byteLength
    } catch {
      bytes += 1024
    }
    entry.retainedBytes = bytes
    this.retainedBytes += bytes
    this.retainedCount += 1
    this.evict()
  }

  private evict (): void {
    if (this.retainedCount <= RETAINED_TASKS_MAX && this.retainedBytes <= RETAINED_BYTES_MAX) return
    // Oldest first; deleting the entry being visited is safe while iterating a Map, and a copy of
    // the map per call would make a long run's evictions quadratic.
    for (const entry of this.entries.values()) {
      if (this.retainedCount <= RETAINED_TASKS_MAX && this.retainedBytes <= RETAINED_BYTES_MAX) return
      const busy = !entry.settled || this.checking.has(entry.task.taskId) || [...entry.replicas.values()].some(r => r.scheduled)
      if (busy) continue
      this.forget(entry)
      this.verifier.handleCancel(entry.task.taskId, this.components.now())
    }
  }

  private forget (entry: Entry): void {
    if (this.entries.get(entry.task.taskId) !== entry) return
    this.entries.delete(entry.task.taskId)
    if (entry.retainedBytes > 0) {
      this.retainedBytes -= entry.retainedBytes
      this.retainedCount -= 1
    }
  }

  /** Feed the live view if it is older than PEERS_REFRESH_MS (or `force`): banned peers left out, reputation in. */
  private refreshPeers (now: number, force: boolean): void {
    if (!force && now - this.lastRefreshMs < PEERS_REFRESH_MS) return
    this.lastRefreshMs = now
    const trust = this.components.trust
    let candidates = this.components.candidates()
    if (trust !== undefined) {
      candidates = candidates
        .filter(c => trust.standing(c.peerId) !== 'banned')
        .map(c => ({ ...c, reputation: trust.score(c.peerId) }))
    }
    this.scheduler.handlePeers(candidates, now)
  }

  private tick (): void {
    this.timer = undefined
    if (!this.lifecycle.started) return
    const now = this.components.now()
    if (this.scheduler.counts().pending > 0) this.refreshPeers(now, false)
    this.scheduler.handleTimeout(now)
    this.verifier.handleTimeout(now)
    this.drain()
  }

  private arm (): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    if (!this.lifecycle.started) return
    const now = this.components.now()
    let at: number | undefined = this.scheduler.counts().pending > 0 ? this.lastRefreshMs + PEERS_REFRESH_MS : undefined
    for (const next of [this.scheduler.nextTimeoutMs(), this.verifier.nextTimeoutMs()]) {
      if (next !== undefined && (at === undefined || next < at)) at = next
    }
    if (at === undefined) return
    this.timer = setTimeout(() => { this.tick() }, Math.max(TICK_MS_MIN, at - now))
    this.timer.unref?.()
  }
}

function replicaId (taskId: string, n: number): string {
  return `${taskId}#${n}`
}

/** Task ids are CIDs (no '#'): the replica number is after the last one. */
function parseReplicaId (id: string): [string, number] {
  const at = id.lastIndexOf('#')
  return [id.slice(0, at), Number(id.slice(at + 1))]
}

/** The agreeing attestations, the one whose result is used first. */
function provenance (attestations: Attested[], used: string): Provenance[] {
  const rows = attestations.map(a => ({ peer: a.peerId, resultCid: a.resultCid, signature: a.signature, role: a.peerId === used ? 'accepted' as const : 'agreed' as const }))
  return rows.sort((a, b) => (a.role === 'accepted' ? 0 : 1) - (b.role === 'accepted' ? 0 : 1))
}
