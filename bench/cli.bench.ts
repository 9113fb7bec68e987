/**
 * CLI start-up, measured: how long `npx rhizome …` keeps the user waiting, from spawn until the
 * process has exited, next to an empty Node process (the floor no command can beat).
 *
 *   node -e 0                  the floor: Node itself starting and stopping
 *   rhizome --help             the command table only, no command module loaded
 *   rhizome status             reads DIR/api.json and DIR/api.token, one GET to a real peer
 *   rhizome call FN noop       one task on a real peer (a function that returns at once)
 *
 * Runs go through bin/rhizome.js, the file `npx rhizome` runs, and are interleaved so drift in
 * machine load touches every kind alike. One peer is started for the run (127.0.0.1, no mDNS,
 * a network id private to this run) and stopped, and its data dir removed, on the way out.
 * Numbers are printed, never asserted (STYLE.md §17).
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { TestPeer } from '../test/helpers/peers.ts'
import { formatMs, printTable, progress, summarize, track } from './helpers.ts'

/** Runs per command; each costs at most about a second of one core. */
const RUNS = 10
/** A command that has not exited after this long is hung, not slow. */
const COMMAND_TIMEOUT_MS = 60_000

const BIN = fileURLToPath(new URL('../bin/rhizome.js', import.meta.url))
const root = await mkdtemp(join(tmpdir(), 'rhizome-bench-cli-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

interface Exited { ms: number, code: number | null, stdout: string, stderr: string }

/** Spawn `node <args>`, resolve with the time from spawn to exit. */
async function spawnToExit (args: string[]): Promise<Exited> {
  const start = performance.now()
  const child = track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }))
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr?.on('data', (c: Buffer) => { stderr += c.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), COMMAND_TIMEOUT_MS)
  const code = await new Promise<number | null>(resolve => child.once('exit', c => resolve(c)))
  clearTimeout(timer)
  return { ms: performance.now() - start, code, stdout, stderr }
}

/** Run a command and insist it succeeded: a failing command would time the wrong thing. */
async function timed (label: string, args: string[], okCodes = [0]): Promise<number> {
  const r = await spawnToExit(args)
  if (r.code === null || !okCodes.includes(r.code)) throw new Error(`${label} exited with ${String(r.code)}: ${r.stderr.slice(-1000)}`)
  return r.ms
}

const peer = new TestPeer(join(root, 'peer'), ['--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--network-id', `bench-cli-${process.pid}`, '--log-level', 'warn'])
try {
  progress('starting a peer and deploying a no-op function')
  await peer.start()
  const file = join(root, 'noop.ts')
  await writeFile(file, 'export function noop (): null { return null }\n')
  const deployed = await spawnToExit([BIN, 'deploy', file, '--replicas', '1', '--json', '--data-dir', peer.dataDir])
  if (deployed.code !== 0) throw new Error(`deploy failed: ${deployed.stderr}`)
  const fn = (JSON.parse(deployed.stdout) as { cid: string }).cid

  const kinds: Array<[string, string[], number[]]> = [
    ['node -e 0 (floor)', ['-e', '0'], []],
    ['rhizome --help', [BIN, '--help'], []],
    ['rhizome status', [BIN, 'status', '--data-dir', peer.dataDir], []],
    ['rhizome call (no-op function)', [BIN, 'call', fn, 'noop', '--data-dir', peer.dataDir], []]
  ]
  progress(`${RUNS} runs of each command, interleaved`)
  // One unmeasured round first: the file system cache (and Node's compile cache, if on) warm up.
  for (const [label, args] of kinds) await timed(label, args)
  for (let run = 0; run < RUNS; run++) {
    for (const [label, args, samples] of kinds) samples.push(await timed(label, args))
  }
  const floor = summarize(kinds[0][2]).p50
  printTable('Spawn to exit of one CLI command (ms; through bin/rhizome.js, as `npx rhizome` runs it)',
    ['command', 'runs', 'median', 'min', 'max', 'over floor'],
    kinds.map(([label, , samples]) => {
      const s = summarize(samples)
      return [label, String(s.n), formatMs(s.p50), formatMs(s.min), formatMs(s.max), formatMs(s.p50 - floor)]
    }),
    ['"over floor" is the median minus the empty Node process: what Rhizome itself costs.']
  )
} finally {
  await peer.stop()
  await rm(root, { recursive: true, force: true })
}
