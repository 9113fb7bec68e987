/**
 * The deterministic simulator: the real protocol state machines, a simulated network and clock,
 * faults drawn from a seed, and invariant checks. Pure like the protocol core (no I/O, no real
 * time, no Math.random): the same seed always replays the same run.
 *
 * The pieces, generic over the machines they run: `SimWorld` (clock, event queue, trace,
 * violations), `SimNetwork` (point-to-point and broadcast with delay, loss, duplication and
 * partitions), `SimHosts` (peers that drive any sans-I/O machine through a `MachineAdapter`, crash
 * and restart), `SimStorage` (what a peer keeps across a crash) and the fault plans. A scenario
 * puts them together for one machine: membership-scenario.ts, echo-scenario.ts, run-scenario.ts
 * (the run driver and the scheduler over simulated workers), durable-scenario.ts (a durable run:
 * the home-set machine, the run driver on whoever holds the lease, workers with a result store),
 * verify-scenario.ts (verified results: the verifier and reputation machines, Byzantine workers),
 * permission-scenario.ts (a permissioned network: members, outsiders, revocations by gossip).
 */
export { EventQueue } from './event-queue.ts'
export { TraceHash } from './trace.ts'
export { checkTimes, SimWorld, VIOLATIONS_KEPT } from './world.ts'
export type { RunOptions } from './world.ts'
export { SimNetwork } from './network.ts'
export type { Deliver, Endpoint, NetworkOptions, NetworkStats } from './network.ts'
export { SimHosts, simPeerIds } from './node.ts'
export type { MachineAdapter, SimNode } from './node.ts'
export { SimStorage } from './storage.ts'
export { drawFaultPlan, drawStartPlan, FAULT_SHAPE_DEFAULTS, faultPlanProblem, scheduleFaults } from './faults.ts'
export type { ClockStep, CrashPlan, FaultPlan, FaultShape, FaultTargets, PartitionPlan, StartPlan } from './faults.ts'
export {
  checkScenario, convergenceBoundMs, membershipScenarioFromSeed, runMembershipScenario
} from './membership-scenario.ts'
export type {
  MembershipScenario, MembershipScenarioResult, MembershipTimings, ScenarioShape, SimulationHooks
} from './membership-scenario.ts'
export { createPinger, decodePing, echoScenarioFromSeed, encodePing, PINGS_OUTSTANDING_MAX, runEchoScenario } from './echo-scenario.ts'
export type { EchoHooks, EchoScenario, EchoScenarioResult, EchoShape, Pinger, PingerOptions, PingerOutput } from './echo-scenario.ts'
export {
  drawGraph, evaluateGraph, FAN_IN_MAX, graphDepth, GraphScript, graphTaskId, work
} from './run-graph.ts'
export type { GraphFn, GraphNode } from './run-graph.ts'
export { LARGE_RUN_SHAPE, livenessBoundMs, runRunScenario, runScenarioFromSeed } from './run-scenario.ts'
export type { RunHooks, RunScenario, RunScenarioResult, RunShape } from './run-scenario.ts'
export { durableBoundMs, durableScenarioFromSeed, minorityCrashes, runDurableScenario } from './durable-scenario.ts'
export type { DurableCounts, DurableHooks, DurableScenario, DurableScenarioResult, DurableShape } from './durable-scenario.ts'
export { correctCid, runVerifyScenario, verifyScenarioFromSeed } from './verify-scenario.ts'
export type { VerifyCounts, VerifyHooks, VerifyScenario, VerifyScenarioResult } from './verify-scenario.ts'
export { permissionScenarioFromSeed, runPermissionScenario } from './permission-scenario.ts'
export type { PeerKind, PeerPlan, PermissionCounts, PermissionHooks, PermissionScenario, PermissionScenarioResult } from './permission-scenario.ts'
export { replayCommand, SCENARIOS } from './scenarios.ts'
export type { ScenarioEntry, SeedOutcome } from './scenarios.ts'
export { createRandom } from '../protocol/random.ts'
export type { Random } from '../protocol/random.ts'
