/**
 * What a peer shows of verification: its mode in `rhizome status`, a task's attestations
 * (`GET /v1/tasks/:id/attestations`, `rhizome attestations`) and its reputation records
 * (`GET /v1/reputation`, `rhizome reputation`), read from a real peer's database, seeded through
 * the repo before the peer starts.
 */
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { createVerifyRepo, openDatabase, ATTESTATION_RETENTION_MS } from '../../src/store/index.ts'
import type { ReputationView, TaskAttestations } from '../../src/api/types.ts'
import { TestNetwork, TestPeer, runCli } from '../helpers/peers.ts'

const LIAR = '12D3KooWLiar00000000000000000000000000000000000000ccc'
const HONEST = '12D3KooWHonest000000000000000000000000000000000000aaa'
const CHECKER = '12D3KooWChecker00000000000000000000000000000000000bbb'
const GOOD = 'bafkreigood'
const BAD = 'bafkreibad'

describe('verification on the API and the CLI', { timeout: 120_000 }, () => {
  let net: TestNetwork
  let peer: TestPeer
  const seededMs = Date.now()

  before(async () => {
    net = await TestNetwork.create()
    const dataDir = join(net.root, 'seeded')
    await mkdir(dataDir, { recursive: true })
    const db = openDatabase(join(dataDir, 'rhizome.db'))
    const repo = createVerifyRepo(db)
    repo.addAttestations('task-1', 'run-1', [
      { peerId: HONEST, resultCid: GOOD, signature: new Uint8Array(64).fill(1), role: 'accepted', atMs: seededMs },
      { peerId: CHECKER, resultCid: GOOD, signature: new Uint8Array(64).fill(2), role: 'agreed', atMs: seededMs + 1 },
      { peerId: LIAR, resultCid: BAD, signature: new Uint8Array(64).fill(3), role: 'disagreed', atMs: seededMs + 2 }
    ])
    repo.addAttestations('task-old', undefined, [{ peerId: HONEST, resultCid: GOOD, signature: new Uint8Array(64), role: 'accepted', atMs: seededMs - ATTESTATION_RETENTION_MS - 60_000 }])
    repo.saveReputation({ peerId: HONEST, agreements: 7, disagreements: 0, failures: 1, lies: 0, bannedUntilMs: 0, updatedMs: seededMs })
    repo.saveReputation({ peerId: LIAR, agreements: 1, disagreements: 2, failures: 0, lies: 1, bannedUntilMs: seededMs + 3_600_000, updatedMs: seededMs - 1 })
    db.close()
    peer = new TestPeer(dataDir, net.peerArgs(['--verification', 'open']))
    net.peers.push(peer)
    await peer.start()
  })
  after(async () => { await net.close() })

  test('status shows the verification mode', async () => {
    const text = await runCli(['status', '--data-dir', peer.dataDir])
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /^verification: open$/m)
    const json = await runCli(['status', '--json', '--data-dir', peer.dataDir])
    assert.equal((JSON.parse(json.stdout) as { verification: string }).verification, 'open')
  })

  test('GET /v1/tasks/:id/attestations: who computed it, who agreed, who disagreed, signatures in base64', async () => {
    const answer = await peer.api<TaskAttestations>('/v1/tasks/task-1/attestations')
    assert.deepEqual(answer, {
      taskId: 'task-1',
      attestations: [
        { peer: HONEST, resultCid: GOOD, role: 'accepted', runId: 'run-1', atMs: seededMs, signature: Buffer.alloc(64, 1).toString('base64') },
        { peer: CHECKER, resultCid: GOOD, role: 'agreed', runId: 'run-1', atMs: seededMs + 1, signature: Buffer.alloc(64, 2).toString('base64') },
        { peer: LIAR, resultCid: BAD, role: 'disagreed', runId: 'run-1', atMs: seededMs + 2, signature: Buffer.alloc(64, 3).toString('base64') }
      ]
    })
  })

  test('an unknown task is 404 with a hint; so is one pruned past its retention at start', async () => {
    for (const id of ['no-such-task', 'task-old']) {
      const res = await fetch(`${peer.apiUrl}/v1/tasks/${id}/attestations`, { headers: peer.authorized(), signal: AbortSignal.timeout(10_000) })
      assert.equal(res.status, 404)
      const body = await res.json() as { error: { code: string, message: string, hint: string } }
      assert.equal(body.error.code, 'ERR_NOT_FOUND')
      assert.match(body.error.message, new RegExp(`no attestations of task "${id}"`))
      assert.match(body.error.hint, /ask the peer that drove the task/)
    }
    const tooLong = await fetch(`${peer.apiUrl}/v1/tasks/${'x'.repeat(257)}/attestations`, { headers: peer.authorized(), signal: AbortSignal.timeout(10_000) })
    assert.equal(tooLong.status, 400)
    await tooLong.body?.cancel()
  })

  test('rhizome attestations TASK prints a table by role; --json the API answer; an unknown task exits 1 with the hint', async () => {
    const text = await runCli(['attestations', 'task-1', '--data-dir', peer.dataDir])
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /^task {7}task-1$/m)
    assert.match(text.stdout, /^run {8}run-1$/m)
    assert.match(text.stdout, /^answers {4}3: 1 accepted, 1 agreed, 1 disagreed, 0 checked$/m)
    const table = text.stdout.split('\n').filter(line => /^(ROLE|accepted|agreed|disagreed)/.test(line))
    assert.deepEqual(table.map(line => line.split(/\s+/).slice(0, 3)), [['ROLE', 'PEER', 'RESULT'], ['accepted', HONEST, GOOD], ['agreed', CHECKER, GOOD], ['disagreed', LIAR, BAD]])
    const json = await runCli(['attestations', 'task-1', '--json', '--data-dir', peer.dataDir])
    assert.equal((JSON.parse(json.stdout) as TaskAttestations).attestations.length, 3)
    const missing = await runCli(['attestations', 'no-such-task', '--data-dir', peer.dataDir])
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /no attestations of task "no-such-task" on this peer \(ERR_NOT_FOUND\)/)
    assert.match(missing.stderr, /hint: ask the peer that drove the task/)
    const bad = await runCli(['attestations', 'two words', '--data-dir', peer.dataDir])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /is not a task id/)
  })

  test('GET /v1/reputation and rhizome reputation: each record, its score and its ban', async () => {
    const { peers } = await peer.api<{ peers: ReputationView[] }>('/v1/reputation')
    assert.deepEqual(peers.map(p => [p.peerId, p.agreements, p.disagreements, p.failures, p.lies, p.banned]), [[HONEST, 7, 0, 1, 0, false], [LIAR, 1, 2, 0, 1, true]])
    assert.equal(peers[0].score, 8 / 10) // (1 + 7) / (2 + 7 + 0 + 1)
    assert.equal(peers[1].score, 2 / 5) // (1 + 1) / (2 + 1 + 2 + 0)
    assert.equal(peers[1].bannedUntilMs, seededMs + 3_600_000)
    const text = await runCli(['reputation', '--data-dir', peer.dataDir])
    assert.equal(text.code, 0, text.stderr)
    const lines = text.stdout.trim().split('\n').map(line => line.split(/\s{2,}/))
    assert.deepEqual(lines[0], ['PEER', 'AGREED', 'DISAGREED', 'FAILED', 'LIES', 'SCORE', 'BANNED'])
    assert.deepEqual(lines[1], [HONEST, '7', '0', '1', '0', '0.80', 'no'])
    assert.deepEqual(lines[2].slice(0, 6), [LIAR, '1', '2', '0', '1', '0.40'])
    assert.match(lines[2][6], /^for (59 min \d+ s|1 h 0 min)$/)
    const json = await runCli(['reputation', '--json', '--data-dir', peer.dataDir])
    assert.equal((JSON.parse(json.stdout) as ReputationView[]).length, 2)
  })
})
