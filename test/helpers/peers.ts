/**
 * Real peers in child processes for integration tests: each runs `rhizome node start` with its
 * own data dir on 127.0.0.1, mDNS off and a network id private to the test.
 */
import { SseDecoder } from '../../src/api/events.ts'
import type { ProgressEvent } from '../../src/api/events.ts'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'

export const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))

/** Fast membership timing so tests see suspect/gone in seconds (docs/LIMITS.md has the defaults). */
export const FAST_TIMING = ['--announce-interval-ms', '500', '--suspect-after-ms', '2000', '--gone-after-ms', '4000']

export interface CliResult { code: number | null, stdout: string, stderr: string }

export async function runCli (args: string[], options: { env?: NodeJS.ProcessEnv, timeoutMs?: number, input?: string } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  child.stdin.end(options.input ?? '')
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000)
  const code = await new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

export async function waitFor<T> (what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  // An error thrown by `check` ends the wait at once: it means the awaited state can no longer come.
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}

/** The API token a peer keeps in DIR/api.token (written on its first start). */
export async function readApiToken (dataDir: string): Promise<string> {
  return (await readFile(join(dataDir, 'api.token'), 'utf8')).trim()
}

export class TestPeer {
  readonly dataDir: string
  readonly args: string[]
  child: ChildProcess | undefined
  peerId = ''
  apiUrl = ''
  /** The API token from DIR/api.token, read on start. */
  apiToken = ''
  addrs: string[] = []
  stdout = ''
  stderr = ''

  constructor (dataDir: string, args: string[]) {
    this.dataDir = dataDir
    this.args = args
  }

  /** The TCP multiaddr other peers bootstrap through. */
  get tcpAddr (): string {
    const addr = this.addrs.find(a => a.includes('/tcp/') && !a.includes('/ws'))
    if (addr === undefined) throw new Error(`peer ${this.peerId} has no TCP address`)
    return addr
  }

  async start (): Promise<void> {
    this.stdout = ''
    this.stderr = ''
    const child = spawn(process.execPath, [MAIN, 'node', 'start', '--data-dir', this.dataDir, ...this.args], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    child.stdout.on('data', (c: Buffer) => { this.stdout += c.toString() })
    child.stderr.on('data', (c: Buffer) => { this.stderr += c.toString() })
    await waitFor(`peer in ${this.dataDir} to start`, () => {
      if (child.exitCode !== null) throw new Error(`peer exited with ${child.exitCode}: ${this.stderr.slice(-2000)}`)
      return this.stdout.includes('listening')
    }, 30_000, 50)
    const info = JSON.parse(await readFile(join(this.dataDir, 'api.json'), 'utf8')) as { url: string, peerId: string }
    this.apiUrl = info.url
    this.peerId = info.peerId
    this.apiToken = await readApiToken(this.dataDir)
    const status = await this.api<{ addrs: string[] }>('/v1/status')
    this.addrs = status.addrs
  }

  /** Headers that authorize a request to this peer's API, merged over `headers`. */
  authorized (headers: Record<string, string> = {}): Record<string, string> {
    return { ...headers, authorization: `Bearer ${this.apiToken}` }
  }

  async api<T> (path: string, init?: RequestInit): Promise<T> {
    const res = await fetch(this.apiUrl + path, { ...init, headers: this.authorized(init?.headers as Record<string, string> | undefined), signal: AbortSignal.timeout(10_000) })
    const body = await res.json() as T
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${JSON.stringify(body)}`)
    return body
  }

  async peers (): Promise<Array<{ peerId: string, state: string }>> {
    return (await this.api<{ peers: Array<{ peerId: string, state: string }> }>('/v1/peers')).peers
  }

  /** Stop with a signal and wait for the exit; SIGKILL if it overstays `timeoutMs`. */
  async stop (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<number | null> {
    const child = this.child
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null
    const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
    child.kill(signal)
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    const code = await exited
    clearTimeout(timer)
    return code
  }
}

export class TestNetwork {
  readonly root: string
  readonly networkId: string
  readonly peers: TestPeer[] = []

  private constructor (root: string, networkId: string) {
    this.root = root
    this.networkId = networkId
  }

  static async create (): Promise<TestNetwork> {
    const root = await mkdtemp(join(tmpdir(), 'rhizome-test-'))
    return new TestNetwork(root, `test-${process.pid}-${Math.floor(Math.random() * 1e9)}`)
  }

  peerArgs (extra: string[] = []): string[] {
    return ['--listen', '/ip4/127.0.0.1/tcp/0', '--listen', '/ip4/127.0.0.1/tcp/0/ws', '--no-mdns', '--network-id', this.networkId, '--log-level', 'info', ...FAST_TIMING, ...extra]
  }

  async addPeer (extra: string[] = []): Promise<TestPeer> {
    const peer = new TestPeer(join(this.root, `peer-${this.peers.length + 1}`), this.peerArgs(extra))
    this.peers.push(peer)
    await peer.start()
    return peer
  }

  async close (): Promise<void> {
    await Promise.all(this.peers.map(async p => await p.stop('SIGKILL')))
    await rm(this.root, { recursive: true, force: true })
  }
}

/**
 * Follow a run's progress events (`GET /v1/runs/:id/events`) until the peer ends the stream
 * after `run:finished`, or `timeoutMs` passes; each event goes to `onEvent` as it arrives.
 */
export async function followRunEvents (peer: TestPeer, runId: string, timeoutMs: number, onEvent: (event: ProgressEvent) => void): Promise<void> {
  const res = await fetch(`${peer.apiUrl}/v1/runs/${runId}/events`, { headers: peer.authorized(), signal: AbortSignal.timeout(timeoutMs) })
  if (res.status !== 200) throw new Error(`following run ${runId}: HTTP ${res.status} ${await res.text()}`)
  const decoder = new SseDecoder()
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    for (const event of decoder.push(chunk) as ProgressEvent[]) onEvent(event)
  }
}

/** `followRunEvents`, keeping every event. */
export async function runEvents (peer: TestPeer, runId: string, timeoutMs: number): Promise<ProgressEvent[]> {
  const events: ProgressEvent[] = []
  await followRunEvents(peer, runId, timeoutMs, event => { events.push(event) })
  return events
}
