/**
 * A lying peer in a child process (test/helpers/lying-peer-main.ts), joined to a TestNetwork:
 * a real peer that runs the tasks it is given and answers a fraction `lieRate` of them with a
 * wrong value under a valid signature. It runs in its own process group, killed whole on stop.
 */
import { spawn } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { FAST_TIMING, waitFor } from './peers.ts'
import type { TestNetwork } from './peers.ts'
import type { TaskLine } from './lying-peer-main.ts'

export const LYING_PEER_MAIN = fileURLToPath(new URL('./lying-peer-main.ts', import.meta.url))

export interface LyingPeer {
  readonly peerId: string
  readonly addrs: string[]
  /** Every task it ran, in order. */
  tasks: () => TaskLine[]
  /** The tasks it lied about. */
  lies: () => Array<{ taskId: string, resultCid: string }>
  /** How many tasks it ran (lies and truths). */
  told: () => number
  /** Its log lines (stderr), for a failing test's message. */
  stderr: () => string
  /** Stop it (SIGTERM, then SIGKILL to its process group) and remove its data dir. */
  stop: () => Promise<void>
}

export interface LyingPeerStartOptions {
  /** Fraction of tasks answered wrongly, 0..1. */
  lieRate: number
  /** A peer's multiaddr to join through (e.g. `peer.tcpAddr`). */
  bootstrap?: string
  /** Picks which tasks are lied about; default '0'. */
  seed?: string
  slots?: number
  /** How long to wait for it to serve. Default 30 s. */
  startTimeoutMs?: number
}

let started = 0

/** Start a lying peer on `net`'s network id and membership timing; resolves once it serves. */
export async function startLyingPeer (net: TestNetwork, options: LyingPeerStartOptions): Promise<LyingPeer> {
  const dataDir = join(net.root, `liar-${++started}`)
  const args = [LYING_PEER_MAIN, '--data-dir', dataDir, '--network-id', net.networkId, '--lie-rate', String(options.lieRate), '--stop-on-stdin-end', ...FAST_TIMING]
  if (options.bootstrap !== undefined) args.push('--bootstrap', options.bootstrap)
  if (options.seed !== undefined) args.push('--seed', options.seed)
  if (options.slots !== undefined) args.push('--slots', String(options.slots))
  // Its own process group: stop() kills it and anything it started, whatever state it is in.
  // stdin stays open while this process lives: if it dies without stop(), the liar sees stdin end and stops.
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  const lines = (): Array<Record<string, unknown>> => stdout.split('\n').filter(l => l.startsWith('{')).map(l => JSON.parse(l) as Record<string, unknown>)
  const killGroup = (signal: NodeJS.Signals): void => {
    try { process.kill(-(child.pid as number), signal) } catch { /* already gone */ }
  }
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      killGroup('SIGTERM')
      const timer = setTimeout(() => { killGroup('SIGKILL') }, 5_000)
      await exited
      clearTimeout(timer)
    }
    killGroup('SIGKILL')
    child.stdin?.destroy()
    await rm(dataDir, { recursive: true, force: true })
  }
  let ready: Record<string, unknown>
  try {
    ready = await waitFor('the lying peer to serve', () => {
      if (child.exitCode !== null) throw new Error(`the lying peer exited with ${child.exitCode}: ${stderr.slice(-2000)}`)
      return lines().find(l => l.event === 'ready')
    }, options.startTimeoutMs ?? 30_000, 50)
  } catch (err) {
    await stop()
    throw err
  }
  const tasks = (): TaskLine[] => lines().filter((l): l is TaskLine & Record<string, unknown> => l.event === 'task')
  return {
    peerId: ready.peerId as string,
    addrs: ready.addrs as string[],
    tasks,
    lies: () => tasks().filter(t => t.lied).map(({ taskId, resultCid }) => ({ taskId, resultCid })),
    told: () => tasks().length,
    stderr: () => stderr,
    stop
  }
}
