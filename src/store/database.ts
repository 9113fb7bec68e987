/**
 * A peer's SQLite database, kept in its data dir. `node:sqlite` is built into Node 24, so a
 * peer has no database server to start and nothing native to compile.
 *
 * Settings, and why:
 * - WAL journal: readers (the `rhizome sql` command, the dashboard) never block the writer.
 * - synchronous=FULL: every commit is on disk before it returns. A peer acknowledges what it
 *   stored (a memo entry, a run's progress) to other peers, and an acknowledgement must outlive
 *   the peer. SQLite's own words (pragma.html#pragma_synchronous): "WAL mode is always consistent
 *   with synchronous=NORMAL, but WAL mode does lose durability. A transaction committed in WAL mode
 *   with synchronous=NORMAL might roll back following a power loss or system crash. Transactions
 *   are durable across application crashes regardless of the synchronous setting or journal mode."
 *   So NORMAL would survive a killed process (SIGKILL, an abort) but could forget acknowledged
 *   commits when the machine loses power; FULL syncs the WAL on each commit and survives both.
 *   Cost: one fsync per commit (about 35 µs → 130 µs per small commit on an SSD; see
 *   docs/ARCHITECTURE.md, "Durability"). The blob store syncs every blob it writes, and the
 *   directory it renames the blob into.
 * - foreign_keys=ON: SQLite leaves them off by default for compatibility.
 * - busy_timeout: another connection (a CLI reading the same file) may hold the lock briefly.
 *
 * Schema changes are migrations applied in order, each in its own transaction, and the
 * version reached is kept in `PRAGMA user_version`. Migrations are only ever appended.
 */
import { DatabaseSync } from 'node:sqlite'
import { assert, InvalidInputError } from '../model/errors.ts'
import { SchemaTooNewError } from './errors.ts'

/** A schema change. `version` counts up from 1 without gaps. */
export interface Migration {
  version: number
  name: string
  sql: string
}

/**
 * The schema, oldest change first. Append new migrations; never edit one that has shipped,
 * because peers in the field have already applied it.
 */
export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'peers, peer events, blob index, meta',
    sql: `
      -- The last known membership view, so a restarted peer can redial the peers it knew.
      CREATE TABLE peers (
        peer_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        addrs TEXT NOT NULL, -- JSON array of multiaddr strings
        version TEXT,
        incarnation INTEGER,
        slots_free INTEGER,
        slots_max INTEGER,
        queue_length INTEGER,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL,
        score INTEGER NOT NULL DEFAULT 0
      ) STRICT;
      CREATE INDEX peers_last_seen ON peers (last_seen_ms);

      -- Membership transitions and misbehaviour reports, oldest pruned beyond a row limit.
      CREATE TABLE peer_events (
        id INTEGER PRIMARY KEY,
        peer_id TEXT NOT NULL,
        type TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        detail TEXT
      ) STRICT;
      CREATE INDEX peer_events_peer ON peer_events (peer_id, id);

      -- Index of the blob store on disk.
      CREATE TABLE blobs (
        cid TEXT PRIMARY KEY,
        bytes INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        pinned INTEGER NOT NULL DEFAULT 0
      ) STRICT;

      CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) STRICT;
    `
  },
  {
    version: 2,
    name: 'functions',
    sql: `
      -- Functions this peer holds (manifest and code blobs both stored), by manifest CID.
      CREATE TABLE functions (
        cid TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        code_cid TEXT NOT NULL,
        code_bytes INTEGER NOT NULL,
        exports TEXT NOT NULL, -- JSON array of export names
        added_ms INTEGER NOT NULL,
        origin TEXT NOT NULL -- 'deploy' (deployed here) or 'replica' / 'fetched' (pulled from a peer)
      ) STRICT;
      CREATE INDEX functions_name ON functions (name, added_ms);
    `
  },
  {
    version: 3,
    name: 'workflow runs, their tasks, memo and events',
    sql: `
      -- Workflow runs this peer drives (src/store/run-repo.ts).
      CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL, -- manifest CID of the workflow bundle
        export TEXT NOT NULL,
        args BLOB NOT NULL, -- dag-cbor array
        parent_run_id TEXT, -- set for child runs
        status TEXT NOT NULL, -- created, running, finished, continued, failed, cancelled
        result_cid TEXT,
        result BLOB, -- inline dag-cbor when small
        error TEXT, -- JSON FailureData
        started_ms INTEGER NOT NULL,
        finished_ms INTEGER,
        driver_peer TEXT NOT NULL
      ) STRICT;
      CREATE INDEX runs_started ON runs (started_ms);
      CREATE INDEX runs_status ON runs (status, started_ms);

      -- One row per distinct task of a run: where and when it ran.
      CREATE TABLE run_tasks (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        task_id TEXT NOT NULL,
        fn TEXT NOT NULL,
        export TEXT NOT NULL,
        peer TEXT,
        attempt INTEGER NOT NULL,
        status TEXT NOT NULL, -- scheduled, running, accepted, failed, cancelled
        error TEXT, -- JSON FailureData
        queued_ms INTEGER NOT NULL,
        started_ms INTEGER,
        finished_ms INTEGER,
        PRIMARY KEY (run_id, task_id)
      ) STRICT;

      -- The run's memo: task (or child run) id -> accepted result. Grow-only; a restart resumes from it.
      CREATE TABLE run_memo (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        task_id TEXT NOT NULL,
        result_cid TEXT NOT NULL,
        peer TEXT NOT NULL,
        inline BLOB,
        PRIMARY KEY (run_id, task_id)
      ) STRICT;

      -- The run's progress events, numbered from 1 within the run.
      CREATE TABLE run_events (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        type TEXT NOT NULL,
        json TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        PRIMARY KEY (run_id, seq)
      ) STRICT;
    `
  },
  {
    version: 4,
    name: 'durable runs: home-set membership, lease promises and memo replicas',
    sql: `
      -- Runs whose home set includes this peer (src/store/home-repo.ts).
      CREATE TABLE home_runs (
        run_id TEXT PRIMARY KEY,
        spec BLOB NOT NULL, -- dag-cbor { workflow, export, args, startedMs, opener }
        home_set TEXT NOT NULL, -- JSON array of peer ids, rendezvous order
        lease_epoch INTEGER, -- the lease promise: highest epoch granted, and to whom
        lease_holder TEXT,
        memo_epoch INTEGER NOT NULL DEFAULT 0, -- the replica's fence
        settled INTEGER NOT NULL DEFAULT 0, -- the outcome entry is in the memo
        opened_ms INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX home_runs_settled ON home_runs (settled, opened_ms);

      -- This peer's replica of each run's memo.
      CREATE TABLE home_memo (
        run_id TEXT NOT NULL REFERENCES home_runs (run_id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        cid TEXT NOT NULL,
        peer TEXT NOT NULL,
        bytes BLOB,
        PRIMARY KEY (run_id, id)
      ) STRICT, WITHOUT ROWID;
    `
  },
  {
    version: 5,
    name: 'small re-computable blobs kept in the blob index row',
    sql: `
      -- The bytes of a small task result (src/store/blob-store.ts, putCached), in its index row
      -- instead of a file of its own; NULL for blobs kept as files.
      ALTER TABLE blobs ADD COLUMN data BLOB;
    `
  },
  {
    version: 6,
    name: 'verified results: reputation, lie proofs and task attestations',
    sql: `
      -- What this peer has seen of each other peer's results (src/store/verify-repo.ts).
      CREATE TABLE reputation (
        peer_id TEXT PRIMARY KEY,
        agreements INTEGER NOT NULL,
        disagreements INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        lies INTEGER NOT NULL,
        banned_until_ms INTEGER NOT NULL, -- 0: not banned
        updated_ms INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX reputation_updated ON reputation (updated_ms);

      -- Proofs that a peer lied (its signed attestation against a quorum of others), made here
      -- or received by gossip; one per task and liar.
      CREATE TABLE lie_proofs (
        task_id TEXT NOT NULL,
        liar TEXT NOT NULL,
        received_ms INTEGER NOT NULL,
        proof BLOB NOT NULL,
        PRIMARY KEY (task_id, liar)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX lie_proofs_received ON lie_proofs (received_ms);

      -- Who computed a task's result and who agreed or disagreed, with their signatures.
      CREATE TABLE task_attestations (
        task_id TEXT NOT NULL,
        peer_id TEXT NOT NULL,
        result_cid TEXT NOT NULL,
        signature BLOB NOT NULL,
        role TEXT NOT NULL, -- accepted | agreed | disagreed | checked
        run_id TEXT, -- NULL for a task called outside a run
        at_ms INTEGER NOT NULL,
        PRIMARY KEY (task_id, peer_id, result_cid)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX task_attestations_at ON task_attestations (at_ms);
    `
    },
  {
    version: 7,
    name: 'operators: task attempts, log history, and the views `rhizome sql` reads',
    sql: `
      -- Every attempt of a run's task (run_tasks keeps only the last one's peer and times), kept by
      -- the triggers below as the run service updates run_tasks: no change to the run service and
      -- no extra commit. Cost: about 7 µs of CPU per task (two trigger writes), next to about 8 µs
      -- for the task's three run_tasks upserts themselves.
      CREATE TABLE task_attempts (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        task_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        peer TEXT NOT NULL,
        status TEXT NOT NULL, -- as run_tasks.status while this attempt was the last one
        error TEXT, -- JSON FailureData
        started_ms INTEGER,
        finished_ms INTEGER,
        PRIMARY KEY (run_id, task_id, attempt)
      ) STRICT, WITHOUT ROWID;
      CREATE TRIGGER run_tasks_attempt_insert AFTER INSERT ON run_tasks WHEN NEW.peer IS NOT NULL BEGIN
        INSERT INTO task_attempts (run_id, task_id, attempt, peer, status, error, started_ms, finished_ms)
          VALUES (NEW.run_id, NEW.task_id, NEW.attempt, NEW.peer, NEW.status, NEW.error, NEW.started_ms, NEW.finished_ms)
          ON CONFLICT (run_id, task_id, attempt) DO UPDATE SET peer = excluded.peer, status = excluded.status,
            error = excluded.error, started_ms = excluded.started_ms, finished_ms = excluded.finished_ms;
      END;
      CREATE TRIGGER run_tasks_attempt_update AFTER UPDATE ON run_tasks WHEN NEW.peer IS NOT NULL BEGIN
        INSERT INTO task_attempts (run_id, task_id, attempt, peer, status, error, started_ms, finished_ms)
          VALUES (NEW.run_id, NEW.task_id, NEW.attempt, NEW.peer, NEW.status, NEW.error, NEW.started_ms, NEW.finished_ms)
          ON CONFLICT (run_id, task_id, attempt) DO UPDATE SET peer = excluded.peer, status = excluded.status,
            error = excluded.error, started_ms = excluded.started_ms, finished_ms = excluded.finished_ms;
      END;

      -- The peer's recent log records (src/node/log-history.ts), bounded by rows and by age.
      CREATE TABLE log_events (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        level TEXT NOT NULL, -- debug, info, warn, error
        ns TEXT NOT NULL, -- the logger's namespace, e.g. rhizome:tasks
        msg TEXT NOT NULL,
        fields TEXT -- JSON object of the record's fields, or NULL
      ) STRICT;
      CREATE INDEX log_events_at ON log_events (at_ms);

      -- The views rhizome sql reads: the stable contract of SQL over a peer's history
      -- (README, "SQL over a peer's history"). Its read-only connection names them without the
      -- sql_ prefix (runs, tasks, …), in front of the tables. Change a view only by adding columns.
      CREATE VIEW sql_runs AS SELECT run_id, workflow, export, parent_run_id, status, driver_peer,
        started_ms, finished_ms, finished_ms - started_ms AS duration_ms, result_cid,
        json_extract(error, '$.code') AS error_code, json_extract(error, '$.message') AS error_message
        FROM runs;
      CREATE VIEW sql_tasks AS SELECT run_id, task_id, fn, export, peer, attempt AS attempts, status,
        queued_ms, started_ms, finished_ms, started_ms - queued_ms AS wait_ms, finished_ms - started_ms AS run_ms,
        finished_ms - queued_ms AS total_ms,
        json_extract(error, '$.code') AS error_code, json_extract(error, '$.message') AS error_message
        FROM run_tasks;
      CREATE VIEW sql_attempts AS SELECT a.run_id, a.task_id, a.attempt, a.peer,
        CASE WHEN n.attempt IS NOT NULL AND a.status IN ('scheduled', 'running') THEN 'retried' ELSE a.status END AS status,
        a.started_ms, coalesce(a.finished_ms, n.started_ms) AS finished_ms,
        coalesce(a.finished_ms, n.started_ms) - a.started_ms AS duration_ms,
        json_extract(a.error, '$.code') AS error_code, json_extract(a.error, '$.message') AS error_message
        FROM task_attempts a LEFT JOIN task_attempts n
          ON n.run_id = a.run_id AND n.task_id = a.task_id AND n.attempt = a.attempt + 1;
      CREATE VIEW sql_attestations AS SELECT task_id, run_id, peer_id AS peer, result_cid, role, at_ms,
        length(signature) AS signature_bytes
        FROM task_attestations;
      CREATE VIEW sql_peers AS SELECT p.peer_id, p.state, p.addrs, p.version, p.incarnation, p.slots_free,
        p.slots_max, p.queue_length, p.first_seen_ms, p.last_seen_ms, p.score,
        coalesce(r.agreements, 0) AS agreements, coalesce(r.disagreements, 0) AS disagreements,
        coalesce(r.failures, 0) AS failures, coalesce(r.lies, 0) AS lies, coalesce(r.banned_until_ms, 0) AS banned_until_ms
        FROM peers p LEFT JOIN reputation r ON r.peer_id = p.peer_id;
      CREATE VIEW sql_peer_events AS SELECT id, peer_id, type, at_ms, detail FROM peer_events;
      CREATE VIEW sql_functions AS SELECT cid, name, kind, code_cid, code_bytes, exports, added_ms, origin FROM functions;
      CREATE VIEW sql_blobs AS SELECT cid, bytes, created_ms, pinned, data IS NOT NULL AS inline FROM blobs;
      CREATE VIEW sql_log_events AS SELECT id, at_ms, level, ns, msg, fields FROM log_events;
    `
  },
  {
    version: 8,
    name: 'permissioned networks: membership certificates and revocations',
    sql: `
      -- Certificates of members this peer has checked (src/store/permission-repo.ts): the encoded
      -- bytes as the admin signed them, so a restarted peer re-checks nothing it cannot re-verify.
      CREATE TABLE certificates (
        peer_id TEXT NOT NULL,
        serial TEXT NOT NULL,
        bytes BLOB NOT NULL,
        not_after INTEGER NOT NULL,
        PRIMARY KEY (peer_id, serial)
      ) STRICT, WITHOUT ROWID;

      -- Revocations this peer enforces, one per serial or peer named ('s:' + serial, 'p:' + peer).
      CREATE TABLE revocations (
        key TEXT PRIMARY KEY,
        bytes BLOB NOT NULL,
        at_ms INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
    `
  },
  {
    version: 9,
    name: 'operators: a run task keeps its dependencies',
    sql: `
      -- The tasks whose results the run's code had received when it asked for this one: a JSON
      -- array of the last RUN_EVENT_DEPS_MAX (src/api/events.ts) of them, and how many there were.
      -- Written with the task's row (no extra commit), so a run opened after it ended still has
      -- its DAG. NULL for rows written before this migration: their dependencies were never kept.
      -- Cost: about 2 µs of CPU per task with one dependency, 10 µs with sixteen (the longer row is
      -- rewritten by the task's later upserts), next to about 17 µs for its three upserts before.
      ALTER TABLE run_tasks ADD COLUMN deps TEXT;
      ALTER TABLE run_tasks ADD COLUMN deps_count INTEGER;
      -- Views only ever grow columns: sql_tasks as before, plus the two above.
      DROP VIEW sql_tasks;
      CREATE VIEW sql_tasks AS SELECT run_id, task_id, fn, export, peer, attempt AS attempts, status,
        queued_ms, started_ms, finished_ms, started_ms - queued_ms AS wait_ms, finished_ms - started_ms AS run_ms,
        finished_ms - queued_ms AS total_ms,
        json_extract(error, '$.code') AS error_code, json_extract(error, '$.message') AS error_message,
        deps, deps_count
        FROM run_tasks;
    `
  }
]

/**
 * How long a statement waits for another connection's lock before failing with "database is
 * locked". Writes here take milliseconds; 5 s covers a WAL checkpoint on a slow disk while still
 * surfacing a lock that is stuck (a hung CLI) instead of hanging the peer.
 */
export const busyTimeoutMsDefault = 5_000
/** Upper bound for `busyTimeoutMs`: a peer that waits longer than a minute for its own disk is better off failing loudly. */
export const busyTimeoutMsMax = 60_000

export interface DatabaseOptions {
  /** Milliseconds to wait for a lock held by another connection. Default `busyTimeoutMsDefault`. */
  busyTimeoutMs?: number
  /** The schema to migrate to. Default `migrations`; tests pass their own. */
  migrations?: readonly Migration[]
}

export interface Database {
  /** The file the database lives in (or `:memory:`). */
  readonly path: string
  /** The raw connection, for repositories in this folder and for read-only SQL over history. */
  readonly sqlite: DatabaseSync
  /** The schema version after migrations ran. */
  readonly schemaVersion: number
  /**
   * Run `fn` in a write transaction (BEGIN IMMEDIATE): commits if it returns, rolls back if it
   * throws. `fn` must be synchronous; a transaction opened inside it joins this one.
   */
  transaction<T>(fn: () => T): T
  /** Checkpoint the WAL into the main file, truncate it, and close. Safe to call twice. */
  close(): void
}

/** Open (creating if needed) the database at `path` and bring its schema up to date. */
export function openDatabase (path: string, options: DatabaseOptions = {}): Database {
  const busyTimeoutMs = options.busyTimeoutMs ?? busyTimeoutMsDefault
  if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0 || busyTimeoutMs > busyTimeoutMsMax) {
    throw new InvalidInputError(`busyTimeoutMs must be an integer from 0 to ${busyTimeoutMsMax}, got ${busyTimeoutMs}`)
  }
  const schema = options.migrations ?? migrations
  checkMigrations(schema)

  const sqlite = new DatabaseSync(path, { timeout: busyTimeoutMs, enableForeignKeyConstraints: true })
  try {
    sqlite.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`)
    sqlite.exec('PRAGMA journal_mode = WAL')
    sqlite.exec('PRAGMA synchronous = FULL')
    sqlite.exec('PRAGMA foreign_keys = ON')
    const transaction = <T>(fn: () => T): T => runTransaction(sqlite, fn)
    const schemaVersion = migrate(sqlite, path, schema, transaction)
    return {
      path,
      sqlite,
      schemaVersion,
      transaction,
      close () {
        if (!sqlite.isOpen) return
        try {
          sqlite.exec('PRAGMA wal_checkpoint(TRUNCATE)')
        } finally {
          sqlite.close()
        }
      }
    }
  } catch (err) {
    sqlite.close()
    throw err
  }
}

function runTransaction<T> (sqlite: DatabaseSync, fn: () => T): T {
  // A transaction inside another joins it (a batch of repo calls that each use one): it commits
  // with the outer one, and a throw rolls the whole of the outer one back.
  if (sqlite.isTransaction) {
    const result = fn()
    assert(!(result instanceof Promise), 'a transaction body must be synchronous')
    return result
  }
  sqlite.exec('BEGIN IMMEDIATE')
  try {
    const result = fn()
    assert(!(result instanceof Promise), 'a transaction body must be synchronous')
    sqlite.exec('COMMIT')
    return result
  } catch (err) {
    if (sqlite.isTransaction) sqlite.exec('ROLLBACK')
    throw err
  }
}

function checkMigrations (schema: readonly Migration[]): void {
  schema.forEach((migration, i) => {
    assert(migration.version === i + 1, `migration ${migration.name} has version ${migration.version}, expected ${i + 1}`)
  })
}

function userVersion (sqlite: DatabaseSync): number {
  const row = sqlite.prepare('PRAGMA user_version').get() as { user_version: number }
  return row.user_version
}

/**
 * Apply the migrations newer than the database's `user_version`, one transaction each, so a
 * failing migration leaves the database at the last version that applied cleanly. The version
 * is re-read inside each transaction: another process may have migrated in the meantime.
 */
function migrate (sqlite: DatabaseSync, path: string, schema: readonly Migration[], transaction: <T>(fn: () => T) => T): number {
  const known = schema.length
  const found = userVersion(sqlite)
  if (found > known) throw new SchemaTooNewError(path, found, known)
  for (const migration of schema.slice(found)) {
    transaction(() => {
      const current = userVersion(sqlite)
      if (current > known) throw new SchemaTooNewError(path, current, known)
      if (current >= migration.version) return
      sqlite.exec(migration.sql)
      // user_version lives in the database header, which is written inside the transaction.
      sqlite.exec(`PRAGMA user_version = ${migration.version}`)
    })
  }
  return userVersion(sqlite)
}

/**
 * `fn` in one transaction committed with synchronous=NORMAL, then FULL again: no disk sync on the
 * commit. For what a crash of the machine may lose and nothing needs back — the run history (the
 * memo and the lease are what recovery reads), the blob index rows of re-computable results (the
 * files are the truth). The next FULL commit syncs the WAL up to its own frames, so it also hardens
 * every NORMAL commit before it.
 */
export function withoutSync<T> (db: Database, fn: () => T): T {
  // Inside another transaction the pragma cannot change what that one's commit does: just join it.
  if (db.sqlite.isTransaction) return db.transaction(fn)
  db.sqlite.exec('PRAGMA synchronous = NORMAL')
  try {
    return db.transaction(fn)
  } finally {
    db.sqlite.exec('PRAGMA synchronous = FULL')
  }
}
