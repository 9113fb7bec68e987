import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import {
  ATTESTATIONS_PER_TASK_MAX, ATTESTATION_RETENTION_MS, LIE_PROOF_BYTES_MAX, LIE_PROOF_RETENTION_MS, REPUTATION_ROWS_MAX, createVerifyRepo, openDatabase
} from '../../src/store/index.ts'
import type { AttestationRow, Database, ReputationRow, VerifyRepo } from '../../src/store/index.ts'

const DAY_MS = 24 * 60 * 60 * 1000
const NOW = 1_800_000_000_000

function record (peerId: string, updatedMs: number, extra: Partial<ReputationRow> = {}): ReputationRow {
  return { peerId, agreements: 3, disagreements: 1, failures: 0, lies: 0, bannedUntilMs: 0, updatedMs, ...extra }
}

function att (peerId: string, resultCid: string, role: AttestationRow['role'], atMs: number): AttestationRow {
  return { peerId, resultCid, signature: new Uint8Array(64).fill(peerId.length), role, atMs }
}

describe('VerifyRepo', () => {
  let dir: string
  let path: string
  let db: Database
  let repo: VerifyRepo
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rhizome-verify-'))
    path = join(dir, 'rhizome.sqlite')
    db = openDatabase(path)
    repo = createVerifyRepo(db)
  })
  afterEach(async () => {
    db.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('saves reputation records (insert, then replace) and loads them back after a reopen, newest first', () => {
    repo.saveReputation(record('peerA', NOW))
    repo.saveReputation(record('peerB', NOW + 1, { lies: 1, bannedUntilMs: NOW + 3_600_000 }))
    repo.saveReputation(record('peerA', NOW + 2, { agreements: 10 }))
    db.close()
    db = openDatabase(path)
    repo = createVerifyRepo(db)
    assert.deepEqual(repo.loadReputation(), [record('peerA', NOW + 2, { agreements: 10 }), record('peerB', NOW + 1, { lies: 1, bannedUntilMs: NOW + 3_600_000 })])
  })

  it('refuses a record that is not one: named errors, nothing written', () => {
    assert.throws(() => repo.saveReputation(record('', NOW)), { name: 'InvalidInputError', message: /peerId/ })
    assert.throws(() => repo.saveReputation(record('p', NOW, { agreements: -1 })), { name: 'InvalidInputError', message: /agreements/ })
    assert.throws(() => repo.saveReputation(record('p', NOW, { lies: 0.5 })), { name: 'InvalidInputError', message: /lies/ })
    assert.throws(() => repo.saveReputation(record('p', NaN)), { name: 'InvalidInputError', message: /updatedMs/ })
    assert.deepEqual(repo.loadReputation(), [])
  })

  it('keeps one proof per (task, liar): a second is a duplicate and does not replace the first', () => {
    assert.equal(repo.hasProof('t1', 'liar'), false)
    assert.equal(repo.addProof('t1', 'liar', new Uint8Array([1, 2, 3]), NOW), true)
    assert.equal(repo.addProof('t1', 'liar', new Uint8Array([9]), NOW + 1), false)
    assert.equal(repo.hasProof('t1', 'liar'), true)
    assert.deepEqual(repo.getProof('t1', 'liar'), new Uint8Array([1, 2, 3]))
    assert.equal(repo.hasProof('t1', 'other'), false)
    assert.equal(repo.addProof('t2', 'liar', new Uint8Array([4]), NOW), true)
  })

  it(`keeps a proof of ${LIE_PROOF_BYTES_MAX} bytes; one byte more is refused`, () => {
    assert.equal(repo.addProof('t1', 'liar', new Uint8Array(LIE_PROOF_BYTES_MAX), NOW), true)
    assert.throws(() => repo.addProof('t2', 'liar', new Uint8Array(LIE_PROOF_BYTES_MAX + 1), NOW), { name: 'TooLargeError' })
    assert.equal(repo.hasProof('t2', 'liar'), false)
  })

  it('records attestations with their run, oldest first; a row for the same peer and result is updated, not added', () => {
    const sig = new Uint8Array(64).fill(7)
    assert.equal(repo.addAttestations('task1', 'run1', [att('peerA', 'cidX', 'accepted', NOW), att('peerB', 'cidX', 'agreed', NOW + 5), att('peerC', 'cidY', 'disagreed', NOW + 9)]), 3)
    assert.equal(repo.addAttestations('task2', undefined, [{ peerId: 'peerA', resultCid: 'cidZ', signature: sig, role: 'checked', atMs: NOW }]), 1)
    const rows = repo.attestationsOf('task1')
    assert.deepEqual(rows.map(r => [r.peerId, r.resultCid, r.role, r.runId, r.atMs]), [['peerA', 'cidX', 'accepted', 'run1', NOW], ['peerB', 'cidX', 'agreed', 'run1', NOW + 5], ['peerC', 'cidY', 'disagreed', 'run1', NOW + 9]])
    assert.deepEqual(rows[0].signature, new Uint8Array(64).fill(5))
    const other = repo.attestationsOf('task2')
    assert.equal(other.length, 1)
    assert.equal(Object.hasOwn(other[0], 'runId'), false)
    assert.deepEqual(other[0].signature, sig)
    // The accepted result was disproven: its peer's row becomes 'disagreed'.
    assert.equal(repo.addAttestations('task1', 'run1', [att('peerA', 'cidX', 'disagreed', NOW + 20)]), 1)
    assert.deepEqual(repo.attestationsOf('task1').map(r => [r.peerId, r.role]), [['peerB', 'agreed'], ['peerC', 'disagreed'], ['peerA', 'disagreed']])
    assert.deepEqual(repo.attestationsOf('nope'), [])
  })

  it(`keeps at most ${ATTESTATIONS_PER_TASK_MAX} attestations per task: the one past it is dropped, updates still apply`, () => {
    const rows = Array.from({ length: ATTESTATIONS_PER_TASK_MAX + 1 }, (_, i) => att(`peer${i}`, 'cid', 'agreed', NOW + i))
    assert.equal(repo.addAttestations('task', 'run', rows), ATTESTATIONS_PER_TASK_MAX)
    assert.equal(repo.attestationsOf('task').length, ATTESTATIONS_PER_TASK_MAX)
    assert.equal(repo.addAttestations('task', 'run', [att(`peer${ATTESTATIONS_PER_TASK_MAX}`, 'cid', 'agreed', NOW)]), 0)
    assert.equal(repo.addAttestations('task', 'run', [att('peer0', 'cid', 'disagreed', NOW)]), 1)
    assert.equal(repo.attestationsOf('task').find(r => r.peerId === 'peer0')?.role, 'disagreed')
    assert.equal(repo.addAttestations('another', 'run', [att('peer0', 'cid', 'agreed', NOW)]), 1)
  })

  it('refuses a bad attestation before writing any of the batch', () => {
    assert.throws(() => repo.addAttestations('task', 'run', [att('peerA', 'cid', 'agreed', NOW), att('peerB', 'cid', 'lied' as 'agreed', NOW)]), { name: 'InvalidInputError', message: /role must be one of accepted, agreed, disagreed, checked/ })
    assert.throws(() => repo.addAttestations('task', 'run', [{ ...att('peerA', 'cid', 'agreed', NOW), signature: new Uint8Array(1025) }]), { name: 'InvalidInputError', message: /signature/ })
    assert.throws(() => repo.addAttestations('x'.repeat(257), 'run', []), { name: 'InvalidInputError', message: /taskId/ })
    assert.deepEqual(repo.attestationsOf('task'), [])
  })

  it('prune forgets attestations past their retention and proofs past theirs, and nothing newer', () => {
    repo.addAttestations('old', 'run', [att('peerA', 'cid', 'accepted', NOW - ATTESTATION_RETENTION_MS - 1)])
    repo.addAttestations('kept', 'run', [att('peerA', 'cid', 'accepted', NOW - ATTESTATION_RETENTION_MS)])
    repo.addProof('old', 'liar', new Uint8Array([1]), NOW - LIE_PROOF_RETENTION_MS - 1)
    repo.addProof('kept', 'liar', new Uint8Array([1]), NOW - LIE_PROOF_RETENTION_MS)
    repo.saveReputation(record('peerA', NOW - 365 * DAY_MS))
    assert.deepEqual(repo.prune(NOW), { attestations: 1, proofs: 1, reputation: 0 })
    assert.deepEqual(repo.attestationsOf('old'), [])
    assert.equal(repo.attestationsOf('kept').length, 1)
    assert.equal(repo.hasProof('old', 'liar'), false)
    assert.equal(repo.hasProof('kept', 'liar'), true)
    assert.equal(repo.loadReputation().length, 1, 'reputation is bounded by count, not age')
    assert.deepEqual(repo.prune(NOW), { attestations: 0, proofs: 0, reputation: 0 })
  })

  it('prune keeps the newest attestation rows within the total bound', () => {
    const small = createVerifyRepo(db, { attestationRowsMax: 3 })
    for (let i = 0; i < 5; i++) small.addAttestations(`task${i}`, 'run', [att('peerA', 'cid', 'accepted', NOW + i)])
    assert.equal(small.prune(NOW + 10).attestations, 2)
    assert.deepEqual([0, 1, 2, 3, 4].map(i => small.attestationsOf(`task${i}`).length), [0, 0, 1, 1, 1])
  })

  it(`prune keeps the ${REPUTATION_ROWS_MAX} most recently updated reputation records; one past it goes`, () => {
    const insert = db.sqlite.prepare('INSERT INTO reputation (peer_id, agreements, disagreements, failures, lies, banned_until_ms, updated_ms) VALUES (?, 0, 0, 0, 0, 0, ?)')
    db.transaction(() => { for (let i = 0; i <= REPUTATION_ROWS_MAX; i++) insert.run(`peer${i}`, NOW + i) })
    assert.equal(repo.prune(NOW).reputation, 1)
    const loaded = repo.loadReputation()
    assert.equal(loaded.length, REPUTATION_ROWS_MAX)
    assert.equal(loaded.at(-1)?.peerId, 'peer1', 'the least recently updated (peer0) went')
  })
})
