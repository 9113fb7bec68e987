/**
 * A peer's bounded log history: every record its logger writes (at the peer's log level) is
 * also kept in SQLite (`log_events`), written in batches, and pruned by row count and by age.
 * `rhizome logs` reads it (GET /v1/logs) and follows it live; `rhizome sql` reads the
 * `log_events` view.
 *
 * Records arrive before the database is open (the start's first lines): they wait in the
 * buffer until `open`. A failure to write is counted, never logged (that would log forever).
 */
import { RhizomeError } from '../model/errors.ts'
import type { TeedRecord } from './logger.ts'
import type { LogQuery, LogRepo, LogRow } from '../store/log-repo.ts'

/**
 * Records kept. A record is ~200 bytes, so 100,000 rows bound the table near 20 MB: days of a
 * busy peer's info-level log, and an hour or more at debug.
 */
export const LOG_ROWS_MAX = 100_000
/** Records older than this are deleted: a week covers "what happened since Friday". */
export const LOG_AGE_MS_MAX = 7 * 24 * 60 * 60 * 1000
/** How often waiting records are written: one commit per second however much is logged. */
export const LOG_FLUSH_MS = 1_000
/**
 * Records waiting to be written; past it new ones are counted as dropped (and still printed on
 * stderr). A second of even a debug-level log is far below 10,000 records.
 */
export const LOG_BUFFER_RECORDS_MAX = 10_000
/** A record's message, in characters: a message is a short sentence; details go in fields. */
export const LOG_MSG_CHARS_MAX = 1_024
/** A record's fields as JSON, in characters: an error message and its context fit. */
export const LOG_FIELDS_CHARS_MAX = 4_096
/**
 * Log streams followed at once (`rhizome logs --follow`): each costs a socket and a copy of every
 * record; the same bound as the peer's other event streams (PROGRESS_LISTENERS_MAX).
 */
export const LOG_FOLLOWERS_MAX = 64

/** LOG_FOLLOWERS_MAX log streams are open already. */
export class TooManyLogFollowersError extends RhizomeError {
  constructor () {
    super('ERR_PEER_BUSY', `${LOG_FOLLOWERS_MAX} log streams are already followed on this peer`, {
      retryable: true,
      hint: 'stop a `rhizome logs --follow` that is no longer needed, or read without --follow'
    })
    this.name = 'TooManyLogFollowersError'
  }
}

export interface LogHistoryOptions {
  /** Default LOG_ROWS_MAX; tests pass a small one. */
  rowsMax?: number
  /** Default LOG_AGE_MS_MAX. */
  ageMsMax?: number
  now?: () => number
}

export class LogHistory {
  private repo: LogRepo | undefined
  private buffer: LogRow[] = []
  private timer: ReturnType<typeof setTimeout> | undefined
  private readonly listeners = new Set<(record: LogRow) => void>()
  private readonly rowsMax: number
  private readonly ageMsMax: number
  private readonly now: () => number
  /** Records not kept because the buffer was full. */
  dropped = 0
  /** Batches that could not be written (the disk, or the database closing). */
  writeFailures = 0

  constructor (options: LogHistoryOptions = {}) {
    this.rowsMax = options.rowsMax ?? LOG_ROWS_MAX
    this.ageMsMax = options.ageMsMax ?? LOG_AGE_MS_MAX
    this.now = options.now ?? Date.now
  }

  /** The tee's sink (src/node/logger.ts teeLogger). */
  add (record: TeedRecord): void {
    const row: LogRow = { atMs: record.atMs, level: record.level, ns: record.ns, msg: record.msg, ...(record.fields === undefined ? {} : { fields: record.fields }) }
    for (const listener of this.listeners) {
      // A follower that fails (its socket gone) must not fail the code that logged.
      try { listener(row) } catch {}
    }
    if (this.buffer.length >= LOG_BUFFER_RECORDS_MAX) {
      this.dropped++
      return
    }
    this.buffer.push(row)
    if (this.repo !== undefined && this.timer === undefined) {
      this.timer = setTimeout(() => { this.timer = undefined; this.flush() }, LOG_FLUSH_MS)
      this.timer.unref()
    }
  }

  /** Start writing to `repo` (the database is open); what waited is written now. */
  open (repo: LogRepo): void {
    this.repo = repo
    this.flush()
  }

  /** Write what waits, and prune. */
  flush (): void {
    if (this.repo === undefined || this.buffer.length === 0) return
    const batch = this.buffer
    this.buffer = []
    try {
      this.repo.append(batch, { olderThanMs: this.now() - this.ageMsMax, rowsMax: this.rowsMax })
    } catch {
      this.writeFailures++
    }
  }

  /** Stored records matching `query` (what waits is written first). */
  list (query: LogQuery): LogRow[] {
    this.flush()
    return this.repo?.list(query) ?? []
  }

  /** Every record from now on, as it is logged (not yet stored: no id). TooManyLogFollowersError past LOG_FOLLOWERS_MAX. */
  subscribe (listener: (record: LogRow) => void): () => void {
    if (this.listeners.size >= LOG_FOLLOWERS_MAX) throw new TooManyLogFollowersError()
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  /** Write what waits and stop writing (before the database closes). */
  close (): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.flush()
    this.repo = undefined
    this.listeners.clear()
  }
}
