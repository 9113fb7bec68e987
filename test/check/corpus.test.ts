// The corpus: small workflow modules, each with its expected findings written in it as
// `// expect: KIND RULE` comments on the line where the finding starts. A module with none must
// produce no finding. Every fixture is checked both from disk (checkFiles) and from text with a
// readFile for its imports (checkSource), and both must give exactly the expected set.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { describe, test } from 'node:test'
import { checkFiles, checkSource } from '../../src/check/index.ts'
import type { Finding } from '../../src/check/index.ts'

const DIR = path.join(import.meta.dirname, '../fixtures/check')
const files = fs.readdirSync(DIR).filter(f => f.endsWith('.ts')).sort()
const readFile = (p: string): string | undefined => { try { return fs.readFileSync(p, 'utf8') } catch { return undefined } }

/** `kind rule line` for every `// expect:` comment of the module. */
function expected (text: string): string[] {
  const out: string[] = []
  text.split('\n').forEach((line, i) => {
    const m = /\/\/ expect: (.*)$/.exec(line)
    if (m !== null) for (const one of m[1].split(';')) out.push(`${one.trim().split(/\s+/).join(' ')} ${i + 1}`)
  })
  return out.sort()
}

function found (findings: Finding[]): string[] {
  return findings.map(f => `${f.kind} ${f.rule} ${f.start.line}`).sort()
}

describe('check corpus', () => {
  test('holds at least 40 workflow modules, clean ones and ones with findings of every kind', () => {
    const modules = files.filter(f => /@rhizome-net\/rhizome/.test(fs.readFileSync(path.join(DIR, f), 'utf8')))
    assert.ok(modules.length >= 40, `${modules.length} workflow modules`)
    const texts = modules.map(f => fs.readFileSync(path.join(DIR, f), 'utf8'))
    assert.ok(texts.filter(t => expected(t).length === 0).length >= 15, 'clean modules')
    for (const kind of ['lost-parallelism', 'deadlock', 'nondeterminism']) assert.ok(texts.some(t => t.includes(`expect: ${kind}`)), kind)
  })

  for (const file of files) {
    test(file, () => {
      const full = path.join(DIR, file)
      const text = fs.readFileSync(full, 'utf8')
      const want = expected(text)
      assert.deepEqual(found(checkFiles([full]).findings), want, 'checkFiles')
      assert.deepEqual(found(checkSource(full, text, readFile).findings), want, 'checkSource')
      for (const f of checkFiles([full]).findings) {
        assert.ok(f.message.length > 0 && f.hint.length > 0, 'every finding says what and what to do')
        assert.ok(f.start.line <= f.end.line, 'a finding spans forward')
      }
    })
  }
})
