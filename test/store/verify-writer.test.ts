// VerifyWriter: attestations and reputation changes are batched (one transaction per
// VERIFY_FLUSH_MS, or at once past VERIFY_PENDING_ROWS_MAX rows), the last record of a peer wins,
// and a batch that cannot be written is reported, never thrown from a timer.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createVerifyRepo, openDatabase } from '../../src/store/index.ts'
import { VERIFY_FLUSH_MS, VERIFY_PENDING_ROWS_MAX, VerifyWriter } from '../../src/store/verify-repo.ts'
import type { AttestationRow, Database, VerifyRepo } from '../../src/store/index.ts'

function att (peerId: string, i = 0): AttestationRow {
  return { peerId, resultCid: `bafy${i}`, signature: new Uint8Array(64), role: 'accepted', atMs: 1_000 + i }
}

describe('VerifyWriter', () => {
  let dir: string
  let db: Database
  let repo: VerifyRepo
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rhizome-verify-writer-'))
    db = openDatabase(join(dir, 'rhizome.db'))
    repo = createVerifyRepo(db)
  })
  after(async () => {
    db.close()
    await rm(dir, { recursive: true, force: true })
  })

  it(`writes after ${VERIFY_FLUSH_MS} ms, in one batch, the last record of a peer winning`, async () => {
    const errors: Error[] = []
    const writer = new VerifyWriter(db, repo, (err) => errors.push(err))
    writer.addAttestations('t1', undefined, [att('A')])
    writer.saveReputation({ peerId: 'A', agreements: 1, disagreements: 0, failures: 0, lies: 0, bannedUntilMs: 0, updatedMs: 1 })
    writer.saveReputation({ peerId: 'A', agreements: 2, disagreements: 0, failures: 0, lies: 0, bannedUntilMs: 0, updatedMs: 2 })
    assert.equal(repo.attestationsOf('t1').length, 0, 'not yet')
    await new Promise(resolve => setTimeout(resolve, VERIFY_FLUSH_MS * 5))
    assert.equal(repo.attestationsOf('t1').length, 1)
    assert.equal(repo.loadReputation().find(r => r.peerId === 'A')?.agreements, 2)
    assert.deepEqual(errors, [])
  })

  it(`writes at once when ${VERIFY_PENDING_ROWS_MAX} rows wait`, () => {
    const writer = new VerifyWriter(db, repo, () => {})
    for (let i = 0; i < VERIFY_PENDING_ROWS_MAX - 1; i++) writer.addAttestations(`t${i + 100}`, undefined, [att('B', i)])
    assert.equal(repo.attestationsOf('t100').length, 0)
    writer.addAttestations('t-last', undefined, [att('B')])
    assert.equal(repo.attestationsOf('t100').length, 1)
    assert.equal(repo.attestationsOf('t-last').length, 1)
  })

  it('reports a batch it cannot write instead of throwing', () => {
    const errors: Error[] = []
    const writer = new VerifyWriter(db, repo, (err) => errors.push(err))
    writer.addAttestations('t-bad', undefined, [{ ...att('C'), role: 'nonsense' as AttestationRow['role'] }])
    assert.doesNotThrow(() => { writer.flush() })
    assert.equal(errors.length, 1)
    assert.match(errors[0].message, /role/)
  })
})
