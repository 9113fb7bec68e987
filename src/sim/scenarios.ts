/**
 * The scenarios `scripts/sim-seeds.ts --scenario NAME` can run, each reduced to what a seed sweep
 * needs: run one seed, say whether it held, summarize it in a line. A new scenario (the
 * scheduler, the run driver) is one more entry here.
 */
import { durableScenarioEntry } from './durable-scenario.ts'
import { runEchoScenario } from './echo-scenario.ts'
import { leaseSeedOutcome } from './lease-scenario.ts'
import { runMembershipScenario } from './membership-scenario.ts'
import { memoScenarioEntry } from './memo-scenario.ts'
import { permissionScenarioEntry } from './permission-scenario.ts'
import { runRunScenario } from './run-scenario.ts'
import { verifyScenarioEntry } from './verify-scenario.ts'

export interface SeedOutcome {
  scenario: string
  seed: number
  ok: boolean
  violations: string[]
  violationCount: number
  /** One line: what ran and how it went. */
  summary: string
  /** More lines for a replay: counters, verdicts. */
  details: string[]
  traceHash: string
  simEvents: number
  trace: readonly string[]
  /** How much of its liveness bound the slowest convergence used (1 = all of it), if measured. */
  boundUsed?: number
}

export interface ScenarioEntry {
  name: string
  description: string
  runSeed: (seed: number, options?: { traceLinesKept?: number }) => SeedOutcome
}

export const SCENARIOS: Readonly<Record<string, ScenarioEntry>> = {
  durable: durableScenarioEntry,
  memo: memoScenarioEntry,
  membership: {
    name: 'membership',
    description: 'the membership state machine on gossip: converges within its bound after faults',
    runSeed (seed, options = {}) {
      const r = runMembershipScenario({ seed, traceLinesKept: options.traceLinesKept ?? 0 })
      const converged = r.convergenceMs === undefined ? 'never converged' : `converged T+${r.convergenceMs} ms (bound ${r.boundMs} ms)`
      return {
        scenario: 'membership',
        seed,
        ok: r.ok,
        violations: r.violations,
        violationCount: r.violationCount,
        summary: `${r.nodes} peers, ${r.liveAtEnd} running at the end, faults until ${r.faultsEndMs} ms, ${converged}`,
        details: [`messages ${JSON.stringify(r.messages)}`, `verdicts ${JSON.stringify(r.verdicts)}`],
        traceHash: r.traceHash,
        simEvents: r.simEvents,
        trace: r.trace,
        boundUsed: r.convergenceMs === undefined ? undefined : r.convergenceMs / r.boundMs
      }
    }
  },
  echo: {
    name: 'echo',
    description: 'ping/pong over point-to-point messages, with crashes and storage: ids never repeat, pings complete after faults',
    runSeed (seed, options = {}) {
      const r = runEchoScenario({ seed, traceLinesKept: options.traceLinesKept ?? 0 })
      return {
        scenario: 'echo',
        seed,
        ok: r.ok,
        violations: r.violations,
        violationCount: r.violationCount,
        summary: `${r.nodes} peers, ${r.liveAtEnd} running at the end, faults until ${r.faultsEndMs} ms, ${r.pings.completed}/${r.pings.sent} pings completed, slowest after T ${r.slowestAfterTMs} ms (bound ${r.boundMs} ms)`,
        details: [`pings ${JSON.stringify(r.pings)}`, `messages ${JSON.stringify(r.messages)}`, `storage writes ${r.storageWrites}`],
        traceHash: r.traceHash,
        simEvents: r.simEvents,
        trace: r.trace,
        boundUsed: r.pings.afterT === 0 ? undefined : r.slowestAfterTMs / r.boundMs
      }
    }
  },
  verify: verifyScenarioEntry,
  permission: permissionScenarioEntry,
  lease: { name: 'lease', description: 'run leases on a home set of 3..5 peers: never two leases at once, one driver per epoch, a holder soon after faults', runSeed: leaseSeedOutcome },
  run: {
    name: 'run',
    description: 'a workflow run: the run driver and the scheduler on one peer, simulated workers that crash; one done per task, limits kept, the direct value',
    runSeed (seed, options = {}) {
      const r = runRunScenario({ seed, traceLinesKept: options.traceLinesKept ?? 0 })
      const finished = r.finishedMs === undefined ? 'never finished' : `finished at ${r.finishedMs} ms (T + ${Math.max(0, r.finishedMs - r.faultsEndMs)}, bound ${r.boundMs} ms)`
      return {
        scenario: 'run',
        seed,
        ok: r.ok,
        violations: r.violations,
        violationCount: r.violationCount,
        summary: `${r.workers} workers, ${r.tasks} tasks (${r.nodes} calls), faults until ${r.faultsEndMs} ms, ${finished}, value ${String(r.value)} (expected ${r.expected})`,
        details: [`counts ${JSON.stringify(r.counts)}`, `messages ${JSON.stringify(r.messages)}`],
        traceHash: r.traceHash,
        simEvents: r.simEvents,
        trace: r.trace,
        boundUsed: r.finishedMs === undefined ? undefined : Math.max(0, r.finishedMs - r.faultsEndMs) / r.boundMs
      }
    }
  }
}

/** The command that replays one seed of a scenario. */
export function replayCommand (seed: number, scenario = 'membership'): string {
  return `node scripts/sim-seeds.ts --scenario ${scenario} --seed ${seed}`
}
