/** What `rhizome sql` and `rhizome logs` print: a table, CSV with RFC 4180 quoting, readable log lines. */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { sqlCsv, sqlTable } from '../../src/cli/commands/sql.ts'
import { formatLogRecord } from '../../src/cli/commands/logs.ts'

const RESULT = {
  columns: ['name', 'n', 'note'],
  rows: [['a,b', 1, null], ['say "hi"', 22, 'two\nlines'], ['bytes', 3, { '/': { bytes: 'AP8' } }]],
  truncated: false as const
}

describe('rhizome sql output', () => {
  test('a table: padded columns, NULL, newlines escaped, a row count', () => {
    assert.equal(sqlTable(RESULT), [
      'name      n   note',
      'a,b       1   NULL',
      'say "hi"  22  two\\nlines',
      'bytes     3   {"/":{"bytes":"AP8"}}',
      '(3 rows)',
      ''
    ].join('\n'))
    assert.equal(sqlTable({ columns: ['x'], rows: [], truncated: false }), 'x\n(0 rows)\n')
  })

  test('control characters a peer sent are shown, never obeyed: escape sequences, carriage returns, C1 controls', () => {
    const table = sqlTable({ columns: ['version'], rows: [['1.0\u001b[2J\rX\u009b31m\tok']], truncated: false })
    assert.equal(table, 'version\n1.0\\x1b[2J\\rX\\u009b31m\tok\n(1 row)\n')
    assert.ok(!/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(table), 'no control character but newline and tab reaches the terminal')
  })

  test('CSV: a field with a comma, quote or line break quoted, quotes doubled, NULL empty', () => {
    assert.equal(sqlCsv(RESULT), 'name,n,note\n"a,b",1,\n"say ""hi""",22,"two\nlines"\nbytes,3,"{""/"":{""bytes"":""AP8""}}"\n')
  })
})

describe('rhizome logs output', () => {
  const record = { id: 7, atMs: Date.UTC(2026, 0, 31, 12, 0, 0, 5), level: 'warn' as const, ns: 'rhizome:tasks', msg: 'task failed', fields: { task: 'bafy', attempts: 2 } }

  test('one readable line: time, level, namespace, message, fields', () => {
    assert.equal(formatLogRecord(record, false), '2026-01-31T12:00:00.005Z WARN  rhizome:tasks  task failed  task=bafy attempts=2\n')
    assert.equal(formatLogRecord({ ...record, fields: undefined }, false), '2026-01-31T12:00:00.005Z WARN  rhizome:tasks  task failed\n')
  })

  test('a message or field a peer sent cannot drive the terminal', () => {
    const line = formatLogRecord({ ...record, msg: 'bad\u001b]0;title\u0007', fields: { error: 'x\ny' } }, false)
    assert.equal(line, '2026-01-31T12:00:00.005Z WARN  rhizome:tasks  bad\\x1b]0;title\\x07  error=x\\ny\n')
  })

  test('--json: one object per line', () => {
    assert.deepEqual(JSON.parse(formatLogRecord({ type: 'log', ...record }, true)), record)
  })
})
