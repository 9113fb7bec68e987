/**
 * A whole Rhizome network's membership, simulated in one process from a 32-bit seed.
 *
 * Each simulated peer runs the real membership state machine (src/protocol/membership), unchanged,
 * on the generic host (./node.ts): `handleTick` when `nextTimeoutMs()` says, announcements through
 * `handleAnnouncement`, `poll()` drained after every call, exactly as the libp2p shell does. Each
 * `announce` output is broadcast on the simulated network (./network.ts) to every other running
 * peer after a random delay (so messages reorder), and during the fault phase (./faults.ts) some
 * are lost or duplicated, the network splits into two sides, peers crash (state lost) and restart
 * with a new incarnation (kept in the peer's storage, as the shell keeps it increasing across
 * restarts), and clocks step. Time is a number; nothing here sleeps, reads a clock or draws from
 * Math.random, so a seed replays bit for bit.
 *
 * This file is what is specific to membership: the scenario drawn from a seed, the adapter that
 * feeds the machine, and the invariants. At `faultsEndMs` (T) the faults stop. The liveness
 * invariant is then
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
import { drawFaultPlan, drawStartPlan, faultPlanProblem, scheduleFaults } from './faults.ts'
import type { CrashPlan, FaultPlan, StartPlan } from './faults.ts'
import { SimNetwork } from './network.ts'
import { SimHosts, simPeerIds } from './node.ts'
import type { MachineAdapter, SimNode } from './node.ts'
import { checkTimes, SimWorld } from './world.ts'

export type { CrashPlan } from './faults.ts'

export type MembershipTimings = Required<Omit<MembershipOptions, 'selfId' | 'networkId' | 'version' | 'incarnation' | 'addrs' | 'capacity'>>

export interface MembershipScenario extends StartPlan, FaultPlan {
  seed: number
  nodes: number
  membership: MembershipTimings
  /** Gossip delay of one message to one peer, uniform in [delayMinMs, delayMaxMs]. */
  delayMinMs: number
  delayMaxMs: number
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

const NETWORK_ID = 'sim'
const VERSION = '0.1.0'
/** Where a peer keeps its last incarnation, so that a restart picks a larger one. */
const INCARNATION_KEY = 'membership/incarnation'

/** Generate a scenario from a seed. The same seed and shape always give the same scenario. */
export function membershipScenarioFromSeed (seed: number, shape: ScenarioShape = {}): MembershipScenario {
  const rng = createRandom(seed)
  const nodes = shape.nodes ?? rng.int(5, 30)
  const membership = { ...randomTimings(rng), ...shape.membership }
  const delayMinMs = 1
  const delayMaxMs = shape.delayMaxMs ?? 50
  const faultShape = { nodes, faults: shape.faults, skewMaxMs: shape.skewMaxMs, startWindowMs: shape.startWindowMs, crashes: shape.crashes }
  const starts = drawStartPlan(rng, faultShape)
  const faults = drawFaultPlan(rng, faultShape, starts)
  return {
    seed,
    nodes,
    membership,
    delayMinMs,
    delayMaxMs,
    skewMaxMs: starts.skewMaxMs,
    startTimesMs: starts.startTimesMs,
    initialSkewsMs: starts.initialSkewsMs,
    ...faults,
    settleMs: shape.settleMs ?? membership.goneAfterMs + membership.announceIntervalMs,
    checkEveryMs: shape.checkEveryMs ?? 100,
    wireCodec: shape.wireCodec ?? true,
    checkEveryStep: shape.checkEveryStep ?? true,
    traceLinesKept: shape.traceLinesKept ?? 0
  }
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
  if (!(s.delayMinMs >= 1 && s.delayMinMs <= s.delayMaxMs)) fail('need 1 <= delayMinMs <= delayMaxMs')
  if (!(2 * m.announceIntervalMs + s.delayMaxMs < m.suspectAfterMs)) fail('need 2·announceIntervalMs + delayMaxMs < suspectAfterMs')
  if (!(m.announceMinIntervalMs + s.delayMaxMs < m.announceIntervalMs)) fail('need announceMinIntervalMs + delayMaxMs < announceIntervalMs')
  if (!(s.checkEveryMs >= 1)) fail('checkEveryMs must be >= 1')
  const problem = faultPlanProblem(s, s.nodes)
  if (problem !== undefined) fail(problem)
}

// ---------------------------------------------------------------------------------------------

/** What a running peer holds in one life: the state machine, and what the simulator has learnt
 *  from its outputs (to check them). All of it is lost in a crash. */
interface MembershipLife {
  membership: Membership
  incarnation: number
  /** The seq of the last announcement it published. */
  seq: number
  lastEventAtMs: number
  /** Each peer's state as told by the membership events of this life. */
  shadow: Map<string, PeerState>
  /** How many entries of `shadow` are in each state. */
  shadowCounts: Record<PeerState, number>
}

type Peer = SimNode<MembershipLife>

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
  return new MembershipSimulation(scenario, hooks.createMembership ?? createMembership).run()
}

class MembershipSimulation implements MachineAdapter<MembershipLife, Announcement, MembershipOutput> {
  private readonly s: MembershipScenario
  private readonly world: SimWorld
  private readonly hosts: SimHosts<MembershipLife, Announcement, MembershipOutput>
  private readonly network: SimNetwork<Announcement>
  private readonly nodes: Peer[]
  private readonly indexOf = new Map<string, number>()
  private readonly boundMs: number
  private readonly endMs: number
  private convergedSinceMs: number | undefined
  private membershipEvents = 0
  private readonly verdicts: Record<AnnouncementVerdict, number> = { accepted: 0, stale: 0, self: 0, 'foreign-network': 0, 'rate-limited': 0, full: 0 }
  private readonly createMembership: (options: MembershipOptions) => Membership

  constructor (scenario: MembershipScenario, create: (options: MembershipOptions) => Membership) {
    this.s = scenario
    this.createMembership = create
    // Two forks, in this order: peer ids, then the network's draws. A new consumer of
    // randomness forks after these, so the pinned traces stay as they are.
    const rng = createRandom(scenario.seed)
    const idRng = rng.fork()
    const netRng = rng.fork()
    this.world = new SimWorld(scenario.traceLinesKept)
    this.boundMs = convergenceBoundMs({ ...scenario.membership, delayMaxMs: scenario.delayMaxMs, skewMaxMs: scenario.skewMaxMs })
    this.endMs = scenario.faultsEndMs + this.boundMs + scenario.settleMs
    const peerIds = simPeerIds(idRng, scenario.nodes)
    peerIds.forEach((peerId, index) => this.indexOf.set(peerId, index))
    this.hosts = new SimHosts(this.world, peerIds, scenario.initialSkewsMs, this)
    this.nodes = this.hosts.nodes
    this.network = new SimNetwork(this.world, this.nodes, netRng, scenario, (to, from, a) => this.hosts.deliver(to, from, a))
  }

  run (): MembershipScenarioResult {
    const s = this.s
    const world = this.world
    this.hosts.scheduleStarts(s.startTimesMs)
    scheduleFaults(world, s, { hosts: this.hosts, network: this.network })
    // Per announce interval each peer delivers to n − 1 others (n² events), plus at most 10%
    // duplicates and one tick per delivery: 4·n² per interval is double that.
    const intervals = this.endMs / s.membership.announceIntervalMs + 2
    world.run({
      endMs: this.endMs,
      checkTimesMs: checkTimes(this.endMs, s.checkEveryMs, [s.faultsEndMs + this.boundMs, this.endMs]),
      check: () => this.checkSample(),
      simEventsMax: Math.ceil(4 * s.nodes * s.nodes * intervals + 1_000_000)
    })

    const convergedAtMs = this.convergedSinceMs
    if (convergedAtMs === undefined && world.violationCount === 0) world.violate('never converged')
    const { published, delivered, lost, partitioned, duplicated, droppedAtDownPeer } = this.network.stats
    return {
      seed: s.seed,
      ok: world.violationCount === 0,
      violations: world.violations,
      violationCount: world.violationCount,
      nodes: s.nodes,
      faultsEndMs: s.faultsEndMs,
      boundMs: this.boundMs,
      endMs: this.endMs,
      convergedAtMs,
      convergenceMs: convergedAtMs === undefined ? undefined : convergedAtMs - s.faultsEndMs,
      liveAtEnd: this.hosts.running,
      messages: { published, delivered, lost, partitioned, duplicated, droppedAtDownPeer },
      verdicts: { ...this.verdicts },
      membershipEvents: this.membershipEvents,
      simEvents: world.simEvents,
      traceHash: world.trace.digest(),
      trace: world.trace.keptLines
    }
  }

  // --- the machine on the generic host -------------------------------------------------------

  start (node: Peer, nowMs: number): MembershipLife {
    // The shell's rule: the incarnation is the start time, and larger than any earlier one —
    // which needs the last one to survive the crash.
    const incarnation = Math.max(nowMs, (node.storage.getNumber(INCARNATION_KEY) ?? -1) + 1)
    node.storage.putNumber(INCARNATION_KEY, incarnation)
    const membership = this.createMembership({
      selfId: node.peerId,
      networkId: NETWORK_ID,
      version: VERSION,
      incarnation,
      addrs: [`/ip4/10.${(node.index >> 8) & 255}.${node.index & 255}.1/tcp/4001`],
      capacity: { slotsFree: 4, slotsMax: 4, queueLength: 0 },
      ...this.s.membership
    })
    return { membership, incarnation, seq: 0, lastEventAtMs: -Infinity, shadow: new Map(), shadowCounts: { alive: 0, suspect: 0, gone: 0 } }
  }

  startNote (life: MembershipLife): string {
    return `inc=${life.incarnation}`
  }

  handleMessage (life: MembershipLife, node: Peer, _from: number, a: Announcement, nowMs: number): void {
    const m = life.membership
    const before = this.s.checkEveryStep ? m.get(a.peerId) : undefined
    const verdict = m.handleAnnouncement(a, nowMs)
    this.verdicts[verdict] += 1
    if (this.s.checkEveryStep) this.checkDelivery(node, a, verdict, before, m.get(a.peerId))
  }

  handleTimeout (life: MembershipLife, _node: Peer, nowMs: number): void {
    life.membership.handleTick(nowMs)
  }

  poll (life: MembershipLife): MembershipOutput | undefined {
    return life.membership.poll()
  }

  nextTimeoutMs (life: MembershipLife): number {
    return life.membership.nextTimeoutMs()
  }

  output (node: Peer, out: MembershipOutput): void {
    const life = node.machine
    assert(life !== undefined, 'outputs come from a running peer')
    const now = this.world.nowMs
    if (out.type === 'announce') {
      const a = out.announcement
      if (a.peerId !== node.peerId || a.incarnation !== life.incarnation || a.seq !== life.seq + 1 || a.networkId !== NETWORK_ID) {
        this.violate(`peer ${node.index}: announce ${a.peerId}/${a.incarnation}/${a.seq} does not continue ${node.peerId}/${life.incarnation}/${life.seq}`)
      }
      life.seq = a.seq
      this.world.trace.add(`${now} announce ${node.index} ${a.incarnation}/${a.seq}`)
      this.network.broadcast(node.index, this.s.wireCodec ? this.throughWire(node, a) : a)
      return
    }
    this.membershipEvents += 1
    const peer = this.indexOf.get(out.peerId)
    this.world.trace.add(`${now} ${node.index} ${out.type} ${peer ?? out.peerId} at=${out.atMs}`)
    if (out.peerId === node.peerId) this.violate(`peer ${node.index}: ${out.type} about itself`)
    if (peer === undefined) this.violate(`peer ${node.index}: ${out.type} about unknown peer ${out.peerId}`)
    if (out.atMs < life.lastEventAtMs) this.violate(`peer ${node.index}: event times go back (${out.atMs} < ${life.lastEventAtMs})`)
    life.lastEventAtMs = out.atMs
    const before = life.shadow.get(out.peerId)
    const legal =
      out.type === 'peer:joined' ? before === undefined
        : out.type === 'peer:alive' ? before !== undefined
          : out.type === 'peer:suspect' ? before === 'alive'
            : out.type === 'peer:gone' ? before === 'suspect'
              : before === 'suspect' || before === 'gone'
    if (!legal) this.violate(`peer ${node.index}: ${out.type} for ${peer} while it was ${before ?? 'absent'}`)
    if (before !== undefined) life.shadowCounts[before] -= 1
    if (out.type === 'peer:removed') {
      life.shadow.delete(out.peerId)
    } else {
      const after: PeerState = out.type === 'peer:joined' ? 'alive' : out.type.slice(5) as PeerState
      life.shadow.set(out.peerId, after)
      life.shadowCounts[after] += 1
    }
  }

  /** Encode, decode, and check the round trip is exact. Decoded once per publish and shared by
   *  the recipients (the state machine copies what it keeps), so the codec costs O(n), not O(n²). */
  private throughWire (from: Peer, announcement: Announcement): Announcement {
    const bytes = encodeAnnouncement(announcement)
    const decoded = decodeAnnouncement(bytes)
    const again = encodeAnnouncement(decoded)
    if (again.length !== bytes.length || again.some((b, i) => b !== bytes[i])) {
      this.violate(`peer ${from.index}: announcement ${announcement.seq} does not survive the codec unchanged`)
    }
    return decoded
  }

  // --- invariants --------------------------------------------------------------------------

  /** An oracle for one handleAnnouncement: the verdict matches the entry before and after. */
  private checkDelivery (node: Peer, a: Announcement, verdict: AnnouncementVerdict, before: PeerEntry | undefined, after: PeerEntry | undefined): void {
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
    const now = this.world.nowMs
    const afterT = now >= s.faultsEndMs
    const down = this.nodes.filter(n => !n.up)
    const liveOthers = this.nodes.length - down.length - 1
    let missing: Peer | undefined // the first peer whose view has not converged
    for (const node of this.nodes) {
      const life = node.machine
      if (!node.up || life === undefined) continue
      const m = life.membership
      if (m.stateOf(node.peerId) !== undefined) this.violate(`peer ${node.index}: its view contains itself`)
      const counts = m.counts()
      const told = life.shadowCounts
      if (counts.alive !== told.alive || counts.suspect !== told.suspect || counts.gone !== told.gone) {
        this.violate(`peer ${node.index}: table counts ${JSON.stringify(counts)}, its events say ${JSON.stringify(told)}`)
      }
      if (s.checkEveryStep) {
        for (const other of this.nodes) {
          const state = m.stateOf(other.peerId)
          if (other !== node && state !== life.shadow.get(other.peerId)) {
            this.violate(`peer ${node.index}: table says ${other.index} is ${state ?? 'absent'}, its events say ${life.shadow.get(other.peerId) ?? 'absent'}`)
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
      this.convergedSinceMs ??= now
      return
    }
    this.convergedSinceMs = undefined
    if (now >= s.faultsEndMs + this.boundMs) {
      this.violate(`not converged at T+${now - s.faultsEndMs} ms (bound ${this.boundMs} ms): ${this.describeMiss(missing)}`)
    }
  }

  private describeMiss (node: Peer): string {
    const life = node.machine
    assert(life !== undefined, 'a running peer has a state machine')
    const m = life.membership
    for (const other of this.nodes) {
      if (other === node) continue
      const state = m.stateOf(other.peerId)
      const good = other.up ? state === 'alive' : state === 'gone' || state === undefined
      if (!good) return `peer ${node.index} sees ${other.index} (${other.up ? 'running' : 'down'}) as ${state ?? 'absent'}`
    }
    return `peer ${node.index}: ${JSON.stringify(m.counts())} with ${this.hosts.running} running`
  }

  /** No entry overstays its state (a late or missing tick), and none left it early. */
  private checkTimers (node: Peer, m: Membership): void {
    const t = this.s.membership
    const now = this.hosts.peekLocalMs(node)
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
    this.world.violate(message)
  }
}
