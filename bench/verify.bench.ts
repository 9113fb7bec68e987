/**
 * What verification costs and how fast it catches a liar (`npm run bench verify`). Prints numbers,
 * asserts nothing but the runs' results (STYLE.md §17).
 *
 * Everything runs on 127.0.0.1: a driver and three workers (`rhizome node start` child processes,
 * two task slots each). The same functions (test/fixtures/runs/fns.ts) are deployed three times,
 * once per verification policy — replicas 1 (the baseline, measured in the same run), replicas 1
 * with spot checks at 0.1, and replicas 3 with quorum 2 — and each is timed on:
 *  - a fan of FAN_TASKS independent tasks (one workflow run): tasks per second;
 *  - a chain of CHAIN_HOPS tasks, each awaiting the last: ms per hop (what verification adds to
 *    every dependent step).
 * Each run uses arguments no earlier run used, so nothing is answered from a stored result.
 *
 * Then detection: for each lie rate, a fresh lying peer (test/helpers/lying-peer-main.ts: a real
 * peer that runs its tasks and answers a seeded fraction wrongly under valid signatures) joins,
 * and runs of DETECT_TASKS tasks go until the driver has banned it (or DETECT_RUNS_MAX runs): the
 * row shows how many tasks it ran before it was excluded, how many lies it told, and how many
 * wrong results were accepted and later replaced (spot checks) — under both checking policies.
 */
import { fileURLToPath } from 'node:url'
import { TestNetwork, runCli, waitFor } from '../test/helpers/peers.ts'
import { startLyingPeer } from '../test/helpers/lying-peer.ts'
import { deployWorkflow, runToEnd, startRun } from '../test/helpers/workloads.ts'
import { formatMs, printTable, progress } from './helpers.ts'
import type { LyingPeer } from '../test/helpers/lying-peer.ts'
import type { RunReport, ReputationView } from '../src/api/types.ts'
import type { TestPeer } from '../test/helpers/peers.ts'

const FNS = fileURLToPath(new URL('../test/fixtures/runs/fns.ts', import.meta.url))
/** Enough tasks that the fan's time is mostly the steady state, seconds per policy. */
const FAN_TASKS = 300
/** Enough hops for a stable mean per hop. */
const CHAIN_HOPS = 30
const DETECT_TASKS = 100
const DETECT_RUNS_MAX = 5
const LIE_RATES = [1, 0.5, 0.2, 0.05]
const RUN_TIMEOUT_MS = 180_000

const POLICIES: Array<{ label: string, flags: string[] }> = [
  { label: 'replicas 1 (baseline)', flags: ['--verify-replicas', '1'] },
  { label: 'replicas 1 + spot checks 0.1', flags: ['--verify-replicas', '1', '--spot-check-rate', '0.1'] },
  { label: 'replicas 3, quorum 2', flags: ['--verify-replicas', '3', '--quorum', '2'] }
]

/** The workflows, on functions B (x·2) and C (x+1); `base` keeps each run's task ids new. */
function flowSource (fnId: string): string {
  return `import { workflow, remote } from 'rhizome:workflow'
const B = remote('${fnId}', 'B')
const C = remote('${fnId}', 'C')
export const fan = workflow(async (n, base) => {
  const parts = await Promise.all(Array.from({ length: n }, (_, i) => B(base + i)))
  return parts.reduce((sum, v) => sum + v, 0)
})
export const chain = workflow(async (n, base) => {
  let x = base
  for (let i = 0; i < n; i++) x = await C(x)
  return x
})
`
}

let net: TestNetwork | undefined
const liars: LyingPeer[] = []
let base = 1_000_000

async function deploy (driver: TestPeer, flags: string[]): Promise<{ fnId: string, workflow: string }> {
  const deployed = await runCli(['deploy', FNS, '--replicas', '4', ...flags, '--json', '--data-dir', driver.dataDir], { timeoutMs: 60_000 })
  if (deployed.code !== 0) throw new Error(`deploy failed: ${deployed.stderr}`)
  const fnId = (JSON.parse(deployed.stdout) as { cid: string }).cid
  return { fnId, workflow: await deployWorkflow(driver, 'verify-bench', flowSource(fnId), ['chain', 'fan']) }
}

async function timed (driver: TestPeer, workflow: string, exportName: 'fan' | 'chain', n: number, wrongOk = false): Promise<{ ms: number, report: RunReport, wrong: boolean }> {
  const first = base
  base += 10_000
  const { report } = await runToEnd(driver, await startRun(driver, workflow, exportName, [n, first]), RUN_TIMEOUT_MS)
  if (report.status !== 'finished') throw new Error(`${exportName} run ${report.status}: ${JSON.stringify(report.error)}`)
  const expected = exportName === 'fan' ? n * (2 * first + n - 1) : first + n
  const wrong = report.result !== expected
  if (wrong && !wrongOk) throw new Error(`${exportName}(${n}) gave ${String(report.result)}, not ${expected}`)
  return { ms: (report.finishedMs ?? report.startedMs) - report.startedMs, report, wrong }
}

/** Answers per task: the accepted one, and every other peer's that was compared with it. */
function answersPerTask (report: RunReport): number {
  let answers = 0
  for (const t of report.tasks) answers += 1 + (t.agreed?.length ?? 0) + (t.disagreed?.length ?? 0)
  return answers / Math.max(1, report.tasks.length)
}

async function costRow (driver: TestPeer, label: string, workflow: string, baseline: { fan: number, hop: number } | undefined): Promise<{ row: string[], fan: number, hop: number }> {
  progress(`cost: ${label}`)
  const fan = await timed(driver, workflow, 'fan', FAN_TASKS)
  const chain = await timed(driver, workflow, 'chain', CHAIN_HOPS)
  const perSecond = FAN_TASKS / (fan.ms / 1000)
  const hop = chain.ms / CHAIN_HOPS
  const ref = baseline ?? { fan: perSecond, hop }
  const added = hop - ref.hop
  return {
    fan: perSecond,
    hop,
    row: [label, `${perSecond.toFixed(0)}/s`, `${(perSecond / ref.fan).toFixed(2)}×`, formatMs(hop), `${added >= 0 ? '+' : '−'}${formatMs(Math.abs(added))}`, answersPerTask(fan.report).toFixed(2), String(fan.report.verification?.checks ?? 0)]
  }
}

/**
 * The policies in turn on one driver, then replicas 3 again on a driver that has never seen the
 * workers (every task on 3 peers until they earn a record), then on that driver once they have,
 * then the baseline again (how much the numbers move between runs of one thing).
 */
async function costRows (driver: TestPeer, fresh: TestPeer): Promise<string[][]> {
  const rows: string[][] = []
  const flows: string[] = []
  for (const policy of POLICIES) {
    const { workflow } = await deploy(driver, policy.flags)
    await timed(driver, workflow, 'fan', 24) // warm: code loaded on every worker
    flows.push(workflow)
  }
  const baseline = await costRow(driver, POLICIES[0].label, flows[0], undefined)
  rows.push(baseline.row)
  rows.push((await costRow(driver, POLICIES[1].label, flows[1], baseline)).row)
  rows.push((await costRow(fresh, `${POLICIES[2].label}, peers without a record`, flows[2], baseline)).row)
  rows.push((await costRow(fresh, `${POLICIES[2].label}, after that run`, flows[2], baseline)).row)
  rows.push((await costRow(driver, `${POLICIES[0].label}, again`, flows[0], baseline)).row)
  return rows
}

async function detectRow (driver: TestPeer, peers: TestPeer[], workflow: string, fnId: string, lieRate: number, label: string): Promise<string[]> {
  const liar = await startLyingPeer(net!, { lieRate, seed: `bench-${label}-${lieRate}`, bootstrap: driver.tcpAddr, slots: 2 })
  liars.push(liar)
  await waitFor('the liar to be seen with free slots', async () => {
    for (const p of peers) {
      const view = (await p.api<{ peers: Array<{ peerId: string, state: string, capacity: { slotsFree: number } }> }>('/v1/peers')).peers
      if (view.find(x => x.peerId === liar.peerId && x.state === 'alive' && x.capacity.slotsFree > 0) === undefined) return false
    }
    return true
  }, 60_000, 200)
  const warm = await runCli(['call', fnId, 'C', '1000000', '--on', liar.peerId, '--data-dir', driver.dataDir], { timeoutMs: 60_000 })
  if (warm.code !== 0) throw new Error(`warming the liar: ${warm.stderr}`)
  const toldAtStart = liar.told()
  const liesAtStart = liar.lies().length
  let replaced = 0
  let tasks = 0
  let banned = false
  let wrongRuns = 0
  for (let runs = 0; runs < DETECT_RUNS_MAX && !banned; runs++) {
    const { report, wrong } = await timed(driver, workflow, 'fan', DETECT_TASKS, true)
    if (wrong) wrongRuns += 1
    tasks += DETECT_TASKS
    replaced += report.verification?.disproven.length ?? 0
    const record = (await driver.api<{ peers: ReputationView[] }>('/v1/reputation')).peers.find(p => p.peerId === liar.peerId)
    banned = record?.banned === true
  }
  const ran = liar.told() - toldAtStart
  const lies = liar.lies().length - liesAtStart
  await liar.stop()
  liars.splice(liars.indexOf(liar), 1)
  return [label, String(lieRate), banned ? String(ran) : `not within ${tasks}`, String(lies), String(replaced), String(wrongRuns), String(tasks)]
}

async function main (): Promise<void> {
  net = await TestNetwork.create()
  const quiet = ['--slots', '2', '--log-level', 'warn']
  const driver = await net.addPeer(quiet)
  const workers = await Promise.all([1, 2, 3].map(async () => await net!.addPeer(['--bootstrap', driver.tcpAddr, ...quiet])))
  const peers = [driver, ...workers]
  await waitFor('the peers to meet', async () => {
    for (const p of peers) if ((await p.peers()).filter(x => x.state === 'alive').length < peers.length - 1) return false
    return true
  }, 60_000, 200)

  // A second driver that has never worked with anyone: no reputation records.
  const fresh = await net.addPeer(['--bootstrap', driver.tcpAddr, '--slots', '1', '--log-level', 'warn'])
  await waitFor('the new driver to see the others', async () => (await fresh.peers()).filter(x => x.state === 'alive').length >= peers.length, 60_000, 200)
  const cost = await costRows(driver, fresh)
  printTable('Verification: what it costs (1 driver + 3 workers, 2 slots each, 127.0.0.1)',
    ['policy', `fan of ${FAN_TASKS}`, 'vs baseline', 'chain, per hop', 'vs baseline', 'answers per task', 'spot checks'], cost,
    ['fan: one workflow run of independent no-op tasks, tasks ÷ run time; chain: run time ÷ hops; same peers, one run each.',
      'answers per task: the accepted one plus every other peer\'s compared with it (quorum members, spot checks).',
      'adaptive replication: under replicas 3 a peer with a record of agreement (10 agreements, score ≥ 0.9, no lie) runs a task alone, spot-checked at 0.1;',
      '"peers without a record" is a driver that never worked with the workers; "after that run" is the same driver once they have one.'])

  const detect: string[][] = []
  for (const policy of POLICIES.slice(1)) {
    const { fnId, workflow } = await deploy(driver, policy.flags)
    for (const rate of LIE_RATES) {
      progress(`detection: ${policy.label}, lie rate ${rate}`)
      detect.push(await detectRow(driver, peers, workflow, fnId, rate, policy.label))
    }
  }
  printTable('Verification: detecting a liar (a lying peer joins the 4 honest ones)',
    ['policy', 'lie rate', 'tasks it ran until excluded', 'lies told', 'wrong results accepted, then replaced', 'runs that ended wrong', `tasks run (fans of ${DETECT_TASKS})`], detect,
    ['excluded: the driver holds a lie proof against it (banned; no further task). A lie under quorum is never accepted; under spot checks it is accepted until caught,',
      'then every result the liar gave is checked again and each wrong one replaced — but only in runs still going: a run that ended before the catch keeps its result.'])
}

async function cleanUp (): Promise<void> {
  for (const liar of liars) await liar.stop().catch(() => {})
  await net?.close()
}

main().then(cleanUp, async (err: unknown) => {
  console.error(err)
  await cleanUp()
  process.exitCode = 1
})
