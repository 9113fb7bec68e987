/**
 * Lost parallelism: remote calls awaited one after another although none needs another's result.
 * Every `await` of a remote call is a synchronization point: the run waits a whole round trip
 * (and the task's work) before it sends the next call. Calls that do not depend on each other can
 * be sent together (`Promise.all`), and the run waits once.
 *
 * Remote functions are taken to be deterministic and pure (their manifests are not read): sending
 * them at once then gives the same results and the same set of tasks, as long as each call's
 * arguments are the same. So a call is independent only when the syntax proves its arguments do
 * not come from an earlier result, directly or through anything: any doubt — a call of other code
 * in the arguments, a variable that a closure or module code may change, an `await` of something
 * that is not a remote call, a `break` — means dependent, and nothing is reported.
 */
import ts from 'typescript'
import type { Finding } from './types.ts'
import { boundNames, classifyCall, isFunctionLike, namesIn, skipParens, span } from './model.ts'
import type { ModuleModel, WorkflowDef } from './model.ts'

/** Global functions that compute from their arguments only. */
const PURE_GLOBALS = new Set(['Math.max', 'Math.min', 'Math.floor', 'Math.ceil', 'Math.round', 'Math.abs', 'Math.trunc', 'Math.sqrt', 'Math.pow', 'String', 'Number', 'Boolean', 'JSON.stringify', 'JSON.parse', 'Object.keys', 'Object.values', 'Object.entries', 'Array.isArray', 'parseInt', 'parseFloat', 'BigInt'])
/** Methods that read their receiver and change nothing. */
const READING_METHODS = new Set(['slice', 'concat', 'join', 'map', 'filter', 'includes', 'indexOf', 'at', 'toString', 'toFixed', 'trim', 'toUpperCase', 'toLowerCase', 'split', 'startsWith', 'endsWith', 'padStart', 'padEnd', 'repeat', 'charAt', 'keys', 'values', 'entries', 'has', 'get'])
const MUTATORS = new Set(['push', 'pop', 'shift', 'unshift', 'splice', 'sort', 'reverse', 'fill', 'copyWithin', 'set', 'add', 'delete', 'clear'])

/** What a workflow's code may change behind a statement's back: names assigned inside closures, and module state. */
interface Context { m: ModuleModel, w: WorkflowDef, unstable: Set<string> }

function isPureCall (m: ModuleModel, call: ts.CallExpression): boolean {
  const callee = skipParens(call.expression)
  const text = callee.getText(m.sf)
  if (PURE_GLOBALS.has(text)) return true
  return ts.isPropertyAccessExpression(callee) && READING_METHODS.has(callee.name.text) && call.arguments.every(a => !ts.isArrowFunction(a) && !ts.isFunctionExpression(a))
}

/** Whether evaluating `e` only reads: no assignment, no update, no await, no call but pure ones, no function. */
function onlyReads (ctx: Context, e: ts.Node): boolean {
  let ok = true
  const visit = (n: ts.Node): void => {
    if (!ok) return
    if (ts.isCallExpression(n) && !isPureCall(ctx.m, n)) ok = false
    else if (ts.isNewExpression(n) || ts.isAwaitExpression(n) || ts.isDeleteExpression(n) || isFunctionLike(n) || ts.isTaggedTemplateExpression(n)) ok = false
    else if (ts.isBinaryExpression(n) && n.operatorToken.kind >= ts.SyntaxKind.FirstAssignment && n.operatorToken.kind <= ts.SyntaxKind.LastAssignment) ok = false
    else if ((ts.isPrefixUnaryExpression(n) || ts.isPostfixUnaryExpression(n)) && (n.operator === ts.SyntaxKind.PlusPlusToken || n.operator === ts.SyntaxKind.MinusMinusToken)) ok = false
    else if (ts.isIdentifier(n) && ctx.unstable.has(n.text)) ok = false
    ts.forEachChild(n, visit)
  }
  visit(e)
  return ok
}

/** The root variable an assignment or mutating call changes. */
function rootName (e: ts.Expression): string | undefined {
  e = skipParens(e)
  while (ts.isPropertyAccessExpression(e) || ts.isElementAccessExpression(e)) e = skipParens(e.expression)
  return ts.isIdentifier(e) ? e.text : undefined
}

/** The variable `n` changes, and the node naming it, if `n` changes one. */
function mutation (n: ts.Node): { name: string, target: ts.Node } | undefined {
  let target: ts.Expression | undefined
  if (ts.isBinaryExpression(n) && n.operatorToken.kind >= ts.SyntaxKind.FirstAssignment && n.operatorToken.kind <= ts.SyntaxKind.LastAssignment) target = n.left
  else if ((ts.isPrefixUnaryExpression(n) || ts.isPostfixUnaryExpression(n)) && (n.operator === ts.SyntaxKind.PlusPlusToken || n.operator === ts.SyntaxKind.MinusMinusToken)) target = n.operand
  else if (ts.isDeleteExpression(n)) target = n.expression
  else if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && MUTATORS.has(n.expression.name.text)) target = n.expression.expression
  if (target === undefined) return undefined
  const name = rootName(target)
  return name === undefined ? undefined : { name, target }
}

function contextOf (m: ModuleModel, w: WorkflowDef, moduleState: Set<string>): Context {
  const unstable = new Set(moduleState)
  const visit = (n: ts.Node, inClosure: boolean): void => {
    const change = inClosure ? mutation(n) : undefined
    if (change !== undefined) unstable.add(change.name)
    ts.forEachChild(n, c => visit(c, inClosure || (isFunctionLike(c) && c !== w.fn)))
  }
  if (w.fn !== undefined) visit(w.fn.body, false)
  return { m, w, unstable }
}

/** Module-level `let`/`var`, and containers that some function changes: code elsewhere may change them between two awaits. */
export function moduleState (m: ModuleModel): Set<string> {
  const out = new Set<string>()
  const containers = new Set<string>()
  for (const s of m.sf.statements) {
    if (!ts.isVariableStatement(s)) continue
    const isConst = (s.declarationList.flags & ts.NodeFlags.Const) !== 0
    for (const d of s.declarationList.declarations) for (const n of boundNames(d.name)) (isConst ? containers : out).add(n)
  }
  const visit = (n: ts.Node, inFunction: boolean): void => {
    const change = inFunction ? mutation(n) : undefined
    if (change !== undefined && containers.has(change.name)) out.add(change.name)
    ts.forEachChild(n, c => visit(c, inFunction || isFunctionLike(c)))
  }
  visit(m.sf, false)
  return out
}

/** A statement `const x = await F(...)`, `let {a} = await F(...)` or `await F(...)` of a remote call. */
interface Step { stmt: ts.Statement, call: ts.CallExpression, binding?: ts.BindingName, keyword?: 'const' | 'let', bound: string[], reads: Set<string> }

function awaitedRemote (ctx: Context, e: ts.Expression | undefined): ts.CallExpression | undefined {
  if (e === undefined) return undefined
  e = skipParens(e)
  if (!ts.isAwaitExpression(e)) return undefined
  const call = skipParens(e.expression)
  if (!ts.isCallExpression(call) || classifyCall(ctx.m, call).kind !== 'remote') return undefined
  return call
}

function stepOf (ctx: Context, stmt: ts.Statement): Step | undefined {
  let call: ts.CallExpression | undefined
  let binding: ts.BindingName | undefined
  let keyword: 'const' | 'let' | undefined
  if (ts.isExpressionStatement(stmt)) call = awaitedRemote(ctx, stmt.expression)
  else if (ts.isVariableStatement(stmt) && stmt.declarationList.declarations.length === 1) {
    const flags = stmt.declarationList.flags
    const d = stmt.declarationList.declarations[0]
    keyword = (flags & ts.NodeFlags.Const) !== 0 ? 'const' : (flags & ts.NodeFlags.Let) !== 0 ? 'let' : undefined
    const plain = d.type === undefined && d.exclamationToken === undefined && (ts.isIdentifier(d.name) || !hasDefaults(d.name))
    if (keyword !== undefined && plain) {
      call = awaitedRemote(ctx, d.initializer)
      binding = d.name
    }
  }
  if (call === undefined) return undefined
  const callee = skipParens(call.expression)
  const calleeArgs = ts.isCallExpression(callee) ? [...callee.arguments] : []
  if (![...call.arguments, ...calleeArgs].every(a => onlyReads(ctx, a))) return undefined
  const reads = new Set<string>()
  for (const a of [...call.arguments, ...calleeArgs]) for (const n of namesIn(a)) reads.add(n)
  return { stmt, call, binding, keyword, bound: binding === undefined ? [] : boundNames(binding), reads }
}

function hasDefaults (name: ts.BindingPattern): boolean {
  return name.elements.some(e => !ts.isOmittedExpression(e) && (e.initializer !== undefined || (!ts.isIdentifier(e.name) && hasDefaults(e.name))))
}

/** Runs of two or more independent steps among consecutive statements. */
function groupsOf (ctx: Context, statements: readonly ts.Statement[]): Step[][] {
  const groups: Step[][] = []
  let current: Step[] = []
  const flush = (): void => {
    if (current.length >= 2) groups.push(current)
    current = []
  }
  for (const stmt of statements) {
    const step = stepOf(ctx, stmt)
    if (step === undefined) {
      flush()
      continue
    }
    const dependent = current.some(earlier => earlier.bound.some(n => step.reads.has(n) || step.bound.includes(n)))
    if (dependent) flush()
    current.push(step)
  }
  flush()
  return groups
}

function sequentialFix (m: ModuleModel, steps: Step[]): Finding['fix'] {
  // Comments between the statements are kept, each on a line of its own above the rewrite.
  const comments: string[] = []
  for (let i = 0; i + 1 < steps.length; i++) {
    comments.push(...(m.text.slice(steps[i].stmt.getEnd(), steps[i + 1].stmt.getStart(m.sf)).match(/\/\/[^\n]*|\/\*[\s\S]*?\*\//g) ?? []))
  }
  const lineStart = m.text.lastIndexOf('\n', steps[0].stmt.getStart(m.sf) - 1) + 1
  const indent = /^[ \t]*/.exec(m.text.slice(lineStart))?.[0] ?? ''
  const prefix = comments.map(c => `${c}\n${indent}`).join('')
  const calls = steps.map(s => s.call.getText(m.sf)).join(', ')
  const first = steps[0].stmt
  const last = steps[steps.length - 1].stmt
  const semicolon = last.getText(m.sf).endsWith(';') ? ';' : ''
  let text: string
  if (steps.every(s => s.binding === undefined)) text = `${prefix}await Promise.all([${calls}])${semicolon}`
  else {
    const keyword = steps.every(s => s.keyword === undefined || s.keyword === 'const') ? 'const' : 'let'
    text = `${prefix}${keyword} [${steps.map(s => s.binding?.getText(m.sf) ?? '').join(', ')}] = await Promise.all([${calls}])${semicolon}`
  }
  return { description: `await the ${steps.length} calls together with Promise.all`, edits: [{ start: first.getStart(m.sf), end: last.getEnd(), text }] }
}

function sequentialFinding (ctx: Context, steps: Step[]): Finding {
  const { m, w } = ctx
  const names = steps.map(s => classifyCall(m, s.call).name)
  const fix = sequentialFix(m, steps)
  const first = span(m, steps[0].stmt)
  const rewrite = fix === undefined ? `await Promise.all([${steps.map(s => s.call.getText(m.sf)).join(', ')}])` : fix.edits[0].text.split('\n').pop() as string
  return {
    kind: 'lost-parallelism',
    rule: 'sequential-awaits',
    message: `${steps.length} remote calls (${names.join(', ')}) are awaited one after another, but none of them takes another's result: the run waits ${steps.length} round trips where one would do`,
    hint: `send them together: \`${rewrite}\``,
    workflow: w.name,
    start: first.start,
    end: span(m, steps[steps.length - 1].stmt).end,
    ...(fix === undefined ? {} : { fix }),
    saving: { hops: steps.length - 1, description: `${steps.length} sequential calls → 1 hop` }
  }
}

/** Statement lists of the workflow's code (nested blocks and closures too). */
function statementLists (fn: ts.Node): Array<readonly ts.Statement[]> {
  const out: Array<readonly ts.Statement[]> = []
  const visit = (n: ts.Node): void => {
    if (ts.isBlock(n) || ts.isCaseClause(n) || ts.isDefaultClause(n)) out.push(n.statements)
    ts.forEachChild(n, visit)
  }
  visit(fn)
  return out
}

export function checkSequential (ctx: Context): Finding[] {
  if (ctx.w.fn === undefined) return []
  const statements = statementLists(ctx.w.fn.body).flatMap(list => groupsOf(ctx, list)).map(g => sequentialFinding(ctx, g))
  return [...statements, ...expressionFindings(ctx, ctx.w.fn.body)]
}

/** Operators that evaluate both sides, left first: `(await B(x)) + (await C(x))` awaits B before it sends C. */
const BOTH_SIDES = new Set([
  ts.SyntaxKind.PlusToken, ts.SyntaxKind.MinusToken, ts.SyntaxKind.AsteriskToken, ts.SyntaxKind.SlashToken, ts.SyntaxKind.PercentToken,
  ts.SyntaxKind.AsteriskAsteriskToken, ts.SyntaxKind.LessThanToken, ts.SyntaxKind.GreaterThanToken, ts.SyntaxKind.LessThanEqualsToken,
  ts.SyntaxKind.GreaterThanEqualsToken, ts.SyntaxKind.EqualsEqualsEqualsToken, ts.SyntaxKind.ExclamationEqualsEqualsToken
])

function isBothSides (n: ts.Node): n is ts.BinaryExpression {
  return ts.isBinaryExpression(n) && BOTH_SIDES.has(n.operatorToken.kind)
}

/** The operands an expression evaluates one after another, all of them: a binary chain, an array, call arguments, template parts. */
function operands (n: ts.Node): ts.Expression[] | undefined {
  let parent = n.parent
  while (parent !== undefined && ts.isParenthesizedExpression(parent)) parent = parent.parent
  if (isBothSides(n) && !(parent !== undefined && isBothSides(parent))) {
    const out: ts.Expression[] = []
    const flatten = (e: ts.Expression): void => {
      const inner = skipParens(e)
      if (isBothSides(inner)) {
        flatten(inner.left)
        flatten(inner.right)
      } else out.push(e)
    }
    flatten(n)
    return out
  }
  if (ts.isArrayLiteralExpression(n)) return [...n.elements]
  if (ts.isCallExpression(n) || ts.isNewExpression(n)) return [...(n.arguments ?? [])]
  if (ts.isTemplateExpression(n)) return n.templateSpans.map(s => s.expression)
  return undefined
}

/** Remote calls awaited one after another inside one expression, whose arguments only read. */
function expressionFindings (ctx: Context, root: ts.Node): Finding[] {
  const out: Finding[] = []
  const visit = (n: ts.Node): void => {
    const parts = operands(n)
    if (parts !== undefined && parts.length >= 2) {
      const calls = parts.map(p => awaitedRemote(ctx, p))
      const awaited = calls.filter((c): c is ts.CallExpression => c !== undefined)
      const argsRead = awaited.every(c => [...c.arguments, ...(ts.isCallExpression(skipParens(c.expression)) ? (skipParens(c.expression) as ts.CallExpression).arguments : [])].every(a => onlyReads(ctx, a)))
      const othersRead = parts.every((p, i) => calls[i] !== undefined || onlyReads(ctx, p))
      if (awaited.length >= 2 && argsRead && othersRead) out.push(expressionFinding(ctx, n, awaited))
    }
    ts.forEachChild(n, visit)
  }
  visit(root)
  return out
}

function expressionFinding (ctx: Context, n: ts.Node, calls: ts.CallExpression[]): Finding {
  const { m, w } = ctx
  const names = calls.map(c => classifyCall(m, c).name)
  const all = `await Promise.all([${calls.map(c => c.getText(m.sf)).join(', ')}])`
  return {
    kind: 'lost-parallelism',
    rule: 'sequential-awaits',
    message: `${calls.length} remote calls (${names.join(', ')}) are awaited one after another within one expression, but none of them takes another's result: the run waits ${calls.length} round trips where one would do`,
    hint: `await them together first — \`const [${names.map((_, i) => `r${i + 1}`).join(', ')}] = ${all}\` — and use the results in the expression`,
    workflow: w.name,
    ...span(m, n),
    saving: { hops: calls.length - 1, description: `${calls.length} sequential calls → 1 hop` }
  }
}

export { contextOf }
export type { Context }
export { mutation, onlyReads, isPureCall, awaitedRemote }
