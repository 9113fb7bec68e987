/** The compile cache lives in the shared temp dir only when no other user can write to it. */
import assert from 'node:assert/strict'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { compileCacheDir, compileCacheDirProblem } from '../../src/cli/compile-cache.ts'

let root: string
before(async () => { root = await mkdtemp(join(tmpdir(), 'rhizome-compile-cache-test-')) })
after(async () => { await rm(root, { recursive: true, force: true }) })

test('a dir of this user, closed to others, may hold the cache; one open to others or a file may not', async () => {
  const own = join(root, 'own')
  await mkdir(own, { mode: 0o700 })
  assert.equal(compileCacheDirProblem(own), undefined)
  const open = join(root, 'open')
  await mkdir(open)
  await chmod(open, 0o777)
  assert.match(compileCacheDirProblem(open) ?? '', /open to other users/)
  await chmod(open, 0o750)
  assert.match(compileCacheDirProblem(open) ?? '', /open to other users/)
  const file = join(root, 'file')
  await writeFile(file, '')
  assert.match(compileCacheDirProblem(file) ?? '', /not a directory/)
  assert.ok(compileCacheDir().startsWith(tmpdir()))
})
