/**
 * A workflow run on a simulated network: one driving peer runs the real run driver
 * (src/protocol/run), the real scheduler (src/protocol/scheduler) and the real membership table
 * (src/protocol/membership), and plays a random task graph (./run-graph.ts) as its workflow code;
 * N worker peers run the tasks. A worker's execution is simulated — each task takes a drawn time
 * in one of its slots, or waits in its bounded queue, or is refused when that is full — and
 * workers crash and restart per the fault plan. Dispatches, cancels, results and the workers'
 * announcements travel over the simulated network with delay, loss, duplication and partitions.
 * A lost dispatch or result is silence, which the scheduler's attempt timeout turns into a retry;
 * a dispatch to a peer that is down is refused at once (a refused connection), a retryable failure.
 *
 * The driving peer itself does not crash (resuming a run from its memo is the run driver's own
 * property test); its clock may be skewed and stepped like anyone's.
 *
 * Invariants, on every step they concern and at every sample:
 *  - each submitted task gets exactly one `done`, and an accepted result is accepted once — no
 *    task is lost when a worker dies;
 *  - no peer holds more copies than its limit (slotsMax + queueShare), counted outside the
 *    scheduler from its own outputs; the scheduler holds at most pendingMax tasks; no worker queue
 *    exceeds its length;
 *  - a task fails by using up its retries only while faults could explain it (before T plus the
 *    time to notice them); a non-retryable failure only where the function fails;
 *  - the run finishes within a bound after T (liveness), and its value equals evaluating the
 *    graph directly (with the tasks that used up their retries counted as failed, as the code does).
 */
import { assert } from '../model/errors.ts'
import type { FailureData } from '../model/errors.ts'
import { createMembership } from '../protocol/membership/index.ts'
import type { Announcement, Membership, MembershipOutput } from '../protocol/membership/index.ts'
import { createRandom } from '../protocol/random.ts'
import type { Random } from '../protocol/random.ts'
import { createRunDriver } from '../protocol/run/index.ts'
import type { RunDriver, RunOutput } from '../protocol/run/index.ts'
import { createScheduler, PeerLossTracker } from '../protocol/scheduler/index.ts'
import type { Scheduler, SchedulerOptions, SchedulerOutput } from '../protocol/scheduler/index.ts'
import { drawFaultPlan, drawStartPlan, faultPlanProblem, scheduleFaults } from './faults.ts'
import type { FaultPlan, StartPlan } from './faults.ts'
import { SimNetwork } from './network.ts'
import type { NetworkStats } from './network.ts'
import { SimHosts, simPeerIds } from './node.ts'
import type { MachineAdapter, SimNode } from './node.ts'
import { decodeValue, drawGraph, encodeValue, evaluateGraph, graphDepth, GraphScript, work } from './run-graph.ts'
import type { GraphFn, GraphNode } from './run-graph.ts'
import { checkTimes, SimWorld } from './world.ts'

/** Tasks a simulated worker queues per slot: the real peer's TASK_QUEUE_PER_SLOT. */
const WORKER_QUEUE_PER_SLOT = 16
/** Workers drawn slow run every task this many times longer: the stragglers speculation is for. */
const SLOW_FACTOR = 4
/** How often the driving peer feeds the scheduler its membership view (the shell's PEERS_REFRESH_MS, scaled to the sim's faster announce cadence). */
const PEERS_REFRESH_MS = 250
const STORAGE_INCARNATION = 'run/incarnation'

export interface RunScenario extends StartPlan, FaultPlan {
  seed: number
  /** Node 0 drives; nodes 1..workers run tasks. */
  workers: number
  graph: GraphNode[]
  delayMinMs: number
  delayMaxMs: number
  /** Per worker (index 0 unused): slots, and whether it is slow. */
  slots: number[]
  slow: boolean[]
  taskMsMin: number
  taskMsMax: number
  announceIntervalMs: number
  suspectAfterMs: number
  goneAfterMs: number
  pendingMax: number
  queueShare: number
  attemptsMax: number
  attemptTimeoutMs: number
  retryBaseMs: number
  retryMaxMs: number
  stragglerMinMs: number
  checkEveryMs: number
  traceLinesKept: number
}

export interface RunShape {
  /** Default: drawn in 3..12. */
  workers?: number
  /** Graph nodes before the sink tree. Default: drawn in 50..300. */
  tasks?: number
  /** false: no faults at all. */
  faults?: boolean
  traceLinesKept?: number
}

/** The large shape: hundreds of workers, over ten thousand tasks. */
export const LARGE_RUN_SHAPE: Readonly<RunShape> = Object.freeze({ workers: 300, tasks: 12_000 })

export interface RunScenarioResult {
  seed: number
  ok: boolean
  violations: string[]
  violationCount: number
  workers: number
  /** Graph nodes, and distinct tasks submitted. */
  nodes: number
  tasks: number
  faultsEndMs: number
  finishedMs: number | undefined
  boundMs: number
  value: number | undefined
  expected: number
  counts: {
    dispatched: number
    speculative: number
    retried: number
    done: number
    failed: number
    exhausted: number
    queueFull: number
    refused: number
    peersLost: number
    staleOutcomes: number
    activations: number
  }
  messages: NetworkStats
  simEvents: number
  traceHash: string
  trace: readonly string[]
}

type Message =
  | { type: 'announce', announcement: Announcement }
  | { type: 'task', taskId: string, attempt: number, fn: GraphFn, args: number[] }
  | { type: 'cancel', taskId: string, attempt: number }
  | { type: 'result', taskId: string, attempt: number, ok: boolean, retryable: boolean, value: number }

interface Job { from: number, taskId: string, attempt: number, fn: GraphFn, args: number[], endsAtMs: number }

interface WorkerLife {
  kind: 'worker'
  rng: Random
  incarnation: number
  seq: number
  nextAnnounceMs: number
  running: Job[]
  queue: Job[]
  out: Array<{ to: number, message: Message }>
  /** The largest local time seen: a stepped-back clock holds still, as in the real machines. */
  clockMs: number
}

interface DriverLife {
  kind: 'driver'
  membership: Membership
  scheduler: Scheduler
  run: RunDriver
  script: GraphScript
  loss: PeerLossTracker
  nextRefreshMs: number
}

type Life = WorkerLife | DriverLife
type Output =
  | { from: 'worker', to: number, message: Message }
  | { from: 'membership', out: MembershipOutput }
  | { from: 'run', out: RunOutput }
  | { from: 'scheduler', out: SchedulerOutput }

export function runScenarioFromSeed (seed: number, shape: RunShape = {}): RunScenario {
  const rng = createRandom(seed)
  const workers = shape.workers ?? rng.int(3, 12)
  const nodes = workers + 1
  const graph = drawGraph(rng.fork(), shape.tasks ?? rng.int(50, 300))
  const faultShape = {
    nodes,
    faults: shape.faults,
    startWindowMs: rng.int(0, 1000),
    faultPhaseMs: [2000, 12_000] as [number, number],
    lossRateMax: 0.1,
    duplicateRateMax: 0.1,
    restartAfterMs: [1, 5000] as [number, number],
    partitionMs: [200, 4000] as [number, number]
  }
  const starts = drawStartPlan(rng, faultShape)
  const faults = drawFaultPlan(rng, faultShape, starts)
  const slots = Array.from({ length: nodes }, (_, i) => i === 0 ? 0 : rng.int(1, 6))
  const slow = Array.from({ length: nodes }, (_, i) => i > 0 && rng.chance(0.1))
  const taskMsMax = rng.int(10, 100)
  return {
    seed,
    workers,
    graph,
    delayMinMs: 1,
    delayMaxMs: 50,
    slots,
    slow,
    taskMsMin: 1,
    taskMsMax,
    announceIntervalMs: 500,
    suspectAfterMs: 1250,
    goneAfterMs: 2500,
    pendingMax: rng.pick([8, 64, 10_000]),
    queueShare: rng.int(0, 2),
    attemptsMax: rng.int(4, 6),
    // Covers a slow worker's full share: (slots + queueShare) tasks of SLOW_FACTOR × taskMsMax.
    attemptTimeoutMs: 4 * SLOW_FACTOR * taskMsMax * 2 + 500,
    retryBaseMs: 50,
    retryMaxMs: 1000,
    stragglerMinMs: 200,
    skewMaxMs: starts.skewMaxMs,
    startTimesMs: [0, ...starts.startTimesMs.slice(1)],
    initialSkewsMs: starts.initialSkewsMs,
    ...faults,
    // The driving peer does not crash (see the file's comment).
    crashes: faults.crashes.filter(c => c.node !== 0),
    checkEveryMs: 250,
    traceLinesKept: shape.traceLinesKept ?? 0
  }
}

/** What one run tracks to check its invariants. */
interface RunState {
  s: RunScenario
  world: SimWorld
  hosts?: SimHosts<Life, Message, Output>
  network?: SimNetwork<Message>
  peerIds: string[]
  indexOf: Map<string, number>
  /** Task specs from `schedule` outputs, by task id. */
  specs: Map<string, { fn: GraphFn, args: number[], submittedMs: number }>
  /** Accepted submissions not yet done. */
  held: Set<string>
  /** Submissions refused with queue-full, resubmitted after the next done. */
  blocked: Array<{ taskId: string, inputs: string[] }>
  /** Where each accepted result lives (for locality). */
  producers: Map<string, string>
  /** Values answered by copies not yet settled, `${taskId}@${peer}`. */
  answers: Map<string, number>
  /** Our own count of copies per worker (from dispatch, cancel and done outputs). */
  copies: Map<string, Set<string>>
  accepted: Set<string>
  exhausted: Set<string>
  counts: RunScenarioResult['counts']
  finishedMs: number | undefined
  value: number | undefined
  exhaustDeadlineMs: number
}

export interface RunHooks {
  /** Build the driving peer's scheduler. Default: the real one. */
  createScheduler?: (options: SchedulerOptions) => Scheduler
}

export function runRunScenario (input: RunScenario | ({ seed: number } & RunShape), hooks: RunHooks = {}): RunScenarioResult {
  const s = 'graph' in input ? input : runScenarioFromSeed(input.seed, input)
  const nodes = s.workers + 1
  const problem = s.workers < 1 ? 'the run scenario needs a worker' : faultPlanProblem(s, nodes)
  if (problem !== undefined) throw new RangeError(`run scenario (seed ${s.seed}): ${problem}`)
  const rng = createRandom(s.seed ^ 0x5eed)
  const idRng = rng.fork()
  const netRng = rng.fork()
  const machineRng = rng.fork()
  const world = new SimWorld(s.traceLinesKept)
  const peerIds = simPeerIds(idRng, nodes)
  const st: RunState = {
    s,
    world,
    peerIds,
    indexOf: new Map(peerIds.map((id, i) => [id, i])),
    specs: new Map(),
    held: new Set(),
    blocked: [],
    producers: new Map(),
    answers: new Map(),
    copies: new Map(),
    accepted: new Set(),
    exhausted: new Set(),
    counts: { dispatched: 0, speculative: 0, retried: 0, done: 0, failed: 0, exhausted: 0, queueFull: 0, refused: 0, peersLost: 0, staleOutcomes: 0, activations: 0 },
    finishedMs: undefined,
    value: undefined,
    // After T, a dead peer leaves the view within goneAfterMs and a message lost before T is
    // noticed within attemptTimeoutMs: past that, no retry is used up.
    exhaustDeadlineMs: s.faultsEndMs + s.goneAfterMs + s.announceIntervalMs + s.attemptTimeoutMs + s.retryMaxMs + 4 * s.delayMaxMs + PEERS_REFRESH_MS
  }
  const hosts = new SimHosts<Life, Message, Output>(world, peerIds, s.initialSkewsMs, runAdapter(st, machineRng, hooks.createScheduler ?? createScheduler))
  const network = new SimNetwork<Message>(world, hosts.nodes, netRng, s, (to, from, message) => hosts.deliver(to, from, message))
  st.hosts = hosts
  st.network = network
  const boundMs = livenessBoundMs(s)
  const endMs = s.faultsEndMs + boundMs
  hosts.scheduleStarts(s.startTimesMs)
  scheduleFaults(world, s, { hosts, network })
  const announces = nodes * (endMs / s.announceIntervalMs + 2)
  world.run({
    endMs,
    checkTimesMs: checkTimes(endMs, s.checkEveryMs, [endMs]),
    check: () => { checkSample(st) },
    simEventsMax: Math.ceil(4 * announces + 60 * s.graph.length * s.attemptsMax + 100_000)
  })
  return finalResult(st, boundMs)
}

/**
 * How long after T the run may take: noticing what the faults left (a dead peer leaves the view,
 * a lost message times out, a backoff ends), then the work itself — the longest chain of tasks
 * one after another, plus all tasks spread over the slots of the workers that survive — each step
 * a slow worker's task behind its queue share and a round trip. Twice that, for the randomness
 * of sampling.
 */
export function livenessBoundMs (s: RunScenario): number {
  const survivors = new Set(Array.from({ length: s.workers }, (_, i) => i + 1))
  for (const c of s.crashes) if (c.restartAtMs === undefined) survivors.delete(c.node)
  let slots = 0
  for (const w of survivors) slots += s.slots[w]
  const stepMs = (s.queueShare + 1) * SLOW_FACTOR * s.taskMsMax + 2 * s.delayMaxMs + PEERS_REFRESH_MS
  const noticeMs = s.goneAfterMs + s.announceIntervalMs + s.attemptTimeoutMs + s.retryMaxMs + PEERS_REFRESH_MS
  const workMs = graphDepth(s.graph) * stepMs + Math.ceil(s.graph.length / Math.max(1, slots)) * stepMs
  return 2 * (noticeMs + workMs)
}

function runAdapter (st: RunState, machineRng: Random, create: (options: SchedulerOptions) => Scheduler): MachineAdapter<Life, Message, Output> {
  return {
    start: (node, nowMs) => node.index === 0 ? startDriver(st, node, machineRng, create) : startWorker(st, node, nowMs, machineRng),
    startNote: (life) => life.kind === 'worker' ? `inc=${life.incarnation}` : 'driver',
    handleMessage: (life, node, from, message, nowMs) => {
      if (life.kind === 'worker') workerMessage(st, life, node, from, message, nowMs)
      else driverMessage(st, life, from, message, nowMs)
    },
    handleTimeout: (life, node, nowMs) => {
      if (life.kind === 'worker') workerTimeout(st, life, node, nowMs)
      else driverTimeout(st, life, nowMs)
    },
    poll: (life) => life.kind === 'worker' ? workerPoll(life) : driverPoll(life),
    nextTimeoutMs: (life) => life.kind === 'worker' ? workerNextMs(st, life) : driverNextMs(st, life),
    output: (node, out) => {
      if (out.from === 'worker') send(st, node.index, out.to, out.message)
      else driverOutput(st, node, out)
    },
    crashed: (node) => { st.world.trace.add(`${st.world.nowMs} lost ${node.index} running work`) }
  }
}

function send (st: RunState, from: number, to: number, message: Message): void {
  st.network!.send(from, to, message)
}

// --- workers -----------------------------------------------------------------------------

function startWorker (st: RunState, node: SimNode<Life>, nowMs: number, machineRng: Random): WorkerLife {
  // Incarnations must grow across restarts even if the clock stepped back: keep the last in storage.
  const local = nowMs + node.skewMs
  const incarnation = Math.max(local, (node.storage.getNumber(STORAGE_INCARNATION) ?? -1) + 1)
  node.storage.putNumber(STORAGE_INCARNATION, incarnation)
  return { kind: 'worker', rng: machineRng.fork(), incarnation, seq: 0, nextAnnounceMs: -Infinity, running: [], queue: [], out: [], clockMs: local }
}

function workerMessage (st: RunState, life: WorkerLife, node: SimNode<Life>, from: number, message: Message, localMs: number): void {
  const s = st.s
  const nowMs = life.clockMs = Math.max(life.clockMs, localMs)
  if (message.type === 'task') {
    const slots = s.slots[node.index]
    if (life.running.length + life.queue.length >= slots + slots * WORKER_QUEUE_PER_SLOT) {
      st.counts.queueFull += 1
      life.out.push({ to: from, message: { type: 'result', taskId: message.taskId, attempt: message.attempt, ok: false, retryable: true, value: 0 } })
      return
    }
    const job: Job = { from, taskId: message.taskId, attempt: message.attempt, fn: message.fn, args: message.args, endsAtMs: 0 }
    if (life.running.length < slots) startJob(st, life, node, job, nowMs)
    else life.queue.push(job)
  } else if (message.type === 'cancel') {
    const same = (j: Job): boolean => j.from === from && j.taskId === message.taskId && j.attempt === message.attempt
    life.queue = life.queue.filter(j => !same(j))
    const before = life.running.length
    life.running = life.running.filter(j => !same(j))
    if (life.running.length < before) fillSlots(st, life, node, nowMs)
  }
}

function startJob (st: RunState, life: WorkerLife, node: SimNode<Life>, job: Job, nowMs: number): void {
  const ms = life.rng.int(st.s.taskMsMin, st.s.taskMsMax) * (st.s.slow[node.index] ? SLOW_FACTOR : 1)
  job.endsAtMs = nowMs + ms
  life.running.push(job)
}

function fillSlots (st: RunState, life: WorkerLife, node: SimNode<Life>, nowMs: number): void {
  while (life.running.length < st.s.slots[node.index] && life.queue.length > 0) startJob(st, life, node, life.queue.shift() as Job, nowMs)
}

function workerTimeout (st: RunState, life: WorkerLife, node: SimNode<Life>, localMs: number): void {
  const s = st.s
  const nowMs = life.clockMs = Math.max(life.clockMs, localMs)
  const finished = life.running.filter(j => j.endsAtMs <= nowMs)
  if (finished.length > 0) {
    life.running = life.running.filter(j => j.endsAtMs > nowMs)
    for (const job of finished) {
      const r = work(job.fn, job.args)
      life.out.push({ to: job.from, message: { type: 'result', taskId: job.taskId, attempt: job.attempt, ok: r.ok, retryable: false, value: r.ok ? r.value : 0 } })
    }
    fillSlots(st, life, node, nowMs)
  }
  if (nowMs >= life.nextAnnounceMs && st.finishedMs === undefined) {
    life.nextAnnounceMs = nowMs + s.announceIntervalMs
    life.seq += 1
    const slots = s.slots[node.index]
    const announcement: Announcement = {
      peerId: st.peerIds[node.index],
      networkId: 'sim',
      incarnation: life.incarnation,
      seq: life.seq,
      version: '0.0.0',
      addrs: [],
      capacity: { slotsMax: slots, slotsFree: slots - life.running.length, queueLength: life.queue.length }
    }
    life.out.push({ to: 0, message: { type: 'announce', announcement } })
  }
}

function workerPoll (life: WorkerLife): Output | undefined {
  const next = life.out.shift()
  return next === undefined ? undefined : { from: 'worker', to: next.to, message: next.message }
}

function workerNextMs (st: RunState, life: WorkerLife): number {
  let next = st.finishedMs === undefined ? life.nextAnnounceMs : Infinity
  for (const job of life.running) next = Math.min(next, job.endsAtMs)
  return next
}

// --- the driving peer ------------------------------------------------------------------

function startDriver (st: RunState, node: SimNode<Life>, machineRng: Random, create: (options: SchedulerOptions) => Scheduler): DriverLife {
  const s = st.s
  const membership = createMembership({
    selfId: st.peerIds[0],
    networkId: 'sim',
    version: '0.0.0',
    incarnation: 0,
    announceIntervalMs: s.announceIntervalMs,
    suspectAfterMs: s.suspectAfterMs,
    goneAfterMs: s.goneAfterMs,
    announceMinIntervalMs: Math.floor(s.announceIntervalMs / 4),
    peersMax: Math.max(1024, s.workers + 1)
  })
  const scheduler = create({
    random: machineRng.fork(),
    pendingMax: s.pendingMax,
    queueShare: s.queueShare,
    attemptsMax: s.attemptsMax,
    attemptTimeoutMs: s.attemptTimeoutMs,
    retryBaseMs: s.retryBaseMs,
    retryMaxMs: s.retryMaxMs,
    stragglerMinMs: s.stragglerMinMs
  })
  const entries = Math.max(10_000, 2 * s.graph.length)
  const run = createRunDriver({ runId: `run-${s.seed}`, commandsMax: entries, memoEntriesMax: entries })
  const life: DriverLife = {
    kind: 'driver',
    membership,
    scheduler,
    run,
    script: new GraphScript(s.graph),
    loss: new PeerLossTracker(id => membership.get(id)?.incarnation),
    nextRefreshMs: -Infinity
  }
  run.handleStart(st.world.nowMs + node.skewMs)
  return life
}

function driverMessage (st: RunState, life: DriverLife, from: number, message: Message, nowMs: number): void {
  if (message.type === 'announce') {
    life.membership.handleAnnouncement(message.announcement, nowMs)
    return
  }
  if (message.type !== 'result') return
  const peerId = st.peerIds[from]
  if (!message.ok) {
    copyFailed(st, life, message.taskId, peerId, message.retryable, message.attempt, nowMs)
    return
  }
  st.answers.set(`${message.taskId}@${peerId}`, message.value)
  if (life.scheduler.handleOutcome(message.taskId, peerId, { ok: true }, nowMs, message.attempt) === 'stale') {
    st.counts.staleOutcomes += 1
    st.answers.delete(`${message.taskId}@${peerId}`)
  }
}

/** A copy failed. If the scheduler takes it, that copy is over (no `cancel` comes for it). */
function copyFailed (st: RunState, life: DriverLife, taskId: string, peerId: string, retryable: boolean, attempt: number, nowMs: number): void {
  // Off the scheduler's books first: the outcome may dispatch a retry to the same peer at once.
  const set = st.copies.get(peerId)
  const had = set?.delete(taskId) === true
  if (life.scheduler.handleOutcome(taskId, peerId, { ok: false, retryable }, nowMs, attempt) === 'stale') {
    st.counts.staleOutcomes += 1
    if (had) set!.add(taskId)
  }
}

function driverTimeout (st: RunState, life: DriverLife, nowMs: number): void {
  life.membership.handleTick(nowMs)
  if (nowMs >= life.nextRefreshMs) {
    life.nextRefreshMs = nowMs + PEERS_REFRESH_MS
    const view = life.membership.view()
    const candidates = []
    for (const p of view) if (p.state === 'alive') candidates.push({ peerId: p.peerId, ...p.capacity })
    life.scheduler.handlePeers(candidates, nowMs)
  }
  life.scheduler.handleTimeout(nowMs)
  life.run.handleTimeout(nowMs)
}

function driverPoll (life: DriverLife): Output | undefined {
  const m = life.membership.poll()
  if (m !== undefined) return { from: 'membership', out: m }
  const r = life.run.poll()
  if (r !== undefined) return { from: 'run', out: r }
  const s = life.scheduler.poll()
  if (s !== undefined) return { from: 'scheduler', out: s }
  return undefined
}

function driverNextMs (st: RunState, life: DriverLife): number {
  if (st.finishedMs !== undefined) return Infinity
  return Math.min(life.membership.nextTimeoutMs(), life.nextRefreshMs, life.scheduler.nextTimeoutMs() ?? Infinity, life.run.nextTimeoutMs() ?? Infinity)
}

function driverOutput (st: RunState, node: SimNode<Life>, out: Exclude<Output, { from: 'worker' }>): void {
  const life = node.machine
  assert(life?.kind === 'driver', 'driver outputs come from the driving peer')
  const nowMs = st.hosts!.localMs(node)
  if (out.from === 'membership') {
    const o = out.out
    if (o.type !== 'announce' && life.loss.handleEvent(o)) {
      st.counts.peersLost += 1
      st.world.trace.add(`${st.world.nowMs} peer-lost ${st.indexOf.get(o.peerId) ?? -1} ${o.type}`)
      life.scheduler.handlePeerGone(o.peerId, nowMs)
    }
  } else if (out.from === 'run') {
    runOutput(st, life, out.out, nowMs)
  } else {
    schedulerOutput(st, life, out.out, nowMs)
  }
}

function runOutput (st: RunState, life: DriverLife, o: RunOutput, nowMs: number): void {
  switch (o.type) {
    case 'activate':
      st.counts.activations += 1
      life.run.handleActivation(life.script.activate(o.resolutions), nowMs)
      return
    case 'schedule': {
      const args = JSON.parse(new TextDecoder().decode(o.task.args)) as number[]
      st.specs.set(o.task.taskId, { fn: o.task.fn as GraphFn, args, submittedMs: st.world.nowMs })
      submit(st, life, o.task.taskId, o.task.inputs, nowMs)
      return
    }
    case 'cancel':
      life.scheduler.handleCancel(o.taskId, nowMs)
      return
    case 'finished':
      st.finishedMs = st.world.nowMs
      if (o.outcome.ok) st.value = decodeValue(o.outcome.value)
      else st.world.violate(`the run failed: ${o.outcome.error.name}: ${o.outcome.error.message}`)
      st.world.trace.add(`${st.world.nowMs} finished ${st.value ?? 'failed'}`)
      return
    case 'start-child':
    case 'cancel-child':
      st.world.violate(`unexpected ${o.type}: the graph has no child runs`)
      return
    case 'event':
  }
}

function submit (st: RunState, life: DriverLife, taskId: string, inputs: string[], nowMs: number): void {
  const withHolders = inputs.map(cid => ({ cid, peer: st.producers.get(cid) ?? '' }))
  if (life.scheduler.handleSubmit({ taskId, fn: st.specs.get(taskId)!.fn, inputs: withHolders }, nowMs) === 'queue-full') {
    st.blocked.push({ taskId, inputs })
    return
  }
  if (st.held.has(taskId)) st.world.violate(`task ${taskId} submitted while held`)
  st.held.add(taskId)
}

function schedulerOutput (st: RunState, life: DriverLife, o: SchedulerOutput, nowMs: number): void {
  const { world } = st
  if (o.type === 'dispatch') {
    dispatch(st, life, o, nowMs)
  } else if (o.type === 'cancel') {
    const set = st.copies.get(o.peerId)
    if (set?.delete(o.taskId) !== true) world.violate(`cancel of ${o.taskId} on ${o.peerId}, which runs no copy of it`)
    const to = st.indexOf.get(o.peerId)!
    if (st.hosts!.nodes[to].up) send(st, 0, to, { type: 'cancel', taskId: o.taskId, attempt: o.attempt })
  } else {
    done(st, life, o, nowMs)
  }
}

function dispatch (st: RunState, life: DriverLife, o: Extract<SchedulerOutput, { type: 'dispatch' }>, nowMs: number): void {
  const { world, s } = st
  st.counts.dispatched += 1
  if (o.speculative) st.counts.speculative += 1
  if (o.attempt > 1 && !o.speculative) st.counts.retried += 1
  if (!st.held.has(o.taskId)) world.violate(`dispatch of ${o.taskId}, which is not held`)
  const to = st.indexOf.get(o.peerId)
  assert(to !== undefined && to > 0, 'tasks go to workers')
  let set = st.copies.get(o.peerId)
  if (set === undefined) st.copies.set(o.peerId, set = new Set())
  if (set.has(o.taskId)) world.violate(`two copies of ${o.taskId} on worker ${to}`)
  set.add(o.taskId)
  const limit = s.slots[to] + s.queueShare
  if (set.size > limit) world.violate(`worker ${to} holds ${set.size} copies, more than its limit ${limit}`)
  world.trace.add(`${world.nowMs} dispatch ${o.taskId} >${to} #${o.attempt}${o.speculative ? ' spec' : ''}`)
  const spec = st.specs.get(o.taskId)!
  if (!st.hosts!.nodes[to].up) {
    // A refused connection: the caller hears at once.
    st.counts.refused += 1
    copyFailed(st, life, o.taskId, o.peerId, true, o.attempt, nowMs)
    return
  }
  send(st, 0, to, { type: 'task', taskId: o.taskId, attempt: o.attempt, fn: spec.fn, args: spec.args })
}

function done (st: RunState, life: DriverLife, o: Extract<SchedulerOutput, { type: 'done' }>, nowMs: number): void {
  const { world } = st
  st.counts.done += 1
  if (!st.held.delete(o.taskId)) world.violate(`done for ${o.taskId}, which is not held (a second done?)`)
  for (const set of st.copies.values()) set.delete(o.taskId)
  const spec = st.specs.get(o.taskId)!
  const direct = work(spec.fn, spec.args)
  world.trace.add(`${world.nowMs} done ${o.taskId} ${o.ok ? `ok ${o.peerId}` : o.reason} #${o.attempts}`)
  if (o.ok) {
    if (st.accepted.has(o.taskId)) world.violate(`task ${o.taskId} has a second accepted result`)
    st.accepted.add(o.taskId)
    const key = `${o.taskId}@${o.peerId}`
    const value = st.answers.get(key)
    if (value === undefined || !direct.ok || value !== direct.value) world.violate(`task ${o.taskId} accepted ${String(value)}, not ${JSON.stringify(direct)}`)
    const cid = `r:${o.taskId}`
    st.producers.set(cid, o.peerId)
    life.run.handleTaskOutcome(o.taskId, { ok: true, result: { cid, bytes: encodeValue(value ?? 0), peer: o.peerId } }, nowMs)
  } else {
    const error = doneFailure(st, o, direct.ok)
    life.run.handleTaskOutcome(o.taskId, { ok: false, error }, nowMs)
  }
  for (const key of [...st.answers.keys()]) if (key.startsWith(`${o.taskId}@`)) st.answers.delete(key)
  resubmit(st, life, nowMs)
}

function doneFailure (st: RunState, o: Extract<SchedulerOutput, { type: 'done', ok: false }>, functionSucceeds: boolean): FailureData {
  const { world } = st
  st.counts.failed += 1
  if (o.reason === 'failed') {
    if (functionSucceeds) world.violate(`task ${o.taskId} failed non-retryably, but its function succeeds`)
    return { name: 'FunctionThrewError', code: 'ERR_FUNCTION_THREW', message: 'boom', retryable: false }
  }
  if (o.reason === 'cancelled') world.violate(`task ${o.taskId} was cancelled, but the code awaits every call`)
  if (world.nowMs > st.exhaustDeadlineMs) world.violate(`task ${o.taskId} used up its retries (${o.reason}) at ${world.nowMs}, after faults stopped mattering (${st.exhaustDeadlineMs})`)
  st.counts.exhausted += 1
  st.exhausted.add(o.taskId)
  return { name: 'TimeoutError', code: 'ERR_TIMEOUT', message: `no attempt succeeded (${o.reason})`, retryable: true }
}

function resubmit (st: RunState, life: DriverLife, nowMs: number): void {
  while (st.blocked.length > 0 && life.scheduler.counts().pending < st.s.pendingMax) {
    const next = st.blocked.shift()!
    submit(st, life, next.taskId, next.inputs, nowMs)
  }
}

// --- checks ------------------------------------------------------------------------------

function checkSample (st: RunState): void {
  const driver = st.hosts!.nodes[0].machine
  if (driver?.kind !== 'driver') return
  const counts = driver.scheduler.counts()
  if (counts.pending > st.s.pendingMax) st.world.violate(`the scheduler holds ${counts.pending} tasks, more than pendingMax ${st.s.pendingMax}`)
  if (counts.pending !== st.held.size) st.world.violate(`the scheduler holds ${counts.pending} tasks, the shell counts ${st.held.size}`)
  for (const node of st.hosts!.nodes) {
    const life = node.machine
    if (life?.kind !== 'worker') continue
    const slots = st.s.slots[node.index]
    if (life.running.length > slots || life.queue.length > slots * WORKER_QUEUE_PER_SLOT) st.world.violate(`worker ${node.index} runs ${life.running.length} and queues ${life.queue.length}, past its limits`)
  }
  if (st.finishedMs === undefined && st.world.nowMs >= st.s.faultsEndMs + livenessBoundMs(st.s)) st.world.violate('the run did not finish within its bound after the faults stopped')
}

function finalResult (st: RunState, boundMs: number): RunScenarioResult {
  const { s, world } = st
  const expected = evaluateGraph(s.graph, st.exhausted)
  if (st.finishedMs === undefined) {
    if (world.violationCount === 0) world.violate(`the run did not finish by ${s.faultsEndMs + boundMs} (T + ${boundMs} ms)`)
  } else {
    if (st.value !== expected) world.violate(`the run returned ${String(st.value)}, the graph evaluates to ${expected}`)
    if (st.held.size > 0 || st.blocked.length > 0) world.violate(`${st.held.size + st.blocked.length} tasks were submitted but never done`)
  }
  return {
    seed: s.seed,
    ok: world.violationCount === 0,
    violations: world.violations,
    violationCount: world.violationCount,
    workers: s.workers,
    nodes: s.graph.length,
    tasks: st.specs.size,
    faultsEndMs: s.faultsEndMs,
    finishedMs: st.finishedMs,
    boundMs,
    value: st.value,
    expected,
    counts: st.counts,
    messages: { ...st.network!.stats },
    simEvents: world.simEvents,
    traceHash: world.trace.digest(),
    trace: world.trace.keptLines
  }
}
