// What a finding carries (saving, fix, path, workflow), the analyzer's limits one past, and
// checking from text with and without a way to read the imports.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { checkFiles, checkSource, workflowGraph } from '../../src/check/index.ts'
import { HELPER_DEPTH_MAX } from '../../src/check/nondeterminism.ts'
import { LABEL_CHARS_MAX } from '../../src/check/graph.ts'

const SDK = "import { workflow } from '@rhizome-net/rhizome'\n"
const FNS = 'export async function B (x: number) { return x }\nexport async function C (x: number) { return x }\nexport async function D (x: number) { return x }\n'
const SEQ = `${SDK}import { B, C, D } from './fns.ts'\nexport const A = workflow(async (x: number) => {\n  const b = await B(x)\n  const c = await C(x)\n  const d = await D(x)\n  return b + c - d\n})\n`

/** A readFile over in-memory files under /w/. */
function files (entries: Record<string, string>): (p: string) => string | undefined {
  return p => entries[p]
}

describe('check findings', () => {
  test('the sequential seed example: saving, fix and where', () => {
    const [f, ...rest] = checkSource('/w/flow.ts', SEQ, files({ '/w/fns.ts': FNS })).findings
    assert.equal(rest.length, 0)
    assert.equal(f.rule, 'sequential-awaits')
    assert.equal(f.workflow, 'A')
    assert.deepEqual([f.start.line, f.start.column, f.end.line], [4, 3, 6])
    assert.deepEqual(f.saving, { hops: 2, description: '3 sequential calls → 1 hop' })
    assert.equal(f.fix?.edits.length, 1)
    assert.equal(f.fix?.edits[0].text, 'const [b, c, d] = await Promise.all([B(x), C(x), D(x)])')
  })

  test('without a way to read imports, a relative import is taken for a function module', () => {
    assert.deepEqual(checkSource('/w/flow.ts', SEQ).findings.map(f => f.rule), ['sequential-awaits'])
  })

  test('a module that imports the SDK is not a function module: its functions are not remote calls', () => {
    const helpers = `${SDK}export async function B (x: number) { return x }\nexport async function C (x: number) { return x }\nexport async function D (x: number) { return x }\n`
    assert.deepEqual(checkSource('/w/flow.ts', SEQ, files({ '/w/fns.ts': helpers })).findings, [])
  })

  test('a workflow cycle names each edge by file and line', () => {
    const text = `${SDK}export const P = workflow(async (x: number): Promise<number> => await Q(x))\nexport const Q = workflow(async (y: number): Promise<number> => await P(y))\n`
    const [f] = checkSource('/w/cycle.ts', text).findings
    assert.equal(f.rule, 'workflow-cycle')
    assert.deepEqual(f.path?.map(p => `${p.file}:${p.line} ${p.note}`), ['/w/cycle.ts:2 P awaits child run Q(x)', '/w/cycle.ts:3 Q awaits child run P(y)'])
  })

  test('a cycle whose arguments change on the way round is recursion, not a deadlock', () => {
    const text = `${SDK}export const P = workflow(async (x: number): Promise<number> => await Q(x))\nexport const Q = workflow(async (y: number): Promise<number> => y > 0 ? await P(y - 1) : 0)\n`
    assert.deepEqual(checkSource('/w/cycle.ts', text).findings, [])
  })

  test(`calls into helper modules are followed ${HELPER_DEPTH_MAX} calls deep, not one more`, () => {
    const helper = (depth: number): string => {
      const lines = [SDK, 'export const unused = workflow(async () => 0)\n']
      for (let i = 1; i < depth; i++) lines.push(`export function f${i} (): number { return f${i + 1}() }\n`)
      lines.push(`export function f${depth} (): number { return Date.now() }\n`)
      return lines.join('')
    }
    const flow = `${SDK}import { f1 } from './helper.ts'\nexport const A = workflow(async () => f1())\n`
    const at = checkSource('/w/flow.ts', flow, files({ '/w/helper.ts': helper(HELPER_DEPTH_MAX) })).findings
    assert.deepEqual(at.map(f => f.rule), ['impure-import'])
    assert.equal(at[0].path?.length, HELPER_DEPTH_MAX + 1)
    assert.deepEqual(checkSource('/w/flow.ts', flow, files({ '/w/helper.ts': helper(HELPER_DEPTH_MAX + 1) })).findings, [])
  })

  test(`graph labels keep ${LABEL_CHARS_MAX} characters and cut one more`, () => {
    const call = (n: number): string => `B(${'x'.repeat(n - 3)})`
    for (const [length, label] of [[LABEL_CHARS_MAX, call(LABEL_CHARS_MAX)], [LABEL_CHARS_MAX + 1, call(LABEL_CHARS_MAX + 1).slice(0, LABEL_CHARS_MAX - 1) + '…']] as const) {
      const arg = 'x'.repeat(length - 3)
      const text = `${SDK}import { B } from './fns.ts'\nexport const A = workflow(async (${arg}: number) => await B(${arg}))\n`
      const node = workflowGraph('/w/flow.ts', text, 'A').nodes.find(n => n.kind === 'call')
      assert.equal(node?.label, label)
      assert.equal(node?.label.length, LABEL_CHARS_MAX)
    }
  })

  test('a map inside Promise.all is one fork whose branch is the callback', () => {
    const text = `${SDK}import { B, C } from './fns.ts'\nexport const A = workflow(async (xs: number[]) => {\n  const ys = await Promise.all(xs.map(async x => await C(await B(x))))\n  return ys\n})\n`
    const g = workflowGraph('/w/flow.ts', text, 'A')
    assert.deepEqual(g.nodes.map(n => `${n.kind}:${n.label}`), ['start:A(xs: number[])', 'fork:Promise.all over xs', 'call:B(x)', 'call:C(await B(x))', 'join:join', 'end:end'])
    assert.deepEqual(g.edges.map(e => `${e.from}->${e.to}${e.label === undefined ? '' : ':' + e.label}`), ['n0->n1', 'n1->n2:each', 'n2->n3', 'n3->n4', 'n4->n5'])
  })

  test('a file that cannot be read is a named error with a hint', () => {
    assert.throws(() => checkFiles(['/nonexistent/flow.ts']), { code: 'ERR_INVALID_INPUT', message: /cannot read \/nonexistent\/flow\.ts/ })
  })
})
