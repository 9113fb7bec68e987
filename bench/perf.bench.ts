/**
 * Performance summary: the performance issue's table — Rhizome next to Dask distributed measured in
 * the same run on the same machine, Ray's published figures, and the raw libp2p floor. Prints
 * numbers, asserts nothing but results' correctness (STYLE.md §17).
 *
 *   node bench/perf.bench.ts [--no-dask | --no-rhizome]        (or: npm run bench perf)
 *
 * Everything runs on 127.0.0.1. Rhizome: a driver and two workers, each a `rhizome node start`
 * child process (its own event loop) with one task slot, plus a caller: a peer started in this
 * process (`startNode`, as bench/task.bench.ts does). The caller's rows come first; it then stops,
 * and once no peer sees it alive (so it is no candidate for placement) the workflow rows run on the
 * driver, the recorded graphs last, while the time budget lasts (see FILE_BUDGET_MS). Dask:
 * Debian's python3-distributed, a LocalCluster of 2 worker processes × 1 thread (bench/dask/perf.py),
 * once with message batching off (bench/dask/no_batching.py) and once as installed.
 *
 * Definitions (one line under the table says each again):
 * - Remote no-op task, p50: the caller calls `node.call(fn, 'task', [name, 0], { on: worker })`
 *   one at a time after a warm-up; each call has distinct arguments, so the worker runs it rather
 *   than answering from a stored result. Dask: `client.submit(noop, i, pure=False).result()`, one at
 *   a time, batching off and default (2022.12 has no setting for the batched streams' intervals:
 *   no_batching.py sets them to 0 in the scheduler, client and workers, and the output shows them).
 * - Independent no-op tasks/s, 1 driver + 2 workers: (a) a workflow run on the driver (the user's
 *   path) issuing FAN_TASKS no-op calls (child runs of FAN_BATCH, INFLIGHT in flight: the fan of
 *   bench/workflows.bench.ts); (b) the caller calling directly, keeping TASK_QUEUE_PER_SLOT calls in
 *   flight on each worker. Dask: `client.map(noop, range(N), pure=False)`, waiting for all.
 * - Dependent chain, per hop: a workflow run of CHAIN_HOPS no-op tasks each awaiting the last: run
 *   time ÷ hops. Dask: CHAIN_HOPS tasks each consuming the previous one's output (one graph).
 * - Makespan ÷ lower bound: the WfInstances graphs of bench/workflows.bench.ts, 1 s recorded → 1 ms
 *   of CPU, lower bound = max(critical path, work ÷ 2); median and worst over the graphs.
 * - CPU-bound efficiency, 2 peers on 2 cores: CPU_TASKS tasks of a fixed amount of loop work
 *   calibrated to ~CPU_TASK_MS inside each runtime's worker (Rhizome's sandbox, Dask's Python: the
 *   code speeds differ, the ratios compare). Single-task time = CPU_ALONE_TASKS tasks one after
 *   another on one worker alone (half before the batch, half after) ÷ their number; efficiency =
 *   tasks × single ÷ (2 × makespan of all tasks on both workers). Rhizome: the caller keeps 2 calls
 *   in flight per worker (each worker pulls the next task from one list); Dask: `client.map`.
 * - libp2p floor: between the caller and a worker, on the worker's libp2p ping protocol (an echo
 *   of whatever it reads, on an open stream): the round trip of 16 B, p50; and 16 B messages echoed
 *   per second on one stream with PIPELINE_WINDOW in flight, one write (frame) each — and, in the
 *   note, PIPELINE_BATCH per write, what batching writes would buy. (The caller lets two outbound
 *   ping streams share a connection, so libp2p's 10 s connection heartbeat does not collide with it.)
 * Also printed: CPU time per task of the calling peer and of the workers (/proc), since on 2 cores
 * the CPU a task costs bounds the tasks per second more than any latency does.
 *
 * Processes: the peers are killed at the end and on SIGTERM (bench/run.ts sends it past its time
 * limit); Python runs in its own process group, killed as a group.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { TASK_QUEUE_PER_SLOT } from '../src/net/task-service.ts'
import { createLogger, defaultConfig, startNode } from '../src/node/index.ts'
import { REPO_ROOT, bounds, deployTaskFunction, deployWorkflow, evaluateChain, loadGraph, microBundleSource } from '../test/helpers/workloads.ts'
import { waitFor } from '../test/helpers/peers.ts'
import { daskPython } from './dask-driver-kill.ts'
import { formatMs, formatRate, printTable, processCpuMs, progress, sample, sleep, summarize } from './helpers.ts'
import { WFINSTANCES_GRAPHS, calibrateSandboxBurn, daskGraphSpec, runChain, runFan, runGraph, short, startWorkflowNetwork } from './workflow-runs.ts'
import type { RhizomeNode } from '../src/node/index.ts'
import type { Graph } from '../test/helpers/workloads.ts'
import type { TestNetwork, TestPeer } from '../test/helpers/peers.ts'
import type { ChainRun, FanRun, GraphRun } from './workflow-runs.ts'
import type { ChildProcess } from 'node:child_process'
import type { PeerId, Stream } from '@libp2p/interface'

/** Workers in the bound and in Dask: two worker peers with one slot each, or Dask's 2 × 1 thread. */
const WORKERS = Math.min(2, availableParallelism())
/** 1 s of recorded runtime → 1 ms of CPU, as in bench/workflows.bench.ts. */
const MS_PER_SECOND = 1
/** Calls a workflow run keeps in flight: bench/workflows.bench.ts's default (it cannot overflow a queue). */
const INFLIGHT = 16
/** Sequential no-op calls: enough for a stable p50; warm-up calls first, not counted. */
const NOOP_CALLS = 1000
const NOOP_WARMUP = 50
const NOOP_BUDGET_MS = 10_000
/** Echo round trips; libp2p's ping handler ends a stream after 10 s, so a row stays under that. */
const ECHO_SAMPLES = 3000
const ECHO_BUDGET_MS = 5_000
const ECHO_BYTES = 16
/** Pipelined echo: messages in flight on the one stream, and how long it is measured. */
const PIPELINE_WINDOW = 256
const PIPELINE_MS = 3_000
/** Messages per write in the second pipelined measurement (a 1 KiB frame). */
const PIPELINE_BATCH = 64
/** Independent tasks, direct calls: how many and for how long at most. */
const DIRECT_TASKS = 10_000
const DIRECT_BUDGET_MS = 15_000
/**
 * The fan through a workflow: 10,000 tasks as child runs of 4,000 (one activation issues at most
 * 4,096 calls); a fan still running after FAN_BUDGET_MS is cancelled and its rate is what it did.
 */
const FAN_TASKS = 10_000
const FAN_BATCH = 4_000
const FAN_BUDGET_MS = 20_000
/** The chain: as bench/durable.bench.ts, enough hops for a stable mean, seconds even at ~40 ms a hop. */
const CHAIN_HOPS = 300
const CHAIN_TIMEOUT_MS = 60_000
/** Longest one graph may run (and the CPU batches); the graphs together get what the budget leaves. */
const GRAPH_TIMEOUT_MS = 60_000
/** CPU-bound batch: 200 × ~20 ms = ~2 s on two workers; the single-task time from 50 on one worker. */
const CPU_TASKS = 200
const CPU_TASK_MS = 20
const CPU_ALONE_TASKS = 50
/** Calls kept in flight per worker for the CPU batch: one running, one waiting, so a slot never idles. */
const CPU_INFLIGHT_PER_WORKER = 2
/** Dask: independent tasks for `client.map`, and the time its sequential no-op calls may take. */
const DASK_MAP_TASKS = 3_000
const DASK_NOOP_BUDGET_S = 6
/**
 * bench/run.ts stops a file at 5 minutes. The graphs run last on Rhizome, and only while more than
 * DASK_RESERVE_MS + END_MARGIN_MS is left (the rest are left out for both, and the table says
 * which); Dask then gets what is left minus END_MARGIN_MS, so a slow Dask is stopped by this file
 * and the table still prints. On a quiet 2-core machine everything fits in about 3 minutes.
 */
const FILE_BUDGET_MS = 5 * 60_000
const END_MARGIN_MS = 15_000
/** Dask's share: two cluster start-ups, the micro rows twice, the graphs, the CPU batch (~90 s under load). */
const DASK_RESERVE_MS = 100_000
/** Under this, Dask is not started at all. */
const DASK_MIN_MS = 30_000
/** A stopping peer started in this process may take this long; then it is left to the process exit. */
const STOP_TIMEOUT_MS = 5_000

const SKIP_DASK = process.argv.slice(2).includes('--no-dask')
const SKIP_RHIZOME = process.argv.slice(2).includes('--no-rhizome')
const STARTED = performance.now()

// ---------------------------------------------------------------------------------------------
// Everything this file starts, so that it can be stopped at the end or on SIGTERM

const dir = await mkdtemp(join(tmpdir(), 'rhizome-perf-bench-'))
let network: TestNetwork | undefined
let caller: RhizomeNode | undefined
let python: ChildProcess | undefined
/** Set by SIGTERM/SIGINT: nothing new is started, and the summary is printed once, by the handler. */
let stopping = false
/** What is measured so far: printed at the end, or at a SIGTERM with what there is. */
const measured: Measured = { daskNote: '' }

function killPython (): void {
  if (python?.pid === undefined || python.exitCode !== null || python.signalCode !== null) return
  try {
    process.kill(-python.pid, 'SIGKILL')
  } catch {
    // The group is gone already.
  }
}

async function stopCaller (): Promise<void> {
  const node = caller
  caller = undefined
  if (node === undefined) return
  await Promise.race([node.stop().catch(() => {}), new Promise(resolve => setTimeout(resolve, STOP_TIMEOUT_MS).unref())])
}

async function cleanUp (): Promise<void> {
  killPython()
  await stopCaller()
  await network?.close().catch(() => {})
  network = undefined
  await rm(dir, { recursive: true, force: true }).catch(() => {})
}

// A crash or exit that skips the clean-up still takes the Dask cluster down (its own process group).
process.once('exit', killPython)
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    process.stdout.write(`\nperf.bench.ts: ${signal}; stopping the peers and Dask\n`)
    stopping = true
    killPython()
    measured.daskNote ||= `stopped by ${signal} before Dask was done`
    printSummary(measured)
    void cleanUp().finally(() => process.exit(1))
  })
}

// ---------------------------------------------------------------------------------------------
// Rhizome: workflow rows (driver + 2 workers)

interface GraphRow { graph: Graph, lowerBoundMs: number, run: GraphRun }

interface WorkflowRows {
  chain: ChainRun
  chainCpu: CpuPerTask
  fan: FanRun
  fanCpu: CpuPerTask
  /** The graphs run to their end (or failed), in order; `left` the ones there was no time for. */
  graphs: GraphRow[]
  left: Graph[]
}

async function microRows (driver: TestPeer, workers: TestPeer[], fnId: string): Promise<Pick<WorkflowRows, 'chain' | 'chainCpu' | 'fan' | 'fanCpu'>> {
  const micro = await deployWorkflow(driver, 'perf-micro', microBundleSource(fnId), ['chain', 'batch', 'fan'])
  progress(`a chain of ${CHAIN_HOPS} no-op tasks through a workflow`)
  let meter = cpuMeter(driver, workers)
  const chain = await runChain(driver, fnId, micro, CHAIN_HOPS, CHAIN_TIMEOUT_MS)
  const chainCpu = meter(CHAIN_HOPS)
  progress(`  ${(chain.ms / CHAIN_HOPS).toFixed(2)} ms per hop${chain.ok ? '' : ' (WRONG result)'}; CPU per task: driver + workers ${cpuText(chainCpu)}`)
  progress(`${FAN_TASKS.toLocaleString('en-US')} independent no-op tasks through a workflow`)
  meter = cpuMeter(driver, workers)
  // Counted up to the fan's end (or cancellation), not the reading of its child runs' reports after.
  let atEnd: CpuPerTask | undefined
  const fan = await runFan(driver, micro, { tasks: FAN_TASKS, batch: FAN_BATCH, inflight: INFLIGHT, budgetMs: FAN_BUDGET_MS, onEnd: () => { atEnd = meter(1) } })
  const total = atEnd ?? meter(1)
  const fanCpu = { client: total.client / fan.tasks, workers: total.workers / fan.tasks }
  progress(`  ${formatRate(fan.tasks / (fan.ms / 1000), 'tasks')}${fan.complete ? '' : ` (${fan.error ?? 'incomplete'})`}; CPU per task: driver + workers ${cpuText(fanCpu)}`)
  return { chain, chainCpu, fan, fanCpu }
}

/** The graphs in order while time is left before `deadline`; one cut off by it is left out (for Dask too). */
async function graphRows (driver: TestPeer, fnId: string, graphs: Graph[], deadline: number): Promise<Pick<WorkflowRows, 'graphs' | 'left'>> {
  const rows: GraphRow[] = []
  for (const [i, graph] of graphs.entries()) {
    const timeoutMs = Math.floor(Math.min(GRAPH_TIMEOUT_MS, deadline - performance.now()))
    if (timeoutMs < 1000) return { graphs: rows, left: graphs.slice(i) }
    const { lowerBoundMs } = bounds(graph, MS_PER_SECOND, WORKERS)
    let run: GraphRun
    try {
      run = await runGraph(driver, fnId, graph, { msPerSecond: MS_PER_SECOND, inflight: INFLIGHT, timeoutMs })
    } catch (err) {
      if ((err as Error).name === 'TimeoutError' && timeoutMs < GRAPH_TIMEOUT_MS) {
        progress(`${short(graph.label)}: cut off by the time budget; left out`)
        return { graphs: rows, left: graphs.slice(i) }
      }
      run = { ms: Number.NaN, ok: false, onDriver: 0, error: (err as Error).message }
    }
    progress(`${short(graph.label)}: ${graph.tasks.length} tasks, ${run.ms.toFixed(0)} ms, ${(run.ms / lowerBoundMs).toFixed(2)}× the bound${run.ok ? '' : ` WRONG (${run.error ?? 'result differs'})`}`)
    rows.push({ graph, lowerBoundMs, run })
  }
  return { graphs: rows, left: [] }
}

// ---------------------------------------------------------------------------------------------
// Rhizome: the caller (a peer in this process) and the libp2p floor

const PING_PROTOCOL = '/ipfs/ping/1.0.0'
/** Opening a ping stream: 20 tries 100 ms apart (the worker releases the last stream within a round trip or two). */
const PING_STREAM_ATTEMPTS = 20
const PING_STREAM_RETRY_MS = 100

async function startCaller (net: TestNetwork, driver: TestPeer, workers: TestPeer[]): Promise<RhizomeNode> {
  const config = {
    ...defaultConfig(join(dir, 'caller')),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: [driver.tcpAddr],
    mdns: false,
    networkId: net.networkId,
    slotsMax: 1,
    announceIntervalMs: 500,
    suspectAfterMs: 2000,
    goneAfterMs: 4000
  }
  const node = await startNode(config, createLogger('rhizome', { level: 'silent' }))
  caller = node
  // libp2p's connection monitor pings each connection every 10 s on the ping protocol, which allows
  // one outbound stream per connection, and drops the connection when its ping cannot open one. So
  // that the floor's stream and the heartbeat can both be open, the caller (this benchmark's own
  // peer; the workers are untouched) allows two; its handler echoes as libp2p's does.
  await node.host.unhandle(PING_PROTOCOL)
  await node.host.handle(PING_PROTOCOL, async (stream) => {
    for await (const chunk of stream) {
      if (!stream.send(chunk)) await stream.onDrain()
    }
    await stream.close().catch(() => {})
  }, { maxInboundStreams: 2, maxOutboundStreams: 2 })
  const self = node.peerId.toString()
  await waitFor('the caller and the workers to meet', async () => {
    const seen = new Set(node.peers().filter(p => p.state === 'alive').map(p => p.peerId))
    if (!workers.every(w => seen.has(w.peerId))) return false
    for (const w of workers) if (!(await w.peers()).some(p => p.peerId === self && p.state === 'alive')) return false
    return true
  }, 60_000, 100)
  return node
}

/** A stream of the worker's ping protocol; the worker may still count the last one (it takes two at most), so retry a moment. */
async function pingStream (node: RhizomeNode, worker: PeerId): Promise<Stream> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await node.host.dialProtocol(worker, PING_PROTOCOL)
    } catch (err) {
      if (attempt >= PING_STREAM_ATTEMPTS) throw err
      await sleep(PING_STREAM_RETRY_MS)
    }
  }
}

interface Floor { rtt: number[], messages: number, seconds: number, batched: { messages: number, seconds: number } }

async function echoRtt (node: RhizomeNode, worker: PeerId): Promise<number[]> {
  const stream = await pingStream(node, worker)
  const reader = stream[Symbol.asyncIterator]()
  const ping = new Uint8Array(ECHO_BYTES).fill(7)
  try {
    return await sample(ECHO_SAMPLES, ECHO_BUDGET_MS, async () => {
      stream.send(ping)
      let got = 0
      while (got < ping.byteLength) {
        const next = await reader.next()
        if (next.done === true) throw new Error('the echo stream ended')
        got += next.value.byteLength
      }
    }, 100)
  } finally {
    stream.abort(new Error('done'))
  }
}

/**
 * 16 B messages echoed per second on one stream, PIPELINE_WINDOW in flight, `perFrame` of them in
 * each write (1: a frame per message, as one task message each; more: what batching writes buys).
 */
async function echoPipelined (node: RhizomeNode, worker: PeerId, perFrame: number): Promise<{ messages: number, seconds: number }> {
  const stream = await pingStream(node, worker)
  const frame = new Uint8Array(ECHO_BYTES * perFrame).fill(9)
  let sent = 0
  let receivedBytes = 0
  const send = async (): Promise<void> => {
    sent += perFrame
    if (!stream.send(frame)) await stream.onDrain()
  }
  const start = performance.now()
  const end = start + PIPELINE_MS
  try {
    while (sent < PIPELINE_WINDOW) await send()
    for await (const chunk of stream) {
      receivedBytes += chunk.byteLength
      const echoed = Math.floor(receivedBytes / ECHO_BYTES)
      if (performance.now() >= end) {
        if (echoed >= sent) break
        continue
      }
      while (sent - echoed + perFrame <= PIPELINE_WINDOW) await send()
    }
  } finally {
    stream.abort(new Error('done'))
  }
  return { messages: Math.floor(receivedBytes / ECHO_BYTES), seconds: (performance.now() - start) / 1000 }
}

async function measureFloor (node: RhizomeNode, worker: PeerId): Promise<Floor> {
  progress('libp2p floor: 16 B echo on an open stream, caller → worker')
  const rtt = await echoRtt(node, worker)
  progress(`  p50 ${formatMs(summarize(rtt).p50)}; pipelined, ${PIPELINE_WINDOW} in flight`)
  const { messages, seconds } = await echoPipelined(node, worker, 1)
  const batched = await echoPipelined(node, worker, PIPELINE_BATCH)
  progress(`  ${formatRate(messages / seconds, 'messages')} one per frame, ${formatRate(batched.messages / batched.seconds, 'messages')} ${PIPELINE_BATCH} per frame`)
  return { rtt, messages, seconds, batched }
}

// ---------------------------------------------------------------------------------------------
// Rhizome: direct calls from the caller

/** CPU time per task, ms: the calling peer's (this process, or the driver) and the workers' together. */
interface CpuPerTask { client: number, workers: number }

/** Starts counting CPU time; the function it returns divides what was used since by `tasks`. */
function cpuMeter (client: TestPeer | 'this process', workers: TestPeer[]): (tasks: number) => CpuPerTask {
  const clientMs = (): number => client === 'this process'
    ? (process.cpuUsage().user + process.cpuUsage().system) / 1000
    : processCpuMs(client.child?.pid) ?? Number.NaN
  const workersMs = (): number => workers.reduce((sum, w) => sum + (processCpuMs(w.child?.pid) ?? Number.NaN), 0)
  const [c0, w0] = [clientMs(), workersMs()]
  return (tasks) => ({ client: (clientMs() - c0) / tasks, workers: (workersMs() - w0) / tasks })
}

const cpuText = (c: CpuPerTask | undefined): string => c === undefined ? '—' : `${c.client.toFixed(2)} + ${c.workers.toFixed(2)} ms`

interface Lanes { done: number, errors: number, ms: number, firstError?: string }

/**
 * `total` calls, `perWorker` kept in flight on each worker, each worker taking the next call from
 * one shared list as one of its calls ends; stops issuing at `budgetMs`. `args(i)` makes call i's arguments.
 */
async function lanes (node: RhizomeNode, fn: CID, workers: string[], perWorker: number, total: number, budgetMs: number, args: (i: number) => unknown[]): Promise<Lanes> {
  let next = 0
  const result: Lanes = { done: 0, errors: 0, ms: 0 }
  const start = performance.now()
  const deadline = start + budgetMs
  const lane = async (on: string): Promise<void> => {
    while (next < total && performance.now() < deadline) {
      const i = next++
      try {
        await node.call(fn, 'task', args(i), { on })
        result.done++
      } catch (err) {
        result.errors++
        result.firstError ??= (err as Error).message
      }
    }
  }
  await Promise.all(workers.flatMap(on => Array.from({ length: perWorker }, async () => await lane(on))))
  result.ms = performance.now() - start
  return result
}

interface DirectRows { noop: number[], noopCpu: CpuPerTask, direct: Lanes, directCpu: CpuPerTask, cpu: { alone: Lanes[], both: Lanes, singleMs: number, efficiency: number } }

async function directRows (node: RhizomeNode, fnId: string, workers: TestPeer[]): Promise<DirectRows> {
  const fn = CID.parse(fnId)
  const [w1, w2] = workers.map(w => w.peerId)
  const tag = `${process.pid}`
  progress(`remote no-op task, one at a time: caller → worker (${NOOP_CALLS} calls after ${NOOP_WARMUP})`)
  let meter = cpuMeter('this process', workers)
  const noop = await sample(NOOP_CALLS, NOOP_BUDGET_MS, async i => {
    if (i === 0) meter = cpuMeter('this process', workers)
    return await node.call(fn, 'task', [`n${tag}:${i}`, 0], { on: w1 })
  }, NOOP_WARMUP)
  const noopCpu = meter(noop.length)
  progress(`  p50 ${formatMs(summarize(noop).p50)}; CPU per task: caller + workers ${cpuText(noopCpu)}`)
  progress(`${DIRECT_TASKS.toLocaleString('en-US')} independent no-op tasks called directly, ${TASK_QUEUE_PER_SLOT} in flight per worker`)
  meter = cpuMeter('this process', workers)
  const direct = await lanes(node, fn, [w1, w2], TASK_QUEUE_PER_SLOT, DIRECT_TASKS, DIRECT_BUDGET_MS, i => [`d${tag}:${i}`, 0])
  const directCpu = meter(direct.done)
  progress(`  ${formatRate(direct.done / (direct.ms / 1000), 'tasks')}${direct.errors > 0 ? `, ${direct.errors} failed: ${direct.firstError ?? ''}` : ''}; CPU per task: caller + workers ${cpuText(directCpu)}`)
  progress(`CPU-bound: ${CPU_ALONE_TASKS} tasks of ~${CPU_TASK_MS} ms on one worker, then ${CPU_TASKS} on both`)
  await node.call(fn, 'task', [`cw${tag}`, CPU_TASK_MS], { on: w1 })
  // Half the single-worker tasks before the batch, half after: a change in the machine's load
  // during the measurement weighs on both sides alike.
  const half = Math.floor(CPU_ALONE_TASKS / 2)
  const alone = [await lanes(node, fn, [w1], CPU_INFLIGHT_PER_WORKER, half, GRAPH_TIMEOUT_MS, i => [`ca${tag}:${i}`, CPU_TASK_MS])]
  const both = await lanes(node, fn, [w1, w2], CPU_INFLIGHT_PER_WORKER, CPU_TASKS, GRAPH_TIMEOUT_MS, i => [`cb${tag}:${i}`, CPU_TASK_MS])
  alone.push(await lanes(node, fn, [w1], CPU_INFLIGHT_PER_WORKER, CPU_ALONE_TASKS - half, GRAPH_TIMEOUT_MS, i => [`cc${tag}:${i}`, CPU_TASK_MS]))
  const singleMs = (alone[0].ms + alone[1].ms) / (alone[0].done + alone[1].done)
  const efficiency = (both.done * singleMs) / (WORKERS * both.ms)
  progress(`  single ${singleMs.toFixed(1)} ms, ${CPU_TASKS} on both in ${both.ms.toFixed(0)} ms: efficiency ${efficiency.toFixed(2)}`)
  return { noop, noopCpu, direct, directCpu, cpu: { alone, both, singleMs, efficiency } }
}

// ---------------------------------------------------------------------------------------------
// Dask

interface DaskSummary { n: number, p50: number, p99: number }
interface DaskMode {
  mode: 'unbatched' | 'default'
  intervalsMs: { workers: number[], scheduler: number[] }
  noop: DaskSummary
  map: { tasks: number, seconds: number, tasksPerSecond: number }
  chain: { hops: number, totalMs: number, msPerHop: number, p50: number, p99: number, ok: boolean }
  graphs?: Array<{ label: string, tasks: number, makespanMs: number, ok: boolean }>
  cpu?: { iterationsPerMs: number, tasks: number, aloneTasks: number, singleMs: number, makespanMs: number, efficiency: number }
}
interface DaskResult { dask: string, distributed: string, python: string, workers: number, modes: DaskMode[] }

function daskVersion (pythonPath: string): string {
  const probe = spawnSync(pythonPath, ['-c', 'import distributed; print(distributed.__version__)'], { encoding: 'utf8', timeout: 30_000 })
  return probe.status === 0 ? probe.stdout.trim() : 'unknown'
}

async function runDask (pythonPath: string, graphs: Graph[], timeoutMs: number): Promise<DaskResult> {
  const spec = {
    workers: WORKERS,
    modes: ['unbatched', 'default'],
    noopCalls: NOOP_CALLS,
    noopBudgetS: DASK_NOOP_BUDGET_S,
    mapTasks: DASK_MAP_TASKS,
    chainHops: CHAIN_HOPS,
    chainExpected: evaluateChain(CHAIN_HOPS),
    graphs: graphs.map(g => daskGraphSpec(g, MS_PER_SECOND)),
    cpuTasks: CPU_TASKS,
    cpuTaskMs: CPU_TASK_MS,
    cpuAloneTasks: CPU_ALONE_TASKS
  }
  const file = join(dir, 'dask-perf-spec.json')
  await writeFile(file, JSON.stringify(spec))
  // Its own process group: the cluster's processes go with it.
  const child = spawn(pythonPath, [join(REPO_ROOT, 'bench', 'dask', 'perf.py'), file], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  python = child
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-20_000) })
  const timer = setTimeout(killPython, timeoutMs)
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(resolve => child.once('exit', (c, s) => resolve([c, s])))
  clearTimeout(timer)
  killPython()
  python = undefined
  if (signal !== null) throw new Error(`stopped after ${(timeoutMs / 1000).toFixed(0)} s (what is left of this file's ${FILE_BUDGET_MS / 60_000} minutes)`)
  if (code !== 0) throw new Error(`bench/dask/perf.py exited with ${String(code)}: ${stderr.slice(-1500)}`)
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as DaskResult
}

// ---------------------------------------------------------------------------------------------
// The table

const ms = (x: number | undefined): string => x === undefined || !Number.isFinite(x) ? '—' : formatMs(x)
const rate = (x: number | undefined): string => x === undefined || !Number.isFinite(x) ? '—' : formatRate(x, '')
const ratios = (values: number[]): { median: number, worst: number } => {
  const s = summarize(values)
  const sorted = [...values].sort((a, b) => a - b)
  const median = sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2
  return { median, worst: s.max }
}
const ratioText = (r: { median: number, worst: number } | undefined): string =>
  r === undefined || !Number.isFinite(r.median) ? '—' : `${r.median.toFixed(2)}×, ${r.worst.toFixed(2)}×`

interface Measured { workflow?: WorkflowRows, direct?: DirectRows, floor?: Floor, dask?: DaskResult, daskNote: string }

function tableRows (m: Measured): string[][] {
  const off = m.dask?.modes.find(x => x.mode === 'unbatched')
  const def = m.dask?.modes.find(x => x.mode === 'default')
  const w = m.workflow
  const d = m.direct
  const echo = m.floor === undefined ? undefined : summarize(m.floor.rtt).p50
  const rhizomeRatios = w === undefined ? undefined : ratios(w.graphs.map(g => g.run.ms / g.lowerBoundMs))
  const daskRatios = def?.graphs === undefined || w === undefined ? undefined : ratios(def.graphs.map((g, i) => g.makespanMs / w.graphs[i].lowerBoundMs))
  const wrong = (ok: boolean | undefined): string => ok === false ? ' (WRONG)' : ''
  return [
    ['remote no-op task, p50', `${ms(off?.noop.p50)} off / ${ms(def?.noop.p50)} default`, '~1 ms',
      ms(d === undefined ? undefined : summarize(d.noop).p50), `echo ${ms(echo)}`, '≤ 0.4 ms'],
    ['independent no-op tasks/s, 1 driver + 2 workers', `${rate(def?.map.tasksPerSecond)} (${rate(off?.map.tasksPerSecond)} off)`, '~8k per node',
      `workflow ${rate(w === undefined ? undefined : w.fan.tasks / (w.fan.ms / 1000))}${w?.fan.complete === false ? '*' : ''}; direct ${rate(d === undefined ? undefined : d.direct.done / (d.direct.ms / 1000))}`,
      `${rate(m.floor === undefined ? undefined : m.floor.messages / m.floor.seconds)} msgs`, '≥ 10,000'],
    ['dependent chain, per hop', `${ms(def?.chain.msPerHop)}${wrong(def?.chain.ok)} (${ms(off?.chain.msPerHop)} off)`, '~1 ms',
      `${ms(w === undefined ? undefined : w.chain.ms / CHAIN_HOPS)}${wrong(w?.chain.ok)}`, `echo ${ms(echo)}`, '≤ 0.5 ms'],
    [`makespan ÷ lower bound (median, worst), ${w?.graphs.length ?? 0} WfInstances, 1 s → 1 ms, 2 workers`,
      `${ratioText(daskRatios)}${def?.graphs?.some(g => !g.ok) === true ? ' (WRONG)' : ''}`, '—',
      `${ratioText(rhizomeRatios)}${w?.graphs.some(g => !g.run.ok) === true ? ' (WRONG)' : ''}`, '—', '≤ 1.10, ≤ 1.5'],
    ['CPU-bound efficiency, 2 peers on 2 cores', def?.cpu === undefined ? '—' : def.cpu.efficiency.toFixed(2), '—',
      d === undefined ? '—' : d.cpu.efficiency.toFixed(2), '—', '≥ 0.9']
  ]
}

function tableNotes (m: Measured): string[] {
  const w = m.workflow
  const d = m.direct
  const off = m.dask?.modes.find(x => x.mode === 'unbatched')
  const def = m.dask?.modes.find(x => x.mode === 'default')
  const onDriver = w === undefined ? 0 : w.graphs.reduce((s, g) => s + g.run.onDriver, 0)
  const graphTasks = w === undefined ? 0 : w.graphs.reduce((s, g) => s + g.graph.tasks.length, 0)
  return [
    `no-op p50: in-process caller peer → a \`rhizome node start\` worker, one call at a time, distinct args (n=${d?.noop.length ?? 0}); Dask submit(noop, pure=False).result() (n=${off?.noop.n ?? 0} off, ${def?.noop.n ?? 0} default); floor: 16 B echo, open stream, caller → worker.`,
    `tasks/s: workflow = a run on the driver process, ${FAN_TASKS.toLocaleString('en-US')} no-op calls in child runs of ${FAN_BATCH}, ${INFLIGHT} in flight (${w?.fan.onDriver ?? 0} ran on the driver${w?.fan.complete === false ? `; *${w.fan.error ?? 'incomplete'}: ${w.fan.tasks} done` : ''}); direct = the caller, ${TASK_QUEUE_PER_SLOT} in flight per worker (${d?.direct.done ?? 0} done, ${d?.direct.errors ?? 0} failed); Dask client.map over ${DASK_MAP_TASKS.toLocaleString('en-US')}; floor: 16 B messages, one frame each, ${PIPELINE_WINDOW} in flight, one stream (${PIPELINE_BATCH} per frame: ${rate(m.floor === undefined ? undefined : m.floor.batched.messages / m.floor.batched.seconds)}).`,
    `chain: a durable run of ${CHAIN_HOPS} no-op tasks, each awaiting the last: run time ÷ hops (p50 of hop gaps ${ms(w === undefined ? undefined : summarize(w.chain.hops).p50)}, whole ms); Dask: ${CHAIN_HOPS} tasks each on the previous one's output, one graph (p50 ${ms(def?.chain.p50)}).`,
    `makespan: ${w?.graphs.map(g => short(g.graph.label)).join(', ') ?? '—'}; bound = max(critical path, work ÷ ${WORKERS}); Rhizome ${INFLIGHT} in flight, ${onDriver} of ${graphTasks} tasks ran on the driver; Dask LocalCluster ${WORKERS} × 1 thread.${w !== undefined && w.left.length > 0 ? ` Left out for both (no time left): ${w.left.map(g => short(g.label)).join(', ')}.` : ''}`,
    `CPU: ${CPU_TASKS} × ~${CPU_TASK_MS} ms of fixed loop work; single = ${CPU_ALONE_TASKS} on one worker alone (half before, half after) ÷ ${CPU_ALONE_TASKS} (Rhizome ${ms(d?.cpu.singleMs)}, Dask ${ms(def?.cpu?.singleMs)}); makespan on both (Rhizome ${ms(d?.cpu.both.ms)}, Dask ${ms(def?.cpu?.makespanMs)}); efficiency = tasks × single ÷ (2 × makespan).`,
    `CPU per task, calling peer + both workers (/proc, 10 ms steps; under 2 cores it bounds tasks/s): no-op one at a time ${cpuText(d?.noopCpu)}, direct ${cpuText(d?.directCpu)}, workflow chain ${cpuText(w?.chainCpu)}, workflow fan ${cpuText(w?.fanCpu)}.`,
    'Ray (published): the figures the performance issue quotes, not measured here.',
    off === undefined ? '' : `Dask "off": batched-send intervals workers ${off.intervalsMs.workers.join('/')} ms, scheduler ${off.intervalsMs.scheduler.join('/')} ms; default ${def?.intervalsMs.workers.join('/') ?? '?'} / ${def?.intervalsMs.scheduler.join('/') ?? '?'} ms.`,
    m.daskNote
  ].filter(line => line !== '')
}

/** Each graph's makespan beside its bound, Rhizome and Dask: what the summary's median and worst come from. */
function printGraphs (m: Measured): void {
  const w = m.workflow
  if (w === undefined || w.graphs.length === 0) return
  const def = m.dask?.modes.find(x => x.mode === 'default')
  const cell = (msValue: number | undefined, bound: number, ok: boolean | undefined): string =>
    msValue === undefined || !Number.isFinite(msValue) ? '—' : `${msValue.toFixed(0)} (${(msValue / bound).toFixed(2)}×)${ok === false ? ' WRONG' : ''}`
  printTable('Makespans, ms (÷ lower bound)', ['graph', 'tasks', 'bound', 'Rhizome', 'on driver', 'Dask'], w.graphs.map((g, i) => [
    short(g.graph.label), String(g.graph.tasks.length), g.lowerBoundMs.toFixed(0),
    cell(g.run.ms, g.lowerBoundMs, g.run.ok), String(g.run.onDriver), cell(def?.graphs?.[i]?.makespanMs, g.lowerBoundMs, def?.graphs?.[i]?.ok)
  ]), w.graphs.filter(g => g.run.error !== undefined).map(g => `${short(g.graph.label)}: ${g.run.error ?? ''}`))
}

function printSummary (m: Measured): void {
  printTable('Performance summary (same machine, same run)', ['metric', 'Dask distributed (same machine)', 'Ray (published)', 'Rhizome', 'libp2p floor', 'target'], tableRows(m), tableNotes(m))
}

// ---------------------------------------------------------------------------------------------

function describeMachine (when: string): void {
  const load = loadavg().map(x => x.toFixed(2)).join(' ')
  process.stdout.write(`  ${when}: ${new Date().toISOString()}, load average ${load}\n`)
}

async function measureRhizome (graphs: Graph[]): Promise<void> {
  progress('starting a driver and 2 workers (rhizome node start, 1 slot each)')
  const { net, driver, workers } = await startWorkflowNetwork()
  network = net
  const { iterationsPerMs, plainNode } = await calibrateSandboxBurn(driver, workers[0], 3)
  progress(`burn loop: ${iterationsPerMs.toLocaleString('en-US')} iterations/ms in a worker's sandbox (${plainNode.toLocaleString('en-US')} in plain Node)`)
  const fnId = await deployTaskFunction(driver, iterationsPerMs, 3)
  // The caller first: once it has stopped and nobody sees it alive, it is no candidate for the runs.
  progress('starting the caller: a peer in this process')
  const node = await startCaller(net, driver, workers)
  measured.floor = await measureFloor(node, peerIdFromString(workers[0].peerId))
  measured.direct = await directRows(node, fnId, workers)
  const self = node.peerId.toString()
  await stopCaller()
  await waitFor('the caller to be gone from every view', async () => {
    for (const p of [driver, ...workers]) if ((await p.peers()).some(x => x.peerId === self && x.state === 'alive')) return false
    return true
  }, 30_000, 100)
  const micro = await microRows(driver, workers, fnId)
  const deadline = STARTED + FILE_BUDGET_MS - END_MARGIN_MS - (SKIP_DASK ? 0 : DASK_RESERVE_MS)
  measured.workflow = { ...micro, graphs: [], left: graphs }
  measured.workflow = { ...micro, ...await graphRows(driver, fnId, graphs, deadline) }
  await net.close()
  network = undefined
}

async function measureDask (graphs: Graph[]): Promise<Partial<Pick<Measured, 'dask' | 'daskNote'>>> {
  if (SKIP_DASK) return { daskNote: 'Dask: skipped (--no-dask).' }
  if (stopping) return {}
  const pythonPath = daskPython()
  if (pythonPath === undefined) return { daskNote: 'Dask not installed: `sudo sh bench/install-dask.sh` (Debian\'s python3-distributed) puts it beside Rhizome here.' }
  const timeoutMs = Math.floor(FILE_BUDGET_MS - END_MARGIN_MS - (performance.now() - STARTED))
  if (timeoutMs < DASK_MIN_MS) return { daskNote: `Dask: not run, ${(timeoutMs / 1000).toFixed(0)} s left of this file's ${FILE_BUDGET_MS / 60_000} minutes.` }
  progress(`Dask (${pythonPath}): batching off, then default; at most ${(timeoutMs / 1000).toFixed(0)} s`)
  try {
    const dask = await runDask(pythonPath, graphs, timeoutMs)
    return { dask, daskNote: `Dask ${dask.distributed} (dask ${dask.dask}) on Python ${dask.python}: LocalCluster, ${dask.workers} worker processes × 1 thread, 127.0.0.1.` }
  } catch (err) {
    return { daskNote: `Dask failed: ${(err as Error).message}` }
  }
}

async function main (): Promise<void> {
  const pythonPath = SKIP_DASK ? undefined : daskPython()
  process.stdout.write(`  Node ${process.version}, ${availableParallelism()} CPUs, Dask distributed ${pythonPath === undefined ? 'not installed (sudo sh bench/install-dask.sh)' : `${daskVersion(pythonPath)} (${pythonPath})`}\n`)
  describeMachine('start')
  const graphs = await Promise.all(WFINSTANCES_GRAPHS.map(async g => await loadGraph(g)))
  try {
    if (!SKIP_RHIZOME) await measureRhizome(graphs)
  } catch (err) {
    process.stdout.write(`  Rhizome failed: ${(err as Error).stack ?? String(err)}\n`)
  } finally {
    await stopCaller()
    await network?.close().catch(() => {})
    network = undefined
  }
  // The same graphs on Dask as on Rhizome: those it ran (all of them when there was time).
  Object.assign(measured, await measureDask(measured.workflow?.graphs.map(g => g.graph) ?? graphs))
  if (stopping) return
  printGraphs(measured)
  printSummary(measured)
  describeMachine('end')
}

try {
  await main()
} finally {
  await cleanUp()
}
