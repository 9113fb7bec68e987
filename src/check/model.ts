/**
 * What a workflow module is made of, read from its syntax alone (no type checker, no bundling):
 * its imports and what each one is, its workflows and their bodies, and what every call calls.
 *
 * The rule is the bundler's (src/functions/workflow-bundle.ts): a relative import of a file that
 * does NOT import '@rhizome-net/rhizome' is a *function module*, and its exports become remote
 * tasks; a relative import of a file that does import the SDK is bundled inline, so its code runs
 * in the driver like the workflow's own (its `workflow()` exports are child runs, its other
 * functions are helpers). A relative import that cannot be read is taken for a function module,
 * the common case. `remote(f)(...)` and `ref(f)(...)` are remote calls whatever `f` is.
 */
import path from 'node:path'
import ts from 'typescript'
import type { Location, ReadFile } from './types.ts'

/** The specifiers that name the SDK, as the bundler reads them. */
export const SDK_SPECIFIERS: readonly string[] = ['@rhizome-net/rhizome', 'rhizome']

export type FunctionNode = ts.ArrowFunction | ts.FunctionExpression | ts.FunctionDeclaration

export interface WorkflowDef {
  /** The local name the module gives it. */
  name: string
  exported: boolean
  /** The `workflow(...)` call. */
  call: ts.CallExpression
  /** Its body, when the argument is a function written in place. */
  fn?: ts.ArrowFunction | ts.FunctionExpression
  /** Parameter names (undefined for a destructured or rest parameter). */
  params: Array<string | undefined>
}

/** An imported function that runs in the driver: a helper of an SDK-importing module. */
export interface HelperImport { module: ModuleModel, exportName: string }

export type CallKind = 'remote' | 'child' | 'sleep' | 'signal' | 'sdk' | 'helper' | 'local' | 'other'

export interface ModuleModel {
  fileName: string
  text: string
  sf: ts.SourceFile
  /** Whether the module imports the SDK (as values: type-only imports are erased). */
  importsSdk: boolean
  /** Local name → the SDK export it names. */
  sdk: Map<string, string>
  /** Names imported from function modules (remote functions), and namespace imports of them. */
  remoteFns: Set<string>
  remoteNamespaces: Set<string>
  /** This module's own workflows, by local name. */
  workflows: Map<string, WorkflowDef>
  /** Workflows imported from other workflow modules: calling one is a child run. */
  importedWorkflows: Set<string>
  helpers: Map<string, HelperImport>
  /** Functions declared at the top level of the module, by name. */
  localFunctions: Map<string, FunctionNode>
}

/** Reads and models modules once each. */
export class Loader {
  private readonly cache = new Map<string, ModuleModel | null>()
  private readonly readFile: ReadFile | undefined

  constructor (readFile: ReadFile | undefined) {
    this.readFile = readFile
  }

  /** Model `text` as the module `fileName`. */
  model (fileName: string, text: string): ModuleModel {
    const key = path.resolve(fileName)
    const cached = this.cache.get(key)
    if (cached !== undefined && cached !== null && cached.text === text) return cached
    const m = buildModel(this, fileName, text)
    this.cache.set(key, m)
    return m
  }

  /** The module a relative specifier names, or undefined when it cannot be read. */
  resolve (fromFile: string, specifier: string): ModuleModel | undefined {
    if (this.readFile === undefined) return undefined
    for (const candidate of candidates(path.resolve(path.dirname(fromFile), specifier))) {
      const cached = this.cache.get(candidate)
      if (cached === null) continue
      if (cached !== undefined) return cached
      const text = this.readFile(candidate)
      if (text === undefined) {
        this.cache.set(candidate, null)
        continue
      }
      this.cache.set(candidate, null) // an import cycle sees the module as unreadable, not as a loop
      const m = buildModel(this, candidate, text)
      this.cache.set(candidate, m)
      return m
    }
    return undefined
  }
}

/** The files a relative specifier may mean: as written, then with TypeScript's extensions. */
function candidates (resolved: string): string[] {
  const out = [resolved]
  if (resolved.endsWith('.js')) out.push(resolved.slice(0, -3) + '.ts')
  if (!/\.[cm]?[jt]s$/.test(resolved)) out.push(resolved + '.ts', resolved + '.js', path.join(resolved, 'index.ts'))
  return out
}

export function isRelative (specifier: string): boolean {
  return specifier.startsWith('./') || specifier.startsWith('../')
}

function buildModel (loader: Loader, fileName: string, text: string): ModuleModel {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS)
  const m: ModuleModel = {
    fileName,
    text,
    sf,
    importsSdk: false,
    sdk: new Map(),
    remoteFns: new Set(),
    remoteNamespaces: new Set(),
    workflows: new Map(),
    importedWorkflows: new Set(),
    helpers: new Map(),
    localFunctions: new Map()
  }
  for (const statement of sf.statements) {
    if (ts.isImportDeclaration(statement)) readImport(loader, m, statement)
    else if (ts.isFunctionDeclaration(statement) && statement.name !== undefined) m.localFunctions.set(statement.name.text, statement)
    else if (ts.isVariableStatement(statement)) readDeclarations(m, statement)
  }
  // `workflow(body)` with `const body = async (...) => {...}` written elsewhere in the module.
  for (const w of m.workflows.values()) {
    const arg = w.call.arguments[0] === undefined ? undefined : skipParens(w.call.arguments[0])
    const named = w.fn === undefined && arg !== undefined && ts.isIdentifier(arg) ? m.localFunctions.get(arg.text) : undefined
    if (named !== undefined && !ts.isFunctionDeclaration(named)) {
      w.fn = named
      w.params = paramNames(named)
    }
  }
  return m
}

function paramNames (fn: ts.ArrowFunction | ts.FunctionExpression): Array<string | undefined> {
  return fn.parameters.map(p => ts.isIdentifier(p.name) && p.dotDotDotToken === undefined ? p.name.text : undefined)
}

/** The named value imports of a declaration: [local name, imported name]. */
function importedNames (clause: ts.ImportClause): Array<[string, string]> {
  const out: Array<[string, string]> = []
  if (clause.isTypeOnly) return out
  if (clause.name !== undefined) out.push([clause.name.text, 'default'])
  const bindings = clause.namedBindings
  if (bindings !== undefined && ts.isNamedImports(bindings)) {
    for (const e of bindings.elements) if (!e.isTypeOnly) out.push([e.name.text, (e.propertyName ?? e.name).text])
  }
  return out
}

function readImport (loader: Loader, m: ModuleModel, decl: ts.ImportDeclaration): void {
  if (!ts.isStringLiteral(decl.moduleSpecifier) || decl.importClause === undefined) return
  const specifier = decl.moduleSpecifier.text
  const clause = decl.importClause
  const names = importedNames(clause)
  const namespace = clause.namedBindings !== undefined && ts.isNamespaceImport(clause.namedBindings) && !clause.isTypeOnly ? clause.namedBindings.name.text : undefined
  if (SDK_SPECIFIERS.includes(specifier)) {
    if (names.length > 0 || namespace !== undefined) m.importsSdk = true
    for (const [local, imported] of names) m.sdk.set(local, imported)
    return
  }
  if (!isRelative(specifier)) return
  const target = loader.resolve(m.fileName, specifier)
  if (target === undefined || !target.importsSdk) {
    for (const [local] of names) m.remoteFns.add(local)
    if (namespace !== undefined) m.remoteNamespaces.add(namespace)
    return
  }
  for (const [local, imported] of names) {
    const def = [...target.workflows.values()].find(w => w.exported && w.name === imported)
    if (def !== undefined || target.importedWorkflows.has(imported)) m.importedWorkflows.add(local)
    else m.helpers.set(local, { module: target, exportName: imported })
  }
}

function isExported (node: ts.Node): boolean {
  return ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some(mod => mod.kind === ts.SyntaxKind.ExportKeyword)
}

function readDeclarations (m: ModuleModel, statement: ts.VariableStatement): void {
  for (const d of statement.declarationList.declarations) {
    if (!ts.isIdentifier(d.name) || d.initializer === undefined) continue
    const init = skipParens(d.initializer)
    if (ts.isCallExpression(init) && ts.isIdentifier(init.expression) && m.sdk.get(init.expression.text) === 'workflow') {
      const arg = init.arguments[0] === undefined ? undefined : skipParens(init.arguments[0])
      const fn = arg !== undefined && (ts.isArrowFunction(arg) || ts.isFunctionExpression(arg)) ? arg : undefined
      const params = fn === undefined ? [] : paramNames(fn)
      m.workflows.set(d.name.text, { name: d.name.text, exported: isExported(statement), call: init, fn, params })
    } else if (ts.isArrowFunction(init) || ts.isFunctionExpression(init)) {
      m.localFunctions.set(d.name.text, init)
    }
  }
}

export function skipParens (e: ts.Expression): ts.Expression {
  while (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isNonNullExpression(e) || ts.isSatisfiesExpression(e)) e = e.expression
  return e
}

/** What a call calls, and the name it calls it by. */
export function classifyCall (m: ModuleModel, call: ts.CallExpression): { kind: CallKind, name: string } {
  const callee = skipParens(call.expression)
  if (ts.isIdentifier(callee)) {
    const name = callee.text
    const sdkName = m.sdk.get(name)
    if (sdkName === 'sleep' || sdkName === 'signal') return { kind: sdkName, name }
    if (sdkName !== undefined) return { kind: 'sdk', name }
    if (m.remoteFns.has(name)) return { kind: 'remote', name }
    if (m.workflows.has(name) || m.importedWorkflows.has(name)) return { kind: 'child', name }
    if (m.helpers.has(name)) return { kind: 'helper', name }
    if (m.localFunctions.has(name)) return { kind: 'local', name }
    return { kind: 'other', name }
  }
  if (ts.isPropertyAccessExpression(callee) && ts.isIdentifier(callee.expression) && m.remoteNamespaces.has(callee.expression.text)) {
    return { kind: 'remote', name: callee.getText() }
  }
  if (ts.isCallExpression(callee)) {
    const inner = skipParens(callee.expression)
    const sdkName = ts.isIdentifier(inner) ? m.sdk.get(inner.text) : undefined
    if (sdkName === 'remote' || sdkName === 'ref') return { kind: 'remote', name: callee.getText() }
  }
  return { kind: 'other', name: callee.getText() }
}

export function locate (m: ModuleModel, pos: number): Location {
  const { line, character } = m.sf.getLineAndCharacterOfPosition(pos)
  return { file: m.fileName, line: line + 1, column: character + 1 }
}

export function span (m: ModuleModel, node: ts.Node): { start: Location, end: Location } {
  return { start: locate(m, node.getStart(m.sf)), end: locate(m, node.getEnd()) }
}

export function isFunctionLike (node: ts.Node): node is FunctionNode | ts.MethodDeclaration | ts.GetAccessorDeclaration | ts.SetAccessorDeclaration | ts.ConstructorDeclaration {
  return ts.isArrowFunction(node) || ts.isFunctionExpression(node) || ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) ||
    ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node) || ts.isConstructorDeclaration(node)
}

/** Every call in `node`, nested functions included when `intoFunctions`. */
export function callsIn (node: ts.Node, intoFunctions: boolean): ts.CallExpression[] {
  const out: ts.CallExpression[] = []
  const visit = (n: ts.Node): void => {
    if (ts.isCallExpression(n)) out.push(n)
    if (!intoFunctions && isFunctionLike(n) && n !== node) return
    ts.forEachChild(n, visit)
  }
  visit(node)
  return out
}

/** The workflow whose body holds `node`, if any. */
export function enclosingWorkflow (m: ModuleModel, node: ts.Node): WorkflowDef | undefined {
  for (const w of m.workflows.values()) {
    if (w.fn !== undefined && node.pos >= w.fn.pos && node.end <= w.fn.end) return w
  }
  return undefined
}

/** Identifier names read in `node` (not property names after a dot, not object literal keys). */
export function namesIn (node: ts.Node): Set<string> {
  const out = new Set<string>()
  const visit = (n: ts.Node): void => {
    if (ts.isIdentifier(n)) {
      const parent = n.parent
      const isPropertyName = parent !== undefined && ((ts.isPropertyAccessExpression(parent) && parent.name === n) || (ts.isPropertyAssignment(parent) && parent.name === n))
      if (!isPropertyName) out.add(n.text)
    }
    ts.forEachChild(n, visit)
  }
  visit(node)
  return out
}

/** Names a binding pattern (or identifier) declares. */
export function boundNames (name: ts.BindingName): string[] {
  if (ts.isIdentifier(name)) return [name.text]
  const out: string[] = []
  for (const e of name.elements) if (!ts.isOmittedExpression(e)) out.push(...boundNames(e.name))
  return out
}
