/**
 * Functions across real peers: deploy on one, call from a second, run on a third that has never
 * seen the function; equal calls give equal result CIDs on different peers; a worker killed
 * mid-task gives the caller a retryable error, not a hang.
 */
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { wasmAdd, wasmSpin } from '../fixtures/functions/wasm-modules.ts'
import { MAIN, TestNetwork, runCli, waitFor } from '../helpers/peers.ts'
import type { TestPeer } from '../helpers/peers.ts'

const MATH = fileURLToPath(new URL('../fixtures/deploy/math.ts', import.meta.url))
const SIZES = fileURLToPath(new URL('../fixtures/deploy/sizes.ts', import.meta.url))
/** RESULT_INLINE_BYTES_MAX and TASK_ARGS_BYTES_MAX (src/wire/task-codec.ts). */
const RESULT_INLINE_BYTES_MAX = 256 * 1024
const TASK_ARGS_BYTES_MAX = 1024 * 1024

interface CallJson { value: unknown, peer: string, resultCid: string, taskId: string, timings: { fetchMs: number, runMs: number } }

describe('functions on real peers', { timeout: 240_000 }, () => {
  let net: TestNetwork
  let peers: TestPeer[]
  let fnId: string

  before(async () => {
    net = await TestNetwork.create()
    const first = await net.addPeer()
    const rest = await Promise.all([1, 2, 3].map(async () => await net.addPeer(['--bootstrap', first.tcpAddr])))
    peers = [first, ...rest]
    await waitFor('all peers to see each other', async () => {
      for (const p of peers) if ((await p.peers()).filter(x => x.state === 'alive').length < peers.length - 1) return false
      return true
    }, 60_000, 200)
  })
  after(async () => { await net?.close() })

  async function functionsOn (peer: TestPeer): Promise<Array<{ cid: string, origin: string }>> {
    return (await peer.api<{ functions: Array<{ cid: string, origin: string }> }>('/v1/functions')).functions
  }

  test('deploy bundles, content-addresses and replicates; deploying again is the same id and no new work', async () => {
    const first = await runCli(['deploy', MATH, '--replicas', '2', '--json', '--data-dir', peers[0].dataDir])
    assert.equal(first.code, 0, first.stderr)
    const result = JSON.parse(first.stdout) as { cid: string, exports: string[], alreadyDeployed: boolean, replicas: Array<{ peer: string, ok: boolean }> }
    assert.deepEqual([...result.exports].sort(), ['double', 'lucky', 'spin', 'sumOfSquares'])
    assert.equal(result.alreadyDeployed, false)
    assert.equal(result.replicas.length, 2)
    assert.ok(result.replicas.every(r => r.ok), JSON.stringify(result.replicas))
    fnId = result.cid
    const again = await runCli(['deploy', MATH, '--replicas', '2', '--json', '--data-dir', peers[0].dataDir])
    assert.equal(again.code, 0, again.stderr)
    const second = JSON.parse(again.stdout) as { cid: string, alreadyDeployed: boolean }
    assert.equal(second.cid, fnId)
    assert.equal(second.alreadyDeployed, true)
    for (const r of result.replicas) {
      const holder = peers.find(p => p.peerId === r.peer)!
      assert.ok((await functionsOn(holder)).some(f => f.cid === fnId), `${r.peer} holds the function`)
    }
    const listed = await runCli(['functions', '--data-dir', peers[0].dataDir])
    assert.match(listed.stdout, new RegExp(fnId))
  })

  test('a call from one peer lands on a peer that has never seen the function: it fetches, verifies and runs it', async () => {
    const holders = new Set<string>()
    for (const p of peers) if ((await functionsOn(p)).some(f => f.cid === fnId)) holders.add(p.peerId)
    // Deployed on peers[0]; the worker is a peer that has never seen it (4 peers, at most 3
    // holders: the deployer and 2 replicas); the caller is a third peer.
    const worker = peers.find(p => !holders.has(p.peerId))
    assert.ok(worker !== undefined && worker !== peers[0], 'a peer without the function exists')
    const caller = peers.find(p => p !== peers[0] && p !== worker)!
    const r = await runCli(['call', fnId, 'sumOfSquares', '[1,2,3]', '--on', worker.peerId, '--json', '--data-dir', caller.dataDir])
    assert.equal(r.code, 0, r.stderr)
    const answer = JSON.parse(r.stdout) as CallJson
    assert.equal(answer.value, 14)
    assert.equal(answer.peer, worker.peerId)
    assert.ok((await functionsOn(worker)).some(f => f.cid === fnId && f.origin === 'fetched'), 'the worker fetched and kept the function')

    const human = await runCli(['call', fnId, 'double', '21', '--on', worker.peerId, '--data-dir', caller.dataDir])
    assert.equal(human.code, 0, human.stderr)
    assert.match(human.stdout, /^42\n/)
    assert.match(human.stdout, /ran on\s+12D3Koo/)
    assert.match(human.stdout, /queue .* fetch .* run .* total/)
  })

  test('the same call on two different peers gives the same task id and result CID', async () => {
    const results: CallJson[] = []
    for (const worker of [peers[1], peers[3]]) {
      const r = await runCli(['call', fnId, 'lucky', '--on', worker.peerId, '--json', '--data-dir', peers[2].dataDir])
      assert.equal(r.code, 0, r.stderr)
      results.push(JSON.parse(r.stdout) as CallJson)
    }
    assert.notEqual(results[0].peer, results[1].peer)
    assert.equal(results[0].taskId, results[1].taskId)
    assert.equal(results[0].resultCid, results[1].resultCid)
    assert.equal(results[0].value, results[1].value)
  })

  test('without --on, placement picks a live peer and the call succeeds', async () => {
    const r = await runCli(['call', fnId, 'double', '5', '--json', '--data-dir', peers[0].dataDir])
    assert.equal(r.code, 0, r.stderr)
    const answer = JSON.parse(r.stdout) as CallJson
    assert.equal(answer.value, 10)
    assert.ok(peers.some(p => p.peerId === answer.peer))
  })

  test('a WebAssembly module deploys from a .wasm file and runs on another peer; deploy limits are enforced', async () => {
    const add = join(net.root, 'add.wasm')
    await writeFile(add, wasmAdd)
    const deployed = await runCli(['deploy', add, '--replicas', '1', '--json', '--data-dir', peers[0].dataDir])
    assert.equal(deployed.code, 0, deployed.stderr)
    const { cid, exports } = JSON.parse(deployed.stdout) as { cid: string, exports: string[] }
    assert.deepEqual(exports, ['add'])
    const r = await runCli(['call', cid, 'add', '2', '40', '--on', peers[1].peerId, '--json', '--data-dir', peers[2].dataDir])
    assert.equal(r.code, 0, r.stderr)
    assert.equal((JSON.parse(r.stdout) as CallJson).value, 42)

    // A 200 ms limit in the manifest stops an endless loop on the worker with a named error.
    const spin = join(net.root, 'spin.wasm')
    await writeFile(spin, wasmSpin)
    const limited = await runCli(['deploy', spin, '--replicas', '1', '--time-ms', '200', '--json', '--data-dir', peers[0].dataDir])
    assert.equal(limited.code, 0, limited.stderr)
    const spinId = (JSON.parse(limited.stdout) as { cid: string }).cid
    const stopped = await runCli(['call', spinId, 'spin', '--on', peers[1].peerId, '--data-dir', peers[2].dataDir])
    assert.equal(stopped.code, 1)
    assert.match(stopped.stderr, /ERR_SANDBOX_TIME_LIMIT/)

    const bad = await runCli(['deploy', spin, '--time-ms', '0', '--data-dir', peers[0].dataDir])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /limits: .*timeMs/)
  })

  test('results at the inline limit ride in the reply, one byte past it are fetched as a blob; arguments one byte past their limit are refused', async () => {
    const deployed = await runCli(['deploy', SIZES, '--replicas', '1', '--json', '--data-dir', peers[0].dataDir])
    assert.equal(deployed.code, 0, deployed.stderr)
    const sizesId = (JSON.parse(deployed.stdout) as { cid: string }).cid
    // A string of 65,536 characters or more encodes as dag-cbor with a 5-byte header.
    for (const length of [RESULT_INLINE_BYTES_MAX - 5, RESULT_INLINE_BYTES_MAX - 4]) {
      const res = await fetch(`${peers[2].apiUrl}/v1/call`, { method: 'POST', headers: peers[2].authorized(), body: JSON.stringify({ fn: sizesId, export: 'text', args: [length], on: peers[1].peerId }) })
      const answer = await res.json() as CallJson
      assert.equal(res.status, 200, JSON.stringify(answer).slice(0, 300))
      assert.equal((answer.value as string).length, length)
    }
    // `[s]` encodes as 1 (array) + 5 (string header) + s.length bytes.
    const tooLong = 'y'.repeat(TASK_ARGS_BYTES_MAX - 6 + 1)
    const refused = await fetch(`${peers[2].apiUrl}/v1/call`, { method: 'POST', headers: peers[2].authorized(), body: JSON.stringify({ fn: sizesId, export: 'size', args: [tooLong], on: peers[1].peerId }) })
    const failure = await refused.json() as { error: { code: string, message: string } }
    assert.equal(refused.status, 400)
    assert.equal(failure.error.code, 'ERR_INVALID_INPUT')
    assert.match(failure.error.message, /at most 1048576/)
    const fits = await fetch(`${peers[2].apiUrl}/v1/call`, { method: 'POST', headers: peers[2].authorized(), body: JSON.stringify({ fn: sizesId, export: 'size', args: [tooLong.slice(1)], on: peers[1].peerId }) })
    assert.equal(((await fits.json()) as CallJson).value, TASK_ARGS_BYTES_MAX - 6)

    const replicas = await runCli(['deploy', SIZES, '--replicas', '17', '--data-dir', peers[0].dataDir])
    assert.equal(replicas.code, 2)
    assert.match(replicas.stderr, /--replicas must be an integer from 1 to 16/)
  })

  test('the HTTP API refuses request bodies one byte past their limits with 413', async () => {
    // CALL_BYTES_MAX (2 MiB) and DEPLOY_BYTES_MAX (8 MiB) in src/node/http-api.ts.
    for (const [path, bytesMax] of [['/v1/call', 2 * 1024 * 1024], ['/v1/functions', 8 * 1024 * 1024]] as const) {
      const res = await fetch(`${peers[0].apiUrl}${path}`, { method: 'POST', headers: peers[0].authorized(), body: new Uint8Array(bytesMax + 1) })
      const body = await res.json() as { error: { code: string, message: string } }
      assert.equal(res.status, 413, path)
      assert.equal(body.error.code, 'ERR_TOO_LARGE')
      assert.match(body.error.message, new RegExp(`limit of ${bytesMax} bytes`))
    }
    const status = await peers[0].api<{ peerId: string }>('/v1/status')
    assert.equal(status.peerId, peers[0].peerId)
  })

  test('bad calls get named errors', async () => {
    const noExport = await runCli(['call', fnId, 'nope', '--on', peers[1].peerId, '--data-dir', peers[0].dataDir])
    assert.equal(noExport.code, 1)
    assert.match(noExport.stderr, /has no export "nope"/)
    const notJson = await runCli(['call', fnId, 'double', 'five', '--data-dir', peers[0].dataDir])
    assert.equal(notJson.code, 2)
    assert.match(notJson.stderr, /argument 1 is not JSON/)
    const unknown = await runCli(['call', 'no-such-function', 'double', '1', '--data-dir', peers[0].dataDir])
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /no function named "no-such-function"/)
  })

  test('Ctrl-C on `rhizome call` cancels the task on the worker and frees its slot', async () => {
    const worker = await net.addPeer(['--bootstrap', peers[0].tcpAddr, '--slots', '1', '--log-level', 'debug'])
    const caller = peers[2]
    await waitFor('the caller to see the new worker', async () => (await caller.peers()).some(p => p.peerId === worker.peerId && p.state === 'alive'))
    const cli = spawn(process.execPath, [MAIN, 'call', fnId, 'spin', '60000', '--on', worker.peerId, '--timeout-ms', '120000', '--data-dir', caller.dataDir], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    cli.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    const exited = new Promise<number | null>(resolve => cli.on('exit', code => resolve(code)))
    try {
      await waitFor('the worker to start the task', () => worker.stderr.includes('"task started"'), 30_000)
      cli.kill('SIGINT')
      assert.equal(await exited, 130, stderr)
      assert.match(stderr, /cancelled/)
      await waitFor('the worker to cancel the running task', () => worker.stderr.includes('"task cancelled"'), 30_000)
    } finally {
      cli.kill('SIGKILL')
    }
    // The worker has one slot: a new task runs only if the cancelled one gave it back.
    const next = await runCli(['call', fnId, 'double', '4', '--on', worker.peerId, '--json', '--data-dir', caller.dataDir])
    assert.equal(next.code, 0, next.stderr)
    assert.equal((JSON.parse(next.stdout) as CallJson).value, 8)
  })

  test('killing the worker mid-task gives the caller a retryable error, not a hang', async () => {
    const worker = await net.addPeer(['--bootstrap', peers[0].tcpAddr, '--log-level', 'debug'])
    const caller = peers[1]
    await waitFor('the caller to see the new worker', async () => (await caller.peers()).some(p => p.peerId === worker.peerId && p.state === 'alive'))
    const pending = runCli(['call', fnId, 'spin', '60000', '--on', worker.peerId, '--timeout-ms', '90000', '--data-dir', caller.dataDir], { timeoutMs: 60_000 })
    await waitFor('the worker to start the task', () => worker.stderr.includes('"task started"'), 30_000)
    await worker.stop('SIGKILL')
    const r = await pending
    assert.equal(r.code, 1, `the call must fail, not hang: ${r.stderr}`)
    assert.match(r.stderr, /ERR_PEER_UNAVAILABLE/)
    assert.match(r.stderr, /hint:/)
  })
})
