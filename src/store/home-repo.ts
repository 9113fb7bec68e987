/**
 * Durable runs on disk, for the home-set peers of each run (src/net/home-service.ts): the run's
 * spec and home set, the lease promise, and this peer's replica of the memo. Every write is one
 * transaction with `synchronous=FULL` (src/store/database.ts): when a method returns, the data
 * survives a crash or power loss — the memo replica's ack and the lease's grant are sent only
 * after that.
 */
import { InvalidInputError } from '../model/errors.ts'
import type { Database } from './database.ts'

export interface HomeRunRow {
  runId: string
  /** dag-cbor of the run's spec (src/net/home-service.ts `RunSpec`). */
  spec: Uint8Array
  homeSet: string[]
  lease?: { epoch: number, holder: string }
  memoEpoch: number
  settled: boolean
  openedMs: number
}

export interface HomeMemoRow {
  id: string
  epoch: number
  cid: string
  peer: string
  bytes?: Uint8Array
}

export interface HomeRepo {
  /** Record that this peer is in the run's home set; false (nothing changes) if already known. */
  openRun (run: { runId: string, spec: Uint8Array, homeSet: string[], openedMs: number }): boolean
  getRun (runId: string): HomeRunRow | undefined
  /** Runs not settled yet, oldest first (a restarted peer rejoins them). */
  listUnsettled (limit: number): HomeRunRow[]
  setLease (runId: string, promise: { epoch: number, holder: string }): void
  /** The run's home set changed (a repair). */
  setHomeSet (runId: string, homeSet: string[]): void
  /** Write entries (upsert by id) and the fence, in one transaction. */
  putMemo (runId: string, entries: HomeMemoRow[], epoch: number): void
  listMemo (runId: string): HomeMemoRow[]
  getMemo (runId: string, id: string): HomeMemoRow | undefined
  setSettled (runId: string): void
}

/** Unsettled runs a peer rejoins at start: the run service drives at most LIVE_RUNS_MAX (64) at once; 10,000 is one list page. */
export const HOME_RUNS_LISTED_MAX = 10_000

export function createHomeRepo (db: Database): HomeRepo {
  const s = db.sqlite
  const insertRun = s.prepare('INSERT INTO home_runs (run_id, spec, home_set, opened_ms) VALUES (?, ?, ?, ?) ON CONFLICT (run_id) DO NOTHING')
  const selectRun = s.prepare('SELECT * FROM home_runs WHERE run_id = ?')
  const selectUnsettled = s.prepare('SELECT * FROM home_runs WHERE settled = 0 ORDER BY opened_ms ASC, run_id ASC LIMIT ?')
  const updateLease = s.prepare('UPDATE home_runs SET lease_epoch = ?, lease_holder = ? WHERE run_id = ?')
  const updateHomeSet = s.prepare('UPDATE home_runs SET home_set = ? WHERE run_id = ?')
  const updateFence = s.prepare('UPDATE home_runs SET memo_epoch = max(memo_epoch, ?) WHERE run_id = ?')
  const upsertMemo = s.prepare(`INSERT INTO home_memo (run_id, id, epoch, cid, peer, bytes) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (run_id, id) DO UPDATE SET epoch = excluded.epoch, cid = excluded.cid, peer = excluded.peer, bytes = excluded.bytes`)
  const selectMemo = s.prepare('SELECT id, epoch, cid, peer, bytes FROM home_memo WHERE run_id = ? ORDER BY id ASC')
  const selectMemoEntry = s.prepare('SELECT id, epoch, cid, peer, bytes FROM home_memo WHERE run_id = ? AND id = ?')
  const updateSettled = s.prepare('UPDATE home_runs SET settled = 1 WHERE run_id = ?')
  return {
    openRun (run) {
      return Number(insertRun.run(run.runId, run.spec, JSON.stringify(run.homeSet), run.openedMs).changes) > 0
    },
    getRun (runId) {
      const row = selectRun.get(runId) as Record<string, unknown> | undefined
      return row === undefined ? undefined : rowOf(row)
    },
    listUnsettled (limit) {
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > HOME_RUNS_LISTED_MAX) throw new InvalidInputError(`limit must be 1..${HOME_RUNS_LISTED_MAX}`)
      return (selectUnsettled.all(limit) as Array<Record<string, unknown>>).map(rowOf)
    },
    setLease (runId, promise) {
      updateLease.run(promise.epoch, promise.holder, runId)
    },
    setHomeSet (runId, homeSet) {
      updateHomeSet.run(JSON.stringify(homeSet), runId)
    },
    putMemo (runId, entries, epoch) {
      db.transaction(() => {
        for (const e of entries) upsertMemo.run(runId, e.id, e.epoch, e.cid, e.peer, e.bytes ?? null)
        updateFence.run(epoch, runId)
      })
    },
    listMemo (runId) {
      return (selectMemo.all(runId) as Array<Record<string, unknown>>).map(memoRowOf)
    },
    getMemo (runId, id) {
      const r = selectMemoEntry.get(runId, id) as Record<string, unknown> | undefined
      return r === undefined ? undefined : memoRowOf(r)
    },
    setSettled (runId) {
      updateSettled.run(runId)
    }
  }
}

function memoRowOf (r: Record<string, unknown>): HomeMemoRow {
  const row: HomeMemoRow = { id: r.id as string, epoch: Number(r.epoch), cid: r.cid as string, peer: r.peer as string }
  if (r.bytes !== null && r.bytes !== undefined) row.bytes = new Uint8Array(r.bytes as Uint8Array)
  return row
}

function rowOf (r: Record<string, unknown>): HomeRunRow {
  const row: HomeRunRow = {
    runId: r.run_id as string,
    spec: new Uint8Array(r.spec as Uint8Array),
    homeSet: JSON.parse(r.home_set as string) as string[],
    memoEpoch: Number(r.memo_epoch),
    settled: Number(r.settled) === 1,
    openedMs: Number(r.opened_ms)
  }
  if (r.lease_epoch !== null && r.lease_holder !== null) row.lease = { epoch: Number(r.lease_epoch), holder: r.lease_holder as string }
  return row
}
