/**
 * Real Rhizome peers, measured: start-up time, time for a small network to meet, memory, and the
 * cost of a request/response round trip — each next to a baseline measured in the same run
 * (STYLE.md §17: numbers are printed, never asserted).
 *
 *   1. spawn → "listening": `rhizome node start` vs a bare libp2p node vs an empty Node process
 *   2. five peers meeting through one bootstrap address, default and fast membership timing
 *   3. heap per membership entry (1,000 and 10,000 peers); RSS of idle processes
 *   4. round trips between two libp2p nodes in one process: libp2p ping, a raw stream, Rhizome's
 *      RpcService, and a plain async call as the floor
 *
 * Everything runs on 127.0.0.1 with mDNS off and a network id private to this run. Child
 * processes are killed and temporary data dirs removed on the way out, also on failure or Ctrl-C.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { rmSync } from 'node:fs'
import { availableParallelism, cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { RpcService } from '../src/net/rpc.ts'
import { defaultConfig } from '../src/node/config.ts'
import { createLogger } from '../src/node/logger.ts'
import { FrameDecoder, encodeFrame } from '../src/wire/frame.ts'
import { decodeEnvelope, encodeEnvelope } from '../src/wire/rpc.ts'
import { FAST_TIMING, MAIN, TestPeer, waitFor } from '../test/helpers/peers.ts'
import {
  HELPERS, formatBytes, formatMs, formatRate, printTable, progress, rssBytes, runJsonChild, sample, sleep,
  spawnUntil, stopChild, summarize, track
} from './helpers.ts'
import type { MembershipHeapResult, Started } from './helpers.ts'
import type { Libp2p, StreamMessageEvent } from '@libp2p/interface'
import type { Ping } from '@libp2p/ping'

/** Runs per start-up measurement; each costs about a second of one core. */
const STARTUP_RUNS = 5
/** Runs per mesh timing; a default-timing run takes a few seconds. */
const MESH_RUNS = 3
const MESH_PEERS = 5
/** Past this a network that has not met is broken, not slow. */
const MESH_TIMEOUT_MS = 60_000
/** How often the /v1/peers of every peer is read while waiting for the mesh. */
const MESH_POLL_MS = 50
/** How long a process sits idle before its RSS is read. */
const IDLE_MS = 3000
const HEAP_SIZES = [1000, 10_000]
const HEAP_RUNS = 5
/** Round-trip sample counts, each also capped by ROUND_TRIP_BUDGET_MS. */
const PING_ROUNDS = 300
const ROUND_TRIPS = 3000
const PIPELINED_MESSAGES = 20_000
/** Requests kept in flight when pipelining; below the echo protocol's inflightMax. */
const PIPELINE_WINDOW = 256
const CALL_ROUNDS = 100_000
const ROUND_TRIP_BUDGET_MS = 15_000

// Peers started here take their settings from flags only: a RHIZOME_API_PORT or RHIZOME_BOOTSTRAP
// in the caller's environment would make them collide or reach beyond 127.0.0.1.
for (const key of Object.keys(process.env)) {
  if (key.startsWith('RHIZOME_')) delete process.env[key]
}

const runId = `${process.pid}-${Math.floor(Math.random() * 1e6)}`
const root = await mkdtemp(join(tmpdir(), 'rhizome-bench-'))
const startedAt = performance.now()

// Ctrl-C or a runner's time limit: children are killed by the exit hook in helpers.ts; the data
// dirs go here, synchronously, since nothing async runs after a signal handler calls exit.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    rmSync(root, { recursive: true, force: true })
    process.exit(130)
  })
}

function peerArgs (networkId: string, extra: string[] = []): string[] {
  return ['--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--network-id', networkId, '--log-level', 'warn', ...extra]
}

function statsRow (label: string, samples: number[]): string[] {
  const s = summarize(samples)
  return [label, String(s.n), formatMs(s.p50), formatMs(s.min), formatMs(s.max)]
}

// ---------------------------------------------------------------------------------------------
// 1. Start-up

async function startup (): Promise<void> {
  progress(`start-up: ${STARTUP_RUNS} runs of each kind`)
  const floor: number[] = []
  const bare: number[] = []
  const fresh: number[] = []
  const restart: number[] = []
  // Interleaved, so that drift in machine load touches every kind alike.
  for (let run = 0; run < STARTUP_RUNS; run++) {
    const empty = await spawnUntil(['-e', 'console.log("listening")'], 'listening')
    floor.push(empty.ms)
    await stopChild(empty.child)

    const lib = await spawnUntil([HELPERS, 'bare-libp2p'], 'listening')
    bare.push(lib.ms)
    await stopChild(lib.child)

    const dataDir = join(root, `start-${run}`)
    const args = [MAIN, 'node', 'start', '--data-dir', dataDir, ...peerArgs(`bench-${runId}-start`)]
    const first = await spawnUntil(args, 'listening')
    fresh.push(first.ms)
    await stopChild(first.child)
    const again = await spawnUntil(args, 'listening')
    restart.push(again.ms)
    await stopChild(again.child)
    await rm(dataDir, { recursive: true, force: true })
  }
  printTable('1. Spawn to "listening" (ms from spawn until the line appears on stdout)',
    ['process', 'runs', 'median', 'min', 'max'],
    [
      statsRow('empty Node process (floor)', floor),
      statsRow('bare libp2p: tcp + noise + yamux', bare),
      statsRow('rhizome node start, new data dir', fresh),
      statsRow('rhizome node start, existing data dir', restart)
    ],
    ['a new data dir also creates the identity and the SQLite schema']
  )
}

// ---------------------------------------------------------------------------------------------
// 2. Five peers meet

interface MeshRun { firstListeningMs: number, allListeningMs: number, meshedMs: number, rss: number[] }

async function meshRun (label: string, run: number, timing: string[], measureRss: boolean): Promise<MeshRun> {
  const networkId = `bench-${runId}-${label}-${run}`
  const peers: TestPeer[] = []
  const dirs: string[] = []
  const launch = (extra: string[]): Promise<void> => {
    const dataDir = join(root, `${networkId}-${peers.length + 1}`)
    dirs.push(dataDir)
    const peer = new TestPeer(dataDir, peerArgs(networkId, [...timing, ...extra]))
    peers.push(peer)
    const started = peer.start()
    if (peer.child !== undefined) track(peer.child)
    return started
  }
  try {
    const t0 = performance.now()
    await launch([])
    const firstListeningMs = performance.now() - t0
    const bootstrap = ['--bootstrap', peers[0].tcpAddr]
    await Promise.all(Array.from({ length: MESH_PEERS - 1 }, async () => await launch(bootstrap)))
    const allListeningMs = performance.now() - t0
    const ids = peers.map(p => p.peerId)
    await waitFor(`${MESH_PEERS} peers to see each other alive`, async () => {
      const views = await Promise.all(peers.map(async p => await p.peers()))
      return views.every((view, i) => {
        const alive = new Set(view.filter(e => e.state === 'alive').map(e => e.peerId))
        return ids.every((id, j) => j === i || alive.has(id))
      })
    }, MESH_TIMEOUT_MS, MESH_POLL_MS)
    const meshedMs = performance.now() - t0
    let rss: number[] = []
    if (measureRss) {
      await sleep(IDLE_MS)
      rss = peers.map(p => rssBytes(p.child?.pid)).filter((b): b is number => b !== undefined)
    }
    return { firstListeningMs, allListeningMs, meshedMs, rss }
  } finally {
    await Promise.all(peers.map(async p => await p.stop('SIGKILL')))
    await Promise.all(dirs.map(async d => await rm(d, { recursive: true, force: true })))
  }
}

async function mesh (): Promise<number[]> {
  // The defaults are passed as flags, so the table says exactly what was measured.
  const defaults = defaultConfig(root)
  const defaultTiming = [
    '--announce-interval-ms', String(defaults.announceIntervalMs),
    '--suspect-after-ms', String(defaults.suspectAfterMs),
    '--gone-after-ms', String(defaults.goneAfterMs)
  ]
  const describe = (flags: string[]): string => [1, 3, 5].map(i => `${Number(flags[i]) / 1000} s`).join(' / ')
  const timings: Array<[string, string[], string]> = [
    ['default', defaultTiming, describe(defaultTiming)],
    ['fast', FAST_TIMING, describe(FAST_TIMING)]
  ]
  const rows: string[][] = []
  let rss: number[] = []
  for (const [label, timing, description] of timings) {
    const runs: MeshRun[] = []
    for (let run = 0; run < MESH_RUNS; run++) {
      progress(`${MESH_PEERS} peers meeting, ${label} timing, run ${run + 1}/${MESH_RUNS}`)
      const measureRss = label === 'default' && run === MESH_RUNS - 1
      const result = await meshRun(label, run, timing, measureRss)
      runs.push(result)
      if (measureRss) rss = result.rss
    }
    const meet = summarize(runs.map(r => r.meshedMs - r.allListeningMs))
    const total = summarize(runs.map(r => r.meshedMs))
    rows.push([
      `${label} (${description})`, String(runs.length),
      formatMs(summarize(runs.map(r => r.firstListeningMs)).p50),
      formatMs(summarize(runs.map(r => r.allListeningMs)).p50),
      `${formatMs(meet.p50)} (${formatMs(meet.min)}–${formatMs(meet.max)})`,
      `${formatMs(total.p50)} (${formatMs(total.min)}–${formatMs(total.max)})`
    ])
  }
  printTable(`2. ${MESH_PEERS} real peers meeting: peer 1 starts, then ${MESH_PEERS - 1} bootstrap from it at once (median, min–max)`,
    ['membership timing', 'runs', 'peer 1 up', `all ${MESH_PEERS} up`, 'up → all alive', 'spawn → all alive'],
    rows,
    [
      'timing: announce interval / suspect after / gone after; fast is the timing the integration tests use',
      `"all alive": every peer's /v1/peers lists the ${MESH_PEERS - 1} others as alive (polled every ${MESH_POLL_MS} ms)`
    ]
  )
  return rss
}

// ---------------------------------------------------------------------------------------------
// 3. Memory

async function memory (meshRss: number[]): Promise<void> {
  const heapRows: string[][] = []
  for (const entries of HEAP_SIZES) {
    progress(`membership heap, ${entries.toLocaleString('en-US')} peers × ${HEAP_RUNS}`)
    const results: MembershipHeapResult[] = []
    for (let i = 0; i < HEAP_RUNS; i++) {
      results.push(await runJsonChild<MembershipHeapResult>([HELPERS, 'membership-heap', String(entries)], ['--expose-gc']))
    }
    const perEntry = summarize(results.map(r => r.bytesPerEntry))
    heapRows.push([
      entries.toLocaleString('en-US'), String(results.length), formatBytes(summarize(results.map(r => r.heapBytes)).p50),
      formatBytes(perEntry.p50), `${formatBytes(perEntry.min)}–${formatBytes(perEntry.max)}`
    ])
  }
  printTable('3a. Heap held by one membership table (fresh process, after forced GC; median of runs)',
    ['peers', 'runs', 'heap', 'per entry', 'range'],
    heapRows,
    ['each entry: a 52-character peer id, 2 addresses, version and capacity, decoded by the real codec']
  )

  progress(`idle RSS: processes sit idle for ${IDLE_MS / 1000} s`)
  const dataDir = join(root, 'idle')
  const started: Array<[string, Started]> = []
  try {
    started.push(['empty Node process (floor)', await spawnUntil(['-e', 'setInterval(() => {}, 1000); console.log("listening")'], 'listening')])
    started.push(['bare libp2p: tcp + noise + yamux', await spawnUntil([HELPERS, 'bare-libp2p'], 'listening')])
    started.push(['rhizome peer, alone', await spawnUntil([MAIN, 'node', 'start', '--data-dir', dataDir, ...peerArgs(`bench-${runId}-idle`)], 'listening')])
    await sleep(IDLE_MS)
    const rows = started.map(([label, s]) => [label, formatBytes(rssBytes(s.child.pid))])
    if (meshRss.length > 0) {
      rows.push([`rhizome peer in a ${MESH_PEERS}-peer network (median)`, formatBytes(summarize(meshRss).p50)])
    }
    printTable(`3b. Resident memory (RSS) of one idle process, after ${IDLE_MS / 1000} s`, ['process', 'RSS'], rows)
  } finally {
    await Promise.all(started.map(async ([, s]) => await stopChild(s.child)))
    await rm(dataDir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------------
// 4. Round trips

const ECHO_PROTOCOL = '/rhizome-bench/raw-echo/1.0.0'
const RPC_ECHO_PROTOCOL = '/rhizome-bench/rpc-echo/1.0.0'
/** Each raw message is this many bytes, about the size of a small RPC envelope. */
const RAW_MESSAGE_BYTES = 16

async function libp2pNode (): Promise<Libp2p<{ ping: Ping }>> {
  return await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { ping: ping() }
  })
}

/** Counts bytes arriving on a stream and wakes whoever waits for a total. */
class ByteCounter {
  received = 0
  private waiter: { bytes: number, resolve: () => void } | undefined

  onMessage = (evt: StreamMessageEvent): void => {
    this.received += evt.data.byteLength
    if (this.waiter !== undefined && this.received >= this.waiter.bytes) {
      const { resolve } = this.waiter
      this.waiter = undefined
      resolve()
    }
  }

  async until (bytes: number, signal: AbortSignal): Promise<void> {
    if (this.received >= bytes) return
    signal.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { this.waiter = undefined; reject(signal.reason as Error) }
      signal.addEventListener('abort', onAbort, { once: true })
      this.waiter = { bytes, resolve: () => { signal.removeEventListener('abort', onAbort); resolve() } }
    })
  }
}

async function roundTrips (): Promise<void> {
  progress('round trips between two libp2p nodes in this process')
  const log = createLogger('bench', { level: 'silent' })
  const violations: Error[] = []
  const a = await libp2pNode()
  const b = await libp2pNode()
  const rpcA = new RpcService({ libp2p: a, log, onViolation: (_peer, _protocol, err) => { violations.push(err) } })
  const rpcB = new RpcService({ libp2p: b, log, onViolation: (_peer, _protocol, err) => { violations.push(err) } })
  const signal = AbortSignal.timeout(5 * ROUND_TRIP_BUDGET_MS)
  try {
    await a.dial(b.getMultiaddrs()[0], { signal })
    const rows: string[][] = []
    const row = (label: string, samples: number[], pipelined: string): void => {
      const s = summarize(samples)
      rows.push([label, s.n.toLocaleString('en-US'), formatMs(s.p50), formatMs(s.p99), pipelined])
    }

    // (c) the floor: an async call that does nothing.
    const echo = async (x: unknown): Promise<unknown> => x
    row('plain async function call (floor)', await sample(CALL_ROUNDS, ROUND_TRIP_BUDGET_MS, async i => await echo(i), 1000), '—')

    // Encoding and decoding alone: what RpcService adds in CPU, without I/O.
    const decoder = new FrameDecoder(64 * 1024)
    row('RPC envelope + frame codec only (no I/O)', await sample(ROUND_TRIPS * 5, ROUND_TRIP_BUDGET_MS, i => {
      const [req] = decoder.push(encodeFrame(encodeEnvelope({ id: i & 0x7fffffff, kind: 'req', body: { seq: i } })))
      const request = decodeEnvelope(req)
      const [res] = decoder.push(encodeFrame(encodeEnvelope({ id: request.id, kind: 'res', body: request.body })))
      return decodeEnvelope(res)
    }, 1000), '—')

    // (a) libp2p's ping service: opens a new stream for every ping.
    row('libp2p ping service (new stream per ping)', await sample(PING_ROUNDS, ROUND_TRIP_BUDGET_MS, async () => await a.services.ping.ping(b.peerId), 20), '—')

    // A raw echo on one long-lived stream: libp2p's own cost, no framing or envelope.
    await b.handle(ECHO_PROTOCOL, async (stream) => {
      for await (const chunk of stream) {
        if (!stream.send(chunk)) await stream.onDrain()
      }
    })
    const stream = await a.dialProtocol(b.peerId, ECHO_PROTOCOL, { signal })
    const counter = new ByteCounter()
    stream.addEventListener('message', counter.onMessage)
    const message = new Uint8Array(RAW_MESSAGE_BYTES).fill(7)
    let sent = 0
    const rawSend = async (): Promise<void> => {
      sent += RAW_MESSAGE_BYTES
      if (!stream.send(message)) await stream.onDrain({ signal })
    }
    const rawSamples = await sample(ROUND_TRIPS, ROUND_TRIP_BUDGET_MS, async () => {
      await rawSend()
      await counter.until(sent, signal)
    }, 200)
    const rawStart = performance.now()
    const rawBase = sent
    let rawMessages = 0
    for (; rawMessages < PIPELINED_MESSAGES && performance.now() - rawStart < ROUND_TRIP_BUDGET_MS; rawMessages++) {
      await counter.until(sent - PIPELINE_WINDOW * RAW_MESSAGE_BYTES, signal)
      await rawSend()
    }
    await counter.until(sent, signal)
    const rawRate = ((sent - rawBase) / RAW_MESSAGE_BYTES) / ((performance.now() - rawStart) / 1000)
    row(`raw libp2p stream echo, ${RAW_MESSAGE_BYTES} B (one stream)`, rawSamples, formatRate(rawRate, 'msg'))
    stream.removeEventListener('message', counter.onMessage)
    await stream.close({ signal }).catch(() => stream.abort(new Error('bench done')))

    // (b) Rhizome's RpcService: one long-lived stream, requests told apart by id.
    const spec = { protocol: RPC_ECHO_PROTOCOL, frameBytesMax: 64 * 1024, inflightMax: 1024, handler: async (body: unknown) => body }
    await rpcA.handle(spec)
    await rpcB.handle(spec)
    const request = async (i: number): Promise<unknown> => await rpcA.request(b.peerId, RPC_ECHO_PROTOCOL, { seq: i }, { signal })
    const rpcSamples = await sample(ROUND_TRIPS, ROUND_TRIP_BUDGET_MS, request, 200)
    const rpcStart = performance.now()
    let next = 0
    await Promise.all(Array.from({ length: PIPELINE_WINDOW }, async () => {
      while (next < PIPELINED_MESSAGES && performance.now() - rpcStart < ROUND_TRIP_BUDGET_MS) await request(next++)
    }))
    const rpcRate = next / ((performance.now() - rpcStart) / 1000)
    row('Rhizome RpcService echo (one stream)', rpcSamples, formatRate(rpcRate, 'req'))

    printTable('4. Request/response round trip, two libp2p nodes (tcp + noise + yamux) in one process on 127.0.0.1',
      ['path', 'samples', 'p50', 'p99', `pipelined (${PIPELINE_WINDOW} in flight)`],
      rows,
      [
        'p50/p99 of sequential round trips, each timed alone; every sample includes one timer read, which the floor row bounds',
        `protocol violations reported during the run: ${violations.length}`
      ]
    )
  } finally {
    await rpcA.stop()
    await rpcB.stop()
    await Promise.allSettled([a.stop(), b.stop()])
  }
}

// ---------------------------------------------------------------------------------------------

try {
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  process.stdout.write(`Rhizome peer benchmark — Node ${process.version}, ${availableParallelism()} cores (${cpu}), ${process.platform}\n`)
  await startup()
  const meshRss = await mesh()
  await memory(meshRss)
  await roundTrips()
  process.stdout.write(`peer benchmark done in ${formatMs(performance.now() - startedAt)}\n`)
} finally {
  await rm(root, { recursive: true, force: true })
}
