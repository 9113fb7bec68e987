/**
 * `npm run bench` — runs every bench/*.bench.ts, one after another, each in its own Node process
 * (so one benchmark's heap, JIT state and leftover handles cannot skew the next), streaming its
 * output. `node bench/run.ts peer sandbox` runs only the files whose name contains one of the
 * words.
 *
 * Each file gets `--expose-gc` (memory benchmarks force collections) and at most
 * `FILE_TIME_MS`; past that, its whole process group is stopped — peers it started included —
 * and the run goes on with the next file. Benchmarks print numbers; they never fail on a number.
 * A file fails only if it crashes or runs out of time, and then the exit code is 1.
 */
import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import type { ChildProcess } from 'node:child_process'

/** Five minutes: the slowest benchmark is meant to take about three on a 2-core machine. */
const FILE_TIME_MS = 5 * 60_000
/** After SIGTERM a benchmark has this long to clean up before SIGKILL. */
const STOP_GRACE_MS = 10_000

const BENCH_DIR = dirname(fileURLToPath(import.meta.url))

type Outcome = 'ok' | 'failed' | 'timed out' | 'interrupted'

interface Result { file: string, outcome: Outcome, ms: number, detail: string }

let current: ChildProcess | undefined
let interrupted = false

/** Signal the benchmark's whole process group: it and the peers it spawned. */
function signalGroup (child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    // The group is already gone.
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interrupted = true
    if (current !== undefined) signalGroup(current, signal)
  })
}

async function runFile (file: string): Promise<Result> {
  const start = performance.now()
  process.stdout.write(`\n=== ${file}\n`)
  // detached: the child leads a new process group, so a time-out can stop everything it started.
  const child = spawn(process.execPath, ['--expose-gc', join(BENCH_DIR, file)], { stdio: 'inherit', detached: true })
  current = child
  let timedOut = false
  let killTimer: ReturnType<typeof setTimeout> | undefined
  const timer = setTimeout(() => {
    timedOut = true
    process.stdout.write(`\n${file}: over the ${FILE_TIME_MS / 1000} s limit; stopping it\n`)
    signalGroup(child, 'SIGTERM')
    killTimer = setTimeout(() => signalGroup(child, 'SIGKILL'), STOP_GRACE_MS)
  }, FILE_TIME_MS)
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(resolve => {
    child.once('error', () => resolve([null, null]))
    child.once('exit', (c, s) => resolve([c, s]))
  })
  clearTimeout(timer)
  clearTimeout(killTimer)
  // Whatever the benchmark left running in its group (it crashed before cleaning up) goes too.
  signalGroup(child, 'SIGKILL')
  current = undefined
  const ms = performance.now() - start
  const detail = signal !== null ? `signal ${signal}` : `exit code ${String(code)}`
  const outcome: Outcome = timedOut ? 'timed out' : interrupted ? 'interrupted' : code === 0 ? 'ok' : 'failed'
  return { file, outcome, ms, detail }
}

async function main (): Promise<number> {
  const words = process.argv.slice(2)
  const all = readdirSync(BENCH_DIR).filter(f => f.endsWith('.bench.ts')).sort()
  const files = all.filter(f => words.length === 0 || words.some(w => f.includes(w)))
  if (files.length === 0) {
    process.stderr.write(`no benchmark matches ${words.map(w => JSON.stringify(w)).join(', ')}; there are: ${all.join(', ') || 'none'}\n`)
    return 2
  }
  const started = performance.now()
  const results: Result[] = []
  for (const file of files) {
    if (interrupted) break
    results.push(await runFile(file))
  }
  const seconds = (performance.now() - started) / 1000
  process.stdout.write('\n')
  for (const r of results) {
    process.stdout.write(`  ${r.outcome === 'ok' ? 'ok  ' : 'FAIL'}  ${basename(r.file).padEnd(32)} ${(r.ms / 1000).toFixed(1).padStart(6)} s  ${r.outcome === 'ok' ? '' : `${r.outcome} (${r.detail})`}\n`)
  }
  const count = (outcome: Outcome): number => results.filter(r => r.outcome === outcome).length
  const skipped = files.length - results.length
  process.stdout.write(`bench: ${files.length} file(s) in ${seconds.toFixed(1)} s — ${count('ok')} ok, ${count('failed')} failed, ` +
    `${count('timed out')} timed out${interrupted ? `, interrupted (${skipped} not run)` : ''}\n`)
  return results.every(r => r.outcome === 'ok') && !interrupted ? 0 : 1
}

process.exitCode = await main()
