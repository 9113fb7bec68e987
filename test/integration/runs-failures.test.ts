/**
 * Workflow runs that go wrong, on real peers through the HTTP API: each ends with a named error
 * and a hint (or is refused at start), and every peer keeps serving and runs a good workflow
 * afterwards. A cancelled run cancels its task on the worker.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { createManifest, encodeManifest } from '../../src/functions/index.ts'
import { TestNetwork, runCli, waitFor, runEvents } from '../helpers/peers.ts'
import type { ProgressEvent } from '../../src/api/events.ts'
import type { RunReport } from '../../src/api/types.ts'
import type { TestPeer } from '../helpers/peers.ts'

const FNS = fileURLToPath(new URL('../fixtures/runs/bad-fns.ts', import.meta.url))
const FLOW = fileURLToPath(new URL('../fixtures/runs/bad-flow.template.js', import.meta.url))
const FLOW_EXPORTS = ['fine', 'throws', 'fnFails', 'unknownFn', 'cycle', 'passesFunction', 'passesSymbol', 'passesUndefinedInList', 'readsClock', 'newDate', 'usesTimer', 'long', 'fan']

interface ErrorBody { error: { code: string, name: string, message: string, hint?: string } }

describe('workflow runs that go wrong', { timeout: 120_000 }, () => {
  let net: TestNetwork
  let peers: TestPeer[]
  let driver: TestPeer
  let workflow: string

  before(async () => {
    net = await TestNetwork.create()
    const first = await net.addPeer(['--slots', '1', '--log-level', 'debug'])
    const rest = await Promise.all([1, 2].map(async () => await net.addPeer(['--bootstrap', first.tcpAddr, '--slots', '1', '--log-level', 'debug'])))
    peers = [first, ...rest]
    driver = first
    await waitFor('all peers to see each other', async () => {
      for (const p of peers) if ((await p.peers()).filter(x => x.state === 'alive').length < peers.length - 1) return false
      return true
    }, 60_000, 200)
    const deployed = await runCli(['deploy', FNS, '--replicas', '3', '--json', '--data-dir', driver.dataDir])
    assert.equal(deployed.code, 0, deployed.stderr)
    const fnId = (JSON.parse(deployed.stdout) as { cid: string }).cid
    const code = new TextEncoder().encode((await readFile(FLOW, 'utf8')).replaceAll('FNS', fnId))
    const manifest = encodeManifest(await createManifest({ name: 'bad-flow', kind: 'js', code, exports: FLOW_EXPORTS }))
    const res = await fetch(`${driver.apiUrl}/v1/functions`, { method: 'POST', headers: driver.authorized(), body: dagCbor.encode({ manifest, code, replicas: 1 }) as BodyInit, signal: AbortSignal.timeout(60_000) })
    assert.equal(res.status, 200, await res.clone().text())
    workflow = (await res.json() as { cid: string }).cid
  })
  after(async () => { await net?.close() })

  async function post (body: unknown): Promise<Response> {
    return await fetch(`${driver.apiUrl}/v1/runs`, { method: 'POST', headers: driver.authorized({ 'content-type': 'application/json' }), body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) })
  }

  async function start (exportName: string, args: unknown[]): Promise<string> {
    const res = await post({ workflow, export: exportName, args })
    assert.equal(res.status, 200, await res.clone().text())
    return (await res.json() as { runId: string }).runId
  }

  async function follow (runId: string): Promise<ProgressEvent[]> {
    return await runEvents(driver, runId, 60_000)
  }

  async function report (runId: string): Promise<RunReport> {
    return await driver.api<RunReport>(`/v1/runs/${runId}`)
  }

  /** Start `exportName`, follow it to its end, and return its report (which must say 'failed'). */
  async function failedRun (exportName: string, args: unknown[] = []): Promise<NonNullable<RunReport['error']>> {
    const runId = await start(exportName, args)
    const events = await follow(runId)
    const last = events.at(-1)
    assert.equal(last?.type, 'run:finished', `${exportName}: the stream ends with run:finished`)
    const done = await report(runId)
    assert.equal(done.status, 'failed', `${exportName}: ${JSON.stringify(done)}`)
    assert.ok(done.error !== undefined, `${exportName} reports its error`)
    assert.ok(typeof done.error.hint === 'string' && done.error.hint.length > 0, `${exportName}: the error has a hint: ${JSON.stringify(done.error)}`)
    return done.error
  }

  const cases: Array<{ name: string, exportName: string, args?: unknown[], code: string, message?: RegExp, hint?: RegExp }> = [
    { name: 'a workflow that throws', exportName: 'throws', code: 'ERR_FUNCTION_THREW', message: /TypeError: the workflow gave up/, hint: /workflow/ },
    { name: 'a function that fails non-retryably', exportName: 'fnFails', code: 'ERR_FUNCTION_THREW', message: /RangeError: no, on purpose/, hint: /function/ },
    { name: 'a call to an unknown export of a function', exportName: 'unknownFn', code: 'ERR_INVALID_INPUT', message: /no export "nope".*double, refuse, spin, work/, hint: /exports/ },
    { name: 'a workflow that calls itself with the same arguments', exportName: 'cycle', args: [1], code: 'ERR_WORKFLOW_CYCLE', hint: /arguments/ },
    { name: 'a function passed to a remote call', exportName: 'passesFunction', code: 'ERR_UNSUPPORTED_VALUE' },
    { name: 'a Symbol passed to a remote call', exportName: 'passesSymbol', code: 'ERR_UNSUPPORTED_VALUE' },
    { name: 'undefined in a list passed to a remote call', exportName: 'passesUndefinedInList', code: 'ERR_UNSUPPORTED_VALUE' },
    { name: 'Date.now()', exportName: 'readsClock', code: 'ERR_NONDETERMINISM', message: /Date/ },
    { name: 'new Date()', exportName: 'newDate', code: 'ERR_NONDETERMINISM', message: /Date/ },
    { name: 'setTimeout', exportName: 'usesTimer', code: 'ERR_NONDETERMINISM', message: /setTimeout/ }
  ]
  for (const c of cases) {
    test(`${c.name} ends the run with ${c.code}`, async () => {
      const error = await failedRun(c.exportName, c.args)
      assert.equal(error.code, c.code, JSON.stringify(error))
      if (c.message !== undefined) assert.match(error.message, c.message)
      if (c.hint !== undefined) assert.match(error.hint ?? '', c.hint)
    })
  }

  test('an unknown export of the workflow is refused at start, with the exports in the hint', async () => {
    const res = await post({ workflow, export: 'nope', args: [] })
    const body = await res.json() as ErrorBody
    assert.equal(res.status, 422, JSON.stringify(body))
    assert.equal(body.error.code, 'ERR_EXPORT_NOT_FOUND')
    assert.match(body.error.message, /"nope"/)
    for (const name of ['fine', 'cycle', 'fan']) assert.ok(body.error.message.includes(name) || (body.error.hint ?? '').includes(name), `${name} is listed: ${JSON.stringify(body.error)}`)
  })

  test('an unknown workflow id is a 404 with a hint', async () => {
    const res = await post({ workflow: 'bafyreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', export: 'fine', args: [] })
    const body = await res.json() as ErrorBody
    assert.equal(res.status, 404, JSON.stringify(body))
    assert.ok((body.error.hint ?? '').length > 0, JSON.stringify(body.error))
  })

  test('arguments JSON cannot carry are refused at start', async () => {
    const res = await fetch(`${driver.apiUrl}/v1/runs`, { method: 'POST', headers: driver.authorized({ 'content-type': 'application/json' }), body: `{"workflow":"${workflow}","export":"fine","args":[NaN]}`, signal: AbortSignal.timeout(30_000) })
    const body = await res.json() as ErrorBody
    assert.equal(res.status, 400, JSON.stringify(body))
    assert.ok((body.error.hint ?? '').length > 0, JSON.stringify(body.error))
  })

  test('cancelling a run cancels its tasks on the workers', async () => {
    const count = (text: string, what: string): number => text.split(what).length - 1
    const cancelledBefore = new Map(peers.map(p => [p, count(p.stderr, '"task cancelled"')]))
    const runId = await start('long', [60_000])
    const stream = follow(runId)
    stream.catch(() => {}) // awaited below; a failure before then must not go unhandled
    const running = await waitFor('three tasks to be sent to peers', async () => {
      const tasks = (await report(runId)).tasks.filter(t => t.status === 'running')
      return tasks.length === 3 ? tasks : undefined
    }, 30_000, 100)
    const onPeers = new Map<TestPeer, number>()
    for (const task of running) {
      const peer = peers.find(p => p.peerId === task.peer)
      assert.ok(peer !== undefined, `task on a peer of the network: ${task.peer}`)
      onPeers.set(peer, (onPeers.get(peer) ?? 0) + 1)
    }
    assert.ok([...onPeers.keys()].some(p => p !== driver), 'a task runs on a worker, not the driver')
    await waitFor('every peer to start its tasks', () => [...onPeers].every(([peer, n]) => count(peer.stderr, '"task started"') >= Math.min(n, 1)), 30_000)
    const res = await driver.api<{ cancelled: boolean }>(`/v1/runs/${runId}/cancel`, { method: 'POST' })
    assert.equal(res.cancelled, true)
    const events = await stream
    const last = events.at(-1)
    assert.ok(last?.type === 'run:finished' && last.status === 'cancelled', JSON.stringify(last))
    const done = await report(runId)
    assert.equal(done.status, 'cancelled')
    assert.equal(done.error?.code, 'ERR_RUN_CANCELLED')
    assert.deepEqual(done.tasks.map(t => t.status), ['cancelled', 'cancelled', 'cancelled'])
    for (const [peer, n] of onPeers) {
      await waitFor(`${peer === driver ? 'the driver' : 'a worker'} to cancel its ${n} task(s)`, () => count(peer.stderr, '"task cancelled"') - cancelledBefore.get(peer)! >= n, 30_000)
    }
  })

  test('after all that, every peer serves and runs a good workflow', async () => {
    for (const peer of peers) assert.ok((await peer.api<{ peerId: string }>('/v1/status')).peerId.length > 0)
    const runId = await start('fine', [20])
    await follow(runId)
    const done = await report(runId)
    assert.equal(done.status, 'finished', JSON.stringify(done.error))
    assert.equal(done.result, 41)
  })
})
