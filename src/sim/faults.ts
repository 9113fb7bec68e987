/**
 * Faults: when nodes start, and what goes wrong until the fault window closes — crashes (with or
 * without a restart), clock offsets and steps, partitions, message loss and duplication. A plan is
 * data drawn from a seed (or written by hand in a test); `scheduleFaults` turns it into events on
 * the world's queue, acting on the nodes (SimHosts) and the network (SimNetwork).
 *
 * At `faultsEndMs` (T) the faults stop: loss and duplication end, partitions heal, nobody
 * crashes, restarts or steps a clock any more (the plan is checked to keep to that). A scenario's
 * liveness invariants are stated from T on.
 *
 * The draws are in a fixed order, and that order is part of every pinned trace
 * (test/sim/digests.test.ts): a new kind of fault draws after the existing ones, or from a fork.
 */
import type { Random } from '../protocol/random.ts'
import type { SimNetwork } from './network.ts'
import type { SimWorld } from './world.ts'

export interface CrashPlan {
  atMs: number
  node: number
  /** Restart (a new life) at this time; undefined: stays down. Must be < faultsEndMs. */
  restartAtMs?: number
}

export interface ClockStep { atMs: number, node: number, skewMs: number }

/** While active, messages between nodes on different sides (0 or 1) are dropped. */
export interface PartitionPlan { atMs: number, untilMs: number, sideOf: number[] }

/** When each node first starts, and its clock offset then. */
export interface StartPlan {
  /** Clock offsets are in [0, skewMaxMs]; a clock may step by up to this much. */
  skewMaxMs: number
  startTimesMs: number[]
  initialSkewsMs: number[]
}

export interface FaultPlan {
  /** T: the end of the fault phase. */
  faultsEndMs: number
  /** Loss and duplication apply while faultsStartMs <= t < faultsEndMs. */
  faultsStartMs: number
  lossRate: number
  duplicateRate: number
  crashes: CrashPlan[]
  skewSteps: ClockStep[]
  partitions: PartitionPlan[]
}

/** How a plan is drawn; every range is inclusive. The defaults are the membership simulator's. */
export interface FaultShape {
  nodes: number
  /** false: no loss, duplication, crashes, partitions, skew or clock steps (unless `crashes` is
   *  given); T is just after the last start or explicit crash. */
  faults?: boolean
  /** Default: drawn in [0, 1000] with faults, 0 without. */
  skewMaxMs?: number
  /** Nodes start in [0, startWindowMs]. Default: drawn in [0, 5000]. */
  startWindowMs?: number
  /** Explicit crashes instead of drawn ones. */
  crashes?: CrashPlan[]
  /** T = startWindowMs + a draw in this range. */
  faultPhaseMs?: [number, number]
  lossRateMax?: number
  duplicateRateMax?: number
  /** A restart comes this long after its crash (if before T). */
  restartAfterMs?: [number, number]
  /** The chance that a drawn crash restarts. */
  restartChance?: number
  /** A partition lasts this long (cut at T). */
  partitionMs?: [number, number]
  partitionsMax?: number
}

export const FAULT_SHAPE_DEFAULTS = {
  faultPhaseMs: [5000, 30_000] as [number, number],
  lossRateMax: 0.3,
  duplicateRateMax: 0.1,
  restartAfterMs: [1, 20_000] as [number, number],
  restartChance: 0.6,
  partitionMs: [500, 15_000] as [number, number],
  partitionsMax: 2
}

/** Draw start times and clock offsets: skewMaxMs, startWindowMs, one start per node, one offset
 *  per node, in that order. */
export function drawStartPlan (rng: Random, shape: FaultShape): StartPlan & { startWindowMs: number } {
  const faults = shape.faults ?? true
  const skewMaxMs = shape.skewMaxMs ?? (faults ? rng.int(0, 1000) : 0)
  const startWindowMs = shape.startWindowMs ?? rng.int(0, 5000)
  const startTimesMs = Array.from({ length: shape.nodes }, () => rng.int(0, startWindowMs))
  const initialSkewsMs = Array.from({ length: shape.nodes }, () => rng.int(0, skewMaxMs))
  return { skewMaxMs, startWindowMs, startTimesMs, initialSkewsMs }
}

/** Draw the faults after `drawStartPlan` (from the same generator): T, the window, the rates,
 *  crashes (count, then per crash its time, node, whether and when it restarts), clock steps,
 *  partitions. Up to ceil(nodes/3) crashes and up to `nodes` clock steps. */
export function drawFaultPlan (rng: Random, shape: FaultShape, starts: StartPlan & { startWindowMs: number }): FaultPlan {
  const d = { ...FAULT_SHAPE_DEFAULTS, ...withoutUndefined(shape) }
  const { nodes } = shape
  const lastStartMs = Math.max(...starts.startTimesMs)
  const plan: FaultPlan = {
    faultsEndMs: lastStartMs,
    faultsStartMs: 0,
    lossRate: 0,
    duplicateRate: 0,
    crashes: shape.crashes ?? [],
    skewSteps: [],
    partitions: []
  }
  if (!(shape.faults ?? true)) {
    const lastCrashMs = Math.max(0, ...plan.crashes.map(c => Math.max(c.atMs, c.restartAtMs ?? 0)))
    plan.faultsEndMs = Math.max(lastStartMs, lastCrashMs + 1)
    return plan
  }
  const T = starts.startWindowMs + rng.int(d.faultPhaseMs[0], d.faultPhaseMs[1])
  plan.faultsEndMs = T
  plan.faultsStartMs = rng.int(0, starts.startWindowMs)
  plan.lossRate = rng.float() * d.lossRateMax
  plan.duplicateRate = rng.float() * d.duplicateRateMax
  if (shape.crashes === undefined) {
    const crashCount = rng.int(0, Math.ceil(nodes / 3))
    for (let i = 0; i < crashCount; i++) {
      const atMs = rng.int(0, T - 1)
      const node = rng.int(0, nodes - 1)
      let restartAtMs: number | undefined = rng.chance(d.restartChance) ? atMs + rng.int(d.restartAfterMs[0], d.restartAfterMs[1]) : undefined
      if (restartAtMs !== undefined && restartAtMs >= T) restartAtMs = undefined
      plan.crashes.push(restartAtMs === undefined ? { atMs, node } : { atMs, node, restartAtMs })
    }
  }
  const skewStepCount = rng.int(0, nodes)
  for (let i = 0; i < skewStepCount; i++) {
    plan.skewSteps.push({ atMs: rng.int(0, T - 1), node: rng.int(0, nodes - 1), skewMs: rng.int(0, starts.skewMaxMs) })
  }
  const partitionCount = rng.int(0, d.partitionsMax)
  for (let i = 0; i < partitionCount; i++) {
    const atMs = rng.int(0, T - 1)
    const untilMs = Math.min(T, atMs + rng.int(d.partitionMs[0], d.partitionMs[1]))
    plan.partitions.push({ atMs, untilMs, sideOf: Array.from({ length: nodes }, () => rng.int(0, 1)) })
  }
  return plan
}

function withoutUndefined<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

/** The first way the plan breaks the fault-window rules, or undefined. */
export function faultPlanProblem (plan: FaultPlan & StartPlan, nodes: number): string | undefined {
  if (plan.startTimesMs.length !== nodes || plan.initialSkewsMs.length !== nodes) return 'one start time and skew per node'
  if (!(plan.lossRate >= 0 && plan.lossRate <= 1 && plan.duplicateRate >= 0 && plan.duplicateRate <= 1)) return 'loss and duplication rates are in [0, 1]'
  for (const c of plan.crashes) {
    if (c.node < 0 || c.node >= nodes) return `crash of unknown node ${c.node}`
    if (c.atMs >= plan.faultsEndMs) return 'crashes happen before faultsEndMs'
    if (c.restartAtMs !== undefined && (c.restartAtMs <= c.atMs || c.restartAtMs >= plan.faultsEndMs)) return 'restarts happen after their crash and before faultsEndMs'
  }
  for (const step of plan.skewSteps) {
    if (step.node < 0 || step.node >= nodes) return `clock step of unknown node ${step.node}`
    if (step.atMs >= plan.faultsEndMs || step.skewMs < 0 || step.skewMs > plan.skewMaxMs) return 'clock steps happen before faultsEndMs, within [0, skewMaxMs]'
  }
  for (const p of plan.partitions) {
    if (p.untilMs > plan.faultsEndMs || p.sideOf.length !== nodes) return 'partitions heal by faultsEndMs and give every node a side'
  }
  return undefined
}

/** What faults act on. */
export interface FaultTargets {
  hosts: {
    crash: (node: number, restartAtMs: number | undefined) => void
    stepClock: (node: number, skewMs: number) => void
  }
  network: Pick<SimNetwork<unknown>, 'setFaultsActive' | 'partition' | 'heal' | 'healAll'>
}

/** Push the plan's events: crashes, clock steps, partitions (each with its heal), the window's
 *  start and end — in that order, after the scenario has pushed its starts. */
export function scheduleFaults (world: SimWorld, plan: FaultPlan, targets: FaultTargets): void {
  const { hosts, network } = targets
  for (const c of plan.crashes) world.at(c.atMs, () => hosts.crash(c.node, c.restartAtMs))
  for (const step of plan.skewSteps) world.at(step.atMs, () => hosts.stepClock(step.node, step.skewMs))
  plan.partitions.forEach((p, index) => {
    world.at(p.atMs, () => {
      network.partition(index, p.sideOf)
      world.trace.add(`${world.nowMs} partition ${index}`)
    })
    world.at(p.untilMs, () => {
      network.heal(index)
      world.trace.add(`${world.nowMs} heal ${index}`)
    })
  })
  if (plan.faultsStartMs < plan.faultsEndMs) world.at(plan.faultsStartMs, () => network.setFaultsActive(true))
  world.at(plan.faultsEndMs, () => {
    network.setFaultsActive(false)
    network.healAll()
    world.trace.add(`${world.nowMs} faults-end`)
  })
}
