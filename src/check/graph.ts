/**
 * The task graph a workflow's code defines, read from its syntax: remote calls and child runs as
 * nodes, in the order the code reaches them; `Promise.all` (and its kin) as a fork whose branches
 * meet again at a join; loops, with an edge back for the next iteration; `if`, `switch` and `?:`
 * as branches. Only the control flow that reaches a call, a child run, a sleep or a signal is
 * drawn: code between them is folded into the edges.
 */
import ts from 'typescript'
import type { FlowGraph, GraphNodeKind, ReadFile } from './types.ts'
import { callsIn, classifyCall, isFunctionLike, locate, Loader, skipParens } from './model.ts'
import type { ModuleModel } from './model.ts'
import { InvalidInputError } from '../model/errors.ts'

/** Longest node label, in characters: longer code is cut with an ellipsis so a graph stays legible. */
export const LABEL_CHARS_MAX = 48

interface Tail { id: string, label?: string }

const FORKS = new Set(['all', 'allSettled', 'race', 'any'])
const RECORDED = new Set(['remote', 'child', 'sleep', 'signal'])

class Builder {
  readonly graph: FlowGraph
  private readonly m: ModuleModel

  constructor (m: ModuleModel, workflow: string) {
    this.m = m
    this.graph = { workflow, nodes: [], edges: [] }
  }

  add (kind: GraphNodeKind, label: string, at: ts.Node, tails: Tail[]): string {
    const id = `n${this.graph.nodes.length}`
    const text = label.replace(/\s+/g, ' ')
    this.graph.nodes.push({ id, kind, label: text.length > LABEL_CHARS_MAX ? text.slice(0, LABEL_CHARS_MAX - 1) + '…' : text, at: locate(this.m, at.getStart(this.m.sf)) })
    this.link(tails, id)
    return id
  }

  link (tails: Tail[], to: string): void {
    for (const t of tails) {
      if (this.graph.edges.some(e => e.from === t.id && e.to === to && e.label === t.label)) continue
      this.graph.edges.push({ from: t.id, to, ...(t.label === undefined ? {} : { label: t.label }) })
    }
  }

  hasTasks (n: ts.Node): boolean {
    return callsIn(n, true).some(c => RECORDED.has(classifyCall(this.m, c).kind))
  }

  text (n: ts.Node): string {
    return n.getText(this.m.sf)
  }

  expr (e: ts.Node, tails: Tail[]): Tail[] {
    if (isFunctionLike(e) || !this.hasTasks(e)) return tails
    if (ts.isCallExpression(e)) return this.call(e, tails)
    if (ts.isConditionalExpression(e)) {
      const t = this.expr(e.condition, tails)
      const b = this.add('branch', `${this.text(e.condition)} ?`, e, t)
      return [...this.expr(e.whenTrue, [{ id: b, label: 'then' }]), ...this.expr(e.whenFalse, [{ id: b, label: 'else' }])]
    }
    let t = tails
    ts.forEachChild(e, c => { t = this.expr(c, t) })
    return t
  }

  call (call: ts.CallExpression, tails: Tail[]): Tail[] {
    const { kind } = classifyCall(this.m, call)
    const callee = skipParens(call.expression)
    if (ts.isPropertyAccessExpression(callee) && ts.isIdentifier(callee.expression) && callee.expression.text === 'Promise' && FORKS.has(callee.name.text)) return this.fork(call, `Promise.${callee.name.text}`, tails)
    let t = tails
    for (const a of [...(ts.isCallExpression(callee) ? callee.arguments : []), ...call.arguments]) t = this.expr(a, t)
    if (RECORDED.has(kind)) return [{ id: this.add(kind === 'child' ? 'child' : 'call', this.text(call), call, t) }]
    if (!ts.isCallExpression(callee)) t = this.expr(callee, t)
    return t
  }

  fork (call: ts.CallExpression, label: string, tails: Tail[]): Tail[] {
    const arg = call.arguments[0] === undefined ? undefined : skipParens(call.arguments[0])
    const mapped = arg === undefined ? undefined : mappedCallback(arg)
    let t = tails
    if (mapped !== undefined) t = this.expr(mapped.items, t)
    const fork = this.add('fork', mapped === undefined ? label : `${label} over ${this.text(mapped.items)}`, call, t)
    const ends: Tail[] = []
    if (arg !== undefined && ts.isArrayLiteralExpression(arg)) for (const el of arg.elements) ends.push(...this.expr(el, [{ id: fork }]))
    else if (mapped !== undefined) ends.push(...this.body(mapped.fn.body, [{ id: fork, label: 'each' }]))
    else if (arg !== undefined) ends.push(...this.expr(arg, [{ id: fork }]))
    return [{ id: this.add('join', 'join', call, ends.length > 0 ? ends : [{ id: fork }]) }]
  }

  body (body: ts.ConciseBody, tails: Tail[]): Tail[] {
    return ts.isBlock(body) ? this.statement(body, tails) : this.expr(body, tails)
  }

  statement (s: ts.Statement, tails: Tail[]): Tail[] {
    if (ts.isBlock(s)) return s.statements.reduce((t, c) => this.statement(c, t), tails)
    if (!this.hasTasks(s)) return ts.isReturnStatement(s) || ts.isThrowStatement(s) ? this.exit(s, tails) : tails
    if (ts.isIfStatement(s)) {
      const b = this.add('branch', `if (${this.text(s.expression)})`, s, this.expr(s.expression, tails))
      return [...this.statement(s.thenStatement, [{ id: b, label: 'then' }]), ...(s.elseStatement === undefined ? [{ id: b, label: 'else' }] : this.statement(s.elseStatement, [{ id: b, label: 'else' }]))]
    }
    if (ts.isIterationStatement(s, false)) return this.loop(s, tails)
    if (ts.isSwitchStatement(s)) {
      const b = this.add('branch', `switch (${this.text(s.expression)})`, s, this.expr(s.expression, tails))
      return s.caseBlock.clauses.flatMap(c => c.statements.reduce((t, x) => this.statement(x, t), [{ id: b, label: ts.isCaseClause(c) ? `case ${this.text(c.expression)}` : 'default' }] as Tail[]))
    }
    if (ts.isReturnStatement(s) || ts.isThrowStatement(s)) return this.exit(s, s.expression === undefined ? tails : this.expr(s.expression, tails))
    if (ts.isTryStatement(s)) {
      const t = this.statement(s.tryBlock, tails)
      const c = s.catchClause === undefined ? [] : this.statement(s.catchClause.block, tails.map(x => ({ ...x, label: 'catch' })))
      return s.finallyBlock === undefined ? [...t, ...c] : this.statement(s.finallyBlock, [...t, ...c])
    }
    let t = tails
    ts.forEachChild(s, c => { t = ts.isStatement(c) ? this.statement(c, t) : this.expr(c, t) })
    return t
  }

  loop (s: ts.IterationStatement, tails: Tail[]): Tail[] {
    let t = tails
    let label = 'loop'
    if (ts.isForOfStatement(s) || ts.isForInStatement(s)) {
      t = this.expr(s.expression, t)
      label = `for (${this.text(s.initializer)} ${ts.isForOfStatement(s) ? 'of' : 'in'} ${this.text(s.expression)})`
    } else if (ts.isForStatement(s)) {
      if (s.initializer !== undefined) t = this.expr(s.initializer, t)
      label = `for (${s.condition === undefined ? '' : this.text(s.condition)})`
    } else if (ts.isWhileStatement(s) || ts.isDoStatement(s)) label = `while (${this.text(s.expression)})`
    const loop = this.add('loop', label, s, t)
    const ends = this.statement(s.statement, [{ id: loop, label: 'each' }])
    this.link(ends.map(e => ({ id: e.id, label: 'next' })), loop)
    return [{ id: loop, label: 'done' }]
  }

  private endId: string | undefined
  exit (s: ts.ReturnStatement | ts.ThrowStatement, tails: Tail[]): Tail[] {
    this.link(tails.map(t => ts.isThrowStatement(s) ? { ...t, label: 'throw' } : t), this.end(s))
    return []
  }

  end (at: ts.Node): string {
    this.endId ??= this.add('end', 'end', at, [])
    return this.endId
  }
}

/** `xs.map(async x => ...)` or `Array.from(xs, async x => ...)`: the items and the callback. */
function mappedCallback (e: ts.Expression): { items: ts.Expression, fn: ts.ArrowFunction | ts.FunctionExpression } | undefined {
  if (!ts.isCallExpression(e) || !ts.isPropertyAccessExpression(e.expression)) return undefined
  const isFn = (a: ts.Expression | undefined): a is ts.ArrowFunction | ts.FunctionExpression => a !== undefined && (ts.isArrowFunction(a) || ts.isFunctionExpression(a))
  if (e.expression.name.text === 'map' && isFn(e.arguments[0])) return { items: e.expression.expression, fn: e.arguments[0] }
  if (ts.isIdentifier(e.expression.expression) && e.expression.expression.text === 'Array' && e.expression.name.text === 'from' && e.arguments[0] !== undefined && isFn(e.arguments[1])) return { items: e.arguments[0], fn: e.arguments[1] }
  return undefined
}

/** The workflow's task graph as the code defines it. */
export function workflowGraph (fileName: string, text: string, exportName: string, readFile?: ReadFile): FlowGraph {
  const m = new Loader(readFile).model(fileName, text)
  const w = [...m.workflows.values()].find(x => x.name === exportName && x.exported) ?? m.workflows.get(exportName)
  if (w === undefined || w.fn === undefined) {
    const names = [...m.workflows.values()].filter(x => x.exported).map(x => x.name)
    throw new InvalidInputError(`${fileName} has no workflow "${exportName}" written in place (export const ${exportName} = workflow(async (...) => { ... }))`, {
      hint: names.length === 0 ? 'the module exports no workflow()' : `its workflows: ${names.join(', ')}`
    })
  }
  const b = new Builder(m, w.name)
  const start = b.add('start', `${w.name}(${w.fn.parameters.map(p => p.getText(m.sf)).join(', ')})`, w.fn, [])
  const tails = b.body(w.fn.body, [{ id: start }])
  if (tails.length > 0) b.link(tails, b.end(w.fn.body.getLastToken(m.sf) ?? w.fn.body))
  return b.graph
}

function successors (g: FlowGraph, id: string): string {
  return g.edges.filter(e => e.from === id).map(e => e.label === undefined ? e.to : `${e.to} [${e.label}]`).join(', ')
}

/** The graph as lines of text: each node, where it is, and where it goes next. */
export function graphText (g: FlowGraph): string {
  const lines = [`workflow ${g.workflow}`]
  for (const n of g.nodes) {
    const next = successors(g, n.id)
    lines.push(`  ${n.id.padEnd(4)} ${n.kind.padEnd(6)} ${n.label}  (${n.at.file}:${n.at.line})${next === '' ? '' : `  → ${next}`}`)
  }
  return lines.join('\n') + '\n'
}

const MERMAID_SHAPES: Record<GraphNodeKind, [string, string]> = {
  start: ['([', '])'], end: ['([', '])'], call: ['[', ']'], child: ['[[', ']]'], fork: ['{{', '}}'], join: ['{{', '}}'], loop: ['[/', '/]'], branch: ['{', '}']
}

/** The graph as a Mermaid flowchart. */
export function graphMermaid (g: FlowGraph): string {
  const quote = (s: string): string => `"${s.replace(/"/g, '#quot;')}"`
  const lines = ['flowchart TD']
  for (const n of g.nodes) lines.push(`  ${n.id}${MERMAID_SHAPES[n.kind][0]}${quote(n.label)}${MERMAID_SHAPES[n.kind][1]}`)
  for (const e of g.edges) lines.push(e.label === undefined ? `  ${e.from} --> ${e.to}` : `  ${e.from} -->|${quote(e.label)}| ${e.to}`)
  return lines.join('\n') + '\n'
}

const DOT_SHAPES: Record<GraphNodeKind, string> = { start: 'oval', end: 'oval', call: 'box', child: 'box3d', fork: 'hexagon', join: 'hexagon', loop: 'parallelogram', branch: 'diamond' }

/** The graph in Graphviz DOT. */
export function graphDot (g: FlowGraph): string {
  const quote = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
  const lines = [`digraph ${quote(g.workflow)} {`, '  node [fontname="monospace"];']
  for (const n of g.nodes) lines.push(`  ${n.id} [label=${quote(n.label)}, shape=${DOT_SHAPES[n.kind]}];`)
  for (const e of g.edges) lines.push(`  ${e.from} -> ${e.to}${e.label === undefined ? '' : ` [label=${quote(e.label)}]`};`)
  return lines.join('\n') + '\n'
}
