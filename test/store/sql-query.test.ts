/**
 * The read-only query engine of `rhizome sql` (src/store/sql-query.ts), in this process over a
 * real database file: the views answer, and what is not a read of them is refused by what
 * SQLite reports of the statement, not by words in its text.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase, createRunRepo } from '../../src/store/index.ts'
import type { Database } from '../../src/store/index.ts'
import { SQL_VALUE_BYTES_MAX, SQL_VIEWS, runReadOnlyQuery } from '../../src/store/sql-query.ts'
import type { SqlAnswer } from '../../src/store/sql-query.ts'
import { RhizomeError } from '../../src/model/errors.ts'

const LIMITS = { rowsMax: 1_000, resultBytesMax: 1024 * 1024 }

describe('runReadOnlyQuery', () => {
  let dir: string
  let path: string
  let db: Database

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rhizome-sql-'))
    path = join(dir, 'rhizome.db')
    db = openDatabase(path)
    const runs = createRunRepo(db)
    runs.createRun({ runId: 'r1', workflow: 'wf', export: 'main', args: new Uint8Array([1]), status: 'running', startedMs: 1_000, driverPeer: 'P0' })
    runs.upsertTask({ runId: 'r1', taskId: 't1', fn: 'f', export: 'B', attempt: 0, status: 'scheduled', queuedMs: 1_010 })
    runs.upsertTask({ runId: 'r1', taskId: 't1', fn: 'f', export: 'B', peer: 'P1', attempt: 1, status: 'running', queuedMs: 1_010, startedMs: 1_020 })
    runs.upsertTask({ runId: 'r1', taskId: 't1', fn: 'f', export: 'B', peer: 'P2', attempt: 2, status: 'running', queuedMs: 1_010, startedMs: 1_050 })
    runs.upsertTask({ runId: 'r1', taskId: 't1', fn: 'f', export: 'B', peer: 'P2', attempt: 2, status: 'accepted', queuedMs: 1_010, startedMs: 1_050, finishedMs: 1_080 })
    runs.finishRun('r1', { status: 'finished', finishedMs: 1_100 })
  })
  after(async () => {
    db.close()
    await rm(dir, { recursive: true, force: true })
  })

  function query (sql: string, limits = LIMITS): SqlAnswer {
    return runReadOnlyQuery(path, sql, limits)
  }

  function refused (sql: string, code: string): RhizomeError {
    let caught: unknown
    try {
      query(sql)
    } catch (err) {
      caught = err
    }
    assert.ok(caught instanceof RhizomeError, `${sql}: expected ${code}, got ${String(caught)}`)
    assert.equal(caught.code, code, `${sql}: ${caught.message}`)
    assert.ok(caught.hint !== undefined && caught.hint.length > 0)
    return caught
  }

  it('answers every view, by its name without the sql_ prefix', () => {
    for (const view of SQL_VIEWS) {
      assert.ok(Array.isArray(query(`select * from ${view}`).columns))
      // count(*) reads a view's table without naming a column: still through the view.
      assert.equal(query(`select count(*) from ${view}`).rows.length, 1)
    }
  })

  it('joins runs and tasks, and keeps every attempt with its peer', () => {
    const joined = query("select r.status, r.duration_ms, t.peer, t.attempts, t.run_ms from runs r join tasks t using (run_id) where r.run_id = 'r1'")
    assert.deepEqual(joined, { columns: ['status', 'duration_ms', 'peer', 'attempts', 'run_ms'], rows: [['finished', 100, 'P2', 2, 30]], truncated: false })
    const attempts = query('select attempt, peer, status, started_ms, finished_ms from attempts order by attempt')
    assert.deepEqual(attempts.rows, [[1, 'P1', 'retried', 1_020, 1_050], [2, 'P2', 'accepted', 1_050, 1_080]])
  })

  it('answers BLOBs as dag-json bytes and integers past 2^53 as strings', () => {
    assert.deepEqual(query("select x'00ff' as b, 9007199254740993 as big, 9007199254740991 as safe, 1.5 as f, null as n").rows,
      [[{ '/': { bytes: 'AP8' } }, '9007199254740993', 9007199254740991, 1.5, null]])
  })

  it('refuses writes, whatever the text looks like, and allows reads that mention them', () => {
    refused("insert into main.runs (run_id) values ('x')", 'ERR_SQL_READ_ONLY')
    refused("update main.runs set status = 'x'", 'ERR_SQL_READ_ONLY')
    refused('delete from runs', 'ERR_SQL_READ_ONLY')
    refused('drop view sql_runs', 'ERR_SQL_READ_ONLY')
    refused('create temp table t (a)', 'ERR_SQL_READ_ONLY')
    refused('create index i on runs (run_id)', 'ERR_SQL_READ_ONLY')
    refused('alter table main.runs add column x', 'ERR_SQL_READ_ONLY')
    refused('pragma query_only = off', 'ERR_SQL_READ_ONLY')
    refused('pragma writable_schema = on', 'ERR_SQL_READ_ONLY')
    refused('begin', 'ERR_SQL_READ_ONLY')
    refused('vacuum', 'ERR_SQL_READ_ONLY')
    refused('reindex', 'ERR_SQL_READ_ONLY')
    refused('analyze', 'ERR_SQL_READ_ONLY')
    refused("attach database ':memory:' as m", 'ERR_SQL_ATTACH_REFUSED')
    refused('detach database temp', 'ERR_SQL_ATTACH_REFUSED')
    assert.deepEqual(query("select 'delete from runs; attach x' as text").rows, [['delete from runs; attach x']])
    assert.deepEqual(query('pragma table_info(sql_blobs)').rows.map(r => r[1]), ['cid', 'bytes', 'created_ms', 'pinned', 'inline'])
    // Nothing changed.
    assert.equal((db.sqlite.prepare('select count(*) as n from runs').get() as { n: number }).n, 1)
  })

  it('refuses the raw tables (the views are the contract), syntax errors and a second statement', () => {
    refused('select * from main.run_memo', 'ERR_SQL_INVALID')
    refused('select * from main.runs', 'ERR_SQL_INVALID')
    assert.match(refused('selec 1', 'ERR_SQL_INVALID').message, /syntax error/)
    refused('select 1; select 2', 'ERR_SQL_INVALID')
    assert.deepEqual(query('select 1 as one; -- a comment\n /* and another */ ;').rows, [[1]])
    assert.ok(query('select count(*) from main.sql_runs').rows.length === 1, 'a view named with its prefix is a view too')
  })

  it('makes or reads strings and BLOBs up to SQL_VALUE_BYTES_MAX; one byte more is refused', () => {
    assert.deepEqual(query(`select length(randomblob(${SQL_VALUE_BYTES_MAX}))`).rows, [[SQL_VALUE_BYTES_MAX]])
    assert.match(refused(`select length(randomblob(${SQL_VALUE_BYTES_MAX + 1}))`, 'ERR_SQL_INVALID').message, /too big/)
  })

  it('answers up to rowsMax rows; one more is ERR_SQL_TOO_MANY_ROWS', () => {
    const count = (n: number): string => `with recursive c(x) as (select 1 union all select x + 1 from c where x < ${n}) select x from c`
    assert.equal(query(count(5), { ...LIMITS, rowsMax: 5 }).rows.length, 5)
    assert.throws(() => query(count(6), { ...LIMITS, rowsMax: 5 }), (err: RhizomeError) => err.code === 'ERR_SQL_TOO_MANY_ROWS')
  })

  it('answers up to resultBytesMax bytes of rows; one byte less is ERR_TOO_LARGE', () => {
    const sql = "select 'abcdefghij' as s, x from (select 1 as x union all select 2)"
    const answer = query(sql)
    // As counted: the brackets of the list, and each row's JSON plus its separator.
    const bytes = 2 + answer.rows.reduce((sum, row) => sum + JSON.stringify(row).length + 1, 0)
    assert.equal(query(sql, { ...LIMITS, resultBytesMax: bytes }).rows.length, 2)
    assert.throws(() => query(sql, { ...LIMITS, resultBytesMax: bytes - 1 }), (err: RhizomeError) => err.code === 'ERR_TOO_LARGE')
  })
})
