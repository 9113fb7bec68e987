/**
 * The lease scenario: the real run-lease machine (src/protocol/lease/) on every peer of one run's
 * home set — R = 3..5 peers, in rendezvous order on the run id, the first the initial driver —
 * over the generic hosts and network, with crashes and restarts, message loss, duplication and
 * delay, partitions, and clock offsets and steps within the machine's clock bound.
 *
 * Storage: each peer persists its grantor promise {epoch, holder} (the machine's `persist`
 * output) under `lease/promise`, before any message polled after it leaves; a restart reads it
 * back and forgets everything else (its lease, its candidacy, its grant times).
 *
 * Invariants, checked after every input to every machine (and at every check time):
 *  - at most one peer believes it holds a valid lease at any instant (`holdsLease` at the peer's
 *    own clock, the one its machine would be given now) — with clock steps bounded as the
 *    machine's theory of operation says, believed leases never overlap in real time;
 *  - no peer grants two drivers the same epoch, across its restarts;
 *  - a peer grants only what it has persisted, and its persisted epoch never goes down;
 *  - `became-driver` epochs only grow, and each epoch has one driver;
 *  - once faults stop (T), if a majority of the home set is running, one of them holds the lease
 *    within `livenessBoundMs` of T, and one holds it at the end.
 */
import { assert } from '../model/errors.ts'
import { createLease, LEASE_TIMING_DEFAULTS } from '../protocol/lease/index.ts'
import type { Lease, LeaseOptions, LeaseOutput, LeasePromise, RefusalReason } from '../protocol/lease/index.ts'
import { rendezvousOwners } from '../protocol/placement.ts'
import { createRandom } from '../protocol/random.ts'
import { drawFaultPlan, drawStartPlan, faultPlanProblem, scheduleFaults } from './faults.ts'
import type { CrashPlan, FaultPlan, StartPlan } from './faults.ts'
import { SimNetwork } from './network.ts'
import type { NetworkStats } from './network.ts'
import { SimHosts, simPeerIds } from './node.ts'
import type { MachineAdapter, SimNode } from './node.ts'
import type { SimStorage } from './storage.ts'
import { checkTimes, SimWorld } from './world.ts'

export type LeaseTimings = Required<Pick<LeaseOptions, 'leaseMs' | 'renewMs' | 'graceMs' | 'staggerMs' | 'clockDriftMaxMs'>>

export interface LeaseScenario extends StartPlan, FaultPlan {
  seed: number
  nodes: number
  runId: string
  delayMinMs: number
  delayMaxMs: number
  timings: LeaseTimings
  settleMs: number
  checkEveryMs: number
  traceLinesKept: number
}

export interface LeaseShape {
  nodes?: number
  faults?: boolean
  crashes?: CrashPlan[]
  /** Default: drawn in [0, clockDriftMaxMs / 2], so a step (≤ skewMaxMs) on the driver and one on
   *  a grantor stay within the bound together. Larger breaks the bound (a test does, on purpose). */
  skewMaxMs?: number
  timings?: Partial<LeaseTimings>
  traceLinesKept?: number
}

export interface LeaseScenarioResult {
  seed: number
  ok: boolean
  violations: string[]
  violationCount: number
  nodes: number
  faultsEndMs: number
  endMs: number
  liveAtEnd: number
  /** Sim ms from T until a running home-set peer held the lease (undefined: never, or not checked). */
  heldAfterTMs: number | undefined
  livenessChecked: boolean
  boundMs: number
  counts: { becameDriver: number, lostLease: number, grants: number, refusals: number, fenced: number, persisted: number, highestEpoch: number }
  messages: NetworkStats
  simEvents: number
  traceHash: string
  trace: readonly string[]
}

export interface LeaseHooks {
  /** Build each peer's machine. Default: the real one. */
  createLease?: (options: LeaseOptions, nowMs: number) => Lease
}

type LeaseMessage =
  | { kind: 'request', epoch: number, round: number }
  | { kind: 'grant', epoch: number, round: number }
  | { kind: 'refuse', epoch: number, round: number, reason: RefusalReason }

const PROMISE_KEY = 'lease/promise'
const encoder = new TextEncoder()
const decoder = new TextDecoder()

/**
 * How long after T a running majority must have produced a lease holder. At T the last grant
 * anyone holds ends within leaseMs (restarted grantors honour their promise for a lease from the
 * restart, which was before T); the next peer in order then waits graceMs plus its stagger (at
 * most (R−1)·staggerMs) and needs one round (a round trip, ≤ 2·delayMaxMs; a round refused 'held'
 * is retried after renewMs). A candidate that ran into a live lease backs off a full
 * leaseMs + graceMs + stagger and tries once more: two such cycles, plus clock skew between
 * peers' views of the same instant.
 */
export function livenessBoundMs (s: Pick<LeaseScenario, 'nodes' | 'delayMaxMs' | 'timings' | 'skewMaxMs'>): number {
  const t = s.timings
  const cycle = t.leaseMs + t.graceMs + (s.nodes - 1) * t.staggerMs + t.renewMs + 2 * s.delayMaxMs
  return 2 * cycle + 2 * s.skewMaxMs
}

export function leaseScenarioFromSeed (seed: number, shape: LeaseShape = {}): LeaseScenario {
  const rng = createRandom(seed)
  const nodes = shape.nodes ?? rng.int(3, 5)
  const timings: LeaseTimings = { ...LEASE_TIMING_DEFAULTS, ...shape.timings }
  const faults = shape.faults ?? true
  const skewMaxMs = shape.skewMaxMs ?? (faults ? rng.int(0, Math.floor(timings.clockDriftMaxMs / 2)) : 0)
  const faultShape = {
    nodes,
    faults,
    crashes: shape.crashes,
    skewMaxMs,
    startWindowMs: rng.int(0, 1000),
    faultPhaseMs: [2000, 8000] as [number, number],
    restartAfterMs: [1, 3000] as [number, number],
    partitionMs: [100, 3000] as [number, number]
  }
  const starts = drawStartPlan(rng, faultShape)
  return {
    seed,
    nodes,
    runId: `run-${seed}`,
    delayMinMs: 1,
    delayMaxMs: 40,
    timings,
    skewMaxMs: starts.skewMaxMs,
    startTimesMs: starts.startTimesMs,
    initialSkewsMs: starts.initialSkewsMs,
    ...drawFaultPlan(rng, faultShape, starts),
    settleMs: 3000,
    checkEveryMs: 20,
    traceLinesKept: shape.traceLinesKept ?? 0
  }
}

interface LeaseLife { lease: Lease }
type Peer = SimNode<LeaseLife>

interface LeaseRunState {
  s: LeaseScenario
  world: SimWorld
  homeSet: string[]
  indexOf: Map<string, number>
  counts: LeaseScenarioResult['counts']
  /** Per grantor node: epoch → the holder it granted (across lives). */
  granted: Array<Map<number, string>>
  /** Epoch → the node (and life) that became its driver. */
  drivers: Map<number, string>
  lastDriverEpoch: number
  heldAfterTMs: number | undefined
  overlapReported: boolean
  hosts?: SimHosts<LeaseLife, LeaseMessage, LeaseOutput>
  network?: SimNetwork<LeaseMessage>
}

export function runLeaseScenario (input: LeaseScenario | ({ seed: number } & LeaseShape), hooks: LeaseHooks = {}): LeaseScenarioResult {
  const s = 'startTimesMs' in input ? input : leaseScenarioFromSeed(input.seed, input)
  const problem = s.nodes < 1 ? 'the lease scenario needs a home set' : faultPlanProblem(s, s.nodes)
  if (problem !== undefined) throw new RangeError(`lease scenario (seed ${s.seed}): ${problem}`)
  const rng = createRandom(s.seed)
  const idRng = rng.fork()
  const netRng = rng.fork()
  const world = new SimWorld(s.traceLinesKept)
  const endMs = s.faultsEndMs + s.settleMs
  // Node i is the i-th of the home set in rendezvous order: node 0 is the initial driver.
  const homeSet = rendezvousOwners(s.runId, simPeerIds(idRng, s.nodes), s.nodes)
  const st: LeaseRunState = {
    s,
    world,
    homeSet,
    indexOf: new Map(homeSet.map((id, i) => [id, i])),
    counts: { becameDriver: 0, lostLease: 0, grants: 0, refusals: 0, fenced: 0, persisted: 0, highestEpoch: 0 },
    granted: homeSet.map(() => new Map()),
    drivers: new Map(),
    lastDriverEpoch: 0,
    heldAfterTMs: undefined,
    overlapReported: false
  }
  const hosts = new SimHosts(world, homeSet, s.initialSkewsMs, leaseAdapter(st, hooks.createLease ?? createLease))
  const network = new SimNetwork<LeaseMessage>(world, hosts.nodes, netRng, s, (to, from, m) => hosts.deliver(to, from, m))
  st.hosts = hosts
  st.network = network
  const boundMs = livenessBoundMs(s)
  const majority = Math.floor(s.nodes / 2) + 1

  hosts.scheduleStarts(s.startTimesMs)
  scheduleFaults(world, s, { hosts, network })
  const check = (): void => {
    checkBeliefs(st)
    if (world.nowMs >= s.faultsEndMs && st.heldAfterTMs === undefined && holder(st) !== undefined) st.heldAfterTMs = world.nowMs - s.faultsEndMs
  }
  // A round per renewMs per peer: R requests, R answers, their duplicates and a timer, with room.
  const rounds = endMs / s.timings.renewMs + 2
  world.run({
    endMs,
    checkTimesMs: checkTimes(endMs, s.checkEveryMs, [s.faultsEndMs, endMs]),
    check,
    simEventsMax: Math.ceil(20 * s.nodes * s.nodes * rounds + 100_000)
  })
  const livenessChecked = world.violationCount === 0 && hosts.running >= majority
  if (livenessChecked) {
    if (st.heldAfterTMs === undefined || st.heldAfterTMs > boundMs) {
      world.violate(`with ${hosts.running} of ${s.nodes} home-set peers running, nobody held the lease within ${boundMs} ms of T (${st.heldAfterTMs ?? 'never'})`)
    } else if (holder(st) === undefined) {
      world.violate('nobody holds the lease at the end, with a majority running and no faults since T')
    }
  }
  return {
    seed: s.seed,
    ok: world.violationCount === 0,
    violations: world.violations,
    violationCount: world.violationCount,
    nodes: s.nodes,
    faultsEndMs: s.faultsEndMs,
    endMs,
    liveAtEnd: hosts.running,
    heldAfterTMs: st.heldAfterTMs,
    livenessChecked,
    boundMs,
    counts: st.counts,
    messages: { ...network.stats },
    simEvents: world.simEvents,
    traceHash: world.trace.digest(),
    trace: world.trace.keptLines
  }
}

/** The running peers that believe they hold the lease now, on their own clocks. */
function believers (st: LeaseRunState): Peer[] {
  const hosts = st.hosts!
  return hosts.nodes.filter(node => node.up && node.machine !== undefined && node.machine.lease.holdsLease(hosts.peekLocalMs(node)))
}

function holder (st: LeaseRunState): Peer | undefined {
  const b = believers(st)
  return b.length === 1 ? b[0] : undefined
}

function checkBeliefs (st: LeaseRunState): void {
  const b = believers(st)
  if (b.length > 1 && !st.overlapReported) {
    st.overlapReported = true // once per run: every later instant of the same overlap says nothing new
    const who = b.map(node => `peer ${node.index} (epoch ${node.machine!.lease.snapshot().epoch})`).join(' and ')
    st.world.violate(`two leases at once: ${who} both believe they hold the lease`)
  }
}

function readPromise (storage: SimStorage): LeasePromise | undefined {
  const bytes = storage.get(PROMISE_KEY)
  return bytes === undefined ? undefined : JSON.parse(decoder.decode(bytes)) as LeasePromise
}

function leaseAdapter (st: LeaseRunState, create: NonNullable<LeaseHooks['createLease']>): MachineAdapter<LeaseLife, LeaseMessage, LeaseOutput> {
  const { s, homeSet } = st
  return {
    start: (node, nowMs) => ({
      lease: create({ selfId: node.peerId, homeSet, restored: readPromise(node.storage), ...s.timings }, nowMs + node.skewMs)
    }),
    startNote: (_life, node) => {
      const p = readPromise(node.storage)
      return p === undefined ? 'fresh' : `promise=${p.epoch}:${st.indexOf.get(p.holder)}`
    },
    handleMessage: (life, node, from, m, nowMs) => {
      const peer = homeSet[from]
      if (m.kind === 'request') life.lease.handleLeaseRequest(peer, m.epoch, m.round, nowMs)
      else if (m.kind === 'grant') life.lease.handleLeaseGrant(peer, m.epoch, m.round, nowMs)
      else life.lease.handleLeaseRefusal(peer, m.epoch, m.round, m.reason, nowMs)
      checkBeliefs(st)
    },
    handleTimeout: (life, _node, nowMs) => {
      life.lease.handleTimeout(nowMs)
      checkBeliefs(st)
    },
    poll: (life) => life.lease.poll(),
    nextTimeoutMs: (life) => life.lease.nextTimeoutMs(),
    output: (node, out) => { leaseOutput(st, node, out) }
  }
}

function leaseOutput (st: LeaseRunState, node: Peer, out: LeaseOutput): void {
  const { world, counts } = st
  const now = world.nowMs
  const me = node.index
  switch (out.type) {
    case 'persist': {
      const before = readPromise(node.storage)
      if (before !== undefined && out.promise.epoch <= before.epoch) world.violate(`peer ${me}: persisted epoch ${out.promise.epoch} after ${before.epoch}: epochs only grow`)
      node.storage.put(PROMISE_KEY, encoder.encode(JSON.stringify(out.promise)))
      counts.persisted += 1
      return
    }
    case 'request':
      send(st, me, out.to, { kind: 'request', epoch: out.epoch, round: out.round })
      return
    case 'grant': {
      const holderIndex = st.indexOf.get(out.to)
      assert(holderIndex !== undefined, 'grants go to home-set peers')
      const stored = readPromise(node.storage)
      if (stored === undefined || stored.epoch !== out.epoch || stored.holder !== out.to) {
        world.violate(`peer ${me}: granted epoch ${out.epoch} to peer ${holderIndex} without persisting it first (storage: ${JSON.stringify(stored)})`)
      }
      const earlier = st.granted[me].get(out.epoch)
      if (earlier !== undefined && earlier !== out.to) world.violate(`peer ${me}: granted epoch ${out.epoch} to two drivers (peers ${st.indexOf.get(earlier)} and ${holderIndex})`)
      st.granted[me].set(out.epoch, out.to)
      counts.grants += 1
      send(st, me, out.to, { kind: 'grant', epoch: out.epoch, round: out.round })
      return
    }
    case 'refuse':
      counts.refusals += 1
      send(st, me, out.to, { kind: 'refuse', epoch: out.epoch, round: out.round, reason: out.reason })
      return
    case 'became-driver': {
      world.trace.add(`${now} driver ${me} epoch ${out.epoch}`)
      counts.becameDriver += 1
      counts.highestEpoch = Math.max(counts.highestEpoch, out.epoch)
      const who = `${me}/${node.life}`
      const earlier = st.drivers.get(out.epoch)
      if (earlier !== undefined && earlier !== who) world.violate(`epoch ${out.epoch} had two drivers (peer/life ${earlier} and ${who})`)
      if (out.epoch <= st.lastDriverEpoch) world.violate(`peer ${me} became driver of epoch ${out.epoch} after epoch ${st.lastDriverEpoch} had one: epochs only grow`)
      st.drivers.set(out.epoch, who)
      st.lastDriverEpoch = Math.max(st.lastDriverEpoch, out.epoch)
      return
    }
    case 'lost-lease':
      world.trace.add(`${now} lost ${me} epoch ${out.epoch}`)
      counts.lostLease += 1
      return
    case 'fenced':
      counts.fenced += 1
  }
}

function send (st: LeaseRunState, from: number, toId: string, m: LeaseMessage): void {
  const to = st.indexOf.get(toId)
  assert(to !== undefined && to !== from, 'messages go to other home-set peers')
  st.world.trace.add(`${st.world.nowMs} ${m.kind} ${from}>${to} e${m.epoch} r${m.round}`)
  st.network!.send(from, to, m)
}

/** One seed as the seed sweep (src/sim/scenarios.ts) reports it. */
export function leaseSeedOutcome (seed: number, options: { traceLinesKept?: number } = {}): {
  scenario: string, seed: number, ok: boolean, violations: string[], violationCount: number, summary: string,
  details: string[], traceHash: string, simEvents: number, trace: readonly string[], boundUsed?: number
} {
  const r = runLeaseScenario({ seed, traceLinesKept: options.traceLinesKept ?? 0 })
  const held = !r.livenessChecked ? 'no running majority at the end' : r.heldAfterTMs === undefined ? 'never held after T' : `held T+${r.heldAfterTMs} ms (bound ${r.boundMs} ms)`
  return {
    scenario: 'lease',
    seed,
    ok: r.ok,
    violations: r.violations,
    violationCount: r.violationCount,
    summary: `${r.nodes} home-set peers, ${r.liveAtEnd} running at the end, faults until ${r.faultsEndMs} ms, ${r.counts.becameDriver} drivers up to epoch ${r.counts.highestEpoch}, ${held}`,
    details: [`counts ${JSON.stringify(r.counts)}`, `messages ${JSON.stringify(r.messages)}`],
    traceHash: r.traceHash,
    simEvents: r.simEvents,
    trace: r.trace,
    boundUsed: r.livenessChecked && r.heldAfterTMs !== undefined ? r.heldAfterTMs / r.boundMs : undefined
  }
}
