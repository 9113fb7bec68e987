/**
 * Durable runs: what a durable step costs, and how fast a run survives its driver. Prints
 * numbers, asserts nothing but results' correctness (STYLE.md §17).
 *
 *   node bench/durable.bench.ts [--runs N] [--chain N] [--entries N] [--dask-runs N] [--no-dask]
 *
 * 1. The durable step alone (bench/durable-memo.ts): three HomeRun machines with SQLite replicas
 *    (synchronous=FULL) in one process, handleLocalEntry → deliver, p50/p99 over `--entries`
 *    (2,000); the same with SQLite in memory shows what the disk costs.
 * 2. On three real peers (`rhizome node start`, 127.0.0.1): a chain of `--chain` (300) no-op
 *    tasks, each awaiting the last, as a durable run (every top-level run is) and as a child run
 *    (child runs are not durable: no memo, no gate), next to one `POST /v1/call` at a time. From
 *    the run's report, per hop: a task's `finishedMs` (its `run:task:done`) → the next task's
 *    `queuedMs` (its `run:task:scheduled`) is the durable step plus the code's activation (1 ms
 *    resolution: the run service stamps Date.now()).
 * 3. Takeover, `--runs` (20) times: a run of 60 tasks of 20 ms (20 rounds of 3) is started on a
 *    peer; when its driver has seen 20 tasks done it is SIGKILLed. From the survivors' event streams:
 *    kill → `run:driver` with epoch > 1 → the new driver's first `run:task:scheduled`/`started` →
 *    `run:finished`; the peers' logs ("task done") count tasks executed twice. The killed peer is
 *    restarted (same data dir) before the next run, so each run has a home set of three.
 * 4. The same driver-kill scenario on Dask (bench/dask-driver-kill.ts), when installed.
 */
import { performance } from 'node:perf_hooks'
import { SseDecoder } from '../src/api/events.ts'
import type { ProgressEvent } from '../src/api/events.ts'
import type { RunReport, RunSummary } from '../src/api/types.ts'
import { TestNetwork, waitFor } from '../test/helpers/peers.ts'
import type { TestPeer } from '../test/helpers/peers.ts'
import { deployTaskFunction, deployWorkflow, startRun } from '../test/helpers/workloads.ts'
import { printDaskDriverKill, runDaskDriverKill } from './dask-driver-kill.ts'
import type { DaskKillResult } from './dask-driver-kill.ts'
import { MEMO_ENTRIES_DEFAULT, measureMemoSteps } from './durable-memo.ts'
import type { MemoStepResult } from './durable-memo.ts'
import { formatMs, printTable, progress, sleep, summarize } from './helpers.ts'
import type { Summary } from './helpers.ts'
import { calibrateSandboxBurn } from './workflow-runs.ts'

/** Takeover runs: p50 over 20, as the issue asks; each takes ~4 s (a run, a takeover, a peer restart). */
const TAKEOVER_RUNS_DEFAULT = 20
/** The takeover run: 60 tasks of 20 ms, 3 at a time, killed after 20 are done (a third of the way). */
const TAKEOVER_TASKS = 60
const TAKEOVER_WIDTH = 3
const TAKEOVER_TASK_MS = 20
const KILL_AFTER_DONE = 20
/** Chain hops: enough for a stable p99, small enough to leave the 5-minute budget to the takeovers. */
const CHAIN_HOPS_DEFAULT = 300
/** Direct calls for the baseline, and the time they may take. */
const CALLS = 300
const CALL_BUDGET_MS = 20_000
/**
 * Dask runs: each takes 15–20 s (three cluster start-ups, three graphs); 3 keep this file within
 * bench/run.ts's 5 minutes next to 20 takeovers. `node bench/dask-driver-kill.ts --runs 10` for more.
 */
const DASK_RUNS_DEFAULT = 3
/** Longest one run (chain or takeover) may take before the benchmark gives up on it. */
const RUN_TIMEOUT_MS = 60_000
/** Asking a home-set peer for a run's events until it knows the run: 5 s in all. */
const FOLLOW_RETRIES = 250
const FOLLOW_RETRY_MS = 20
/** Task slots per peer: the 3 tasks of a round run at once, one per peer or two on one. */
const SLOTS = 2

const argv = process.argv.slice(2)
function option (name: string, fallback: number): number {
  const at = argv.indexOf(name)
  if (at < 0) return fallback
  const value = Number(argv[at + 1])
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} takes a whole number, got ${String(argv[at + 1])}`)
  return value
}
const RUNS = option('--runs', TAKEOVER_RUNS_DEFAULT)
const CHAIN_HOPS = option('--chain', CHAIN_HOPS_DEFAULT)
const ENTRIES = option('--entries', MEMO_ENTRIES_DEFAULT)
const DASK_RUNS = argv.includes('--no-dask') ? 0 : option('--dask-runs', DASK_RUNS_DEFAULT)

function bundleSource (fnId: string): string {
  return `// Generated workflow bundle: a chain, the same chain as a (non-durable) child run, and rounds of tasks.
import { workflow, remote } from 'rhizome:workflow'
const task = remote(${JSON.stringify(fnId)}, 'task')

export const chain = workflow(async (tag, hops) => {
  let x = tag
  for (let i = 0; i < hops; i++) x = await task(tag + ':hop' + i, 0, x)
  return x
})

export const childChain = workflow(async (tag, hops) => await chain(tag, hops))

export const rounds = workflow(async (tag, n, width, ms) => {
  let done = 0
  for (let i = 0; i < n; i += width) {
    const outs = await Promise.all(Array.from({ length: Math.min(width, n - i) }, (_, k) => task(tag + ':t' + (i + k), ms)))
    done += outs.length
  }
  return done
})
`
}

// ---------------------------------------------------------------------------------------------
// Events

interface Follower { events: ProgressEvent[], done: Promise<void> }

/** Follow a run's event stream on `peer` until it ends, `signal` aborts, or the peer dies; never throws. */
function follow (peer: TestPeer, runId: string, signal: AbortSignal, onEvent: (e: ProgressEvent) => void = () => {}): Follower {
  const events: ProgressEvent[] = []
  const done = (async () => {
    // Opening a run waits for a majority of its home set: the third peer may learn of it a moment later.
    let res = await fetch(`${peer.apiUrl}/v1/runs/${runId}/events`, { headers: peer.authorized(), signal })
    for (let i = 0; res.status === 404 && i < FOLLOW_RETRIES; i++) {
      await res.body?.cancel()
      await sleep(FOLLOW_RETRY_MS)
      res = await fetch(`${peer.apiUrl}/v1/runs/${runId}/events`, { headers: peer.authorized(), signal })
    }
    if (res.status !== 200) throw new Error(`HTTP ${res.status} ${await res.text()}`)
    const decoder = new SseDecoder()
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      for (const event of decoder.push(chunk) as ProgressEvent[]) { events.push(event); onEvent(event) }
    }
  })().catch(() => {})
  return { events, done }
}

const at = (e: ProgressEvent): number => (e as { atMs: number }).atMs

/**
 * The chain's per-hop gaps, from its run report (the same clock and whole ms as its events): each
 * task's `queuedMs` is when the driver scheduled it, `finishedMs` when its answer came. Hop i → i+1:
 * finished(i) → queued(i+1) is the durable step plus the code's activation; queued → queued the hop.
 */
function hopGaps (report: RunReport): { activation: number[], hop: number[] } {
  const tasks = [...report.tasks].sort((x, y) => x.queuedMs - y.queuedMs)
  const activation: number[] = []
  for (let i = 0; i + 1 < tasks.length; i++) activation.push(tasks[i + 1].queuedMs - (tasks[i].finishedMs ?? Number.NaN))
  return { activation, hop: tasks.slice(1).map((t, i) => t.queuedMs - tasks[i].queuedMs) }
}

// ---------------------------------------------------------------------------------------------
// The network

async function allAlive (peers: TestPeer[]): Promise<void> {
  await waitFor('the peers to see each other alive', async () => {
    for (const p of peers) if ((await p.peers()).filter(x => x.state === 'alive').length < peers.length - 1) return false
    return true
  }, 60_000, 100)
}

async function startNetwork (): Promise<{ net: TestNetwork, peers: TestPeer[] }> {
  const net = await TestNetwork.create()
  const first = await net.addPeer(['--slots', String(SLOTS)])
  const rest = [await net.addPeer(['--bootstrap', first.tcpAddr, '--slots', String(SLOTS)]), await net.addPeer(['--bootstrap', first.tcpAddr, '--slots', String(SLOTS)])]
  const peers = [first, ...rest]
  await allAlive(peers)
  return { net, peers }
}

// ---------------------------------------------------------------------------------------------
// 2. Chains

interface ChainResult { durable: ChainRun, child: ChainRun, calls: number[] }
interface ChainRun { msPerHop: number, activation: number[], hop: number[], ok: boolean }

async function callBaseline (from: TestPeer, to: TestPeer, fn: string): Promise<number[]> {
  const times: number[] = []
  const deadline = performance.now() + CALL_BUDGET_MS
  for (let i = 0; i < CALLS && performance.now() < deadline; i++) {
    const start = performance.now()
    await from.api('/v1/call', { method: 'POST', body: JSON.stringify({ fn, export: 'task', args: [`call${i}:${process.pid}`, 0], on: to.peerId }) })
    times.push(performance.now() - start)
  }
  return times
}

/** Run a chain to its end; `measured(runId)` names the run whose tasks are the chain (itself, or its child). */
async function chainRun (driver: TestPeer, workflow: string, exportName: string, tag: string, measured: (runId: string) => Promise<string>): Promise<ChainRun> {
  const runId = await startRun(driver, workflow, exportName, [tag, CHAIN_HOPS])
  await follow(driver, runId, AbortSignal.timeout(RUN_TIMEOUT_MS)).done
  const report = await driver.api<RunReport>(`/v1/runs/${runId}`)
  const id = await measured(runId)
  const chain = id === runId ? report : await driver.api<RunReport>(`/v1/runs/${id}`)
  const { activation, hop } = hopGaps(chain)
  const ok = report.status === 'finished' && typeof report.result === 'string' && chain.tasks.length === CHAIN_HOPS
  return { msPerHop: (chain.finishedMs! - chain.startedMs) / CHAIN_HOPS, activation, hop, ok }
}

async function measureChains (peers: TestPeer[], fnId: string, workflow: string): Promise<ChainResult> {
  const [, driver, worker] = peers
  progress(`direct no-op calls through the API (${CALLS})`)
  const calls = await callBaseline(driver, worker, fnId)
  progress(`a chain of ${CHAIN_HOPS} no-op tasks, durable (top-level run)`)
  const durable = await chainRun(driver, workflow, 'chain', `d${process.pid}`, async id => id)
  progress(`the same chain as a child run (not durable)`)
  const child = await chainRun(driver, workflow, 'childChain', `c${process.pid}`, async (parentId) => {
    // The parent's one child: the `chain` run that started with it or after.
    const parent = await driver.api<RunReport>(`/v1/runs/${parentId}`)
    const { runs } = await driver.api<{ runs: RunSummary[] }>('/v1/runs?limit=100')
    const found = runs.filter(r => r.export === 'chain' && r.startedMs >= parent.startedMs).sort((a, b) => b.startedMs - a.startedMs)[0]
    if (found === undefined) throw new Error(`no child run of ${parentId} in the run list`)
    return found.runId
  })
  return { durable, child, calls }
}

// ---------------------------------------------------------------------------------------------
// 3. Takeovers

interface TakeoverRun {
  doneBeforeKill: number
  /** ms after the SIGKILL (undefined: not seen). */
  newDriver?: number
  firstScheduled?: number
  firstStarted?: number
  finished?: number
  epoch?: number
  memoEntries?: number
  /** Tasks of the run executed more than once, by the peers' logs; executions in all. */
  rerun: number
  /** Of those, the ones first executed on a survivor (whose stored result could have answered). */
  rerunSurvivor: number
  /** Of those, the ones executed again by the same survivor (its stored result was not used). */
  rerunSamePeer: number
  executions: number
  distinct: number
  ok: boolean
  error?: string
}

/** The peers' logs over one run: task id → the peers that executed it ("task done"), in log order. */
function executions (peers: TestPeer[], logs: string[]): Map<string, string[]> {
  const byTask = new Map<string, Array<{ peer: string, t: string }>>()
  logs.forEach((text, i) => {
    for (const line of text.split('\n')) {
      if (!line.includes('"msg":"task done"')) continue
      const { task, t } = JSON.parse(line) as { task: string, t: string }
      byTask.set(task, [...byTask.get(task) ?? [], { peer: peers[i].peerId, t }])
    }
  })
  return new Map([...byTask].map(([task, runs]) => [task, runs.sort((x, y) => x.t.localeCompare(y.t)).map(r => r.peer)]))
}

const logOf = (p: TestPeer): string => p.stdout + p.stderr

async function killWhenDone (driver: TestPeer, runId: string): Promise<{ doneBeforeKill: number, killAt: number }> {
  let done = 0
  let killAt = 0
  const controller = new AbortController()
  const killed = new Promise<void>((resolve) => {
    follow(driver, runId, AbortSignal.any([controller.signal, AbortSignal.timeout(RUN_TIMEOUT_MS)]), (e) => {
      if (e.type !== 'run:task:done' || killAt !== 0) return
      if (++done < KILL_AFTER_DONE) return
      killAt = Date.now()
      driver.child?.kill('SIGKILL')
      resolve()
    }).done.then(resolve, resolve)
  })
  await killed
  controller.abort()
  if (killAt === 0) throw new Error(`the driver never saw ${KILL_AFTER_DONE} tasks done`)
  return { doneBeforeKill: done, killAt }
}

async function takeoverOnce (peers: TestPeer[], workflow: string, k: number): Promise<TakeoverRun> {
  const driver = peers[1 + (k % 2)]
  const survivors = peers.filter(p => p !== driver)
  const marks = peers.map(p => logOf(p).length)
  const runId = await startRun(driver, workflow, 'rounds', [`k${k}:${process.pid}`, TAKEOVER_TASKS, TAKEOVER_WIDTH, TAKEOVER_TASK_MS])
  const controller = new AbortController()
  const timeout = AbortSignal.timeout(RUN_TIMEOUT_MS)
  const followers = survivors.map(p => follow(p, runId, AbortSignal.any([controller.signal, timeout])))
  const { doneBeforeKill, killAt } = await killWhenDone(driver, runId)
  const driverLog = logOf(driver).slice(marks[peers.indexOf(driver)])
  // Each survivor's stream ends with run:finished: the new driver's when its outcome is durable,
  // the other's when its replica has the outcome (either may come first). Bounded by `timeout`.
  await Promise.all(followers.map(async f => await f.done))
  controller.abort()
  const logs = peers.map((p, i) => p === driver ? driverLog : logOf(p).slice(marks[i]))
  const run = summarizeTakeover(followers.map(f => f.events), killAt, doneBeforeKill, executions(peers, logs), driver.peerId)
  const ender = survivors.find((_, i) => followers[i].events.some(e => e.type === 'run:finished'))
  if (ender !== undefined) {
    const report = await ender.api<RunReport>(`/v1/runs/${runId}`)
    run.ok = report.status === 'finished' && report.result === TAKEOVER_TASKS
    if (!run.ok) run.error = `${report.status}: ${JSON.stringify(report.error ?? report.result)}`
  } else {
    run.error = `no survivor finished the run within ${RUN_TIMEOUT_MS / 1000} s`
  }
  // Back to three peers for the next run: the same peer (same key and data dir) comes back.
  await driver.start()
  await allAlive(peers)
  return run
}

function summarizeTakeover (streams: ProgressEvent[][], killAt: number, doneBeforeKill: number, ran: Map<string, string[]>, killed: string): TakeoverRun {
  const again = [...ran.values()].filter(peers => peers.length > 1)
  const run: TakeoverRun = {
    doneBeforeKill,
    rerun: again.length,
    rerunSurvivor: again.filter(peers => peers[0] !== killed).length,
    rerunSamePeer: again.filter(peers => peers[0] !== killed && peers.indexOf(peers[0], 1) > 0).length,
    executions: [...ran.values()].reduce((s, peers) => s + peers.length, 0),
    distinct: ran.size,
    ok: false
  }
  for (const events of streams) {
    const driverEvent = events.find((e): e is Extract<ProgressEvent, { type: 'run:driver' }> => e.type === 'run:driver' && e.epoch > 1)
    if (driverEvent === undefined) continue
    const after = events.filter(e => at(e) >= at(driverEvent))
    const first = (type: ProgressEvent['type']): number | undefined => { const e = after.find(x => x.type === type); return e === undefined ? undefined : at(e) - killAt }
    Object.assign(run, { newDriver: at(driverEvent) - killAt, epoch: driverEvent.epoch, memoEntries: driverEvent.memoEntries, firstScheduled: first('run:task:scheduled'), firstStarted: first('run:task:started'), finished: first('run:finished') })
  }
  // The end as the first home-set peer to learn of it tells it, if the new driver's stream did not.
  const ends = streams.flatMap(events => events.filter(e => e.type === 'run:finished').map(e => at(e) - killAt))
  if (run.finished === undefined && ends.length > 0) run.finished = Math.min(...ends)
  return run
}

async function measureTakeovers (peers: TestPeer[], workflow: string): Promise<TakeoverRun[]> {
  const runs: TakeoverRun[] = []
  for (let k = 0; k < RUNS; k++) {
    progress(`takeover ${k + 1} of ${RUNS}`)
    const run = await takeoverOnce(peers, workflow, k).catch((err: unknown): TakeoverRun => ({ doneBeforeKill: 0, rerun: 0, rerunSurvivor: 0, rerunSamePeer: 0, executions: 0, distinct: 0, ok: false, error: (err as Error).message }))
    if (run.error !== undefined) progress(`  ${run.error}`)
    runs.push(run)
  }
  return runs
}

// ---------------------------------------------------------------------------------------------
// Tables

const ms2 = (s: Summary): string => `${formatMs(s.p50)} / ${formatMs(s.p99)}`

function printStep (memo: { disk: MemoStepResult, memory: MemoStepResult } | undefined, chains: ChainResult | undefined): void {
  const rows: string[][] = []
  if (memo !== undefined) {
    const per = (r: MemoStepResult): string => `${(r.commits / r.step.n).toFixed(1)} commits, ${(r.messages / r.step.n).toFixed(1)} msgs (${Math.round(r.messageBytes / Math.max(1, r.messages))} B)`
    rows.push([`memo step alone, SQLite files, synchronous=FULL (n=${memo.disk.step.n})`, ms2(memo.disk.step), per(memo.disk)])
    rows.push([`memo step alone, SQLite in memory (n=${memo.memory.step.n})`, ms2(memo.memory.step), per(memo.memory)])
  }
  if (chains !== undefined) {
    const calls = summarize(chains.calls)
    rows.push([`one POST /v1/call at a time, no-op, peer → peer (n=${calls.n})`, ms2(calls), '—'])
    for (const [label, run] of [['durable', chains.durable], ['child run, not durable', chains.child]] as const) {
      rows.push([`chain of ${CHAIN_HOPS}, ${label}: per hop${run.ok ? '' : ' (WRONG result)'}`, ms2(summarize(run.hop)), `mean ${run.msPerHop.toFixed(2)} ms`])
      rows.push([`  ${label}: task done → next scheduled`, ms2(summarize(run.activation)), '—'])
    }
  }
  printTable('1. A durable step: memo entry persisted by 2 of 3 home-set peers (p50 / p99)', ['what', 'p50 / p99', 'per step'], rows, [
    'Anchors: Restate ~3 ms per step, Temporal ~50 ms per activity; aim under 1 ms on loopback.',
    'Memo step alone: 3 HomeRun machines in one process, messages through dag-cbor and the home codec; the',
    'majority path is two commits (driver\'s replica, one other), the third peer writes outside the sample.',
    'Chain times come from the run reports (Date.now(), whole ms); "done → next scheduled" is the durable step',
    'plus the workflow code\'s activation; the child run skips the memo, so the difference is the durable step.'
  ])
}

function takeoverRows (runs: TakeoverRun[]): string[][] {
  const ok = runs.filter(r => r.newDriver !== undefined)
  const row = (what: string, values: Array<number | undefined>, format: (x: number) => string): string[] => {
    const s = summarize(values.filter((v): v is number => v !== undefined))
    return [what, format(s.p50), format(s.min), format(s.max), `${s.n}`]
  }
  const count = (x: number): string => Number.isFinite(x) ? x.toFixed(0) : '—'
  return [
    row('tasks done before the kill (driver\'s events)', runs.map(r => r.doneBeforeKill), count),
    row('kill → new driver (run:driver, epoch > 1)', ok.map(r => r.newDriver), formatMs),
    row('kill → new driver\'s first task scheduled', ok.map(r => r.firstScheduled), formatMs),
    row('kill → new driver\'s first task started', ok.map(r => r.firstStarted), formatMs),
    row('kill → run finished', ok.map(r => r.finished), formatMs),
    row('memo entries the new driver resumed from', ok.map(r => r.memoEntries), count),
    row('tasks executed more than once (logs)', runs.map(r => r.rerun), count),
    row('  of which first executed on a survivor', runs.map(r => r.rerunSurvivor), count),
    row('  … and executed again by that same survivor', runs.map(r => r.rerunSamePeer), count),
    row('executions of the run\'s 60 tasks (logs)', runs.map(r => r.executions), count)
  ]
}

function printTakeover (runs: TakeoverRun[]): void {
  const failed = runs.filter(r => !r.ok)
  printTable(`2. Driver loss on Rhizome: driver SIGKILLed after ${KILL_AFTER_DONE} of ${TAKEOVER_TASKS} tasks of ${TAKEOVER_TASK_MS} ms (${runs.length} runs)`,
    ['what', 'p50', 'min', 'max', 'n'], takeoverRows(runs), [
      `3 peers (${SLOTS} slots each), home set of 3, the peers' lease (1 s, renew 250, grace 100, stagger 100: src/net/home-service.ts PEER_LEASE_TIMINGS); times from the SIGKILL.`,
      `Runs finished with the right result: ${runs.length - failed.length} of ${runs.length}${failed.length > 0 ? ` (${failed.map(r => r.error ?? '').join('; ')})` : ''}.`
    ])
}

function printSideBySide (runs: TakeoverRun[], dask: DaskKillResult, note: string): void {
  const p50 = (values: Array<number | undefined>): number => summarize(values.filter((v): v is number => v !== undefined)).p50
  printTable('3. Driver loss side by side (p50)', ['what', 'Rhizome', 'Dask'], [
    ['graph', `${TAKEOVER_TASKS} × ${TAKEOVER_TASK_MS} ms, killed after ${KILL_AFTER_DONE} done`, `${dask.tasks} × ${dask.taskMs} ms, killed at ~half`],
    ['kill → first task run again (takeover)', formatMs(p50(runs.map(r => r.firstStarted))), formatMs(dask.firstTask.p50)],
    ['kill → work done', formatMs(p50(runs.map(r => r.finished))), formatMs(dask.done.p50)],
    ['finished tasks re-run', p50(runs.map(r => r.rerun)).toFixed(0), dask.rerun.p50.toFixed(0)],
    ['what the client does', 'nothing (follows the run on a survivor)', 'resubmits the graph']
  ], [note])
}

// ---------------------------------------------------------------------------------------------

async function main (): Promise<void> {
  progress(`the durable step alone: ${ENTRIES} entries, 3 home-set machines, SQLite files then memory`)
  const memo = ENTRIES > 0 ? await measureMemoSteps(ENTRIES) : undefined
  progress('starting 3 peers')
  const { net, peers } = await startNetwork()
  let takeovers: TakeoverRun[] = []
  try {
    const { iterationsPerMs } = await calibrateSandboxBurn(peers[0], peers[1], peers.length)
    const fnId = await deployTaskFunction(peers[0], iterationsPerMs, peers.length)
    const workflow = await deployWorkflow(peers[0], 'durable-bench', bundleSource(fnId), ['chain', 'childChain', 'rounds'])
    // Each table is printed as soon as its numbers are in: a file stopped at bench/run.ts's time limit keeps them.
    printStep(memo, CHAIN_HOPS > 0 ? await measureChains(peers, fnId, workflow) : undefined)
    takeovers = await measureTakeovers(peers, workflow)
  } finally {
    await net.close()
  }
  printTakeover(takeovers)
  const { dask, note } = await dask3()
  if (dask !== undefined) printSideBySide(takeovers, dask, note)
  else process.stdout.write(`  ${note}\n`)
  if (dask !== undefined) printDaskDriverKill(dask)
}

async function dask3 (): Promise<{ dask?: DaskKillResult, note: string }> {
  if (DASK_RUNS === 0) return { note: 'Dask: skipped (--no-dask)' }
  try {
    const dask = await runDaskDriverKill({ runs: DASK_RUNS, onRun: (run, runs) => progress(`Dask driver kill: run ${run} of ${runs}`) })
    if (dask === undefined) return { note: 'Dask not installed (apt-get install python3-distributed; bench/install-dask.sh)' }
    return { dask, note: `Dask ${dask.distributed}: ${dask.workers} workers, scheduler SIGKILLed, restarted at once, graph resubmitted (${dask.runs.length} runs; details below).` }
  } catch (err) {
    return { note: `Dask failed: ${(err as Error).message}` }
  }
}

await main()
