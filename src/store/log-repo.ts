/**
 * A peer's recent log records (`log_events`, schema 7), for `rhizome logs` and SQL over its
 * history. Written in batches by src/node/log-history.ts, which also decides when to prune;
 * this only keeps and reads rows. Time comes in as arguments.
 */
import type { Database } from './database.ts'
import { withoutSync } from './database.ts'

export type LogRecordLevel = 'debug' | 'info' | 'warn' | 'error'
export const LOG_RECORD_LEVELS: readonly LogRecordLevel[] = ['debug', 'info', 'warn', 'error']

export interface LogRow {
  /** Absent for a record not yet written (a live one). */
  id?: number
  atMs: number
  level: LogRecordLevel
  ns: string
  msg: string
  /** The record's fields as JSON text, if it had any. */
  fields?: string
}

export interface LogQuery {
  /** The least severe level answered (e.g. warn: warn and error). */
  level?: LogRecordLevel
  /** Only namespaces starting with this, e.g. `rhizome:tasks`. */
  ns?: string
  /** Only records at or after this time (ms since the epoch). */
  sinceMs?: number
  /** The newest `limit` matching records are answered, oldest first. */
  limit: number
}

export interface LogRepo {
  /** Append records and prune, in one commit without a disk sync (a log is not what recovery reads). */
  append: (records: readonly LogRow[], prune: { olderThanMs: number, rowsMax: number }) => void
  list: (query: LogQuery) => LogRow[]
  count: () => number
}

interface LogSqlRow { id: number, at_ms: number, level: string, ns: string, msg: string, fields: string | null }

export function createLogRepo (db: Database): LogRepo {
  const s = db.sqlite
  const insert = s.prepare('INSERT INTO log_events (at_ms, level, ns, msg, fields) VALUES (?, ?, ?, ?, ?)')
  const pruneOld = s.prepare('DELETE FROM log_events WHERE at_ms < ?')
  // Ids only grow (the newest row is never deleted), so the newest rowsMax rows are the last ids.
  const pruneOver = s.prepare('DELETE FROM log_events WHERE id <= (SELECT max(id) FROM log_events) - ?')
  const select = s.prepare(`SELECT * FROM log_events
    WHERE at_ms >= ? AND level IN (SELECT value FROM json_each(?)) AND substr(ns, 1, length(?)) = ?
    ORDER BY id DESC LIMIT ?`)
  const countRows = s.prepare('SELECT count(*) AS n FROM log_events')
  return {
    append (records, prune) {
      withoutSync(db, () => {
        for (const r of records) insert.run(r.atMs, r.level, r.ns, r.msg, r.fields ?? null)
        pruneOld.run(prune.olderThanMs)
        pruneOver.run(prune.rowsMax)
      })
    },
    list (query) {
      const least = LOG_RECORD_LEVELS.indexOf(query.level ?? 'debug')
      const ns = query.ns ?? ''
      const rows = select.all(query.sinceMs ?? 0, JSON.stringify(LOG_RECORD_LEVELS.slice(least)), ns, ns, query.limit) as unknown as LogSqlRow[]
      return rows.reverse().map(r => ({
        id: r.id, atMs: r.at_ms, level: r.level as LogRecordLevel, ns: r.ns, msg: r.msg, ...(r.fields === null ? {} : { fields: r.fields })
      }))
    },
    count: () => (countRows.get() as { n: number }).n
  }
}
