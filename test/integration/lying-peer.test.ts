/**
 * The lying peer (test/helpers/lying-peer-main.ts) is a real peer that answers with wrong values
 * under valid signatures. Here it joins a one-peer network, shows up alive with free slots in the
 * honest peer's view, and serves calls: with lie rate 1 the honest peer gets a wrong value whose
 * attestation it checked and accepted (nothing catches the lie today; this shows the liar works
 * for the tests of result verification); with lie rate 0 the value is right. The same call gives
 * the same task id everywhere, and the liar's result CID differs from an honest peer's.
 */
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { TestNetwork, runCli, waitFor } from '../helpers/peers.ts'
import { startLyingPeer } from '../helpers/lying-peer.ts'
import { falsify, liesAbout } from '../helpers/lying-peer-main.ts'
import type { TestPeer } from '../helpers/peers.ts'
import type { LyingPeer } from '../helpers/lying-peer.ts'

const MATH = fileURLToPath(new URL('../fixtures/deploy/math.ts', import.meta.url))

interface CallJson { value: unknown, peer: string, resultCid: string, taskId: string }

describe('a lying peer', { timeout: 90_000 }, () => {
  let net: TestNetwork
  let honest: TestPeer
  let liar: LyingPeer
  let truthful: LyingPeer
  let fnId: string

  before(async () => {
    net = await TestNetwork.create()
    honest = await net.addPeer()
    // Deployed on the honest peer alone: the liars fetch the code from it when asked to run it.
    const deployed = await runCli(['deploy', MATH, '--replicas', '1', '--json', '--data-dir', honest.dataDir], { timeoutMs: 30_000 })
    assert.equal(deployed.code, 0, deployed.stderr)
    fnId = (JSON.parse(deployed.stdout) as { cid: string }).cid
    ;[liar, truthful] = await Promise.all([
      startLyingPeer(net, { lieRate: 1, bootstrap: honest.tcpAddr }),
      startLyingPeer(net, { lieRate: 0, bootstrap: honest.tcpAddr })
    ])
  })
  after(async () => {
    await liar?.stop()
    await truthful?.stop()
    await net?.close()
  })

  async function callOn (peerId: string, exportName: string, ...args: string[]): Promise<CallJson> {
    const r = await runCli(['call', fnId, exportName, ...args, '--on', peerId, '--json', '--data-dir', honest.dataDir], { timeoutMs: 30_000 })
    assert.equal(r.code, 0, `${r.stderr}\nliar log:\n${liar.stderr().slice(-2000)}`)
    return JSON.parse(r.stdout) as CallJson
  }

  test('joins the network: the honest peer sees it alive with free slots', async () => {
    for (const peer of [liar, truthful]) {
      const seen = await waitFor(`the honest peer to see ${peer.peerId} alive`, async () =>
        (await honest.api<{ peers: Array<{ peerId: string, state: string, capacity: { slotsFree: number } }> }>('/v1/peers')).peers
          .find(p => p.peerId === peer.peerId && p.state === 'alive'), 20_000, 100)
      assert.ok(seen.capacity.slotsFree > 0, JSON.stringify(seen))
    }
  })

  test('with lie rate 1 the caller gets a wrong value under a signature it verified', async () => {
    const told = liar.told()
    const lie = await callOn(liar.peerId, 'double', '21')
    assert.equal(lie.peer, liar.peerId)
    assert.equal(lie.value, 43, 'double(21) from the liar is 42 + 1')
    // The call succeeded, so the caller checked the attestation (task, peer, signature, result
    // hash) and found nothing wrong; it has no reason to score the liar down either.
    assert.doesNotMatch(honest.stderr, new RegExp(`peer broke protocol.*${liar.peerId}`))
    assert.equal(liar.told(), told + 1)
    assert.deepEqual(liar.lies().at(-1), { taskId: lie.taskId, resultCid: lie.resultCid })

    const other = await callOn(liar.peerId, 'sumOfSquares', '[1,2,3]')
    assert.equal(other.value, 15, 'sumOfSquares([1,2,3]) from the liar is 14 + 1')
    assert.equal(liar.lies().length, 2)
  })

  test('with lie rate 0 the value is right, and the liar\'s result differs from the truth for the same task', async () => {
    const truth = await callOn(truthful.peerId, 'double', '21')
    assert.equal(truth.peer, truthful.peerId)
    assert.equal(truth.value, 42)
    assert.deepEqual(truthful.tasks().map(t => ({ taskId: t.taskId, lied: t.lied, resultCid: t.resultCid })), [{ taskId: truth.taskId, lied: false, resultCid: truth.resultCid }])
    assert.equal(truthful.lies().length, 0)

    const local = await callOn(honest.peerId, 'double', '21')
    assert.equal(local.value, 42)
    assert.equal(local.resultCid, truth.resultCid, 'an honest answer is the same everywhere')
    const lie = liar.lies().find(l => l.taskId === truth.taskId)
    assert.ok(lie !== undefined, 'the liar answered the same task')
    assert.notEqual(lie.resultCid, truth.resultCid, 'the same task, a different result: what a quorum would catch')
  })
})

describe('which tasks the lying peer lies about, and how', () => {
  const ids = Array.from({ length: 2000 }, (_, i) => `task-${i}`)

  test('a seeded fraction of tasks, the same each time', async () => {
    const picked = async (rate: number, seed: string): Promise<string[]> => {
      const out: string[] = []
      for (const id of ids) if (await liesAbout(id, seed, rate)) out.push(id)
      return out
    }
    assert.equal((await picked(0, '0')).length, 0)
    assert.equal((await picked(1, '0')).length, ids.length)
    const third = await picked(0.3, '0')
    // 2,000 draws at p = 0.3: the mean is 600 and the standard deviation ~20.5; ±100 is ~5 of them.
    assert.ok(third.length > 500 && third.length < 700, `${third.length} of ${ids.length}`)
    assert.deepEqual(await picked(0.3, '0'), third, 'the same seed picks the same tasks')
    assert.notDeepEqual(await picked(0.3, '1'), third, 'another seed picks other tasks')
  })

  test('a lie is a valid value other than the truth', () => {
    assert.equal(falsify(42), 43)
    assert.equal(falsify(-0.5), 0.5)
    assert.equal(falsify(5n), 6n)
    assert.deepEqual(falsify(2 ** 60), { lie: 2 ** 60 }, 'n + 1 === n for a large float')
    assert.deepEqual(falsify('x'), { lie: 'x' })
    assert.deepEqual(falsify(null), { lie: null })
  })
})
