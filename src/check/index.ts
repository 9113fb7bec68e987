/**
 * `rhizome check`: static checks of workflow modules (deadlocks, lost parallelism, nondeterminism).
 *
 * This module is the analyzer's public surface. It holds a small set of rules: `Date.now()` and
 * `Math.random()` inside a `workflow(...)` body, and consecutive `const x = await f(...)` whose
 * calls do not mention an earlier one's name (rewritten to one `Promise.all`).
 */
import { readFileSync } from 'node:fs'
import ts from 'typescript'

export type FindingKind = 'lost-parallelism' | 'deadlock' | 'nondeterminism'
export interface Location { file: string, line: number, column: number }
export interface Finding {
  kind: FindingKind
  rule: string
  message: string
  hint: string
  workflow?: string
  start: Location
  end: Location
  path?: Array<Location & { note: string }>
  fix?: { description: string, edits: Array<{ start: number, end: number, text: string }> }
  saving?: { hops: number, description: string }
}
export interface CheckResult { files: string[], findings: Finding[] }
export interface FlowGraph { workflow: string, nodes: Array<{ id: string, kind: 'call' | 'child' | 'fork' | 'join' | 'loop' | 'branch' | 'start' | 'end', label: string, at: Location }>, edges: Array<{ from: string, to: string, label?: string }> }

export function checkFiles (paths: string[]): CheckResult {
  const findings = paths.flatMap(p => checkSource(p, readFileSync(p, 'utf8')).findings)
  return { files: [...paths], findings }
}

export function checkSource (fileName: string, text: string, _readFile?: (path: string) => string | undefined): CheckResult {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS)
  const findings: Finding[] = []
  for (const { name, body } of workflows(sf)) {
    const visit = (node: ts.Node): void => {
      if (ts.isCallExpression(node)) nondeterministic(sf, node, name, findings)
      if (ts.isBlock(node)) sequentialAwaits(sf, node, name, findings)
      ts.forEachChild(node, visit)
    }
    visit(body)
  }
  findings.sort((a, b) => a.start.line - b.start.line || a.start.column - b.start.column)
  return { files: [fileName], findings }
}

export function applyFixes (text: string, findings: Finding[]): string {
  const edits = findings.flatMap(f => f.fix?.edits ?? []).sort((a, b) => b.start - a.start)
  let out = text
  for (const e of edits) out = out.slice(0, e.start) + e.text + out.slice(e.end)
  return out
}

export function workflowGraph (fileName: string, text: string, exportName: string, _readFile?: (path: string) => string | undefined): FlowGraph {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS)
  const found = workflows(sf).find(w => w.name === exportName)
  if (found === undefined) throw new Error(`${fileName} has no workflow ${exportName}`)
  const nodes: FlowGraph['nodes'] = [{ id: 'start', kind: 'start', label: exportName, at: loc(sf, found.body.getStart()) }]
  const visit = (node: ts.Node): void => {
    if (ts.isAwaitExpression(node) && ts.isCallExpression(node.expression)) {
      nodes.push({ id: `n${nodes.length}`, kind: 'call', label: node.expression.expression.getText(sf), at: loc(sf, node.getStart()) })
    }
    ts.forEachChild(node, visit)
  }
  visit(found.body)
  nodes.push({ id: 'end', kind: 'end', label: 'return', at: loc(sf, found.body.getEnd()) })
  return { workflow: exportName, nodes, edges: nodes.slice(1).map((n, i) => ({ from: nodes[i].id, to: n.id })) }
}

export function graphText (g: FlowGraph): string {
  return g.nodes.map(n => `${n.id} ${n.kind} ${n.label}`).join('\n') + '\n'
}

export function graphMermaid (g: FlowGraph): string {
  return ['flowchart TD', ...g.nodes.map(n => `  ${n.id}["${n.label}"]`), ...g.edges.map(e => `  ${e.from} --> ${e.to}`)].join('\n') + '\n'
}

export function graphDot (g: FlowGraph): string {
  return [`digraph ${JSON.stringify(g.workflow)} {`, ...g.nodes.map(n => `  ${n.id} [label=${JSON.stringify(n.label)}];`), ...g.edges.map(e => `  ${e.from} -> ${e.to};`), '}'].join('\n') + '\n'
}

function workflows (sf: ts.SourceFile): Array<{ name: string, body: ts.Node }> {
  const out: Array<{ name: string, body: ts.Node }> = []
  for (const st of sf.statements) {
    if (!ts.isVariableStatement(st)) continue
    for (const d of st.declarationList.declarations) {
      const init = d.initializer
      if (ts.isIdentifier(d.name) && init !== undefined && ts.isCallExpression(init) && init.expression.getText(sf) === 'workflow' && init.arguments[0] !== undefined) {
        out.push({ name: d.name.text, body: init.arguments[0] })
      }
    }
  }
  return out
}

function loc (sf: ts.SourceFile, pos: number): Location {
  const lc = sf.getLineAndCharacterOfPosition(pos)
  return { file: sf.fileName, line: lc.line + 1, column: lc.character + 1 }
}

function nondeterministic (sf: ts.SourceFile, call: ts.CallExpression, workflow: string, findings: Finding[]): void {
  const callee = call.expression.getText(sf)
  const rule = callee === 'Date.now' ? 'date' : callee === 'Math.random' ? 'math-random' : undefined
  if (rule === undefined) return
  findings.push({
    kind: 'nondeterminism',
    rule,
    message: `${callee}() gives a different value when the run is replayed, so the replay takes another path than the run it rebuilds`,
    hint: rule === 'date' ? 'take the time as an argument, or from a task\'s result' : 'take randomness as an argument, or from a task\'s result',
    workflow,
    start: loc(sf, call.getStart()),
    end: loc(sf, call.getEnd())
  })
}

/** Runs of `const NAME = await CALL` where no call mentions a name declared earlier in the run. */
function sequentialAwaits (sf: ts.SourceFile, block: ts.Block, workflow: string, findings: Finding[]): void {
  let run: Array<{ st: ts.VariableStatement, name: string, call: ts.CallExpression }> = []
  const flush = (): void => {
    if (run.length > 1) findings.push(parallelFinding(sf, run, workflow))
    run = []
  }
  for (const st of block.statements) {
    const d = ts.isVariableStatement(st) && st.declarationList.declarations.length === 1 ? st.declarationList.declarations[0] : undefined
    const init = d?.initializer
    if (d === undefined || !ts.isIdentifier(d.name) || init === undefined || !ts.isAwaitExpression(init) || !ts.isCallExpression(init.expression)) { flush(); continue }
    const call = init.expression
    const mentions = new Set<string>()
    const collect = (n: ts.Node): void => { if (ts.isIdentifier(n)) mentions.add(n.text); ts.forEachChild(n, collect) }
    collect(call)
    if (run.some(r => mentions.has(r.name))) flush()
    run.push({ st: st as ts.VariableStatement, name: d.name.text, call })
  }
  flush()
}

function parallelFinding (sf: ts.SourceFile, run: Array<{ st: ts.VariableStatement, name: string, call: ts.CallExpression }>, workflow: string): Finding {
  const first = run[0].st
  const last = run[run.length - 1].st
  const text = `const [${run.map(r => r.name).join(', ')}] = await Promise.all([${run.map(r => r.call.getText(sf)).join(', ')}])`
  return {
    kind: 'lost-parallelism',
    rule: 'sequential-awaits',
    message: `${run.length} calls are awaited one after another, but none uses another's result`,
    hint: 'start them together with Promise.all',
    workflow,
    start: loc(sf, first.getStart()),
    end: loc(sf, last.getEnd()),
    fix: { description: `await ${run.map(r => r.call.expression.getText(sf)).join(', ')} together with Promise.all`, edits: [{ start: first.getStart(), end: last.getEnd(), text }] },
    saving: { hops: run.length - 1, description: `${run.length} sequential calls → 1 hop` }
  }
}
