/**
 * Nondeterminism in workflow code: anything whose value is not a pure function of the run's
 * input and its recorded history (call results, timers, signals). A run is replayed by running
 * the code again against that history, so such a value can differ on replay, and the code then
 * records different commands than the history holds.
 *
 * Everything in a module that imports the SDK runs in the driver (workflow bodies, local helpers,
 * top-level code), so the whole module is scanned; calls into imported helper modules (relative
 * modules that import the SDK, bundled inline) are followed into the helper's code and reported
 * at the call with the chain. Function modules run as tasks whose results are recorded: never
 * scanned.
 */
import path from 'node:path'
import ts from 'typescript'
import type { Finding } from './types.ts'
import { callsIn, classifyCall, enclosingWorkflow, isFunctionLike, locate, skipParens, span } from './model.ts'
import type { FunctionNode, ModuleModel } from './model.ts'

/** How deep calls into helper modules are followed: a helper's helper's helper is far enough to find a clock read. */
export const HELPER_DEPTH_MAX = 4

interface Hit { rule: string, node: ts.Node, what: string }

const SLEEP_HINT = "to wait, use `await sleep(ms)` from '@rhizome-net/rhizome': its deadline and its firing are recorded, so it fires once whichever peer drives the run"
const INPUT_HINT = 'pass the value in as an argument of the workflow (the run records its input), or get it from a function module: a task\'s result is recorded and replayed'

const RULES: Record<string, { why: string, hint: string }> = {
  date: { why: 'reads the clock: a replay runs later, on another peer, and reads another time, so the code takes other branches or calls with other arguments than the history holds (inside a run it halts the run as nondeterministic)', hint: `${INPUT_HINT}; ${SLEEP_HINT}` },
  'performance-now': { why: 'reads a clock: a replay reads another value and may take another path than the history holds', hint: `${INPUT_HINT}; ${SLEEP_HINT}` },
  'math-random': { why: 'draws a random number: a run seeds it from the run id so its own replays agree, but the in-process reference run and tests draw other numbers, and any change to the code shifts every later draw, so an older run replayed by newer code diverges', hint: 'pass a seed (or the random values) in as an argument, or draw them in a function module, whose result is recorded' },
  'crypto-random': { why: 'draws fresh random bytes: a replay draws other bytes and calls with other arguments than the history holds', hint: 'pass the random values in as an argument, or make them in a function module, whose result is recorded' },
  timer: { why: 'waits on the clock outside the run\'s history: a replay cannot know when (or whether) it fired, and inside a run it throws', hint: SLEEP_HINT },
  weakref: { why: 'depends on when the garbage collector runs, which differs on every peer and every replay (the run sandbox has no WeakRef or FinalizationRegistry)', hint: 'hold values in ordinary variables, a Map or a Set' },
  'dynamic-import': { why: 'loads code when the line runs, outside the bundle the run was started with: a replay may load other code, or none', hint: 'import statically at the top of the module; code that needs a package belongs in a function module' },
  'promise-race': { why: 'settles with whichever call answers first, which depends on the network: a replay may see another winner and take another path than the history holds', hint: 'await all of them with Promise.all (or Promise.allSettled) and choose among the results in code; if the first answer must win, make that choice inside a function module, whose result is recorded' },
  'module-state': { why: 'is module-level state that workflow code changes: in-process each call sees what the previous call left, while each run and each replay starts from a fresh module, so the same input gives different results', hint: 'keep the state in local variables of the workflow, or carry it in the arguments of continueAsNew()' }
}

const TIMERS = new Set(['setTimeout', 'setInterval', 'setImmediate'])
const MUTATORS = new Set(['push', 'pop', 'shift', 'unshift', 'splice', 'sort', 'reverse', 'fill', 'copyWithin', 'set', 'add', 'delete', 'clear'])

/** `globalThis.X` / `window.X` / `X` → 'X'; anything else → undefined. */
function globalName (e: ts.Expression): string | undefined {
  e = skipParens(e)
  if (ts.isIdentifier(e)) return e.text
  if (ts.isPropertyAccessExpression(e) && ts.isIdentifier(e.expression) && ['globalThis', 'window', 'self'].includes(e.expression.text)) return e.name.text
  return undefined
}

function callHit (call: ts.CallExpression): Hit | undefined {
  if (call.expression.kind === ts.SyntaxKind.ImportKeyword) return { rule: 'dynamic-import', node: call, what: 'import()' }
  const callee = skipParens(call.expression)
  const direct = globalName(callee)
  if (direct !== undefined && TIMERS.has(direct)) return { rule: 'timer', node: call, what: `${direct}()` }
  if (direct === 'Date') return { rule: 'date', node: call, what: 'Date()' }
  if (!ts.isPropertyAccessExpression(callee)) return undefined
  const owner = globalName(callee.expression)
  const method = callee.name.text
  if (owner === 'Date' && method === 'now') return { rule: 'date', node: call, what: 'Date.now()' }
  if (owner === 'performance' && method === 'now') return { rule: 'performance-now', node: call, what: 'performance.now()' }
  if (owner === 'Math' && method === 'random') return { rule: 'math-random', node: call, what: 'Math.random()' }
  if (owner === 'crypto' && (method === 'getRandomValues' || method === 'randomUUID')) return { rule: 'crypto-random', node: call, what: `crypto.${method}()` }
  return undefined
}

function newHit (e: ts.NewExpression): Hit | undefined {
  const name = globalName(e.expression)
  if (name === 'Date' && (e.arguments === undefined || e.arguments.length === 0)) return { rule: 'date', node: e, what: 'new Date()' }
  if (name === 'WeakRef' || name === 'FinalizationRegistry') return { rule: 'weakref', node: e, what: `new ${name}()` }
  return undefined
}

/** Whether `e` holds a call whose settling time the network decides (remote, child, sleep, signal). */
function holdsRecordedCall (m: ModuleModel, e: ts.Node): boolean {
  return callsIn(e, true).some(c => ['remote', 'child', 'sleep', 'signal'].includes(classifyCall(m, c).kind))
}

/** Promise.race/any over calls, given in place or through variables that hold them. */
function raceHit (m: ModuleModel, call: ts.CallExpression): Hit | undefined {
  const callee = skipParens(call.expression)
  if (!ts.isPropertyAccessExpression(callee) || globalName(callee.expression) !== 'Promise') return undefined
  const method = callee.name.text
  if (method !== 'race' && method !== 'any') return undefined
  const arg = call.arguments[0]
  if (arg === undefined) return undefined
  let racing = holdsRecordedCall(m, arg)
  if (!racing) {
    const names = new Set<string>()
    const collect = (n: ts.Node): void => { if (ts.isIdentifier(n)) names.add(n.text); ts.forEachChild(n, collect) }
    collect(arg)
    const visit = (n: ts.Node): void => {
      if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && names.has(n.name.text) && n.initializer !== undefined && holdsRecordedCall(m, n.initializer)) racing = true
      ts.forEachChild(n, visit)
    }
    visit(m.sf)
  }
  return racing ? { rule: 'promise-race', node: call, what: `Promise.${method}()` } : undefined
}

/** The nondeterministic expressions under `root` (nested functions included). */
function directHits (m: ModuleModel, root: ts.Node): Hit[] {
  const hits: Hit[] = []
  const visit = (n: ts.Node): void => {
    let hit: Hit | undefined
    if (ts.isCallExpression(n)) hit = callHit(n) ?? raceHit(m, n)
    else if (ts.isNewExpression(n)) hit = newHit(n)
    if (hit !== undefined) hits.push(hit)
    ts.forEachChild(n, visit)
  }
  visit(root)
  return hits
}

/** Module-level variables whose value can be changed: `let`/`var`, and `const` objects, arrays, Maps, Sets. */
function mutableModuleVars (m: ModuleModel): Set<string> {
  const out = new Set<string>()
  for (const s of m.sf.statements) {
    if (!ts.isVariableStatement(s)) continue
    const isConst = (s.declarationList.flags & ts.NodeFlags.Const) !== 0
    for (const d of s.declarationList.declarations) {
      if (!ts.isIdentifier(d.name)) continue
      const init = d.initializer === undefined ? undefined : skipParens(d.initializer)
      const container = init !== undefined && (ts.isObjectLiteralExpression(init) || ts.isArrayLiteralExpression(init) || ts.isNewExpression(init))
      if (!isConst || container) out.add(d.name.text)
    }
  }
  return out
}

/** The variable an assignment target or mutating call changes: `x = `, `x.f = `, `x[i]++`, `x.push()`. */
function rootName (e: ts.Expression): string | undefined {
  e = skipParens(e)
  while (ts.isPropertyAccessExpression(e) || ts.isElementAccessExpression(e)) e = skipParens(e.expression)
  return ts.isIdentifier(e) ? e.text : undefined
}

function mutationTarget (n: ts.Node): string | undefined {
  if (ts.isBinaryExpression(n) && n.operatorToken.kind >= ts.SyntaxKind.FirstAssignment && n.operatorToken.kind <= ts.SyntaxKind.LastAssignment) return rootName(n.left)
  if ((ts.isPrefixUnaryExpression(n) || ts.isPostfixUnaryExpression(n)) && (n.operator === ts.SyntaxKind.PlusPlusToken || n.operator === ts.SyntaxKind.MinusMinusToken)) return rootName(n.operand)
  if (ts.isDeleteExpression(n)) return rootName(n.expression)
  if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && MUTATORS.has(n.expression.name.text)) return rootName(n.expression.expression)
  return undefined
}

/** Changes to module-level state made by code inside functions (what a run executes). */
function stateHits (m: ModuleModel): Hit[] {
  const vars = mutableModuleVars(m)
  if (vars.size === 0) return []
  const hits: Hit[] = []
  const visit = (n: ts.Node, inFunction: boolean, shadowed: Set<string>): void => {
    let scope = shadowed
    if (isFunctionLike(n)) {
      inFunction = true
      scope = new Set([...shadowed, ...localDeclarations(n)])
    }
    const target = mutationTarget(n)
    if (inFunction && target !== undefined && vars.has(target) && !scope.has(target)) hits.push({ rule: 'module-state', node: n, what: `\`${target}\`` })
    ts.forEachChild(n, c => visit(c, inFunction, scope))
  }
  visit(m.sf, false, new Set())
  return hits
}

/** Names a function declares itself (parameters and variables of its own body): they shadow module-level ones. */
function localDeclarations (fn: ts.Node): string[] {
  const out: string[] = []
  const visit = (n: ts.Node): void => {
    if (n !== fn && isFunctionLike(n)) return
    if ((ts.isVariableDeclaration(n) || ts.isParameter(n)) && ts.isIdentifier(n.name)) out.push(n.name.text)
    ts.forEachChild(n, visit)
  }
  visit(fn)
  return out
}

function toFinding (m: ModuleModel, hit: Hit): Finding {
  const rule = RULES[hit.rule]
  const w = enclosingWorkflow(m, hit.node)
  return { kind: 'nondeterminism', rule: hit.rule, message: `${hit.what} ${rule.why}`, hint: rule.hint, ...(w === undefined ? {} : { workflow: w.name }), ...span(m, hit.node) }
}

/** The body of an exported (or local) function of a helper module. */
function helperFunction (m: ModuleModel, name: string): FunctionNode | undefined {
  return m.localFunctions.get(name)
}

interface Chain { hit: Hit, module: ModuleModel, steps: Array<{ module: ModuleModel, node: ts.Node, note: string }> }

/** The first nondeterministic thing a helper's function does, following its calls to its own and imported helpers. */
function helperChain (m: ModuleModel, name: string, depth: number, seen: Set<string>): Chain | undefined {
  const key = `${m.fileName}#${name}`
  if (depth > HELPER_DEPTH_MAX || seen.has(key)) return undefined
  seen.add(key)
  const fn = helperFunction(m, name)
  if (fn === undefined) return undefined
  const hit = directHits(m, fn)[0] ?? stateHits(m).find(h => h.node.pos >= fn.pos && h.node.end <= fn.end)
  if (hit !== undefined) return { hit, module: m, steps: [] }
  for (const call of callsIn(fn, true)) {
    const { kind, name: callee } = classifyCall(m, call)
    let inner: Chain | undefined
    if (kind === 'local') inner = helperChain(m, callee, depth + 1, seen)
    else if (kind === 'helper') {
      const h = m.helpers.get(callee)
      if (h !== undefined) inner = helperChain(h.module, h.exportName, depth + 1, seen)
    }
    if (inner !== undefined) return { ...inner, steps: [{ module: m, node: call, note: `${name}() calls ${callee}()` }, ...inner.steps] }
  }
  return undefined
}

function importHits (m: ModuleModel): Finding[] {
  const out: Finding[] = []
  for (const call of callsIn(m.sf, true)) {
    const { kind, name } = classifyCall(m, call)
    if (kind !== 'helper') continue
    const h = m.helpers.get(name)
    if (h === undefined) continue
    const chain = helperChain(h.module, h.exportName, 1, new Set())
    if (chain === undefined) continue
    const rule = RULES[chain.hit.rule]
    const w = enclosingWorkflow(m, call)
    const where = locate(chain.module, chain.hit.node.getStart(chain.module.sf))
    const named = (file: string): string => path.relative(path.dirname(m.fileName), file) || path.basename(file)
    const chainPath = [
      { ...locate(m, call.getStart(m.sf)), note: `calls ${name}() of ${named(h.module.fileName)}` },
      ...chain.steps.map(s => ({ ...locate(s.module, s.node.getStart(s.module.sf)), note: s.note })),
      { ...where, note: `${chain.hit.what} here` }
    ]
    out.push({
      kind: 'nondeterminism',
      rule: 'impure-import',
      message: `${name}() runs in the driver (its module imports the SDK, so it is bundled into the workflow) and reaches ${chain.hit.what} at ${named(where.file)}:${where.line}, which ${rule.why}`,
      hint: `${rule.hint}; or move ${name}() into a function module (a file that does not import '@rhizome-net/rhizome'), so it runs as a task whose result is recorded`,
      ...(w === undefined ? {} : { workflow: w.name }),
      ...span(m, call),
      path: chainPath
    })
  }
  return out
}

/** Every nondeterminism finding of a module that imports the SDK. */
export function checkNondeterminism (m: ModuleModel): Finding[] {
  if (!m.importsSdk) return []
  return [...directHits(m, m.sf), ...stateHits(m)].map(h => toFinding(m, h)).concat(importHits(m))
}
