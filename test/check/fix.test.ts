// The rewrites: applying every fix gives valid TypeScript whose calls go out together, and that
// computes the same result with the same set of tasks as the original (run in-process, where
// remote calls are local calls); and the task graph of a few fixtures has the expected shape.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import { pathToFileURL } from 'node:url'
import ts from 'typescript'
import { applyFixes, checkSource, graphDot, graphMermaid, graphText, workflowGraph } from '../../src/check/index.ts'
import type { FlowGraph } from '../../src/check/index.ts'

const DIR = path.join(import.meta.dirname, '../fixtures/check')
const SDK = path.join(import.meta.dirname, '../../src/sdk/workflow.ts')
const readFile = (p: string): string | undefined => { try { return fs.readFileSync(p, 'utf8') } catch { return undefined } }
const fixture = (name: string): { file: string, text: string } => ({ file: path.join(DIR, name), text: fs.readFileSync(path.join(DIR, name), 'utf8') })

/** The fixture's fixed text, checked to be valid TypeScript. */
function fixed (name: string): string {
  const { file, text } = fixture(name)
  const findings = checkSource(file, text, readFile).findings
  assert.ok(findings.some(f => f.fix !== undefined), `${name} has a fix`)
  const out = applyFixes(text, findings)
  const { diagnostics } = ts.transpileModule(out, { fileName: name, reportDiagnostics: true, compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } })
  assert.deepEqual(diagnostics?.map(d => ts.flattenDiagnosticMessageText(d.messageText, '\n')), [], `${name} after --fix:\n${out}`)
  assert.deepEqual(checkSource(file, out, readFile).findings.filter(f => f.kind === 'lost-parallelism').map(f => f.rule), [], `${name}: nothing left to parallelize`)
  return out
}

// Remote functions as the fixtures' fns.ts declares them, recording each call; a result arrives
// after a few ms that differ by argument, so completion order differs from call order.
const FNS = `
const calls: string[] = ((globalThis as any).checkCalls ??= [])
async function task<T> (name: string, x: number, value: T): Promise<T> {
  calls.push(name + '(' + x + ')')
  await new Promise(resolve => setTimeout(resolve, (x * 7) % 5))
  return value
}
export const B = (x: number) => task('B', x, x * 2)
export const C = (x: number) => task('C', x, x + 1)
export const D = (x: number) => task('D', x, x - 3)
export const pair = (x: number) => task('pair', x, { left: x, right: -x })
export const list = (n: number) => task('list', n, Array.from({ length: n }, (_, i) => i))
`

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rhizome-check-fix-'))
after(() => fs.rmSync(tmp, { recursive: true, force: true }))
fs.writeFileSync(path.join(tmp, 'fns.ts'), FNS)

async function run (name: string, text: string, exportName: string, args: unknown[]): Promise<{ result: unknown, calls: string[] }> {
  const file = path.join(tmp, `${name}-${Math.random().toString(36).slice(2)}.ts`)
  fs.writeFileSync(file, text.replace("'@rhizome-net/rhizome'", JSON.stringify(pathToFileURL(SDK).href)))
  const calls: string[] = ((globalThis as any).checkCalls ??= [])
  calls.length = 0
  const mod = await import(pathToFileURL(file).href)
  const result = await mod[exportName](...args)
  return { result, calls: [...calls].sort() }
}

describe('check --fix', () => {
  test('the seed example written sequentially becomes one Promise.all of B(x), C(x), D(x)', () => {
    const out = fixed('seq-seed.ts')
    const sf = ts.createSourceFile('x.ts', out, ts.ScriptTarget.Latest, true)
    const alls: string[][] = []
    const visit = (n: ts.Node): void => {
      if (ts.isCallExpression(n) && n.expression.getText(sf) === 'Promise.all' && ts.isArrayLiteralExpression(n.arguments[0])) alls.push(n.arguments[0].elements.map(e => e.getText(sf)))
      ts.forEachChild(n, visit)
    }
    visit(sf)
    assert.deepEqual(alls, [['B(x)', 'C(x)', 'D(x)']])
    assert.match(out, /const \[b, c, d\] = await Promise\.all\(\[B\(x\), C\(x\), D\(x\)\]\)/)
  })

  const cases: Array<[string, string, unknown[]]> = [
    ['seq-seed.ts', 'A', [5]], ['seq-statements.ts', 'Fire', [5]], ['seq-destructure.ts', 'Both', [5]], ['seq-refs.ts', 'Refs', [5]],
    ['seq-namespace.ts', 'Spaced', [5]], ['seq-in-branch.ts', 'Inside', [5]], ['seq-partial.ts', 'Partial', [5]], ['seq-let.ts', 'Lets', [5]],
    ['loop-plain.ts', 'Each', [[1, 2, 3, 4]]], ['loop-push.ts', 'Collect', [[1, 2, 3, 4]]], ['loop-chain.ts', 'Chains', [[4, 3, 2, 1]]], ['loop-literal.ts', 'Three', [2]]
  ]
  for (const [name, exportName, args] of cases) {
    test(`${name}: the rewrite gives the same result with the same tasks`, async () => {
      const before = await run(name, fixture(name).text, exportName, args)
      const afterFix = await run(name, fixed(name), exportName, args)
      assert.deepEqual(afterFix, before)
      assert.ok(before.calls.length >= 2)
    })
  }

  test('edits that overlap are applied once, the later one left for the next run', () => {
    const text = 'abcdef'
    const finding = (start: number, end: number, t: string): any => ({ fix: { description: '', edits: [{ start, end, text: t }] } })
    assert.equal(applyFixes(text, [finding(0, 2, 'X'), finding(1, 3, 'Y'), finding(4, 6, 'Z')]), 'aYdZ')
  })
})

function shape (g: FlowGraph): { kinds: string[], edges: string[] } {
  const label = (id: string): string => { const n = g.nodes.find(x => x.id === id); return n === undefined ? id : `${n.kind}:${n.label}` }
  return { kinds: g.nodes.map(n => n.kind), edges: g.edges.map(e => `${label(e.from)} -> ${label(e.to)}${e.label === undefined ? '' : ` [${e.label}]`}`) }
}

describe('check --graph', () => {
  test('the seed example: a fork of three calls and their join', () => {
    const { file, text } = fixture('clean-seed.ts')
    const g = workflowGraph(file, text, 'A', readFile)
    assert.deepEqual(shape(g), {
      kinds: ['start', 'fork', 'call', 'call', 'call', 'join', 'end'],
      edges: ['start:A(x: number) -> fork:Promise.all', 'fork:Promise.all -> call:B(x)', 'fork:Promise.all -> call:C(x)', 'fork:Promise.all -> call:D(x)',
        'call:B(x) -> join:join', 'call:C(x) -> join:join', 'call:D(x) -> join:join', 'join:join -> end:end']
    })
    assert.match(graphMermaid(g), /^flowchart TD\n {2}n0\(\["A\(x: number\)"\]\)/)
    assert.match(graphDot(g), /n1 -> n2;/)
    assert.match(graphText(g), /n1 {3}fork {3}Promise\.all/)
  })

  test('a loop: each iteration from the loop node, back with next, on when done', () => {
    const { file, text } = fixture('loop-push.ts')
    assert.deepEqual(shape(workflowGraph(file, text, 'Collect', readFile)).edges, [
      'start:Collect(items: number[]) -> loop:for (const item of items)', 'loop:for (const item of items) -> call:B(item) [each]',
      'call:B(item) -> loop:for (const item of items) [next]', 'loop:for (const item of items) -> end:end [done]'
    ])
  })

  test('branches and child runs', () => {
    const { file, text } = fixture('clean-branches.ts')
    assert.deepEqual(shape(workflowGraph(file, text, 'Branchy', readFile)).edges, [
      'start:Branchy(x: number) -> call:B(x)', 'call:B(x) -> branch:if (b > 10)', 'branch:if (b > 10) -> call:C(b) [then]', 'call:C(b) -> end:end',
      'branch:if (b > 10) -> branch:b > 5 ? [else]', 'branch:b > 5 ? -> call:D(b) [then]', 'call:D(b) -> end:end', 'branch:b > 5 ? -> end:end [else]'
    ])
    const tree = fixture('clean-children.ts')
    assert.deepEqual(shape(workflowGraph(tree.file, tree.text, 'Tree', readFile)).kinds, ['start', 'child', 'child', 'end'])
    assert.throws(() => workflowGraph(tree.file, tree.text, 'Nope', readFile), { code: 'ERR_INVALID_INPUT' })
  })
})
