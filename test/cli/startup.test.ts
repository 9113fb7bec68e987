/**
 * What each command loads. `rhizome status` used to load all of libp2p (hundreds of modules)
 * before it sent one HTTP request; a command now imports only its own module. Counted, not
 * timed: a child process records every module it loads (module.registerHooks), runs main(), and
 * reports the list.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { MAIN } from '../helpers/peers.ts'

/** Bounds one child run (a cold `node start --help` loads a few dozen modules). */
const CHILD_TIMEOUT_MS = 60_000

const RECORDER = `
import { registerHooks } from 'node:module'
const urls = []
registerHooks({ load (url, context, next) { urls.push(url); return next(url, context) } })
const { main } = await import(process.env.MAIN_URL)
const code = await main(JSON.parse(process.env.ARGV), { RHIZOME_DATA_DIR: process.env.DATA_DIR }, new AbortController().signal, { out () {}, err () {}, isTTY: false })
process.stdout.write(JSON.stringify({ code, urls }))
process.exit(0)
`

async function modulesLoadedBy (argv: string[], dataDir: string): Promise<{ code: number, urls: string[] }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', RECORDER], {
    env: { ...process.env, MAIN_URL: pathToFileURL(MAIN).href, ARGV: JSON.stringify(argv), DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS)
  const code = await new Promise<number | null>(resolve => child.once('exit', c => resolve(c)))
  clearTimeout(timer)
  assert.equal(code, 0, stderr)
  return JSON.parse(stdout) as { code: number, urls: string[] }
}

/** What a command that only talks to a peer must never load. */
const PEER_INTERNALS = /node_modules\/(libp2p|@libp2p|@chainsafe|esbuild|isolated-vm|@ipld)\/|\/src\/(node|net|store|sandbox|functions|protocol|wire)\//

const commandModules = (urls: string[]): string[] => urls.filter(u => u.includes('/src/cli/commands/')).map(u => u.replace(/^.*\/src\/cli\/commands\//, '')).sort()

describe('CLI start-up: each command loads only what it needs', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'rhizome-cli-startup-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  test('--help loads no command module and nothing of the peer', async () => {
    const { code, urls } = await modulesLoadedBy(['--help'], dir)
    assert.equal(code, 0)
    assert.deepEqual(commandModules(urls), [])
    assert.deepEqual(urls.filter(u => PEER_INTERNALS.test(u)), [])
  })

  test('status, peers, functions and call load their own module and the API client, not libp2p or src/node', async () => {
    for (const [argv, module] of [[['status'], 'status.ts'], [['peers'], 'peers.ts'], [['functions'], 'functions.ts'], [['call', 'f', 'run', '1'], 'call.ts']] as const) {
      const { code, urls } = await modulesLoadedBy([...argv], dir)
      assert.equal(code, 1, `${argv.join(' ')}: no peer runs from the empty dir`)
      assert.ok(commandModules(urls).includes(module), `${argv.join(' ')}: ${commandModules(urls).join(', ')}`)
      assert.ok(urls.some(u => u.endsWith('/src/api/client.ts')), argv.join(' '))
      assert.deepEqual(urls.filter(u => PEER_INTERNALS.test(u)), [], argv.join(' '))
      assert.deepEqual(commandModules(urls).filter(m => !['status.ts', module].includes(m)), [], `${argv.join(' ')} loads other commands`)
    }
  })

  test('node start --help reads the config table without loading the peer itself', async () => {
    const { code, urls } = await modulesLoadedBy(['node', 'start', '--help'], dir)
    assert.equal(code, 0)
    assert.ok(urls.some(u => u.endsWith('/src/node/config.ts')))
    // src/node/index.ts is light: it loads node.ts (and libp2p) only when a peer starts.
    assert.deepEqual(urls.filter(u => /\/src\/node\/node\.ts$|node_modules\/libp2p\//.test(u)), [])
  })

  test('check --help and run --help do not load the TypeScript compiler; check FILE loads it and nothing of the peer', async () => {
    const TYPESCRIPT = /node_modules\/typescript\//
    for (const argv of [['check', '--help'], ['run', '--help']]) {
      const { code, urls } = await modulesLoadedBy(argv, dir)
      assert.equal(code, 0)
      assert.deepEqual(urls.filter(u => TYPESCRIPT.test(u)), [], argv.join(' '))
    }
    const flow = fileURLToPath(new URL('../fixtures/check-cli/clean.ts', import.meta.url))
    const { code, urls } = await modulesLoadedBy(['check', flow], dir)
    assert.equal(code, 0)
    assert.ok(urls.some(u => TYPESCRIPT.test(u)))
    // It reads files only: no network stack, no peer, no store.
    assert.deepEqual(urls.filter(u => /node_modules\/(libp2p|@libp2p|@chainsafe)\/|\/src\/(node|net|store)\//.test(u)), [])
  })
})
