/**
 * Task benchmark: a function call on another peer, end to end, beside its baselines from the
 * same run. Prints numbers, asserts nothing (STYLE.md §17).
 *
 *   node bench/task.bench.ts
 *
 * Three real peers (the composition root `startNode`: libp2p, SQLite, sandbox) run in this one
 * process on 127.0.0.1, so a round trip costs what the protocols cost, not a process hop.
 * 1. Warm remote call of a no-op function (peer A asks peer B), p50/p99, next to a raw libp2p
 *    echo on an open stream between the same two peers, a local sandbox call, and a plain
 *    in-process call.
 * 2. Cold start: a peer that has never seen a ~100 KB function, from request to verified result
 *    (fetch of manifest and code, verification, compile, run), several fresh functions.
 * 3. CPU-bound fib(27) as a remote task vs the same code in plain V8 here.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bundleFunctions } from '../src/functions/bundle.ts'
import { createManifest, encodeManifest } from '../src/functions/manifest.ts'
import { createLogger, defaultConfig, startNode } from '../src/node/index.ts'
import { DEFAULT_LIMITS } from '../src/sandbox/index.ts'
import { formatMs, printTable, progress, sample, summarize } from './helpers.ts'
import type { RhizomeNode } from '../src/node/index.ts'
import type { CID } from 'multiformats/cid'

/** Samples per row and the time each row may take; enough for a stable p99 on 2 cores. */
const WARM_CALLS = 1000
const ROW_BUDGET_MS = 20_000
const COLD_RUNS = 5
const COLD_SOURCE_BYTES = 100 * 1024
const FIB_RUNS = 7
const ECHO_PROTOCOL = '/rhizome-bench/task-echo/1.0.0'

const dir = await mkdtemp(join(tmpdir(), 'rhizome-task-bench-'))
const networkId = `bench-${process.pid}`
const nodes: RhizomeNode[] = []

async function startPeer (name: string, bootstrap: string[]): Promise<RhizomeNode> {
  const config = {
    ...defaultConfig(join(dir, name)),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap,
    mdns: false,
    networkId,
    announceIntervalMs: 500,
    suspectAfterMs: 2000,
    goneAfterMs: 4000
  }
  const node = await startNode(config, createLogger('rhizome', { level: 'silent' }))
  nodes.push(node)
  return node
}

async function deploy (on: RhizomeNode, name: string, source: string): Promise<CID> {
  const file = join(dir, `${name}.ts`)
  await writeFile(file, source)
  const bundle = await bundleFunctions(file)
  const manifest = encodeManifest(await createManifest({ name, kind: 'js', code: bundle.code, exports: bundle.exports, limits: { ...DEFAULT_LIMITS, timeMs: 60_000 } }))
  const result = await on.functions.deploy(manifest, bundle.code, 1)
  return on.functions.resolve(result.cid)
}

function row (name: string, samples: number[]): string[] {
  const s = summarize(samples)
  return [name, String(s.n), formatMs(s.p50), formatMs(s.p99)]
}

try {
  progress('starting 3 peers')
  const a = await startPeer('a', [])
  const bootstrap = [a.addrs().find(x => x.includes('/tcp/'))!]
  const b = await startPeer('b', bootstrap)
  const c = await startPeer('c', bootstrap)
  const deadline = Date.now() + 30_000
  while (nodes.some(n => n.peers().filter(p => p.state === 'alive').length < 2)) {
    if (Date.now() > deadline) throw new Error('peers did not meet within 30 s')
    await new Promise(resolve => setTimeout(resolve, 100))
  }

  // 1. Warm calls.
  progress('warm calls')
  const fn = await deploy(a, 'bench-fns', 'export function noop () { return null }\nexport function fib (n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) }\n')
  const rows: string[][] = []
  const plain = async (x: unknown): Promise<unknown> => x
  rows.push(row('plain in-process async call (floor)', await sample(100_000, ROW_BUDGET_MS, async i => await plain(i), 1000)))

  await b.host.handle(ECHO_PROTOCOL, async (stream) => {
    for await (const chunk of stream) {
      if (!stream.send(chunk)) await stream.onDrain()
    }
  })
  const echo = await a.host.dialProtocol(b.peerId, ECHO_PROTOCOL)
  const reader = echo[Symbol.asyncIterator]()
  const ping = new Uint8Array(16).fill(7)
  rows.push(row('raw libp2p echo, 16 B, open stream A→B', await sample(WARM_CALLS * 3, ROW_BUDGET_MS, async () => {
    echo.send(ping)
    let got = 0
    while (got < ping.byteLength) got += (await reader.next()).value!.byteLength
  }, 100)))
  await echo.close().catch(() => {})

  rows.push(row('no-op task in the local sandbox (A on A)', await sample(WARM_CALLS, ROW_BUDGET_MS, async () => await a.call(fn, 'noop', [], { on: a.peerId.toString() }), 50)))
  rows.push(row('warm remote no-op task (A asks B)', await sample(WARM_CALLS, ROW_BUDGET_MS, async () => await a.call(fn, 'noop', [], { on: b.peerId.toString() }), 50)))
  printTable('1. Round trip of a no-op call', ['path', 'n', 'p50', 'p99'], rows, [
    'The remote task is: encode, RPC on a long-lived stream, queue, sandbox (fresh context), store the',
    'result blob, sign; the caller recomputes the task id, verifies the signature and the result hash.'
  ])

  // 2. Cold start on a peer that has never seen the function.
  progress('cold starts')
  const cold: number[] = []
  const fetchMs: number[] = []
  for (let run = 0; run < COLD_RUNS; run++) {
    const table = Array.from({ length: Math.ceil(COLD_SOURCE_BYTES / 24) }, (_, i) => `${(i * 7919 + run) % 1_000_003}`).join(',')
    const fresh = await deploy(a, `cold-${run}`, `const TABLE = [${table}]\nexport function size () { return TABLE.length }\n`)
    // Deployed with one replica: at most one of B and C holds it; ask the other.
    const worker = (await b.blobs.has(fresh)) ? c : b
    const start = performance.now()
    const result = await a.call(fresh, 'size', [], { on: worker.peerId.toString() })
    cold.push(performance.now() - start)
    fetchMs.push(result.timings.fetchMs)
  }
  const coldSummary = summarize(cold)
  const fetchSummary = summarize(fetchMs)
  printTable(`2. Cold start of a ~${COLD_SOURCE_BYTES / 1024} KB function on a peer that never saw it`, ['runs', 'p50 total', 'max total', 'p50 of it fetching'], [
    [String(coldSummary.n), formatMs(coldSummary.p50), formatMs(coldSummary.max), formatMs(fetchSummary.p50)]
  ])

  // 3. CPU-bound.
  progress('cpu-bound')
  const fibLocal = (n: number): number => n < 2 ? n : fibLocal(n - 1) + fibLocal(n - 2)
  const plainFib = summarize(await sample(FIB_RUNS, ROW_BUDGET_MS, () => fibLocal(27), 2))
  const remoteFib = summarize(await sample(FIB_RUNS, ROW_BUDGET_MS, async () => await a.call(fn, 'fib', [27], { on: b.peerId.toString() }), 2))
  printTable('3. CPU-bound fib(27)', ['where', 'p50', 'slowdown'], [
    ['plain V8, in-process', formatMs(plainFib.p50), '1.0×'],
    ['remote task (sandbox on B, via A)', formatMs(remoteFib.p50), `${(remoteFib.p50 / plainFib.p50).toFixed(1)}×`]
  ], ['A task also pays the fixed per-call cost of row 1; bench/sandbox.bench.ts shows the code speed alone.'])
} finally {
  await Promise.allSettled(nodes.map(async n => await n.stop()))
  await rm(dir, { recursive: true, force: true })
}
