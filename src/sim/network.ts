/**
 * The simulated network: point-to-point messages and broadcast between numbered nodes.
 *
 * Every message to one recipient takes its own delay, uniform in [delayMinMs, delayMaxMs] and
 * drawn from the seed, so messages reorder. While the fault window is open (`setFaultsActive`)
 * each copy is lost with probability `lossRate` and duplicated (a second copy with its own delay)
 * with probability `duplicateRate`; a partition splits the nodes into sides (0 and 1), and a
 * message between sides of any active partition is dropped at send time. Delivery is an event on
 * the world's queue; a message that arrives at a node that crashed or restarted since it was sent
 * is dropped (it was addressed to a life that no longer exists).
 *
 * The draws, per recipient and in this order, are part of every pinned trace: partition check
 * (no draw), loss (one draw, only in the fault window), delay (one draw), duplication (one draw,
 * only in the fault window) and the duplicate's delay. Change the order and every seed replays
 * differently — see test/sim/digests.test.ts.
 *
 * Messages are whatever the scenario sends — a decoded object or the bytes of a wire codec — and
 * are handed to recipients as they are, not copied: a scenario that shares one decoded message
 * between recipients relies on its machines copying what they keep, as the real ones must.
 */
import { assert } from '../model/errors.ts'
import type { Random } from '../protocol/random.ts'
import type { SimWorld } from './world.ts'

/** What the network needs to know of a node: whether it runs, and which life it is in. */
export interface Endpoint {
  readonly up: boolean
  /** Bumped on every crash and (re)start. */
  readonly life: number
}

export interface NetworkOptions {
  /** Delay of one message to one recipient, uniform in [delayMinMs, delayMaxMs] (whole ms). */
  delayMinMs: number
  delayMaxMs: number
  /** Per copy, in the fault window. */
  lossRate: number
  duplicateRate: number
}

export interface NetworkStats {
  /** `broadcast` calls. */
  published: number
  /** `send` calls. */
  sent: number
  /** Copies handed to a running recipient. */
  delivered: number
  lost: number
  /** Dropped at send time: the recipient was on the other side of a partition. */
  partitioned: number
  duplicated: number
  /** In flight to a node that crashed (or restarted) before they arrived. */
  droppedAtDownPeer: number
  /** `send` to a node that was down at send time (a refused connection: nothing is drawn). */
  unreachable: number
}

export type Deliver<M> = (to: number, from: number, message: M) => void

export class SimNetwork<M> {
  readonly stats: NetworkStats = { published: 0, sent: 0, delivered: 0, lost: 0, partitioned: 0, duplicated: 0, droppedAtDownPeer: 0, unreachable: 0 }
  private faultsActive = false
  /** Active partitions by id: each gives every node a side, 0 or 1. */
  private readonly partitions = new Map<number, readonly number[]>()

  private readonly world: SimWorld
  private readonly endpoints: readonly Endpoint[]
  private readonly rng: Random
  private readonly options: NetworkOptions
  private readonly deliver: Deliver<M>

  /** `rng` is the network's own (a fork): every draw it makes is a delay, a loss or a duplicate. */
  constructor (world: SimWorld, endpoints: readonly Endpoint[], rng: Random, options: NetworkOptions, deliver: Deliver<M>) {
    assert(options.delayMinMs >= 1 && options.delayMinMs <= options.delayMaxMs, 'need 1 <= delayMinMs <= delayMaxMs')
    assert(options.lossRate >= 0 && options.lossRate <= 1 && options.duplicateRate >= 0 && options.duplicateRate <= 1, 'rates are probabilities')
    this.world = world
    this.endpoints = endpoints
    this.rng = rng
    this.options = { delayMinMs: options.delayMinMs, delayMaxMs: options.delayMaxMs, lossRate: options.lossRate, duplicateRate: options.duplicateRate }
    this.deliver = deliver
  }

  /** Open or close the fault window (loss and duplication apply only while it is open). */
  setFaultsActive (active: boolean): void {
    this.faultsActive = active
  }

  partition (id: number, sideOf: readonly number[]): void {
    assert(sideOf.length === this.endpoints.length, 'a partition gives every node a side')
    this.partitions.set(id, sideOf)
  }

  heal (id: number): void {
    this.partitions.delete(id)
  }

  healAll (): void {
    this.partitions.clear()
  }

  /** True if an active partition puts `a` and `b` on different sides. */
  separated (a: number, b: number): boolean {
    for (const sides of this.partitions.values()) {
      if (sides[a] !== sides[b]) return true
    }
    return false
  }

  /** One message from `from` to `to` (a running node other than `from`). */
  send (from: number, to: number, message: M): void {
    assert(from !== to, 'a node does not send to itself')
    assert(to >= 0 && to < this.endpoints.length, `no node ${to}`)
    this.stats.sent += 1
    if (!this.endpoints[to].up) {
      this.stats.unreachable += 1
      return
    }
    this.transmit(from, to, message)
  }

  /** One message from `from` to every other node running now, in node order (gossip reaches the
   *  running peers; a peer that starts later does not get old messages). */
  broadcast (from: number, message: M): void {
    this.stats.published += 1
    const endpoints = this.endpoints
    for (let to = 0; to < endpoints.length; to++) {
      if (to === from || !endpoints[to].up) continue
      this.transmit(from, to, message)
    }
  }

  private transmit (from: number, to: number, message: M): void {
    const { rng, options, world } = this
    if (this.partitions.size > 0 && this.separated(from, to)) {
      this.stats.partitioned += 1
      return
    }
    if (this.faultsActive && rng.chance(options.lossRate)) {
      this.stats.lost += 1
      return
    }
    const life = this.endpoints[to].life
    world.at(world.nowMs + rng.int(options.delayMinMs, options.delayMaxMs), () => this.arrive(from, to, life, message))
    if (this.faultsActive && rng.chance(options.duplicateRate)) {
      this.stats.duplicated += 1
      world.at(world.nowMs + rng.int(options.delayMinMs, options.delayMaxMs), () => this.arrive(from, to, life, message))
    }
  }

  private arrive (from: number, to: number, life: number, message: M): void {
    const endpoint = this.endpoints[to]
    if (!endpoint.up || endpoint.life !== life) {
      this.stats.droppedAtDownPeer += 1
      return
    }
    this.stats.delivered += 1
    this.deliver(to, from, message)
  }
}
