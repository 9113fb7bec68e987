/**
 * Durable runs on real peers: the driver of a run of 300 tasks (two dependent layers) is killed
 * with SIGKILL mid-run; another peer of the run's home set takes it over, replays the code from
 * the memo it gathered, and finishes it with the right result, which a client following the run
 * on a surviving peer receives. The peers' logs of the tasks they executed give how many ran again.
 * On a second network, the peer driving a run and its child run is killed mid-child: the child's
 * own home set finishes the child, the parent's finishes the parent with the child's result.
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

describe('a durable run whose driver is killed', { timeout: 240_000 }, () => {
  let net: TestNetwork
  let peers: TestPeer[]
  let workflow: string

  before(async () => {
    ({ net, peers, workflow } = await durableNetwork(5, 4))
  })
  after(async () => { await net?.close() })

  /** The report of `runId` from the first survivor that has it finished. */
  async function finishedOn (runId: string, survivors: TestPeer[], timeoutMs: number): Promise<{ peer: TestPeer, report: RunReport }> {
    let found: { peer: TestPeer, report: RunReport } | undefined
    await waitFor(`run ${runId} to finish on a survivor`, async () => {
      for (const peer of survivors) {
        const res = await fetch(`${peer.apiUrl}/v1/runs/${runId}`, { headers: peer.authorized() })
        if (res.status !== 200) continue
        const report = await res.json() as RunReport
        if (report.status === 'running' || report.status === 'created') continue
        found = { peer, report }
        return true
      }
      return false
    }, timeoutMs, 250)
    return found!
  }

  test(`${2 * WIDTH} tasks: the driver is killed mid-run; another home-set peer finishes the run, and the run completes with the right result`, async (t) => {
    const driver = peers[0]
    const { runId } = await driver.api<{ runId: string }>('/v1/runs', { method: 'POST', body: JSON.stringify({ workflow, export: 'layers', args: [WIDTH, TASK_MS] }) })
    // Mid-run: a good part of the first layer is done.
    await waitFor('a third of the tasks to be done', async () => {
      let done = 0
      for (const [, who] of taskExecutions(peers)) done += who.length
      return done >= WIDTH / 2
    }, 60_000, 20)
    driver.child?.kill('SIGKILL')
    const survivors = peers.slice(1)
    // A client asks any surviving peer and follows the run to its end, across the takeover.
    const follow = await Promise.all(survivors.map(async peer => await runCli(['run-status', runId, '--wait', '--json', '--data-dir', peer.dataDir], { timeoutMs: 120_000 })))
    // Any peer: those outside the home set find it and follow it too.
    assert.ok(follow.every(r => r.code === 0), `every survivor followed the run to its end: ${follow.map(r => `${r.code} ${r.stdout.slice(-300)} ${r.stderr.slice(0, 300)}`).join(" | ")}`)
    const { peer: newDriver, report } = await finishedOn(runId, survivors, 120_000)
    assert.equal(report.status, 'finished', JSON.stringify(report.error))
    assert.equal(report.result, EXPECTED)
    assert.notEqual(report.driver, driver.peerId, `the run was finished by another peer (${newDriver.peerId})`)
    // A task runs again only if the dead driver had run it itself (its result may have died with
    // it before it was durable). Every other task — finished on a survivor before or after the
    // kill, or in flight there — is answered by that survivor: the new driver locates the tasks
    // it replays and asks their worker again, which joins or answers from its stored result.
    const runs = [...taskExecutions(peers)]
    const again = runs.filter(([, done]) => done.length > 1)
    const unexplained = again.filter(([, done]) => done.filter(e => e.peer !== driver.peerId).length > 1)
    t.diagnostic(`tasks executed: ${runs.length} distinct; ${again.length} more than once, all first run by the dead driver`)
    assert.deepEqual(unexplained.map(([task, done]) => ({ task, done })), [], 'no task ran twice on the survivors')
    // The wrap-around pair of the second layer (149 + 0) asks for the same task as pair 74: one id.
    assert.equal(runs.length, 2 * WIDTH - 1, 'every distinct task of the run was executed')
    // The result of a finished run never changes and any survivor of its home set can give it.
    for (const peer of survivors) {
      const res = await fetch(`${peer.apiUrl}/v1/runs/${runId}`, { headers: peer.authorized() })
      if (res.status !== 200) continue
      const again = await res.json() as RunReport
      if (again.status !== 'running') assert.equal(again.result, EXPECTED)
    }
  })

  test('a home-set peer gone for good is replaced, the newcomer copies the memo, and the run then survives its driver', async () => {
    const alive = peers.filter(p => p.child?.exitCode === null && p.child?.signalCode === null)
    const driver = alive[0]
    const { runId } = await driver.api<{ runId: string }>('/v1/runs', { method: 'POST', body: JSON.stringify({ workflow, export: 'nap', args: [15_000] }) })
    // A peer keeps the run if it names itself in the run's home set (any peer answers for a run).
    const knows = async (peer: TestPeer): Promise<boolean> => {
      const res = await fetch(`${peer.apiUrl}/v1/runs/${runId}`, { headers: peer.authorized() })
      return res.status === 200 && ((await res.json()) as RunReport).homeSet?.includes(peer.peerId) === true
    }
    await waitFor('the home set to keep the run', async () => (await Promise.all(alive.map(knows))).filter(Boolean).length >= 3, 10_000, 100)
    const home = (await Promise.all(alive.map(async p => (await knows(p)) ? p : undefined))).filter((p): p is TestPeer => p !== undefined)
    const outsider = alive.find(p => !home.includes(p))
    assert.ok(outsider !== undefined, `a peer outside the home set (${home.length} of ${alive.length} keep the run)`)
    const member = home.find(p => p !== driver)!
    member.child?.kill('SIGKILL')
    // Membership calls it gone after its silence; the driver then replaces it.
    await waitFor('the home set to be repaired onto the outsider', async () => await knows(outsider), 30_000, 250)
    driver.child?.kill('SIGKILL')
    const survivors = home.filter(p => p !== driver && p !== member).concat(outsider)
    const { report } = await finishedOn(runId, survivors, 60_000)
    assert.equal(report.status, 'finished', JSON.stringify(report.error))
    assert.equal(report.result, 6)
  })
})

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
