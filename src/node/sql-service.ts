/**
 * Runs `rhizome sql` queries for the peer's API (POST /v1/sql): each in a child process of its
 * own (src/node/sql-child.ts) over a read-only connection to the peer's database, never on the
 * peer's event loop and never on its writing connection. At the time limit the child is killed
 * (SIGKILL): that is the interrupt, since node:sqlite has none and a thread inside SQLite cannot
 * be stopped. Starting a process costs tens of milliseconds, which a query typed by a person
 * does not notice, and buys a stop that always works and memory returned to the system at exit.
 */
import { fork } from 'node:child_process'
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { InvalidInputError, RhizomeError, TooLargeError, failureFromData } from '../model/errors.ts'
import type { FailureData } from '../model/errors.ts'
import {
  SQL_RESULT_BYTES_MAX, SQL_ROWS_DEFAULT, SQL_ROWS_MAX, SQL_TEXT_BYTES_MAX, SQL_TIMEOUT_MS_DEFAULT, SQL_TIMEOUT_MS_MAX
} from '../api/limits.ts'
import type { SqlAnswer } from '../store/sql-query.ts'
import type { ChildProcess } from 'node:child_process'

/**
 * Queries one peer runs at once. Each is a process bounded in time (its timeoutMs, then it is
 * killed) and in the size of any one value (SQL_VALUE_BYTES_MAX), using up to a core's worth of
 * CPU; two let one operator's long query not block another's quick one, while a script looping on
 * `rhizome sql` cannot take every core from the peer.
 */
export const SQL_QUERIES_CONCURRENT_MAX = 2
/** What a child may print on stderr that is kept for the log (a crash's stack). */
const CHILD_STDERR_CHARS_MAX = 4_096

const CHILD = fileURLToPath(new URL(`./sql-child${extname(import.meta.url)}`, import.meta.url))

export interface SqlChildRequest { dbPath: string, sql: string, rowsMax: number, resultBytesMax: number }
export type SqlChildReply = { ok: true, answer: SqlAnswer } | { ok: false, error: FailureData }

export interface SqlRequest { sql: string, maxRows: number, timeoutMs: number }

/** The query ran past its time limit and was stopped. */
export class SqlTimeoutError extends RhizomeError {
  constructor (timeoutMs: number) {
    super('ERR_SQL_TIMEOUT', `the query ran longer than ${timeoutMs} ms and was stopped`, {
      hint: `narrow it (WHERE on an indexed column such as started_ms or at_ms, LIMIT), or pass a longer --timeout-ms (at most ${SQL_TIMEOUT_MS_MAX})`
    })
    this.name = 'SqlTimeoutError'
  }
}

/** The peer already runs SQL_QUERIES_CONCURRENT_MAX queries. */
export class SqlBusyError extends RhizomeError {
  constructor () {
    super('ERR_SQL_BUSY', `this peer already runs ${SQL_QUERIES_CONCURRENT_MAX} queries`, { retryable: true, hint: 'retry when one of them has answered' })
    this.name = 'SqlBusyError'
  }
}

/** Check a POST /v1/sql body: `{ sql, maxRows?, timeoutMs? }`, defaults filled in. */
export function parseSqlRequest (body: Record<string, unknown>): SqlRequest {
  const hint = 'send JSON { "sql": "select …", "maxRows"?: N, "timeoutMs"?: N }; `rhizome sql` builds it'
  if (typeof body.sql !== 'string' || body.sql.trim() === '') throw new InvalidInputError('sql must be a non-empty string', { hint })
  const bytes = Buffer.byteLength(body.sql)
  if (bytes > SQL_TEXT_BYTES_MAX) throw new TooLargeError('the query\'s text', bytes, SQL_TEXT_BYTES_MAX, { hint: 'shorten the query' })
  return {
    sql: body.sql,
    maxRows: integerIn(body.maxRows, 'maxRows', SQL_ROWS_MAX, SQL_ROWS_DEFAULT),
    timeoutMs: integerIn(body.timeoutMs, 'timeoutMs', SQL_TIMEOUT_MS_MAX, SQL_TIMEOUT_MS_DEFAULT)
  }
}

function integerIn (value: unknown, name: string, max: number, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new InvalidInputError(`${name} must be an integer from 1 to ${max}`, { hint: `leave it out for the default (${fallback})` })
  }
  return value
}

export class SqlService {
  private readonly dbPath: string
  private readonly running = new Set<ChildProcess>()
  /** The processes of the queries running now. */
  get pids (): Set<number> {
    return new Set([...this.running].map(c => c.pid).filter((pid): pid is number => pid !== undefined))
  }

  constructor (dbPath: string) {
    this.dbPath = dbPath
  }

  /** Answer one query in a child process; `signal` (the client went away) kills it early. */
  async query (request: SqlRequest, signal?: AbortSignal): Promise<SqlAnswer> {
    if (this.running.size >= SQL_QUERIES_CONCURRENT_MAX) throw new SqlBusyError()
    // No inherited flags (--cpu-prof, --inspect): the child needs none and must not clash on a port.
    const child = fork(CHILD, [], { execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' })
    this.running.add(child)
    let stderr = ''
    child.stderr?.on('data', (chunk: Buffer) => { if (stderr.length < CHILD_STDERR_CHARS_MAX) stderr += chunk.toString() })
    try {
      return await new Promise<SqlAnswer>((resolve, reject) => {
        let settled = false
        const settle = (fn: () => void): void => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          signal?.removeEventListener('abort', onAbort)
          child.kill('SIGKILL')
          fn()
        }
        const timer = setTimeout(() => { settle(() => reject(new SqlTimeoutError(request.timeoutMs))) }, request.timeoutMs)
        const onAbort = (): void => { settle(() => reject(new RhizomeError('ERR_ABORTED', 'the query was cancelled', { hint: 'the client went away' }))) }
        signal?.addEventListener('abort', onAbort, { once: true })
        if (signal?.aborted === true) onAbort()
        child.once('message', (reply: SqlChildReply) => {
          settle(() => { if (reply.ok) resolve(reply.answer); else reject(failureFromData(reply.error)) })
        })
        child.once('error', (err) => { settle(() => reject(childFailure(err.message))) })
        child.once('exit', (code, sig) => { settle(() => reject(childFailure(`it exited (${sig ?? code}) without answering${stderr === '' ? '' : `: ${stderr.trim()}`}`))) })
        const message: SqlChildRequest = { dbPath: this.dbPath, sql: request.sql, rowsMax: request.maxRows, resultBytesMax: SQL_RESULT_BYTES_MAX }
        child.send(message)
      })
    } finally {
      this.running.delete(child)
    }
  }

  /** Stop every query still running (the peer is stopping). */
  close (): void {
    for (const child of this.running) child.kill('SIGKILL')
    this.running.clear()
  }
}

function childFailure (what: string): RhizomeError {
  return new RhizomeError('ERR_INTERNAL', `the process running the query failed: ${what}`, { hint: 'see the peer\'s log; retry the query' })
}
