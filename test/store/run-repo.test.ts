import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import {
  createRunRepo, migrations, openDatabase, runArgsBytesMax, runEventJsonCharsMax, runEventsPerRunMax, runInlineBytesMax, runListLengthDefault,
  runListLengthMax, runMemoListLengthMax, runTaskDepsKeptMax, runTaskListLengthMax
} from '../../src/store/index.ts'
import type { Database, RunStart, RunTaskRow } from '../../src/store/index.ts'

/** The migration that added run_tasks.deps. */
const depsMigration = migrations.find(m => m.name.includes('keeps its dependencies'))!.version
const enc = (text: string): Uint8Array => new TextEncoder().encode(text)
const THREW = { name: 'FunctionThrewError', code: 'ERR_FUNCTION_THREW', message: 'boom', retryable: false }

function run (runId: string, startedMs: number, extra: Partial<RunStart> = {}): RunStart {
  return { runId, workflow: 'bafyFlow', export: 'A', args: enc('[5]'), status: 'running', startedMs, driverPeer: 'peerD', ...extra }
}

function task (runId: string, taskId: string, queuedMs: number, extra: Partial<RunTaskRow> = {}): RunTaskRow {
  return { runId, taskId, fn: 'bafyFn', export: 'B', attempt: 1, status: 'scheduled', queuedMs, ...extra }
}

describe('RunRepo', () => {
  let dir: string
  let path: string
  let db: Database
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rhizome-runs-'))
    path = join(dir, 'rhizome.sqlite')
    db = openDatabase(path)
  })
  afterEach(async () => {
    db.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('creates a run once, moves its status, records its end, and reads it back whole', () => {
    const repo = createRunRepo(db)
    assert.equal(repo.createRun(run('r1', 100, { status: 'created', parentRunId: 'r0' })), true)
    assert.equal(repo.createRun(run('r1', 999)), false, 'a known run id is kept as it was')
    repo.setRunStatus('r1', 'running')
    assert.deepEqual(repo.getRun('r1'), {
      runId: 'r1', workflow: 'bafyFlow', export: 'A', args: enc('[5]'), parentRunId: 'r0', status: 'running', startedMs: 100, driverPeer: 'peerD'
    })
    repo.finishRun('r1', { status: 'finished', finishedMs: 250, resultCid: 'bafyResult', result: enc('14') })
    const done = repo.getRun('r1')
    assert.equal(done?.status, 'finished')
    assert.equal(done?.finishedMs, 250)
    assert.equal(done?.resultCid, 'bafyResult')
    assert.deepEqual(done?.result, enc('14'))
    assert.equal(done?.error, undefined)

    repo.createRun(run('r2', 200))
    repo.finishRun('r2', { status: 'failed', finishedMs: 300, error: THREW })
    assert.deepEqual(repo.getRun('r2')?.error, THREW)
    assert.equal(repo.getRun('missing'), undefined)
  })

  it('writes history without a disk sync (synchronous=NORMAL), and every other write with one again after', () => {
    const repo = createRunRepo(db)
    const sync = (): number => Number((db.sqlite.prepare('PRAGMA synchronous').get() as { synchronous: number }).synchronous)
    const FULL = 2
    const NORMAL = 1
    assert.equal(sync(), FULL)
    repo.createRun(run('r1', 100))
    const seen = repo.batchHistory(() => {
      repo.upsertTask(task('r1', 't1', 101))
      repo.appendEvent('r1', 'run:task:scheduled', 101, { taskId: 't1' })
      return sync()
    })
    assert.equal(seen, NORMAL, 'the history batch commits without a sync')
    assert.equal(sync(), FULL, 'and the connection is back to FULL for the memo and the lease')
    assert.equal(repo.listTasks('r1').length, 1)
    assert.throws(() => repo.batchHistory(() => { repo.upsertTask(task('r1', 't2', 102)); throw new Error('boom') }), /boom/)
    assert.equal(sync(), FULL, 'a failed batch restores FULL too')
    assert.equal(repo.listTasks('r1').length, 1, 'and rolls back')
    // Inside a transaction already: joins it (its commit decides).
    repo.batch(() => repo.batchHistory(() => { repo.upsertTask(task('r1', 't3', 103)) }))
    assert.equal(sync(), FULL)
    assert.equal(repo.listTasks('r1').length, 2)
  })

  it('refuses to update an unknown run, and bad input, with named errors', () => {
    const repo = createRunRepo(db)
    assert.throws(() => repo.setRunStatus('ghost', 'running'), { name: 'NotFoundError' })
    assert.throws(() => repo.finishRun('ghost', { status: 'cancelled', finishedMs: 1 }), { name: 'NotFoundError' })
    assert.throws(() => repo.createRun(run('', 1)), { name: 'InvalidInputError' })
    assert.throws(() => repo.createRun(run('r', -1)), { name: 'InvalidInputError' })
    assert.throws(() => repo.createRun(run('r', 1, { status: 'bogus' as 'running' })), { name: 'InvalidInputError' })
    repo.createRun(run('r', 1))
    assert.throws(() => repo.finishRun('r', { status: 'running' as 'finished', finishedMs: 2 }), { name: 'InvalidInputError' })
    assert.throws(() => repo.upsertTask(task('ghost', 't1', 1)), { name: 'NotFoundError' })
    assert.throws(() => repo.addMemo({ runId: 'ghost', taskId: 't', resultCid: 'c', peer: 'p' }), { name: 'NotFoundError' })
    assert.throws(() => repo.appendEvent('ghost', 'run:started', 1, {}), { name: 'NotFoundError' })
  })

  it(`run args up to ${runArgsBytesMax} bytes and inline results up to ${runInlineBytesMax} bytes; one byte more is refused`, () => {
    const repo = createRunRepo(db)
    assert.equal(repo.createRun(run('big', 1, { args: new Uint8Array(runArgsBytesMax) })), true)
    assert.throws(() => repo.createRun(run('bigger', 1, { args: new Uint8Array(runArgsBytesMax + 1) })), { name: 'TooLargeError' })
    assert.equal(repo.getRun('bigger'), undefined)
    repo.finishRun('big', { status: 'finished', finishedMs: 2, resultCid: 'c', result: new Uint8Array(runInlineBytesMax) })
    assert.throws(() => repo.finishRun('big', { status: 'finished', finishedMs: 2, result: new Uint8Array(runInlineBytesMax + 1) }), { name: 'TooLargeError' })
    assert.equal(repo.addMemo({ runId: 'big', taskId: 't1', resultCid: 'c', peer: 'p', bytes: new Uint8Array(runInlineBytesMax) }), true)
    assert.throws(() => repo.addMemo({ runId: 'big', taskId: 't2', resultCid: 'c', peer: 'p', bytes: new Uint8Array(runInlineBytesMax + 1) }), { name: 'TooLargeError' })
  })

  it('lists runs newest first, filtered by status; the limit defaults to a screenful and one past the max is refused', () => {
    const repo = createRunRepo(db)
    repo.createRun(run('a', 1))
    repo.createRun(run('b', 3))
    repo.createRun(run('c', 2))
    repo.finishRun('c', { status: 'cancelled', finishedMs: 4 })
    assert.deepEqual(repo.listRuns().map(r => r.runId), ['b', 'c', 'a'])
    assert.deepEqual(repo.listRuns({ limit: 2 }).map(r => r.runId), ['b', 'c'])
    assert.deepEqual(repo.listRuns({ status: 'running' }).map(r => r.runId), ['b', 'a'])
    assert.deepEqual(repo.listRuns({ status: 'cancelled' }).map(r => r.runId), ['c'])
    assert.equal(runListLengthDefault, 100)
    assert.equal(repo.listRuns({ limit: runListLengthMax }).length, 3)
    assert.throws(() => repo.listRuns({ limit: runListLengthMax + 1 }), { name: 'InvalidInputError' })
    assert.throws(() => repo.listRuns({ limit: 0 }), { name: 'InvalidInputError' })
  })

  it('keeps one row per task of a run, updated as it moves, listed in queue order', () => {
    const repo = createRunRepo(db)
    repo.createRun(run('r', 1))
    repo.upsertTask(task('r', 't2', 20))
    repo.upsertTask(task('r', 't1', 10))
    repo.upsertTask(task('r', 't1', 10, { status: 'running', peer: 'peerB', startedMs: 12 }))
    repo.upsertTask(task('r', 't1', 10, { status: 'accepted', peer: 'peerC', attempt: 2, startedMs: 15, finishedMs: 30 }))
    repo.upsertTask(task('r', 't2', 20, { status: 'failed', peer: 'peerB', error: THREW, startedMs: 21, finishedMs: 22 }))
    assert.deepEqual(repo.listTasks('r'), [
      { runId: 'r', taskId: 't1', fn: 'bafyFn', export: 'B', peer: 'peerC', attempt: 2, status: 'accepted', queuedMs: 10, startedMs: 15, finishedMs: 30 },
      { runId: 'r', taskId: 't2', fn: 'bafyFn', export: 'B', peer: 'peerB', attempt: 1, status: 'failed', error: THREW, queuedMs: 20, startedMs: 21, finishedMs: 22 }
    ])
    assert.deepEqual(repo.listTasks('r', { limit: 1 }).map(t => t.taskId), ['t1'])
    assert.equal(repo.listTasks('r', { limit: runTaskListLengthMax }).length, 2)
    assert.throws(() => repo.listTasks('r', { limit: runTaskListLengthMax + 1 }), { name: 'InvalidInputError' })
    assert.throws(() => repo.upsertTask(task('r', 't3', 1, { attempt: -1 })), { name: 'InvalidInputError' })
    assert.throws(() => repo.upsertTask(task('r', 't3', 1, { status: 'lost' as 'failed' })), { name: 'InvalidInputError' })
  })

  it('keeps a task\'s dependencies with its row: the last runTaskDepsKeptMax and the full count, across updates and a restart', () => {
    const repo = createRunRepo(db)
    repo.createRun(run('r', 1))
    const atCap = Array.from({ length: runTaskDepsKeptMax }, (_, i) => `d${i}`)
    const pastCap = Array.from({ length: runTaskDepsKeptMax + 1 }, (_, i) => `p${i}`)
    repo.upsertTask(task('r', 'none', 1, { deps: [] }))
    repo.upsertTask(task('r', 'two', 2, { deps: ['a', 'b'] }))
    repo.upsertTask(task('r', 'cap', 3, { deps: atCap }))
    repo.upsertTask(task('r', 'past', 4, { deps: pastCap }))
    repo.upsertTask(task('r', 'some', 5, { deps: ['x'], depsCount: 40 }))
    // A later write of the row without deps (the task started, then finished) keeps them.
    repo.upsertTask(task('r', 'two', 2, { status: 'accepted', peer: 'peerB', startedMs: 3, finishedMs: 4 }))
    db.close()
    db = openDatabase(path)
    const byId = new Map(createRunRepo(db).listTasks('r').map(t => [t.taskId, t]))
    assert.deepEqual(byId.get('none')?.deps, [])
    assert.deepEqual(byId.get('two')?.deps, ['a', 'b'])
    assert.equal(byId.get('two')?.status, 'accepted')
    assert.equal(byId.get('two')?.depsCount, undefined, 'no count when the row keeps them all')
    assert.deepEqual(byId.get('cap')?.deps, atCap)
    assert.equal(byId.get('cap')?.depsCount, undefined)
    assert.deepEqual(byId.get('past')?.deps, pastCap.slice(1), 'one past the cap: the first delivered is dropped')
    assert.equal(byId.get('past')?.depsCount, runTaskDepsKeptMax + 1)
    assert.deepEqual(byId.get('some')?.deps, ['x'])
    assert.equal(byId.get('some')?.depsCount, 40)
    assert.throws(() => createRunRepo(db).upsertTask(task('r', 'bad', 6, { deps: [''] })), { name: 'InvalidInputError' })
    assert.throws(() => createRunRepo(db).upsertTask(task('r', 'bad', 6, { deps: ['a'], depsCount: -1 })), { name: 'InvalidInputError' })
  })

  it('a task row from before dependencies were kept reads back without deps, and the tasks view shows NULL', async () => {
    db.close()
    await rm(path)
    // A database as a peer wrote it before the migration that keeps dependencies, then migrated.
    const before = openDatabase(path, { migrations: migrations.filter(m => m.version < depsMigration) })
    before.sqlite.prepare('INSERT INTO runs (run_id, workflow, export, args, status, started_ms, driver_peer) VALUES (?, ?, ?, ?, ?, ?, ?)').run('r', 'bafyFlow', 'A', enc('[]'), 'finished', 1, 'peerD')
    before.sqlite.prepare('INSERT INTO run_tasks (run_id, task_id, fn, export, attempt, status, queued_ms) VALUES (?, ?, ?, ?, ?, ?, ?)').run('r', 'old', 'bafyFn', 'B', 1, 'accepted', 7)
    before.close()
    db = openDatabase(path)
    const repo = createRunRepo(db)
    repo.upsertTask(task('r', 'new', 8, { deps: ['old'] }))
    const [old, fresh] = repo.listTasks('r')
    assert.equal(old.taskId, 'old')
    assert.equal('deps' in old, false)
    assert.deepEqual(fresh.deps, ['old'])
    const view = db.sqlite.prepare('SELECT task_id, deps, deps_count FROM sql_tasks ORDER BY queued_ms').all()
    assert.deepEqual(view.map(r => ({ ...r })), [{ task_id: 'old', deps: null, deps_count: null }, { task_id: 'new', deps: '["old"]', deps_count: 1 }])
  })

  it('the memo is grow-only, survives a restart, and reads back whole in the order added', () => {
    const repo = createRunRepo(db)
    repo.createRun(run('r', 1))
    assert.equal(repo.addMemo({ runId: 'r', taskId: 't2', resultCid: 'c2', peer: 'peerB', bytes: enc('7') }), true)
    assert.equal(repo.addMemo({ runId: 'r', taskId: 't1', resultCid: 'c1', peer: 'peerA' }), true)
    assert.equal(repo.addMemo({ runId: 'r', taskId: 't2', resultCid: 'other', peer: 'peerZ' }), false, 'the first accepted result stays')
    db.close()
    db = openDatabase(path)
    const again = createRunRepo(db)
    assert.deepEqual(again.listMemo('r'), [
      { runId: 'r', taskId: 't2', resultCid: 'c2', peer: 'peerB', bytes: enc('7') },
      { runId: 'r', taskId: 't1', resultCid: 'c1', peer: 'peerA' }
    ])
    assert.equal(again.listMemo('r', { limit: runMemoListLengthMax }).length, 2)
    assert.throws(() => again.listMemo('r', { limit: runMemoListLengthMax + 1 }), { name: 'InvalidInputError' })
  })

  it('numbers events from 1 per run, lists them after a seq, and keeps the JSON', () => {
    const repo = createRunRepo(db)
    repo.createRun(run('r', 1))
    repo.createRun(run('s', 1))
    assert.equal(repo.appendEvent('r', 'run:started', 5, { memoEntries: 0 }), 1)
    assert.equal(repo.appendEvent('s', 'run:started', 6, {}), 1)
    assert.equal(repo.appendEvent('r', 'run:task:scheduled', 7, { taskId: 't1', seq: 0 }), 2)
    assert.deepEqual(repo.listEvents('r'), [
      { runId: 'r', seq: 1, type: 'run:started', atMs: 5, data: { memoEntries: 0 } },
      { runId: 'r', seq: 2, type: 'run:task:scheduled', atMs: 7, data: { taskId: 't1', seq: 0 } }
    ])
    assert.deepEqual(repo.listEvents('r', { afterSeq: 1 }).map(e => e.seq), [2])
    assert.deepEqual(repo.listEvents('r', { limit: 1 }).map(e => e.seq), [1])
    assert.throws(() => repo.listEvents('r', { limit: runEventsPerRunMax + 1 }), { name: 'InvalidInputError' })
    assert.throws(() => repo.listEvents('r', { afterSeq: -1 }), { name: 'InvalidInputError' })
  })

  it('keeps eventsPerRunMax events per run; one past keeps nothing and answers undefined', () => {
    assert.equal(runEventsPerRunMax, 100_000)
    const repo = createRunRepo(db, { eventsPerRunMax: 3 })
    repo.createRun(run('r', 1))
    repo.createRun(run('s', 1))
    for (let i = 1; i <= 3; i++) assert.equal(repo.appendEvent('r', 'e', i, { i }), i)
    assert.equal(repo.appendEvent('r', 'e', 4, { i: 4 }), undefined)
    assert.deepEqual(repo.listEvents('r').map(e => e.seq), [1, 2, 3])
    assert.equal(repo.appendEvent('s', 'e', 4, {}), 1, 'the cap is per run')
    assert.throws(() => repo.listEvents('r', { limit: 4 }), { name: 'InvalidInputError' })
    assert.throws(() => createRunRepo(db, { eventsPerRunMax: runEventsPerRunMax + 1 }), { name: 'InvalidInputError' })
    assert.throws(() => createRunRepo(db, { eventsPerRunMax: 0 }), { name: 'InvalidInputError' })
  })

  it(`an event of ${runEventJsonCharsMax} JSON characters is kept, one more is refused`, () => {
    const repo = createRunRepo(db)
    repo.createRun(run('r', 1))
    const exact = 'x'.repeat(runEventJsonCharsMax - 2) // JSON adds the two quotes
    assert.equal(repo.appendEvent('r', 'e', 1, exact), 1)
    assert.throws(() => repo.appendEvent('r', 'e', 2, exact + 'y'), { name: 'TooLargeError' })
    assert.equal(repo.listEvents('r').length, 1)
  })

  it('deleting a run deletes its tasks, memo and events', () => {
    const repo = createRunRepo(db)
    repo.createRun(run('r', 1))
    repo.upsertTask(task('r', 't1', 1))
    repo.addMemo({ runId: 'r', taskId: 't1', resultCid: 'c', peer: 'p' })
    repo.appendEvent('r', 'e', 1, {})
    assert.equal(repo.deleteRun('r'), true)
    assert.equal(repo.deleteRun('r'), false)
    for (const table of ['run_tasks', 'run_memo', 'run_events']) {
      const { n } = db.sqlite.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }
      assert.equal(n, 0, table)
    }
  })
})
