/**
 * The functions a peer holds: an index over the manifest and code blobs, so `rhizome functions`
 * can list them and `rhizome call NAME` can find one by name. The blobs are the truth; a row is
 * only written once both are stored.
 */
import { InvalidInputError } from '../model/errors.ts'
import type { Database } from './database.ts'

/** A listing is for people and the CLI; 10,000 rows bounds one answer. */
export const functionListLengthMax = 10_000

export type FunctionOrigin = 'deploy' | 'replica' | 'fetched'

export interface FunctionRow {
  cid: string
  name: string
  kind: string
  codeCid: string
  codeBytes: number
  exports: string[]
  addedMs: number
  origin: FunctionOrigin
}

export interface FunctionRepo {
  /** Insert or keep: the first time a peer got a function is what it remembers. */
  add: (row: FunctionRow) => boolean
  get: (cid: string) => FunctionRow | undefined
  /** The most recently added function with this name. */
  byName: (name: string) => FunctionRow | undefined
  list: (options?: { limit?: number }) => FunctionRow[]
}

interface SqlRow {
  cid: string
  name: string
  kind: string
  code_cid: string
  code_bytes: number
  exports: string
  added_ms: number
  origin: string
}

function fromSql (row: SqlRow): FunctionRow {
  return {
    cid: row.cid,
    name: row.name,
    kind: row.kind,
    codeCid: row.code_cid,
    codeBytes: row.code_bytes,
    exports: JSON.parse(row.exports) as string[],
    addedMs: row.added_ms,
    origin: row.origin as FunctionOrigin
  }
}

export function createFunctionRepo (db: Database): FunctionRepo {
  const insert = db.sqlite.prepare(`INSERT INTO functions (cid, name, kind, code_cid, code_bytes, exports, added_ms, origin)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (cid) DO NOTHING`)
  const getOne = db.sqlite.prepare('SELECT * FROM functions WHERE cid = ?')
  const getByName = db.sqlite.prepare('SELECT * FROM functions WHERE name = ? ORDER BY added_ms DESC LIMIT 1')
  const listAll = db.sqlite.prepare('SELECT * FROM functions ORDER BY added_ms DESC LIMIT ?')
  return {
    add (row) {
      const result = insert.run(row.cid, row.name, row.kind, row.codeCid, row.codeBytes, JSON.stringify(row.exports), row.addedMs, row.origin)
      return Number(result.changes) > 0
    },
    get (cid) {
      const row = getOne.get(cid) as SqlRow | undefined
      return row === undefined ? undefined : fromSql(row)
    },
    byName (name) {
      const row = getByName.get(name) as SqlRow | undefined
      return row === undefined ? undefined : fromSql(row)
    },
    list (options = {}) {
      const limit = options.limit ?? 1000
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > functionListLengthMax) {
        throw new InvalidInputError(`limit must be an integer from 1 to ${functionListLengthMax}`)
      }
      return (listAll.all(limit) as unknown as SqlRow[]).map(fromSql)
    }
  }
}
