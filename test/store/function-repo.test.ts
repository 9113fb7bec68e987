import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { createFunctionRepo, functionListLengthMax, openDatabase } from '../../src/store/index.ts'
import type { Database } from '../../src/store/index.ts'

describe('FunctionRepo', () => {
  let dir: string
  let db: Database
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rhizome-fnrepo-'))
    db = openDatabase(join(dir, 'db.sqlite'))
  })
  after(async () => {
    db.close()
    await rm(dir, { recursive: true, force: true })
  })

  const row = (cid: string, name: string, addedMs: number) => ({
    cid, name, kind: 'js', codeCid: `code-${cid}`, codeBytes: 10, exports: ['a', 'b'], addedMs, origin: 'deploy' as const
  })

  test('adds once, keeps the first, finds by id and by newest name', () => {
    const repo = createFunctionRepo(db)
    assert.equal(repo.add(row('f1', 'math', 1)), true)
    assert.equal(repo.add({ ...row('f1', 'renamed', 2), origin: 'fetched' }), false)
    assert.equal(repo.get('f1')?.name, 'math')
    assert.deepEqual(repo.get('f1')?.exports, ['a', 'b'])
    repo.add(row('f2', 'math', 5))
    assert.equal(repo.byName('math')?.cid, 'f2')
    assert.equal(repo.byName('nothing'), undefined)
    assert.deepEqual(repo.list().map(r => r.cid), ['f2', 'f1'])
  })

  test('list limit: at most functionListLengthMax, one past is refused', () => {
    const repo = createFunctionRepo(db)
    assert.ok(repo.list({ limit: functionListLengthMax }).length >= 2)
    assert.throws(() => repo.list({ limit: functionListLengthMax + 1 }), { name: 'InvalidInputError' })
    assert.throws(() => repo.list({ limit: 0 }), { name: 'InvalidInputError' })
  })
})
