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
import { after, before, describe, test } from 'node:test'
import { TestNetwork, runCli, waitFor } from '../helpers/peers.ts'
import { durableNetwork, taskExecutions } from '../helpers/durable.ts'
import type { RunReport } from '../../src/api/types.ts'
import type { TestPeer } from '../helpers/peers.ts'

/** Tasks per layer: 2 × 150 = 300 tasks of ~20 ms. */
const WIDTH = 150
const TASK_MS = 20
const EXPECTED = 8 * (WIDTH - 1) * WIDTH / 2

describe('a durable run whose child run loses its driver', { timeout: 240_000 }, () => {
  let net: TestNetwork
  let peers: TestPeer[]
  let workflow: string

  before(async () => {
    ({ net, peers, workflow } = await durableNetwork(5, 4))
  })
  after(async () => { await net?.close() })

  test('the driver of a parent and its child is killed mid-child: both finish on survivors with the right result', async (t) => {
    const driver = peers[0]
    const { runId } = await driver.api<{ runId: string }>('/v1/runs', { method: 'POST', body: JSON.stringify({ workflow, export: 'outer', args: [WIDTH, TASK_MS] }) })
    await waitFor('a part of the child\'s tasks to be done', async () => {
      let done = 0
      for (const [, who] of taskExecutions(peers)) done += who.length
      return done >= WIDTH / 2
    }, 60_000, 20)
    driver.child?.kill('SIGKILL')
    const survivors = peers.slice(1)
    const follow = await runCli(['run-status', runId, '--wait', '--json', '--data-dir', survivors[0].dataDir], { timeoutMs: 150_000 })
    assert.equal(follow.code, 0, follow.stderr)
    const report = JSON.parse(follow.stdout) as RunReport
    assert.equal(report.status, 'finished', JSON.stringify(report.error))
    assert.equal(report.result, EXPECTED + 1)
    const runs = [...taskExecutions(peers)]
    const again = runs.filter(([, done]) => done.filter(e => e.peer !== driver.peerId).length > 1)
    t.diagnostic(`tasks executed: ${runs.length} distinct; ${runs.filter(([, d]) => d.length > 1).length} more than once`)
    assert.deepEqual(again.map(([task, done]) => ({ task, done })), [], 'no task ran twice on the survivors')
  })
})
