/**
 * main() in-process: help for every command and group, usage errors that exit 2 before any
 * request, the limits the CLI checks early (one past each), and Ctrl-C during a request.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { CALL_TIMEOUT_MS_MAX, REPLICAS_MAX } from '../../src/api/limits.ts'
import { COMMANDS, main } from '../../src/cli/main.ts'
import { progressLine } from '../../src/cli/progress.ts'
import { KNOWN_ENV, configOptions } from '../../src/node/config.ts'
import type { Server } from 'node:http'

interface Run { code: number, stdout: string, stderr: string }

async function run (argv: string[], options: { env?: NodeJS.ProcessEnv, signal?: AbortSignal } = {}): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const code = await main(argv, options.env ?? { RHIZOME_DATA_DIR: emptyDir }, options.signal ?? new AbortController().signal, {
    out: text => { stdout += typeof text === 'string' ? text : Buffer.from(text).toString() },
    err: text => { stderr += text },
    isTTY: false
  })
  return { code, stdout, stderr }
}

let emptyDir: string

describe('rhizome main()', () => {
  before(async () => { emptyDir = await mkdtemp(join(tmpdir(), 'rhizome-cli-main-')) })
  after(async () => { await rm(emptyDir, { recursive: true, force: true }) })

  test('`help CMD` prints that command\'s help and exits 0, for every command', async () => {
    for (const entry of COMMANDS) {
      const r = await run(['help', ...entry.name.split(' ')])
      assert.equal(r.code, 0, `${entry.name}: ${r.stderr}`)
      assert.ok(r.stdout.startsWith(entry.summary), entry.name)
      assert.match(r.stdout, new RegExp(`Usage: rhizome ${entry.name}`))
      assert.deepEqual(await run([...entry.name.split(' '), '--help']), r, `${entry.name} --help is the same text`)
    }
    assert.match((await run(['help', 'status'])).stdout, /--api-token TOKEN/, 'commands that talk to a peer say how it is found')
  })

  test('`node --help`, `help node` and `blob --help` list the commands of the group', async () => {
    for (const argv of [['node', '--help'], ['help', 'node'], ['node', '-h']]) {
      const r = await run(argv)
      assert.equal(r.code, 0, argv.join(' '))
      assert.match(r.stdout, /node start {2}start a peer/)
    }
    const blob = await run(['blob', '--help'])
    assert.equal(blob.code, 0)
    assert.match(blob.stdout, /blob put/)
    assert.match(blob.stdout, /blob get/)
    const bare = await run(['node'])
    assert.equal(bare.code, 2)
    assert.match(bare.stderr, /`rhizome node` needs a command/)
    assert.match(bare.stderr, /node start/)
  })

  test('`help X` for a command that does not exist exits 2 with a hint', async () => {
    for (const argv of [['help', 'frobnicate'], ['help', 'node', 'stop'], ['help', 'status', 'extra']]) {
      const r = await run(argv)
      assert.equal(r.code, 2, argv.join(' '))
      assert.equal(r.stdout, '')
      assert.match(r.stderr, /there is no command `rhizome /)
      assert.match(r.stderr, /hint: `rhizome help` lists the commands/)
    }
    assert.equal((await run(['help'])).code, 0)
    assert.equal((await run([])).code, 2)
  })

  test('`node start --help` lists every setting of the config table: its flag and its variables', async () => {
    const r = await run(['node', 'start', '--help'])
    assert.equal(r.code, 0)
    for (const flag of Object.keys(configOptions())) assert.ok(r.stdout.includes(`--${flag}`), `--${flag} missing from the help`)
    for (const name of KNOWN_ENV) assert.ok(r.stdout.includes(name), `${name} missing from the help`)
  })

  test('the connection flags are checked before anything is read or sent: exit 2 naming the flag', async () => {
    const badUrl = await run(['status', '--api', 'ftp://127.0.0.1:1'])
    assert.equal(badUrl.code, 2)
    assert.match(badUrl.stderr, /--api "ftp:\/\/127\.0\.0\.1:1" is not an http:\/\/ URL/)
    const emptyToken = await run(['status', '--api', 'http://127.0.0.1:1', '--api-token', ' '])
    assert.equal(emptyToken.code, 2)
    assert.match(emptyToken.stderr, /--api-token is empty/)
    const noPeer = await run(['status'])
    assert.equal(noPeer.code, 1)
    assert.match(noPeer.stderr, /no Rhizome peer is running from .* \(ERR_NO_PEER\)/)
  })

  test('limits shared with the peer, checked early: one past each exits 2, the limit itself gets as far as the peer', async () => {
    const pastTimeout = await run(['call', 'f', 'run', '--timeout-ms', String(CALL_TIMEOUT_MS_MAX + 1)])
    assert.equal(pastTimeout.code, 2)
    assert.match(pastTimeout.stderr, new RegExp(`--timeout-ms must be a whole number of ms from 1 to ${CALL_TIMEOUT_MS_MAX}`))
    const atTimeout = await run(['call', 'f', 'run', '--timeout-ms', String(CALL_TIMEOUT_MS_MAX)])
    assert.equal(atTimeout.code, 1)
    assert.match(atTimeout.stderr, /ERR_NO_PEER/)

    const pastReplicas = await run(['deploy', 'missing.ts', '--replicas', String(REPLICAS_MAX + 1)])
    assert.equal(pastReplicas.code, 2)
    assert.match(pastReplicas.stderr, new RegExp(`--replicas must be an integer from 1 to ${REPLICAS_MAX}`))
    const atReplicas = await run(['deploy', 'missing.ts', '--replicas', String(REPLICAS_MAX)])
    assert.doesNotMatch(atReplicas.stderr, /--replicas/)
  })

  describe('Ctrl-C during a request', () => {
    let server: Server
    let url: string
    before(async () => {
      // Takes the request and never answers: only the abort can end it.
      server = createServer(req => { req.resume() })
      await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
      url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
    })
    after(async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    })

    test('exits 130 with ERR_ABORTED', async () => {
      const controller = new AbortController()
      const pending = run(['status', '--api', url, '--api-token', 't'], { signal: controller.signal })
      setTimeout(() => controller.abort(), 100)
      const r = await pending
      assert.equal(r.code, 130, r.stderr)
      assert.match(r.stderr, /cancelled \(ERR_ABORTED\)/)
    })
  })
})

describe('progress lines', () => {
  test('off a terminal: one plain line per new state, no \\r, nothing repeated', () => {
    let written = ''
    const progress = progressLine(text => { written += text }, false)
    progress.update('waiting 0/6')
    progress.update('waiting 0/6')
    progress.update('waiting 6/6')
    progress.done()
    assert.equal(written, 'waiting 0/6\nwaiting 6/6\n')
  })

  test('on a terminal: redrawn in place with \\r, and a newline when done', () => {
    let written = ''
    const progress = progressLine(text => { written += text }, true)
    progress.update('waiting 0/6')
    progress.update('waiting 6/6')
    progress.done()
    progress.done()
    assert.equal(written, '\rwaiting 0/6\u001b[K\rwaiting 6/6\u001b[K\n')
  })

  test('no CLI source writes \\r except through progressLine', async () => {
    const root = fileURLToPath(new URL('../../src/cli/', import.meta.url))
    const files = (await readdir(root, { recursive: true })).filter(f => f.endsWith('.ts') && f !== 'progress.ts')
    assert.ok(files.length > 5)
    for (const file of files) {
      const text = await readFile(join(root, file), 'utf8')
      assert.ok(!text.includes('\\r') && !text.includes('\r'), `${file} writes \\r; use progressLine, which does so only on a terminal`)
    }
  })
})
