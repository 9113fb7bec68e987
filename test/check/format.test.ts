/**
 * What `rhizome check` prints: the human format (location, rule, hint, a code frame whose carets
 * sit under the finding, the summary), JSON in a fixed shape, and SARIF 2.1.0 with the fields
 * code-scanning tools require.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { describe, test } from 'node:test'
import { checkSource } from '../../src/check/index.ts'
import type { CheckResult, Finding } from '../../src/check/index.ts'
import { FRAME_SPAN_LINES_MAX, codeFrame, formatHuman, formatJson, formatSarif, summaryLine } from '../../src/check/format.ts'

const ROOT = path.resolve('/project')
const FILE = path.join(ROOT, 'flows', 'flow.ts')
const TEXT = [
  "import { workflow } from '@rhizome-net/rhizome'",
  "import { B, C } from './fns.ts'",
  '',
  'export const A = workflow(async (x: number) => {',
  '  const b = await B(x)',
  '  const c = await C(x)',
  '  return b + c',
  '})',
  ''
].join('\n')

const at = (line: number, column: number): { file: string, line: number, column: number } => ({ file: FILE, line, column })

const sequential: Finding = {
  kind: 'lost-parallelism',
  rule: 'sequential-awaits',
  message: '2 calls are awaited one after another, but neither uses the other\'s result',
  hint: 'start them together with Promise.all',
  workflow: 'A',
  start: at(5, 3),
  end: at(6, 23),
  fix: { description: 'await B and C together', edits: [{ start: 10, end: 20, text: 'x' }] },
  saving: { hops: 1, description: '2 sequential calls → 1 hop' }
}
const selfChild: Finding = {
  kind: 'deadlock',
  rule: 'self-child',
  message: 'A awaits a child run of itself with the same arguments',
  hint: 'call it with other arguments, or loop instead',
  workflow: 'A',
  start: at(7, 10),
  end: at(7, 15),
  path: [{ ...at(4, 14), note: 'A starts' }, { ...at(7, 10), note: 'A awaits A(x): the same run' }]
}

const read = (file: string): string | undefined => file === FILE ? TEXT : undefined

describe('formatHuman', () => {
  test('prints file:line:col, kind/rule, message, hint, fix and saving, relative to the working folder', () => {
    const out = formatHuman({ files: [FILE], findings: [sequential] }, read, { cwd: ROOT })
    const lines = out.split('\n')
    assert.equal(lines[0], `flows${path.sep}flow.ts:5:3  lost-parallelism/sequential-awaits  ${sequential.message}`)
    assert.ok(lines.includes('  hint: start them together with Promise.all'), out)
    assert.ok(lines.includes('  fix: await B and C together'), out)
    assert.ok(lines.includes('  saving: 2 sequential calls → 1 hop (1 hop off the critical path)'), out)
    assert.equal(lines.at(-2), '1 finding in 1 file')
  })

  test('the code frame shows 2 lines of context and carets under exactly the span', () => {
    const frame = codeFrame(TEXT, at(5, 3), at(6, 23))
    assert.deepEqual(frame, [
      '  3 |',
      '  4 | export const A = workflow(async (x: number) => {',
      '> 5 |   const b = await B(x)',
      '    |   ^^^^^^^^^^^^^^^^^^^^',
      '> 6 |   const c = await C(x)',
      '    |   ^^^^^^^^^^^^^^^^^^^^',
      '  7 |   return b + c',
      '  8 | })'
    ])
    const one = codeFrame(TEXT, at(7, 10), at(7, 15))
    assert.equal(one[one.indexOf('> 7 |   return b + c') + 1], '    |          ^^^^^')
  })

  test('carets line up under tabs, and a long span is cut at FRAME_SPAN_LINES_MAX lines', () => {
    assert.deepEqual(codeFrame('\tf(x)\n', at(1, 2), at(1, 6)), ['> 1 | \tf(x)', '    | \t^^^^', '  2 |'])
    const long = Array.from({ length: FRAME_SPAN_LINES_MAX + 5 }, (_, i) => `line${i + 1}`).join('\n')
    const frame = codeFrame(long, at(1, 1), at(FRAME_SPAN_LINES_MAX + 1, 6))
    assert.equal(frame.filter(l => l.startsWith('>')).length, FRAME_SPAN_LINES_MAX)
    assert.ok(frame.some(l => l.endsWith('… 1 more line')), frame.join('\n'))
  })

  test('a deadlock prints its cycle, one location per edge', () => {
    const out = formatHuman({ files: [FILE], findings: [selfChild] }, read, { cwd: ROOT })
    assert.match(out, /\n {2}cycle:\n {4}flows.flow\.ts:4:14 {2}A starts\n {4}flows.flow\.ts:7:10 {2}A awaits A\(x\): the same run\n/)
  })

  test('the summary counts findings and files; no findings says so', () => {
    const other = { ...sequential, start: { ...sequential.start, file: '/project/other.ts' } }
    assert.equal(summaryLine({ files: [FILE, '/project/other.ts'], findings: [sequential, selfChild, other] }), '3 findings in 2 files')
    assert.equal(formatHuman({ files: [FILE], findings: [] }, read), 'no findings (1 file checked)\n')
  })

  test('an unreadable file still prints the finding, without a frame', () => {
    const out = formatHuman({ files: [FILE], findings: [sequential] }, () => undefined, { cwd: ROOT })
    assert.ok(out.startsWith(`flows${path.sep}flow.ts:5:3`), out)
    assert.ok(!out.includes('|'), out)
  })

  test('formats what the analyzer finds in real source', () => {
    const result = checkSource(FILE, TEXT)
    const out = formatHuman(result, read, { cwd: ROOT })
    assert.match(out, /flow\.ts:5:3 {2}lost-parallelism\//)
    assert.match(out, /> 5 \| {3}const b = await B\(x\)/)
  })
})

describe('formatJson', () => {
  test('parses back to { files, findings } with every field, keys in a fixed order', () => {
    const shuffled = Object.fromEntries(Object.entries(sequential).reverse()) as unknown as Finding
    const parsed = JSON.parse(formatJson({ files: [FILE], findings: [shuffled, selfChild] })) as CheckResult
    assert.deepEqual(Object.keys(parsed), ['files', 'findings'])
    assert.deepEqual(parsed.findings, [sequential, selfChild])
    assert.deepEqual(Object.keys(parsed.findings[0]), ['kind', 'rule', 'message', 'hint', 'workflow', 'start', 'end', 'fix', 'saving'])
  })
})

describe('formatSarif', () => {
  const sarif = (result: CheckResult): any => JSON.parse(formatSarif(result, { root: ROOT }))

  test('is a SARIF 2.1.0 log with the tool, one rule per rule id, and a result per finding', () => {
    const log = sarif({ files: [FILE], findings: [sequential, selfChild, { ...sequential, start: at(6, 3) }] })
    assert.equal(log.version, '2.1.0')
    assert.match(log.$schema, /sarif-2\.1\.0/)
    assert.equal(log.runs.length, 1)
    const driver = log.runs[0].tool.driver
    assert.equal(driver.name, 'rhizome check')
    assert.match(driver.informationUri, /^https:\/\//)
    assert.deepEqual(driver.rules.map((r: any) => r.id), ['deadlock/self-child', 'lost-parallelism/sequential-awaits'])
    for (const rule of driver.rules) {
      assert.equal(typeof rule.shortDescription.text, 'string')
      assert.ok(rule.shortDescription.text.length > 0)
      assert.equal(typeof rule.help.text, 'string')
    }
    const results = log.runs[0].results
    assert.equal(results.length, 3)
    for (const r of results) {
      assert.equal(r.level, 'warning')
      assert.equal(typeof r.message.text, 'string')
      assert.equal(driver.rules[r.ruleIndex].id, r.ruleId)
    }
  })

  test('locations are relative URIs with the region of the finding; fixes and cycles come along', () => {
    const [seq, dead] = sarif({ files: [FILE], findings: [sequential, selfChild] }).runs[0].results
    const loc = seq.locations[0].physicalLocation
    assert.deepEqual(loc.artifactLocation, { uri: 'flows/flow.ts', uriBaseId: '%SRCROOT%' })
    assert.deepEqual(loc.region, { startLine: 5, startColumn: 3, endLine: 6, endColumn: 23 })
    assert.deepEqual(seq.fixes[0].artifactChanges[0].replacements, [{ deletedRegion: { charOffset: 10, charLength: 10 }, insertedContent: { text: 'x' } }])
    assert.deepEqual(dead.relatedLocations.map((l: any) => [l.message.text, l.physicalLocation.region.startLine]), [['A starts', 4], ['A awaits A(x): the same run', 7]])
  })

  test('a file outside the root is a file: URL; a clean run has no rules and no results', () => {
    const outside = { ...sequential, start: { ...sequential.start, file: '/elsewhere/x.ts' } }
    const [r] = sarif({ files: ['/elsewhere/x.ts'], findings: [outside] }).runs[0].results
    assert.equal(r.locations[0].physicalLocation.artifactLocation.uri, 'file:///elsewhere/x.ts')
    const clean = sarif({ files: [FILE], findings: [] })
    assert.deepEqual(clean.runs[0].tool.driver.rules, [])
    assert.deepEqual(clean.runs[0].results, [])
  })
})
