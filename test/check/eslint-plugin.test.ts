/**
 * The ESLint plugin under ESLint's own Linter (flat config, typescript-eslint's parser): each rule
 * reports its kind of finding at the analyzer's location, the lost-parallelism fix rewrites the
 * source, the analysis runs once per file for all three rules, and a clean workflow gets nothing.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Linter } from 'eslint'
import tseslint from 'typescript-eslint'
import plugin from '../../src/check/eslint-plugin.ts'
import { checkSource } from '../../src/check/index.ts'

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/check-cli')
const fixture = (name: string): string => path.join(FIXTURES, name)

function config (rules: Record<string, 'error' | 'warn' | 'off'>): Linter.Config[] {
  return [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser }, plugins: { rhizome: plugin as any }, rules }]
}

const ALL = { 'rhizome/lost-parallelism': 'error', 'rhizome/deadlock': 'error', 'rhizome/nondeterminism': 'error' } as const

describe('the ESLint plugin', () => {
  test('is a flat-config plugin: meta, the three rules, and a recommended config that names itself', () => {
    assert.equal(plugin.meta.name, '@rhizome-net/rhizome/eslint-plugin')
    assert.deepEqual(Object.keys(plugin.rules).sort(), ['deadlock', 'lost-parallelism', 'nondeterminism'])
    assert.equal(plugin.rules['lost-parallelism'].meta.fixable, 'code')
    assert.equal(plugin.configs.recommended.plugins.rhizome, plugin)
  })

  test('reports each finding under its kind\'s rule, at the analyzer\'s line and column', async () => {
    const file = fixture('clock.ts')
    const text = await readFile(file, 'utf8')
    const messages = new Linter({ configType: 'flat' }).verify(text, config(ALL), { filename: file })
    const expected = checkSource(file, text).findings
    assert.ok(expected.length > 0)
    assert.deepEqual(messages.map(m => [m.ruleId, m.line, m.column, m.endLine, m.endColumn]),
      expected.map(f => [`rhizome/${f.kind}`, f.start.line, f.start.column, f.end.line, f.end.column]))
    assert.match(messages[0].message, /\[date\]\. .+\.$/)
  })

  test('only the rules that are on report: nondeterminism off hides the clock findings', async () => {
    const file = fixture('clock.ts')
    const messages = new Linter({ configType: 'flat' }).verify(await readFile(file, 'utf8'), config({ ...ALL, 'rhizome/nondeterminism': 'off' }), { filename: file })
    assert.deepEqual(messages, [])
  })

  test('the lost-parallelism fix rewrites the source to Promise.all, which then lints clean', async () => {
    const file = fixture('sequential.ts')
    const linter = new Linter({ configType: 'flat' })
    const text = await readFile(file, 'utf8')
    const before = linter.verify(text, config(ALL), { filename: file })
    assert.deepEqual(before.map(m => [m.ruleId, m.line]), [['rhizome/lost-parallelism', 6]])
    assert.ok(before[0].fix !== undefined)
    const fixed = linter.verifyAndFix(text, config(ALL), { filename: file })
    assert.equal(fixed.fixed, true)
    assert.match(fixed.output, /await Promise\.all\(\[B\(x\), C\(x\), D\(x\)\]\)/)
    assert.deepEqual(fixed.messages, [])
  })

  test('a clean workflow, and a file that is no workflow, get no message', async () => {
    const linter = new Linter({ configType: 'flat' })
    assert.deepEqual(linter.verify(await readFile(fixture('clean.ts'), 'utf8'), config(ALL), { filename: fixture('clean.ts') }), [])
    assert.deepEqual(linter.verify(await readFile(fixture('fns.ts'), 'utf8'), config(ALL), { filename: fixture('fns.ts') }), [])
  })

  test('the analysis runs once per file, however many of the rules are on', async () => {
    // Each rule reads the file's text only to analyze it; count those reads through one proxy per
    // SourceCode (the plugin's cache key), with all three rules on.
    let reads = 0
    const proxies = new WeakMap<object, object>()
    const counted = (sourceCode: { text: string }): { text: string } => {
      let proxy = proxies.get(sourceCode)
      if (proxy === undefined) {
        proxy = new Proxy(sourceCode, { get: (target, key) => { if (key === 'text') reads++; return Reflect.get(target, key) } })
        proxies.set(sourceCode, proxy)
      }
      return proxy as { text: string }
    }
    const wrapped = Object.fromEntries(Object.entries(plugin.rules).map(([name, rule]) => [name, {
      meta: rule.meta,
      create: (context: any) => rule.create({ filename: context.filename, sourceCode: counted(context.sourceCode), report: d => context.report(d) })
    }]))
    const file = fixture('clock.ts')
    const linter = new Linter({ configType: 'flat' })
    const lint = (): Linter.LintMessage[] => linter.verify(readFileSync(file, 'utf8'), [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser }, plugins: { rhizome: { rules: wrapped } as any }, rules: ALL }], { filename: file })
    assert.equal(lint().length, 2)
    assert.equal(reads, 1)
    // A second lint is a new SourceCode: analyzed again, once.
    assert.equal(lint().length, 2)
    assert.equal(reads, 2)
  })
})
