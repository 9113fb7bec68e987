/**
 * A durable workflow run on a simulated network: what a peer does for a run whose memo lives on
 * a home set. N peers (5..7); the run's home set is the first 3 in rendezvous order on the run id
 * (src/protocol/placement.ts), and each of them runs the real home-set machine
 * (src/protocol/home/: lease, memo replica, memo driver), persisting its `persist-lease` and
 * `persist-memo` outputs to its simulated storage and restoring them when it restarts.
 *
 * THE SHELL, as the run service does it for real:
 *  - on `drive { epoch, memo }` the peer builds a real run driver (src/protocol/run/) from the
 *    gathered memo and plays a random task graph (./run-graph.ts) as the workflow code;
 *  - each `schedule` sends the task to a worker: the task's owners in rendezvous order over all
 *    peers, the first one first — so every driver, after any takeover, asks the same worker first —
 *    moving to the next owner after RESENDS_PER_WORKER unanswered sends, TASK_RESEND_MS apart;
 *  - a worker runs a task for a drawn time and answers. It keeps every result it computed in its
 *    storage (a blob store: it survives restarts); a task it has computed, or is computing, is
 *    answered from there, never run again — this is how a new driver re-attaches to work a dead
 *    one started;
 *  - an answer is not given to the run driver: the shell hands it to the home machine
 *    (`handleLocalEntry`) and feeds `handleTaskOutcome` only on `deliver`. A failed task is an
 *    entry too (cid `error:…`): a later driver replays the failure from the memo without asking a
 *    worker (the run driver's own memo holds results only, so the shell answers such a `schedule`
 *    from the gathered memo);
 *  - when the run driver says `finished`, the value becomes the entry RESULT_ENTRY_ID (cid names
 *    the value, bytes encode it); the run is reported finished on its `deliver`, and on `settled`
 *    on any home-set peer;
 *  - on `stop` the peer drops its run driver and its pending sends; late answers are ignored.
 *
 * FAULTS (until T): crashes and restarts of any peer — never more than one of the three home-set
 * peers down at once —, partitions that heal, loss, duplication, reordering, delay, clock offsets
 * and steps within the lease's clock bound.
 *
 * INVARIANTS, checked as they happen, at every check time and at the end:
 *  1. LIVENESS: the run is reported finished within `durableBoundMs` after T;
 *  2. ONE RESULT: every `deliver` and `settled` of the outcome, on any peer, over the whole run,
 *     carries the same value (cid and bytes);
 *  3. ONE DRIVER PER EPOCH: no two peers `drive` the same epoch, and every `deliver` of an epoch
 *     comes from the peer that drives it;
 *  4. NO RERUN AFTER A TAKEOVER: (a) a driver of epoch e never schedules a task whose result was
 *     delivered in an epoch below e (it resolves from the memo); (b) a worker never completes a
 *     task twice (its store answers); (c) a task is executed more than once overall only if a
 *     worker crashed while running it or a driver moved on to its next owner (the first one did
 *     not answer): each extra execution needs one of those two excuses, counted per task;
 *  5. CONVERGENCE: after T, once the run settled, every running home-set peer is settled with the
 *     same outcome, any two of them hold the same value for every id both hold, and each one's
 *     storage holds exactly its replica's memo;
 *  6. THE VALUE: the outcome equals evaluating the graph directly.
 */
import { assert } from '../model/errors.ts'
import { createHomeRun, RESULT_ENTRY_ID } from '../protocol/home/index.ts'
import type { HomeMessage, HomeOutput, HomeRun } from '../protocol/home/index.ts'
import { LEASE_TIMING_DEFAULTS } from '../protocol/lease/index.ts'
import type { LeasePromise } from '../protocol/lease/index.ts'
import type { MemoEntry, MemoValue } from '../protocol/memo/index.ts'
import { rendezvousOwners } from '../protocol/placement.ts'
import { createRandom } from '../protocol/random.ts'
import type { Random } from '../protocol/random.ts'
import { createRunDriver } from '../protocol/run/index.ts'
import type { Outcome, RunDriver, RunOutput } from '../protocol/run/index.ts'
import { drawFaultPlan, drawStartPlan, faultPlanProblem, scheduleFaults } from './faults.ts'
import type { CrashPlan, FaultPlan, StartPlan } from './faults.ts'
import { livenessBoundMs as leaseBoundMs } from './lease-scenario.ts'
import type { LeaseTimings } from './lease-scenario.ts'
import { SimNetwork } from './network.ts'
import type { NetworkStats } from './network.ts'
import { SimHosts, simPeerIds } from './node.ts'
import type { MachineAdapter, SimNode } from './node.ts'
import { decodeValue, drawGraph, encodeValue, evaluateGraph, graphDepth, GraphScript, work } from './run-graph.ts'
import type { GraphFn, GraphNode } from './run-graph.ts'
import { checkTimes, SimWorld } from './world.ts'

/** The home set of the scenario's run: the default R (survives one loss with a majority left). */
const HOME_SET_SIZE = 3
/** A driver re-sends an unanswered task this often: longer than a round trip plus the longest
 *  task (TASK_MS_MAX), so a worker that is up and reachable answers before the next send. */
const TASK_RESEND_MS = 300
/** Sends to one owner of a task before the next owner is asked: one lost message (or two) is not
 *  taken for a dead worker, yet a dead one delays the task by under a second. */
const RESENDS_PER_WORKER = 3
/** The longest a simulated task runs (ms): well under TASK_RESEND_MS minus a round trip. */
const TASK_MS_MAX = 150
/** Memo-driver timings for the simulator (short, so resends, give-ups and probes all happen). */
const MEMO_TIMINGS = { resendMs: 100, resendMaxMs: 800, attemptsMax: 5, probeIntervalMs: 1000 }

const PROMISE_KEY = 'home/promise'
const EPOCH_KEY = 'home/epoch'
const ENTRY_PREFIX = 'home/e/'
const BLOB_PREFIX = 'blob/'
const ERROR_CID = 'error:boom'
const text = new TextEncoder()
const untext = new TextDecoder()

export interface DurableScenario extends StartPlan, FaultPlan {
  seed: number
  nodes: number
  peerIds: string[]
  runId: string
  /** Node indices of the home set, in rendezvous order. */
  homeSet: number[]
  graph: GraphNode[]
  delayMinMs: number
  delayMaxMs: number
  taskMsMax: number
  timings: LeaseTimings
  checkEveryMs: number
  traceLinesKept: number
}

export interface DurableShape {
  /** Default: drawn in 5..7. */
  nodes?: number
  /** Graph nodes before the sink tree. Default: drawn in 10..80. */
  tasks?: number
  /** false: no loss, duplication, partitions, clock skew or drawn crashes. */
  faults?: boolean
  /** Explicit crashes instead of drawn ones (home-set minority rule not applied: the caller's). */
  crashes?: CrashPlan[]
  traceLinesKept?: number
}

export interface DurableCounts {
  drives: number
  /** Drives after the first: a peer took the run over. */
  takeovers: number
  stops: number
  delivered: number
  /** Executions started at workers, and how many task ids ran more than once. */
  executions: number
  reExecuted: number
  /** Tasks a worker was running when it crashed; sends to an owner after the first. */
  lostInCrash: number
  fallbacks: number
  /** Task requests answered from a worker's store or joined to a running execution. */
  answeredFromStore: number
  joined: number
  /** Answers that reached no pending task (the driver stopped, or had its answer already). */
  lateAnswers: number
  conflicts: number
  highestEpoch: number
}

/** Ways to weaken the peers, so tests can show the invariants catch what they are for. */
export interface DurableHooks {
  /** Build each home-set peer's machine. Default: the real one. */
  createHomeRun?: typeof createHomeRun
  /** Workers keep no results (no store): a task asked again after it finished — by a new driver,
   *  or a resend — runs again. Default false. */
  workersKeepNoResults?: boolean
}

export interface DurableScenarioResult {
  seed: number
  ok: boolean
  violations: string[]
  violationCount: number
  nodes: number
  /** Distinct task ids in the graph. */
  tasks: number
  faultsEndMs: number
  /** When the outcome was first reported (deliver or settled). */
  finishedMs: number | undefined
  /** The first drive: when, and which node. */
  firstDrive: { atMs: number, node: number } | undefined
  boundMs: number
  value: number | undefined
  expected: number
  counts: DurableCounts
  messages: NetworkStats
  simEvents: number
  traceHash: string
  trace: readonly string[]
}

type Message =
  | { kind: 'home', message: HomeMessage }
  | { kind: 'task', taskId: string, fn: GraphFn, args: number[], epoch: number }
  | { kind: 'result', taskId: string, ok: boolean, value: number }

interface Pending { fn: GraphFn, args: number[], owners: number[], sends: number, nextSendMs: number }

/** One driving of the run on one peer: from `drive` to `stop` (or a crash). */
interface Drive {
  epoch: number
  run: RunDriver
  script: GraphScript
  /** The gathered memo, by id (failures replay from here). */
  gathered: Map<string, MemoEntry>
  /** Tasks sent to workers and not answered yet. */
  pending: Map<string, Pending>
  /** Answers handed to the home machine, waiting for their `deliver`. */
  answered: Map<string, Outcome>
}

interface Job { endsAtMs: number, fn: GraphFn, args: number[], requesters: Set<number> }

interface Life {
  home: HomeRun | undefined
  drive: Drive | undefined
  /** Tasks this peer runs as a worker, by id. */
  jobs: Map<string, Job>
  out: Array<{ to: number, message: Message }>
  rng: Random
}

type Output =
  | { from: 'home', out: HomeOutput }
  | { from: 'run', drive: Drive, out: RunOutput }
  | { from: 'net', to: number, message: Message }

export function durableScenarioFromSeed (seed: number, shape: DurableShape = {}): DurableScenario {
  const rng = createRandom(seed)
  const nodes = shape.nodes ?? rng.int(5, 7)
  const peerIds = simPeerIds(rng.fork(), nodes)
  const runId = `run-${seed}`
  const homeIds = rendezvousOwners(runId, peerIds, HOME_SET_SIZE)
  const homeSet = homeIds.map(id => peerIds.indexOf(id))
  const graph = drawGraph(rng.fork(), shape.tasks ?? rng.int(10, 80))
  const timings: LeaseTimings = { ...LEASE_TIMING_DEFAULTS }
  const faults = shape.faults ?? true
  const faultShape = {
    nodes,
    faults,
    crashes: shape.crashes,
    // Offsets and steps within half the lease's clock bound: a step on the driver and one on a
    // grantor stay within it together (as in the lease scenario).
    skewMaxMs: faults ? rng.int(0, Math.floor(timings.clockDriftMaxMs / 2)) : 0,
    startWindowMs: rng.int(0, 500),
    faultPhaseMs: [2000, 8000] as [number, number],
    lossRateMax: 0.2,
    restartAfterMs: [1, 3000] as [number, number],
    partitionMs: [100, 3000] as [number, number]
  }
  const starts = drawStartPlan(rng, faultShape)
  const plan = drawFaultPlan(rng, faultShape, starts)
  return {
    seed,
    nodes,
    peerIds,
    runId,
    homeSet,
    graph,
    delayMinMs: 1,
    delayMaxMs: 40,
    taskMsMax: rng.int(5, TASK_MS_MAX),
    timings,
    ...starts,
    ...plan,
    crashes: shape.crashes ?? minorityCrashes(plan.crashes, homeSet),
    checkEveryMs: 100,
    traceLinesKept: shape.traceLinesKept ?? 0
  }
}

/** Keep the crashes that never take down a second home-set peer while another is down (in time
 *  order; a crash that stays down holds its peer down until the end). Other peers crash freely. */
export function minorityCrashes (crashes: readonly CrashPlan[], homeSet: readonly number[]): CrashPlan[] {
  const down: Array<{ node: number, fromMs: number, untilMs: number }> = []
  const kept: CrashPlan[] = []
  for (const c of [...crashes].sort((a, b) => a.atMs - b.atMs)) {
    if (homeSet.includes(c.node)) {
      const untilMs = c.restartAtMs ?? Infinity
      if (down.some(d => d.node !== c.node && d.fromMs <= untilMs && c.atMs <= d.untilMs)) continue
      down.push({ node: c.node, fromMs: c.atMs, untilMs })
    }
    kept.push(c)
  }
  return kept
}

/**
 * How long after T the run may take to be reported finished: the lease's own liveness bound (a
 * running majority elects a driver), a gather and the memo driver's longest resend and probe,
 * then the graph's longest chain, each step a task (its first owners possibly dead: one give-up
 * per peer) plus the round trips of its send, its answer and its replication. Twice that.
 */
export function durableBoundMs (s: DurableScenario): number {
  const leaseMs = leaseBoundMs({ nodes: HOME_SET_SIZE, delayMaxMs: s.delayMaxMs, timings: s.timings, skewMaxMs: s.skewMaxMs })
  const memoMs = 4 * s.delayMaxMs + MEMO_TIMINGS.resendMaxMs + MEMO_TIMINGS.probeIntervalMs
  const stepMs = s.taskMsMax + 6 * s.delayMaxMs + TASK_RESEND_MS + (s.nodes - 1) * RESENDS_PER_WORKER * TASK_RESEND_MS / 4
  return 2 * (leaseMs + memoMs + graphDepth(s.graph) * stepMs)
}

/** What one run of the scenario tracks to check its invariants. */
interface State {
  s: DurableScenario
  world: SimWorld
  hosts?: SimHosts<Life, Message, Output>
  network?: SimNetwork<Message>
  indexOf: Map<string, number>
  isHome: boolean[]
  counts: DurableCounts
  /** Epoch → the node that drove it. */
  drivers: Map<number, number>
  /** Task id → the epoch its ok result was delivered in (the lowest). */
  durableOk: Map<string, number>
  /** Executions per task id, completions per `${worker} ${taskId}`, and the excuses for extra ones. */
  executions: Map<string, number>
  completions: Map<string, number>
  excuses: Map<string, number>
  /** Per node: the tasks its worker is running now (seen from outside, for the crash excuse). */
  runningAt: Array<Set<string>>
  /** What each node's storage holds of the memo, decoded (written together with storage). */
  disks: Array<Map<string, MemoEntry>>
  hooks: DurableHooks
  reported: { cid: string, bytes: string } | undefined
  firstDrive: { atMs: number, node: number } | undefined
  finishedMs: number | undefined
  value: number | undefined
  livenessReported: boolean
}

export function runDurableScenario (input: DurableScenario | ({ seed: number } & DurableShape), hooks: DurableHooks = {}): DurableScenarioResult {
  const s = 'graph' in input ? input : durableScenarioFromSeed(input.seed, input)
  const problem = s.nodes < HOME_SET_SIZE ? 'the durable scenario needs a home set' : faultPlanProblem(s, s.nodes)
  if (problem !== undefined) throw new RangeError(`durable scenario (seed ${s.seed}): ${problem}`)
  const rng = createRandom(s.seed ^ 0xd0ab1e)
  const netRng = rng.fork()
  const machineRng = rng.fork()
  const world = new SimWorld(s.traceLinesKept)
  const st: State = {
    s,
    world,
    indexOf: new Map(s.peerIds.map((id, i) => [id, i])),
    isHome: s.peerIds.map((_, i) => s.homeSet.includes(i)),
    counts: { drives: 0, takeovers: 0, stops: 0, delivered: 0, executions: 0, reExecuted: 0, lostInCrash: 0, fallbacks: 0, answeredFromStore: 0, joined: 0, lateAnswers: 0, conflicts: 0, highestEpoch: 0 },
    drivers: new Map(),
    durableOk: new Map(),
    executions: new Map(),
    completions: new Map(),
    excuses: new Map(),
    runningAt: s.peerIds.map(() => new Set()),
    disks: s.peerIds.map(() => new Map()),
    hooks,
    reported: undefined,
    firstDrive: undefined,
    finishedMs: undefined,
    value: undefined,
    livenessReported: false
  }
  const hosts = new SimHosts<Life, Message, Output>(world, s.peerIds, s.initialSkewsMs, durableAdapter(st, machineRng))
  const network = new SimNetwork<Message>(world, hosts.nodes, netRng, s, (to, from, message) => hosts.deliver(to, from, message))
  st.hosts = hosts
  st.network = network
  const boundMs = durableBoundMs(s)
  const endMs = s.faultsEndMs + boundMs
  hosts.scheduleStarts(s.startTimesMs)
  scheduleFaults(world, s, { hosts, network })
  world.run({ endMs, checkTimesMs: checkTimes(endMs, s.checkEveryMs, [endMs]), check: () => { checkSample(st, boundMs) }, simEventsMax: 2_000_000 })
  return finalResult(st, boundMs)
}

// --- the host loop ---------------------------------------------------------------------------

function durableAdapter (st: State, machineRng: Random): MachineAdapter<Life, Message, Output> {
  return {
    start: (node, nowMs) => startPeer(st, node, nowMs, machineRng),
    startNote: (life) => life.home === undefined ? 'worker' : `home entries=${life.home.memo().length} role=${life.home.role()}`,
    handleMessage: (life, node, from, message, nowMs) => { onMessage(st, life, node, from, message, nowMs) },
    handleTimeout: (life, node, nowMs) => { onTimeout(st, life, node, nowMs) },
    poll: (life) => {
      const h = life.home?.poll()
      if (h !== undefined) return { from: 'home', out: h }
      const drive = life.drive
      const r = drive?.run.poll()
      if (r !== undefined) return { from: 'run', drive: drive as Drive, out: r }
      const n = life.out.shift()
      return n === undefined ? undefined : { from: 'net', to: n.to, message: n.message }
    },
    nextTimeoutMs: (life) => nextTimeout(life),
    output: (node, out) => { onOutput(st, node, out) },
    crashed: (node) => { crashed(st, node) }
  }
}

function startPeer (st: State, node: SimNode<Life>, nowMs: number, machineRng: Random): Life {
  const { s, world } = st
  const life: Life = { home: undefined, drive: undefined, jobs: new Map(), out: [], rng: machineRng.fork() }
  if (st.isHome[node.index]) {
    const promiseBytes = node.storage.get(PROMISE_KEY)
    const promise = promiseBytes === undefined ? undefined : JSON.parse(untext.decode(promiseBytes)) as LeasePromise
    const entries: MemoEntry[] = []
    for (const key of node.storage.keys()) if (key.startsWith(ENTRY_PREFIX)) entries.push(decodeEntry(node.storage.get(key) as Uint8Array))
    life.home = (st.hooks.createHomeRun ?? createHomeRun)({
      selfId: s.peerIds[node.index],
      runId: s.runId,
      homeSet: s.homeSet.map(i => s.peerIds[i]),
      restored: { promise, entries, epoch: node.storage.getNumber(EPOCH_KEY) },
      lease: s.timings,
      memo: MEMO_TIMINGS
    }, nowMs + node.skewMs)
  }
  // The machine may have said something at construction (a restored outcome, a first request):
  // the shell drains it at once, as after any input.
  const lifeNumber = node.life + 1
  world.at(nowMs, () => { if (node.up && node.life === lifeNumber) st.hosts!.feed(node.index, () => {}) })
  return life
}

function nextTimeout (life: Life): number {
  let next = life.home?.nextTimeoutMs() ?? Infinity
  const drive = life.drive
  if (drive !== undefined) {
    next = Math.min(next, drive.run.nextTimeoutMs() ?? Infinity)
    for (const p of drive.pending.values()) next = Math.min(next, p.nextSendMs)
  }
  for (const job of life.jobs.values()) next = Math.min(next, job.endsAtMs)
  return next
}

function onMessage (st: State, life: Life, node: SimNode<Life>, from: number, message: Message, nowMs: number): void {
  if (message.kind === 'home') {
    life.home?.handleMessage(st.s.peerIds[from], message.message, nowMs)
  } else if (message.kind === 'task') {
    workerTask(st, life, node, from, message, nowMs)
  } else {
    taskAnswer(st, life, node, message, nowMs)
  }
}

function onTimeout (st: State, life: Life, node: SimNode<Life>, nowMs: number): void {
  life.home?.handleTimeout(nowMs)
  const drive = life.drive
  if (drive !== undefined) {
    drive.run.handleTimeout(nowMs)
    for (const [taskId, p] of drive.pending) if (p.nextSendMs <= nowMs) sendTask(st, life, drive, taskId, p, nowMs)
  }
  finishJobs(st, life, node, nowMs)
}

function onOutput (st: State, node: SimNode<Life>, out: Output): void {
  if (out.from === 'net') {
    if (out.to === node.index) onMessage(st, node.machine!, node, node.index, out.message, st.hosts!.localMs(node))
    else st.network!.send(node.index, out.to, out.message)
  } else if (out.from === 'home') {
    homeOutput(st, node, out.out)
  } else if (node.machine?.drive === out.drive) {
    runOutput(st, node, out.drive, out.out)
  }
}

function crashed (st: State, node: SimNode<Life>): void {
  // The machine and its jobs are gone: each task it was running may be run again, with excuse.
  const running = st.runningAt[node.index]
  st.world.trace.add(`${st.world.nowMs} lost ${node.index} running ${running.size}`)
  for (const taskId of running) {
    st.counts.lostInCrash += 1
    excuse(st, taskId)
  }
  running.clear()
}

// --- the home machine's outputs -------------------------------------------------------------

function homeOutput (st: State, node: SimNode<Life>, o: HomeOutput): void {
  const { world } = st
  const life = node.machine!
  switch (o.type) {
    case 'send':
      life.out.push({ to: st.indexOf.get(o.to)!, message: { kind: 'home', message: o.message } })
      return
    case 'persist-lease':
      node.storage.put(PROMISE_KEY, text.encode(JSON.stringify(o.promise)))
      return
    case 'persist-memo':
      for (const e of o.entries) {
        node.storage.put(ENTRY_PREFIX + e.id, encodeEntry(e))
        st.disks[node.index].set(e.id, decodeEntry(encodeEntry(e)))
      }
      node.storage.putNumber(EPOCH_KEY, o.epoch)
      return
    case 'drive':
      startDrive(st, node, o.epoch, o.memo)
      return
    case 'deliver':
      deliver(st, node, o.id, o.epoch)
      return
    case 'stop':
      st.counts.stops += 1
      world.trace.add(`${world.nowMs} stop ${node.index} epoch=${o.epoch} ${o.reason}`)
      if (life.drive?.epoch === o.epoch) life.drive = undefined
      return
    case 'settled':
      world.trace.add(`${world.nowMs} settled ${node.index} ${o.entry.value.cid}`)
      report(st, node.index, o.entry.value, 'settled')
      return
    case 'conflict':
      st.counts.conflicts += 1
      // Another worker may answer the same task (a peer differs); a different value is nondeterminism, which the graph has none of.
      if (o.kept.value.cid !== o.dropped.value.cid) world.violate(`conflict on ${o.id}: kept ${o.kept.value.cid}, dropped ${o.dropped.value.cid}`)
  }
}

function startDrive (st: State, node: SimNode<Life>, epoch: number, memo: MemoEntry[]): void {
  const { world, s } = st
  const life = node.machine!
  st.counts.drives += 1
  if (st.counts.drives > 1) st.counts.takeovers += 1
  st.counts.highestEpoch = Math.max(st.counts.highestEpoch, epoch)
  const other = st.drivers.get(epoch)
  if (other !== undefined) world.violate(`epoch ${epoch} driven by peer ${other} and again by peer ${node.index}`)
  st.drivers.set(epoch, node.index)
  st.firstDrive ??= { atMs: world.nowMs, node: node.index }
  world.trace.add(`${world.nowMs} drive ${node.index} epoch=${epoch} memo=${memo.length}`)
  const entries = Math.max(10_000, 2 * s.graph.length)
  const results = memo.filter(e => e.value.cid !== ERROR_CID).map(e => ({ id: e.id, result: { cid: e.value.cid, peer: e.value.peer, bytes: e.value.bytes } }))
  const run = createRunDriver({ runId: s.runId, memo: results, commandsMax: entries, memoEntriesMax: entries })
  life.drive = { epoch, run, script: new GraphScript(s.graph), gathered: new Map(memo.map(e => [e.id, e])), pending: new Map(), answered: new Map() }
  run.handleStart(st.hosts!.localMs(node))
}

function deliver (st: State, node: SimNode<Life>, id: string, epoch: number): void {
  const { world } = st
  const life = node.machine!
  st.counts.delivered += 1
  const driver = st.drivers.get(epoch)
  if (driver !== node.index) world.violate(`peer ${node.index} delivered ${id} in epoch ${epoch}, which peer ${String(driver)} drives`)
  const drive = life.drive
  world.trace.add(`${world.nowMs} deliver ${node.index} ${id} epoch=${epoch}`)
  if (drive === undefined || drive.epoch !== epoch) return
  if (id === RESULT_ENTRY_ID) {
    const entry = life.home!.memo().find(e => e.id === RESULT_ENTRY_ID)
    assert(entry !== undefined, 'a delivered outcome is in the local memo')
    report(st, node.index, entry.value, 'deliver')
    life.drive = undefined
    return
  }
  const outcome = drive.answered.get(id)
  assert(outcome !== undefined, `a delivered task ${id} was answered`)
  drive.answered.delete(id)
  if (outcome.ok && !st.durableOk.has(id)) st.durableOk.set(id, epoch)
  drive.run.handleTaskOutcome(id, outcome, st.hosts!.localMs(node))
}

function report (st: State, index: number, value: MemoValue, how: string): void {
  const { world } = st
  const bytes = value.bytes === undefined ? '' : untext.decode(value.bytes)
  if (st.reported === undefined) {
    st.reported = { cid: value.cid, bytes }
    st.finishedMs = world.nowMs
    st.value = bytes === '' ? undefined : decodeValue(value.bytes as Uint8Array)
    world.trace.add(`${world.nowMs} reported ${index} ${how} ${value.cid}`)
    return
  }
  if (st.reported.cid !== value.cid || st.reported.bytes !== bytes) world.violate(`peer ${index} reported (${how}) the outcome ${value.cid}/${bytes}, earlier ${st.reported.cid}/${st.reported.bytes}`)
}

// --- the run driver's outputs --------------------------------------------------------------

function runOutput (st: State, node: SimNode<Life>, drive: Drive, o: RunOutput): void {
  const nowMs = st.hosts!.localMs(node)
  switch (o.type) {
    case 'activate':
      drive.run.handleActivation(drive.script.activate(o.resolutions), nowMs)
      return
    case 'schedule':
      schedule(st, node, drive, o.task.taskId, o.task.fn as GraphFn, JSON.parse(untext.decode(o.task.args)) as number[], nowMs)
      return
    case 'cancel':
      drive.pending.delete(o.taskId)
      return
    case 'finished': {
      if (!o.outcome.ok) {
        st.world.violate(`the run failed: ${o.outcome.error.name}: ${o.outcome.error.message}`)
        return
      }
      const value = decodeValue(o.outcome.value)
      localEntry(st, node, drive, RESULT_ENTRY_ID, { cid: `value:${value}`, peer: st.s.peerIds[node.index], bytes: encodeValue(value) }, nowMs)
      return
    }
    case 'start-child':
    case 'cancel-child':
      st.world.violate(`unexpected ${o.type}: the graph has no child runs`)
      return
    case 'event':
  }
}

function schedule (st: State, node: SimNode<Life>, drive: Drive, taskId: string, fn: GraphFn, args: number[], nowMs: number): void {
  const { world, s } = st
  const durableIn = st.durableOk.get(taskId)
  if (durableIn !== undefined && durableIn < drive.epoch) world.violate(`the driver of epoch ${drive.epoch} scheduled ${taskId}, whose result was delivered in epoch ${durableIn}`)
  const failure = drive.gathered.get(taskId)
  if (failure !== undefined) {
    // A failure in the gathered memo: the code is given it again, no worker asked.
    drive.answered.set(taskId, failedOutcome())
    localEntry(st, node, drive, taskId, failure.value, nowMs)
    return
  }
  const owners = rendezvousOwners(taskId, s.peerIds, s.nodes).map(id => st.indexOf.get(id)!)
  const p: Pending = { fn, args, owners, sends: 0, nextSendMs: nowMs }
  drive.pending.set(taskId, p)
  sendTask(st, node.machine!, drive, taskId, p, nowMs)
}

function sendTask (st: State, life: Life, drive: Drive, taskId: string, p: Pending, nowMs: number): void {
  const owner = Math.floor(p.sends / RESENDS_PER_WORKER) % p.owners.length
  if (owner > 0 && p.sends % RESENDS_PER_WORKER === 0) {
    st.counts.fallbacks += 1
    excuse(st, taskId)
  }
  p.sends += 1
  p.nextSendMs = nowMs + TASK_RESEND_MS
  life.out.push({ to: p.owners[owner], message: { kind: 'task', taskId, fn: p.fn, args: p.args, epoch: drive.epoch } })
}

/** An answer from a worker reaches the driver's shell: into the memo, not to the code. */
function taskAnswer (st: State, life: Life, node: SimNode<Life>, message: Extract<Message, { kind: 'result' }>, nowMs: number): void {
  const drive = life.drive
  if (drive === undefined || !drive.pending.has(message.taskId)) {
    st.counts.lateAnswers += 1
    return
  }
  drive.pending.delete(message.taskId)
  st.world.trace.add(`${st.world.nowMs} answer ${node.index} ${message.taskId} ${message.ok ? message.value : 'failed'}`)
  const value: MemoValue = message.ok
    ? { cid: `value:${message.value}`, peer: st.s.peerIds[node.index], bytes: encodeValue(message.value) }
    : { cid: ERROR_CID, peer: st.s.peerIds[node.index], bytes: text.encode('boom') }
  drive.answered.set(message.taskId, message.ok ? { ok: true, result: { cid: value.cid, peer: value.peer, bytes: value.bytes } } : failedOutcome())
  localEntry(st, node, drive, message.taskId, value, nowMs)
}

function localEntry (st: State, node: SimNode<Life>, drive: Drive, id: string, value: MemoValue, nowMs: number): void {
  const life = node.machine!
  if (!life.home!.handleLocalEntry({ id, value }, nowMs)) {
    // Not driving any more (a `stop` is on its way): drop the run here.
    st.world.trace.add(`${st.world.nowMs} dropped ${node.index} epoch=${drive.epoch}`)
    if (life.drive === drive) life.drive = undefined
  }
}

function failedOutcome (): Outcome {
  return { ok: false, error: { name: 'FunctionThrewError', code: 'ERR_FUNCTION_THREW', message: 'boom', retryable: false } }
}

// --- workers ---------------------------------------------------------------------------------

function workerTask (st: State, life: Life, node: SimNode<Life>, from: number, m: Extract<Message, { kind: 'task' }>, nowMs: number): void {
  const stored = node.storage.get(BLOB_PREFIX + m.taskId)
  if (stored !== undefined) {
    st.counts.answeredFromStore += 1
    const r = JSON.parse(untext.decode(stored)) as { ok: boolean, value: number }
    life.out.push({ to: from, message: { kind: 'result', taskId: m.taskId, ok: r.ok, value: r.value } })
    return
  }
  const running = life.jobs.get(m.taskId)
  if (running !== undefined) {
    st.counts.joined += 1
    running.requesters.add(from)
    return
  }
  const n = (st.executions.get(m.taskId) ?? 0) + 1
  st.executions.set(m.taskId, n)
  st.counts.executions += 1
  if (n === 2) st.counts.reExecuted += 1
  const ms = life.rng.int(1, st.s.taskMsMax)
  life.jobs.set(m.taskId, { endsAtMs: nowMs + ms, fn: m.fn, args: m.args, requesters: new Set([from]) })
  st.runningAt[node.index].add(m.taskId)
  st.world.trace.add(`${st.world.nowMs} exec ${node.index} ${m.taskId} #${n} for ${from}@${m.epoch}`)
}

function finishJobs (st: State, life: Life, node: SimNode<Life>, nowMs: number): void {
  for (const [taskId, job] of life.jobs) {
    if (job.endsAtMs > nowMs) continue
    life.jobs.delete(taskId)
    st.runningAt[node.index].delete(taskId)
    const key = `${node.index} ${taskId}`
    const done = (st.completions.get(key) ?? 0) + 1
    st.completions.set(key, done)
    if (done > 1) st.world.violate(`worker ${node.index} completed ${taskId} ${done} times`)
    const r = work(job.fn, job.args)
    const answer = { ok: r.ok, value: r.ok ? r.value : 0 }
    if (st.hooks.workersKeepNoResults !== true) node.storage.put(BLOB_PREFIX + taskId, text.encode(JSON.stringify(answer)))
    for (const to of job.requesters) life.out.push({ to, message: { kind: 'result', taskId, ...answer } })
  }
}

function excuse (st: State, taskId: string): void {
  st.excuses.set(taskId, (st.excuses.get(taskId) ?? 0) + 1)
}

// --- checks ----------------------------------------------------------------------------------

function checkSample (st: State, boundMs: number): void {
  if (st.finishedMs === undefined && !st.livenessReported && st.world.nowMs >= st.s.faultsEndMs + boundMs) {
    st.livenessReported = true
    st.world.violate(`the run was not reported finished within ${boundMs} ms after the faults stopped`)
  }
}

function finalResult (st: State, boundMs: number): DurableScenarioResult {
  const { s, world } = st
  const expected = evaluateGraph(s.graph)
  if (world.violationCount === 0) checkEnd(st, expected, boundMs)
  return {
    seed: s.seed,
    ok: world.violationCount === 0,
    violations: world.violations,
    violationCount: world.violationCount,
    nodes: s.nodes,
    tasks: new Set(st.executions.keys()).size,
    faultsEndMs: s.faultsEndMs,
    finishedMs: st.finishedMs,
    firstDrive: st.firstDrive,
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

function checkEnd (st: State, expected: number, boundMs: number): void {
  const { world } = st
  if (st.finishedMs === undefined) {
    world.violate(`the run was not reported finished by T + ${boundMs} ms`)
    return
  }
  if (st.value !== expected) world.violate(`the run returned ${String(st.value)}, the graph evaluates to ${expected}`)
  for (const [taskId, n] of st.executions) {
    const excused = st.excuses.get(taskId) ?? 0
    if (n - 1 > excused) world.violate(`task ${taskId} was executed ${n} times with ${excused} excuses (a worker crash while running it, a send to a later owner)`)
  }
  checkConvergence(st)
}

function checkConvergence (st: State): void {
  const { world, s, hosts } = st
  const values = new Map<string, string>()
  for (const index of s.homeSet) {
    const node = hosts!.nodes[index]
    if (!node.up) continue
    const home = node.machine!.home!
    if (home.role() !== 'settled') world.violate(`home-set peer ${index} is ${home.role()} at the end, not settled`)
    const memo = home.memo()
    for (const e of memo) {
      const v = `${e.value.cid}|${e.value.bytes === undefined ? '' : untext.decode(e.value.bytes)}`
      const other = values.get(e.id)
      if (other !== undefined && other !== v) world.violate(`replicas disagree on ${e.id}: ${other} and ${v} (peer ${index})`)
      values.set(e.id, v)
    }
    const disk = [...st.disks[index].values()].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
    if (JSON.stringify(disk.map(plain)) !== JSON.stringify(memo.map(plain))) world.violate(`home-set peer ${index}: storage differs from its replica's memo`)
  }
}

// --- storage encoding ------------------------------------------------------------------------

function plain (e: MemoEntry): unknown {
  return { id: e.id, epoch: e.epoch, cid: e.value.cid, peer: e.value.peer, bytes: e.value.bytes === undefined ? null : [...e.value.bytes] }
}

function encodeEntry (e: MemoEntry): Uint8Array {
  return text.encode(JSON.stringify(plain(e)))
}

function decodeEntry (bytes: Uint8Array): MemoEntry {
  const p = JSON.parse(untext.decode(bytes)) as { id: string, epoch: number, cid: string, peer: string, bytes: number[] | null }
  const value: MemoValue = p.bytes === null ? { cid: p.cid, peer: p.peer } : { cid: p.cid, peer: p.peer, bytes: Uint8Array.from(p.bytes) }
  return { id: p.id, epoch: p.epoch, value }
}

/** The `durable` entry of src/sim/scenarios.ts. */
export const durableScenarioEntry = {
  name: 'durable',
  description: 'a durable run: home-set lease and memo, the run driver on whoever holds the lease, workers with a result store; one result, one driver per epoch, no rerun after takeover, replicas converge',
  runSeed (seed: number, options: { traceLinesKept?: number } = {}) {
    const r = runDurableScenario({ seed, traceLinesKept: options.traceLinesKept ?? 0 })
    const finished = r.finishedMs === undefined ? 'never finished' : `finished at ${r.finishedMs} ms (T + ${Math.max(0, r.finishedMs - r.faultsEndMs)}, bound ${r.boundMs} ms)`
    const c = r.counts
    return {
      scenario: 'durable',
      seed,
      ok: r.ok,
      violations: r.violations,
      violationCount: r.violationCount,
      summary: `${r.nodes} peers, ${r.tasks} tasks, faults until ${r.faultsEndMs} ms, ${c.takeovers} takeovers (epoch ${c.highestEpoch}), ${c.reExecuted} tasks re-executed, ${r.messages.sent} messages, ${finished}, value ${String(r.value)} (expected ${r.expected})`,
      details: [`counts ${JSON.stringify(c)}`, `messages ${JSON.stringify(r.messages)}`],
      traceHash: r.traceHash,
      simEvents: r.simEvents,
      trace: r.trace,
      boundUsed: r.finishedMs === undefined ? undefined : Math.max(0, r.finishedMs - r.faultsEndMs) / r.boundMs
    }
  }
}
