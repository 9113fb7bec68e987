/**
 * Shared parts of Rhizome's benchmarks: statistics, tables, and child processes that are always
 * cleaned up.
 *
 * Run as a script, this file is also the child side of two measurements that need a fresh
 * process (so nothing else in the benchmark's own heap or module cache skews them):
 *
 *   node bench/helpers.ts bare-libp2p              a libp2p node with TCP + Noise + Yamux only,
 *                                                  the baseline for `rhizome node start`
 *   node --expose-gc bench/helpers.ts membership-heap N
 *                                                  heap held by one membership table of N peers
 *
 * Only `node:` modules are imported at the top, so a child pays for nothing but what it measures.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import type { ChildProcess } from 'node:child_process'

export const HELPERS = fileURLToPath(import.meta.url)

// ---------------------------------------------------------------------------------------------
// Statistics and formatting

export interface Summary { n: number, min: number, p50: number, p99: number, max: number, mean: number }

/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]
}

export function summarize (samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b)
  const mean = sorted.reduce((sum, x) => sum + x, 0) / Math.max(1, sorted.length)
  return { n: sorted.length, min: sorted[0] ?? Number.NaN, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? Number.NaN, mean }
}

/** A duration given in milliseconds, printed in the unit that keeps 3 significant digits. */
export function formatMs (ms: number): string {
  if (!Number.isFinite(ms)) return '—'
  if (ms < 0.001) return `${(ms * 1e6).toFixed(0)} ns`
  if (ms < 1) return `${(ms * 1000).toPrecision(3)} µs`
  if (ms < 1000) return `${ms.toPrecision(3)} ms`
  return `${(ms / 1000).toPrecision(3)} s`
}

export function formatBytes (bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes)) return '—'
  if (bytes < 1024) return `${bytes.toFixed(0)} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}

export function formatRate (perSecond: number, unit: string): string {
  if (!Number.isFinite(perSecond)) return '—'
  return `${Math.round(perSecond).toLocaleString('en-US')} ${unit}/s`
}

/** A table with a title, left-aligned first column and right-aligned numbers. */
export function printTable (title: string, header: string[], rows: string[][], notes: string[] = []): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join('  ')
  const out = ['', title, line(header), widths.map(w => '-'.repeat(w)).join('  '), ...rows.map(line), ...notes.map(n => `  ${n}`), '']
  process.stdout.write(out.join('\n') + '\n')
}

export function progress (text: string): void {
  process.stdout.write(`  … ${text}\n`)
}

export async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/**
 * Run `fn` up to `n` times, stopping early once `budgetMs` has passed, and return the duration
 * of each call in ms. `warmup` calls run first and are not counted.
 */
export async function sample (n: number, budgetMs: number, fn: (i: number) => Promise<unknown> | unknown, warmup = 0): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn(-1 - i)
  const samples: number[] = []
  const deadline = performance.now() + budgetMs
  for (let i = 0; i < n && performance.now() < deadline; i++) {
    const start = performance.now()
    await fn(i)
    samples.push(performance.now() - start)
  }
  return samples
}

// ---------------------------------------------------------------------------------------------
// Child processes

const children = new Set<ChildProcess>()
let exitHookInstalled = false

/** Remember a child so that it is killed even if the benchmark dies first. */
export function track (child: ChildProcess): ChildProcess {
  children.add(child)
  child.once('exit', () => children.delete(child))
  if (!exitHookInstalled) {
    exitHookInstalled = true
    process.once('exit', () => { for (const c of children) c.kill('SIGKILL') })
  }
  return child
}

export interface Started {
  child: ChildProcess
  /** From just before spawn to the moment the awaited text appeared on stdout. */
  ms: number
  stdout: () => string
  stderr: () => string
}

/**
 * Spawn `node <args>` and resolve when its stdout contains `text`. The child is killed if it
 * does not get there within `timeoutMs`, or exits first.
 */
export async function spawnUntil (args: string[], text: string, timeoutMs = 30_000, execArgv: string[] = []): Promise<Started> {
  let stdout = ''
  let stderr = ''
  const start = performance.now()
  const child = track(spawn(process.execPath, [...execArgv, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }))
  return await new Promise<Started>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`no "${text}" within ${timeoutMs} ms from ${args.slice(0, 3).join(' ')}: ${stderr.slice(-1000)}`))
    }, timeoutMs)
    const onExit = (code: number | null): void => {
      clearTimeout(timer)
      reject(new Error(`child exited with ${String(code)} before printing "${text}": ${stderr.slice(-1000)}`))
    }
    child.stderr?.on('data', (chunk: Buffer) => { if (stderr.length < 100_000) stderr += chunk.toString() })
    child.stdout?.on('data', (chunk: Buffer) => {
      const before = stdout.length
      stdout += chunk.toString()
      if (before < stdout.length && stdout.includes(text) && !stdout.slice(0, before).includes(text)) {
        const ms = performance.now() - start
        clearTimeout(timer)
        child.off('exit', onExit)
        resolve({ child, ms, stdout: () => stdout, stderr: () => stderr })
      }
    })
    child.once('exit', onExit)
  })
}

/** SIGTERM (or the given signal), then SIGKILL after `graceMs`; resolves when the child is gone. */
export async function stopChild (child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  child.kill(signal)
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}

/** Resident set size of a process, from /proc (Linux); undefined elsewhere. */
export function rssBytes (pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match === null ? undefined : Number(match[1]) * 1024
  } catch {
    return undefined
  }
}

/** Clock ticks per second in /proc/PID/stat (USER_HZ): 100 on Linux for every architecture in use. */
const PROC_TICKS_PER_SECOND = 100

/** CPU time (user + system) a process has used, in ms, from /proc (Linux, 10 ms steps); undefined elsewhere. */
export function processCpuMs (pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    // Fields after the command (which may hold spaces, so split after its closing parenthesis):
    // state is field 3, utime 14 and stime 15.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 1000 / PROC_TICKS_PER_SECOND
  } catch {
    return undefined
  }
}

/** Run `node <args>` to completion and parse the last line of its stdout as JSON. */
export async function runJsonChild<T> (args: string[], execArgv: string[] = [], timeoutMs = 60_000): Promise<T> {
  const child = track(spawn(process.execPath, [...execArgv, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }))
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { if (stderr.length < 100_000) stderr += chunk.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
  clearTimeout(timer)
  if (code !== 0) throw new Error(`${args.join(' ')} exited with ${String(code)}: ${stderr.slice(-2000)}`)
  const last = stdout.trim().split('\n').at(-1) ?? ''
  return JSON.parse(last) as T
}

// ---------------------------------------------------------------------------------------------
// Child side: a bare libp2p node

async function bareLibp2p (): Promise<void> {
  const [{ createLibp2p }, { tcp }, { noise }, { yamux }] = await Promise.all([
    import('libp2p'), import('@libp2p/tcp'), import('@chainsafe/libp2p-noise'), import('@chainsafe/libp2p-yamux')
  ])
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()]
  })
  process.stdout.write(`listening ${node.getMultiaddrs().map(String).join(' ')}\n`)
  await new Promise<void>(resolve => {
    process.once('SIGTERM', resolve)
    process.once('SIGINT', resolve)
  })
  await node.stop()
}

// ---------------------------------------------------------------------------------------------
// Child side: heap held by a membership table

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

/** A distinct, well-formed Ed25519-style peer id string (52 characters) for index `i`. */
export function fakePeerId (i: number): string {
  let x = (i + 1) * 2654435761 % 2 ** 32
  let tail = ''
  for (let k = 0; k < 44; k++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    tail += BASE58[x % 58]
  }
  // Put the index itself in, so ids never collide however the generator behaves.
  const index = i.toString(36).replace(/[0lo]/g, 'z')
  return `12D3KooW${index}${tail.slice(index.length)}`
}

export interface MembershipHeapResult {
  entries: number
  heapBytes: number
  bytesPerEntry: number
  addrsPerEntry: number
}

async function membershipHeap (count: number): Promise<void> {
  const gc = globalThis.gc
  if (gc === undefined) throw new Error('membership-heap needs --expose-gc')
  if (!Number.isSafeInteger(count) || count < 1) throw new Error(`membership-heap needs a positive count, got ${count}`)
  const { createMembership } = await import('../src/protocol/membership/index.ts')
  const { decodeAnnouncement, encodeAnnouncement } = await import('../src/wire/membership-codec.ts')
  const networkId = 'bench'
  const addrsPerEntry = 2
  const fill = (membership: ReturnType<typeof createMembership>, from: number, to: number): void => {
    let now = 1_000
    for (let i = from; i < to; i++) {
      const host = `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`
      const port = 4000 + (i % 50_000)
      // Through the real codec, so the table holds the same fresh strings that gossip would give
      // it; everything but what the table keeps is garbage by the time we measure.
      const announcement = decodeAnnouncement(encodeAnnouncement({
        peerId: fakePeerId(i), networkId, incarnation: 1_700_000_000_000 + i, seq: 1, version: '0.1.0',
        addrs: [`/ip4/${host}/tcp/${port}`, `/ip4/${host}/tcp/${port + 1}/ws`].slice(0, addrsPerEntry),
        capacity: { slotsFree: 2, slotsMax: 2, queueLength: 0 }
      }))
      const verdict = membership.handleAnnouncement(announcement, now++)
      if (verdict !== 'accepted') throw new Error(`announcement ${i} was ${verdict}`)
      while (membership.poll() !== undefined) { /* drain the peer:joined events */ }
    }
  }
  const create = (peersMax: number): ReturnType<typeof createMembership> =>
    createMembership({ selfId: fakePeerId(10_000_000), networkId, version: '0.1.0', incarnation: 1, peersMax })
  // Warm up on a throwaway table, so that compiled code and inline caches are not counted.
  fill(create(2000), 1_000_000, 1_002_000)
  const membership = create(count)
  // Some memory is only released after a turn of the event loop (weak callbacks), so yield
  // between collections.
  const settle = async (): Promise<number> => {
    for (let i = 0; i < 4; i++) {
      gc()
      await new Promise(resolve => setImmediate(resolve))
    }
    return process.memoryUsage().heapUsed
  }
  const before = await settle()
  fill(membership, 0, count)
  const after = await settle()
  const alive = membership.counts().alive
  if (alive !== count) throw new Error(`expected ${count} alive entries, found ${alive}`)
  const heapBytes = after - before
  const result: MembershipHeapResult = { entries: count, heapBytes, bytesPerEntry: heapBytes / count, addrsPerEntry }
  process.stdout.write(JSON.stringify(result) + '\n')
}

if (import.meta.main) {
  const [mode, arg] = process.argv.slice(2)
  const run = mode === 'bare-libp2p'
    ? bareLibp2p()
    : mode === 'membership-heap'
      ? membershipHeap(Number(arg))
      : Promise.reject(new Error(`unknown mode ${String(mode)}; use bare-libp2p or membership-heap N`))
  run.catch((err: unknown) => {
    process.stderr.write(`${String((err as Error)?.stack ?? err)}\n`)
    process.exitCode = 1
  })
}
