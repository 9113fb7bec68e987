/**
 * Workflow runs on real peers, shared by bench/workflows.bench.ts and bench/perf.bench.ts: a
 * driver and two workers (`rhizome node start` child processes, one task slot each, 127.0.0.1),
 * the burn loop calibrated inside a worker's sandbox, and the three kinds of run those benchmarks
 * time — a recorded graph, a chain of no-op tasks, a fan of independent no-op tasks.
 */
import { CID } from 'multiformats/cid'
import { taskId } from '../src/wire/task-codec.ts'
import { TestNetwork, waitFor } from '../test/helpers/peers.ts'
import {
  calibrateBurn, deployTaskFunction, deployWorkflow, evaluate, evaluateChain, runToEnd, scaledMs, startRun, taskValue, workflowBundleSource
} from '../test/helpers/workloads.ts'
import type { Graph } from '../test/helpers/workloads.ts'
import type { RunReport, RunSummary } from '../src/api/types.ts'
import type { TestPeer } from '../test/helpers/peers.ts'

/** The graphs: 10 to 1,738 tasks, chain-like to 1,000-wide; Nextflow ones (no machines recorded) left out. */
export const WFINSTANCES_GRAPHS = [
  'helloworld/helloworld-forkjoin-10-chameleon.json',
  'pegasus/montage/montage-chameleon-2mass-005d-001.json',
  'pegasus/cycles/cycles-chameleon-2l-1c-9p-001.json',
  'pegasus/epigenomics/epigenomics-chameleon-hep-4seq-100k-001.json',
  'pegasus/seismology/seismology-chameleon-1000p-001.json',
  'pegasus/montage/montage-chameleon-2mass-05d-001.json'
]

/** Calibration: the burn loop is timed in a worker's sandbox for about this long. */
const CALIBRATE_MS = 200

/** A graph's label without its folder, site and suffix: `montage-2mass-05d`. */
export function short (label: string): string {
  return label.replace(/^.*\//, '').replace(/-chameleon|\.json$|-001/g, '')
}

export interface WorkflowNetwork { net: TestNetwork, driver: TestPeer, workers: TestPeer[] }

/** A driver and two workers, one task slot each, that have all seen each other alive. */
export async function startWorkflowNetwork (): Promise<WorkflowNetwork> {
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

/**
 * Loop iterations per ms inside `worker`'s sandbox, asked by `caller`: the slope of `spin`'s run
 * time between 0 and ~CALIBRATE_MS of plain-Node iterations (fixed costs cancel out), best of 3.
 * Returns the plain-Node rate too.
 */
export async function calibrateSandboxBurn (caller: TestPeer, worker: TestPeer, replicas: number): Promise<{ iterationsPerMs: number, plainNode: number }> {
  const plainNode = calibrateBurn()
  const probe = await deployTaskFunction(caller, plainNode, replicas)
  const runMs = async (iterations: number): Promise<number> => {
    const times: number[] = []
    for (let i = 0; i < 3; i++) {
      const res = await caller.api<{ timings: { runMs: number } }>('/v1/call', { method: 'POST', body: JSON.stringify({ fn: probe, export: 'spin', args: [iterations], on: worker.peerId }) })
      times.push(res.timings.runMs)
    }
    return Math.min(...times)
  }
  const big = plainNode * CALIBRATE_MS
  return { iterationsPerMs: Math.round(big / Math.max(0.001, (await runMs(big)) - (await runMs(0)))), plainNode }
}

export interface GraphRun { ms: number, ok: boolean, onDriver: number, error?: string }

/** One recorded graph as a workflow run on `driver`, at most `inflight` calls in flight (0: no bound); cancelled past `timeoutMs`. */
export async function runGraph (driver: TestPeer, fnId: string, graph: Graph, options: { msPerSecond: number, inflight: number, timeoutMs: number }): Promise<GraphRun> {
  const workflow = await deployWorkflow(driver, short(graph.label), workflowBundleSource(fnId, graph, options.msPerSecond), ['dag'])
  const runId = await startRun(driver, workflow, 'dag', [options.inflight])
  const { report } = await runToEnd(driver, runId, options.timeoutMs).catch(async (err: unknown) => {
    // Out of time: stop the run, so it does not load the peers under whatever is measured next.
    if ((err as Error).name === 'TimeoutError') await driver.api(`/v1/runs/${runId}/cancel`, { method: 'POST' }).catch(() => {})
    throw err
  })
  return {
    ms: report.finishedMs! - report.startedMs,
    ok: report.status === 'finished' && report.result === evaluate(graph),
    onDriver: report.tasks.filter(t => t.peer === driver.peerId).length,
    error: report.error?.message
  }
}

export interface ChainRun { ms: number, ok: boolean, hops: number[] }

/**
 * `micro`'s chain of `hops` no-op tasks, each awaiting the last. Hop i's time is from hop i-1's
 * answer to hop i's, from the run report (whole ms: the run service stamps Date.now()).
 */
export async function runChain (driver: TestPeer, fnId: string, micro: string, hops: number, timeoutMs: number): Promise<ChainRun> {
  const runId = await startRun(driver, micro, 'chain', [hops])
  const { report } = await runToEnd(driver, runId, timeoutMs)
  const fn = CID.parse(fnId)
  const byId = new Map(report.tasks.map(t => [t.taskId, t]))
  const finished: number[] = []
  let x = 'start'
  for (let i = 0; i < hops; i++) {
    const t = byId.get((await taskId(fn, 'task', [`hop${i}`, 0, x])).toString())
    if (t?.finishedMs !== undefined) finished.push(t.finishedMs)
    x = taskValue(`hop${i}`, [x])
  }
  return {
    ms: report.finishedMs! - report.startedMs,
    ok: report.status === 'finished' && report.result === evaluateChain(hops),
    hops: finished.slice(1).map((f, i) => f - finished[i])
  }
}

export interface FanRun { ms: number, tasks: number, complete: boolean, onDriver: number, error?: string }

/**
 * `micro`'s fan of `tasks` independent no-op tasks as child runs of `batch` (one run issues at most
 * 10,000 calls, one activation 4,096), sharing `inflight` calls in flight. Bounded by `budgetMs`: a
 * fan still running then is cancelled, and its rate is the tasks its child runs had finished.
 * `onEnd` is called when the run has ended or been cancelled, before its child runs' reports are read.
 */
export async function runFan (driver: TestPeer, micro: string, options: { tasks: number, batch: number, inflight: number, budgetMs: number, onEnd?: () => void }): Promise<FanRun> {
  const parts = Math.ceil(options.tasks / options.batch)
  const runId = await startRun(driver, micro, 'fan', [options.tasks, options.batch, Math.max(1, Math.floor(options.inflight / parts))])
  const children = async (): Promise<{ tasks: number, onDriver: number, lastMs: number }> => {
    const { runs } = await driver.api<{ runs: RunSummary[] }>('/v1/runs?limit=1000')
    let tasks = 0
    let onDriver = 0
    let lastMs = 0
    for (const child of runs.filter(r => r.export === 'batch')) {
      for (const t of (await driver.api<RunReport>(`/v1/runs/${child.runId}`)).tasks) {
        if (t.status !== 'accepted') continue
        tasks++
        if (t.peer === driver.peerId) onDriver++
        lastMs = Math.max(lastMs, t.finishedMs ?? 0)
      }
    }
    return { tasks, onDriver, lastMs }
  }
  try {
    const { report } = await runToEnd(driver, runId, options.budgetMs)
    options.onEnd?.()
    const complete = report.status === 'finished'
    const { onDriver } = await children()
    return { ms: report.finishedMs! - report.startedMs, tasks: complete ? options.tasks : 0, complete, onDriver, error: report.error?.message }
  } catch (err) {
    if ((err as Error).name !== 'TimeoutError') throw err
    await driver.api(`/v1/runs/${runId}/cancel`, { method: 'POST' })
    options.onEnd?.()
    const { tasks, onDriver, lastMs } = await children()
    const started = (await driver.api<RunReport>(`/v1/runs/${runId}`)).startedMs
    return { ms: lastMs - started, tasks, complete: false, onDriver, error: `stopped after ${options.budgetMs / 1000} s` }
  }
}

/** The no-op task called directly, one at a time, through the API (what `rhizome call` does); each call's ms. */
export async function callSequentially (caller: TestPeer, worker: TestPeer, fn: string, calls: number, budgetMs: number): Promise<number[]> {
  const times: number[] = []
  const deadline = performance.now() + budgetMs
  for (let i = 0; i < calls && performance.now() < deadline; i++) {
    const start = performance.now()
    await caller.api('/v1/call', { method: 'POST', body: JSON.stringify({ fn, export: 'task', args: [`call${i}`, 0], on: worker.peerId }) })
    times.push(performance.now() - start)
  }
  return times
}

/** A graph as bench/dask/graphs.py reads it: tasks as [name, ms, [parent indices]], parents first; sinks; the expected result. */
export interface DaskGraphSpec { label: string, tasks: Array<[string, number, number[]]>, sinks: number[], expected: string }

export function daskGraphSpec (graph: Graph, msPerSecond: number): DaskGraphSpec {
  const index = new Map(graph.tasks.map((t, i) => [t.name, i]))
  return {
    label: graph.label,
    tasks: graph.tasks.map(t => [t.name, scaledMs(t.runtimeS, msPerSecond), t.parents.map(p => index.get(p)!)]),
    sinks: graph.sinks.map(s => index.get(s)!),
    expected: evaluate(graph)
  }
}
