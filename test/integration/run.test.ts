/**
 * Workflow runs on real peers, through the CLI: `rhizome run` bundles the seed example, deploys
 * its function module and the workflow, and the peer drives the run. Three peers with one slot
 * each, and functions that take a moment: B, C and D run at once, on three different peers.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { TestNetwork, runCli, waitFor } from '../helpers/peers.ts'
import type { TestPeer } from '../helpers/peers.ts'
import type { RunReport, RunSummary } from '../../src/api/types.ts'

/** Busy work inside the sandbox (deterministic: no clock), long enough that three calls overlap. */
const SPIN = 'function spin (n) { let s = 0; for (let i = 0; i < n * 200000; i++) s = (s + i) % 1000003; return s }'

const FNS = `${SPIN}
export async function B (x) { spin(300); return x * 2 }
export async function C (x) { spin(300); return x + 1 }
export async function D (x) { spin(300); return x - 3 }
export async function Step (x) { spin(200); return x + 1 }
`

const FLOW = `import { workflow } from '@rhizome-net/rhizome'
import { B, C, D, Step } from './fns.ts'

export const A = workflow(async (x: number) => {
  const [b, c, d] = await Promise.all([B(x), C(x), D(x)])
  return b + c - d
})

export const Long = workflow(async (n: number) => {
  let x = 0
  for (let i = 0; i < n; i++) x = await Step(x)
  return x
})
`

describe('workflow runs on real peers', { timeout: 300_000 }, () => {
  let net: TestNetwork
  let peers: TestPeer[]
  let dir: string
  let flow: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rhizome-run-src-'))
    await writeFile(join(dir, 'fns.ts'), FNS)
    flow = join(dir, 'flow.ts')
    await writeFile(flow, FLOW)
    net = await TestNetwork.create()
    const first = await net.addPeer(['--slots', '1'])
    const rest = await Promise.all([1, 2].map(async () => await net.addPeer(['--slots', '1', '--bootstrap', first.tcpAddr])))
    peers = [first, ...rest]
    await waitFor('all peers to see each other', async () => {
      for (const p of peers) if ((await p.peers()).filter(x => x.state === 'alive').length < peers.length - 1) return false
      return true
    }, 60_000, 200)
  })
  after(async () => {
    await net?.close()
    await rm(dir, { recursive: true, force: true })
  })

  test('the seed example: 14, with B, C and D on three different peers at the same time', async () => {
    const r = await runCli(['run', flow, 'A', '5', '--json', '--data-dir', peers[0].dataDir], { timeoutMs: 120_000 })
    assert.equal(r.code, 0, r.stderr)
    const report = JSON.parse(r.stdout) as RunReport
    assert.equal(report.status, 'finished')
    assert.equal(report.result, 14)
    assert.equal(report.driver, peers[0].peerId)
    const tasks = report.tasks.filter(t => ['B', 'C', 'D'].includes(t.export))
    assert.deepEqual(tasks.map(t => t.export).sort(), ['B', 'C', 'D'])
    assert.ok(tasks.every(t => t.status === 'accepted'), JSON.stringify(tasks))
    const ran = new Set(tasks.map(t => t.peer))
    assert.equal(ran.size, 3, `B, C and D ran on ${[...ran].join(', ')}`)
    for (const peer of ran) assert.ok(peers.some(p => p.peerId === peer), `${String(peer)} is one of the test's peers`)
    // Overlapping execution: each started before any of them finished.
    const lastStart = Math.max(...tasks.map(t => t.startedMs ?? Infinity))
    const firstFinish = Math.min(...tasks.map(t => t.finishedMs ?? -Infinity))
    assert.ok(lastStart < firstFinish, `intervals overlap: ${JSON.stringify(tasks.map(t => [t.export, t.startedMs, t.finishedMs]))}`)
    assert.ok(report.criticalPath !== undefined && report.criticalPath.taskIds.length >= 1)
  })

  test('as text: progress lines, the result, the table; the function module is already deployed the second time', async () => {
    const r = await runCli(['run', flow, 'A', '5', '--data-dir', peers[1].dataDir], { timeoutMs: 120_000 })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /functions .*fns\.ts .* \(already deployed\)/)
    assert.match(r.stdout, /^started {2}B on /m)
    assert.match(r.stdout, /^done {5}D on /m)
    assert.match(r.stdout, /^14$/m)
    assert.match(r.stdout, /critical path {2}[BCD]/)
    assert.match(r.stdout, /^ {2}task +peer +queued +started +finished +status$/m)
  })

  test('--detach, then run-status --wait, runs and cancel', async () => {
    const started = await runCli(['run', flow, 'A', '7', '--detach', '--json', '--data-dir', peers[0].dataDir], { timeoutMs: 120_000 })
    assert.equal(started.code, 0, started.stderr)
    const { runId } = JSON.parse(started.stdout) as { runId: string }
    const waited = await runCli(['run-status', runId, '--wait', '--json', '--data-dir', peers[0].dataDir], { timeoutMs: 120_000 })
    assert.equal(waited.code, 0, waited.stderr)
    const report = JSON.parse(waited.stdout) as RunReport
    assert.equal(report.status, 'finished')
    assert.equal(report.result, 7 * 2 + 7 + 1 - (7 - 3))
    const listed = await runCli(['runs', '--json', '--data-dir', peers[0].dataDir])
    assert.equal(listed.code, 0, listed.stderr)
    assert.ok((JSON.parse(listed.stdout) as RunSummary[]).some(s => s.runId === runId && s.status === 'finished'))

    const long = await runCli(['run', flow, 'Long', '50', '--detach', '--json', '--data-dir', peers[0].dataDir], { timeoutMs: 120_000 })
    assert.equal(long.code, 0, long.stderr)
    const longId = (JSON.parse(long.stdout) as { runId: string }).runId
    await waitFor('the long run to have a task', async () => {
      const r = await runCli(['run-status', longId, '--json', '--data-dir', peers[0].dataDir])
      return r.code === 0 && (JSON.parse(r.stdout) as RunReport).tasks.length > 0
    }, 60_000, 200)
    const cancelled = await runCli(['cancel', longId, '--data-dir', peers[0].dataDir])
    assert.equal(cancelled.code, 0, cancelled.stderr)
    const ended = await runCli(['run-status', longId, '--wait', '--json', '--data-dir', peers[0].dataDir], { timeoutMs: 60_000 })
    assert.equal(ended.code, 1)
    assert.equal((JSON.parse(ended.stdout) as RunReport).status, 'cancelled')
  })
})
