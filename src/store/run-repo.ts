/**
 * Workflow runs a peer drives: the run itself (what was started, how it ended), one row per
 * distinct task (which peer ran it, when), the memo (task id → accepted result: what a restarted
 * peer resumes from), and the run's progress events (what `run-status` and the dashboard replay).
 *
 * The run driver (src/protocol/run/) decides; this only keeps what it decided. Time comes in as
 * arguments, never from a clock read here.
 */
import { InvalidInputError, NotFoundError, TooLargeError } from '../model/errors.ts'
import type { FailureData } from '../model/errors.ts'
import { withoutSync } from './database.ts'
import { RUN_EVENT_DEPS_MAX } from '../api/events.ts'
import type { Database } from './database.ts'

/** `listRuns` answers at most this many rows: a listing is for people and the CLI (as functions). */
export const runListLengthMax = 10_000
/** The default `listRuns` limit: a screenful of recent runs, not the whole history. */
export const runListLengthDefault = 100
/** `listTasks` answers at most this many rows. A run has at most the driver's memoEntriesMax
 *  distinct tasks (10,000 by default); ten times that covers a run configured larger. */
export const runTaskListLengthMax = 100_000
/** A task's row keeps at most this many of its dependencies (the last delivered), as the
 *  `run:task:scheduled` event names them: the dashboard draws the same edges whether it followed
 *  the run or opened it after it ended, and a fan-in of hundreds adds a few hundred bytes per row,
 *  not tens of kilobytes. The row keeps the full count beside them. */
export const runTaskDepsKeptMax = RUN_EVENT_DEPS_MAX
/** `listMemo` answers at most this many rows: a restart reads a memo whole, and the driver allows
 *  at most 1,000,000 entries (RUN_COUNT_LIMIT in src/protocol/run/constants.ts). */
export const runMemoListLengthMax = 1_000_000
/**
 * Events kept per run; `appendEvent` past it keeps nothing and answers undefined. A run issues a
 * few events per call (scheduled, accepted, reused) and per activation: ~60,000 for a run at the
 * driver's 10,000-call limit. Past 100,000 (a run replayed many times after evictions) the detail
 * stops but the run's status and result in `runs` stay true. Also what `listEvents` answers at most.
 */
export const runEventsPerRunMax = 100_000
/** One event's JSON. The largest the driver emits is an activation listing 10,000 seqs (~60 KB). */
export const runEventJsonCharsMax = 256 * 1024
/** A run's arguments as stored: the same bound as a task's arguments (TASK_ARGS_BYTES_MAX). */
export const runArgsBytesMax = 1024 * 1024
/** Inline result bytes kept in `runs` and `run_memo`: the same bound as a task result travelling
 *  inline (RESULT_INLINE_BYTES_MAX); larger results are kept by CID only, in the blob store. */
export const runInlineBytesMax = 256 * 1024

/** 'continued': the run ended with continueAsNew; its `run:continued` event names the next run. */
export type RunRowStatus = 'created' | 'running' | 'finished' | 'continued' | 'failed' | 'cancelled'
export type RunTaskStatus = 'scheduled' | 'running' | 'accepted' | 'failed' | 'cancelled'

const RUN_STATUSES: readonly RunRowStatus[] = ['created', 'running', 'finished', 'continued', 'failed', 'cancelled']
const TASK_STATUSES: readonly RunTaskStatus[] = ['scheduled', 'running', 'accepted', 'failed', 'cancelled']

export interface RunStart {
  runId: string
  workflow: string
  export: string
  args: Uint8Array
  parentRunId?: string
  status: RunRowStatus
  startedMs: number
  driverPeer: string
}

export interface RunEnd {
  status: 'finished' | 'continued' | 'failed' | 'cancelled'
  finishedMs: number
  resultCid?: string
  /** Inline dag-cbor of the result, at most runInlineBytesMax. */
  result?: Uint8Array
  error?: FailureData
}

export interface RunRow extends RunStart {
  finishedMs?: number
  resultCid?: string
  result?: Uint8Array
  error?: FailureData
}

export interface RunTaskRow {
  runId: string
  taskId: string
  fn: string
  export: string
  /** The peer it was dispatched to (the last attempt's). */
  peer?: string
  attempt: number
  status: RunTaskStatus
  error?: FailureData
  queuedMs: number
  startedMs?: number
  finishedMs?: number
  /** The tasks whose results the run's code had received when it asked for this one. Written: all
   *  of them (the row keeps the last runTaskDepsKeptMax; a write without them keeps what the row
   *  has). Read: the kept ones; absent for rows written before dependencies were kept. */
  deps?: string[]
  /** Read: how many dependencies the task had, when more than `deps` holds. Written: the full
   *  count, when `deps` holds only some of them. */
  depsCount?: number
}

export interface RunMemoRow {
  runId: string
  taskId: string
  resultCid: string
  peer: string
  /** At most runInlineBytesMax; absent when the result lives in the blob store only. */
  bytes?: Uint8Array
}

export interface RunEventRow {
  runId: string
  seq: number
  type: string
  atMs: number
  /** The event as stored (parsed JSON). */
  data: unknown
}

export interface RunRepo {
  /** Run `fn` (calls of this repo) in one transaction: one disk sync for all of them. */
  batch<T>(fn: () => T): T
  /**
   * Like `batch`, but committed with synchronous=NORMAL: no disk sync. For the run's history
   * (tasks, events, the local memo table) written behind by the run service — a record for people
   * and the dashboard, not what recovery reads. In WAL mode such a commit survives a crash of the
   * process; only a power loss or OS crash may roll back the last ones (SQLite, pragma.html
   * #pragma_synchronous). That is safe only because what makes a durable run durable — the home
   * set's memo replica (home_memo, src/store/home-repo.ts) and the lease promise — is still
   * committed with synchronous=FULL on the same connection: a FULL commit syncs the WAL up to its
   * own frames, so it also hardens every NORMAL commit before it, and a lost NORMAL commit can
   * never take a FULL one with it. Never write home_memo inside this.
   */
  batchHistory<T>(fn: () => T): T
  /** Insert a run; false (and nothing changes) if its id is already known. */
  createRun (run: RunStart): boolean
  /** Move a run to `status` (e.g. created → running). NotFoundError if unknown. */
  setRunStatus (runId: string, status: RunRowStatus): void
  /** A durable run's new driver (after a takeover). NotFoundError if unknown. */
  setRunDriver (runId: string, peer: string): void
  /** Record how a run ended. NotFoundError if unknown. */
  finishRun (runId: string, end: RunEnd): void
  getRun (runId: string): RunRow | undefined
  /** Newest first; `status` filters. Default limit runListLengthDefault, at most runListLengthMax. */
  listRuns (options?: { limit?: number, status?: RunRowStatus }): RunRow[]
  /** Insert or replace the row of one task of a run (its run must exist). */
  upsertTask (task: RunTaskRow): void
  /** In queue order. Default and maximum limit runTaskListLengthMax. */
  listTasks (runId: string, options?: { limit?: number }): RunTaskRow[]
  /** Add an accepted result; false if the id is already in the memo (grow-only: the first stays). */
  addMemo (entry: RunMemoRow): boolean
  /** In the order added. Default and maximum limit runMemoListLengthMax. */
  listMemo (runId: string, options?: { limit?: number }): RunMemoRow[]
  /** Append an event with the next seq of its run (from 1) and return it; undefined when the run
   *  already holds `eventsPerRunMax` events. */
  appendEvent (runId: string, type: string, atMs: number, data: unknown): number | undefined
  /** Oldest first, those with seq > `afterSeq` (default 0). Default and maximum limit `eventsPerRunMax`. */
  listEvents (runId: string, options?: { limit?: number, afterSeq?: number }): RunEventRow[]
  /** Delete a run with its tasks, memo and events. False if unknown. */
  deleteRun (runId: string): boolean
  /** How many runs are in each status (one pass over the status index; for the peer's metrics). */
  countByStatus (): Record<string, number>
}

interface RunSqlRow {
  run_id: string
  workflow: string
  export: string
  args: Uint8Array
  parent_run_id: string | null
  status: string
  result_cid: string | null
  result: Uint8Array | null
  error: string | null
  started_ms: number
  finished_ms: number | null
  driver_peer: string
}

interface TaskSqlRow {
  run_id: string
  task_id: string
  fn: string
  export: string
  peer: string | null
  attempt: number
  status: string
  error: string | null
  queued_ms: number
  started_ms: number | null
  finished_ms: number | null
  deps: string | null
  deps_count: number | null
}

interface MemoSqlRow { run_id: string, task_id: string, result_cid: string, peer: string, inline: Uint8Array | null }
interface EventSqlRow { run_id: string, seq: number, type: string, json: string, at_ms: number }

export interface RunRepoOptions {
  /** Default `runEventsPerRunMax`; tests pass a small one. */
  eventsPerRunMax?: number
}

export function createRunRepo (db: Database, options: RunRepoOptions = {}): RunRepo {
  const eventsPerRunMax = options.eventsPerRunMax ?? runEventsPerRunMax
  if (!Number.isSafeInteger(eventsPerRunMax) || eventsPerRunMax < 1 || eventsPerRunMax > runEventsPerRunMax) {
    throw new InvalidInputError(`eventsPerRunMax must be an integer from 1 to ${runEventsPerRunMax}, got ${eventsPerRunMax}`)
  }
  const st = prepareRunStatements(db.sqlite)
  return { batch: fn => db.transaction(fn), batchHistory: fn => withoutSync(db, fn), ...runMethods(st), ...taskAndMemoMethods(st), ...eventMethods(db, st, eventsPerRunMax) }
}

/** Every statement the run repo uses, prepared once per database. */
function prepareRunStatements (sqlite: Database['sqlite']) {
  const insertRun = sqlite.prepare(`INSERT INTO runs (run_id, workflow, export, args, parent_run_id, status, started_ms, driver_peer)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO NOTHING`)
  const updateStatus = sqlite.prepare('UPDATE runs SET status = ? WHERE run_id = ?')
  const updateDriver = sqlite.prepare('UPDATE runs SET driver_peer = ? WHERE run_id = ?')
  const updateEnd = sqlite.prepare('UPDATE runs SET status = ?, finished_ms = ?, result_cid = ?, result = ?, error = ? WHERE run_id = ?')
  const selectRun = sqlite.prepare('SELECT * FROM runs WHERE run_id = ?')
  const selectRuns = sqlite.prepare('SELECT * FROM runs ORDER BY started_ms DESC, run_id ASC LIMIT ?')
  const selectRunsByStatus = sqlite.prepare('SELECT * FROM runs WHERE status = ? ORDER BY started_ms DESC, run_id ASC LIMIT ?')
  const upsertTaskRow = sqlite.prepare(`INSERT INTO run_tasks (run_id, task_id, fn, export, peer, attempt, status, error, queued_ms, started_ms, finished_ms, deps, deps_count)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (run_id, task_id) DO UPDATE SET fn = excluded.fn, export = excluded.export, peer = excluded.peer,
      attempt = excluded.attempt, status = excluded.status, error = excluded.error, queued_ms = excluded.queued_ms,
      started_ms = excluded.started_ms, finished_ms = excluded.finished_ms,
      deps = coalesce(excluded.deps, run_tasks.deps), deps_count = coalesce(excluded.deps_count, run_tasks.deps_count)`)
  const selectTasks = sqlite.prepare('SELECT * FROM run_tasks WHERE run_id = ? ORDER BY queued_ms ASC, rowid ASC LIMIT ?')
  const insertMemo = sqlite.prepare(`INSERT INTO run_memo (run_id, task_id, result_cid, peer, inline) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (run_id, task_id) DO NOTHING`)
  const selectMemo = sqlite.prepare('SELECT * FROM run_memo WHERE run_id = ? ORDER BY rowid ASC LIMIT ?')
  const selectLastSeq = sqlite.prepare('SELECT max(seq) AS seq FROM run_events WHERE run_id = ?')
  const insertEvent = sqlite.prepare('INSERT INTO run_events (run_id, seq, type, json, at_ms) VALUES (?, ?, ?, ?, ?)')
  const selectEvents = sqlite.prepare('SELECT * FROM run_events WHERE run_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?')
  const deleteRunRow = sqlite.prepare('DELETE FROM runs WHERE run_id = ?')
  const countStatuses = sqlite.prepare('SELECT status, count(*) AS n FROM runs GROUP BY status')

  return { insertRun, updateStatus, updateDriver, updateEnd, selectRun, selectRuns, selectRunsByStatus, upsertTaskRow, selectTasks, insertMemo, selectMemo, selectLastSeq, insertEvent, selectEvents, deleteRunRow, countStatuses }
}

type RunStatements = ReturnType<typeof prepareRunStatements>

function requireRun (runId: string, changes: number | bigint): void {
  if (Number(changes) === 0) throw new NotFoundError(`run ${runId} is not known`, { hint: 'create the run with createRun first' })
}

type RunMethods = Pick<RunRepo, 'createRun' | 'setRunStatus' | 'setRunDriver' | 'finishRun' | 'getRun' | 'listRuns' | 'deleteRun' | 'countByStatus'>

function runMethods (st: RunStatements): RunMethods {
  const { insertRun, updateStatus, updateDriver, updateEnd, selectRun, selectRuns, selectRunsByStatus, deleteRunRow, countStatuses } = st
  return {
    countByStatus () {
      const counts: Record<string, number> = {}
      for (const row of countStatuses.all() as Array<{ status: string, n: number | bigint }>) counts[row.status] = Number(row.n)
      return counts
    },
    createRun (run) {
      checkId('runId', run.runId)
      checkId('workflow', run.workflow)
      checkId('export', run.export)
      checkId('driverPeer', run.driverPeer)
      if (run.parentRunId !== undefined) checkId('parentRunId', run.parentRunId)
      checkStatus(run.status, RUN_STATUSES)
      checkMs('startedMs', run.startedMs)
      checkBytes('run args', run.args, runArgsBytesMax)
      const result = insertRun.run(run.runId, run.workflow, run.export, run.args, run.parentRunId ?? null, run.status, run.startedMs, run.driverPeer)
      return Number(result.changes) > 0
    },

    setRunStatus (runId, status) {
      checkStatus(status, RUN_STATUSES)
      requireRun(runId, updateStatus.run(status, runId).changes)
    },

    setRunDriver (runId, peer) {
      checkId('driverPeer', peer)
      requireRun(runId, updateDriver.run(peer, runId).changes)
    },

    finishRun (runId, end) {
      checkStatus(end.status, ['finished', 'continued', 'failed', 'cancelled'])
      checkMs('finishedMs', end.finishedMs)
      if (end.resultCid !== undefined) checkId('resultCid', end.resultCid)
      if (end.result !== undefined) checkBytes('inline run result', end.result, runInlineBytesMax)
      const error = end.error === undefined ? null : JSON.stringify(end.error)
      requireRun(runId, updateEnd.run(end.status, end.finishedMs, end.resultCid ?? null, end.result ?? null, error, runId).changes)
    },

    getRun (runId) {
      const row = selectRun.get(runId) as RunSqlRow | undefined
      return row === undefined ? undefined : runFromSql(row)
    },

    listRuns ({ limit = runListLengthDefault, status } = {}) {
      checkLimit(limit, runListLengthMax)
      if (status !== undefined) checkStatus(status, RUN_STATUSES)
      const rows = status === undefined ? selectRuns.all(limit) : selectRunsByStatus.all(status, limit)
      return (rows as unknown as RunSqlRow[]).map(runFromSql)
    },

    deleteRun (runId) {
      return Number(deleteRunRow.run(runId).changes) > 0
    }
  }
}

type TaskMethods = Pick<RunRepo, 'upsertTask' | 'listTasks' | 'addMemo' | 'listMemo'>

function taskAndMemoMethods (st: RunStatements): TaskMethods {
  const { upsertTaskRow, selectTasks, insertMemo, selectMemo } = st
  return {
    upsertTask (task) {
      checkId('runId', task.runId)
      checkId('taskId', task.taskId)
      checkId('fn', task.fn)
      checkId('export', task.export)
      if (task.peer !== undefined) checkId('peer', task.peer)
      checkStatus(task.status, TASK_STATUSES)
      if (!Number.isSafeInteger(task.attempt) || task.attempt < 0) throw new InvalidInputError(`attempt must be a non-negative integer, got ${task.attempt}`)
      checkMs('queuedMs', task.queuedMs)
      if (task.startedMs !== undefined) checkMs('startedMs', task.startedMs)
      if (task.finishedMs !== undefined) checkMs('finishedMs', task.finishedMs)
      const deps = task.deps === undefined ? undefined : keptDeps(task.deps, task.depsCount)
      try {
        upsertTaskRow.run(task.runId, task.taskId, task.fn, task.export, task.peer ?? null, task.attempt, task.status,
          task.error === undefined ? null : JSON.stringify(task.error), task.queuedMs, task.startedMs ?? null, task.finishedMs ?? null,
          deps?.json ?? null, deps?.count ?? null)
      } catch (err) {
        throw unknownRun(task.runId, err)
      }
    },

    listTasks (runId, { limit = runTaskListLengthMax } = {}) {
      checkLimit(limit, runTaskListLengthMax)
      return (selectTasks.all(runId, limit) as unknown as TaskSqlRow[]).map(taskFromSql)
    },

    addMemo (entry) {
      checkId('runId', entry.runId)
      checkId('taskId', entry.taskId)
      checkId('resultCid', entry.resultCid)
      checkId('peer', entry.peer)
      if (entry.bytes !== undefined) checkBytes('inline memo result', entry.bytes, runInlineBytesMax)
      try {
        return Number(insertMemo.run(entry.runId, entry.taskId, entry.resultCid, entry.peer, entry.bytes ?? null).changes) > 0
      } catch (err) {
        throw unknownRun(entry.runId, err)
      }
    },

    listMemo (runId, { limit = runMemoListLengthMax } = {}) {
      checkLimit(limit, runMemoListLengthMax)
      return (selectMemo.all(runId, limit) as unknown as MemoSqlRow[]).map(memoFromSql)
    }
  }
}

type EventMethods = Pick<RunRepo, 'appendEvent' | 'listEvents'>

function eventMethods (db: Database, st: RunStatements, eventsPerRunMax: number): EventMethods {
  const { selectLastSeq, insertEvent, selectEvents } = st
  return {
    appendEvent (runId, type, atMs, data) {
      checkId('runId', runId)
      checkId('type', type)
      checkMs('atMs', atMs)
      const json = JSON.stringify(data)
      if (typeof json !== 'string') throw new InvalidInputError(`event ${type} has no JSON form`)
      if (json.length > runEventJsonCharsMax) {
        throw new TooLargeError(`event ${type} as JSON`, json.length, runEventJsonCharsMax, { hint: 'events carry ids and counts; values belong in blobs' })
      }
      return db.transaction(() => {
        const last = (selectLastSeq.get(runId) as { seq: number | null }).seq ?? 0
        if (last >= eventsPerRunMax) return undefined
        try {
          insertEvent.run(runId, last + 1, type, json, atMs)
        } catch (err) {
          throw unknownRun(runId, err)
        }
        return last + 1
      })
    },

    listEvents (runId, { limit = eventsPerRunMax, afterSeq = 0 } = {}) {
      checkLimit(limit, eventsPerRunMax)
      if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) throw new InvalidInputError(`afterSeq must be a non-negative integer, got ${afterSeq}`)
      return (selectEvents.all(runId, afterSeq, limit) as unknown as EventSqlRow[]).map(row => ({
        runId: row.run_id, seq: row.seq, type: row.type, atMs: row.at_ms, data: JSON.parse(row.json) as unknown
      }))
    }
  }
}

/** A foreign key failure means the run row is missing: say so by name. */
function unknownRun (runId: string, err: unknown): unknown {
  if (err instanceof Error && /FOREIGN KEY constraint failed/.test(err.message)) {
    return new NotFoundError(`run ${runId} is not known`, { hint: 'create the run with createRun first', cause: err })
  }
  return err
}

function runFromSql (row: RunSqlRow): RunRow {
  const run: RunRow = {
    runId: row.run_id,
    workflow: row.workflow,
    export: row.export,
    args: row.args,
    status: row.status as RunRowStatus,
    startedMs: row.started_ms,
    driverPeer: row.driver_peer
  }
  if (row.parent_run_id !== null) run.parentRunId = row.parent_run_id
  if (row.finished_ms !== null) run.finishedMs = row.finished_ms
  if (row.result_cid !== null) run.resultCid = row.result_cid
  if (row.result !== null) run.result = row.result
  if (row.error !== null) run.error = JSON.parse(row.error) as FailureData
  return run
}

function taskFromSql (row: TaskSqlRow): RunTaskRow {
  const task: RunTaskRow = {
    runId: row.run_id,
    taskId: row.task_id,
    fn: row.fn,
    export: row.export,
    attempt: row.attempt,
    status: row.status as RunTaskStatus,
    queuedMs: row.queued_ms
  }
  if (row.peer !== null) task.peer = row.peer
  if (row.error !== null) task.error = JSON.parse(row.error) as FailureData
  if (row.started_ms !== null) task.startedMs = row.started_ms
  if (row.finished_ms !== null) task.finishedMs = row.finished_ms
  if (row.deps !== null) {
    task.deps = JSON.parse(row.deps) as string[]
    if (row.deps_count !== null && row.deps_count > task.deps.length) task.depsCount = row.deps_count
  }
  return task
}

/** The dependencies a task row keeps (the last runTaskDepsKeptMax), as JSON, and their full count. */
function keptDeps (deps: unknown, depsCount: number | undefined): { json: string, count: number } {
  if (!Array.isArray(deps)) throw new InvalidInputError('deps must be a list of task ids')
  for (const dep of deps) checkId('deps[]', dep)
  if (depsCount !== undefined && (!Number.isSafeInteger(depsCount) || depsCount < 0)) throw new InvalidInputError(`depsCount must be a non-negative integer, got ${depsCount}`)
  const kept = deps.length > runTaskDepsKeptMax ? deps.slice(-runTaskDepsKeptMax) : deps
  return { json: JSON.stringify(kept), count: Math.max(deps.length, depsCount ?? 0) }
}

function memoFromSql (row: MemoSqlRow): RunMemoRow {
  const memo: RunMemoRow = { runId: row.run_id, taskId: row.task_id, resultCid: row.result_cid, peer: row.peer }
  if (row.inline !== null) memo.bytes = row.inline
  return memo
}

function checkId (field: string, value: unknown): void {
  if (typeof value !== 'string' || value.length === 0) throw new InvalidInputError(`${field} must be a non-empty string`)
}

function checkStatus (value: unknown, allowed: readonly string[]): void {
  if (typeof value !== 'string' || !allowed.includes(value)) throw new InvalidInputError(`status must be one of ${allowed.join(', ')}, got ${String(value)}`)
}

function checkMs (field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidInputError(`${field} must be a non-negative integer of milliseconds, got ${value}`)
}

function checkBytes (what: string, value: unknown, max: number): void {
  if (!(value instanceof Uint8Array)) throw new InvalidInputError(`${what} must be bytes`)
  if (value.byteLength > max) throw new TooLargeError(what, value.byteLength, max, { hint: 'keep it in the blob store and store its CID' })
}

function checkLimit (value: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new InvalidInputError(`limit must be an integer from 1 to ${max}, got ${value}`)
}
