/**
 * Simulated peers, generic over the sans-I/O machines they run.
 *
 * Every Rhizome protocol piece has one shape (STYLE.md §4): inputs `handle*(…, nowMs)`, outputs
 * drained from `poll()`, and `nextTimeoutMs()` saying when to be called again. A real peer's shell
 * is a thin loop around that shape — feed an input, drain poll(), re-arm one timer — and so is
 * this one: `SimHosts` is that loop, once, for every machine. A scenario says only what is
 * specific to its machine, through a `MachineAdapter`: how to build it at a (re)start (reading the
 * node's storage), how to hand it a message and a timeout, and what to do with each output (send
 * it on the network, write it to storage, check it against an invariant).
 *
 * Each node has its own clock: local time = sim time + skewMs, where the skew is set at the start
 * and may be stepped (forward or back) by a fault. Machines are never shown their clock going
 * back: a machine is always given the local time, and `clockMs` records the largest given in this
 * life; the real machines hold their time still until a stepped-back clock catches up. Timers are
 * armed in local time and converted back to sim time with the skew of the moment.
 *
 * A crash ends the node's life: its machines and their memory are gone (the adapter's `L` is
 * dropped), its timer is cancelled, and messages in flight to it are dropped on arrival (the
 * network compares lives). What the node wrote to its `storage` stays. A restart is a new life
 * with a new machine built by `start`.
 */
import { assert } from '../model/errors.ts'
import type { Random } from '../protocol/random.ts'
import type { Endpoint } from './network.ts'
import { SimStorage } from './storage.ts'
import type { SimWorld } from './world.ts'

export interface SimNode<L> extends Endpoint {
  readonly index: number
  readonly peerId: string
  up: boolean
  life: number
  /** What the adapter built for this life (the machine and any per-life bookkeeping); undefined
   *  while the node is down. */
  machine: L | undefined
  /** Local time = sim time + skewMs. */
  skewMs: number
  /** The largest local time given to this life's machines (their clock never runs back). */
  clockMs: number
  /** Survives crashes. */
  readonly storage: SimStorage
  /** The armed timer: a timer event runs only if its token is still the node's. */
  timerToken: number
  timerAtMs: number | undefined
}

/**
 * What a scenario tells the generic host about its machine. `L` is whatever the adapter keeps per
 * life (often just the machine), `M` the network's message type, `O` the machine's output type.
 * The host calls `handleMessage`/`handleTimeout` with the node's local time, then drains `poll`
 * through `output`, then re-arms the timer from `nextTimeoutMs` (in local time; `Infinity` for
 * "no timer").
 */
export interface MachineAdapter<L, M, O> {
  /** Build the machines of a new life (the first start, or a restart after a crash). `nowMs` is
   *  sim time; `node.storage` holds what earlier lives wrote. */
  start: (node: SimNode<L>, nowMs: number) => L
  /** Appended to the trace line of a start, e.g. `inc=1234`. */
  startNote?: (life: L, node: SimNode<L>) => string
  handleMessage: (life: L, node: SimNode<L>, from: number, message: M, nowMs: number) => void
  handleTimeout: (life: L, node: SimNode<L>, nowMs: number) => void
  poll: (life: L) => O | undefined
  nextTimeoutMs: (life: L) => number
  output: (node: SimNode<L>, out: O) => void
  /** After a crash, before anything else runs. */
  crashed?: (node: SimNode<L>) => void
}

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

/** `count` distinct peer ids shaped like libp2p's Ed25519 ones (12D3KooW + 44 base58 chars). */
export function simPeerIds (rng: Random, count: number): string[] {
  const ids: string[] = []
  const seen = new Set<string>()
  for (let index = 0; index < count; index++) {
    let peerId = '12D3KooW'
    for (let i = 0; i < 44; i++) peerId += BASE58[rng.int(0, BASE58.length - 1)]
    assert(!seen.has(peerId), 'simulated peer ids are distinct')
    seen.add(peerId)
    ids.push(peerId)
  }
  return ids
}

export class SimHosts<L, M, O> {
  readonly nodes: Array<SimNode<L>>
  private readonly world: SimWorld
  private readonly adapter: MachineAdapter<L, M, O>

  constructor (world: SimWorld, peerIds: readonly string[], initialSkewsMs: readonly number[], adapter: MachineAdapter<L, M, O>) {
    assert(peerIds.length === initialSkewsMs.length, 'one skew per node')
    this.world = world
    this.adapter = adapter
    this.nodes = peerIds.map((peerId, index) => ({
      index,
      peerId,
      up: false,
      life: 0,
      machine: undefined,
      skewMs: initialSkewsMs[index],
      clockMs: -Infinity,
      storage: new SimStorage(),
      timerToken: 0,
      timerAtMs: undefined
    }))
  }

  /** Schedule every node's first start. */
  scheduleStarts (startTimesMs: readonly number[]): void {
    assert(startTimesMs.length === this.nodes.length, 'one start time per node')
    startTimesMs.forEach((atMs, index) => this.world.at(atMs, () => this.start(index)))
  }

  get running (): number {
    let n = 0
    for (const node of this.nodes) if (node.up) n += 1
    return n
  }

  start (index: number): void {
    const node = this.nodes[index]
    assert(!node.up, 'a node starts only when down')
    node.up = true
    node.life += 1
    node.clockMs = -Infinity
    node.timerAtMs = undefined
    const life = this.adapter.start(node, this.world.nowMs)
    node.machine = life
    const note = this.adapter.startNote?.(life, node)
    this.world.trace.add(`${this.world.nowMs} start ${index}${note === undefined ? '' : ` ${note}`}`)
    this.arm(node, true)
  }

  /** Crash a running node (a node that is down, or not started yet, is left alone and is not
   *  restarted); restart it at `restartAtMs` if given. */
  crash (index: number, restartAtMs: number | undefined): void {
    const node = this.nodes[index]
    if (!node.up) return
    node.up = false
    node.life += 1
    node.machine = undefined
    node.timerToken += 1
    node.timerAtMs = undefined
    this.world.trace.add(`${this.world.nowMs} crash ${index}`)
    this.adapter.crashed?.(node)
    if (restartAtMs !== undefined) this.world.at(restartAtMs, () => this.start(index))
  }

  /** Set a node's clock offset (a clock step); its timer is re-armed in the new time. */
  stepClock (index: number, skewMs: number): void {
    const node = this.nodes[index]
    node.skewMs = skewMs
    this.world.trace.add(`${this.world.nowMs} clock ${index} skew=${skewMs}`)
    if (node.up) this.arm(node, true)
  }

  /** The network's delivery: hand a message to a running node's machine. */
  deliver (to: number, from: number, message: M): void {
    const node = this.nodes[to]
    const life = node.machine
    assert(node.up && life !== undefined, 'messages are delivered to running nodes')
    this.adapter.handleMessage(life, node, from, message, this.localMs(node))
    this.drain(node)
    this.arm(node, false)
  }

  /** Feed a running node's machine an input of the scenario's own (a task submitted, a capacity
   *  change): `input` gets the machine and the local time; then poll() is drained and the timer
   *  re-armed, as after a message. */
  feed (index: number, input: (life: L, nowMs: number) => void): void {
    const node = this.nodes[index]
    const life = node.machine
    assert(node.up && life !== undefined, 'inputs are fed to running nodes')
    input(life, this.localMs(node))
    this.drain(node)
    this.arm(node, false)
  }

  /** The local time to give a node's machine now (and remember it was given). */
  localMs (node: SimNode<L>): number {
    const local = this.world.nowMs + node.skewMs
    if (local > node.clockMs) node.clockMs = local
    return local
  }

  /** The time a node's machine would see if it were called now (its clock never runs back). */
  peekLocalMs (node: SimNode<L>): number {
    return Math.max(node.clockMs, this.world.nowMs + node.skewMs)
  }

  /** Drain poll() through the adapter's output. */
  drain (node: SimNode<L>): void {
    const life = node.machine
    assert(life !== undefined, 'only running nodes are drained')
    const adapter = this.adapter
    for (let out = adapter.poll(life); out !== undefined; out = adapter.poll(life)) adapter.output(node, out)
  }

  /** Ask for a timeout at nextTimeoutMs(), converted from the node's clock to sim time. A timer
   *  already armed earlier is kept (it finds nothing due and re-arms), as a shell with one timer
   *  would; `force` replaces it (after a start or a clock step). */
  arm (node: SimNode<L>, force: boolean): void {
    const life = node.machine
    assert(life !== undefined, 'only running nodes are armed')
    const atMs = Math.max(this.world.nowMs, this.adapter.nextTimeoutMs(life) - node.skewMs)
    if (atMs === Infinity) {
      // No timer wanted. A forced re-arm cancels the one armed; otherwise it fires and re-arms.
      if (force) {
        node.timerToken += 1
        node.timerAtMs = undefined
      }
      return
    }
    if (force || node.timerAtMs === undefined || atMs < node.timerAtMs) {
      node.timerToken += 1
      node.timerAtMs = atMs
      const token = node.timerToken
      this.world.at(atMs, () => this.timeout(node, token))
    }
  }

  private timeout (node: SimNode<L>, token: number): void {
    if (!node.up || token !== node.timerToken) return // superseded, or for an earlier life
    const life = node.machine
    assert(life !== undefined, 'a running node has its machines')
    node.timerAtMs = undefined
    this.adapter.handleTimeout(life, node, this.localMs(node))
    this.drain(node)
    const next = this.adapter.nextTimeoutMs(life)
    if (next <= node.clockMs) {
      this.world.violate(`peer ${node.index}: after a timeout at ${node.clockMs} nextTimeoutMs() is ${next}, not in the future`)
      // Keep time moving, or this node would time out forever at one instant.
      node.timerToken += 1
      node.timerAtMs = this.world.nowMs + 1
      const again = node.timerToken
      this.world.at(node.timerAtMs, () => this.timeout(node, again))
      return
    }
    this.arm(node, false)
  }
}
