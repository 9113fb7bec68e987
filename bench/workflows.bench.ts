/**
 * Workflow benchmark: recorded scientific workflows (WfCommons WfInstances) run as Rhizome
 * workflows on real peers, each makespan divided by the graph's lower bound, beside Dask
 * distributed running the same graphs in the same run when it is installed. Prints numbers,
 * asserts nothing but the results' correctness (STYLE.md §17).
 *
 *   node bench/workflows.bench.ts            (or: node bench/run.ts workflows)
 *
 * 1. Graphs from 10 to 1,738 tasks; each task burns its recorded runtime scaled 1 s → 1 ms of CPU
 *    and consumes its parents' outputs (bench/workloads/graph.ts). Lower bound =
 *    max(critical path, total work ÷ WORKERS): no schedule on WORKERS cores finishes sooner.
 * 2. Micro-benchmarks through a workflow: a chain of CHAIN_HOPS no-op tasks (each waits for the
 *    last: the per-task round trip of the run machinery) and FAN_TASKS independent no-op tasks.
 * Peers: one driver and two workers, each a `rhizome node start` child process with one task slot,
 * on 127.0.0.1. Dask: a LocalCluster of WORKERS processes × 1 thread (bench/dask/graphs.py).
 */
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { taskId } from '../src/wire/task-codec.ts'
import { TestNetwork, waitFor } from '../test/helpers/peers.ts'
import {
  REPO_ROOT, bounds, calibrateBurn, deployTaskFunction, deployWorkflow, evaluate, evaluateChain, loadGraph,
  microBundleSource, runToEnd, scaledMs, startRun, taskValue, workflowBundleSource
} from '../test/helpers/workloads.ts'
import { formatRate, printTable, progress, summarize } from './helpers.ts'
import type { Graph } from '../test/helpers/workloads.ts'
import type { RunReport, RunSummary } from '../src/api/types.ts'
import type { TestPeer } from '../test/helpers/peers.ts'

/** The graphs: 10 to 1,738 tasks, chain-like to 1,000-wide; Nextflow ones (no machines recorded) left out. */
const GRAPHS = [
  'helloworld/helloworld-forkjoin-10-chameleon.json',
  'pegasus/montage/montage-chameleon-2mass-005d-001.json',
  'pegasus/cycles/cycles-chameleon-2l-1c-9p-001.json',
  'pegasus/epigenomics/epigenomics-chameleon-hep-4seq-100k-001.json',
  'pegasus/seismology/seismology-chameleon-1000p-001.json',
  'pegasus/montage/montage-chameleon-2mass-05d-001.json'
]
/** 1 s of recorded runtime → 1 ms of CPU. */
const MS_PER_SECOND = 1
/** Workers in the bound and in Dask: the machine's cores, at most 2 (two worker peers, one slot each). */
const WORKERS = Math.min(2, availableParallelism())
/**
 * Calls a run keeps in flight (0: no bound). Placement sends each call at once; a peer with one
 * slot queues at most 16 more (TASK_QUEUE_PER_SLOT) and refuses the next with the retryable
 * ERR_QUEUE_FULL, tried on at most 3 peers — so a 1,000-wide graph sent all at once fails. 16
 * cannot overflow: even if placement sent every call to one peer, 1 runs and 15 wait.
 * `--inflight N` overrides.
 */
const INFLIGHT_DEFAULT = 16
const CHAIN_HOPS = 2000
const FAN_TASKS = 20_000
/** One run may issue at most 10,000 calls and one activation 4,096: the fan is child runs of this many. */
const FAN_BATCH = 4000
/** Direct API calls for the baseline, and the time they may take. */
const CALLS = 300
const CALL_BUDGET_MS = 20_000
/** Longest a graph run may take, and the micro runs; past it the benchmark reports a time-out. */
const GRAPH_TIMEOUT_MS = 60_000
const MICRO_TIMEOUT_MS = 120_000
/** The fan's time: on a busy 2-core machine 20,000 calls can take minutes; the rate is counted within it. */
const FAN_BUDGET_MS = 60_000
const DASK_TIMEOUT_MS = 240_000
/** Calibration: the burn loop is timed on a worker for this long. */
const CALIBRATE_MS = 200

const args = process.argv.slice(2)
const inflightAt = args.indexOf('--inflight')
const INFLIGHT = inflightAt >= 0 ? Number(args[inflightAt + 1]) : INFLIGHT_DEFAULT
const onlyAt = args.indexOf('--only')
const ONLY = onlyAt >= 0 ? args[onlyAt + 1] : undefined
const SKIP_DASK = args.includes('--no-dask')
const SKIP_MICRO = args.includes('--no-micro')

interface GraphRow { label: string, tasks: number, lowerBoundMs: number, criticalPathMs: number, workMs: number, rhizome?: { ms: number, ok: boolean, onDriver: number, error?: string } }

function short (label: string): string {
  return label.replace(/^.*\//, '').replace(/-chameleon|\.json$|-001/g, '')
}

async function startNetwork (): Promise<{ net: TestNetwork, driver: TestPeer, workers: TestPeer[] }> {
  const net = await TestNetwork.create()
  const quiet = ['--slots', '1', '--log-level', 'warn']
  const driver = await net.addPeer(quiet)
  const workers = await Promise.all([1, 2].map(async () => await net.addPeer(['--bootstrap', driver.tcpAddr, ...quiet])))
  const peers = [driver, ...workers]
  await waitFor('the peers to meet', async () => {
    for (const p of peers) if ((await p.peers()).filter(x => x.state === 'alive').length < peers.length - 1) return false
    return true
  }, 60_000, 200)
  return { net, driver, workers }
}

/** Loop iterations per ms inside a worker's sandbox: the slope of `spin`'s run time (fixed costs cancel out). */
async function calibrate (driver: TestPeer, worker: TestPeer, fn: string, guess: number): Promise<number> {
  const runMs = async (iterations: number): Promise<number> => {
    const times: number[] = []
    for (let i = 0; i < 3; i++) {
      const res = await driver.api<{ timings: { runMs: number } }>('/v1/call', { method: 'POST', body: JSON.stringify({ fn, export: 'spin', args: [iterations], on: worker.peerId }) })
      times.push(res.timings.runMs)
    }
    return Math.min(...times)
  }
  const big = guess * CALIBRATE_MS
  return Math.round(big / Math.max(0.001, (await runMs(big)) - (await runMs(0))))
}

async function runGraph (driver: TestPeer, fnId: string, graph: Graph): Promise<NonNullable<GraphRow['rhizome']>> {
  const workflow = await deployWorkflow(driver, short(graph.label), workflowBundleSource(fnId, graph, MS_PER_SECOND), ['dag'])
  const runId = await startRun(driver, workflow, 'dag', [INFLIGHT])
  const { report } = await runToEnd(driver, runId, GRAPH_TIMEOUT_MS)
  return {
    ms: report.finishedMs! - report.startedMs,
    ok: report.status === 'finished' && report.result === evaluate(graph),
    onDriver: report.tasks.filter(t => t.peer === driver.peerId).length,
    error: report.error?.message
  }
}

/** The same no-op task called directly, one at a time, through the API (what `rhizome call` does): the chain's baseline. */
async function callBaseline (driver: TestPeer, worker: TestPeer, fn: string): Promise<number[]> {
  const times: number[] = []
  const deadline = performance.now() + CALL_BUDGET_MS
  for (let i = 0; i < CALLS && performance.now() < deadline; i++) {
    const start = performance.now()
    await driver.api('/v1/call', { method: 'POST', body: JSON.stringify({ fn, export: 'task', args: [`call${i}`, 0], on: worker.peerId }) })
    times.push(performance.now() - start)
  }
  return times
}

async function runChain (driver: TestPeer, fnId: string, micro: string): Promise<{ ms: number, ok: boolean, hops: number[] }> {
  const runId = await startRun(driver, micro, 'chain', [CHAIN_HOPS])
  const { report } = await runToEnd(driver, runId, MICRO_TIMEOUT_MS)
  // Hop i's time: from hop i-1's answer to hop i's (each waits for the last), in chain order.
  const fn = CID.parse(fnId)
  const byId = new Map(report.tasks.map(t => [t.taskId, t]))
  const finished: number[] = []
  let x = 'start'
  for (let i = 0; i < CHAIN_HOPS; i++) {
    const t = byId.get((await taskId(fn, 'task', [`hop${i}`, 0, x])).toString())
    if (t?.finishedMs !== undefined) finished.push(t.finishedMs)
    x = taskValue(`hop${i}`, [x])
  }
  const hops = finished.slice(1).map((f, i) => f - finished[i])
  return { ms: report.finishedMs! - report.startedMs, ok: report.status === 'finished' && report.result === evaluateChain(CHAIN_HOPS), hops }
}

/**
 * The fan, bounded by FAN_BUDGET_MS: a fan still running then is cancelled, and its rate is the
 * tasks its child runs had finished by then.
 */
async function runFan (driver: TestPeer, micro: string): Promise<{ ms: number, tasks: number, complete: boolean, error?: string }> {
  // The children share the run's in-flight budget.
  const runId = await startRun(driver, micro, 'fan', [FAN_TASKS, FAN_BATCH, Math.max(1, Math.floor(INFLIGHT / Math.ceil(FAN_TASKS / FAN_BATCH)))])
  try {
    const { report } = await runToEnd(driver, runId, FAN_BUDGET_MS)
    return { ms: report.finishedMs! - report.startedMs, tasks: report.status === 'finished' ? FAN_TASKS : 0, complete: report.status === 'finished', error: report.error?.message }
  } catch (err) {
    if ((err as Error).name !== 'TimeoutError') throw err
    await driver.api(`/v1/runs/${runId}/cancel`, { method: 'POST' })
    const { runs } = await driver.api<{ runs: RunSummary[] }>('/v1/runs?limit=1000')
    let tasks = 0
    let lastMs = 0
    for (const child of runs.filter(r => r.export === 'batch')) {
      for (const t of (await driver.api<RunReport>(`/v1/runs/${child.runId}`)).tasks) {
        if (t.status !== 'accepted') continue
        tasks++
        lastMs = Math.max(lastMs, t.finishedMs ?? 0)
      }
    }
    const started = (await driver.api<RunReport>(`/v1/runs/${runId}`)).startedMs
    return { ms: lastMs - started, tasks, complete: false, error: `stopped after ${FAN_BUDGET_MS / 1000} s` }
  }
}

/** The Python with Dask distributed: Debian's package installs for /usr/bin/python3. */
function daskPython (): string | undefined {
  for (const python of ['/usr/bin/python3', 'python3']) {
    const probe = spawnSync(python, ['-c', 'import distributed'], { stdio: 'ignore', timeout: 30_000 })
    if (probe.status === 0) return python
  }
  return undefined
}

interface DaskResult {
  dask: string
  distributed: string
  python: string
  graphs: Array<{ label: string, makespanMs: number, ok: boolean }>
  chain: { msPerHop: number, p50: number, p99: number, ok: boolean }
  fan: { tasks: number, seconds: number, tasksPerSecond: number }
}

async function runDask (python: string, graphs: Graph[], dir: string): Promise<DaskResult> {
  const spec = {
    workers: WORKERS,
    graphs: graphs.map(g => {
      const index = new Map(g.tasks.map((t, i) => [t.name, i]))
      return { label: g.label, tasks: g.tasks.map(t => [t.name, scaledMs(t.runtimeS, MS_PER_SECOND), t.parents.map(p => index.get(p))]), sinks: g.sinks.map(s => index.get(s)), expected: evaluate(g) }
    }),
    micro: { chainHops: CHAIN_HOPS, chainExpected: evaluateChain(CHAIN_HOPS), fanTasks: FAN_TASKS }
  }
  const file = join(dir, 'dask-spec.json')
  await writeFile(file, JSON.stringify(spec))
  const run = spawnSync(python, [join(REPO_ROOT, 'bench', 'dask', 'graphs.py'), file], { encoding: 'utf8', timeout: DASK_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 })
  if (run.status !== 0) throw new Error(`bench/dask/graphs.py failed (${String(run.status ?? run.signal)}): ${run.stderr.slice(-2000)}`)
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as DaskResult
}

const ratio = (ms: number | undefined, bound: number): string => ms === undefined ? '—' : `${(ms / bound).toFixed(2)}×`
const msText = (ms: number | undefined): string => ms === undefined ? '—' : ms.toFixed(0)

const dir = await mkdtemp(join(tmpdir(), 'rhizome-workflows-bench-'))
let net: TestNetwork | undefined
try {
  const graphs = await Promise.all(GRAPHS.filter(g => ONLY === undefined || g.includes(ONLY)).map(async g => await loadGraph(g)))
  const rows: GraphRow[] = graphs.map(g => ({ label: g.label, tasks: g.tasks.length, ...bounds(g, MS_PER_SECOND, WORKERS) }))
  progress('starting a driver and 2 workers')
  const started = await startNetwork()
  net = started.net
  const { driver, workers } = started
  const guess = calibrateBurn()
  const probe = await deployTaskFunction(driver, guess, 3)
  const iterationsPerMs = await calibrate(driver, workers[0], probe, guess)
  progress(`burn loop: ${iterationsPerMs.toLocaleString('en-US')} iterations/ms in a worker's sandbox (${guess.toLocaleString('en-US')} in plain Node)`)
  const fnId = await deployTaskFunction(driver, iterationsPerMs, 3)

  for (const [i, graph] of graphs.entries()) {
    progress(`${short(graph.label)}: ${graph.tasks.length} tasks`)
    const result = await runGraph(driver, fnId, graph).catch((err: unknown) => ({ ms: Number.NaN, ok: false, onDriver: 0, error: (err as Error).message }))
    rows[i].rhizome = result
    progress(`  ${result.ms.toFixed(0)} ms, ${ratio(result.ms, rows[i].lowerBoundMs)} the bound${result.ok ? '' : `: WRONG (${result.error ?? 'result differs'})`}`)
  }

  let chain: Awaited<ReturnType<typeof runChain>> | undefined
  let fan: Awaited<ReturnType<typeof runFan>> | undefined
  let calls: number[] = []
  if (!SKIP_MICRO) {
    progress('direct no-op calls through the API')
    calls = await callBaseline(driver, workers[1], fnId)
    const micro = await deployWorkflow(driver, 'micro', microBundleSource(fnId), ['chain', 'batch', 'fan'])
    progress(`a chain of ${CHAIN_HOPS} no-op tasks`)
    chain = await runChain(driver, fnId, micro)
    progress(`  ${(chain.ms / CHAIN_HOPS).toFixed(2)} ms per hop`)
    progress(`${FAN_TASKS.toLocaleString('en-US')} independent no-op tasks`)
    fan = await runFan(driver, micro)
  }
  await net.close()
  net = undefined

  let dask: DaskResult | undefined
  let daskNote = SKIP_DASK ? 'Dask: skipped (--no-dask)' : 'Dask not installed (apt-get install python3-distributed; bench/install-dask.sh)'
  const python = SKIP_DASK ? undefined : daskPython()
  if (python !== undefined) {
    progress(`Dask (${python}): the same graphs and micro-benchmarks, ${WORKERS} worker processes × 1 thread`)
    try {
      dask = await runDask(python, graphs, dir)
      daskNote = `Dask ${dask.distributed} on Python ${dask.python}: LocalCluster, ${WORKERS} worker processes × 1 thread`
    } catch (err) {
      daskNote = `Dask failed: ${(err as Error).message}`
    }
  }

  printTable(`1. Recorded workflows, 1 s → ${MS_PER_SECOND} ms of CPU per task; makespan ÷ lower bound (${WORKERS} workers)`,
    ['graph', 'tasks', 'bound ms', 'Rhizome ms', 'ratio', 'on driver', 'Dask ms', 'ratio'],
    rows.map((r, i) => {
      const d = dask?.graphs[i]
      const mark = (ok: boolean | undefined): string => ok === false ? ' (wrong!)' : ''
      return [short(r.label), String(r.tasks), r.lowerBoundMs.toFixed(0),
        msText(r.rhizome?.ms) + mark(r.rhizome?.ok), ratio(r.rhizome?.ms, r.lowerBoundMs), `${r.rhizome?.onDriver ?? 0}`,
        msText(d?.makespanMs) + mark(d?.ok), ratio(d?.makespanMs, r.lowerBoundMs)]
    }), [
      `bound = max(critical path, work ÷ ${WORKERS}); Rhizome: 1 driver + 2 workers, 1 slot each, at most ${INFLIGHT || 'unbounded'} calls in flight per run;`,
      '"on driver": tasks main\'s placement ran on the driving peer itself (it is a candidate too).',
      daskNote,
      ...rows.filter(r => r.rhizome?.error !== undefined).map(r => `${short(r.label)}: ${r.rhizome!.error!}`)
    ])

  if (chain !== undefined && fan !== undefined) {
    const hops = summarize(chain.hops)
    const direct = summarize(calls)
    printTable('2. Through a workflow: no-op tasks', ['what', 'Rhizome', 'Dask'], [
      [`baseline: one POST /v1/call at a time (driver → worker), p50 / p99 ms, n=${direct.n}`, `${direct.p50.toFixed(2)} / ${direct.p99.toFixed(2)}`, '—'],
      [`chain of ${CHAIN_HOPS}: ms per hop (mean)${chain.ok ? '' : ' (wrong!)'}`, (chain.ms / CHAIN_HOPS).toFixed(2), dask === undefined ? '—' : dask.chain.msPerHop.toFixed(2)],
      ['chain: p50 / p99 ms per hop', `${hops.p50} / ${hops.p99}`, dask === undefined ? '—' : `${dask.chain.p50.toFixed(2)} / ${dask.chain.p99.toFixed(2)}`],
      [`${FAN_TASKS.toLocaleString('en-US')} independent tasks${fan.complete ? '' : ` (${fan.tasks.toLocaleString('en-US')} done: ${fan.error ?? ''})`}`,
        fan.tasks > 0 ? formatRate(fan.tasks / (fan.ms / 1000), 'tasks') : '—', dask === undefined ? '—' : formatRate(dask.fan.tasksPerSecond, 'tasks')]
    ], [
      'Rhizome hop times are whole milliseconds (task times in the run report); Dask\'s from its task stream.',
      `The fan is ${FAN_TASKS / FAN_BATCH} child runs of ${FAN_BATCH} (one run issues at most 10,000 calls), sharing ${INFLIGHT || 'unbounded'} calls in flight.`,
      'For the same no-op call outside a workflow (raw libp2p echo, warm remote call) see bench/task.bench.ts.'
    ])
  }
} finally {
  await net?.close()
  await rm(dir, { recursive: true, force: true })
}
