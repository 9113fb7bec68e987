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
import { REPO_ROOT, bounds, deployTaskFunction, deployWorkflow, evaluateChain, loadGraph, microBundleSource } from '../test/helpers/workloads.ts'
import { daskPython } from './dask-driver-kill.ts'
import { formatRate, printTable, progress, summarize } from './helpers.ts'
import {
  WFINSTANCES_GRAPHS, calibrateSandboxBurn, callSequentially, daskGraphSpec, runChain, runFan, runGraph, short, startWorkflowNetwork
} from './workflow-runs.ts'
import type { Graph } from '../test/helpers/workloads.ts'
import type { TestNetwork } from '../test/helpers/peers.ts'

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

const args = process.argv.slice(2)
const inflightAt = args.indexOf('--inflight')
const INFLIGHT = inflightAt >= 0 ? Number(args[inflightAt + 1]) : INFLIGHT_DEFAULT
const onlyAt = args.indexOf('--only')
const ONLY = onlyAt >= 0 ? args[onlyAt + 1] : undefined
const SKIP_DASK = args.includes('--no-dask')
const SKIP_MICRO = args.includes('--no-micro')

interface GraphRow { label: string, tasks: number, lowerBoundMs: number, criticalPathMs: number, workMs: number, rhizome?: { ms: number, ok: boolean, onDriver: number, error?: string } }

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
    graphs: graphs.map(g => daskGraphSpec(g, MS_PER_SECOND)),
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
  const graphs = await Promise.all(WFINSTANCES_GRAPHS.filter(g => ONLY === undefined || g.includes(ONLY)).map(async g => await loadGraph(g)))
  const rows: GraphRow[] = graphs.map(g => ({ label: g.label, tasks: g.tasks.length, ...bounds(g, MS_PER_SECOND, WORKERS) }))
  progress('starting a driver and 2 workers')
  const started = await startWorkflowNetwork()
  net = started.net
  const { driver, workers } = started
  const { iterationsPerMs, plainNode } = await calibrateSandboxBurn(driver, workers[0], 3)
  progress(`burn loop: ${iterationsPerMs.toLocaleString('en-US')} iterations/ms in a worker's sandbox (${plainNode.toLocaleString('en-US')} in plain Node)`)
  const fnId = await deployTaskFunction(driver, iterationsPerMs, 3)

  for (const [i, graph] of graphs.entries()) {
    progress(`${short(graph.label)}: ${graph.tasks.length} tasks`)
    const result = await runGraph(driver, fnId, graph, { msPerSecond: MS_PER_SECOND, inflight: INFLIGHT, timeoutMs: GRAPH_TIMEOUT_MS }).catch((err: unknown) => ({ ms: Number.NaN, ok: false, onDriver: 0, error: (err as Error).message }))
    rows[i].rhizome = result
    progress(`  ${result.ms.toFixed(0)} ms, ${ratio(result.ms, rows[i].lowerBoundMs)} the bound${result.ok ? '' : `: WRONG (${result.error ?? 'result differs'})`}`)
  }

  let chain: Awaited<ReturnType<typeof runChain>> | undefined
  let fan: Awaited<ReturnType<typeof runFan>> | undefined
  let calls: number[] = []
  if (!SKIP_MICRO) {
    progress('direct no-op calls through the API')
    calls = await callSequentially(driver, workers[1], fnId, CALLS, CALL_BUDGET_MS)
    const micro = await deployWorkflow(driver, 'micro', microBundleSource(fnId), ['chain', 'batch', 'fan'])
    progress(`a chain of ${CHAIN_HOPS} no-op tasks`)
    chain = await runChain(driver, fnId, micro, CHAIN_HOPS, MICRO_TIMEOUT_MS)
    progress(`  ${(chain.ms / CHAIN_HOPS).toFixed(2)} ms per hop`)
    progress(`${FAN_TASKS.toLocaleString('en-US')} independent no-op tasks`)
    fan = await runFan(driver, micro, { tasks: FAN_TASKS, batch: FAN_BATCH, inflight: INFLIGHT, budgetMs: FAN_BUDGET_MS })
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
