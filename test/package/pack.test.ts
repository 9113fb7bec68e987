/**
 * Rhizome as a package people install: `npm pack` (which builds dist/), install the tarball into
 * a fresh project, type-check a program against the SDK's .d.ts (a wrong argument type must fail
 * `tsc`), import it at run time, and run the installed `rhizome` command: --help, a peer started
 * from the installed package, a deploy and a call through it, and the SDK talking to that peer.
 *
 * npm installs the dependencies from its cache (`npm ci` filled it), falling back to the registry.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { waitFor } from '../helpers/peers.ts'
import type { ChildProcess } from 'node:child_process'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
const NPM_TIMEOUT_MS = 180_000

interface Run { code: number | null, stdout: string, stderr: string }

async function run (command: string, args: string[], cwd: string, timeoutMs = 60_000): Promise<Run> {
  // process.execPath's folder first, so npm and the installed `rhizome` run on this Node 24.
  const env = { ...process.env, PATH: `${join(process.execPath, '..')}:${process.env.PATH ?? ''}`, npm_config_update_notifier: 'false' }
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL') } catch {} }, timeoutMs)
  const code = await new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

describe('the package installs and works outside the repository', { timeout: 420_000 }, () => {
  let dir: string
  let project: string
  let peer: ChildProcess | undefined
  let peerOut = ''

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rhizome-pack-'))
    project = join(dir, 'app')
    const packed = await run('npm', ['pack', '--pack-destination', dir, '--no-audit', '--no-fund'], ROOT, NPM_TIMEOUT_MS)
    assert.equal(packed.code, 0, packed.stderr)
    const tarball = (await readdir(dir)).find(f => f.endsWith('.tgz'))
    assert.ok(tarball !== undefined, 'npm pack wrote no tarball')
    await run('mkdir', ['-p', project], dir)
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
    const installed = await run('npm', ['install', join(dir, tarball), '--prefer-offline', '--no-audit', '--no-fund'], project, NPM_TIMEOUT_MS)
    assert.equal(installed.code, 0, installed.stderr)
  })

  after(async () => {
    if (peer?.pid !== undefined && peer.exitCode === null) {
      try { process.kill(-peer.pid, 'SIGKILL') } catch {}
    }
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  test('the tarball ships built JavaScript and types, not the TypeScript sources', async () => {
    const pkgDir = join(project, 'node_modules', '@rhizome-net', 'rhizome')
    const top = await readdir(pkgDir)
    assert.ok(top.includes('dist') && top.includes('bin'), `package holds ${top.join(', ')}`)
    assert.ok(!top.includes('src') && !top.includes('test'), `package holds ${top.join(', ')}`)
    const sdk = await readdir(join(pkgDir, 'dist', 'sdk'))
    assert.ok(sdk.includes('index.js') && sdk.includes('index.d.ts'), sdk.join(', '))
  })

  test('a program type-checks against the SDK, and a wrong argument type fails tsc', async () => {
    await writeFile(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2023', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2023', 'DOM'], types: [], strict: true, noEmit: true, skipLibCheck: true }
    }))
    await writeFile(join(project, 'good.ts'), [
      "import { connect, RhizomeError, VERSION } from '@rhizome-net/rhizome'",
      "import type { CallResult, NodeStatus } from '@rhizome-net/rhizome'",
      'export async function main (dataDir: string): Promise<[NodeStatus, CallResult]> {',
      '  const peer = await connect({ dataDir })',
      "  const status = await peer.status({ timeoutMs: 5000 })",
      "  const result = await peer.call({ fn: 'f', export: 'double', args: [21] })",
      '  return [status, result]',
      '}',
      'export const version: string = VERSION',
      'export const isError = (e: unknown): boolean => e instanceof RhizomeError',
      ''
    ].join('\n'))
    const good = await run(process.execPath, [TSC, '-p', '.'], project)
    assert.equal(good.code, 0, good.stdout + good.stderr)

    await writeFile(join(project, 'bad.ts'), [
      "import { connect } from '@rhizome-net/rhizome'",
      "const peer = await connect({ dataDir: 'x' })",
      "await peer.call({ fn: 42, export: 'double', args: [21] })",
      'export {}',
      ''
    ].join('\n'))
    const bad = await run(process.execPath, [TSC, '-p', '.'], project)
    assert.notEqual(bad.code, 0, 'tsc accepted a number where a function id string is required')
    assert.match(bad.stdout, /bad\.ts.*TS2322/s, bad.stdout)
    await rm(join(project, 'bad.ts'))
  })

  test('a workflow type-checks against its function module; a wrong argument type fails tsc', async () => {
    await writeFile(join(project, 'fns.ts'), 'export async function B (x: number): Promise<number> { return x * 2 }\nexport async function C (x: number): Promise<number> { return x + 1 }\nexport async function D (x: number): Promise<number> { return x - 3 }\n')
    await writeFile(join(project, 'flow.ts'), [
      "import { workflow, ref } from '@rhizome-net/rhizome'",
      "import type { Ref } from '@rhizome-net/rhizome'",
      "import { B, C, D } from './fns.ts'",
      'export const A = workflow(async (x: number) => {',
      '  const [b, c, d] = await Promise.all([B(x), C(x), D(x)])',
      '  const handle: Ref<number> = await ref(B)(x)',
      '  return b + c - d + (handle.cid.length > 0 ? 0 : 1)',
      '})',
      ''
    ].join('\n'))
    const tsconfig = { compilerOptions: { target: 'ES2023', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2023', 'DOM'], types: [], strict: true, noEmit: true, skipLibCheck: true, allowImportingTsExtensions: true } }
    await writeFile(join(project, 'tsconfig.json'), JSON.stringify(tsconfig))
    const good = await run(process.execPath, [TSC, '-p', '.'], project)
    assert.equal(good.code, 0, good.stdout + good.stderr)
    await writeFile(join(project, 'bad-flow.ts'), [
      "import { workflow } from '@rhizome-net/rhizome'",
      "import { B } from './fns.ts'",
      "export const A = workflow(async (x: number) => await B('x'))",
      ''
    ].join('\n'))
    const bad = await run(process.execPath, [TSC, '-p', '.'], project)
    assert.notEqual(bad.code, 0, 'tsc accepted B(\'x\') where B takes a number')
    assert.match(bad.stdout, /bad-flow\.ts.*TS2345/s, bad.stdout)
    await rm(join(project, 'bad-flow.ts'))
  })

  test('`rhizome --help` runs from the installed package', async () => {
    const help = await run(join(project, 'node_modules', '.bin', 'rhizome'), ['--help'], project)
    assert.equal(help.code, 0, help.stderr)
    assert.match(help.stdout, /Usage: rhizome <command>/)
  })

  test('a peer started from the installed package deploys and runs a function; the SDK reaches it', async () => {
    const bin = join(project, 'node_modules', '.bin', 'rhizome')
    const dataDir = join(dir, 'peer')
    const env = { ...process.env, PATH: `${join(process.execPath, '..')}:${process.env.PATH ?? ''}` }
    peer = spawn(bin, ['node', 'start', '--data-dir', dataDir, '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--network-id', `pack-${process.pid}`],
      { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    peer.stdout!.on('data', (c: Buffer) => { peerOut += c.toString() })
    peer.stderr!.on('data', (c: Buffer) => { peerOut += c.toString() })
    await waitFor('the installed peer to listen', () => {
      if (peer!.exitCode !== null) throw new Error(`peer exited ${peer!.exitCode}: ${peerOut.slice(-2000)}`)
      return peerOut.includes('listening')
    }, 60_000)

    await writeFile(join(project, 'double.ts'), 'export async function double (x: number) { return x * 2 }\n')
    const deployed = await run(bin, ['deploy', 'double.ts', '--replicas', '1', '--data-dir', dataDir, '--json'], project)
    assert.equal(deployed.code, 0, deployed.stderr)
    const fn = (JSON.parse(deployed.stdout) as { cid: string }).cid
    const called = await run(bin, ['call', fn, 'double', '21', '--data-dir', dataDir, '--json'], project)
    assert.equal(called.code, 0, called.stderr)
    assert.equal((JSON.parse(called.stdout) as { value: number }).value, 42)

    await writeFile(join(project, 'sdk.mjs'), [
      "import { connect } from '@rhizome-net/rhizome'",
      'const peer = await connect({ dataDir: process.argv[2] })',
      'const status = await peer.status()',
      "const result = await peer.call({ fn: process.argv[3], export: 'double', args: [50] })",
      'console.log(JSON.stringify({ peerId: status.peerId, value: result.value }))',
      ''
    ].join('\n'))
    const flow = await run(bin, ['run', 'flow.ts', 'A', '5', '--data-dir', dataDir, '--json'], project, 120_000)
    assert.equal(flow.code, 0, flow.stderr + flow.stdout)
    assert.equal((JSON.parse(flow.stdout) as { result: number }).result, 14)

    const sdk = await run(process.execPath, ['sdk.mjs', dataDir, fn], project)
    assert.equal(sdk.code, 0, sdk.stderr)
    const answer = JSON.parse(sdk.stdout) as { peerId: string, value: number }
    assert.match(answer.peerId, /^12D3KooW/)
    assert.equal(answer.value, 100)
  })
})
