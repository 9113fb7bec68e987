/**
 * The smallest scenario: a ping/pong machine over point-to-point messages, to show what plugging a
 * machine into the generic simulator takes (an adapter, a scenario drawn from a seed, invariants)
 * and to keep the point-to-point half of the network, crashes and storage honest.
 *
 * The machine (`Pinger`, sans-I/O): every `intervalMs` a peer sends a ping with a fresh sequence
 * number to a random other peer, and resends it every `timeoutMs` until a pong with that number
 * comes back from that peer (`completed`) or `attemptsMax` sends went unanswered (`gave-up`). It
 * answers every ping with a pong. Sequence numbers must never repeat, across restarts too, so
 * that a late pong to an earlier life can never complete a new ping: before a number is used the
 * machine asks for the next one to be persisted (`persist`), and a restarted machine starts from
 * what storage holds. Messages are 9 bytes: a type and the number.
 *
 * Invariants: a ping id (peer, seq) is sent in one life only; every pong answers a ping that
 * reached the peer that sends it; a ping completes at most once, and only after its pong arrived;
 * and once the faults stop (T), a ping to a running peer completes within 2·delayMaxMs.
 */
import { assert } from '../model/errors.ts'
import { createRandom } from '../protocol/random.ts'
import type { Random } from '../protocol/random.ts'
import { drawFaultPlan, drawStartPlan, faultPlanProblem, scheduleFaults } from './faults.ts'
import type { CrashPlan, FaultPlan, StartPlan } from './faults.ts'
import { SimNetwork } from './network.ts'
import type { NetworkStats } from './network.ts'
import { SimHosts, simPeerIds } from './node.ts'
import type { MachineAdapter, SimNode } from './node.ts'
import { checkTimes, SimWorld } from './world.ts'

// --- the machine ---------------------------------------------------------------------------

/** Pings in flight per peer: new pings wait while this many are unanswered. Eight covers the
 *  longest retry chain the seeds draw (4 attempts of ≤ 300 ms at one ping per ≥ 100 ms) twice. */
export const PINGS_OUTSTANDING_MAX = 8
const PING = 1
const PONG = 2
const MESSAGE_BYTES = 9

export interface PingerOptions {
  self: number
  peers: number
  random: Random
  /** The first sequence number this life may use (what storage holds). */
  firstSeq: number
  intervalMs: number
  timeoutMs: number
  attemptsMax: number
}

export type PingerOutput =
  | { type: 'send', to: number, bytes: Uint8Array }
  /** Persist `nextSeq` before any message of this call leaves (numbers below it are used). */
  | { type: 'persist', nextSeq: number }
  | { type: 'completed', to: number, seq: number, rttMs: number }
  | { type: 'gave-up', to: number, seq: number }

export interface Pinger {
  handleMessage: (from: number, bytes: Uint8Array, nowMs: number) => void
  handleTimeout: (nowMs: number) => void
  poll: () => PingerOutput | undefined
  nextTimeoutMs: () => number
}

export function encodePing (type: 'ping' | 'pong', seq: number): Uint8Array {
  const bytes = new Uint8Array(MESSAGE_BYTES)
  bytes[0] = type === 'ping' ? PING : PONG
  new DataView(bytes.buffer).setFloat64(1, seq)
  return bytes
}

/** undefined for anything but a well-formed ping or pong. */
export function decodePing (bytes: Uint8Array): { type: 'ping' | 'pong', seq: number } | undefined {
  if (bytes.length !== MESSAGE_BYTES || (bytes[0] !== PING && bytes[0] !== PONG)) return undefined
  const seq = new DataView(bytes.buffer, bytes.byteOffset, MESSAGE_BYTES).getFloat64(1)
  if (!Number.isSafeInteger(seq) || seq < 0) return undefined
  return { type: bytes[0] === PING ? 'ping' : 'pong', seq }
}

export function createPinger (options: PingerOptions): Pinger {
  const { self, peers, random, intervalMs, timeoutMs, attemptsMax } = options
  assert(peers >= 2 && intervalMs >= 1 && timeoutMs >= 1 && attemptsMax >= 1, 'pinger options are sane')
  const outputs: PingerOutput[] = []
  const outstanding = new Map<number, { to: number, firstSentMs: number, lastSentMs: number, attempts: number }>()
  let nextSeq = options.firstSeq
  let nextPingAtMs = -Infinity
  let clockMs = -Infinity
  // The clock may step back; hold time still until it catches up, as membership does.
  const advance = (nowMs: number): number => (clockMs = Math.max(clockMs, nowMs))
  return {
    handleMessage (from, bytes, nowMs) {
      const now = advance(nowMs)
      const message = decodePing(bytes)
      if (message === undefined) return
      if (message.type === 'ping') {
        outputs.push({ type: 'send', to: from, bytes: encodePing('pong', message.seq) })
        return
      }
      const ping = outstanding.get(message.seq)
      if (ping === undefined || ping.to !== from) return // late, duplicated, or not ours
      outstanding.delete(message.seq)
      outputs.push({ type: 'completed', to: from, seq: message.seq, rttMs: now - ping.firstSentMs })
    },
    handleTimeout (nowMs) {
      const now = advance(nowMs)
      for (const [seq, ping] of outstanding) {
        if (ping.lastSentMs + timeoutMs > now) continue
        if (ping.attempts >= attemptsMax) {
          outstanding.delete(seq)
          outputs.push({ type: 'gave-up', to: ping.to, seq })
          continue
        }
        ping.attempts += 1
        ping.lastSentMs = now
        outputs.push({ type: 'send', to: ping.to, bytes: encodePing('ping', seq) })
      }
      if (now < nextPingAtMs) return
      nextPingAtMs = now + intervalMs
      if (outstanding.size >= PINGS_OUTSTANDING_MAX) return
      const pick = random.int(0, peers - 2)
      const to = pick >= self ? pick + 1 : pick
      const seq = nextSeq
      nextSeq += 1
      outputs.push({ type: 'persist', nextSeq })
      outstanding.set(seq, { to, firstSentMs: now, lastSentMs: now, attempts: 1 })
      outputs.push({ type: 'send', to, bytes: encodePing('ping', seq) })
    },
    poll: () => outputs.shift(),
    nextTimeoutMs () {
      let next = nextPingAtMs
      for (const ping of outstanding.values()) next = Math.min(next, ping.lastSentMs + timeoutMs)
      return next
    }
  }
}

// --- the scenario --------------------------------------------------------------------------

export interface EchoScenario extends StartPlan, FaultPlan {
  seed: number
  nodes: number
  delayMinMs: number
  delayMaxMs: number
  intervalMs: number
  timeoutMs: number
  attemptsMax: number
  /** How long to run after T. */
  settleMs: number
  checkEveryMs: number
  traceLinesKept: number
}

export interface EchoShape {
  nodes?: number
  faults?: boolean
  crashes?: CrashPlan[]
  traceLinesKept?: number
}

export interface EchoScenarioResult {
  seed: number
  ok: boolean
  violations: string[]
  violationCount: number
  nodes: number
  faultsEndMs: number
  endMs: number
  liveAtEnd: number
  /** 2·delayMaxMs: the longest a ping sent after T may take. */
  boundMs: number
  /** The slowest ping sent after T to a running peer (sim ms from send to completion). */
  slowestAfterTMs: number
  pings: { sent: number, resent: number, completed: number, gaveUp: number, afterT: number }
  messages: NetworkStats
  storageWrites: number
  simEvents: number
  traceHash: string
  trace: readonly string[]
}

export interface EchoHooks {
  /** Build each peer's machine. Default: the real one. */
  createPinger?: (options: PingerOptions) => Pinger
}

export function echoScenarioFromSeed (seed: number, shape: EchoShape = {}): EchoScenario {
  const rng = createRandom(seed)
  const nodes = shape.nodes ?? rng.int(3, 12)
  const delayMaxMs = 50
  const intervalMs = rng.int(100, 1000)
  const timeoutMs = 2 * delayMaxMs + rng.int(10, 200)
  const attemptsMax = rng.int(1, 4)
  const faultShape = { nodes, faults: shape.faults, crashes: shape.crashes }
  const starts = drawStartPlan(rng, faultShape)
  return {
    seed,
    nodes,
    delayMinMs: 1,
    delayMaxMs,
    intervalMs,
    timeoutMs,
    attemptsMax,
    skewMaxMs: starts.skewMaxMs,
    startTimesMs: starts.startTimesMs,
    initialSkewsMs: starts.initialSkewsMs,
    ...drawFaultPlan(rng, faultShape, starts),
    settleMs: 10 * intervalMs,
    checkEveryMs: 100,
    traceLinesKept: shape.traceLinesKept ?? 0
  }
}

const SEQ_KEY = 'echo/next-seq'

interface PingerLife { pinger: Pinger, life: number }
type Peer = SimNode<PingerLife>

/** What one echo run tracks to check its invariants (see the file's comment). */
interface EchoRunState {
  s: EchoScenario
  world: SimWorld
  boundMs: number
  pings: { sent: number, resent: number, completed: number, gaveUp: number, afterT: number }
  /** `${from}:${seq}` → the life that first sent it. */
  sentIn: Map<string, number>
  /** `${from}:${seq}>${to}`: pings that reached `to` (pongs may answer only these). */
  pingsArrived: Set<string>
  /** `${to}:${seq}<${from}`: pongs that reached the pinger. */
  pongsArrived: Set<string>
  completed: Set<string>
  /** Pings sent after T to a running peer: `${from}:${seq}` → sim send time. */
  awaited: Map<string, number>
  slowestAfterTMs: number
  hosts?: SimHosts<PingerLife, Uint8Array, PingerOutput>
  network?: SimNetwork<Uint8Array>
}

export function runEchoScenario (input: EchoScenario | ({ seed: number } & EchoShape), hooks: EchoHooks = {}): EchoScenarioResult {
  const s = 'startTimesMs' in input ? input : echoScenarioFromSeed(input.seed, input)
  const problem = s.nodes < 2 ? 'the echo scenario needs at least two nodes' : faultPlanProblem(s, s.nodes)
  if (problem !== undefined) throw new RangeError(`echo scenario (seed ${s.seed}): ${problem}`)
  if (!(s.timeoutMs > 2 * s.delayMaxMs)) throw new RangeError(`echo scenario (seed ${s.seed}): need timeoutMs > 2·delayMaxMs`)
  const rng = createRandom(s.seed)
  const idRng = rng.fork()
  const netRng = rng.fork()
  const machineRng = rng.fork()
  const world = new SimWorld(s.traceLinesKept)
  const endMs = s.faultsEndMs + s.settleMs
  const st: EchoRunState = {
    s,
    world,
    boundMs: 2 * s.delayMaxMs,
    pings: { sent: 0, resent: 0, completed: 0, gaveUp: 0, afterT: 0 },
    sentIn: new Map(),
    pingsArrived: new Set(),
    pongsArrived: new Set(),
    completed: new Set(),
    awaited: new Map(),
    slowestAfterTMs: 0
  }
  const hosts = new SimHosts(world, simPeerIds(idRng, s.nodes), s.initialSkewsMs, echoAdapter(st, hooks.createPinger ?? createPinger, machineRng))
  const network = new SimNetwork<Uint8Array>(world, hosts.nodes, netRng, s, (to, from, bytes) => hosts.deliver(to, from, bytes))
  st.hosts = hosts
  st.network = network
  const { pings, boundMs } = st
  const check = (): void => { checkAwaited(st) }

  hosts.scheduleStarts(s.startTimesMs)
  scheduleFaults(world, s, { hosts, network })
  // Per interval each peer sends at most attemptsMax pings per outstanding ping, each answered:
  // 4 events per send (delivery, duplicate, pong, its duplicate) and a timer, doubled.
  const intervals = endMs / Math.min(s.intervalMs, s.timeoutMs) + 2
  world.run({
    endMs,
    checkTimesMs: checkTimes(endMs, s.checkEveryMs, [endMs]),
    check,
    simEventsMax: Math.ceil(10 * s.nodes * (PINGS_OUTSTANDING_MAX + 1) * intervals + 100_000)
  })
  if (world.violationCount === 0 && pings.afterT === 0 && hosts.running >= 2) world.violate('no ping was sent after T: the liveness check checked nothing')
  return {
    seed: s.seed,
    ok: world.violationCount === 0,
    violations: world.violations,
    violationCount: world.violationCount,
    nodes: s.nodes,
    faultsEndMs: s.faultsEndMs,
    endMs,
    liveAtEnd: hosts.running,
    boundMs,
    slowestAfterTMs: st.slowestAfterTMs,
    pings,
    messages: { ...network.stats },
    storageWrites: hosts.nodes.reduce((n, node) => n + node.storage.writes, 0),
    simEvents: world.simEvents,
    traceHash: world.trace.digest(),
    trace: world.trace.keptLines
  }
}

function echoAdapter (st: EchoRunState, create: NonNullable<EchoHooks['createPinger']>, machineRng: Random): MachineAdapter<PingerLife, Uint8Array, PingerOutput> {
  const { s } = st
  return {
    start: (node) => ({
      life: node.life,
      pinger: create({
        self: node.index,
        peers: s.nodes,
        random: machineRng.fork(),
        firstSeq: node.storage.getNumber(SEQ_KEY) ?? 0,
        intervalMs: s.intervalMs,
        timeoutMs: s.timeoutMs,
        attemptsMax: s.attemptsMax
      })
    }),
    startNote: (_life, node) => `seq=${node.storage.getNumber(SEQ_KEY) ?? 0}`,
    handleMessage: (life, node, from, bytes, nowMs) => {
      const m = decodePing(bytes)
      if (m?.type === 'ping') st.pingsArrived.add(`${from}:${m.seq}>${node.index}`)
      if (m?.type === 'pong') st.pongsArrived.add(`${node.index}:${m.seq}<${from}`)
      life.pinger.handleMessage(from, bytes, nowMs)
    },
    handleTimeout: (life, _node, nowMs) => life.pinger.handleTimeout(nowMs),
    poll: (life) => life.pinger.poll(),
    nextTimeoutMs: (life) => life.pinger.nextTimeoutMs(),
    output: (node, out) => { echoOutput(st, node, out) }
  }
}

function echoOutput (st: EchoRunState, node: Peer, out: PingerOutput): void {
  const { world, pings } = st
  const now = world.nowMs
  const me = node.index
  switch (out.type) {
    case 'persist':
      node.storage.putNumber(SEQ_KEY, out.nextSeq)
      return
    case 'send':
      echoSend(st, node, out.to, out.bytes)
      return
    case 'completed': {
      const id = `${me}:${out.seq}`
      world.trace.add(`${now} completed ${me}>${out.to} ${out.seq} rtt=${out.rttMs}`)
      pings.completed += 1
      if (st.sentIn.get(id) !== node.life) world.violate(`peer ${me}: completed ping ${out.seq}, which this life never sent`)
      if (!st.pongsArrived.has(`${me}:${out.seq}<${out.to}`)) world.violate(`peer ${me}: completed ping ${out.seq} to ${out.to} with no pong from it`)
      if (st.completed.has(id)) world.violate(`peer ${me}: ping ${out.seq} completed twice`)
      st.completed.add(id)
      const sentAt = st.awaited.get(id)
      if (sentAt !== undefined) {
        st.slowestAfterTMs = Math.max(st.slowestAfterTMs, now - sentAt)
        st.awaited.delete(id)
      }
      return
    }
    case 'gave-up':
      world.trace.add(`${now} gave-up ${me}>${out.to} ${out.seq}`)
      pings.gaveUp += 1
  }
}

function echoSend (st: EchoRunState, node: Peer, to: number, bytes: Uint8Array): void {
  const { world, pings, s } = st
  const now = world.nowMs
  const me = node.index
  const m = decodePing(bytes)
  assert(m !== undefined, 'the pinger sends well-formed messages')
  world.trace.add(`${now} ${m.type} ${me}>${to} ${m.seq}`)
  if (m.type === 'pong') {
    if (!st.pingsArrived.has(`${to}:${m.seq}>${me}`)) world.violate(`peer ${me}: pong ${m.seq} to ${to}, which never pinged it with that number`)
  } else {
    const id = `${me}:${m.seq}`
    const first = st.sentIn.get(id)
    if (first === undefined) {
      st.sentIn.set(id, node.life)
      pings.sent += 1
      if (now >= s.faultsEndMs && st.hosts!.nodes[to].up) {
        st.awaited.set(id, now)
        pings.afterT += 1
      }
    } else if (first !== node.life) {
      world.violate(`peer ${me}: ping id ${m.seq} reused after a restart (first sent in life ${first}, now in life ${node.life})`)
    } else {
      pings.resent += 1
    }
    const stored = node.storage.getNumber(SEQ_KEY) ?? 0
    if (m.seq >= stored) world.violate(`peer ${me}: ping ${m.seq} sent before its number was persisted (storage says next is ${stored})`)
  }
  st.network!.send(me, to, bytes)
}

function checkAwaited (st: EchoRunState): void {
  for (const [id, sentAt] of st.awaited) {
    if (st.world.nowMs > sentAt + st.boundMs) {
      st.world.violate(`ping ${id} sent at ${sentAt} (after T) to a running peer not completed within ${st.boundMs} ms`)
      st.awaited.delete(id) // once
    }
  }
}
