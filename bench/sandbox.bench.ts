/**
 * Sandbox benchmark: prints numbers, asserts nothing (STYLE.md §17). Each sandbox figure is
 * printed beside a baseline measured in the same run: the same code in plain V8, in-process.
 *
 *   node bench/sandbox.bench.ts
 *
 * 1. CPU-bound: fib(27) and fib(32) in the sandbox vs in-process; the slowdown factor.
 * 2. Warm no-op call latency, p50/p99: through the sandbox (JS and wasm) vs a plain call.
 * 3. Cold start: the first call of a new ~100 KB function (new isolate, compile, run).
 *
 *   node bench/sandbox.bench.ts warm
 *
 * Only the warm no-op JS call, sequential and with back-to-back calls: p50/p99 and the CPU each
 * call costs on the main thread (process.threadCpuUsage) and in the whole process (the isolate
 * threads included). Short, for before/after comparisons on a noisy machine.
 */

import { createSandbox, DEFAULT_LIMITS } from '../src/sandbox/index.ts'
import type { SandboxCall } from '../src/sandbox/index.ts'
import { wasmAdd } from '../test/fixtures/functions/wasm-modules.ts'

const encoder = new TextEncoder()
const limits = { ...DEFAULT_LIMITS, timeMs: 60_000 }

const FIB_SOURCE = 'export function fib (n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) }\nexport function noop () { return 0 }\n'
/** fib(27) is short enough that per-call setup shows; fib(32) shows the steady-state code speed. */
const FIB_NS = [27, 32]
const FIB_RUNS = 7
const WARM_CALLS = 2000
const PLAIN_CALLS = 200_000
const COLD_RUNS = 15
const COLD_SOURCE_BYTES = 100 * 1024

function quantile (samples: number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

function row (label: string, value: string): void {
  console.log(`  ${label.padEnd(44)} ${value}`)
}

const ms = (x: number): string => `${x.toFixed(3)} ms`
const us = (x: number): string => `${(x * 1000).toFixed(1)} µs`

/** A ~100 KB module: many small helpers, one export using a few of them. */
function bigSource (salt: number): string {
  let source = `// variant ${salt}\n`
  for (let i = 0; source.length < COLD_SOURCE_BYTES; i++) {
    source += `function helper${i} (x) { const o = { a: x, b: [x, x + ${i}], c: 'label-${i}' }; return o.a + o.b.length + ${i} }\n`
  }
  return source + 'export function run (x) { return helper0(x) + helper1(x) }\n'
}

/** Warm no-op JS calls: latency and CPU per call; `gapMs` idles between calls (0: back to back). */
async function warmOnly (): Promise<void> {
  const sandbox = createSandbox()
  const noop: SandboxCall = { functionId: 'bench-noop', kind: 'js', code: encoder.encode(FIB_SOURCE), exportName: 'noop', args: [], seed: new Uint8Array(8), limits }
  for (let i = 0; i < 200; i++) await sandbox.run(noop)
  for (const gapMs of [0, 1]) {
    const latency: number[] = []
    const mainBefore = process.threadCpuUsage()
    const allBefore = process.cpuUsage()
    let idleMs = 0
    for (let i = 0; i < WARM_CALLS; i++) {
      const t = performance.now()
      await sandbox.run(noop)
      latency.push(performance.now() - t)
      if (gapMs > 0) {
        const g = performance.now()
        await new Promise(resolve => setTimeout(resolve, gapMs))
        idleMs += performance.now() - g
      }
    }
    const main = process.threadCpuUsage(mainBefore)
    const all = process.cpuUsage(allBefore)
    const perCallUs = (u: { user: number, system: number }): string => `${((u.user + u.system) / WARM_CALLS).toFixed(1)} µs`
    console.log(`\nWarm no-op js call, ${WARM_CALLS} calls, ${gapMs === 0 ? 'back to back' : `${gapMs} ms idle between calls`}`)
    row('latency p50 / p99', `${ms(quantile(latency, 0.5))} / ${ms(quantile(latency, 0.99))}`)
    row('CPU per call: main thread / whole process', `${perCallUs(main)} / ${perCallUs(all)}`)
    if (gapMs > 0) row('mean idle gap', ms(idleMs / WARM_CALLS))
  }
  console.log(`\nsandbox stats: ${JSON.stringify(sandbox.stats())}`)
  await sandbox.close()
}

async function main (): Promise<void> {
  const sandbox = createSandbox()
  const call = (over: Partial<SandboxCall>): SandboxCall => ({
    functionId: 'bench-fib', kind: 'js', code: encoder.encode(FIB_SOURCE), exportName: 'noop', args: [], seed: new Uint8Array(8), limits, ...over
  })
  const plain = await import(`data:text/javascript,${encodeURIComponent(FIB_SOURCE)}`) as { fib: (n: number) => number, noop: () => number }

  console.log(`Rhizome sandbox benchmark (node ${process.version}, ${new Date().toISOString()})`)

  // 1. CPU-bound.
  await sandbox.run(call({ exportName: 'fib', args: [20] }))
  for (const n of FIB_NS) {
    const inside: number[] = []
    const outside: number[] = []
    for (let i = 0; i < FIB_RUNS; i++) {
      inside.push((await sandbox.run(call({ exportName: 'fib', args: [n] }))).runMs)
      const t = performance.now()
      plain.fib(n)
      outside.push(performance.now() - t)
    }
    console.log(`\nCPU-bound: fib(${n}), median of ${FIB_RUNS}`)
    row('sandbox (whole call, fresh context)', ms(quantile(inside, 0.5)))
    row('plain V8, in-process (warm JIT)', ms(quantile(outside, 0.5)))
    row('slowdown', `${(quantile(inside, 0.5) / quantile(outside, 0.5)).toFixed(2)}×`)
  }

  // 2. Warm no-op latency.
  const warmJs: number[] = []
  const warmWasm: number[] = []
  const wasmCall: SandboxCall = { functionId: 'bench-wasm', kind: 'wasm', code: wasmAdd, exportName: 'add', args: [1, 2], seed: new Uint8Array(8), limits }
  for (let i = 0; i < 50; i++) {
    await sandbox.run(call({}))
    await sandbox.run(wasmCall)
  }
  for (let i = 0; i < WARM_CALLS; i++) {
    let t = performance.now()
    await sandbox.run(call({}))
    warmJs.push(performance.now() - t)
    t = performance.now()
    await sandbox.run(wasmCall)
    warmWasm.push(performance.now() - t)
  }
  const plainCalls: number[] = []
  for (let i = 0; i < PLAIN_CALLS; i++) {
    const t = performance.now()
    await plain.noop()
    plainCalls.push(performance.now() - t)
  }
  console.log(`\nWarm no-op call latency (${WARM_CALLS} sandbox calls, ${PLAIN_CALLS} plain calls)`)
  row('sandbox js (fresh context per call) p50 / p99', `${ms(quantile(warmJs, 0.5))} / ${ms(quantile(warmJs, 0.99))}`)
  row('sandbox wasm (fresh instance per call) p50 / p99', `${ms(quantile(warmWasm, 0.5))} / ${ms(quantile(warmWasm, 0.99))}`)
  row('plain awaited call p50 / p99', `${us(quantile(plainCalls, 0.5))} / ${us(quantile(plainCalls, 0.99))}`)

  // 3. Cold start of a ~100 KB function.
  const cold: number[] = []
  const warmBig: number[] = []
  for (let i = 0; i < COLD_RUNS; i++) {
    const code = encoder.encode(bigSource(i))
    const first = await sandbox.run(call({ functionId: `bench-cold-${i}`, code, exportName: 'run', args: [1] }))
    cold.push(first.runMs)
    warmBig.push((await sandbox.run(call({ functionId: `bench-cold-${i}`, code, exportName: 'run', args: [1] }))).runMs)
  }
  console.log(`\nCold start: first call of a new ${Math.round(COLD_SOURCE_BYTES / 1024)} KB function (${COLD_RUNS} functions)`)
  row('cold (new isolate + compile + run) p50 / max', `${ms(quantile(cold, 0.5))} / ${ms(Math.max(...cold))}`)
  row('second call (warm isolate, code cache) p50', ms(quantile(warmBig, 0.5)))

  const stats = sandbox.stats()
  console.log(`\nsandbox stats: ${JSON.stringify(stats)}`)
  await sandbox.close()
}

if (process.argv[2] === 'warm') await warmOnly()
else await main()
