/**
 * Certificates and revocations on disk (src/store/permission-repo.ts): written, replaced, deleted,
 * and read back after the database is reopened.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { createPermissionRepo, openDatabase, revocationKey } from '../../src/store/index.ts'

test('certificates and revocations survive a reopen; a later revocation of the same peer replaces the earlier', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rhizome-perm-repo-'))
  try {
    const path = join(dir, 'db')
    let db = openDatabase(path)
    let repo = createPermissionRepo(db)
    repo.putCertificate({ peerId: 'p1', serial: 's1', bytes: new Uint8Array([1]), notAfter: 10 })
    repo.putCertificate({ peerId: 'p2', serial: 's2', bytes: new Uint8Array([2]), notAfter: 20 })
    repo.deleteCertificate('p1', 's1')
    repo.putRevocation({ key: revocationKey({ peer: 'p3' }), bytes: new Uint8Array([3]), atMs: 5 })
    repo.putRevocation({ key: revocationKey({ peer: 'p3' }), bytes: new Uint8Array([4]), atMs: 6 })
    repo.putRevocation({ key: revocationKey({ serial: 's9' }), bytes: new Uint8Array([5]), atMs: 7 })
    db.close()
    db = openDatabase(path)
    repo = createPermissionRepo(db)
    assert.deepEqual(repo.listCertificates().map(r => [r.peerId, r.serial, [...r.bytes], r.notAfter]), [['p2', 's2', [2], 20]])
    assert.deepEqual(repo.listRevocations().map(r => [r.key, [...r.bytes], r.atMs]), [['p:p3', [4], 6], ['s:s9', [5], 7]])
    repo.deleteRevocation('p:p3')
    assert.equal(repo.listRevocations().length, 1)
    // A delegated admin's is keyed apart from the founder's revocation of the same target.
    assert.equal(revocationKey({ serial: 's9', issuer: 'F' }, 'F'), 's:s9')
    assert.equal(revocationKey({ serial: 's9', issuer: 'A' }, 'F'), 'd:A:s:s9')
    db.close()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
