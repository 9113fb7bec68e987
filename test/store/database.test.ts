import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { openDatabase, migrations, busyTimeoutMsDefault, busyTimeoutMsMax, SchemaTooNewError } from '../../src/store/index.ts'
import type { Migration } from '../../src/store/index.ts'
import type { Database } from '../../src/store/index.ts'

/** Reads and writes of the `meta` table, through the connection under test. */
function metaTable (db: Database): { get: (key: string) => string | undefined, set: (key: string, value: string) => void } {
  return {
    get: key => (db.sqlite.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value,
    set: (key, value) => { db.sqlite.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value) }
  }
}

function pragma (sqlite: DatabaseSync, name: string): unknown {
  const row = sqlite.prepare(`PRAGMA ${name}`).get() as Record<string, unknown>
  return Object.values(row)[0]
}

function tableNames (sqlite: DatabaseSync): string[] {
  const rows = sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>
  return rows.map(row => row.name)
}

describe('openDatabase', () => {
  let dir: string
  let path: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rhizome-db-'))
    path = join(dir, 'rhizome.sqlite')
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('creates the schema and sets WAL, synchronous=FULL, foreign keys and the busy timeout', () => {
    const db = openDatabase(path)
    try {
      assert.equal(db.schemaVersion, migrations.length)
      assert.equal(pragma(db.sqlite, 'user_version'), migrations.length)
      assert.deepEqual(tableNames(db.sqlite), ['blobs', 'certificates', 'functions', 'home_memo', 'home_runs', 'lie_proofs', 'log_events', 'meta', 'peer_events', 'peers', 'reputation', 'revocations', 'run_events', 'run_memo', 'run_tasks', 'runs', 'task_attempts', 'task_attestations'])
      assert.equal(pragma(db.sqlite, 'journal_mode'), 'wal')
      assert.equal(pragma(db.sqlite, 'synchronous'), 2) // FULL: a commit is synced before it returns
      assert.equal(pragma(db.sqlite, 'foreign_keys'), 1)
      assert.equal(pragma(db.sqlite, 'busy_timeout'), busyTimeoutMsDefault)
    } finally {
      db.close()
    }
  })

  it('keeps data across close and reopen without re-running migrations', () => {
    const first = openDatabase(path)
    metaTable(first).set('network', 'n1')
    first.close()
    const second = openDatabase(path)
    try {
      assert.equal(second.schemaVersion, migrations.length)
      assert.equal(metaTable(second).get('network'), 'n1')
    } finally {
      second.close()
    }
  })

  it('refuses a database written by a newer schema with SchemaTooNewError and leaves it alone', () => {
    openDatabase(path).close()
    const raw = new DatabaseSync(path)
    raw.exec(`PRAGMA user_version = ${migrations.length + 1}`)
    raw.close()

    assert.throws(() => openDatabase(path), (err: unknown) => {
      assert.ok(err instanceof SchemaTooNewError)
      assert.equal(err.name, 'SchemaTooNewError')
      assert.equal(err.code, 'ERR_SCHEMA_TOO_NEW')
      assert.equal(err.schemaVersion, migrations.length + 1)
      assert.equal(err.schemaVersionKnown, migrations.length)
      assert.match(err.hint ?? '', /upgrade Rhizome/)
      return true
    })
    const check = new DatabaseSync(path)
    assert.equal(pragma(check, 'user_version'), migrations.length + 1)
    check.close()
  })

  it('accepts a database exactly at the newest known version', () => {
    openDatabase(path).close()
    const db = openDatabase(path)
    assert.equal(db.schemaVersion, migrations.length)
    db.close()
  })

  it('rolls back a failing migration, keeping the versions before it', () => {
    const one: Migration = { version: 1, name: 'a', sql: 'CREATE TABLE a (x INTEGER)' }
    const broken: Migration = { version: 2, name: 'b', sql: 'CREATE TABLE b (x INTEGER); NOT SQL AT ALL' }
    assert.throws(() => openDatabase(path, { migrations: [one, broken] }), /syntax error/)

    const raw = new DatabaseSync(path)
    assert.equal(pragma(raw, 'user_version'), 1)
    assert.deepEqual(tableNames(raw), ['a'])
    raw.close()

    const fixed: Migration = { version: 2, name: 'b', sql: 'CREATE TABLE b (x INTEGER)' }
    const db = openDatabase(path, { migrations: [one, fixed] })
    assert.equal(db.schemaVersion, 2)
    assert.deepEqual(tableNames(db.sqlite), ['a', 'b'])
    db.close()
  })

  it('crashes on migrations whose versions have a gap', () => {
    const gap: Migration[] = [
      { version: 1, name: 'a', sql: 'CREATE TABLE a (x INTEGER)' },
      { version: 3, name: 'c', sql: 'CREATE TABLE c (x INTEGER)' }
    ]
    assert.throws(() => openDatabase(path, { migrations: gap }), /assertion failed/)
  })

  it('checkpoints and truncates the WAL on close, and close is idempotent', async () => {
    const db = openDatabase(path)
    // A second connection stays open, so SQLite's own last-connection cleanup cannot be what
    // empties the WAL: only close()'s checkpoint can.
    const other = new DatabaseSync(path)
    try {
      other.prepare('SELECT count(*) FROM meta').get() // attach it to the WAL
      metaTable(db).set('k', 'v')
      assert.ok((await stat(`${path}-wal`)).size > 0, 'the write went to the WAL')
      db.close()
      db.close()
      assert.equal((await stat(`${path}-wal`)).size, 0)
      assert.deepEqual({ ...other.prepare('SELECT value FROM meta WHERE key = ?').get('k') }, { value: 'v' })
    } finally {
      other.close()
    }
  })

  it('accepts busyTimeoutMs at its maximum and refuses one past it', () => {
    openDatabase(path, { busyTimeoutMs: busyTimeoutMsMax }).close()
    assert.throws(() => openDatabase(path, { busyTimeoutMs: busyTimeoutMsMax + 1 }), { name: 'InvalidInputError' })
    assert.throws(() => openDatabase(path, { busyTimeoutMs: -1 }), { name: 'InvalidInputError' })
  })

  it('fails a write with "database is locked" once the busy timeout passes', () => {
    openDatabase(path).close()
    const holder = new DatabaseSync(path)
    holder.exec('BEGIN IMMEDIATE')
    const db = openDatabase(path, { busyTimeoutMs: 1 })
    try {
      assert.throws(() => metaTable(db).set('k', 'v'), /locked/)
    } finally {
      holder.exec('ROLLBACK')
      holder.close()
      db.close()
    }
  })

  it('commits a transaction that returns and rolls back one that throws', () => {
    const db = openDatabase(path)
    try {
      const meta = metaTable(db)
      assert.equal(db.transaction(() => { meta.set('a', '1'); return 7 }), 7)
      assert.throws(() => db.transaction(() => { meta.set('b', '2'); throw new Error('boom') }), /boom/)
      assert.equal(meta.get('a'), '1')
      assert.equal(meta.get('b'), undefined)
      // A transaction inside another joins it: committed with it, and rolled back with it.
      assert.equal(db.transaction(() => db.transaction(() => { meta.set('c', '3'); return 1 })), 1)
      assert.equal(meta.get('c'), '3')
      assert.throws(() => db.transaction(() => { db.transaction(() => { meta.set('d', '4') }); throw new Error('outer') }), /outer/)
      assert.equal(meta.get('d'), undefined)
      assert.equal(db.sqlite.isTransaction, false)
    } finally {
      db.close()
    }
  })

})
