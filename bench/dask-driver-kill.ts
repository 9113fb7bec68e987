/**
 * Driver loss on Dask distributed, for the side-by-side with Rhizome's run takeover: the Dask
 * scheduler (Dask's driver: it holds the graph and every task's state) is SIGKILLed when half of a
 * 302-task graph has started, a new one is started on the same address at once, and the graph is
 * resubmitted. bench/dask-driver-kill.py does one such run; this module runs it `runs` times and
 * summarizes. Prints numbers, asserts nothing but the results' correctness (STYLE.md §17).
 *
 *   node bench/dask-driver-kill.ts [--runs N] [--workers N]
 *
 * `runDaskDriverKill` resolves to undefined, having printed why, when Python cannot import
 * `distributed` (apt-get install python3-distributed; bench/install-dask.sh).
 */
import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { formatMs, printTable, progress, summarize, track } from './helpers.ts'
import type { Summary } from './helpers.ts'

const SCRIPT = join(fileURLToPath(new URL('.', import.meta.url)), 'dask-driver-kill.py')
/** Runs by default: each takes ~15-20 s on a 2-core machine (three cluster start-ups and three graphs). */
const RUNS_DEFAULT = 5
/** Worker processes × 1 thread: the machine's 2 cores, as in bench/workflows.bench.ts. */
const WORKERS_DEFAULT = 2
/**
 * One run of the script, in ms. The script ends itself at 150 s (RUN_TIMEOUT_S); this is past it,
 * so the script's own clean-up (it kills its cluster by process group) normally runs first.
 */
const RUN_TIMEOUT_MS = 180_000
/** After SIGTERM the script has this long to kill its cluster before it is SIGKILLed. */
const STOP_GRACE_MS = 15_000
/** Probing whether a Python imports `distributed` (the import alone takes ~1 s). */
const PROBE_TIMEOUT_MS = 30_000

export interface DaskKillOptions {
  /** Runs of the script. Default 5. */
  runs?: number
  /** Dask worker processes, 1 to 4. Default 2. */
  workers?: number
  /** Python to use; default the first of /usr/bin/python3, python3 that imports `distributed`. */
  python?: string
  /** Called before each run (1-based). */
  onRun?: (run: number, runs: number) => void
}

/** One run, as bench/dask-driver-kill.py prints it. Times are ms after the SIGKILL. */
export interface DaskKillRun {
  distributed: string
  python: string
  workers: number
  taskMs: number
  tasks: number
  faultFreeMakespanMs: number
  faultFreeMatched: boolean
  kill: {
    startedAtKill: number
    statusesAtKill: Record<string, number>
    statusesAfter: Record<string, number>
    /** Until no future of the graph was pending any more. */
    noticedMs: number
    /** What `result()` on the graph's last future raised. */
    resultError: string | null
    clientStatus: string
  }
  clientReconnected: boolean
  workersRestarted: number
  afterKill: {
    schedulerSpawnedMs: number
    clientConnectedMs: number
    workersExitedMs: number | null
    workersJoinedMs: number
    resubmittedMs: number
    firstTaskMs: number
    doneMs: number
  }
  resultMatched: boolean
  executions: {
    tasks: number
    executedBeforeRestart: number
    resubmittedExecutions: number
    /** Tasks that had run before the kill and ran again after it. */
    rerun: number
    executionsBeyondFirst: number
    maxExecutionsPerKey: number
    keysNeverRun: number
  }
}

export interface DaskKillResult {
  distributed: string
  python: string
  workers: number
  tasks: number
  taskMs: number
  runs: DaskKillRun[]
  /** The graph's makespan without faults, on the same cluster: the yardstick for the times below. */
  faultFree: Summary
  /** SIGKILL → every future of the graph out of `pending`. */
  noticed: Summary
  /** SIGKILL → the client connected to the new scheduler. */
  clientConnected: Summary
  /** SIGKILL → the last old worker process exited (Dask workers close when their scheduler dies); none if they rejoined. */
  workersExited: Summary
  /** SIGKILL → all workers registered with the new scheduler. */
  workersJoined: Summary
  /** SIGKILL → the first task of the resubmitted graph started: the takeover time. */
  firstTask: Summary
  /** SIGKILL → the resubmitted graph's result. */
  done: Summary
  /** Tasks that had run before the kill and ran again. */
  rerun: Summary
  /** Tasks that had started before the kill. */
  startedBeforeKill: Summary
  /** Every future cancelled in every run. */
  allCancelled: boolean
  /** The exceptions `result()` raised, distinct. */
  resultErrors: string[]
  /** Runs whose resubmitted graph returned the fault-free result. */
  resultsMatched: number
}

/** The Python with Dask distributed: Debian's package installs it for /usr/bin/python3. */
export function daskPython (): string | undefined {
  for (const python of ['/usr/bin/python3', 'python3']) {
    const probe = spawnSync(python, ['-c', 'import distributed'], { stdio: 'ignore', timeout: PROBE_TIMEOUT_MS })
    if (probe.status === 0) return python
  }
  return undefined
}

/** One run of the script; its last line of output is the JSON. */
async function runOnce (python: string, workers: number): Promise<DaskKillRun> {
  const child = track(spawn(python, [SCRIPT, '--workers', String(workers)], { stdio: ['ignore', 'pipe', 'pipe'] }))
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (chunk: Buffer) => { if (stdout.length < 1_000_000) stdout += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-20_000) })
  let killTimer: ReturnType<typeof setTimeout> | undefined
  // SIGTERM first: the script's handler kills the scheduler's and the workers' process groups.
  const timer = setTimeout(() => {
    child.kill('SIGTERM')
    killTimer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS)
  }, RUN_TIMEOUT_MS)
  const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
  clearTimeout(timer)
  clearTimeout(killTimer)
  if (code !== 0) throw new Error(`bench/dask-driver-kill.py exited with ${String(code ?? child.signalCode)}: ${stderr.slice(-2000)}`)
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as DaskKillRun
}

function summarizeRuns (runs: DaskKillRun[]): DaskKillResult {
  const first = runs[0]
  return {
    distributed: first.distributed,
    python: first.python,
    workers: first.workers,
    tasks: first.tasks,
    taskMs: first.taskMs,
    runs,
    faultFree: summarize(runs.map(r => r.faultFreeMakespanMs)),
    noticed: summarize(runs.map(r => r.kill.noticedMs)),
    clientConnected: summarize(runs.map(r => r.afterKill.clientConnectedMs)),
    workersExited: summarize(runs.flatMap(r => r.afterKill.workersExitedMs ?? [])),
    workersJoined: summarize(runs.map(r => r.afterKill.workersJoinedMs)),
    firstTask: summarize(runs.map(r => r.afterKill.firstTaskMs)),
    done: summarize(runs.map(r => r.afterKill.doneMs)),
    rerun: summarize(runs.map(r => r.executions.rerun)),
    startedBeforeKill: summarize(runs.map(r => r.kill.startedAtKill)),
    allCancelled: runs.every(r => r.kill.statusesAfter.cancelled === r.tasks),
    resultErrors: [...new Set(runs.map(r => r.kill.resultError ?? 'none'))],
    resultsMatched: runs.filter(r => r.resultMatched && r.faultFreeMatched).length
  }
}

/**
 * Run the Dask driver-kill scenario `runs` times; undefined (with the reason printed) when no
 * Python here imports `distributed`. A run that fails throws: a broken comparison should be seen.
 */
export async function runDaskDriverKill (options: DaskKillOptions = {}): Promise<DaskKillResult | undefined> {
  const runs = options.runs ?? RUNS_DEFAULT
  const workers = options.workers ?? WORKERS_DEFAULT
  if (!Number.isSafeInteger(runs) || runs < 1) throw new RangeError(`runs must be a positive integer, got ${runs}`)
  if (!Number.isSafeInteger(workers) || workers < 1 || workers > 4) throw new RangeError(`workers must be 1 to 4, got ${workers}`)
  const python = options.python ?? daskPython()
  if (python === undefined) {
    process.stdout.write('Dask driver kill: skipped, no Python here imports distributed (apt-get install python3-distributed; bench/install-dask.sh)\n')
    return undefined
  }
  const results: DaskKillRun[] = []
  for (let run = 1; run <= runs; run++) {
    options.onRun?.(run, runs)
    results.push(await runOnce(python, workers))
  }
  return summarizeRuns(results)
}

/** The summary as a table: p50 and max of each time, re-runs, and what the client saw. */
export function printDaskDriverKill (result: DaskKillResult): void {
  const row = (what: string, s: Summary, format: (x: number) => string): string[] => [what, format(s.p50), format(s.min), format(s.max)]
  const count = (x: number): string => x.toFixed(0)
  printTable(`Driver loss on Dask: scheduler SIGKILLed halfway through ${result.tasks} tasks of ${result.taskMs} ms (${result.runs.length} runs)`,
    ['what', 'p50', 'min', 'max'], [
      row('fault-free run of the graph', result.faultFree, formatMs),
      row('tasks started before the kill', result.startedBeforeKill, count),
      row('kill → client noticed (futures cancelled)', result.noticed, formatMs),
      row('kill → client reconnected to new scheduler', result.clientConnected, formatMs),
      row('kill → old workers exited (then restarted)', result.workersExited, formatMs),
      row('kill → workers rejoined', result.workersJoined, formatMs),
      row('kill → first task of the resubmitted graph', result.firstTask, formatMs),
      row('kill → resubmitted graph done', result.done, formatMs),
      row('tasks re-run (had run before the kill)', result.rerun, count)
    ], [
      `Dask ${result.distributed} on Python ${result.python}: ${result.workers} worker processes × 1 thread, each with a nanny, on 127.0.0.1.`,
      `Every future cancelled: ${result.allCancelled ? 'yes' : 'no'}; result() raised: ${result.resultErrors.join('; ')}.`,
      `Resubmitted graph returned the fault-free result: ${result.resultsMatched} of ${result.runs.length} runs.`,
      'The new scheduler starts the moment the client notices; each worker is restarted the moment it exits.'
    ])
}

if (import.meta.main) {
  const args = process.argv.slice(2)
  const flag = (name: string): number | undefined => {
    const at = args.indexOf(name)
    return at >= 0 ? Number(args[at + 1]) : undefined
  }
  const result = await runDaskDriverKill({
    runs: flag('--runs'),
    workers: flag('--workers'),
    onRun: (run, runs) => progress(`Dask driver kill: run ${run} of ${runs}`)
  })
  if (result !== undefined) printDaskDriverKill(result)
}
