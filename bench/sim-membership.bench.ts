#!/usr/bin/env node
// Membership at 100 and 1,000 peers, in the deterministic simulator (numbers printed, never
// asserted — STYLE.md §17).
//
//   node bench/sim-membership.bench.ts [--peers 100,1000]
//
// Two scenarios per size, default timings (announce every 2 s, suspect 5 s, gone 10 s), gossip
// delay 1–50 ms, no loss:
//   join   all peers start within 2 s; T is the last start. Convergence: every peer sees every
//          other alive. Expect about one announce interval plus the delay.
//   crash  the same, then peer 0 crashes at 6 s (T) and stays down. Convergence: everyone sees it
//          gone. Expect goneAfterMs minus the time since its last announcement, plus the delay.
// The bound column is the simulator's guarantee, convergenceBoundMs (goneAfterMs +
// announceIntervalMs + max delay + max skew), which is the baseline both must stay under.
//
// The simulated gossip delivers each announcement once to every other peer (what gossipsub's
// mesh achieves, minus its duplicates), so "received" is n − 1 announcements per interval.
// Convergence is sampled every 100 ms (100 peers) or 250 ms (1,000 peers); the 1,000-peer runs
// skip the per-delivery oracle (checkEveryStep) to fit in about half a minute on 2 cores.
import { parseArgs } from 'node:util'
import { MEMBERSHIP_DEFAULTS } from '../src/protocol/membership/index.ts'
import { runMembershipScenario } from '../src/sim/index.ts'
import type { MembershipScenarioResult, ScenarioShape } from '../src/sim/index.ts'

const { values } = parseArgs({ options: { peers: { type: 'string', default: '100,1000' } } })
const sizes = values.peers.split(',').map(Number)
if (sizes.some(n => !Number.isSafeInteger(n) || n < 2 || n > 5000)) {
  console.error('--peers: a comma-separated list of sizes in 2..5000')
  process.exit(2)
}

interface Row {
  scenario: string
  peers: number
  convergenceMs: string
  boundMs: number
  sentPerPeerPerS: string
  receivedPerPeerPerS: string
  simulatedS: string
  simEvents: number
  wallS: string
  ok: string
}

const rows: Row[] = []
for (const peers of sizes) {
  const big = peers > 300
  const common: ScenarioShape = {
    nodes: peers,
    faults: false,
    startWindowMs: 2000,
    settleMs: 1000,
    checkEveryMs: big ? 250 : 100,
    checkEveryStep: !big,
    membership: { ...MEMBERSHIP_DEFAULTS }
  }
  const cases: Array<[string, ScenarioShape]> = [
    ['join', common],
    ['crash', { ...common, crashes: [{ atMs: 5999, node: 0 }] }]
  ]
  for (const [name, shape] of cases) {
    const started = performance.now()
    const r = runMembershipScenario({ seed: 1, ...shape })
    const wallMs = performance.now() - started
    rows.push(row(name, r, wallMs))
    print(rows.at(-1) as Row, rows.length === 1)
  }
}

function row (scenario: string, r: MembershipScenarioResult, wallMs: number): Row {
  const seconds = r.endMs / 1000
  return {
    scenario,
    peers: r.nodes,
    convergenceMs: r.convergenceMs === undefined ? 'never' : String(r.convergenceMs),
    boundMs: r.boundMs,
    sentPerPeerPerS: (r.messages.published / r.nodes / seconds).toFixed(2),
    receivedPerPeerPerS: (r.messages.delivered / r.nodes / seconds).toFixed(1),
    simulatedS: seconds.toFixed(1),
    simEvents: r.simEvents,
    wallS: (wallMs / 1000).toFixed(1),
    ok: r.ok ? 'yes' : `NO: ${r.violations[0]}`
  }
}

function print (r: Row, header: boolean): void {
  const columns: Array<[keyof Row, string, number]> = [
    ['scenario', 'scenario', 8], ['peers', 'peers', 6], ['convergenceMs', 'converged (ms after T)', 23],
    ['boundMs', 'bound (ms)', 11], ['sentPerPeerPerS', 'sent/peer/s', 12], ['receivedPerPeerPerS', 'received/peer/s', 16],
    ['simulatedS', 'simulated (s)', 14], ['simEvents', 'sim events', 11], ['wallS', 'wall (s)', 9], ['ok', 'invariants', 10]
  ]
  if (header) {
    console.log(columns.map(([, title, width]) => title.padStart(width)).join(' '))
    console.log(columns.map(([, , width]) => '-'.repeat(width)).join(' '))
  }
  console.log(columns.map(([key, , width]) => String(r[key]).padStart(width)).join(' '))
}
