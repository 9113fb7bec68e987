/**
 * SQL over a peer's history (`rhizome sql`): one read-only query over the views of schema 7
 * (src/store/database.ts, `sql_*`), answered as columns and rows of plain JSON values.
 *
 * This runs in a child process of the peer (src/node/sql-child.ts), never on the peer's event
 * loop: node:sqlite has no interrupt call, so the only way to stop a query at its time limit is
 * to kill the process running it (src/node/sql-service.ts). What keeps a query from changing
 * anything, three times over:
 *  1. the connection is opened read-only (SQLITE_OPEN_READONLY): SQLite itself refuses writes
 *     to the peer's file ("attempt to write a readonly database");
 *  2. `PRAGMA query_only = ON`: no write to any schema, the temporary one included;
 *  3. an authorizer (sqlite3_set_authorizer), consulted by SQLite while it compiles the
 *     statement, allows only reading: SELECT, reads of the views, functions, recursive CTEs and
 *     pragmas that read the schema. What it refuses is named by what SQLite says the statement
 *     does (the action code), not by matching words in the text.
 * The views are the contract, not the tables: the connection defines a temporary view named
 * `runs`, `tasks`, … over each `sql_*` view (temporary objects are found before the main
 * schema's, so `runs` is the view, not the table), and the authorizer refuses reading a table
 * of the main schema other than through a view.
 */
import { DatabaseSync, constants } from 'node:sqlite'
import { RhizomeError, TooLargeError } from '../model/errors.ts'
import { SQL_RESULT_BYTES_MAX, SQL_TEXT_BYTES_MAX } from '../api/limits.ts'

/** The views `rhizome sql` answers from, by the names queries use (README has their columns). */
export const SQL_VIEWS = ['runs', 'tasks', 'attempts', 'attestations', 'peers', 'peer_events', 'functions', 'blobs', 'log_events'] as const

/**
 * The largest string or BLOB a query may make or read (SQLITE_LIMIT_LENGTH): no cell can be
 * larger than the whole answer may be (SQL_RESULT_BYTES_MAX), and it keeps `randomblob(1e9)` or
 * a runaway group_concat from taking a gigabyte. (`PRAGMA hard_heap_limit` would bound all of
 * SQLite's memory, but Node builds SQLite with SQLITE_DEFAULT_MEMSTATUS=0, which turns it off;
 * sorts and GROUP BY spill to temporary files past the page cache, so rows do not pile up in memory.)
 */
export const SQL_VALUE_BYTES_MAX = SQL_RESULT_BYTES_MAX

/** How long a query waits for the peer's write lock: never, in practice (WAL readers do not block). */
const SQL_BUSY_TIMEOUT_MS = 1_000

const VIEWS_HINT = `query the views ${SQL_VIEWS.join(', ')} (README, "SQL over a peer's history")`

/** Pragmas that only read the schema; every other pragma can change a setting and is refused. */
const READ_PRAGMAS = new Set(['table_info', 'table_xinfo', 'table_list', 'index_list', 'index_info', 'index_xinfo',
  'foreign_key_list', 'function_list', 'collation_list', 'pragma_list', 'compile_options'])

/** The query writes, or would change a setting. */
export class SqlReadOnlyError extends RhizomeError {
  constructor (what: string) {
    super('ERR_SQL_READ_ONLY', `the query is refused: ${what}; SQL over a peer's history only reads`, {
      hint: `write a SELECT (or WITH … SELECT); ${VIEWS_HINT}`
    })
    this.name = 'SqlReadOnlyError'
  }
}

/** ATTACH or DETACH: a query reads this peer's history, never another database file. */
export class SqlAttachRefusedError extends RhizomeError {
  constructor (target: string) {
    super('ERR_SQL_ATTACH_REFUSED', `ATTACH and DETACH are refused (${JSON.stringify(target)}): a query reads this peer's history only`, {
      hint: VIEWS_HINT
    })
    this.name = 'SqlAttachRefusedError'
  }
}

/** SQLite could not compile or run the query; `message` is SQLite's own. */
export class SqlInvalidError extends RhizomeError {
  constructor (message: string, hint = VIEWS_HINT) {
    super('ERR_SQL_INVALID', message, { hint })
    this.name = 'SqlInvalidError'
  }
}

/** The query answers more rows than it may. */
export class SqlTooManyRowsError extends RhizomeError {
  constructor (rowsMax: number) {
    super('ERR_SQL_TOO_MANY_ROWS', `the query answers more than ${rowsMax} rows`, {
      hint: 'add a LIMIT or a narrower WHERE, aggregate (count, GROUP BY), or raise --max-rows (at most 100,000)'
    })
    this.name = 'SqlTooManyRowsError'
  }
}

export interface SqlAnswer {
  columns: string[]
  /** One array per row, in column order: null, number, string, or a dag-json `{ "/": { bytes } }` for a BLOB. */
  rows: unknown[][]
  /** Always false: a query past its row cap is an error (ERR_SQL_TOO_MANY_ROWS), never cut short silently. */
  truncated: false
}

export interface SqlQueryLimits {
  rowsMax: number
  resultBytesMax: number
}

/** Open `dbPath` read-only and answer `sql` (one statement). Synchronous: run it off the peer's event loop. */
export function runReadOnlyQuery (dbPath: string, sql: string, limits: SqlQueryLimits): SqlAnswer {
  // attach 0: SQLite itself refuses ATTACH too, whatever the authorizer says.
  const db = new DatabaseSync(dbPath, { readOnly: true, timeout: SQL_BUSY_TIMEOUT_MS, limits: { length: SQL_VALUE_BYTES_MAX, sqlLength: SQL_TEXT_BYTES_MAX, attach: 0 } })
  try {
    for (const view of SQL_VIEWS) db.exec(`CREATE TEMP VIEW ${view} AS SELECT * FROM main.sql_${view}`)
    const tables = new Set((db.prepare("SELECT name FROM main.sqlite_schema WHERE type = 'table'").all() as Array<{ name: string }>).map(r => r.name))
    db.exec('PRAGMA query_only = ON')
    const refusal: { error?: RhizomeError } = {}
    db.setAuthorizer((action, arg1, arg2, dbName, view) => {
      const error = authorize(action, arg1, arg2, dbName, view, tables)
      if (error === undefined) return constants.SQLITE_OK
      // The statement is named by the gravest thing it does: a write that also reads a raw
      // table is a write.
      if (refusal.error === undefined || GRAVITY[error.code] > GRAVITY[refusal.error.code]) refusal.error = error
      return constants.SQLITE_DENY
    })
    return answer(db, sql, limits, refusal)
  } finally {
    db.close()
  }
}

function answer (db: DatabaseSync, sql: string, limits: SqlQueryLimits, refusal: { error?: RhizomeError }): SqlAnswer {
  let statement
  try {
    statement = db.prepare(sql)
  } catch (err) {
    throw refusal.error ?? sqliteFailure(err)
  }
  if (refusal.error !== undefined) throw refusal.error
  const rest = sql.slice(statement.sourceSQL.length)
  if (stripComments(rest).replace(/[\s;]+/g, '') !== '') {
    throw new SqlInvalidError('the text holds more than one statement', 'send one SELECT per query')
  }
  statement.setReturnArrays(true)
  statement.setReadBigInts(true)
  const columns = statement.columns().map(c => c.name)
  const rows: unknown[][] = []
  let bytes = 2
  try {
    for (const raw of statement.iterate() as Iterable<unknown[]>) {
      if (rows.length === limits.rowsMax) throw new SqlTooManyRowsError(limits.rowsMax)
      const row = raw.map(plainValue)
      bytes += JSON.stringify(row).length + 1
      if (bytes > limits.resultBytesMax) {
        throw new TooLargeError('the query\'s answer', bytes, limits.resultBytesMax, { hint: 'select fewer columns or rows (LIMIT), or aggregate' })
      }
      rows.push(row)
    }
  } catch (err) {
    if (err instanceof RhizomeError) throw err
    throw refusal.error ?? sqliteFailure(err)
  }
  return { columns, rows, truncated: false }
}

const GRAVITY: Record<string, number> = { ERR_SQL_INVALID: 1, ERR_SQL_READ_ONLY: 2, ERR_SQL_ATTACH_REFUSED: 3 }

/** SQLite's verdict on one action of the statement being compiled: undefined allows it. */
function authorize (action: number, arg1: string | null, arg2: string | null, dbName: string | null, view: string | null, tables: Set<string>): RhizomeError | undefined {
  switch (action) {
    case constants.SQLITE_SELECT:
    case constants.SQLITE_FUNCTION:
    case constants.SQLITE_RECURSIVE:
      return undefined
    case constants.SQLITE_READ:
      // Through a view (`view` names it), a temporary view itself, a CTE or a table-valued
      // function: fine. No column (arg2 ''): count(*) over a view, which SQLite answers from the
      // table's b-tree without reading a row. A table of the main schema named directly: not the contract.
      if (view !== null || dbName !== 'main' || arg1 === null || arg2 === '' || !tables.has(arg1)) return undefined
      return new SqlInvalidError(`table ${arg1} is not part of SQL over a peer's history: its views are`)
    case constants.SQLITE_PRAGMA:
      if (arg1 !== null && READ_PRAGMAS.has(arg1.toLowerCase())) return undefined
      return new SqlReadOnlyError(`PRAGMA ${arg1 ?? ''}${arg2 === null ? '' : ` = ${arg2}`} is not one that only reads the schema (${[...READ_PRAGMAS].join(', ')})`)
    case constants.SQLITE_ATTACH:
      // VACUUM starts by attaching a new, nameless database: it rewrites the file.
      if (arg1 === '') return new SqlReadOnlyError('VACUUM rewrites the database')
      return new SqlAttachRefusedError(arg1 ?? '')
    case constants.SQLITE_DETACH:
      return new SqlAttachRefusedError(arg1 ?? '')
    default:
      return new SqlReadOnlyError(`${ACTION_NAMES.get(action) ?? `action ${action}`}${arg1 === null ? '' : ` on ${arg1}`} is not a read`)
  }
}

/** "INSERT", "DROP_TABLE", … for the message of a refusal. */
const ACTION_NAMES = new Map(Object.entries(constants)
  .filter(([name]) => name.startsWith('SQLITE_') && !name.startsWith('SQLITE_CHANGESET'))
  .map(([name, code]) => [code, name.slice('SQLITE_'.length).replaceAll('_', ' ')]))

/** SQLite error codes (sqlite.org/rescode.html) the query's author can act on differently. */
const SQLITE_READONLY = 8
const SQLITE_NOMEM = 7
const SQLITE_TOOBIG = 18

/** SQLite's own refusals of a write to a view, made while compiling, before it asks the authorizer. */
const VIEW_WRITE_REFUSALS = [/^cannot modify \S+ because it is a view$/, /^views may not be indexed$/, /^cannot create \w+ trigger on view: /]

function sqliteFailure (err: unknown): RhizomeError {
  const e = err as { errcode?: number, message?: string }
  const message = e.message ?? String(err)
  if (((e.errcode ?? 0) & 0xff) === SQLITE_READONLY || VIEW_WRITE_REFUSALS.some(pattern => pattern.test(message))) return new SqlReadOnlyError(message)
  if (((e.errcode ?? 0) & 0xff) === SQLITE_TOOBIG) {
    return new SqlInvalidError(`${message}: a string or BLOB the query makes or reads is over ${SQL_VALUE_BYTES_MAX} bytes`, 'select less of it, e.g. substr(x, 1, 1000) or length(x)')
  }
  if (((e.errcode ?? 0) & 0xff) === SQLITE_NOMEM) return new SqlInvalidError(`${message}: the query needs more memory than this machine gives it`, 'narrow the query (WHERE, LIMIT) or aggregate less at once')
  return new SqlInvalidError(message)
}

/** A column value as JSON: integers past 2^53 as decimal strings, BLOBs as dag-json bytes. */
function plainValue (value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString()
  }
  if (value instanceof Uint8Array) return { '/': { bytes: Buffer.from(value).toString('base64').replace(/=+$/, '') } }
  return value
}

/** The text with its SQL comments removed (only to tell whether anything but comments follows a statement). */
function stripComments (text: string): string {
  return text.replace(/--[^\n]*/g, '').replace(/\/\*[\s\S]*?(\*\/|$)/g, '')
}
