/**
 * SQL over a peer's history and its log history, on real peers: after a real workflow run, a
 * join over the runs and tasks views answers it; a write, an ATTACH, a query that runs too long
 * and one with too many rows each get their named error; the peer keeps answering /v1/status
 * while a long query runs (it runs in a child process, killed at its limit). Logs: the history
 * answers with filters, and a follower sees a record logged after it started following.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { createManifest, encodeManifest } from '../../src/functions/index.ts'
import { SseDecoder } from '../../src/api/events.ts'
import { LOG_LIST_MAX, SQL_ROWS_MAX, SQL_TEXT_BYTES_MAX, SQL_TIMEOUT_MS_MAX } from '../../src/api/limits.ts'
import { LOG_NS_CHARS_MAX } from '../../src/node/http-api.ts'
import { TestNetwork, runCli, runEvents, waitFor } from '../helpers/peers.ts'
import type { LogRecordView, SqlResult } from '../../src/api/types.ts'
import type { TestPeer } from '../helpers/peers.ts'

const FNS = fileURLToPath(new URL('../fixtures/runs/fns.ts', import.meta.url))
const FLOW = fileURLToPath(new URL('../fixtures/runs/flow.template.js', import.meta.url))

/** A recursive CTE that counts far past any time limit (SQLite counts ~10^7 a second). */
const COUNT_TO_1E9 = 'with recursive c(x) as (select 1 union all select x + 1 from c where x < 1000000000) select count(*) from c'

describe('SQL over a peer\'s history, and its logs, on real peers', { timeout: 240_000 }, () => {
  let net: TestNetwork
  let driver: TestPeer
  let runId: string

  before(async () => {
    net = await TestNetwork.create()
    driver = await net.addPeer(['--slots', '1', '--log-level', 'debug'])
    const other = await net.addPeer(['--bootstrap', driver.tcpAddr, '--slots', '1'])
    await waitFor('the peers to see each other', async () => {
      for (const p of [driver, other]) if ((await p.peers()).filter(x => x.state === 'alive').length < 1) return false
      return true
    }, 60_000, 200)
    const deployed = await runCli(['deploy', FNS, '--replicas', '2', '--json', '--data-dir', driver.dataDir])
    assert.equal(deployed.code, 0, deployed.stderr)
    const fnId = (JSON.parse(deployed.stdout) as { cid: string }).cid
    const code = new TextEncoder().encode((await readFile(FLOW, 'utf8')).replaceAll('FNS', fnId))
    const manifest = encodeManifest(await createManifest({ name: 'flow', kind: 'js', code, exports: ['A', 'fanOut', 'chain', 'parent', 'failing', 'selfCycle'] }))
    const res = await fetch(`${driver.apiUrl}/v1/functions`, { method: 'POST', headers: driver.authorized(), body: dagCbor.encode({ manifest, code, replicas: 1 }) as BodyInit, signal: AbortSignal.timeout(60_000) })
    assert.equal(res.status, 200, await res.clone().text())
    const workflow = (await res.json() as { cid: string }).cid
    runId = (await driver.api<{ runId: string }>('/v1/runs', { method: 'POST', body: JSON.stringify({ workflow, export: 'A', args: [5, 0] }) })).runId
    const events = await runEvents(driver, runId, 120_000)
    assert.equal(events.at(-1)?.type, 'run:finished')
  })
  after(async () => { await net?.close() })

  async function sql (body: Record<string, unknown>): Promise<{ status: number, body: SqlResult & { error?: { code: string, message: string, hint?: string } } }> {
    const res = await fetch(`${driver.apiUrl}/v1/sql`, { method: 'POST', headers: driver.authorized({ 'content-type': 'application/json' }), body: JSON.stringify(body), signal: AbortSignal.timeout(60_000) })
    return { status: res.status, body: await res.json() as SqlResult & { error?: { code: string, message: string } } }
  }

  test('a join over runs and tasks answers the run just finished', async () => {
    const { status, body } = await sql({ sql: `select r.run_id, r.status, t.export, t.peer, t.status as task_status, t.run_ms
      from runs r join tasks t using (run_id) where r.run_id = '${runId}' order by t.export` })
    assert.equal(status, 200, JSON.stringify(body))
    assert.deepEqual(body.columns, ['run_id', 'status', 'export', 'peer', 'task_status', 'run_ms'])
    assert.deepEqual(body.rows.map(r => [r[0], r[1], r[2], r[4]]), [[runId, 'finished', 'B', 'accepted'], [runId, 'finished', 'C', 'accepted'], [runId, 'finished', 'D', 'accepted']])
    for (const row of body.rows) assert.equal(typeof row[3], 'string')
    assert.equal(body.truncated, false)
    // The README's examples answer from the same history.
    const today = await sql({ sql: `select peer, count(*) as tasks from tasks
      where status = 'accepted' and finished_ms >= unixepoch('now', 'start of day') * 1000
      group by peer order by tasks desc limit 1` })
    assert.equal(today.status, 200, JSON.stringify(today.body))
    const perPeer = new Map<string, number>()
    for (const row of body.rows) perPeer.set(row[3] as string, (perPeer.get(row[3] as string) ?? 0) + 1)
    assert.equal(today.body.rows[0][1], Math.max(...perPeer.values()))
    const slowest = await sql({ sql: `select task_id, export, peer, run_ms, wait_ms from tasks where run_id = '${runId}' order by run_ms desc limit 10` })
    const runMs = slowest.body.rows.map(r => r[3] as number)
    assert.deepEqual(runMs, [...runMs].sort((a, b) => b - a))
    // Every task's attempts are kept with the peer that ran them.
    const attempts = await sql({ sql: `select count(*), count(distinct task_id), min(peer is not null) from attempts where run_id = '${runId}'` })
    assert.equal(attempts.status, 200, JSON.stringify(attempts.body))
    assert.ok((attempts.body.rows[0][0] as number) >= 3)
    assert.deepEqual(attempts.body.rows[0].slice(1), [3, 1])
  })

  test('writes, ATTACH, raw tables and syntax errors get their named errors', async () => {
    const cases: Array<[string, number, string]> = [
      [`insert into main.runs (run_id) values ('x')`, 400, 'ERR_SQL_READ_ONLY'],
      ['delete from runs', 400, 'ERR_SQL_READ_ONLY'],
      ['drop table main.log_events', 400, 'ERR_SQL_READ_ONLY'],
      ['create table t (a)', 400, 'ERR_SQL_READ_ONLY'],
      ['pragma journal_mode = delete', 400, 'ERR_SQL_READ_ONLY'],
      ["attach database '/tmp/other.db' as other", 400, 'ERR_SQL_ATTACH_REFUSED'],
      ['detach database main', 400, 'ERR_SQL_ATTACH_REFUSED'],
      ['select * from main.run_memo', 400, 'ERR_SQL_INVALID'],
      ['selec 1', 400, 'ERR_SQL_INVALID'],
      ['select 1; select 2', 400, 'ERR_SQL_INVALID']
    ]
    for (const [text, status, code] of cases) {
      const answer = await sql({ sql: text })
      assert.equal(answer.status, status, `${text}: ${JSON.stringify(answer.body)}`)
      assert.equal(answer.body.error?.code, code, text)
      assert.ok(answer.body.error?.hint !== undefined, text)
    }
    assert.match((await sql({ sql: 'selec 1' })).body.error!.message, /syntax error/)
    // Nothing was written: the run is still there.
    assert.deepEqual((await sql({ sql: `select count(*) from runs where run_id = '${runId}'` })).body.rows, [[1]])
  })

  test('a query past its time limit is stopped while the peer keeps answering', async () => {
    let settled = false
    const long = sql({ sql: COUNT_TO_1E9, timeoutMs: 3_000 }).finally(() => { settled = true })
    let statusAnswersWhileRunning = 0
    while (!settled && statusAnswersWhileRunning < 5) {
      await driver.api('/v1/status')
      if (!settled) statusAnswersWhileRunning++
    }
    const { status, body } = await long
    assert.equal(status, 504, JSON.stringify(body))
    assert.equal(body.error?.code, 'ERR_SQL_TIMEOUT')
    assert.equal(statusAnswersWhileRunning, 5)
    // The peer still answers queries afterwards.
    assert.deepEqual((await sql({ sql: 'select 1' })).body.rows, [[1]])
  })

  test('rows: up to maxRows answer, one more is ERR_SQL_TOO_MANY_ROWS', async () => {
    const count = (n: number): string => `with recursive c(x) as (select 1 union all select x + 1 from c where x < ${n}) select x from c`
    const ten = await sql({ sql: count(10), maxRows: 10 })
    assert.equal(ten.status, 200)
    assert.equal(ten.body.rows.length, 10)
    const eleven = await sql({ sql: count(11), maxRows: 10 })
    assert.equal(eleven.status, 413)
    assert.equal(eleven.body.error?.code, 'ERR_SQL_TOO_MANY_ROWS')
  })

  test('request limits, one past each', async () => {
    assert.equal((await sql({ sql: 'select 1', maxRows: SQL_ROWS_MAX })).status, 200)
    assert.equal((await sql({ sql: 'select 1', maxRows: SQL_ROWS_MAX + 1 })).body.error?.code, 'ERR_INVALID_INPUT')
    assert.equal((await sql({ sql: 'select 1', timeoutMs: SQL_TIMEOUT_MS_MAX })).status, 200)
    assert.equal((await sql({ sql: 'select 1', timeoutMs: SQL_TIMEOUT_MS_MAX + 1 })).body.error?.code, 'ERR_INVALID_INPUT')
    const padded = (bytes: number): string => 'select 1 --'.padEnd(bytes, 'x')
    assert.equal((await sql({ sql: padded(SQL_TEXT_BYTES_MAX) })).status, 200)
    const over = await sql({ sql: padded(SQL_TEXT_BYTES_MAX + 1) })
    assert.equal(over.status, 413)
    assert.equal(over.body.error?.code, 'ERR_TOO_LARGE')
  })

  test('rhizome sql prints a table, CSV and JSON', async () => {
    const text = `select export, status from tasks where run_id = '${runId}' order by export`
    const table = await runCli(['sql', text, '--data-dir', driver.dataDir])
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /^export\s+status\nB\s+accepted\nC\s+accepted\nD\s+accepted\n\(3 rows\)\n$/)
    const csv = await runCli(['sql', text, '--csv', '--data-dir', driver.dataDir])
    assert.equal(csv.stdout, 'export,status\nB,accepted\nC,accepted\nD,accepted\n')
    const json = await runCli(['sql', text, '--json', '--data-dir', driver.dataDir])
    assert.deepEqual(JSON.parse(json.stdout), { columns: ['export', 'status'], rows: [['B', 'accepted'], ['C', 'accepted'], ['D', 'accepted']], truncated: false })
    const refused = await runCli(['sql', 'delete from runs', '--data-dir', driver.dataDir])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /ERR_SQL_READ_ONLY/)
  })

  test('logs: the history answers with level and namespace filters, and SQL reads it too', async () => {
    const all = (await driver.api<{ records: LogRecordView[] }>('/v1/logs?limit=10000')).records
    assert.ok(all.some(r => r.ns === 'rhizome' && r.msg === 'started'), 'the start is in the history')
    for (let i = 1; i < all.length; i++) assert.ok(all[i].id! > all[i - 1].id!, 'oldest first')
    const debug = (await driver.api<{ records: LogRecordView[] }>('/v1/logs?level=debug&ns=rhizome:api&limit=10000')).records
    for (const r of debug) assert.ok(r.ns.startsWith('rhizome:api'), r.ns)
    const infoUp = (await driver.api<{ records: LogRecordView[] }>('/v1/logs?level=info&limit=10000')).records
    assert.ok(infoUp.length > 0)
    for (const r of infoUp) assert.ok(r.level !== 'debug')
    const two = (await driver.api<{ records: LogRecordView[] }>('/v1/logs?limit=2')).records
    assert.equal(two.length, 2)
    const status = async (search: string): Promise<number> => (await fetch(`${driver.apiUrl}/v1/logs${search}`, { headers: driver.authorized() })).status
    assert.equal(await status('?level=loud'), 400)
    assert.equal(await status(`?limit=${LOG_LIST_MAX}`), 200)
    assert.equal(await status(`?limit=${LOG_LIST_MAX + 1}`), 400)
    assert.equal(await status(`?ns=${'n'.repeat(LOG_NS_CHARS_MAX)}`), 200)
    assert.equal(await status(`?ns=${'n'.repeat(LOG_NS_CHARS_MAX + 1)}`), 400)
    assert.equal(await status('?since=yesterday'), 400)
    const since = all.at(-1)!.atMs
    const recent = (await driver.api<{ records: LogRecordView[] }>(`/v1/logs?since=${new Date(since).toISOString()}&limit=10000`)).records
    assert.ok(recent.length >= 1 && recent.every(r => r.atMs >= since))
    const viaSql = await sql({ sql: "select count(*) from log_events where ns = 'rhizome' and msg = 'started'" })
    assert.deepEqual(viaSql.body.rows, [[1]])
  })

  test('logs --follow: a record logged after following started arrives', async () => {
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), 30_000)
    try {
      const res = await fetch(`${driver.apiUrl}/v1/logs?ns=rhizome:api&limit=1`, { headers: driver.authorized({ accept: 'text/event-stream' }), signal: controller.signal })
      assert.equal(res.status, 200)
      const reader = res.body!.getReader()
      const decoder = new SseDecoder()
      const marker = `/v1/follow-marker-${Date.now()}`
      // A request without the token is refused and logged (debug, rhizome:api) with its path.
      const refused = await fetch(`${driver.apiUrl}${marker}`)
      assert.equal(refused.status, 401)
      let found: LogRecordView | undefined
      while (found === undefined) {
        const chunk = await reader.read()
        assert.ok(!chunk.done, 'the stream stays open')
        for (const event of decoder.push(chunk.value) as Array<{ type: string } & LogRecordView>) {
          assert.equal(event.type, 'log')
          assert.ok(event.ns.startsWith('rhizome:api'))
          if (event.fields?.path === marker) found = event
        }
      }
      assert.equal(found.msg, 'api request refused')
      await reader.cancel()
    } finally {
      clearTimeout(timer)
      controller.abort()
    }
    const cli = await runCli(['logs', '--ns', 'rhizome:api', '--limit', '5', '--json', '--data-dir', driver.dataDir])
    assert.equal(cli.code, 0, cli.stderr)
    const lines = cli.stdout.trim().split('\n').map(l => JSON.parse(l) as LogRecordView)
    assert.ok(lines.length >= 1 && lines.length <= 5)
    for (const l of lines) assert.ok(l.ns.startsWith('rhizome:api'))
  })
})
