/**
 * A peer's bounded log history: the logger's tee, the batch writer with its row, age and buffer
 * caps (each one past), the filters, and live subscribers. Real SQLite, in memory.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { openDatabase, createLogRepo } from '../../src/store/index.ts'
import { LOG_BUFFER_RECORDS_MAX, LOG_FOLLOWERS_MAX, LogHistory } from '../../src/node/log-history.ts'
import type { RhizomeError } from '../../src/model/errors.ts'
import { createLogger, teeLogger } from '../../src/node/logger.ts'
import type { TeedRecord } from '../../src/node/logger.ts'
import type { LogRow } from '../../src/store/index.ts'

function record (atMs: number, msg: string, level: TeedRecord['level'] = 'info', ns = 'rhizome'): TeedRecord {
  return { atMs, level, ns, msg }
}

function opened (options: { rowsMax?: number, ageMsMax?: number, now?: () => number } = {}): { history: LogHistory, count: () => number } {
  const db = openDatabase(':memory:')
  const repo = createLogRepo(db)
  // Records here are at ms 1, 2, …: a clock near them, so the age cap keeps them.
  const history = new LogHistory({ now: () => 100_000, ...options })
  history.open(repo)
  return { history, count: repo.count }
}

describe('LogHistory', () => {
  it('keeps rowsMax records; one more deletes the oldest', () => {
    const { history, count } = opened({ rowsMax: 5 })
    for (let i = 1; i <= 5; i++) history.add(record(i, `m${i}`))
    history.flush()
    assert.equal(count(), 5)
    history.add(record(6, 'm6'))
    history.flush()
    assert.equal(count(), 5)
    assert.deepEqual(history.list({ limit: 100 }).map(r => r.msg), ['m2', 'm3', 'm4', 'm5', 'm6'])
  })

  it('deletes records older than ageMsMax, and keeps one exactly that old', () => {
    let nowMs = 10_000
    const { history } = opened({ ageMsMax: 1_000, now: () => nowMs })
    history.add(record(8_999, 'too old'))
    history.add(record(9_000, 'exactly the age'))
    history.add(record(9_500, 'recent'))
    history.flush()
    assert.deepEqual(history.list({ limit: 100 }).map(r => r.msg), ['exactly the age', 'recent'])
    nowMs = 10_600
    history.add(record(10_600, 'later'))
    history.flush()
    assert.deepEqual(history.list({ limit: 100 }).map(r => r.msg), ['later'])
  })

  it('holds LOG_BUFFER_RECORDS_MAX records before the database opens; one more is counted as dropped', () => {
    const history = new LogHistory({ now: () => 100_000 })
    for (let i = 0; i < LOG_BUFFER_RECORDS_MAX; i++) history.add(record(i, 'early'))
    assert.equal(history.dropped, 0)
    history.add(record(LOG_BUFFER_RECORDS_MAX, 'one too many'))
    assert.equal(history.dropped, 1)
    const repo = createLogRepo(openDatabase(':memory:'))
    history.open(repo)
    assert.equal(repo.count(), LOG_BUFFER_RECORDS_MAX)
  })

  it('filters by least level, namespace prefix, time and limit, newest records oldest first', () => {
    const { history } = opened()
    history.add(record(1, 'a', 'debug', 'rhizome:net'))
    history.add(record(2, 'b', 'info', 'rhizome:net:rpc'))
    history.add(record(3, 'c', 'warn', 'rhizome:tasks'))
    history.add(record(4, 'd', 'error', 'rhizome:network'))
    history.add(record(5, 'e', 'info', 'rhizome'))
    const msgs = (q: Parameters<LogHistory['list']>[0]): string[] => history.list(q).map(r => r.msg)
    assert.deepEqual(msgs({ limit: 100 }), ['a', 'b', 'c', 'd', 'e'])
    assert.deepEqual(msgs({ level: 'warn', limit: 100 }), ['c', 'd'])
    assert.deepEqual(msgs({ ns: 'rhizome:net', limit: 100 }), ['a', 'b', 'd'])
    assert.deepEqual(msgs({ ns: 'rhizome:net:', limit: 100 }), ['b'])
    assert.deepEqual(msgs({ sinceMs: 3, limit: 100 }), ['c', 'd', 'e'])
    assert.deepEqual(msgs({ limit: 2 }), ['d', 'e'])
    assert.deepEqual(msgs({ ns: '%', limit: 100 }), [], 'a prefix is text, not a LIKE pattern')
  })

  it('hands every record to subscribers as it is logged, until they unsubscribe', () => {
    const { history } = opened()
    const seen: LogRow[] = []
    const unsubscribe = history.subscribe(r => { seen.push(r) })
    history.subscribe(() => { throw new Error('a broken follower') })
    history.add(record(1, 'first'))
    unsubscribe()
    history.add(record(2, 'second'))
    assert.deepEqual(seen.map(r => r.msg), ['first'])
  })

  it(`takes ${LOG_FOLLOWERS_MAX} followers; one more is ERR_PEER_BUSY until one leaves`, () => {
    const { history } = opened()
    const leave = Array.from({ length: LOG_FOLLOWERS_MAX }, () => history.subscribe(() => {}))
    assert.throws(() => history.subscribe(() => {}), (err: RhizomeError) => err.code === 'ERR_PEER_BUSY' && err.retryable)
    leave[0]()
    history.subscribe(() => {})
  })
})

describe('teeLogger', () => {
  it('writes as before and keeps records at or above its level, children included, with fields as JSON', () => {
    const lines: string[] = []
    const kept: TeedRecord[] = []
    const inner = createLogger('rhizome', { level: 'debug', write: line => lines.push(line), now: () => 7 })
    const log = teeLogger(inner, { level: 'info', sink: r => kept.push(r), msgCharsMax: 10, fieldsCharsMax: 100, now: () => 7 })
    log.debug('not kept')
    log.info('kept', { peer: 'p1', error: new Error('boom'), big: 2n })
    log.child('tasks').warn('child')
    assert.equal(lines.length, 3, 'the inner logger still writes every line')
    assert.deepEqual(kept, [
      { atMs: 7, level: 'info', ns: 'rhizome', msg: 'kept', fields: '{"peer":"p1","error":{"name":"Error","message":"boom"},"big":"2"}' },
      { atMs: 7, level: 'warn', ns: 'rhizome:tasks', msg: 'child' }
    ])
  })

  it('cuts a message past msgCharsMax and replaces fields past fieldsCharsMax', () => {
    const kept: TeedRecord[] = []
    const inner = createLogger('rhizome', { level: 'info', write: () => {} })
    const log = teeLogger(inner, { level: 'info', sink: r => kept.push(r), msgCharsMax: 5, fieldsCharsMax: 13 })
    log.info('12345', { a: '12345' })
    log.info('123456', { a: '123456' })
    assert.equal(kept[0].msg, '12345')
    assert.equal(kept[0].fields, '{"a":"12345"}')
    assert.equal(kept[1].msg, '12345…')
    assert.match(kept[1].fields!, /fieldsCut/)
  })
})
