/**
 * Durable child runs on real peers (setup as runs-durable.test.ts): a run whose work is a child run
 * of 300 tasks; the peer driving both is killed mid-child. The child's own home set finishes the
 * child, the parent's home set finishes the parent with the child's result, and no task runs twice
 * on the survivors.
 *
 * (from runs-durable.test.ts:) Durable runs on real peers: the driver of a run of 300 tasks (two dependent layers) is killed
 * with SIGKILL mid-run; another peer of the run's home set takes it over, replays the code from
 * the memo it gathered, and finishes it with the right result, which a client following the run
 * on a surviving peer receives. The peers' logs of the tasks they executed give how many ran again.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { createManifest, encodeManifest } from '../../src/functions/index.ts'
import { TestNetwork, runCli, waitFor } from '../helpers/peers.ts'
import type { RunReport } from '../../src/api/types.ts'
import type { TestPeer } from '../helpers/peers.ts'

const FNS = fileURLToPath(new URL('../fixtures/runs/bad-fns.ts', import.meta.url))
const FLOW = fileURLToPath(new URL('../fixtures/runs/durable-flow.template.js', import.meta.url))
/** Tasks per layer: 2 × 150 = 300 tasks of ~20 ms. */
const WIDTH = 150
const TASK_MS = 20
const EXPECTED = 8 * (WIDTH - 1) * WIDTH / 2

/** Task ids each peer's log says it executed ("task done"), with when, over the whole test. */
function executions (peers: TestPeer[]): Map<string, Array<{ peer: string, atMs: number }>> {
  const byTask = new Map<string, Array<{ peer: string, atMs: number }>>()
  for (const peer of peers) {
    for (const line of (peer.stdout + peer.stderr).split('\n')) {
      if (!line.includes('"msg":"task done"')) continue
      const { task, t } = JSON.parse(line) as { task: string, t: string }
      byTask.set(task, [...byTask.get(task) ?? [], { peer: peer.peerId, atMs: Date.parse(t) }])
    }
  }
  return byTask
}

describe('a durable run whose child run loses its driver', { timeout: 240_000 }, () => {
  let net: TestNetwork
  let peers: TestPeer[]
  let workflow: string

  before(async () => {
    net = await TestNetwork.create()
    const first = await net.addPeer(['--slots', '4'])
    const rest = await Promise.all([1, 2, 3, 4].map(async () => await net.addPeer(['--bootstrap', first.tcpAddr, '--slots', '4'])))
    peers = [first, ...rest]
    await waitFor('all peers to see each other', async () => {
      for (const p of peers) if ((await p.peers()).filter(x => x.state === 'alive').length < peers.length - 1) return false
      return true
    }, 60_000, 200)
    const deployed = await runCli(['deploy', FNS, '--replicas', String(peers.length), '--json', '--data-dir', first.dataDir])
    assert.equal(deployed.code, 0, deployed.stderr)
    const fnId = (JSON.parse(deployed.stdout) as { cid: string }).cid
    const code = new TextEncoder().encode((await readFile(FLOW, 'utf8')).replaceAll('FNS', fnId))
    const manifest = encodeManifest(await createManifest({ name: 'durable-flow', kind: 'workflow', code, exports: ['layers', 'nap', 'outer'] }))
    const res = await fetch(`${first.apiUrl}/v1/functions`, { method: 'POST', headers: first.authorized(), body: dagCbor.encode({ manifest, code, replicas: peers.length }) as BodyInit, signal: AbortSignal.timeout(60_000) })
    assert.equal(res.status, 200, await res.clone().text())
    workflow = (await res.json() as { cid: string }).cid
  })
  after(async () => { await net?.close() })

  test('the driver of a parent and its child is killed mid-child: both finish on survivors with the right result', async (t) => {
    const driver = peers[0]
    const { runId } = await driver.api<{ runId: string }>('/v1/runs', { method: 'POST', body: JSON.stringify({ workflow, export: 'outer', args: [WIDTH, TASK_MS] }) })
    await waitFor('a part of the child\'s tasks to be done', async () => {
      let done = 0
      for (const [, who] of executions(peers)) done += who.length
      return done >= WIDTH / 2
    }, 60_000, 20)
    driver.child?.kill('SIGKILL')
    const survivors = peers.slice(1)
    const follow = await runCli(['run-status', runId, '--wait', '--json', '--data-dir', survivors[0].dataDir], { timeoutMs: 150_000 })
    assert.equal(follow.code, 0, follow.stderr)
    const report = JSON.parse(follow.stdout) as RunReport
    assert.equal(report.status, 'finished', JSON.stringify(report.error))
    assert.equal(report.result, EXPECTED + 1)
    const runs = [...executions(peers)]
    const again = runs.filter(([, done]) => done.filter(e => e.peer !== driver.peerId).length > 1)
    t.diagnostic(`tasks executed: ${runs.length} distinct; ${runs.filter(([, d]) => d.length > 1).length} more than once`)
    assert.deepEqual(again.map(([task, done]) => ({ task, done })), [], 'no task ran twice on the survivors')
  })
})
