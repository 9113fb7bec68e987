/**
 * Workflow runs on real peers, through the HTTP API: a workflow bundle (as `rhizome run` writes
 * it) is deployed, started on one peer, and its tasks run on the others. The seed example
 * gives 14 with B, C and D on three peers at overlapping times; runs report their tasks, stream
 * their progress, call child workflows, refuse a cycle, and end with the named error of a task
 * that failed.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { createManifest, encodeManifest } from '../../src/functions/index.ts'
import { TestNetwork, runCli, runEvents, waitFor } from '../helpers/peers.ts'
import type { ProgressEvent } from '../../src/api/events.ts'
import type { RunReport } from '../../src/api/types.ts'
import type { TestPeer } from '../helpers/peers.ts'

const FNS = fileURLToPath(new URL('../fixtures/runs/fns.ts', import.meta.url))
const FLOW = fileURLToPath(new URL('../fixtures/runs/flow.template.js', import.meta.url))

describe('workflow runs on real peers', { timeout: 240_000 }, () => {
  let net: TestNetwork
  let peers: TestPeer[]
  let driver: TestPeer
  let workflow: string

  before(async () => {
    net = await TestNetwork.create()
    const first = await net.addPeer(['--slots', '1'])
    const rest = await Promise.all([1, 2].map(async () => await net.addPeer(['--bootstrap', first.tcpAddr, '--slots', '1'])))
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
    const manifest = encodeManifest(await createManifest({ name: 'flow', kind: 'js', code, exports: ['A', 'fanOut', 'chain', 'parent', 'failing', 'selfCycle'] }))
    const res = await fetch(`${driver.apiUrl}/v1/functions`, { method: 'POST', headers: driver.authorized(), body: dagCbor.encode({ manifest, code, replicas: 1 }) as BodyInit, signal: AbortSignal.timeout(60_000) })
    assert.equal(res.status, 200, await res.clone().text())
    workflow = (await res.json() as { cid: string }).cid
  })
  after(async () => { await net?.close() })

  async function start (exportName: string, args: unknown[]): Promise<string> {
    const res = await driver.api<{ runId: string }>('/v1/runs', { method: 'POST', body: JSON.stringify({ workflow, export: exportName, args }) })
    return res.runId
  }

  async function follow (runId: string): Promise<ProgressEvent[]> {
    return await runEvents(driver, runId, 120_000)
  }

  async function report (runId: string): Promise<RunReport> {
    return await driver.api<RunReport>(`/v1/runs/${runId}`)
  }

  test('the seed example: 14, with B, C and D on three different peers at overlapping times', async () => {
    const runId = await start('A', [5, 300])
    const events = await follow(runId)
    assert.equal(events.at(-1)?.type, 'run:finished')
    const done = await report(runId)
    assert.equal(done.status, 'finished', JSON.stringify(done.error))
    assert.equal(done.result, 14)
    assert.equal(done.tasks.length, 3)
    const byExport = new Map(done.tasks.map(t => [t.export, t]))
    assert.deepEqual([...byExport.keys()].sort(), ['B', 'C', 'D'])
    assert.equal(new Set(done.tasks.map(t => t.peer)).size, 3, `tasks ran on ${done.tasks.map(t => `${t.export}@${t.peer}`).join(', ')}`)
    for (const a of done.tasks) {
      for (const b of done.tasks) {
        if (a === b) continue
        assert.ok(a.startedMs! < b.finishedMs! && b.startedMs! < a.finishedMs!, `${a.export} [${a.startedMs}, ${a.finishedMs}] and ${b.export} [${b.startedMs}, ${b.finishedMs}] overlap`)
      }
    }
    assert.ok(done.criticalPath !== undefined && done.criticalPath.taskIds.length === 1)
    const types = new Set(events.map(e => e.type))
    for (const type of ['run:started', 'run:task:scheduled', 'run:task:started', 'run:task:done', 'run:finished']) assert.ok(types.has(type as ProgressEvent['type']), type)
  })

  test('a chain: each step depends on the last, and the critical path is the whole chain', async () => {
    const runId = await start('chain', [6])
    await follow(runId)
    const done = await report(runId)
    assert.equal(done.result, 6)
    assert.equal(done.tasks.length, 6)
    assert.equal(done.criticalPath?.taskIds.length, 6)
  })

  test('a fan-out of 40 tasks spreads over the peers and sums right', async () => {
    const runId = await start('fanOut', [40])
    await follow(runId)
    const done = await report(runId)
    assert.equal(done.result, 2 * (39 * 40) / 2)
    assert.equal(done.tasks.length, 40)
    assert.ok(new Set(done.tasks.map(t => t.peer)).size >= 2, 'tasks ran on more than one peer')
  })

  test('a workflow that calls another runs it as a child run', async () => {
    const runId = await start('parent', [5])
    await follow(runId)
    const done = await report(runId)
    assert.equal(done.status, 'finished', JSON.stringify(done.error))
    assert.equal(done.result, 140)
    const runs = (await driver.api<{ runs: Array<{ runId: string, export: string }> }>('/v1/runs')).runs
    assert.ok(runs.some(r => r.export === 'A' && r.runId !== runId), 'the child run is listed')
  })

  test('a task that fails ends the run with its named error; a self-call is refused as a cycle', async () => {
    const failing = await start('failing', [])
    await follow(failing)
    const failed = await report(failing)
    assert.equal(failed.status, 'failed')
    assert.match(failed.error?.message ?? '', /on purpose/)
    const cycle = await start('selfCycle', [1])
    await follow(cycle)
    const refused = await report(cycle)
    assert.equal(refused.status, 'failed')
    assert.equal(refused.error?.code, 'ERR_WORKFLOW_CYCLE', JSON.stringify(refused.error))
  })

  test('every peer keeps serving after the failed runs', async () => {
    for (const peer of peers) assert.ok((await peer.api<{ peerId: string }>('/v1/status')).peerId.length > 0)
  })
})
