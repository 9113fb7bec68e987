/**
 * Verified results on disk: each other peer's reputation record, the proofs of lies this peer
 * made or received, and the signed attestations behind each verified task (who computed it, who
 * agreed, who disagreed), so `rhizome attestations TASK` can show them and a proof can be rebuilt.
 *
 * The decisions live in the verification and reputation machines (src/protocol/verify,
 * src/protocol/reputation); this is their storage. Everything is bounded: rows per task, rows of
 * reputation, and how long attestations and proofs are kept (`prune`).
 */
import { InvalidInputError, TooLargeError } from '../model/errors.ts'
import { SIGNATURE_BYTES_MAX } from '../model/limits.ts'
import type { StatementSync } from 'node:sqlite'
import type { Database } from './database.ts'
import { withoutSync } from './database.ts'

/** A peer's record, as the reputation machine keeps it. `bannedUntilMs` 0: not banned. */
export interface ReputationRow {
  peerId: string
  agreements: number
  disagreements: number
  failures: number
  lies: number
  bannedUntilMs: number
  updatedMs: number
}

/** What a peer's attestation was to the verified outcome of a task. */
export type AttestationRole = 'accepted' | 'agreed' | 'disagreed' | 'checked'
export const ATTESTATION_ROLES: readonly AttestationRole[] = ['accepted', 'agreed', 'disagreed', 'checked']

export interface AttestationRow {
  peerId: string
  resultCid: string
  /** The peer's Ed25519 signature over its attestation (src/net/task-service.ts). */
  signature: Uint8Array
  role: AttestationRole
  atMs: number
}

export interface StoredAttestation extends AttestationRow {
  taskId: string
  /** The run the task belonged to, if it was called by one. */
  runId?: string
}

export interface PruneCounts { attestations: number, proofs: number, reputation: number }

export interface VerifyRepo {
  /** Every stored record, most recently updated first (at most REPUTATION_ROWS_MAX). */
  loadReputation: () => ReputationRow[]
  /** Insert or replace the record of `record.peerId`. */
  saveReputation: (record: ReputationRow) => void
  /** Keep a proof (encoded by the caller); false if one for (taskId, liar) was already kept. */
  addProof: (taskId: string, liar: string, proof: Uint8Array, receivedMs: number) => boolean
  hasProof: (taskId: string, liar: string) => boolean
  /** The kept proof of (taskId, liar), if any. */
  getProof: (taskId: string, liar: string) => Uint8Array | undefined
  /**
   * Record attestations of a task. A row for a (peer, result CID) already stored is updated
   * (its role may change, e.g. accepted → disagreed when the result is disproven); new rows past
   * ATTESTATIONS_PER_TASK_MAX for the task are dropped. Returns how many rows were written.
   */
  addAttestations: (taskId: string, runId: string | undefined, rows: AttestationRow[]) => number
  /** The task's attestations, oldest first (at most ATTESTATIONS_PER_TASK_MAX). */
  attestationsOf: (taskId: string) => StoredAttestation[]
  /**
   * Forget attestations and proofs past their retention, the oldest attestations past
   * ATTESTATION_ROWS_MAX, and the least recently updated reputation rows past REPUTATION_ROWS_MAX.
   */
  prune: (nowMs: number) => PruneCounts
}

/**
 * Most attestations kept per task. A task has at most REPLICAS_MAX (16) replicas
 * (src/model/verification.ts); spot checks and the re-checks after a peer is proven to lie add
 * a few more. 64 is four times that, so every answer a task can legitimately get is kept, while
 * one task cannot grow without bound.
 */
export const ATTESTATIONS_PER_TASK_MAX = 64

/**
 * How long attestations are kept: a week, long enough to look into a result a run used days ago
 * (and to show what a peer later proven to lie had signed). A busy peer reaches
 * ATTESTATION_ROWS_MAX first; then the oldest go sooner.
 */
export const ATTESTATION_RETENTION_MS = 7 * 24 * 60 * 60 * 1000

/**
 * Most attestation rows kept in all. A row is ~250 bytes with its index entry, so 1,000,000 rows
 * are ~250 MB of disk: a peer verifying 100 tasks/s (3 rows each) keeps about an hour of them,
 * one verifying a few tasks a second the whole retention week.
 */
export const ATTESTATION_ROWS_MAX = 1_000_000

/**
 * How long proofs of lies are kept: 30 days, well past the longest ban (7 days), so a proof
 * gossiped again within that time is recognised as one already counted and does not ban its
 * liar a second time for the same lie.
 */
export const LIE_PROOF_RETENTION_MS = 30 * 24 * 60 * 60 * 1000

/**
 * Largest proof kept, in bytes. A proof is the liar's attestation and at most REPLICAS_MAX - 1
 * witnesses' (a task id, a result CID, a peer id and a 64-byte signature each: under 300 bytes),
 * so under 5 KiB; 16 KiB refuses anything that is not a proof.
 */
export const LIE_PROOF_BYTES_MAX = 16 * 1024

/**
 * Most reputation records kept. A record is ~100 bytes; 100,000 is far more peers than one peer
 * sends work to, and the least recently updated are the ones worth least.
 */
export const REPUTATION_ROWS_MAX = 100_000

/** Longest id (task, run or peer id; a result CID) stored: ids are CIDs or peer ids, well under this. */
export const VERIFY_ID_CHARS_MAX = 256

/** Longest signature stored: the one limit every layer checks (src/model/limits.ts). */
export { SIGNATURE_BYTES_MAX }

export interface VerifyRepoOptions {
  /** Default ATTESTATION_ROWS_MAX; smaller in tests. */
  attestationRowsMax?: number
}

export function createVerifyRepo (db: Database, options: VerifyRepoOptions = {}): VerifyRepo {
  const attestationRowsMax = options.attestationRowsMax ?? ATTESTATION_ROWS_MAX
  if (!Number.isSafeInteger(attestationRowsMax) || attestationRowsMax < 1 || attestationRowsMax > ATTESTATION_ROWS_MAX) throw new InvalidInputError(`attestationRowsMax must be 1..${ATTESTATION_ROWS_MAX}`)
  const sql = prepare(db)
  return {
    loadReputation () {
      return (sql.loadReputation.all(REPUTATION_ROWS_MAX) as Array<Record<string, unknown>>).map(reputationOf)
    },
    saveReputation (record) {
      checkReputation(record)
      sql.saveReputation.run(record.peerId, record.agreements, record.disagreements, record.failures, record.lies, record.bannedUntilMs, record.updatedMs)
    },
    addProof (taskId, liar, proof, receivedMs) {
      checkId('taskId', taskId)
      checkId('liar', liar)
      checkTime('receivedMs', receivedMs)
      if (!(proof instanceof Uint8Array)) throw new InvalidInputError('proof must be bytes')
      if (proof.byteLength > LIE_PROOF_BYTES_MAX) throw new TooLargeError('lie proof', proof.byteLength, LIE_PROOF_BYTES_MAX)
      return Number(sql.addProof.run(taskId, liar, receivedMs, proof).changes) > 0
    },
    hasProof (taskId, liar) {
      return sql.getProof.get(taskId, liar) !== undefined
    },
    getProof (taskId, liar) {
      const row = sql.getProof.get(taskId, liar) as { proof: Uint8Array } | undefined
      return row === undefined ? undefined : new Uint8Array(row.proof)
    },
    addAttestations (taskId, runId, rows) {
      checkId('taskId', taskId)
      if (runId !== undefined) checkId('runId', runId)
      for (const row of rows) checkAttestation(row)
      return db.transaction(() => {
        let count = Number((sql.countAttestations.get(taskId) as { n: number }).n)
        let written = 0
        for (const row of rows) {
          const updated = Number(sql.updateAttestation.run(row.signature, row.role, runId ?? null, row.atMs, taskId, row.peerId, row.resultCid).changes)
          if (updated > 0) {
            written++
          } else if (count < ATTESTATIONS_PER_TASK_MAX) {
            sql.insertAttestation.run(taskId, row.peerId, row.resultCid, row.signature, row.role, runId ?? null, row.atMs)
            count++
            written++
          }
        }
        return written
      })
    },
    attestationsOf (taskId) {
      return (sql.attestationsOf.all(taskId, ATTESTATIONS_PER_TASK_MAX) as Array<Record<string, unknown>>).map(attestationOf)
    },
    prune (nowMs) {
      checkTime('nowMs', nowMs)
      return db.transaction(() => ({
        attestations: Number(sql.pruneAttestations.run(nowMs - ATTESTATION_RETENTION_MS).changes) + Number(sql.pruneAttestationsOver.run(attestationRowsMax - 1).changes),
        proofs: Number(sql.pruneProofs.run(nowMs - LIE_PROOF_RETENTION_MS).changes),
        reputation: Number(sql.pruneReputation.run(REPUTATION_ROWS_MAX).changes)
      }))
    }
  }
}

function prepare (db: Database): Record<string, StatementSync> {
  const s = db.sqlite
  return {
    loadReputation: s.prepare('SELECT * FROM reputation ORDER BY updated_ms DESC, peer_id ASC LIMIT ?'),
    saveReputation: s.prepare(`INSERT INTO reputation (peer_id, agreements, disagreements, failures, lies, banned_until_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (peer_id) DO UPDATE SET agreements = excluded.agreements, disagreements = excluded.disagreements, failures = excluded.failures,
        lies = excluded.lies, banned_until_ms = excluded.banned_until_ms, updated_ms = excluded.updated_ms`),
    addProof: s.prepare('INSERT INTO lie_proofs (task_id, liar, received_ms, proof) VALUES (?, ?, ?, ?) ON CONFLICT (task_id, liar) DO NOTHING'),
    getProof: s.prepare('SELECT proof FROM lie_proofs WHERE task_id = ? AND liar = ?'),
    countAttestations: s.prepare('SELECT count(*) AS n FROM task_attestations WHERE task_id = ?'),
    updateAttestation: s.prepare('UPDATE task_attestations SET signature = ?, role = ?, run_id = ?, at_ms = ? WHERE task_id = ? AND peer_id = ? AND result_cid = ?'),
    insertAttestation: s.prepare('INSERT INTO task_attestations (task_id, peer_id, result_cid, signature, role, run_id, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    attestationsOf: s.prepare('SELECT * FROM task_attestations WHERE task_id = ? ORDER BY at_ms ASC, peer_id ASC, result_cid ASC LIMIT ?'),
    pruneAttestations: s.prepare('DELETE FROM task_attestations WHERE at_ms < ?'),
    // Rows older than the newest ATTESTATION_ROWS_MAX, by the index on at_ms. Rows written in the
    // same ms as the last kept one stay too: a handful (one task's answers), not a way around the bound.
    pruneAttestationsOver: s.prepare(`DELETE FROM task_attestations WHERE at_ms < (
      SELECT at_ms FROM task_attestations ORDER BY at_ms DESC LIMIT 1 OFFSET ?)`),
    pruneProofs: s.prepare('DELETE FROM lie_proofs WHERE received_ms < ?'),
    pruneReputation: s.prepare(`DELETE FROM reputation WHERE peer_id IN (
      SELECT peer_id FROM reputation ORDER BY updated_ms DESC, peer_id ASC LIMIT -1 OFFSET ?)`)
  }
}

function checkId (field: string, value: unknown): void {
  if (typeof value !== 'string' || value.length === 0 || value.length > VERIFY_ID_CHARS_MAX) throw new InvalidInputError(`${field} must be a string of 1 to ${VERIFY_ID_CHARS_MAX} characters`)
}

function checkTime (field: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new InvalidInputError(`${field} must be a time in ms since the epoch, got ${String(value)}`)
}

function checkCount (field: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new InvalidInputError(`${field} must be a count (an integer ≥ 0), got ${String(value)}`)
}

function checkReputation (r: ReputationRow): void {
  checkId('peerId', r.peerId)
  checkCount('agreements', r.agreements)
  checkCount('disagreements', r.disagreements)
  checkCount('failures', r.failures)
  checkCount('lies', r.lies)
  checkTime('bannedUntilMs', r.bannedUntilMs)
  checkTime('updatedMs', r.updatedMs)
}

function checkAttestation (row: AttestationRow): void {
  checkId('peerId', row.peerId)
  checkId('resultCid', row.resultCid)
  checkTime('atMs', row.atMs)
  if (!ATTESTATION_ROLES.includes(row.role)) throw new InvalidInputError(`role must be one of ${ATTESTATION_ROLES.join(', ')}, got ${JSON.stringify(row.role)}`)
  if (!(row.signature instanceof Uint8Array) || row.signature.byteLength > SIGNATURE_BYTES_MAX) throw new InvalidInputError(`signature must be at most ${SIGNATURE_BYTES_MAX} bytes`)
}

function reputationOf (r: Record<string, unknown>): ReputationRow {
  return {
    peerId: r.peer_id as string,
    agreements: Number(r.agreements),
    disagreements: Number(r.disagreements),
    failures: Number(r.failures),
    lies: Number(r.lies),
    bannedUntilMs: Number(r.banned_until_ms),
    updatedMs: Number(r.updated_ms)
  }
}

function attestationOf (r: Record<string, unknown>): StoredAttestation {
  const row: StoredAttestation = {
    taskId: r.task_id as string,
    peerId: r.peer_id as string,
    resultCid: r.result_cid as string,
    signature: new Uint8Array(r.signature as Uint8Array),
    role: r.role as AttestationRole,
    atMs: Number(r.at_ms)
  }
  if (r.run_id !== null && r.run_id !== undefined) row.runId = r.run_id as string
  return row
}

/**
 * How long attestations and reputation changes wait before they are written: every task adds a
 * few rows, and a commit per task (each an fsync under `synchronous=FULL`) would cost more than
 * the task. Both are records, not what recovery reads — a crash loses at most this much of them —
 * so they go in one transaction per 20 ms at `synchronous=NORMAL` (as the run history does).
 */
export const VERIFY_FLUSH_MS = 20
/** Rows waiting past this are written at once, whatever the timer says (a burst of tasks). */
export const VERIFY_PENDING_ROWS_MAX = 4096

/** Batches a VerifyRepo's frequent writes (attestations, reputation records). */
export class VerifyWriter {
  private readonly db: Database
  private readonly repo: VerifyRepo
  private attestations: Array<{ taskId: string, runId: string | undefined, rows: AttestationRow[] }> = []
  private readonly records = new Map<string, ReputationRow>()
  private pending = 0
  private timer: ReturnType<typeof setTimeout> | undefined

  /** Told of a batch that could not be written (it is dropped: these are records, and a timer's
   *  callback that throws would take the peer down). */
  private readonly onError: (err: Error) => void

  constructor (db: Database, repo: VerifyRepo, onError: (err: Error) => void) {
    this.db = db
    this.repo = repo
    this.onError = onError
  }

  addAttestations (taskId: string, runId: string | undefined, rows: AttestationRow[]): void {
    this.attestations.push({ taskId, runId, rows })
    this.queued(rows.length)
  }

  saveReputation (record: ReputationRow): void {
    this.records.set(record.peerId, record)
    this.queued(1)
  }

  /** Write everything waiting (the timer, a full buffer, and the peer's stop). */
  flush (): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    if (this.pending === 0) return
    const attestations = this.attestations
    const records = [...this.records.values()]
    this.attestations = []
    this.records.clear()
    this.pending = 0
    try {
      withoutSync(this.db, () => {
        for (const a of attestations) this.repo.addAttestations(a.taskId, a.runId, a.rows)
        for (const r of records) this.repo.saveReputation(r)
      })
    } catch (err) {
      this.onError(err as Error)
    }
  }

  private queued (rows: number): void {
    this.pending += rows
    if (this.pending >= VERIFY_PENDING_ROWS_MAX) {
      this.flush()
      return
    }
    if (this.timer !== undefined) return
    this.timer = setTimeout(() => { this.flush() }, VERIFY_FLUSH_MS)
    this.timer.unref?.()
  }
}
