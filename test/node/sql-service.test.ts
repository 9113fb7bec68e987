/**
 * The peer side of `rhizome sql`: each query in a child process, killed at its time limit (the
 * process is gone afterwards, not left computing), at most SQL_QUERIES_CONCURRENT_MAX at once,
 * and a client that goes away stops its query.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase } from '../../src/store/index.ts'
import type { Database } from '../../src/store/index.ts'
import { SQL_QUERIES_CONCURRENT_MAX, SqlService, parseSqlRequest } from '../../src/node/sql-service.ts'
import { SQL_ROWS_DEFAULT, SQL_TEXT_BYTES_MAX, SQL_TIMEOUT_MS_DEFAULT } from '../../src/api/limits.ts'
import type { RhizomeError } from '../../src/model/errors.ts'

const FOREVER = 'with recursive c(x) as (select 1 union all select x + 1 from c where x < 1000000000000) select count(*) from c'

/** Whether process `pid` still exists (signal 0 checks without sending anything). */
function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('SqlService', () => {
  let dir: string
  let db: Database
  let service: SqlService

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rhizome-sqlsvc-'))
    db = openDatabase(join(dir, 'rhizome.db'))
    service = new SqlService(db.path)
  })
  after(async () => {
    service.close()
    db.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('answers a query from a child process', async () => {
    assert.deepEqual(await service.query({ sql: 'select 1 + 1 as two', maxRows: 10, timeoutMs: 30_000 }), { columns: ['two'], rows: [[2]], truncated: false })
  })

  it('kills the child at the time limit: ERR_SQL_TIMEOUT, and the process is gone', async () => {
    const pids = service.pids
    const running = service.query({ sql: FOREVER, maxRows: 10, timeoutMs: 500 })
    const [pid] = [...service.pids].filter(p => !pids.has(p))
    assert.ok(pid !== undefined && alive(pid))
    await assert.rejects(running, (err: RhizomeError) => err.code === 'ERR_SQL_TIMEOUT')
    // SIGKILL is delivered at once; the exit is reaped within a few turns.
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise(resolve => setTimeout(resolve, 20))
    assert.equal(alive(pid), false)
  })

  it(`runs ${SQL_QUERIES_CONCURRENT_MAX} queries at once; one more is ERR_SQL_BUSY`, async () => {
    const controller = new AbortController()
    const running = Array.from({ length: SQL_QUERIES_CONCURRENT_MAX }, () => service.query({ sql: FOREVER, maxRows: 10, timeoutMs: 30_000 }, controller.signal).catch((err: RhizomeError) => err.code))
    await assert.rejects(service.query({ sql: 'select 1', maxRows: 10, timeoutMs: 30_000 }), (err: RhizomeError) => err.code === 'ERR_SQL_BUSY' && err.retryable)
    controller.abort()
    assert.deepEqual(await Promise.all(running), Array(SQL_QUERIES_CONCURRENT_MAX).fill('ERR_ABORTED'))
    assert.equal(service.pids.size, 0)
    assert.deepEqual((await service.query({ sql: 'select 1', maxRows: 10, timeoutMs: 30_000 })).rows, [[1]])
  })

  it('parses a request: defaults, and each limit one past', () => {
    assert.deepEqual(parseSqlRequest({ sql: 'select 1' }), { sql: 'select 1', maxRows: SQL_ROWS_DEFAULT, timeoutMs: SQL_TIMEOUT_MS_DEFAULT })
    assert.equal(parseSqlRequest({ sql: 'x'.repeat(SQL_TEXT_BYTES_MAX) }).sql.length, SQL_TEXT_BYTES_MAX)
    assert.throws(() => parseSqlRequest({ sql: 'x'.repeat(SQL_TEXT_BYTES_MAX + 1) }), (err: RhizomeError) => err.code === 'ERR_TOO_LARGE')
    assert.throws(() => parseSqlRequest({ sql: 'é'.repeat(SQL_TEXT_BYTES_MAX / 2) + 'x' }), (err: RhizomeError) => err.code === 'ERR_TOO_LARGE', 'bytes, not characters')
    for (const bad of [{ sql: '' }, { sql: 3 }, { sql: 'select 1', maxRows: 0 }, { sql: 'select 1', maxRows: 1.5 }, { sql: 'select 1', timeoutMs: 0 }, { sql: 'select 1', timeoutMs: '5' }]) {
      assert.throws(() => parseSqlRequest(bad), (err: RhizomeError) => err.code === 'ERR_INVALID_INPUT', JSON.stringify(bad))
    }
  })
})
