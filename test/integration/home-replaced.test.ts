/**
 * A home-set peer the driver replaced while it was away is told the new home set, which no longer
 * names it (src/protocol/home/home-run.ts handlePeersGone), and stores it. Restarted, it must start
 * and let the run go — not rejoin it, and not fail to start: a home-set machine cannot run on a
 * peer outside the home set, and before this was handled the peer exited at start with
 * "homeSet: a home-set machine runs on a peer of the home set" (seen under the durable chaos test).
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { openDatabase } from '../../src/store/index.ts'
import { createHomeRepo } from '../../src/store/home-repo.ts'
import { TestPeer } from '../helpers/peers.ts'
import { peerIdOf } from '../helpers/certificates.ts'

describe('a home-set peer replaced while it was away', { timeout: 120_000 }, () => {
  const dirs: string[] = []
  const peers: TestPeer[] = []
  after(async () => {
    await Promise.all(peers.map(async p => await p.stop('SIGKILL')))
    await Promise.all(dirs.map(async d => await rm(d, { recursive: true, force: true })))
  })

  test('starts, keeps no machine for the run, and marks it over here', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rhizome-home-replaced-'))
    dirs.push(dir)
    const self = await peerIdOf(dir)
    const others = ['12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq', '12D3KooWNwQLuFjn78rz3kqATB6e87fhANUFrsZCNWqrcTYbgA1k']
    const db = openDatabase(join(dir, 'rhizome.db'))
    const repo = createHomeRepo(db)
    // Kept when it was in the home set; then the driver's new home set, without it, was stored.
    repo.openRun({ runId: 'run-replaced', spec: dagCbor.encode({ workflow: 'x', export: 'y', args: [] }), homeSet: [others[0], self, others[1]], openedMs: Date.now() })
    repo.setHomeSet('run-replaced', others)
    assert.equal(repo.listUnsettled(10).length, 1)
    db.close()

    const peer = new TestPeer(dir, ['--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--log-level', 'info'])
    peers.push(peer)
    await peer.start()
    assert.match(peer.stderr, /left the home set of a run/)
    await peer.stop()

    const reopened = openDatabase(join(dir, 'rhizome.db'))
    try {
      assert.deepEqual(createHomeRepo(reopened).listUnsettled(10), [], 'the run is over for this peer: a restart does not look at it again')
    } finally {
      reopened.close()
    }
  })
})
