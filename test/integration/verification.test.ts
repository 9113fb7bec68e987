/**
 * Verified results on real peers: three honest peers and a lying peer (test/helpers/lying-peer-main.ts:
 * a real libp2p peer that runs tasks and answers a seeded fraction of them with a wrong value
 * under a valid signature). Each run is `twoStage(n)`: n tasks B(i), then n tasks C(b) on their
 * results, so the right answer is n² and a wrong first-stage result that was used would show in it.
 *
 *  - replicas 3, quorum 2, a liar that always lies: the 100-task run's result is right, the liar is
 *    proven to lie (banned in the driver's reputation), and a second run gives it no task at all;
 *  - replicas 1, spot checks at 0.2: wrong results are accepted at first, a spot check catches
 *    the liar within the run, every result it gave is checked again, each wrong one is replaced
 *    (the report lists them) and the code replays on the right values: the result is right;
 *  - a liar that lies about 10% of its tasks is caught and excluded as well.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import * as dagCbor from '@ipld/dag-cbor'
import { after, before, describe, test } from 'node:test'
import { createManifest, encodeManifest } from '../../src/functions/manifest.ts'
import { TestNetwork, runCli, runEvents, waitFor } from '../helpers/peers.ts'
import { startLyingPeer } from '../helpers/lying-peer.ts'
import type { RunReport, ReputationView, TaskAttestations } from '../../src/api/types.ts'
import type { TestPeer } from '../helpers/peers.ts'
import type { LyingPeer } from '../helpers/lying-peer.ts'

const FNS = fileURLToPath(new URL('../fixtures/runs/fns.ts', import.meta.url))
const FLOW = fileURLToPath(new URL('../fixtures/runs/verify-flow.template.js', import.meta.url))

describe('verified results with a lying peer', { timeout: 420_000 }, () => {
  let net: TestNetwork
  let peers: TestPeer[]
  let driver: TestPeer
  const liars: LyingPeer[] = []

  before(async () => {
    net = await TestNetwork.create()
    const first = await net.addPeer(['--slots', '2'])
    const rest = await Promise.all([1, 2].map(async () => await net.addPeer(['--bootstrap', first.tcpAddr, '--slots', '2'])))
    peers = [first, ...rest]
    driver = first
  })
  after(async () => {
    for (const liar of liars) await liar.stop()
    await net?.close()
  })

  /** Deploy the functions with a verification policy and the workflow on them; returns the workflow id. */
  let fnId = ''

  async function deploy (policy: string[]): Promise<string> {
    const deployed = await runCli(['deploy', FNS, '--replicas', '3', ...policy, '--json', '--data-dir', driver.dataDir], { timeoutMs: 60_000 })
    assert.equal(deployed.code, 0, deployed.stderr)
    fnId = (JSON.parse(deployed.stdout) as { cid: string }).cid
    const code = new TextEncoder().encode((await readFile(FLOW, 'utf8')).replaceAll('FNS', fnId))
    const manifest = encodeManifest(await createManifest({ name: 'verify-flow', kind: 'workflow', code, exports: ['twoStage'] }))
    const res = await fetch(`${driver.apiUrl}/v1/functions`, { method: 'POST', headers: driver.authorized(), body: dagCbor.encode({ manifest, code, replicas: 1 }) as BodyInit, signal: AbortSignal.timeout(60_000) })
    assert.equal(res.status, 200, await res.clone().text())
    return (await res.json() as { cid: string }).cid
  }

  async function addLiar (lieRate: number, seed: string): Promise<LyingPeer> {
    const liar = await startLyingPeer(net, { lieRate, seed, bootstrap: driver.tcpAddr, slots: 2 })
    liars.push(liar)
    await waitFor('every peer to see the others, and the liar alive with free slots', async () => {
      for (const p of peers) {
        const view = (await p.api<{ peers: Array<{ peerId: string, state: string, capacity: { slotsFree: number } }> }>('/v1/peers')).peers
        if (view.filter(x => x.state === 'alive').length < peers.length) return false
        if (view.find(x => x.peerId === liar.peerId && x.state === 'alive' && x.capacity.slotsFree > 0) === undefined) return false
      }
      return true
    }, 60_000, 200)
    // Warm: the liar fetches and compiles the function once (its first call), as a peer that has
    // been up a while would have; otherwise a short run can end before its first answer. C(10⁶)
    // is no task of the runs below (a lie about it is not one of theirs).
    const warm = await runCli(['call', fnId, 'C', '1000000', '--on', liar.peerId, '--data-dir', driver.dataDir], { timeoutMs: 60_000 })
    assert.equal(warm.code, 0, warm.stderr)
    return liar
  }

  /** A liar that is done with stops (it serves no home set, so two at once could hold a majority of one). */
  async function retire (liar: LyingPeer): Promise<void> {
    await liar.stop()
    liars.splice(liars.indexOf(liar), 1)
  }

  /**
   * Run twoStage(n) on the driver, to its end. A durable run may be taken over by another peer of
   * its home set (a loaded machine delays a lease renewal), so what ran where is gathered from
   * every honest peer's report: `tasks`, each accepted task once; `disproven`, every result
   * replaced.
   */
  async function run (workflow: string, n: number): Promise<RunReport & { accepted: Array<RunReport['tasks'][number] & { drivenBy: string }>, disproven: Array<{ taskId: string, resultCid: string }>, reports: RunReport[] }> {
    const { runId } = await driver.api<{ runId: string }>('/v1/runs', { method: 'POST', body: JSON.stringify({ workflow, export: 'twoStage', args: [n] }) })
    await runEvents(driver, runId, 300_000)
    const report = await driver.api<RunReport>(`/v1/runs/${runId}`)
    const reports = (await Promise.all(peers.map(async p => await p.api<RunReport>(`/v1/runs/${runId}`).then(r => ({ ...r, by: p.peerId }), () => undefined)))).filter(r => r !== undefined)
    const accepted = new Map<string, RunReport['tasks'][number] & { drivenBy: string }>()
    const disproven = new Map<string, { taskId: string, resultCid: string }>()
    for (const r of reports) {
      for (const t of r.tasks) if (t.status === 'accepted') accepted.set(t.taskId, { ...t, drivenBy: r.by })
      for (const d of r.verification?.disproven ?? []) disproven.set(d.taskId, d)
    }
    return { ...report, accepted: [...accepted.values()], disproven: [...disproven.values()], reports }
  }

  async function record (peerId: string): Promise<ReputationView | undefined> {
    return (await driver.api<{ peers: ReputationView[] }>('/v1/reputation')).peers.find(p => p.peerId === peerId)
  }

  /** A task's attestations, from the honest peer that verified it (undefined if none did). */
  async function attestations (taskId: string): Promise<{ peer: TestPeer, rows: TaskAttestations['attestations'] } | undefined> {
    for (const peer of peers) {
      const found = await peer.api<TaskAttestations>(`/v1/tasks/${taskId}/attestations`).catch((err: Error) => { if (/HTTP 404/.test(err.message)) return undefined; throw err })
      if (found !== undefined) return { peer, rows: found.attestations }
    }
    return undefined
  }

  test('replicas 3, quorum 2: a 100-task run accepts no wrong result, and the liar gets no work once caught', async () => {
    const workflow = await deploy(['--verify-replicas', '3', '--quorum', '2'])
    const liar = await addLiar(1, 'always')
    const done = await run(workflow, 50)
    assert.equal(done.status, 'finished', JSON.stringify(done.error))
    assert.equal(done.result, 2500, 'n² for n = 50: no wrong result was used')
    assert.ok(liar.told() > 0, `the liar was given work, and lied; the driver on it:\n${driver.stderr.split('\n').filter(l => l.includes(liar.peerId)).slice(0, 10).join('\n')}\nthe liar:\n${liar.stderr().slice(-3000)}`)
    const banned = await record(liar.peerId)
    assert.ok(banned !== undefined && banned.lies > 0 && banned.banned, `the liar is proven to lie and banned: ${JSON.stringify(banned)}`)
    // No lie is behind an accepted result: every attestation of a lie is a disagreeing one.
    const runTasks = new Set(done.accepted.map(t => t.taskId))
    for (const lie of liar.lies().filter(l => runTasks.has(l.taskId)).slice(0, 10)) {
      const rows = (await attestations(lie.taskId))?.rows ?? []
      for (const row of rows.filter(r => r.resultCid === lie.resultCid)) assert.equal(row.role, 'disagreed', `task ${lie.taskId}: ${JSON.stringify(rows)}`)
    }
    // Provenance: the report names who disagreed on each task the liar lied about, and
    // `rhizome attestations` shows the signed answers.
    const lied = new Set(liar.lies().map(l => l.taskId))
    const caught = done.accepted.filter(t => lied.has(t.taskId))
    assert.ok(caught.length > 0, 'the lies were about tasks of this run')
    // Accepted from a quorum without the liar — or from the driver itself, which trusts its own
    // result (a driver that took the run over ran it again there).
    for (const t of caught) assert.ok(t.peer !== liar.peerId && ((t.agreed?.length ?? 0) >= 1 || t.peer === t.drivenBy), `accepted from a quorum without the liar: ${JSON.stringify(t)}`)
    // The answers it gave once banned are ignored unread; those before are on record as disagreeing.
    assert.ok(caught.some(t => t.disagreed?.includes(liar.peerId) === true), 'the report names the liar as disagreeing')
    const shownId = caught.find(t => t.disagreed !== undefined)!.taskId
    const where = await attestations(shownId)
    assert.ok(where !== undefined)
    const shown = await runCli(['attestations', shownId, '--data-dir', where.peer.dataDir], { timeoutMs: 30_000 })
    assert.equal(shown.code, 0, shown.stderr)
    assert.match(shown.stdout, /disagreed/)
    assert.ok(shown.stdout.includes(liar.peerId.slice(-6)), shown.stdout)
    const toldBefore = liar.told()
    const again = await run(workflow, 20)
    assert.equal(again.result, 400)
    assert.equal(liar.told(), toldBefore, 'a proven liar is given no task')
    assert.ok(!again.tasks.some(t => t.peer === liar.peerId))
    // A one-off call of a function with a policy (no --on) is verified like a run's task: its
    // signed answers are on record (a plain call keeps none).
    const called = await runCli(['call', fnId, 'B', '1234', '--json', '--data-dir', driver.dataDir], { timeoutMs: 60_000 })
    assert.equal(called.code, 0, called.stderr)
    const answer = JSON.parse(called.stdout) as { value: number, taskId: string }
    assert.equal(answer.value, 2468)
    const kept = await attestations(answer.taskId)
    assert.ok(kept?.peer === driver && kept.rows.some(a => a.role === 'accepted'), `the call's attestations are on record on the driver: ${JSON.stringify(kept?.rows)}`)
    await retire(liar)
  })

  test('replicas 1, spot checks 0.2: the liar is caught within the run, and every wrong result it gave is replaced', async () => {
    const workflow = await deploy(['--verify-replicas', '1', '--spot-check-rate', '0.2'])
    const liar = await addLiar(1, 'spot')
    const done = await run(workflow, 100)
    await retire(liar)
    assert.equal(done.status, 'finished', JSON.stringify(done.error))
    const seen = `liar ran ${liar.told()} tasks, told ${liar.lies().length} lies; ${done.disproven.length} results disproven; its record ${JSON.stringify(await record(liar.peerId))}`
    assert.equal(done.result, 10_000, `n² for n = 100: no wrong result stays in the final result (${seen})`)
    const banned = await record(liar.peerId)
    assert.ok(banned !== undefined && banned.banned, `the liar is caught within the run: ${JSON.stringify(banned)}`)
    const disproven = done.disproven
    // Shown, not asserted as a number: how many wrong results were accepted before the catch.
    console.log(`# spot checks: ${done.verification?.checks ?? 0} opened; wrong results accepted before the liar was caught and then replaced: ${disproven.length} (lies told: ${liar.lies().length})`)
    assert.ok(disproven.length > 0, 'wrong results were accepted, then disproven')
    const lied = new Set(liar.lies().map(l => l.resultCid))
    for (const d of disproven) assert.ok(!lied.has(d.resultCid), 'a disproven result is replaced by one the liar did not give')
  })

  test('a liar that lies about 10% of its tasks is still caught and excluded', async () => {
    const workflow = await deploy(['--verify-replicas', '3', '--quorum', '2', '--spot-check-rate', '0.1'])
    const liar = await addLiar(0.1, 'sometimes')
    const done = await run(workflow, 100)
    assert.equal(done.status, 'finished', JSON.stringify(done.error))
    assert.equal(done.result, 10_000)
    assert.ok(liar.lies().length > 0, 'it lied at least once')
    const banned = await record(liar.peerId)
    assert.ok(banned !== undefined && banned.banned, `caught: ${JSON.stringify(banned)} after ${liar.told()} tasks`)
    const toldBefore = liar.told()
    await run(workflow, 10)
    assert.equal(liar.told(), toldBefore, 'excluded: no task after it was caught')
  })
})
