/**
 * Real peers in separate processes find each other through one bootstrap address, notice a
 * killed peer (suspect, then gone) and take it back when it restarts with the same identity.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { TestNetwork, runCli, waitFor } from '../helpers/peers.ts'
import type { TestPeer } from '../helpers/peers.ts'

interface PeerJson { peerId: string, state: string, version: string, capacity: { slotsMax: number } }

async function peersJson (peer: TestPeer): Promise<PeerJson[]> {
  const result = await runCli(['peers', '--json', '--data-dir', peer.dataDir])
  assert.equal(result.code, 0, result.stderr)
  return JSON.parse(result.stdout) as PeerJson[]
}

function stateOf (view: PeerJson[], peerId: string): string | undefined {
  return view.find(p => p.peerId === peerId)?.state
}

describe('membership between real peers', { timeout: 180_000 }, () => {
  let net: TestNetwork
  let peers: TestPeer[]

  before(async () => {
    net = await TestNetwork.create()
    const first = await net.addPeer()
    const rest = await Promise.all([1, 2, 3].map(async () => await net.addPeer(['--bootstrap', first.tcpAddr])))
    peers = [first, ...rest]
  })
  after(async () => { await net?.close() })

  test('every peer lists all the others as alive, through one bootstrap address', async () => {
    await waitFor('all 4 peers to see each other alive', async () => {
      for (const peer of peers) {
        const view = await peersJson(peer)
        for (const other of peers) {
          if (other === peer) continue
          if (stateOf(view, other.peerId) !== 'alive') return false
        }
        assert.ok(!view.some(p => p.peerId === peer.peerId), 'a view never lists the peer itself')
      }
      return true
    }, 60_000, 250)
    const view = await peersJson(peers[1])
    assert.equal(view.length, 3)
    assert.ok(view.every(p => p.version.length > 0 && p.capacity.slotsMax >= 1))
  })

  test('a killed peer turns suspect, then gone, in every other view; restarted it is alive with the same id', async () => {
    const victim = peers[2]
    const victimId = victim.peerId
    const others = peers.filter(p => p !== victim)
    await victim.stop('SIGKILL')

    // Suspect after 2 s of silence and gone after 4 s (FAST_TIMING); waitFor allows far more.
    const sawSuspect = new Set<string>()
    await waitFor('the killed peer to be gone everywhere', async () => {
      let gone = 0
      for (const peer of others) {
        const state = stateOf(await peersJson(peer), victimId)
        if (state === 'suspect') sawSuspect.add(peer.peerId)
        if (state === 'gone') gone++
      }
      return gone === others.length
    }, 30_000, 200)
    assert.ok(sawSuspect.size > 0, 'at least one view passed through suspect on the way to gone')

    await victim.start()
    assert.equal(victim.peerId, victimId, 'the peer id survives a restart')
    await waitFor('the restarted peer to be alive everywhere', async () => {
      for (const peer of others) {
        if (stateOf(await peersJson(peer), victimId) !== 'alive') return false
      }
      return true
    }, 30_000, 200)
  })

  test('SIGTERM stops a peer cleanly and removes its api.json', async () => {
    const peer = peers[3]
    const code = await peer.stop('SIGTERM')
    assert.equal(code, 0)
    const status = await runCli(['status', '--data-dir', peer.dataDir])
    assert.equal(status.code, 1)
    assert.match(status.stderr, /no Rhizome peer is running/)
    assert.match(status.stderr, /hint: start one with/)
  })
})
