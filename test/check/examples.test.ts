// `rhizome check` on every example shipped with Rhizome and on the workflow modules Rhizome's own
// tests run: none of them has a finding. (Bundles ending .template.js are already bundled for the
// sandbox and are not source a user writes; test/fixtures/workflows/src/bad/ holds modules broken
// on purpose for bundler errors; test/fixtures/check/ is the checker's own corpus, and
// test/fixtures/auto-parallel/ the seed example written sequentially on purpose, whose one finding
// test/integration/check-auto-parallel.test.ts checks.)
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { checkFiles } from '../../src/check/index.ts'

const ROOT = path.join(import.meta.dirname, '../..')

/** Every .ts file under `dir` (relative to the repository) that imports the SDK. */
function workflowModules (dir: string, skip: (rel: string) => boolean): string[] {
  const out: string[] = []
  for (const entry of fs.readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })) {
    const rel = path.join(dir, entry)
    if (!rel.endsWith('.ts') || skip(rel)) continue
    if (/from '@rhizome-net\/rhizome'/.test(fs.readFileSync(path.join(ROOT, rel), 'utf8'))) out.push(rel)
  }
  return out.sort()
}

test('the examples and the workflows of Rhizome\'s own tests have no findings', () => {
  const files = [
    ...workflowModules('examples', () => false),
    ...workflowModules('test/fixtures', rel => rel.includes(`${path.sep}bad${path.sep}`) || rel.startsWith(path.join('test', 'fixtures', 'check')) || rel.startsWith(path.join('test', 'fixtures', 'auto-parallel')))
  ]
  for (const expected of ['examples/seed/flow.ts', 'examples/refs/flow.ts', 'test/fixtures/workflows/src/flow.ts', 'test/fixtures/workflows/src/parent.ts']) {
    assert.ok(files.includes(expected), `${expected} is checked`)
  }
  const result = checkFiles(files.map(f => path.join(ROOT, f)))
  assert.equal(result.files.length, files.length)
  assert.deepEqual(result.findings.map(f => `${f.start.file}:${f.start.line} ${f.rule}`), [])
})
