/**
 * Shared setup of the durable-run tests on real peers: a network of peers that all see each other,
 * the task functions deployed on every peer, and the workflow `test/fixtures/runs/durable-flow`
 * (`layers`, `nap`, `outer`) deployed against them; and the peers' own record of the tasks they
 * executed ("task done" log lines), which is how the tests count re-executions.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import * as dagCbor from '@ipld/dag-cbor'
import { createManifest, encodeManifest } from '../../src/functions/index.ts'
import { TestNetwork, runCli, waitFor } from './peers.ts'
import type { TestPeer } from './peers.ts'

const FNS = fileURLToPath(new URL('../fixtures/runs/bad-fns.ts', import.meta.url))
const FLOW = fileURLToPath(new URL('../fixtures/runs/durable-flow.template.js', import.meta.url))

export interface DurableNetwork {
  net: TestNetwork
  peers: TestPeer[]
  /** CID of the deployed durable-flow workflow. */
  workflow: string
}

/** `count` peers with `slots` each, every one seeing the others alive, with durable-flow deployed. */
export async function durableNetwork (count: number, slots: number): Promise<DurableNetwork> {
  const net = await TestNetwork.create()
  const first = await net.addPeer(['--slots', String(slots)])
  const rest = await Promise.all(Array.from({ length: count - 1 }, async () => await net.addPeer(['--bootstrap', first.tcpAddr, '--slots', String(slots)])))
  const peers = [first, ...rest]
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
  return { net, peers, workflow: (await res.json() as { cid: string }).cid }
}

/** Task ids each peer's log says it executed ("task done"), with where and when, over the whole test. */
export function taskExecutions (peers: TestPeer[]): Map<string, Array<{ peer: string, atMs: number }>> {
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
