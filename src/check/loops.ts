/**
 * Lost parallelism in loops: a `for` or `for...of` whose body awaits remote calls, one iteration
 * after another, although no iteration uses what an earlier one produced. The iterations can be
 * sent at once (`Promise.all` over a map), and the run waits for the longest one only.
 *
 * Independence is proved from the syntax or not claimed (see parallelism.ts): the body may await
 * remote calls only; it may change variables of the enclosing code only as a target (`out.push(r)`,
 * `sum += r`), never read one it changes; it may not leave the loop early (break, return, throw)
 * or call code other than remote calls and pure built-ins. A rewrite is offered only for the
 * simplest shape — `for (const x of xs)` whose body changes nothing outside itself, or ends with
 * `out.push(value)` — where the order of the results is kept by Promise.all.
 */
import ts from 'typescript'
import type { Finding } from './types.ts'
import { classifyCall, isFunctionLike, namesIn, skipParens, span } from './model.ts'
import { awaitedRemote, isPureCall, mutation, onlyReads } from './parallelism.ts'
import type { Context } from './parallelism.ts'

interface Body { awaits: ts.AwaitExpression[], calls: ts.CallExpression[], changed: Map<string, ts.Node[]>, declared: Set<string>, exits: boolean, continues: boolean }

/** What a loop body does at its own level (nested functions aside). */
function readBody (body: ts.Statement): Body {
  const b: Body = { awaits: [], calls: [], changed: new Map(), declared: new Set(), exits: false, continues: false }
  const visit = (n: ts.Node, depth: number): void => {
    if (isFunctionLike(n)) return
    if (ts.isAwaitExpression(n)) b.awaits.push(n)
    if (ts.isCallExpression(n)) b.calls.push(n)
    if (ts.isReturnStatement(n) || ts.isThrowStatement(n) || ts.isYieldExpression(n) || (ts.isBreakStatement(n) && (depth === 0 || n.label !== undefined))) b.exits = true
    if (ts.isContinueStatement(n) && (depth === 0 || n.label !== undefined)) b.continues = true
    if (ts.isVariableDeclaration(n)) for (const name of namesIn(n.name)) b.declared.add(name)
    const change = mutation(n)
    if (change !== undefined) b.changed.set(change.name, [...(b.changed.get(change.name) ?? []), change.target])
    const inner = ts.isIterationStatement(n, false) || ts.isSwitchStatement(n) ? depth + 1 : depth
    ts.forEachChild(n, c => visit(c, inner))
  }
  visit(body, 0)
  return b
}

/** Whether `name` is read anywhere in `body` other than as the target of a change. */
function readOtherwise (body: ts.Node, name: string, targets: ts.Node[]): boolean {
  let found = false
  const visit = (n: ts.Node): void => {
    if (found || targets.includes(n)) return
    if (ts.isIdentifier(n) && n.text === name && !(ts.isPropertyAccessExpression(n.parent) && n.parent.name === n)) found = true
    ts.forEachChild(n, visit)
  }
  visit(body)
  return found
}

/** The loop's body if its iterations are provably independent and await remote calls. */
function independentBody (ctx: Context, loop: ts.ForOfStatement | ts.ForStatement, loopVars: string[]): Body | undefined {
  const body = readBody(loop.statement)
  if (body.exits || body.awaits.length === 0) return undefined
  if (!body.awaits.every(a => awaitedRemote(ctx, a) !== undefined)) return undefined
  for (const call of body.calls) {
    const kind = classifyCall(ctx.m, call).kind
    const change = mutation(call)
    if (kind !== 'remote' && !isPureCall(ctx.m, call) && !(change !== undefined && ts.isPropertyAccessExpression(call.expression) && call.expression.name.text === 'push')) return undefined
  }
  for (const [name, targets] of body.changed) {
    if (body.declared.has(name)) continue
    if (loopVars.includes(name) || ctx.unstable.has(name) || readOtherwise(loop.statement, name, targets)) return undefined
  }
  for (const name of namesIn(loop.statement)) if (ctx.unstable.has(name) && !body.declared.has(name)) return undefined
  return body
}

/** `for (let i = A; i < B; i++)` with A, B that only read. */
function countingLoop (ctx: Context, loop: ts.ForStatement): string[] | undefined {
  const init = loop.initializer
  if (init === undefined || !ts.isVariableDeclarationList(init) || init.declarations.length !== 1) return undefined
  const d = init.declarations[0]
  if (!ts.isIdentifier(d.name) || d.initializer === undefined || !onlyReads(ctx, d.initializer)) return undefined
  const i = d.name.text
  const cond = loop.condition === undefined ? undefined : skipParens(loop.condition)
  if (cond === undefined || !ts.isBinaryExpression(cond) || !ts.isIdentifier(cond.left) || cond.left.text !== i || !onlyReads(ctx, cond.right)) return undefined
  const inc = loop.incrementor
  const step = inc !== undefined && (((ts.isPostfixUnaryExpression(inc) || ts.isPrefixUnaryExpression(inc)) && ts.isIdentifier(inc.operand) && inc.operand.text === i) ||
    (ts.isBinaryExpression(inc) && inc.operatorToken.kind === ts.SyntaxKind.PlusEqualsToken && ts.isIdentifier(inc.left) && inc.left.text === i && ts.isNumericLiteral(inc.right)))
  return step ? [i] : undefined
}

/** The map/Promise.all rewrite of a simple `for...of`, or undefined when the shape is not simple. */
function loopFix (ctx: Context, loop: ts.ForOfStatement, body: Body): Finding['fix'] {
  const { m } = ctx
  const init = loop.initializer
  if (body.continues || !ts.isVariableDeclarationList(init) || init.declarations.length !== 1 || !ts.isBlock(loop.statement)) return undefined
  const binding = init.declarations[0].name.getText(m.sf)
  const iterable = loop.expression.getText(m.sf)
  const outer = [...body.changed.keys()].filter(n => !body.declared.has(n))
  const block = loop.statement
  const start = loop.getStart(m.sf)
  if (outer.length === 0) {
    return { description: 'run the iterations at once with Promise.all', edits: [{ start, end: loop.getEnd(), text: `await Promise.all(Array.from(${iterable}, async (${binding}) => ${block.getText(m.sf)}))` }] }
  }
  const last = block.statements[block.statements.length - 1]
  const push = last !== undefined && ts.isExpressionStatement(last) ? skipParens(last.expression) : undefined
  if (outer.length !== 1 || push === undefined || !ts.isCallExpression(push) || !ts.isPropertyAccessExpression(push.expression) || push.expression.name.text !== 'push') return undefined
  const target = push.expression.expression
  if (!ts.isIdentifier(target) || target.text !== outer[0] || body.changed.get(outer[0])?.length !== 1 || push.arguments.length !== 1 || ts.isSpreadElement(push.arguments[0])) return undefined
  const before = m.text.slice(block.getStart(m.sf), last.getStart(m.sf))
  const after = m.text.slice(last.getEnd(), block.getEnd())
  const callback = `${before}return ${push.arguments[0].getText(m.sf)}${after}`
  return { description: 'run the iterations at once with Promise.all, keeping the order of the results', edits: [{ start, end: loop.getEnd(), text: `${target.text}.push(...await Promise.all(Array.from(${iterable}, async (${binding}) => ${callback})))` }] }
}

function loopFinding (ctx: Context, loop: ts.ForOfStatement | ts.ForStatement, body: Body, fix: Finding['fix']): Finding {
  const { m, w } = ctx
  const names = [...new Set(body.awaits.map(a => classifyCall(m, awaitedRemote(ctx, a) as ts.CallExpression).name))]
  const literal = ts.isForOfStatement(loop) && ts.isArrayLiteralExpression(skipParens(loop.expression)) ? (skipParens(loop.expression) as ts.ArrayLiteralExpression).elements.length : undefined
  const saving = literal !== undefined && literal > 1
    ? { saving: { hops: (literal - 1) * body.awaits.length, description: `${literal} iterations of ${body.awaits.length} sequential call(s) → ${body.awaits.length} hop(s)` } }
    : {}
  return {
    kind: 'lost-parallelism',
    rule: 'await-in-loop',
    message: `each iteration awaits remote calls (${names.join(', ')}) and no iteration uses what another produced, yet they run one after another: N iterations wait N times as long as one`,
    hint: fix === undefined
      ? 'run the iterations at once: `await Promise.all(Array.from(items, async (item) => { ... }))`, collecting the results from Promise.all (it keeps their order) rather than pushing them as they come'
      : `rewrite the loop as \`${fix.edits[0].text.replace(/\{[\s\S]*\}/, '{ ... }')}\``,
    workflow: w.name,
    ...span(m, loop),
    ...(fix === undefined ? {} : { fix }),
    ...saving
  }
}

export function checkLoops (ctx: Context): Finding[] {
  const out: Finding[] = []
  const visit = (n: ts.Node): void => {
    if (ts.isForOfStatement(n) && n.awaitModifier === undefined && onlyReads(ctx, n.expression)) {
      const vars = ts.isVariableDeclarationList(n.initializer) ? n.initializer.declarations.flatMap(d => [...namesIn(d.name)]) : []
      const body = vars.length > 0 ? independentBody(ctx, n, vars) : undefined
      const iterable = namesIn(n.expression)
      if (body !== undefined && ![...body.changed.keys()].some(c => iterable.has(c))) out.push(loopFinding(ctx, n, body, loopFix(ctx, n, body)))
    } else if (ts.isForStatement(n)) {
      const vars = countingLoop(ctx, n)
      const body = vars === undefined ? undefined : independentBody(ctx, n, vars)
      const bounds = n.condition === undefined ? new Set<string>() : namesIn(n.condition)
      if (body !== undefined && ![...body.changed.keys()].some(c => bounds.has(c))) out.push(loopFinding(ctx, n, body, undefined))
    }
    ts.forEachChild(n, visit)
  }
  if (ctx.w.fn !== undefined) visit(ctx.w.fn.body)
  return out
}
