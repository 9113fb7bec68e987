/**
 * A whole Rhizome network's membership, simulated in one process from a 32-bit seed.
 *
 * Each simulated peer runs the real membership state machine (src/protocol/membership), unchanged:
 * the simulator calls `handleTick` when `nextTimeoutMs()` says, hands it announcements through
 * `handleAnnouncement`, and drains `poll()` after every call, exactly as the libp2p shell does.
 * Everything else is simulated: a gossip network that broadcasts each `announce` output to every
 * other running peer after a random delay (so messages reorder), and — during the fault phase —
 * loses or duplicates some, splits the network into two sides, crashes peers (state lost) and
 * restarts them with a new incarnation, and steps their clocks. Time is a number; nothing here
 * sleeps, reads a clock or draws from Math.random, so a seed replays bit for bit.
 *
 * At `faultsEndMs` (T) the faults stop: loss and duplication end, partitions heal, nobody crashes,
 * restarts or steps a clock any more. The liveness invariant is then
 *
 *   from T + convergenceBoundMs(...) on, every running peer sees exactly the other running peers
 *   as 'alive', and every crashed-and-not-restarted peer as 'gone' or not at all,
 *
 * and it must keep holding until the run ends. Safety invariants are checked all along (see
 * `checkSample` and `checkDelivery`).
 */
import { assert } from '../model/errors.ts'
import { createMembership, MEMBERSHIP_DEFAULTS } from '../protocol/membership/index.ts'
import type { Announcement, AnnouncementVerdict, Membership, MembershipOptions, MembershipOutput, PeerEntry, PeerState } from '../protocol/membership/index.ts'
import { createRandom } from '../protocol/random.ts'
import type { Random } from '../protocol/random.ts'
import { decodeAnnouncement, encodeAnnouncement } from '../wire/membership-codec.ts'
import { EventQueue } from './event-queue.ts'
import { TraceHash } from './trace.ts'

export type MembershipTimings = Required<Omit<MembershipOptions, 'selfId' | 'networkId' | 'version' | 'incarnation' | 'addrs' | 'capacity'>>

export interface CrashPlan {
  atMs: number
  node: number
  /** Restart with a new incarnation at this time; undefined: stays down. Must be < faultsEndMs. */
  restartAtMs?: number
}

export interface MembershipScenario {
  seed: number
  nodes: number
  membership: MembershipTimings
  /** Gossip delay of one message to one peer, uniform in [delayMinMs, delayMaxMs]. */
  delayMinMs: number
  delayMaxMs: number
  /** Clock offsets are in [0, skewMaxMs]; a clock may step by up to this much. */
  skewMaxMs: number
  startTimesMs: number[]
  initialSkewsMs: number[]
  /** T: the end of the fault phase. */
  faultsEndMs: number
  /** Loss and duplication apply while faultsStartMs <= t < faultsEndMs. */
  faultsStartMs: number
  lossRate: number
  duplicateRate: number
  crashes: CrashPlan[]
  skewSteps: Array<{ atMs: number, node: number, skewMs: number }>
  /** While active, messages between peers on different sides (0 or 1) are lost. */
  partitions: Array<{ atMs: number, untilMs: number, sideOf: number[] }>
  /** How long to keep checking after T + bound that the invariant still holds. */
  settleMs: number
  /** Period of the sampled checks (view consistency, timers, convergence). */
  checkEveryMs: number
  /** Pass every announcement through encodeAnnouncement/decodeAnnouncement (once per publish). */
  wireCodec: boolean
  /** Run the per-delivery oracle and the per-entry timer checks (costly for 1,000 peers). */
  checkEveryStep: boolean
  /** Keep this many trace lines in the result, to explain a failure. */
  traceLinesKept: number
}

/** What a seed may override when a scenario is generated from it. */
export interface ScenarioShape {
  nodes?: number
  /** Timings to use; those left out are drawn from the seed (half the seeds draw the defaults,
   *  so pass `{ ...MEMBERSHIP_DEFAULTS }` to be sure of them). */
  membership?: Partial<MembershipTimings>
  /** false: no loss, duplication, crashes, partitions or clock steps (unless `crashes` is given). */
  faults?: boolean
  startWindowMs?: number
  /** Explicit crashes; with `faults: false`, T becomes just after the last of them. */
  crashes?: CrashPlan[]
  delayMaxMs?: number
  skewMaxMs?: number
  settleMs?: number
  checkEveryMs?: number
  wireCodec?: boolean
  checkEveryStep?: boolean
  traceLinesKept?: number
}

export interface MembershipScenarioResult {
  seed: number
  ok: boolean
  /** The first violations found (at most VIOLATIONS_KEPT), each with its sim time. */
  violations: string[]
  violationCount: number
  nodes: number
  faultsEndMs: number
  boundMs: number
  endMs: number
  /** First sampled time ≥ T from which the invariant held until the end; undefined if never. */
  convergedAtMs: number | undefined
  /** convergedAtMs − T. */
  convergenceMs: number | undefined
  /** Peers running at the end. */
  liveAtEnd: number
  messages: {
    /** `announce` outputs published on the simulated gossip. */
    published: number
    /** Announcements handed to a peer's handleAnnouncement. */
    delivered: number
    lost: number
    partitioned: number
    duplicated: number
    /** In flight to a peer that crashed (or restarted) before they arrived. */
    droppedAtDownPeer: number
  }
  verdicts: Record<AnnouncementVerdict, number>
  membershipEvents: number
  simEvents: number
  traceHash: string
  trace: readonly string[]
}

/** The command that replays one seed. */
export function replayCommand (seed: number): string {
  return `node scripts/sim-seeds.ts --seed ${seed}`
}

/**
 * How long after the faults stop (T) the network must have converged.
 *
 * - A crashed peer C: its last announcement left before T and arrives by T + delayMaxMs. Every
 *   running peer A marks C gone `goneAfterMs` after that arrival, in A's clock. A's clock may have
 *   stepped back by up to skewMaxMs just before T; the state machine then holds its time still
 *   until the clock catches up (see CLOCK in membership.ts), delaying that deadline by as much.
 *   So: goneAfterMs + delayMaxMs + skewMaxMs.
 * - A running peer B: it announces at least every announceIntervalMs, so an announcement sent
 *   after T reaches A by T + announceIntervalMs + delayMaxMs, and nothing is lost after T. It is
 *   accepted unless rate-limited, which needs an accepted announcement of B less than
 *   announceMinIntervalMs before it — and then B is alive at A already. From then on A accepts
 *   one of B's announcements at least every 2·announceIntervalMs + delayMaxMs < suspectAfterMs,
 *   so B stays alive. So: announceIntervalMs + delayMaxMs (+ skewMaxMs for the same clock hold).
 *
 * Both fit in the sum below, which is what the simulator enforces. It assumes the timing options
 * satisfy 2·announceIntervalMs + delayMaxMs < suspectAfterMs and announceMinIntervalMs +
 * delayMaxMs < announceIntervalMs (checked by `checkScenario`), and that a restarted peer's
 * incarnation is larger than its previous one.
 */
export function convergenceBoundMs (options: { goneAfterMs: number, announceIntervalMs: number, delayMaxMs: number, skewMaxMs: number }): number {
  return options.goneAfterMs + options.announceIntervalMs + options.delayMaxMs + options.skewMaxMs
}

const VIOLATIONS_KEPT = 20
const NETWORK_ID = 'sim'
const VERSION = '0.1.0'
const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

/** Generate a scenario from a seed. The same seed and shape always give the same scenario. */
export function membershipScenarioFromSeed (seed: number, shape: ScenarioShape = {}): MembershipScenario {
  const rng = createRandom(seed)
  const nodes = shape.nodes ?? rng.int(5, 30)
  const membership = { ...randomTimings(rng), ...shape.membership }
  const delayMinMs = 1
  const delayMaxMs = shape.delayMaxMs ?? 50
  const faults = shape.faults ?? true
  const skewMaxMs = shape.skewMaxMs ?? (faults ? rng.int(0, 1000) : 0)
  const startWindowMs = shape.startWindowMs ?? rng.int(0, 5000)
  const startTimesMs = Array.from({ length: nodes }, () => rng.int(0, startWindowMs))
  const initialSkewsMs = Array.from({ length: nodes }, () => rng.int(0, skewMaxMs))
  const lastStartMs = Math.max(...startTimesMs)

  const scenario: MembershipScenario = {
    seed,
    nodes,
    membership,
    delayMinMs,
    delayMaxMs,
    skewMaxMs,
    startTimesMs,
    initialSkewsMs,
    faultsEndMs: lastStartMs,
    faultsStartMs: 0,
    lossRate: 0,
    duplicateRate: 0,
    crashes: shape.crashes ?? [],
    skewSteps: [],
    partitions: [],
    settleMs: shape.settleMs ?? membership.goneAfterMs + membership.announceIntervalMs,
    checkEveryMs: shape.checkEveryMs ?? 100,
    wireCodec: shape.wireCodec ?? true,
    checkEveryStep: shape.checkEveryStep ?? true,
    traceLinesKept: shape.traceLinesKept ?? 0
  }

  if (!faults) {
    const lastCrashMs = Math.max(0, ...scenario.crashes.map(c => Math.max(c.atMs, c.restartAtMs ?? 0)))
    scenario.faultsEndMs = Math.max(lastStartMs, lastCrashMs + 1)
    return scenario
  }

  const T = startWindowMs + rng.int(5000, 30_000)
  scenario.faultsEndMs = T
  scenario.faultsStartMs = rng.int(0, startWindowMs)
  scenario.lossRate = rng.float() * 0.3
  scenario.duplicateRate = rng.float() * 0.1
  if (shape.crashes === undefined) {
    const crashCount = rng.int(0, Math.ceil(nodes / 3))
    for (let i = 0; i < crashCount; i++) {
      const atMs = rng.int(0, T - 1)
      const node = rng.int(0, nodes - 1)
      let restartAtMs: number | undefined = rng.chance(0.6) ? atMs + rng.int(1, 20_000) : undefined
      if (restartAtMs !== undefined && restartAtMs >= T) restartAtMs = undefined
      scenario.crashes.push(restartAtMs === undefined ? { atMs, node } : { atMs, node, restartAtMs })
    }
  }
  const skewStepCount = rng.int(0, nodes)
  for (let i = 0; i < skewStepCount; i++) {
    scenario.skewSteps.push({ atMs: rng.int(0, T - 1), node: rng.int(0, nodes - 1), skewMs: rng.int(0, skewMaxMs) })
  }
  const partitionCount = rng.int(0, 2)
  for (let i = 0; i < partitionCount; i++) {
    const atMs = rng.int(0, T - 1)
    const untilMs = Math.min(T, atMs + rng.int(500, 15_000))
    scenario.partitions.push({ atMs, untilMs, sideOf: Array.from({ length: nodes }, () => rng.int(0, 1)) })
  }
  return scenario
}

/** Half the seeds use the defaults; the others random timings that keep the bound's assumptions. */
function randomTimings (rng: Random): MembershipTimings {
  if (rng.chance(0.5)) return { ...MEMBERSHIP_DEFAULTS }
  const announceIntervalMs = rng.int(200, 2000)
  const suspectAfterMs = 3 * announceIntervalMs + rng.int(0, 2 * announceIntervalMs)
  return {
    announceIntervalMs,
    suspectAfterMs,
    goneAfterMs: suspectAfterMs + rng.int(500, 10_000),
    goneRetainMs: rng.int(1000, 60_000),
    peersMax: MEMBERSHIP_DEFAULTS.peersMax,
    announceMinIntervalMs: rng.int(50, Math.floor(announceIntervalMs / 3))
  }
}

/** Throws (RangeError) if the scenario breaks the assumptions of convergenceBoundMs. */
export function checkScenario (s: MembershipScenario): void {
  const m = s.membership
  const fail = (message: string): never => { throw new RangeError(`scenario (seed ${s.seed}): ${message}`) }
  if (!Number.isSafeInteger(s.nodes) || s.nodes < 1) fail('nodes must be a positive integer')
  if (s.startTimesMs.length !== s.nodes || s.initialSkewsMs.length !== s.nodes) fail('one start time and skew per node')
  if (!(s.delayMinMs >= 1 && s.delayMinMs <= s.delayMaxMs)) fail('need 1 <= delayMinMs <= delayMaxMs')
  if (!(2 * m.announceIntervalMs + s.delayMaxMs < m.suspectAfterMs)) fail('need 2·announceIntervalMs + delayMaxMs < suspectAfterMs')
  if (!(m.announceMinIntervalMs + s.delayMaxMs < m.announceIntervalMs)) fail('need announceMinIntervalMs + delayMaxMs < announceIntervalMs')
  if (!(s.checkEveryMs >= 1)) fail('checkEveryMs must be >= 1')
  for (const c of s.crashes) {
    if (c.node < 0 || c.node >= s.nodes) fail(`crash of unknown node ${c.node}`)
    if (c.atMs >= s.faultsEndMs) fail('crashes happen before faultsEndMs')
    if (c.restartAtMs !== undefined && (c.restartAtMs <= c.atMs || c.restartAtMs >= s.faultsEndMs)) fail('restarts happen after their crash and before faultsEndMs')
  }
  for (const step of s.skewSteps) {
    if (step.atMs >= s.faultsEndMs || step.skewMs < 0 || step.skewMs > s.skewMaxMs) fail('clock steps happen before faultsEndMs, within [0, skewMaxMs]')
  }
  for (const p of s.partitions) {
    if (p.untilMs > s.faultsEndMs || p.sideOf.length !== s.nodes) fail('partitions heal by faultsEndMs and give every node a side')
  }
}

// ---------------------------------------------------------------------------------------------

interface SimNode {
  index: number
  peerId: string
  addrs: string[]
  up: boolean
  /** Bumped on every crash and (re)start, so messages and ticks for an earlier life are dropped. */
  life: number
  membership: Membership | undefined
  incarnation: number
  skewMs: number
  /** The largest local time given to this life's state machine (its clock never runs back). */
  clockMs: number
  seq: number
  tickToken: number
  tickAtMs: number | undefined
  lastEventAtMs: number
  /** Each peer's state as told by the membership events of this life. */
  shadow: Map<string, PeerState>
  /** How many entries of `shadow` are in each state. */
  shadowCounts: Record<PeerState, number>
}

type SimEvent =
  | { kind: 'start', node: number }
  | { kind: 'tick', node: number, token: number }
  | { kind: 'deliver', node: number, life: number, announcement: Announcement }
  | { kind: 'crash', node: number, restartAtMs: number | undefined }
  | { kind: 'skew', node: number, skewMs: number }
  | { kind: 'partition', index: number }
  | { kind: 'heal', index: number }
  | { kind: 'faults-start' }
  | { kind: 'faults-end' }

export interface SimulationHooks {
  /** Build each peer's state machine. Default: the real one. Tests pass a broken one to check
   *  that the invariants catch it. */
  createMembership?: (options: MembershipOptions) => Membership
}

/** Run one scenario; `{ seed, ...shape }` generates it from the seed first. Never throws for a
 *  protocol bug: assertion failures and invariant breaks come back as violations. */
export function runMembershipScenario (input: MembershipScenario | ({ seed: number } & ScenarioShape), hooks: SimulationHooks = {}): MembershipScenarioResult {
  const scenario = 'startTimesMs' in input ? input : membershipScenarioFromSeed(input.seed, input)
  checkScenario(scenario)
  return new Simulation(scenario, hooks.createMembership ?? createMembership).run()
}

class Simulation {
  private readonly s: MembershipScenario
  private readonly rng: Random
  private readonly queue = new EventQueue<SimEvent>()
  private readonly nodes: SimNode[]
  private readonly indexOf = new Map<string, number>()
  private readonly trace: TraceHash
  private readonly boundMs: number
  private readonly endMs: number
  private nowMs = 0
  private faultsActive = false
  private readonly activePartitions = new Set<number>()
  private readonly violations: string[] = []
  private violationCount = 0
  private convergedSinceMs: number | undefined
  private membershipEvents = 0
  private simEvents = 0
  private readonly messages = { published: 0, delivered: 0, lost: 0, partitioned: 0, duplicated: 0, droppedAtDownPeer: 0 }
  private readonly verdicts: Record<AnnouncementVerdict, number> = { accepted: 0, stale: 0, self: 0, 'foreign-network': 0, 'rate-limited': 0, full: 0 }

  private readonly createMembership: (options: MembershipOptions) => Membership

  constructor (scenario: MembershipScenario, create: (options: MembershipOptions) => Membership) {
    this.s = scenario
    this.createMembership = create
    const rng = createRandom(scenario.seed)
    const idRng = rng.fork()
    this.rng = rng.fork()
    this.trace = new TraceHash(scenario.traceLinesKept)
    this.boundMs = convergenceBoundMs({ ...scenario.membership, delayMaxMs: scenario.delayMaxMs, skewMaxMs: scenario.skewMaxMs })
    this.endMs = scenario.faultsEndMs + this.boundMs + scenario.settleMs
    this.nodes = Array.from({ length: scenario.nodes }, (_, index) => {
      let peerId = '12D3KooW'
      for (let i = 0; i < 44; i++) peerId += BASE58[idRng.int(0, BASE58.length - 1)]
      assert(!this.indexOf.has(peerId), 'simulated peer ids are distinct')
      this.indexOf.set(peerId, index)
      return {
        index,
        peerId,
        addrs: [`/ip4/10.${(index >> 8) & 255}.${index & 255}.1/tcp/4001`],
        up: false,
        life: 0,
        membership: undefined,
        incarnation: -1,
        skewMs: scenario.initialSkewsMs[index],
        clockMs: -Infinity,
        seq: 0,
        tickToken: 0,
        tickAtMs: undefined,
        lastEventAtMs: -Infinity,
        shadow: new Map(),
        shadowCounts: { alive: 0, suspect: 0, gone: 0 }
      }
    })
  }

  run (): MembershipScenarioResult {
    const s = this.s
    s.startTimesMs.forEach((atMs, node) => this.queue.push(atMs, { kind: 'start', node }))
    for (const c of s.crashes) this.queue.push(c.atMs, { kind: 'crash', node: c.node, restartAtMs: c.restartAtMs })
    for (const step of s.skewSteps) this.queue.push(step.atMs, { kind: 'skew', node: step.node, skewMs: step.skewMs })
    s.partitions.forEach((p, index) => {
      this.queue.push(p.atMs, { kind: 'partition', index })
      this.queue.push(p.untilMs, { kind: 'heal', index })
    })
    if (s.faultsStartMs < s.faultsEndMs) this.queue.push(s.faultsStartMs, { kind: 'faults-start' })
    this.queue.push(s.faultsEndMs, { kind: 'faults-end' })
    // Checks are not events: a check at time t runs after every event at t, so it sees the
    // network as it is at the end of that ms (a tick due "now" has run).
    const checkTimesMs: number[] = []
    for (let t = 0; t < this.endMs; t += s.checkEveryMs) checkTimesMs.push(t)
    checkTimesMs.push(s.faultsEndMs + this.boundMs, this.endMs)
    checkTimesMs.sort((a, b) => a - b)
    let checkIndex = 0
    // A budget, so that a broken state machine (or scenario) ends as a violation, not a hang.
    // Per announce interval each peer delivers to n − 1 others (n² events), plus at most 10%
    // duplicates and one tick per delivery: 4·n² per interval is double that.
    const intervals = this.endMs / s.membership.announceIntervalMs + 2
    const simEventsMax = Math.ceil(4 * s.nodes * s.nodes * intervals + 1_000_000)

    try {
      for (;;) {
        if (this.simEvents > simEventsMax) {
          this.violate(`more than ${simEventsMax} sim events: something schedules without end`)
          break
        }
        const eventMs = this.queue.peekTimeMs()
        const checkMs = checkIndex < checkTimesMs.length ? checkTimesMs[checkIndex] : undefined
        if (checkMs !== undefined && (eventMs === undefined || checkMs < eventMs)) {
          this.nowMs = checkMs
          checkIndex += 1
          if (checkMs !== checkTimesMs[checkIndex - 2]) this.checkSample() // skip a duplicate time
          continue
        }
        if (eventMs === undefined || eventMs > this.endMs) break
        const popped = this.queue.pop()
        assert(popped !== undefined, 'peeked event is there')
        this.nowMs = popped.timeMs
        this.simEvents += 1
        this.dispatch(popped.item)
      }
    } catch (err) {
      // An assertion inside the state machine (or here): report it with the time it happened.
      this.violate(`crashed: ${(err as Error).stack ?? String(err)}`)
    }

    const convergedAtMs = this.convergedSinceMs
    if (convergedAtMs === undefined && this.violationCount === 0) this.violate('never converged')
    return {
      seed: s.seed,
      ok: this.violationCount === 0,
      violations: this.violations,
      violationCount: this.violationCount,
      nodes: s.nodes,
      faultsEndMs: s.faultsEndMs,
      boundMs: this.boundMs,
      endMs: this.endMs,
      convergedAtMs,
      convergenceMs: convergedAtMs === undefined ? undefined : convergedAtMs - s.faultsEndMs,
      liveAtEnd: this.nodes.filter(n => n.up).length,
      messages: { ...this.messages },
      verdicts: { ...this.verdicts },
      membershipEvents: this.membershipEvents,
      simEvents: this.simEvents,
      traceHash: this.trace.digest(),
      trace: this.trace.keptLines
    }
  }

  private dispatch (event: SimEvent): void {
    switch (event.kind) {
      case 'start': return this.start(this.nodes[event.node])
      case 'tick': return this.tick(this.nodes[event.node], event.token)
      case 'deliver': return this.deliver(this.nodes[event.node], event.life, event.announcement)
      case 'crash': return this.crash(this.nodes[event.node], event.restartAtMs)
      case 'skew': return this.stepClock(this.nodes[event.node], event.skewMs)
      case 'partition':
        this.activePartitions.add(event.index)
        this.trace.add(`${this.nowMs} partition ${event.index}`)
        return
      case 'heal':
        this.activePartitions.delete(event.index)
        this.trace.add(`${this.nowMs} heal ${event.index}`)
        return
      case 'faults-start':
        this.faultsActive = true
        return
      case 'faults-end':
        this.faultsActive = false
        this.activePartitions.clear()
        this.trace.add(`${this.nowMs} faults-end`)
        return
    }
  }

  // --- peers -------------------------------------------------------------------------------

  private start (node: SimNode): void {
    assert(!node.up, 'a peer starts only when down')
    node.up = true
    node.life += 1
    // The shell's rule: the incarnation is the start time, and larger than any earlier one.
    node.incarnation = Math.max(this.nowMs, node.incarnation + 1)
    node.membership = this.createMembership({
      selfId: node.peerId,
      networkId: NETWORK_ID,
      version: VERSION,
      incarnation: node.incarnation,
      addrs: node.addrs,
      capacity: { slotsFree: 4, slotsMax: 4, queueLength: 0 },
      ...this.s.membership
    })
    node.clockMs = -Infinity
    node.seq = 0
    node.tickAtMs = undefined
    node.lastEventAtMs = -Infinity
    node.shadow = new Map()
    node.shadowCounts = { alive: 0, suspect: 0, gone: 0 }
    this.trace.add(`${this.nowMs} start ${node.index} inc=${node.incarnation}`)
    this.schedule(node, true)
  }

  private crash (node: SimNode, restartAtMs: number | undefined): void {
    if (!node.up) return // not started yet, or already down: this crash (and its restart) do not happen
    node.up = false
    node.life += 1
    node.membership = undefined
    node.tickToken += 1
    node.tickAtMs = undefined
    this.trace.add(`${this.nowMs} crash ${node.index}`)
    if (restartAtMs !== undefined) this.queue.push(restartAtMs, { kind: 'start', node: node.index })
  }

  private stepClock (node: SimNode, skewMs: number): void {
    node.skewMs = skewMs
    this.trace.add(`${this.nowMs} clock ${node.index} skew=${skewMs}`)
    if (node.up) this.schedule(node, true)
  }

  private localMs (node: SimNode): number {
    const local = this.nowMs + node.skewMs
    if (local > node.clockMs) node.clockMs = local
    return local
  }

  private tick (node: SimNode, token: number): void {
    if (!node.up || token !== node.tickToken) return // superseded, or for an earlier life
    const m = node.membership
    assert(m !== undefined, 'a running peer has a state machine')
    node.tickAtMs = undefined
    m.handleTick(this.localMs(node))
    this.drain(node)
    if (m.nextTimeoutMs() <= node.clockMs) {
      this.violate(`peer ${node.index}: after handleTick(${node.clockMs}) nextTimeoutMs() is ${m.nextTimeoutMs()}, not in the future`)
      node.tickAtMs = this.nowMs + 1 // keep time moving, or this peer would tick forever at one instant
      node.tickToken += 1
      this.queue.push(node.tickAtMs, { kind: 'tick', node: node.index, token: node.tickToken })
      return
    }
    this.schedule(node, false)
  }

  /** Ask for a tick at nextTimeoutMs(), converted from the peer's clock to sim time. A tick that
   *  is already scheduled earlier is kept (it finds nothing due and reschedules), as a shell with
   *  one timer would; `force` replaces it (after a start or a clock step). */
  private schedule (node: SimNode, force: boolean): void {
    const m = node.membership
    assert(m !== undefined, 'only running peers are scheduled')
    const atMs = Math.max(this.nowMs, m.nextTimeoutMs() - node.skewMs)
    if (force || node.tickAtMs === undefined || atMs < node.tickAtMs) {
      node.tickToken += 1
      node.tickAtMs = atMs
      this.queue.push(atMs, { kind: 'tick', node: node.index, token: node.tickToken })
    }
  }

  private drain (node: SimNode): void {
    const m = node.membership
    assert(m !== undefined, 'only running peers are drained')
    for (let out = m.poll(); out !== undefined; out = m.poll()) this.output(node, out)
  }

  private output (node: SimNode, out: MembershipOutput): void {
    if (out.type === 'announce') {
      const a = out.announcement
      if (a.peerId !== node.peerId || a.incarnation !== node.incarnation || a.seq !== node.seq + 1 || a.networkId !== NETWORK_ID) {
        this.violate(`peer ${node.index}: announce ${a.peerId}/${a.incarnation}/${a.seq} does not continue ${node.peerId}/${node.incarnation}/${node.seq}`)
      }
      node.seq = a.seq
      this.trace.add(`${this.nowMs} announce ${node.index} ${a.incarnation}/${a.seq}`)
      this.broadcast(node, a)
      return
    }
    this.membershipEvents += 1
    const peer = this.indexOf.get(out.peerId)
    this.trace.add(`${this.nowMs} ${node.index} ${out.type} ${peer ?? out.peerId} at=${out.atMs}`)
    if (out.peerId === node.peerId) this.violate(`peer ${node.index}: ${out.type} about itself`)
    if (peer === undefined) this.violate(`peer ${node.index}: ${out.type} about unknown peer ${out.peerId}`)
    if (out.atMs < node.lastEventAtMs) this.violate(`peer ${node.index}: event times go back (${out.atMs} < ${node.lastEventAtMs})`)
    node.lastEventAtMs = out.atMs
    const before = node.shadow.get(out.peerId)
    const legal =
      out.type === 'peer:joined' ? before === undefined
        : out.type === 'peer:alive' ? before !== undefined
          : out.type === 'peer:suspect' ? before === 'alive'
            : out.type === 'peer:gone' ? before === 'suspect'
              : before === 'suspect' || before === 'gone'
    if (!legal) this.violate(`peer ${node.index}: ${out.type} for ${peer} while it was ${before ?? 'absent'}`)
    if (before !== undefined) node.shadowCounts[before] -= 1
    if (out.type === 'peer:removed') {
      node.shadow.delete(out.peerId)
    } else {
      const after: PeerState = out.type === 'peer:joined' ? 'alive' : out.type.slice(5) as PeerState
      node.shadow.set(out.peerId, after)
      node.shadowCounts[after] += 1
    }
  }

  // --- network -----------------------------------------------------------------------------

  private broadcast (from: SimNode, announcement: Announcement): void {
    const s = this.s
    this.messages.published += 1
    const payload = s.wireCodec ? this.throughWire(from, announcement) : announcement
    for (const to of this.nodes) {
      if (to === from || !to.up) continue
      if (this.separated(from.index, to.index)) {
        this.messages.partitioned += 1
        continue
      }
      if (this.faultsActive && this.rng.chance(s.lossRate)) {
        this.messages.lost += 1
        continue
      }
      this.queue.push(this.nowMs + this.rng.int(s.delayMinMs, s.delayMaxMs), { kind: 'deliver', node: to.index, life: to.life, announcement: payload })
      if (this.faultsActive && this.rng.chance(s.duplicateRate)) {
        this.messages.duplicated += 1
        this.queue.push(this.nowMs + this.rng.int(s.delayMinMs, s.delayMaxMs), { kind: 'deliver', node: to.index, life: to.life, announcement: payload })
      }
    }
  }

  /** Encode, decode, and check the round trip is exact. Decoded once per publish and shared by
   *  the recipients (the state machine copies what it keeps), so the codec costs O(n), not O(n²). */
  private throughWire (from: SimNode, announcement: Announcement): Announcement {
    const bytes = encodeAnnouncement(announcement)
    const decoded = decodeAnnouncement(bytes)
    const again = encodeAnnouncement(decoded)
    if (again.length !== bytes.length || again.some((b, i) => b !== bytes[i])) {
      this.violate(`peer ${from.index}: announcement ${announcement.seq} does not survive the codec unchanged`)
    }
    return decoded
  }

  private separated (a: number, b: number): boolean {
    for (const index of this.activePartitions) {
      const sides = this.s.partitions[index].sideOf
      if (sides[a] !== sides[b]) return true
    }
    return false
  }

  private deliver (node: SimNode, life: number, a: Announcement): void {
    if (!node.up || node.life !== life) {
      this.messages.droppedAtDownPeer += 1
      return
    }
    const m = node.membership
    assert(m !== undefined, 'a running peer has a state machine')
    this.messages.delivered += 1
    const before = this.s.checkEveryStep ? m.get(a.peerId) : undefined
    const verdict = m.handleAnnouncement(a, this.localMs(node))
    this.verdicts[verdict] += 1
    if (this.s.checkEveryStep) this.checkDelivery(node, a, verdict, before, m.get(a.peerId))
    this.drain(node)
    this.schedule(node, false)
  }

  // --- invariants --------------------------------------------------------------------------

  /** An oracle for one handleAnnouncement: the verdict matches the entry before and after. */
  private checkDelivery (node: SimNode, a: Announcement, verdict: AnnouncementVerdict, before: PeerEntry | undefined, after: PeerEntry | undefined): void {
    const newer = before === undefined || a.incarnation > before.incarnation || (a.incarnation === before.incarnation && a.seq > before.seq)
    const unchanged = before !== undefined && after !== undefined && after.incarnation === before.incarnation && after.seq === before.seq
    let right: boolean
    switch (verdict) {
      case 'self': right = a.peerId === node.peerId; break
      case 'accepted': right = a.peerId !== node.peerId && newer && after !== undefined && after.state === 'alive' && after.incarnation === a.incarnation && after.seq === a.seq; break
      case 'stale': right = before !== undefined && !newer && unchanged; break
      case 'rate-limited': right = before !== undefined && newer && unchanged; break
      case 'full': right = before === undefined && after === undefined; break
      default: right = false // every simulated peer shares the network id
    }
    if (!right) {
      this.violate(`peer ${node.index}: verdict ${verdict} for ${this.indexOf.get(a.peerId)} ${a.incarnation}/${a.seq} with entry ${before === undefined ? 'absent' : `${before.incarnation}/${before.seq} ${before.state}`} → ${after === undefined ? 'absent' : `${after.incarnation}/${after.seq} ${after.state}`}`)
    }
    if (before !== undefined && after !== undefined &&
      (after.incarnation < before.incarnation || (after.incarnation === before.incarnation && after.seq < before.seq))) {
      this.violate(`peer ${node.index}: entry of ${this.indexOf.get(a.peerId)} went back from ${before.incarnation}/${before.seq} to ${after.incarnation}/${after.seq}`)
    }
  }

  /** Sampled checks: the table agrees with the events, never holds self, its timers are not
   *  late; and after T, convergence. O(peers × down peers) unless checkEveryStep, so that it can
   *  sample a 1,000-peer network often. */
  private checkSample (): void {
    const s = this.s
    const afterT = this.nowMs >= s.faultsEndMs
    const down = this.nodes.filter(n => !n.up)
    const liveOthers = this.nodes.length - down.length - 1
    let missing: SimNode | undefined // the first peer whose view has not converged
    for (const node of this.nodes) {
      if (!node.up) continue
      const m = node.membership
      assert(m !== undefined, 'a running peer has a state machine')
      if (m.stateOf(node.peerId) !== undefined) this.violate(`peer ${node.index}: its view contains itself`)
      const counts = m.counts()
      const told = node.shadowCounts
      if (counts.alive !== told.alive || counts.suspect !== told.suspect || counts.gone !== told.gone) {
        this.violate(`peer ${node.index}: table counts ${JSON.stringify(counts)}, its events say ${JSON.stringify(told)}`)
      }
      if (s.checkEveryStep) {
        for (const other of this.nodes) {
          const state = m.stateOf(other.peerId)
          if (other !== node && state !== node.shadow.get(other.peerId)) {
            this.violate(`peer ${node.index}: table says ${other.index} is ${state ?? 'absent'}, its events say ${node.shadow.get(other.peerId) ?? 'absent'}`)
          }
        }
        this.checkTimers(node, m)
      }
      // Converged at this peer: no down peer is alive or suspect, and as many are alive as there
      // are running others — the table holds only simulated peers (checked by the events), so
      // those are exactly the running ones.
      if (afterT && missing === undefined) {
        const downOk = down.every(other => { const state = m.stateOf(other.peerId); return state === 'gone' || state === undefined })
        if (!downOk || counts.alive !== liveOthers) missing = node
      }
    }
    if (!afterT) return
    if (missing === undefined) {
      this.convergedSinceMs ??= this.nowMs
      return
    }
    this.convergedSinceMs = undefined
    if (this.nowMs >= s.faultsEndMs + this.boundMs) {
      this.violate(`not converged at T+${this.nowMs - s.faultsEndMs} ms (bound ${this.boundMs} ms): ${this.describeMiss(missing)}`)
    }
  }

  private describeMiss (node: SimNode): string {
    const m = node.membership
    assert(m !== undefined, 'a running peer has a state machine')
    for (const other of this.nodes) {
      if (other === node) continue
      const state = m.stateOf(other.peerId)
      const good = other.up ? state === 'alive' : state === 'gone' || state === undefined
      if (!good) return `peer ${node.index} sees ${other.index} (${other.up ? 'running' : 'down'}) as ${state ?? 'absent'}`
    }
    return `peer ${node.index}: ${JSON.stringify(m.counts())} with ${this.nodes.filter(n => n.up).length} running`
  }

  /** No entry overstays its state (a late or missing tick), and none left it early. */
  private checkTimers (node: SimNode, m: Membership): void {
    const t = this.s.membership
    // The time the state machine would see if it were called now (its clock never runs back).
    const now = Math.max(node.clockMs, this.nowMs + node.skewMs)
    for (const e of m.view()) {
      const late =
        e.state === 'alive' ? now - e.lastSeenMs > t.suspectAfterMs
          : e.state === 'suspect' ? now - e.lastSeenMs > t.goneAfterMs
            : now - e.stateSinceMs > t.goneRetainMs
      const early =
        e.state === 'suspect' ? e.stateSinceMs - e.lastSeenMs < t.suspectAfterMs
          : e.state === 'gone' ? e.stateSinceMs - e.lastSeenMs < t.goneAfterMs
            : e.stateSinceMs > e.lastSeenMs
      if (late || early) {
        this.violate(`peer ${node.index}: entry of ${this.indexOf.get(e.peerId)} is ${e.state} since ${e.stateSinceMs}, last seen ${e.lastSeenMs}, at local ${now}: ${late ? 'overdue' : 'too early'}`)
      }
    }
  }

  private violate (message: string): void {
    this.violationCount += 1
    if (this.violations.length < VIOLATIONS_KEPT) this.violations.push(`t=${this.nowMs}: ${message}`)
  }
}
