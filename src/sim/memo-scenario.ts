/**
 * Memo replication on the generic simulator: R replicas (the home set), a driver that appends
 * entries, and a takeover by a second driver while the first one still runs (src/protocol/memo/).
 *
 * Nodes 0..R−1 are replicas (R is 3 or 5); node R is driver A (epoch 1, a new run); node R+1
 * becomes driver B (epoch 2, `gather: true`) at a drawn takeover time, and the lease's epoch
 * reaches the running replicas (`handleEpoch`) a little later. A keeps appending after the
 * takeover — a deposed driver that has not noticed yet — and B appends too, some of its ids the
 * same as A's with other values (the nondeterminism conflicts are about). Replicas crash and
 * restart from what they persisted (their storage: entries and fence); at most a minority of them
 * stays down. The drivers do not crash (a driver crash is what the takeover models). Messages are
 * lost, duplicated, delayed and partitioned until T.
 *
 * Invariants:
 *  - DURABLE: when a driver says `durable`, a majority of the replicas' storage holds that id with
 *    that value; at every later check still; and no id is ever reported durable with two values;
 *  - GATHER: every entry A reported durable is in B's `gathered` memo with the same value;
 *  - CONVERGENCE: at the end (faults stopped at T, then settleMs) B has gathered, and every running
 *    replica's memo equals B's memo and what its storage holds.
 */
import { assert } from '../model/errors.ts'
import { createMemoDriver, createMemoReplica } from '../protocol/memo/index.ts'
import type { DriverMessage, DriverOutput, MemoDriver, MemoDriverOptions, MemoEntry, MemoReplica, ReplicaMessage, ReplicaOutput } from '../protocol/memo/index.ts'
import { createRandom } from '../protocol/random.ts'
import { drawFaultPlan, drawStartPlan, faultPlanProblem, scheduleFaults } from './faults.ts'
import type { FaultPlan, StartPlan } from './faults.ts'
import { SimNetwork } from './network.ts'
import type { NetworkStats } from './network.ts'
import { SimHosts, simPeerIds } from './node.ts'
import type { MachineAdapter, SimNode } from './node.ts'
import { checkTimes, SimWorld } from './world.ts'

type Message = DriverMessage | ReplicaMessage

export interface MemoScenario extends StartPlan, FaultPlan {
  seed: number
  replicas: number
  delayMinMs: number
  delayMaxMs: number
  takeoverMs: number
  leaseEpochDelayMs: number
  /** [time, id, cid] appended by A, then by B. */
  appendsA: Array<[number, string, string]>
  appendsB: Array<[number, string, string]>
  settleMs: number
  checkEveryMs: number
  traceLinesKept: number
}

export interface MemoScenarioResult {
  seed: number
  ok: boolean
  violations: string[]
  violationCount: number
  replicas: number
  faultsEndMs: number
  endMs: number
  counts: { durableA: number, durableB: number, gathered: number, conflicts: number, fencedA: boolean, liveReplicasAtEnd: number, memoEntries: number }
  messages: NetworkStats
  simEvents: number
  traceHash: string
  trace: readonly string[]
}

export interface MemoHooks {
  createDriver?: (options: MemoDriverOptions) => MemoDriver
  createReplica?: typeof createMemoReplica
}

/** Driver timings for the simulator: short, so that retries, give-ups and probes all happen. */
const TIMINGS = { resendMs: 100, resendMaxMs: 800, attemptsMax: 5, probeIntervalMs: 1000 }

export function memoScenarioFromSeed (seed: number, shape: { traceLinesKept?: number } = {}): MemoScenario {
  const rng = createRandom(seed)
  const replicas = rng.chance(0.5) ? 3 : 5
  const nodes = replicas + 2
  const faultShape = { nodes, startWindowMs: 300, faultPhaseMs: [3000, 8000] as [number, number], restartAfterMs: [1, 3000] as [number, number], partitionMs: [100, 3000] as [number, number] }
  const starts = drawStartPlan(rng, faultShape)
  const faults = drawFaultPlan(rng, faultShape, starts)
  // Drivers do not crash; at most a minority of replicas stays down for good.
  const crashes = faults.crashes.filter(c => c.node < replicas)
  const downForGood = new Set<number>()
  const kept = crashes.filter(c => {
    if (c.restartAtMs !== undefined) return true
    if (downForGood.has(c.node)) return true
    if (downForGood.size >= Math.floor((replicas - 1) / 2)) return false
    downForGood.add(c.node)
    return true
  })
  const T = faults.faultsEndMs
  const takeoverMs = rng.int(Math.floor(T / 3), T - 1)
  const startA = starts.startTimesMs[replicas]
  const appendsA: Array<[number, string, string]> = []
  const countA = rng.int(3, 25)
  for (let k = 0; k < countA; k++) appendsA.push([rng.int(startA, takeoverMs + 1000), `e${k}`, `a${k}`])
  const appendsB: Array<[number, string, string]> = []
  const countB = rng.int(3, 25)
  for (let k = 0; k < countB; k++) {
    const reuse = rng.chance(0.3)
    const id = reuse ? `e${rng.int(0, countA - 1)}` : `f${k}`
    appendsB.push([rng.int(takeoverMs, T + 2000), id, `b${k}`])
  }
  return {
    seed,
    replicas,
    delayMinMs: 1,
    delayMaxMs: 40,
    ...starts,
    ...faults,
    crashes: kept,
    takeoverMs,
    leaseEpochDelayMs: rng.int(0, 2000),
    appendsA,
    appendsB,
    settleMs: 10_000,
    checkEveryMs: 500,
    traceLinesKept: shape.traceLinesKept ?? 0
  }
}

interface Life { replica?: MemoReplica, driver?: MemoDriver }
type Node = SimNode<Life>
type Output = DriverOutput | ReplicaOutput

const EPOCH_KEY = 'memo/epoch'
const ENTRY_PREFIX = 'memo/e/'
const text = new TextEncoder()
const untext = new TextDecoder()

interface State {
  s: MemoScenario
  world: SimWorld
  ids: string[]
  indexOf: Map<string, number>
  /** What each replica's storage holds, decoded (written together with storage). */
  disks: Array<Map<string, MemoEntry>>
  /** id → value (cid|peer) once reported durable. */
  durable: Map<string, string>
  durableA: Set<string>
  gathered: Map<string, string> | undefined
  counts: MemoScenarioResult['counts']
  hosts?: SimHosts<Life, Message, Output>
  network?: SimNetwork<Message>
}

const valueKey = (e: MemoEntry): string => `${e.value.cid}|${e.value.peer}`

export function runMemoScenario (input: MemoScenario | { seed: number, traceLinesKept?: number }, hooks: MemoHooks = {}): MemoScenarioResult {
  const s = 'startTimesMs' in input ? input : memoScenarioFromSeed(input.seed, input)
  const nodes = s.replicas + 2
  const problem = faultPlanProblem(s, nodes)
  if (problem !== undefined) throw new RangeError(`memo scenario (seed ${s.seed}): ${problem}`)
  const rng = createRandom(s.seed)
  const idRng = rng.fork()
  const netRng = rng.fork()
  const world = new SimWorld(s.traceLinesKept)
  const ids = simPeerIds(idRng, nodes)
  const st: State = {
    s,
    world,
    ids,
    indexOf: new Map(ids.map((id, i) => [id, i])),
    disks: Array.from({ length: s.replicas }, () => new Map()),
    durable: new Map(),
    durableA: new Set(),
    gathered: undefined,
    counts: { durableA: 0, durableB: 0, gathered: 0, conflicts: 0, fencedA: false, liveReplicasAtEnd: 0, memoEntries: 0 }
  }
  const hosts = new SimHosts<Life, Message, Output>(world, ids, s.initialSkewsMs, adapter(st, hooks))
  const network = new SimNetwork<Message>(world, hosts.nodes, netRng, s, (to, from, m) => hosts.deliver(to, from, m))
  st.hosts = hosts
  st.network = network
  const A = s.replicas
  const B = s.replicas + 1
  const endMs = s.faultsEndMs + s.settleMs
  hosts.scheduleStarts(s.startTimesMs)
  scheduleFaults(world, s, { hosts, network })
  world.at(s.takeoverMs, () => {
    world.trace.add(`${world.nowMs} takeover`)
    hosts.feed(B, (life) => {
      life.driver = (hooks.createDriver ?? createMemoDriver)({ self: ids[B], epoch: 2, homeSet: ids.slice(0, s.replicas), gather: true, ...TIMINGS })
    })
  })
  world.at(s.takeoverMs + s.leaseEpochDelayMs, () => {
    for (let i = 0; i < s.replicas; i++) if (hosts.nodes[i].up) hosts.feed(i, (life, nowMs) => life.replica!.handleEpoch(2, nowMs))
  })
  for (const [atMs, id, cid] of s.appendsA) world.at(atMs, () => { localEntry(st, A, id, cid) })
  for (const [atMs, id, cid] of s.appendsB) world.at(atMs, () => { localEntry(st, B, id, cid) })
  world.run({ endMs, checkTimesMs: checkTimes(endMs, s.checkEveryMs, [endMs]), check: () => { checkDurable(st) }, simEventsMax: 500_000 })
  if (world.violationCount === 0) checkEnd(st)
  return {
    seed: s.seed,
    ok: world.violationCount === 0,
    violations: world.violations,
    violationCount: world.violationCount,
    replicas: s.replicas,
    faultsEndMs: s.faultsEndMs,
    endMs,
    counts: st.counts,
    messages: { ...network.stats },
    simEvents: world.simEvents,
    traceHash: world.trace.digest(),
    trace: world.trace.keptLines
  }
}

/** A driver's shell hands the code's new entry over; one still gathering holds it back a while. */
function localEntry (st: State, index: number, id: string, cid: string): void {
  const { hosts, world, ids } = st
  const node = hosts!.nodes[index]
  const driver = node.machine?.driver
  if (driver === undefined || driver.state() === 'fenced') return
  if (driver.state() === 'gathering') {
    world.at(world.nowMs + 200, () => { localEntry(st, index, id, cid) })
    return
  }
  world.trace.add(`${world.nowMs} local ${index} ${id}=${cid}`)
  hosts!.feed(index, (life, nowMs) => life.driver!.handleLocalEntry({ id, value: { cid, peer: ids[index] } }, nowMs))
}

function adapter (st: State, hooks: MemoHooks): MachineAdapter<Life, Message, Output> {
  const { s } = st
  return {
    start: (node) => {
      if (node.index < s.replicas) {
        const entries: MemoEntry[] = []
        for (const key of node.storage.keys()) {
          if (key.startsWith(ENTRY_PREFIX)) entries.push(JSON.parse(untext.decode(node.storage.get(key))) as MemoEntry)
        }
        return { replica: (hooks.createReplica ?? createMemoReplica)({ entries, epoch: node.storage.getNumber(EPOCH_KEY) ?? 0 }) }
      }
      if (node.index === s.replicas) {
        return { driver: (hooks.createDriver ?? createMemoDriver)({ self: st.ids[node.index], epoch: 1, homeSet: st.ids.slice(0, s.replicas), ...TIMINGS }) }
      }
      return {}
    },
    startNote: (life) => life.replica === undefined ? '' : `entries=${life.replica.memo().length} epoch=${life.replica.epoch()}`,
    handleMessage: (life, _node, from, message, nowMs) => {
      const fromId = st.ids[from]
      if (life.replica !== undefined) life.replica.handleMessage(fromId, message as DriverMessage, nowMs)
      else life.driver?.handleMessage(fromId, message as ReplicaMessage, nowMs)
    },
    handleTimeout: (life, _node, nowMs) => { life.driver?.handleTimeout(nowMs) },
    poll: (life) => life.replica !== undefined ? life.replica.poll() : life.driver?.poll(),
    nextTimeoutMs: (life) => life.driver?.nextTimeoutMs() ?? Infinity,
    output: (node, out) => { output(st, node, out) }
  }
}

function output (st: State, node: Node, out: Output): void {
  const { world, s } = st
  const me = node.index
  switch (out.type) {
    case 'persist': {
      for (const e of out.entries) {
        node.storage.put(ENTRY_PREFIX + e.id, text.encode(JSON.stringify(e)))
        st.disks[me].set(e.id, { ...e, value: { ...e.value } })
      }
      node.storage.putNumber(EPOCH_KEY, out.epoch)
      return
    }
    case 'send': {
      const to = st.indexOf.get(out.to)
      assert(to !== undefined, 'machines send to peers of the scenario')
      st.network!.send(me, to, out.message)
      return
    }
    case 'conflict':
      st.counts.conflicts += 1
      world.trace.add(`${world.nowMs} conflict ${me} ${out.id} kept=${out.kept.value.cid}@${out.kept.epoch} dropped=${out.dropped.value.cid}@${out.dropped.epoch}`)
      return
    case 'fenced':
      if (me === s.replicas) st.counts.fencedA = true
      world.trace.add(`${world.nowMs} fenced ${me} epoch=${out.epoch}`)
      return
    case 'gathered':
      st.counts.gathered = out.entries.length
      st.gathered = new Map(out.entries.map(e => [e.id, valueKey(e)]))
      world.trace.add(`${world.nowMs} gathered ${out.entries.length}`)
      for (const id of st.durableA) {
        if (st.gathered.get(id) !== st.durable.get(id)) world.violate(`B gathered ${id}=${st.gathered.get(id) ?? 'nothing'}, but A reported it durable as ${st.durable.get(id) ?? '?'}`)
      }
      return
    case 'durable': {
      const entry = node.machine!.driver!.memo().find(e => e.id === out.id)
      assert(entry !== undefined, 'a durable id is in the memo')
      const value = valueKey(entry)
      world.trace.add(`${world.nowMs} durable ${me} ${out.id}=${value}`)
      if (me === s.replicas) {
        st.counts.durableA += 1
        st.durableA.add(out.id)
        if (st.gathered !== undefined && st.gathered.get(out.id) !== value) world.violate(`A reported ${out.id} durable after B's gather, which does not hold it`)
      } else st.counts.durableB += 1
      const before = st.durable.get(out.id)
      if (before !== undefined && before !== value) world.violate(`${out.id} was reported durable as ${before}, now as ${value}`)
      st.durable.set(out.id, value)
      const holders = holding(st, out.id, value)
      if (holders <= s.replicas / 2) world.violate(`${out.id} reported durable by ${me} but only ${holders} of ${s.replicas} replicas' storage hold it`)
    }
  }
}

function holding (st: State, id: string, value: string): number {
  let n = 0
  for (const disk of st.disks) {
    const e = disk.get(id)
    if (e !== undefined && valueKey(e) === value) n += 1
  }
  return n
}

function checkDurable (st: State): void {
  for (const [id, value] of st.durable) {
    const n = holding(st, id, value)
    if (n <= st.s.replicas / 2) st.world.violate(`durable ${id}=${value} is held by only ${n} of ${st.s.replicas} replicas' storage`)
  }
}

function checkEnd (st: State): void {
  const { hosts, world, s } = st
  const b = hosts!.nodes[s.replicas + 1].machine?.driver
  if (b === undefined || b.state() !== 'ready') {
    world.violate(`driver B is ${b?.state() ?? 'missing'} at the end, not ready`)
    return
  }
  const memo = JSON.stringify(b.memo())
  st.counts.memoEntries = b.memo().length
  for (const [id, value] of st.durable) {
    const e = b.memo().find(x => x.id === id)
    if (e === undefined || valueKey(e) !== value) world.violate(`durable ${id}=${value} is not in B's memo`)
  }
  for (let i = 0; i < s.replicas; i++) {
    const node = hosts!.nodes[i]
    if (!node.up) continue
    st.counts.liveReplicasAtEnd += 1
    const replica = node.machine!.replica!
    if (JSON.stringify(replica.memo()) !== memo) world.violate(`replica ${i} did not converge: ${replica.memo().length} entries, B has ${b.memo().length}`)
    const disk = [...st.disks[i].values()].sort((x, y) => x.id < y.id ? -1 : 1)
    if (JSON.stringify(disk) !== JSON.stringify(replica.memo())) world.violate(`replica ${i}: storage differs from its memo`)
  }
}

/** The `memo` entry of src/sim/scenarios.ts. */
export const memoScenarioEntry = {
  name: 'memo',
  description: 'memo replication: a driver, a takeover, replicas that crash; durable entries held by a majority, gathered by the new driver, replicas converge',
  runSeed (seed: number, options: { traceLinesKept?: number } = {}) {
    const r = runMemoScenario({ seed, traceLinesKept: options.traceLinesKept ?? 0 })
    return {
      scenario: 'memo',
      seed,
      ok: r.ok,
      violations: r.violations,
      violationCount: r.violationCount,
      summary: `${r.replicas} replicas, ${r.counts.liveReplicasAtEnd} running at the end, faults until ${r.faultsEndMs} ms, durable A ${r.counts.durableA} B ${r.counts.durableB}, gathered ${r.counts.gathered}, memo ${r.counts.memoEntries}`,
      details: [`counts ${JSON.stringify(r.counts)}`, `messages ${JSON.stringify(r.messages)}`],
      traceHash: r.traceHash,
      simEvents: r.simEvents,
      trace: r.trace
    }
  }
}
