/**
 * A permissioned network's credentials on disk (src/net/permission-service.ts): the certificates
 * of members this peer has checked and the revocations it enforces, each as the encoded bytes the
 * admin signed. The permission machine's `persist-*` and `forget-*` outputs are written here, and
 * a starting peer loads them back (decoding and re-checking each: a row that no longer decodes is
 * skipped, never trusted). Bounded by the machine: at most CERTIFICATES_MAX certificates and
 * REVOCATIONS_MAX revocations are ever held, and what it drops it tells us to forget.
 */
import type { Database } from './database.ts'

export interface StoredCertificate { peerId: string, serial: string, bytes: Uint8Array, notAfter: number }
export interface StoredRevocation { key: string, bytes: Uint8Array, atMs: number }

export interface PermissionRepo {
  putCertificate (row: StoredCertificate): void
  deleteCertificate (peerId: string, serial: string): void
  listCertificates (): StoredCertificate[]
  /** Upsert by key: a later revocation of the same serial or peer replaces the earlier. */
  putRevocation (row: StoredRevocation): void
  deleteRevocation (key: string): void
  listRevocations (): StoredRevocation[]
}

export function createPermissionRepo (db: Database): PermissionRepo {
  const s = db.sqlite
  const insertCert = s.prepare(`INSERT INTO certificates (peer_id, serial, bytes, not_after) VALUES (?, ?, ?, ?)
    ON CONFLICT (peer_id, serial) DO UPDATE SET bytes = excluded.bytes, not_after = excluded.not_after`)
  const deleteCert = s.prepare('DELETE FROM certificates WHERE peer_id = ? AND serial = ?')
  const selectCerts = s.prepare('SELECT peer_id, serial, bytes, not_after FROM certificates ORDER BY peer_id, serial')
  const insertRev = s.prepare(`INSERT INTO revocations (key, bytes, at_ms) VALUES (?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET bytes = excluded.bytes, at_ms = excluded.at_ms`)
  const deleteRev = s.prepare('DELETE FROM revocations WHERE key = ?')
  const selectRevs = s.prepare('SELECT key, bytes, at_ms FROM revocations ORDER BY at_ms, key')
  return {
    putCertificate: (row) => { insertCert.run(row.peerId, row.serial, row.bytes, row.notAfter) },
    deleteCertificate: (peerId, serial) => { deleteCert.run(peerId, serial) },
    listCertificates: () => (selectCerts.all() as Array<{ peer_id: string, serial: string, bytes: Uint8Array, not_after: number }>)
      .map(r => ({ peerId: r.peer_id, serial: r.serial, bytes: r.bytes, notAfter: r.not_after })),
    putRevocation: (row) => { insertRev.run(row.key, row.bytes, row.atMs) },
    deleteRevocation: (key) => { deleteRev.run(key) },
    listRevocations: () => (selectRevs.all() as Array<{ key: string, bytes: Uint8Array, at_ms: number }>)
      .map(r => ({ key: r.key, bytes: r.bytes, atMs: r.at_ms }))
  }
}

/** The storage key of a revocation, as the machine keeps them: the founder's one per serial or peer
 *  named; a delegated admin's (issuer not `founder`) scoped by its issuer, apart from the founder's. */
export function revocationKey (rev: { serial?: string, peer?: string, issuer?: string }, founder?: string): string {
  const target = rev.serial !== undefined ? `s:${rev.serial}` : `p:${rev.peer ?? ''}`
  return founder === undefined || rev.issuer === undefined || rev.issuer === founder ? target : `d:${rev.issuer}:${target}`
}
