import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createLogger } from '../../src/node/logger.ts'
import { LOG_LEVELS } from '../../src/model/log.ts'
import { ConfigError } from '../../src/model/errors.ts'
import type { LogLevel, Logger } from '../../src/model/log.ts'

const EPOCH_MS = Date.UTC(2026, 0, 2, 3, 4, 5, 678)

/** A logger whose lines are collected, with a fixed clock. */
function collecting (level: LogLevel, namespace = 'rhizome'): { log: Logger, lines: string[], records: () => Array<Record<string, unknown>> } {
  const lines: string[] = []
  const log = createLogger(namespace, { level, write: line => lines.push(line), now: () => EPOCH_MS })
  const records = (): Array<Record<string, unknown>> => lines.map(line => {
    assert.ok(line.endsWith('\n'), 'a line ends with a newline')
    assert.equal(line.indexOf('\n'), line.length - 1, 'one event is exactly one line')
    return JSON.parse(line) as Record<string, unknown>
  })
  return { log, lines, records }
}

const EVENT_LEVELS = ['debug', 'info', 'warn', 'error'] as const

describe('createLogger', () => {
  test('one JSON line per event: t, level, ns and msg first, then the fields', () => {
    const { log, lines, records } = collecting('debug')
    log.info('peer joined', { peer: 'p1', count: 2, nested: { ok: true }, list: [1, 'a'] })
    log.warn('no fields')
    assert.equal(lines.length, 2)
    const [first, second] = records()
    assert.deepEqual(Object.keys(first).slice(0, 4), ['t', 'level', 'ns', 'msg'])
    assert.deepEqual(first, {
      t: '2026-01-02T03:04:05.678Z', level: 'info', ns: 'rhizome', msg: 'peer joined', peer: 'p1', count: 2, nested: { ok: true }, list: [1, 'a']
    })
    assert.deepEqual(second, { t: '2026-01-02T03:04:05.678Z', level: 'warn', ns: 'rhizome', msg: 'no fields' })
  })

  test('a message or field with newlines still makes one line', () => {
    const { log, records } = collecting('info')
    log.info('first\nsecond\r\nthird', { text: 'a\nb', '\nkey': 1 })
    const [record] = records()
    assert.equal(record.msg, 'first\nsecond\r\nthird')
    assert.equal(record.text, 'a\nb')
    assert.equal(record['\nkey'], 1)
  })

  test('each event level is written when at or above the configured level, and never when silent', () => {
    for (const configured of LOG_LEVELS) {
      const { log, records } = collecting(configured)
      for (const level of EVENT_LEVELS) log[level](`a ${level} event`)
      const expected = EVENT_LEVELS.slice(configured === 'silent' ? EVENT_LEVELS.length : EVENT_LEVELS.indexOf(configured))
      assert.deepEqual(records().map(r => r.level), [...expected], `configured ${configured}`)
    }
  })

  test('child loggers extend the namespace and share level, writer and clock', () => {
    const { log, records } = collecting('warn', 'rhizome')
    const rpc = log.child('net').child('rpc')
    assert.equal(log.namespace, 'rhizome')
    assert.equal(rpc.namespace, 'rhizome:net:rpc')
    rpc.info('filtered out by the parent level')
    rpc.warn('from the child', { protocol: '/x/1.0.0' })
    log.child('membership').error('from another child')
    log.error('from the parent')
    assert.deepEqual(records().map(r => [r.ns, r.msg, r.t]), [
      ['rhizome:net:rpc', 'from the child', '2026-01-02T03:04:05.678Z'],
      ['rhizome:membership', 'from another child', '2026-01-02T03:04:05.678Z'],
      ['rhizome', 'from the parent', '2026-01-02T03:04:05.678Z']
    ])
  })

  test('Error fields are written as name and message, without the stack', () => {
    const { log, records } = collecting('info')
    const config = new ConfigError('apiPort', 'must be between 0 and 65535')
    log.error('failed', { error: new TypeError('boom'), config, plain: new Error('plain', { cause: new Error('inner') }) })
    const [record] = records()
    assert.deepEqual(record.error, { name: 'TypeError', message: 'boom' })
    assert.deepEqual(record.config, { name: 'ConfigError', message: 'apiPort: must be between 0 and 65535' })
    assert.deepEqual(record.plain, { name: 'Error', message: 'plain' })
  })

  test('bigint fields are written as decimal strings', () => {
    const { log, records } = collecting('info')
    log.info('big', { n: 2n ** 64n, nested: { m: -5n }, list: [1n] })
    const [record] = records()
    assert.equal(record.n, '18446744073709551616')
    assert.deepEqual(record.nested, { m: '-5' })
    assert.deepEqual(record.list, ['1'])
  })

  test('fields that cannot be serialised do not throw: the event is still written, without them', () => {
    const { log, records } = collecting('info')
    const circular: Record<string, unknown> = { name: 'loop' }
    circular.self = circular
    const hostile = { toJSON: (): never => { throw new Error('no JSON for you') } }
    assert.doesNotThrow(() => log.info('circular', { circular }))
    assert.doesNotThrow(() => log.warn('hostile', { hostile, ok: 1 }))
    assert.deepEqual(records(), [
      { t: '2026-01-02T03:04:05.678Z', level: 'info', ns: 'rhizome', msg: 'circular', fieldsError: 'unserializable fields' },
      { t: '2026-01-02T03:04:05.678Z', level: 'warn', ns: 'rhizome', msg: 'hostile', fieldsError: 'unserializable fields' }
    ])
  })

  test('undefined fields and functions are left out; null is kept', () => {
    const { log, records } = collecting('info')
    log.info('sparse', { gone: undefined, fn: () => 1, kept: null })
    assert.deepEqual(records()[0], { t: '2026-01-02T03:04:05.678Z', level: 'info', ns: 'rhizome', msg: 'sparse', kept: null })
  })

  test('fields named like members of Object.prototype keep their names', () => {
    const { log, records } = collecting('info')
    log.info('names', { constructor: 'c', toString: 's', hasOwnProperty: 'h', valueOf: 1 })
    const record = records()[0]
    assert.equal(record.constructor, 'c')
    assert.equal(record.toString, 's')
    assert.equal(record.hasOwnProperty, 'h')
    assert.equal(record.valueOf, 1)
  })

  test('fields cannot overwrite t, level, ns or msg', () => {
    const { log, records } = collecting('info')
    log.error('real message', { t: 'x', level: 'debug', ns: 'other', msg: 'fake' })
    const [record] = records()
    assert.equal(record.level, 'error')
    assert.equal(record.ns, 'rhizome')
    assert.equal(record.msg, 'real message')
    assert.equal(record.t, '2026-01-02T03:04:05.678Z')
  })
})
