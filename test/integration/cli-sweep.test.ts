/**
 * A sweep of bad invocations, each run as a real `rhizome` child process: every one must end
 * within a bound (a hang is killed and fails), exit 1 (the operation failed) or 2 (the command
 * line or config was wrong), name the problem, say what to do on a `hint:` line, and print no
 * stack trace. Cases that need a running peer share one.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { TestNetwork, runCli } from '../helpers/peers.ts'
import type { Server } from 'node:net'
import type { CliResult, TestPeer } from '../helpers/peers.ts'

const MATH = fileURLToPath(new URL('../fixtures/deploy/math.ts', import.meta.url))
/** Each case gets this long; a CLI that blocks (a FIFO, /dev/zero) is killed and the case fails. */
const CASE_TIMEOUT_MS = 20_000
/** Cases run this many at a time: each is a Node process, and the machine is shared. */
const CONCURRENCY = 4

interface Case {
  name: string
  args: () => string[]
  env?: NodeJS.ProcessEnv
  code: 1 | 2
  /** What the message must say: the path, the address, the flag. */
  message: () => RegExp
  /** A `hint:` line is expected (true for every case here but the parser's own usage errors). */
  hint?: boolean
}

describe('rhizome CLI: a sweep of bad invocations', { timeout: 180_000 }, () => {
  let dir: string
  let net: TestNetwork
  let peer: TestPeer
  let fnId: string
  let busy: Server
  let busyPort: number
  const nowhere = (): string => join(dir, 'nobody') // a data dir with no peer

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rhizome-sweep-'))
    net = await TestNetwork.create()
    peer = await net.addPeer()
    const deployed = await runCli(['deploy', MATH, '--replicas', '1', '--json', '--data-dir', peer.dataDir], { timeoutMs: 60_000 })
    assert.equal(deployed.code, 0, deployed.stderr)
    fnId = (JSON.parse(deployed.stdout) as { cid: string }).cid
    busy = createServer()
    await new Promise<void>(resolve => busy.listen(0, '127.0.0.1', resolve))
    busyPort = (busy.address() as { port: number }).port

    await writeFile(join(dir, 'file'), 'not a directory')
    execFileSync('mkfifo', [join(dir, 'fifo')])
    await mkdir(join(dir, 'fifo-config'))
    execFileSync('mkfifo', [join(dir, 'fifo-config', 'config.json')])
    await mkdir(join(dir, 'key-dir', 'identity.key'), { recursive: true })
    await mkdir(join(dir, 'bad-db'))
    await writeFile(join(dir, 'bad-db', 'rhizome.db'), 'this is not an SQLite database, just text that is long enough to have a header')
    await mkdir(join(dir, 'blobs-file'))
    await writeFile(join(dir, 'blobs-file', 'blobs'), 'a file where the blob directory goes')
    await mkdir(join(dir, 'proto-config'))
    await writeFile(join(dir, 'proto-config', 'config.json'), '{"__proto__": {"apiPort": 1}}')
  })

  after(async () => {
    await new Promise<void>(resolve => { if (busy !== undefined) busy.close(() => resolve()); else resolve() })
    await net?.close()
    await rm(dir, { recursive: true, force: true })
  })

  const start = (...extra: string[]): string[] => ['node', 'start', '--no-mdns', '--log-level', 'silent', '--listen', '/ip4/127.0.0.1/tcp/0', ...extra]

  const cases: Case[] = [
    // Item 12: start failures.
    { name: 'listen on a busy port', args: () => ['node', 'start', '--no-mdns', '--log-level', 'silent', '--data-dir', join(dir, 'l1'), '--listen', `/ip4/127.0.0.1/tcp/${busyPort}`], code: 1, message: () => new RegExp(`cannot listen on /ip4/127\\.0\\.0\\.1/tcp/${busyPort} .*EADDRINUSE`) },
    { name: 'listen on a foreign IP', args: () => ['node', 'start', '--no-mdns', '--log-level', 'silent', '--data-dir', join(dir, 'l2'), '--listen', '/ip4/8.8.8.8/tcp/0'], code: 1, message: () => /cannot listen on \/ip4\/8\.8\.8\.8\/tcp\/0 .*EADDRNOTAVAIL/ },
    { name: 'listen on an unsupported transport', args: () => ['node', 'start', '--no-mdns', '--log-level', 'silent', '--data-dir', join(dir, 'l3'), '--listen', '/ip4/127.0.0.1/udp/0/quic-v1'], code: 1, message: () => /cannot listen on \/ip4\/127\.0\.0\.1\/udp\/0\/quic-v1/ },
    { name: 'a busy API port', args: () => start('--data-dir', join(dir, 'a1'), '--api-port', String(busyPort)), code: 1, message: () => new RegExp(`HTTP API on 127\\.0\\.0\\.1:${busyPort}.*EADDRINUSE`) },
    { name: 'an API host that is not loopback', args: () => start('--data-dir', join(dir, 'a2'), '--api-host', '8.8.8.8'), code: 2, message: () => /--api-host: "8\.8\.8\.8" is not a loopback address/ },
    { name: 'a data dir that is a regular file', args: () => start('--data-dir', join(dir, 'file')), code: 2, message: () => new RegExp(`--data-dir: ${join(dir, 'file')} is a regular file, not a directory`) },
    { name: 'identity.key that is a directory', args: () => start('--data-dir', join(dir, 'key-dir')), code: 1, message: () => /identity\.key is a directory/ },
    { name: 'rhizome.db that is not a database', args: () => start('--data-dir', join(dir, 'bad-db')), code: 1, message: () => /cannot open the database .*bad-db\/rhizome\.db: file is not a database/ },
    { name: 'blobs/ that is a file', args: () => start('--data-dir', join(dir, 'blobs-file')), code: 1, message: () => /blobs-file\/blobs is a regular file; it should be the blob store directory/ },
    { name: 'blob put DIR', args: () => ['blob', 'put', dir, '--data-dir', peer.dataDir], code: 2, message: () => new RegExp(`cannot read ${dir}: it is a directory`) },
    { name: 'blob get --out into a missing directory', args: () => ['blob', 'get', 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', '--out', join(dir, 'missing', 'x.bin'), '--data-dir', peer.dataDir], code: 2, message: () => /--out .*missing\/x\.bin: the directory .*missing does not exist/ },
    { name: 'blob get --out onto a directory', args: () => ['blob', 'get', 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', '--out', dir, '--data-dir', peer.dataDir], code: 2, message: () => new RegExp(`--out ${dir} is a directory`) },
    { name: 'devnet --dir FILE', args: () => ['devnet', '--dir', join(dir, 'file')], code: 2, message: () => /--dir .*file is not a directory/ },
    // Item 13: hangs and unbounded reads.
    { name: 'config.json that is a FIFO', args: () => start('--data-dir', join(dir, 'fifo-config')), code: 2, message: () => /config\.json: cannot read .*fifo-config\/config\.json: it is a named pipe \(FIFO\)/ },
    { name: 'blob put /dev/zero', args: () => ['blob', 'put', '/dev/zero', '--data-dir', peer.dataDir], code: 2, message: () => /cannot read \/dev\/zero: it is a character device/ },
    { name: 'blob put FIFO', args: () => ['blob', 'put', join(dir, 'fifo'), '--data-dir', peer.dataDir], code: 2, message: () => /cannot read .*fifo: it is a named pipe \(FIFO\)/ },
    { name: 'deploy /dev/zero', args: () => ['deploy', '/dev/zero', '--data-dir', peer.dataDir], code: 2, message: () => /\/dev\/zero is not a regular file/ },
    { name: 'deploy FIFO', args: () => ['deploy', join(dir, 'fifo'), '--data-dir', peer.dataDir], code: 2, message: () => /fifo is a named pipe \(FIFO\)/ },
    // Item 14: options checked before the peer is asked; the peer's input errors have hints.
    { name: '--timeout-ms abc', args: () => ['call', fnId, 'double', '2', '--timeout-ms', 'abc', '--data-dir', peer.dataDir], code: 2, message: () => /--timeout-ms must be a whole number of ms from 1 to 3600000, got "abc"/ },
    { name: '--timeout-ms 0', args: () => ['call', fnId, 'double', '2', '--timeout-ms', '0', '--data-dir', peer.dataDir], code: 2, message: () => /--timeout-ms must be a whole number of ms from 1 to 3600000, got "0"/ },
    { name: '--timeout-ms one past the limit', args: () => ['call', fnId, 'double', '2', '--timeout-ms', '3600001', '--data-dir', peer.dataDir], code: 2, message: () => /--timeout-ms must be/ },
    { name: '--on notapeer', args: () => ['call', fnId, 'double', '2', '--on', 'notapeer', '--data-dir', peer.dataDir], code: 2, message: () => /--on "notapeer" is not a peer id/ },
    { name: '--from notapeer', args: () => ['blob', 'get', 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', '--from', 'notapeer', '--data-dir', peer.dataDir], code: 2, message: () => /--from "notapeer" is not a peer id/ },
    { name: 'an unknown export', args: () => ['call', fnId, 'triple', '2', '--data-dir', peer.dataDir], code: 1, message: () => /has no export "triple"; it exports .*double/ },
    { name: 'an export name that is not an identifier', args: () => ['call', fnId, 'not-an-id', '--data-dir', peer.dataDir], code: 2, message: () => /EXPORT "not-an-id" is not an identifier/ },
    { name: 'an unknown function', args: () => ['call', 'no-such-function', 'double', '2', '--data-dir', peer.dataDir], code: 1, message: () => /no function named "no-such-function"/ },
    { name: 'arguments over 1 MiB', args: () => ['call', fnId, 'double', ...Array.from({ length: 10 }, () => JSON.stringify('x'.repeat(110_000))), '--data-dir', peer.dataDir], code: 1, message: () => /arguments are \d+ bytes encoded; at most 1048576/ },
    { name: '--replicas 0', args: () => ['deploy', MATH, '--replicas', '0', '--data-dir', peer.dataDir], code: 2, message: () => /--replicas must be an integer from 1 to 16/ },
    { name: '--time-ms abc', args: () => ['deploy', MATH, '--time-ms', 'abc', '--data-dir', peer.dataDir], code: 2, message: () => /--time-ms must be a whole number/ },
    { name: '--memory-mib one past the ceiling', args: () => ['deploy', MATH, '--memory-mib', '100000', '--data-dir', peer.dataDir], code: 2, message: () => /limits\.memoryBytesMax is \d+, more than the ceiling/ },
    { name: '--name with a bidi control', args: () => ['deploy', MATH, '--name', 'evil\u202egnp.exe', '--data-dir', peer.dataDir], code: 2, message: () => /function manifest name: must not contain control, bidi or invisible characters \(found U\+202E/ },
    { name: '--peers 0', args: () => ['devnet', '--peers', '0', '--dir', join(dir, 'devnet')], code: 2, message: () => /--peers must be an integer from 1 to 16/ },
    // Item 16: configuration names what the user typed.
    { name: 'RHIZOME_SLOTS out of range', args: () => start('--data-dir', join(dir, 'c1')), env: { RHIZOME_SLOTS: '0' }, code: 2, message: () => /RHIZOME_SLOTS: must be between 1 and 1024, got 0/ },
    { name: 'RHIZOME_SLOTS_MAX (the alias) out of range', args: () => start('--data-dir', join(dir, 'c2')), env: { RHIZOME_SLOTS_MAX: 'many' }, code: 2, message: () => /RHIZOME_SLOTS_MAX: must be an integer, got "many"/ },
    { name: '--api-port out of range', args: () => start('--data-dir', join(dir, 'c3'), '--api-port', '70000'), code: 2, message: () => /--api-port: must be between 0 and 65535, got 70000/ },
    { name: '--slots 0', args: () => start('--data-dir', join(dir, 'c4'), '--slots', '0'), code: 2, message: () => /--slots: must be between 1 and 1024, got 0/ },
    { name: '--suspect-after-ms not after --announce-interval-ms', args: () => start('--data-dir', join(dir, 'c5'), '--announce-interval-ms', '5000', '--suspect-after-ms', '4000'), code: 2, message: () => /--suspect-after-ms: must be longer than --announce-interval-ms \(5000\)/ },
    { name: 'a __proto__ key in config.json', args: () => start('--data-dir', join(dir, 'proto-config')), code: 2, message: () => /__proto__: unknown field in .*config\.json/ },
    // The command line itself.
    { name: 'an unknown flag', args: () => ['status', '--bogus'], code: 2, message: () => /Unknown option '--bogus'/ },
    { name: 'an unknown command', args: () => ['frobnicate'], code: 2, message: () => /unknown command: frobnicate/ },
    { name: 'a missing argument', args: () => ['blob', 'put'], code: 2, message: () => /expected 1 argument\(s\), got 0/ },
    { name: 'a missing export', args: () => ['call', 'fn'], code: 2, message: () => /expected 2 to 66 argument\(s\), got 1/ },
    { name: 'an argument that is not JSON', args: () => ['call', fnId, 'double', 'two', '--data-dir', peer.dataDir], code: 2, message: () => /argument 1 is not JSON: two/ },
    { name: 'a bad --api URL', args: () => ['status', '--api', 'ftp://x'], code: 2, message: () => /--api "ftp:\/\/x" is not an http:\/\/ URL/ },
    { name: 'no peer to talk to', args: () => ['status', '--data-dir', nowhere()], code: 1, message: () => /no Rhizome peer is running from/ }
  ]

  test(`${cases.length} bad invocations: bounded, exit 1 or 2, named, with a hint, no stack trace`, async () => {
    const failures: string[] = []
    const results = new Map<string, CliResult>()
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < cases.length) {
        const c = cases[next++]
        results.set(c.name, await runCli(c.args(), { env: c.env, timeoutMs: CASE_TIMEOUT_MS }))
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker))
    for (const c of cases) {
      const r = results.get(c.name)!
      const problems: string[] = []
      if (r.code === null) problems.push(`did not end within ${CASE_TIMEOUT_MS} ms (killed)`)
      else if (r.code !== c.code) problems.push(`exit ${r.code}, expected ${c.code}`)
      if (!c.message().test(r.stderr)) problems.push(`message does not match ${String(c.message())}`)
      if ((c.hint ?? true) && !/^hint: \S/m.test(r.stderr)) problems.push('no hint: line')
      if (/^\s+at /m.test(r.stderr)) problems.push('prints a stack trace')
      if (problems.length > 0) failures.push(`${c.name}: ${problems.join('; ')}\n  stderr: ${r.stderr.slice(0, 600).replace(/\n/g, '\n          ')}`)
    }
    assert.deepEqual(failures, [], `\n${failures.join('\n')}`)
  })

  test('an unknown RHIZOME_* variable is named in a warning, with the known ones', async () => {
    const r = await runCli(start('--data-dir', join(dir, 'w1'), '--api-port', '70000'), { env: { RHIZOME_SLOT: '4' }, timeoutMs: CASE_TIMEOUT_MS })
    assert.equal(r.code, 2)
    assert.match(r.stderr, /warning: RHIZOME_SLOT is not a Rhizome setting and is ignored; known variables: .*RHIZOME_SLOTS/)
  })
})
