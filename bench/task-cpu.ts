/**
 * CPU per remote task, caller and worker apart — the numbers behind docs/PERFORMANCE.md's
 * before/after of the task path. Prints; asserts nothing.
 *
 *   node bench/task-cpu.ts [serial|par] [N] [--fn noop|task]
 *
 * A worker is a `rhizome node start` child process with one slot; the caller is a peer in this
 * process (`startNode`). `serial` makes N calls one after another (p50 latency); `par` keeps 16 in
 * flight. Every call has distinct arguments, so the worker runs it. `--fn noop` returns null (the
 * same result blob every time); `--fn task` is the WfInstances task function of
 * bench/workloads/graph.ts with no burn (a distinct small result every time). CPU per task: this
 * process (process.cpuUsage: main thread, the thread pool, the isolate threads) and the worker's
 * (/proc/PID/stat, 10 ms steps). Run it in two checkouts one after another to compare them.
 */
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { bundleFunctions } from '../src/functions/bundle.ts'
import { createManifest, encodeManifest } from '../src/functions/manifest.ts'
import { createLogger, defaultConfig, startNode } from '../src/node/index.ts'
import { DEFAULT_LIMITS } from '../src/sandbox/index.ts'
import { TestNetwork, waitFor } from '../test/helpers/peers.ts'
import { functionModuleSource } from './workloads/graph.ts'

const positional = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && all[i - 1] !== '--fn')
const mode = positional[0] ?? 'serial'
const calls = Number(positional[1] ?? 1000)
const fnKind = process.argv.includes('--fn') ? process.argv[process.argv.indexOf('--fn') + 1] : 'noop'
const IN_FLIGHT = 16
const WARMUP = 100

/** User + system CPU of a process in ms, from /proc (Linux). */
function processCpuMs (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

const net = await TestNetwork.create()
const worker = await net.addPeer(['--slots', '1', '--log-level', 'warn'])
const caller = await startNode({ ...defaultConfig(join(net.root, 'caller')), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [worker.tcpAddr], mdns: false, networkId: net.networkId, announceIntervalMs: 500, suspectAfterMs: 2000, goneAfterMs: 4000 }, createLogger('rhizome', { level: 'silent' }))
try {
  await waitFor('the caller to see the worker', () => caller.peers().some(p => p.state === 'alive'), 30_000, 100)
  const file = join(net.root, 'fn.js')
  await writeFile(file, fnKind === 'task' ? functionModuleSource() : 'export function noop (x) { return null }\n')
  const bundle = await bundleFunctions(file)
  const manifest = encodeManifest(await createManifest({ name: 'fn', kind: 'js', code: bundle.code, exports: bundle.exports, limits: { ...DEFAULT_LIMITS, timeMs: 60_000 } }))
  const fn = await caller.functions.resolve((await caller.functions.deploy(manifest, bundle.code, 1)).cid)
  const on = worker.peerId
  const call = async (i: number): Promise<unknown> => fnKind === 'task'
    ? await caller.call(fn, 'task', [`t${process.pid}:${i}`, 0], { on })
    : await caller.call(fn, 'noop', [i], { on })
  for (let i = 0; i < WARMUP; i++) await call(-1 - i)
  const pid = (worker as unknown as { child: { pid: number } }).child.pid
  const cpu0 = process.cpuUsage()
  const worker0 = processCpuMs(pid)
  const start = performance.now()
  const latencies: number[] = []
  if (mode === 'par') {
    let next = 0
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => { while (next < calls) await call(next++) }))
  } else {
    for (let i = 0; i < calls; i++) {
      const t = performance.now()
      await call(i)
      latencies.push(performance.now() - t)
    }
  }
  const ms = performance.now() - start
  const cpu = process.cpuUsage(cpu0)
  const workerMs = processCpuMs(pid) - worker0
  latencies.sort((a, b) => a - b)
  const p50 = latencies.length > 0 ? ` p50 ${latencies[latencies.length >> 1].toFixed(2)} ms,` : ''
  console.log(`${mode} ${fnKind}: ${calls} calls, ${Math.round(calls / ms * 1000)} tasks/s,${p50} CPU per task: caller ${((cpu.user + cpu.system) / calls / 1000).toFixed(2)} ms, worker ${(workerMs / calls).toFixed(2)} ms`)
} finally {
  await caller.stop()
  await net.close()
}
