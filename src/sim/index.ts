/**
 * The deterministic simulator: the real protocol state machines, a simulated network and clock,
 * faults drawn from a seed, and invariant checks. Pure like the protocol core (no I/O, no real
 * time, no Math.random): the same seed always replays the same run.
 */
export { EventQueue } from './event-queue.ts'
export { TraceHash } from './trace.ts'
export {
  checkScenario, convergenceBoundMs, membershipScenarioFromSeed, replayCommand, runMembershipScenario
} from './membership-scenario.ts'
export type {
  CrashPlan, MembershipScenario, MembershipScenarioResult, MembershipTimings, ScenarioShape, SimulationHooks
} from './membership-scenario.ts'
export { createRandom } from '../protocol/random.ts'
export type { Random } from '../protocol/random.ts'
