import { spawn } from 'node:child_process'
import { mkdir, open, readFile, stat } from 'node:fs/promises'
import { extname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { connect } from '../../api/connect.ts'
import type { RhizomeClient } from '../../api/client.ts'
import { CliError, EXIT_OK, EXIT_USAGE } from '../command.ts'
import { progressLine } from '../progress.ts'
import { peerTable } from './peers.ts'
import type { ChildProcess } from 'node:child_process'
import type { Command, CommandContext } from '../command.ts'
import type { Progress } from '../progress.ts'

// main.ts in the repository, main.js in an installed (built) package.
const MAIN = fileURLToPath(new URL(`../main${extname(import.meta.url)}`, import.meta.url))
/** Devnets are for one machine; more than 16 peers is a benchmark, not a dev loop. */
const DEVNET_PEERS_MAX = 16
/** Starting and meeting takes a few seconds; past a minute something is wrong. */
const READY_TIMEOUT_MS = 60_000
/** After SIGTERM a peer has this long to stop before it is killed. */
const CHILD_STOP_MS = 10_000

export const devnet: Command = {
  usage: `rhizome devnet [--peers N] [--dir DIR] [--no-example]

  --peers N     how many peers (default 3, at most ${DEVNET_PEERS_MAX})
  --dir DIR     where their data dirs go (default .rhizome/devnet); logs are in DIR/peer-N/peer.log
  --no-example  do not run the seed example (examples/seed/flow.ts) once the peers have met`,
  options: { peers: { type: 'string' }, dir: { type: 'string' }, example: { type: 'boolean', default: true } },
  positionals: [0, 0],
  async run ({ values, signal, print, isTTY }) {
    const count = values.peers === undefined ? 3 : Number(values.peers)
    if (!Number.isInteger(count) || count < 1 || count > DEVNET_PEERS_MAX) {
      throw new CliError('ERR_USAGE', `--peers must be an integer from 1 to ${DEVNET_PEERS_MAX}`, { exitCode: EXIT_USAGE, hint: 'e.g. --peers 3 (the default)' })
    }
    const dir = resolve((values.dir as string | undefined) ?? join('.rhizome', 'devnet'))
    await checkDevnetDir(dir, values.dir !== undefined ? '--dir' : 'the devnet dir')
    const children: ChildProcess[] = []
    try {
      print(`Starting a local Rhizome network of ${count} peers in ${dir}\n`)
      let bootstrap: string | undefined
      const apis: RhizomeClient[] = []
      for (let i = 1; i <= count; i++) {
        const dataDir = join(dir, `peer-${i}`)
        const { child, api } = await startPeer(dataDir, bootstrap, signal)
        children.push(child)
        apis.push(api)
        const status = await api.status()
        bootstrap ??= status.addrs.find(a => a.includes('/tcp/') && !a.includes('/ws'))
        print(`  peer-${i}  ${status.peerId}  ${status.apiUrl}\n`)
      }
      await waitUntilMeshed(apis, signal, progressLine(print, isTTY))
      const peers = await apis[0].peers()
      print(`\nAll ${count} peers see each other. peer-1's view:\n${peerTable(peers, Date.now())}`)
      if (values.example !== false && !signal.aborted) await runSeedExample(join(dir, 'peer-1'), { values, positionals: [], env: {}, signal, print, isTTY })
      print([
        '',
        'Try:',
        `  npx rhizome run ${relative(process.cwd(), SEED_FLOW) || SEED_FLOW} A 5 --data-dir ${join(dir, 'peer-2')}`,
        `  npx rhizome peers --data-dir ${join(dir, 'peer-2')}`,
        `  npx rhizome dashboard --open --data-dir ${join(dir, 'peer-2')}     # the network and the runs, live, in your browser`,
        `  npx rhizome sql "select peer, count(*) as tasks from tasks group by peer" --data-dir ${join(dir, 'peer-2')}`,
        'Press Ctrl-C to stop.',
        ''
      ].join('\n'))
      await new Promise<void>(resolve => {
        if (signal.aborted) { resolve(); return }
        signal.addEventListener('abort', () => resolve(), { once: true })
        for (const child of children) child.once('exit', () => resolve())
      })
      const died = children.findIndex(c => c.exitCode !== null)
      if (!signal.aborted && died >= 0) throw new CliError('ERR_PEER_EXITED', `peer-${died + 1} exited with code ${children[died].exitCode}`, { hint: `see ${join(dir, `peer-${died + 1}`, 'peer.log')}` })
      print('\nStopping peers…\n')
      return { exitCode: EXIT_OK }
    } finally {
      await Promise.all(children.map(stopChild))
    }
  }
}

/** The seed example shipped with Rhizome (examples/seed): the same place from src/ and from dist/. */
const SEED_FLOW = fileURLToPath(new URL('../../../examples/seed/flow.ts', import.meta.url))

/**
 * Run the seed example on the devnet, as `rhizome run examples/seed/flow.ts A 5` would: B, C and D
 * (each ~300 ms of CPU) run at the same moment on three peers, and the report's timeline shows it.
 */
async function runSeedExample (dataDir: string, context: CommandContext): Promise<void> {
  context.print(`\nRunning the seed example: A(5) = B(5) + C(5) − D(5), each task burning ~300 ms of CPU (${relative(process.cwd(), SEED_FLOW) || SEED_FLOW})\n`)
  const { run } = await import('./run.ts')
  try {
    const result = await run.run({ ...context, values: { 'data-dir': dataDir }, positionals: [SEED_FLOW, 'A', '5'] })
    if (result.stdout !== undefined) context.print(typeof result.stdout === 'string' ? result.stdout : new TextDecoder().decode(result.stdout))
  } catch (err) {
    // The network stays up for the user's own runs even if the example could not run.
    context.print(`the seed example failed: ${(err as Error).message}\n`)
  }
}

/** The devnet dir is created if missing; a file in its place is refused before any peer starts. */
async function checkDevnetDir (dir: string, label: string): Promise<void> {
  const existing = await stat(dir).catch(() => undefined)
  if (existing !== undefined && !existing.isDirectory()) {
    throw new CliError('ERR_USAGE', `${label} ${dir} is not a directory`, { exitCode: EXIT_USAGE, hint: 'pass a directory for the peers\' data dirs (it is created if missing), e.g. --dir .rhizome/devnet' })
  }
  try {
    await mkdir(dir, { recursive: true })
  } catch (err) {
    throw new CliError('ERR_USAGE', `${label} ${dir} cannot be created: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { exitCode: EXIT_USAGE, hint: 'pass a directory you may write to', cause: err })
  }
}

async function startPeer (dataDir: string, bootstrap: string | undefined, signal: AbortSignal): Promise<{ child: ChildProcess, api: RhizomeClient }> {
  await mkdir(dataDir, { recursive: true })
  const log = await open(join(dataDir, 'peer.log'), 'a')
  const args = [MAIN, 'node', 'start', '--data-dir', dataDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--listen', '/ip4/127.0.0.1/tcp/0/ws',
    '--no-mdns', '--network-id', 'devnet', '--announce-interval-ms', '1000', '--suspect-after-ms', '3000', '--gone-after-ms', '6000']
  if (bootstrap !== undefined) args.push('--bootstrap', bootstrap)
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', log.fd], env: process.env })
  await log.close()
  let banner = ''
  child.stdout?.on('data', (chunk: Buffer) => { banner += chunk.toString() })
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (!banner.includes('listening')) {
    if (child.exitCode !== null) {
      const tail = (await readFile(join(dataDir, 'peer.log'), 'utf8').catch(() => '')).split('\n').slice(-5).join('\n')
      throw new CliError('ERR_PEER_EXITED', `a devnet peer exited during start (code ${child.exitCode})`, { hint: `its log ends with:\n${tail}` })
    }
    if (Date.now() > deadline || signal.aborted) {
      child.kill('SIGKILL')
      throw new CliError('ERR_TIMEOUT', `a devnet peer did not start within ${READY_TIMEOUT_MS} ms`, { hint: `see ${join(dataDir, 'peer.log')}` })
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return { child, api: await connect({ dataDir, env: {} }) }
}

async function waitUntilMeshed (apis: RhizomeClient[], signal: AbortSignal, progress: Progress): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  try {
    for (;;) {
      const views = await Promise.all(apis.map(async api => await api.peers()))
      const seen = views.reduce((sum, view) => sum + view.filter(p => p.state === 'alive').length, 0)
      const wanted = apis.length * (apis.length - 1)
      progress.update(`  waiting for peers to meet: ${seen}/${wanted} links alive`)
      if (seen >= wanted || signal.aborted) return
      if (Date.now() > deadline) throw new CliError('ERR_TIMEOUT', `peers did not all meet within ${READY_TIMEOUT_MS} ms`, { hint: 'see the peer.log files in the devnet dir' })
      await new Promise(resolve => setTimeout(resolve, 250))
    }
  } finally {
    // Whatever ends the wait, what is printed next starts on a line of its own.
    progress.done()
  }
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_STOP_MS)
  await exited
  clearTimeout(timer)
}
