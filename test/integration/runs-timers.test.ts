/**
 * Durable timers and signals on a real peer: a workflow that sleeps between two calls finishes
 * and its events show the timer; a workflow waiting for a signal finishes with the value sent by
 * `rhizome signal`; bad signals are refused by name (the CLI exits 2, the API answers 4xx).
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { createManifest, encodeManifest } from '../../src/functions/index.ts'
import { SIGNAL_VALUE_BYTES_MAX } from '../../src/model/limits.ts'
import { TestNetwork, followRunEvents, runCli, runEvents } from '../helpers/peers.ts'
import type { ProgressEvent } from '../../src/api/events.ts'
import type { RunReport } from '../../src/api/types.ts'
import type { TestPeer } from '../helpers/peers.ts'

const FNS = fileURLToPath(new URL('../fixtures/runs/fns.ts', import.meta.url))
const FLOW = fileURLToPath(new URL('../fixtures/runs/timers.template.js', import.meta.url))

describe('timers and signals on a real peer', { timeout: 180_000 }, () => {
  let net: TestNetwork
  let peer: TestPeer
  let workflow: string

  before(async () => {
    net = await TestNetwork.create()
    peer = await net.addPeer(['--slots', '2'])
    const deployed = await runCli(['deploy', FNS, '--replicas', '1', '--json', '--data-dir', peer.dataDir])
    assert.equal(deployed.code, 0, deployed.stderr)
    const fnId = (JSON.parse(deployed.stdout) as { cid: string }).cid
    const code = new TextEncoder().encode((await readFile(FLOW, 'utf8')).replaceAll('FNS', fnId))
    const manifest = encodeManifest(await createManifest({ name: 'timers', kind: 'js', code, exports: ['napping', 'approval', 'countdown'] }))
    const res = await fetch(`${peer.apiUrl}/v1/functions`, { method: 'POST', headers: peer.authorized(), body: dagCbor.encode({ manifest, code, replicas: 1 }) as BodyInit, signal: AbortSignal.timeout(60_000) })
    assert.equal(res.status, 200, await res.clone().text())
    workflow = (await res.json() as { cid: string }).cid
  })
  after(async () => { await net?.close() })

  async function start (exportName: string, args: unknown[]): Promise<string> {
    return (await peer.api<{ runId: string }>('/v1/runs', { method: 'POST', body: JSON.stringify({ workflow, export: exportName, args }) })).runId
  }

  async function signalApi (runId: string, body: unknown): Promise<{ status: number, body: { error?: { code: string, hint?: string } } }> {
    const res = await fetch(`${peer.apiUrl}/v1/runs/${runId}/signals`, { method: 'POST', headers: peer.authorized(), body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) })
    return { status: res.status, body: await res.json() as { error?: { code: string, hint?: string } } }
  }

  test('a workflow that sleeps 1500 ms between two calls finishes; its events show the timer, fired at or after its deadline', async () => {
    const runId = await start('napping', [5, 1500])
    const events = await runEvents(peer, runId, 60_000)
    const report = await peer.api<RunReport>(`/v1/runs/${runId}`)
    assert.equal(report.status, 'finished', JSON.stringify(report.error))
    assert.equal(report.result, 11)
    const started = events.filter(e => e.type === 'run:timer:started')
    const fired = events.filter(e => e.type === 'run:timer:fired')
    assert.equal(started.length, 1)
    assert.equal(fired.length, 1)
    const [s] = started
    const [f] = fired
    assert.ok(s.type === 'run:timer:started' && f.type === 'run:timer:fired')
    assert.equal(s.timerId, 'sleep:0')
    assert.ok(f.atMs >= s.wakeAtMs, 'a timer never fires before its deadline')
    const order = events.map(e => e.type).filter(t => t === 'run:task:done' || t.startsWith('run:timer'))
    assert.deepEqual(order, ['run:task:done', 'run:timer:started', 'run:timer:fired', 'run:task:done'])
  })

  test('a workflow waiting for a signal finishes with the value sent by `rhizome signal`; bad JSON exits 2', async () => {
    const runId = await start('approval', [4])
    // Follow from now: the run's history arrives first (so the subscription is in place), then live events.
    const events: ProgressEvent[] = []
    let subscribed!: () => void
    const first = new Promise<void>(resolve => { subscribed = resolve })
    const following = followRunEvents(peer, runId, 60_000, (event) => { events.push(event); subscribed() })
    await first
    const bad = await runCli(['signal', runId, 'approve', '{not json', '--data-dir', peer.dataDir])
    assert.equal(bad.code, 2, bad.stderr)
    assert.match(bad.stderr, /not JSON/)
    const badName = await runCli(['signal', runId, 'app rove', 'true', '--data-dir', peer.dataDir])
    assert.equal(badName.code, 2, badName.stderr)
    const tooBig = await signalApi(runId, { name: 'approve', value: 'x'.repeat(SIGNAL_VALUE_BYTES_MAX + 1) })
    assert.equal(tooBig.status, 413)
    assert.equal(tooBig.body.error?.code, 'ERR_TOO_LARGE')
    const noName = await signalApi(runId, { name: 'a:b', value: 1 })
    assert.equal(noName.status, 400)
    assert.equal(noName.body.error?.code, 'ERR_INVALID_INPUT')
    assert.equal((await peer.api<RunReport>(`/v1/runs/${runId}`)).status, 'running', 'refused signals leave the run waiting')
    const sent = await runCli(['signal', runId, 'approve', '{"approved":true,"by":"ann"}', '--data-dir', peer.dataDir])
    assert.equal(sent.code, 0, sent.stderr)
    await following
    const report = await peer.api<RunReport>(`/v1/runs/${runId}`)
    assert.equal(report.status, 'finished', JSON.stringify(report.error))
    assert.deepEqual(report.result, { decision: { approved: true, by: 'ann' }, b: 8 })
    assert.deepEqual(events.filter(e => e.type === 'run:signal:received').map(e => e.type === 'run:signal:received' && e.name), ['approve'])
    const late = await runCli(['signal', runId, 'approve', 'true', '--data-dir', peer.dataDir])
    assert.equal(late.code, 1, late.stderr)
    assert.match(late.stderr, /not running/)
  })

  test('continueAsNew: each run ends continued and names the next; `rhizome run-status --wait` follows the chain to the result', async () => {
    const runId = await start('countdown', [3, 0])
    const waited = await runCli(['run-status', runId, '--wait', '--json', '--data-dir', peer.dataDir], { timeoutMs: 60_000 })
    assert.equal(waited.code, 0, waited.stderr + waited.stdout.slice(0, 2000))
    const last = JSON.parse(waited.stdout) as RunReport
    assert.equal(last.status, 'finished')
    assert.equal(last.result, 6 + 4 + 2 + 0)
    assert.notEqual(last.runId, runId)
    // Walk the chain from the first run: three runs continued, each naming the next.
    const chain: RunReport[] = []
    for (let id: string | undefined = runId; id !== undefined && chain.length < 10;) {
      const report: RunReport = await peer.api<RunReport>(`/v1/runs/${id}`)
      chain.push(report)
      id = report.continuedAs
    }
    assert.deepEqual(chain.map(r => r.status), ['continued', 'continued', 'continued', 'finished'])
    assert.equal(chain.at(-1)?.runId, last.runId)
    assert.deepEqual(chain.map(r => r.tasks.length), [1, 1, 1, 1], 'each run has a history of its own')
  })
})
