/**
 * `rhizome check` on the seed example written sequentially (B, C, D awaited one after another
 * though none uses another's result) reports the lost parallelism with the Promise.all rewrite;
 * `rhizome run --auto-parallel` runs the rewrite on 3 real peers. Both runs give the same result
 * from the same three calls; the rewrite's critical path is one task instead of three, and its
 * run time is shown next to the sequential one (printed, not asserted: timings are not tests).
 */
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { TestNetwork, runCli, waitFor } from '../helpers/peers.ts'
import type { RunReport } from '../../src/api/types.ts'
import type { TestPeer } from '../helpers/peers.ts'

const FLOW = fileURLToPath(new URL('../fixtures/auto-parallel/flow.ts', import.meta.url))
/** Each task burns about this long: long enough that three at once on three peers show. */
const TASK_MS = 300

describe('rhizome check --fix and run --auto-parallel on the sequential seed example', { timeout: 180_000 }, () => {
  let net: TestNetwork
  let peers: TestPeer[]

  before(async () => {
    net = await TestNetwork.create()
    const first = await net.addPeer(['--slots', '1'])
    const rest = await Promise.all([1, 2].map(async () => await net.addPeer(['--bootstrap', first.tcpAddr, '--slots', '1'])))
    peers = [first, ...rest]
    await waitFor('the peers to meet', async () => {
      for (const p of peers) if ((await p.peers()).filter(x => x.state === 'alive').length < 2) return false
      return true
    }, 60_000, 200)
  })
  after(async () => { await net?.close() })

  test('check reports the three sequential awaits with the Promise.all rewrite', async () => {
    const r = await runCli(['check', FLOW, '--json'], { timeoutMs: 60_000 })
    assert.equal(r.code, 1, r.stderr)
    const { findings } = JSON.parse(r.stdout) as { findings: Array<{ kind: string, rule: string, start: { line: number }, fix?: { description: string }, saving?: { hops: number } }> }
    assert.equal(findings.length, 1, r.stdout)
    assert.equal(findings[0].kind, 'lost-parallelism')
    assert.equal(findings[0].rule, 'sequential-awaits')
    assert.equal(findings[0].start.line, 8)
    assert.match(findings[0].fix?.description ?? '', /Promise\.all/)
    assert.equal(findings[0].saving?.hops, 2)
  })

  test('run --auto-parallel: the same result from the same tasks, one task on the critical path instead of three', async () => {
    // A different `ms` per run (it changes no value) gives different task ids: the second run
    // cannot be answered from the first one's stored results.
    const runOnce = async (ms: number, extra: string[]): Promise<RunReport> => {
      const r = await runCli(['run', FLOW, 'A', '5', String(ms), ...extra, '--json', '--data-dir', peers[0].dataDir], { timeoutMs: 120_000 })
      assert.equal(r.code, 0, r.stderr)
      return JSON.parse(r.stdout) as RunReport
    }
    // Warm: every peer loads the functions once (a first call fetches and compiles them).
    await runOnce(1, ['--auto-parallel'])
    const sequential = await runOnce(TASK_MS, [])
    const parallel = await runOnce(TASK_MS + 1, ['--auto-parallel'])
    assert.equal(sequential.result, 14)
    assert.equal(parallel.result, 14)
    const taskSet = (r: RunReport): string[] => r.tasks.map(t => `${t.fn}:${t.export}`).sort()
    assert.deepEqual(taskSet(parallel), taskSet(sequential), 'the same three calls')
    assert.equal(sequential.criticalPath?.taskIds.length, 3, 'sequentially each call waits for the one before')
    assert.equal(parallel.criticalPath?.taskIds.length, 1, 'rewritten, no call waits for another')
    const took = (r: RunReport): number => (r.finishedMs ?? r.startedMs) - r.startedMs
    console.log(`# sequential: ${took(sequential)} ms on ${new Set(sequential.tasks.map(t => t.peer)).size} peers; --auto-parallel: ${took(parallel)} ms on ${new Set(parallel.tasks.map(t => t.peer)).size} peers (${(took(parallel) / took(sequential)).toFixed(2)} of the time)`)
  })
})
