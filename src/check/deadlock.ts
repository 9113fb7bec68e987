/**
 * Deadlocks between runs. A child run's id follows from the workflow and its arguments, so a
 * workflow that starts itself as a child with its own arguments unchanged waits on its own run,
 * and workflows that call each other in a cycle, handing the arguments on unchanged (or as the
 * same constants) all the way round, come back to a run that is already waiting: each waits on
 * the next for ever. Recursion whose arguments change (n - 1) is a new run each time and is not
 * reported. Only what the syntax proves is reported: an argument that is not one of the caller's
 * own parameters, unchanged, or a literal, ends the proof.
 *
 * Signals: a workflow only receives signals (`signal(name)`); the SDK gives workflow code no way
 * to send one (they come from `rhizome signal` or the client, outside the run), so "waits for a
 * signal only its own later code sends" cannot be written, and there is no rule for it.
 */
import ts from 'typescript'
import type { Finding, Location } from './types.ts'
import { callsIn, classifyCall, locate, skipParens, span } from './model.ts'
import type { ModuleModel, WorkflowDef } from './model.ts'

/** An argument as the syntax fixes it: a parameter of the caller (by index), a literal, or unknown. */
type Arg = { param: number } | { literal: string } | undefined

interface Edge { from: WorkflowDef, to: WorkflowDef, call: ts.CallExpression, args: Arg[] }

/** Parameters the body assigns to: after that they no longer hold the run's argument. */
function reassigned (w: WorkflowDef): Set<string> {
  const out = new Set<string>()
  if (w.fn === undefined) return out
  const visit = (n: ts.Node): void => {
    if (ts.isBinaryExpression(n) && n.operatorToken.kind >= ts.SyntaxKind.FirstAssignment && n.operatorToken.kind <= ts.SyntaxKind.LastAssignment && ts.isIdentifier(skipParens(n.left))) out.add((skipParens(n.left) as ts.Identifier).text)
    if ((ts.isPrefixUnaryExpression(n) || ts.isPostfixUnaryExpression(n)) && ts.isIdentifier(n.operand)) out.add(n.operand.text)
    ts.forEachChild(n, visit)
  }
  visit(w.fn.body)
  return out
}

function argOf (w: WorkflowDef, changed: Set<string>, e: ts.Expression): Arg {
  e = skipParens(e)
  if (ts.isIdentifier(e)) {
    const i = w.params.indexOf(e.text)
    return i >= 0 && !changed.has(e.text) ? { param: i } : undefined
  }
  if (ts.isNumericLiteral(e) || ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return { literal: `${e.kind}:${e.text}` }
  if (e.kind === ts.SyntaxKind.TrueKeyword || e.kind === ts.SyntaxKind.FalseKeyword || e.kind === ts.SyntaxKind.NullKeyword) return { literal: String(e.kind) }
  return undefined
}

function edgesOf (m: ModuleModel): Edge[] {
  const edges: Edge[] = []
  for (const w of m.workflows.values()) {
    if (w.fn === undefined) continue
    const changed = reassigned(w)
    for (const call of callsIn(w.fn.body, true)) {
      const { kind, name } = classifyCall(m, call)
      const to = m.workflows.get(name)
      if (kind !== 'child' || to === undefined) continue
      const spread = call.arguments.some(a => ts.isSpreadElement(a))
      edges.push({ from: w, to, call, args: spread ? [undefined] : call.arguments.map(a => argOf(w, changed, a)) })
    }
  }
  return edges
}

/** Whether the arguments after following `path` from its first workflow are that workflow's own. */
function sameArguments (path: Edge[]): boolean {
  const start = path[0].from
  if (start.params.some(p => p === undefined)) return false
  let values: Array<string | undefined> = start.params.map((_, i) => `p${i}`)
  for (const edge of path) {
    if (edge.args.length !== edge.to.params.length) return false
    values = edge.args.map(a => a === undefined ? undefined : 'param' in a ? values[a.param] : a.literal)
  }
  return values.length === start.params.length && values.every((v, i) => v === `p${i}`)
}

function pathEntry (m: ModuleModel, e: Edge): Location & { note: string } {
  return { ...locate(m, e.call.getStart(m.sf)), note: `${e.from.name} awaits child run ${e.call.getText(m.sf)}` }
}

function selfChildren (m: ModuleModel, edges: Edge[]): Finding[] {
  return edges.filter(e => e.from === e.to && sameArguments([e])).map(e => ({
    kind: 'deadlock',
    rule: 'self-child',
    message: `${e.from.name} starts ${e.call.getText(m.sf)} as a child run with its own arguments unchanged: that is the same run id, so the run waits on itself and never finishes`,
    hint: 'change the arguments (recursion must make progress: n - 1), or to run again with the same input call `return continueAsNew(...)`',
    workflow: e.from.name,
    ...span(m, e.call),
    path: [pathEntry(m, e)]
  }))
}

/** Simple cycles of two or more workflows, each found once (from its first edge in source order). */
function cycles (edges: Edge[]): Edge[][] {
  const found: Edge[][] = []
  const seen = new Set<string>()
  const order = (e: Edge): number => e.call.pos
  const walk = (path: Edge[]): void => {
    const last = path[path.length - 1]
    if (last.to === path[0].from) {
      const key = path.map(order).sort((a, b) => a - b).join(',')
      if (path.length > 1 && !seen.has(key)) {
        seen.add(key)
        found.push(path)
      }
      return
    }
    if (path.some((e, i) => i > 0 && e.from === last.to)) return
    for (const next of edges) if (next.from === last.to && next.from !== next.to) walk([...path, next])
  }
  for (const e of [...edges].sort((a, b) => order(a) - order(b))) if (e.from !== e.to) walk([e])
  return found
}

export function checkDeadlocks (m: ModuleModel): Finding[] {
  const edges = edgesOf(m)
  const out = selfChildren(m, edges)
  // An edge with an argument the syntax cannot pin down never closes a deadlock: leave it out of the search.
  for (const path of cycles(edges.filter(e => e.args.every(a => a !== undefined)))) {
    if (!sameArguments(path)) continue
    const names = [...path.map(e => e.from.name), path[0].from.name].join(' → ')
    out.push({
      kind: 'deadlock',
      rule: 'workflow-cycle',
      message: `workflows await each other in a cycle with the same arguments (${names}): the last call asks for a run that is already waiting, so none of them finishes`,
      hint: 'break the cycle: let one workflow compute the result itself (or through a function module), or change the arguments so the recursion ends',
      workflow: path[0].from.name,
      ...span(m, path[0].call),
      path: path.map(e => pathEntry(m, e))
    })
  }
  return out
}
