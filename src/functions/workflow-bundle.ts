/**
 * Bundling a workflow module with esbuild into ONE ES module whose only import is the sandbox's
 * virtual module 'rhizome:workflow' (src/sandbox/prelude-workflow.ts).
 *
 * Theory of operation. Every file bundled inline is a *workflow module*: the entry, and any file
 * it reaches that itself imports the SDK (so a child workflow may live in a file of its own). In
 * a workflow module:
 *   - `@rhizome-net/rhizome` (or bare `rhizome`) resolves to a generated shim that gives the
 *     user-facing API (src/sdk/workflow.ts) its meaning inside a run: `workflow` is the sandbox's,
 *     `remote(f)` is `f` (remote stubs already take Refs), `ref(f)` is `f.ref`. Anything else the
 *     SDK exports (the API client, `connect`, ...) cannot work inside a run's sandbox, and importing
 *     it is refused here, at bundle time, naming the import;
 *   - a relative import of a file that does NOT import the SDK is a *function module*: it is
 *     deployed (`deployFunctionModule`, once per file) and replaced by a stub module exporting
 *     `remote(fnId, name)` for each of its exports, so calling one records a remote call;
 *   - Node built-ins, URL imports and npm packages are refused: a workflow runs in the driving
 *     peer's sandbox under the same rules as a function. Code that needs a package belongs in a
 *     function module, where it is bundled in and runs as tasks.
 * Whether a file imports the SDK is read from the file itself (a scan that resolves nothing), so
 * it does not depend on who imports it first. Type-only imports are erased, as tsc would erase
 * them: a file that only imports the SDK's types is a function module.
 *
 * Determinism: the same files and the same function ids give byte-identical bundles wherever the
 * project sits on disk (paths in the bundle's comments are relative to the entry's folder), and
 * deploying the same function module gives the same id, so the same sources give the same
 * workflow id.
 */

import { isBuiltin } from 'node:module'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import * as esbuild from 'esbuild'
import { AbortedError, InvalidInputError, RhizomeError, TooLargeError } from '../model/errors.ts'
import { isExportName } from '../model/export-name.ts'
import { CID_CHARS_MAX } from '../model/limits.ts'
import { CODE_BYTES_MAX, DEFAULT_WORKFLOW_LIMITS, ForbiddenImportError, WORKFLOW_MODULE_SPECIFIER, inspectWorkflowExports } from '../sandbox/index.ts'
import type { SandboxLimits } from '../sandbox/index.ts'
import { checkEntry, sourceFileGuard } from './bundle.ts'
import { BundleError, NoWorkflowsError } from './errors.ts'

/** A function module as deployed: its id and its callable exports. */
export interface DeployedFunctionModule {
  fnId: string
  exports: string[]
}

export interface WorkflowBundleOptions {
  /**
   * Deploy the function module at `absPath` (a file a workflow module imports that does not
   * import the SDK) and answer its function id and exports. Called once per file.
   */
  deployFunctionModule: (absPath: string) => Promise<DeployedFunctionModule>
  /** Largest bundle accepted, in bytes. Default (and ceiling) CODE_BYTES_MAX.js, 4 MiB, as for functions. */
  bundleBytesMax?: number
  /** Limits for evaluating the bundle once to list its workflows (default DEFAULT_WORKFLOW_LIMITS). */
  limits?: SandboxLimits
  signal?: AbortSignal
  /**
   * Rewrite the entry module's source before it is bundled (`rhizome run --auto-parallel` joins
   * independent awaits into a Promise.all here). Only the entry: the files it imports are bundled
   * as they are on disk.
   */
  transformEntry?: (text: string, absPath: string) => string
}

export interface WorkflowBundle {
  /** One ES module, UTF-8, whose only import is 'rhizome:workflow'. */
  code: Uint8Array
  /** The exported workflows (marked with `workflow()`), sorted. */
  workflows: string[]
  /** The function modules deployed for it, by absolute path, sorted by path. */
  functionModules: Array<{ path: string, fnId: string, exports: string[] }>
}

/** The SDK's package name, and the bare name a workflow may use for it as well. */
export const SDK_SPECIFIERS: readonly string[] = ['@rhizome-net/rhizome', 'rhizome']

/** What a workflow may import from the SDK: the rest of the SDK talks to peers, which a run cannot. */
export const WORKFLOW_SDK_EXPORTS: readonly string[] = ['continueAsNew', 'ref', 'remote', 'signal', 'sleep', 'workflow']

/**
 * Most function modules one workflow imports. Each is a deploy (a bundle, a manifest, replicas)
 * every time the workflow is run from source; a module may export up to 256 functions, so 64
 * modules is far more code than one workflow coordinates, and a mistaken import of a whole source
 * tree stops here rather than after hundreds of deploys.
 */
export const WORKFLOW_FUNCTION_MODULES_MAX = 64

const PLUGIN_NAME = 'rhizome-workflow'
const SDK_NAMESPACE = 'rhizome-sdk'
const FUNCTION_NAMESPACE = 'rhizome-fn'
/** Files whose imports decide what they are; anything else (JSON, say) is data, bundled inline. */
const CODE_FILE = /\.(?:[cm]?[jt]s|[jt]sx)$/
const URL_IMPORT = /^[a-z][a-z0-9+.-]*:/i

const IMPORT_HINT = 'a workflow module imports @rhizome-net/rhizome and relative files only: put code that needs a package in a function module (a file the workflow imports), where it is bundled in and runs as tasks'
const SDK_HINT = `inside a workflow, @rhizome-net/rhizome gives ${WORKFLOW_SDK_EXPORTS.join(', ')} (and its types); talk to peers from a plain program, outside the workflow`

/**
 * The SDK inside a run. `remote` and `ref` check their argument so that a local function passed
 * by mistake fails with a message, not with "undefined is not a function" later.
 */
const SDK_SHIM = [
  `import { workflow as sandboxWorkflow, sleep as sandboxSleep, signal as sandboxSignal, continueAsNew as sandboxContinueAsNew } from ${JSON.stringify(WORKFLOW_MODULE_SPECIFIER)};`,
  'export const continueAsNew = sandboxContinueAsNew;',
  'export const workflow = sandboxWorkflow;',
  'export const sleep = sandboxSleep;',
  'export const signal = sandboxSignal;',
  'export function remote (f) {',
  '  if (typeof f !== "function") throw new TypeError("remote() takes a function imported from a function module");',
  '  return f;',
  '}',
  'export function ref (f) {',
  '  const byRef = typeof f === "function" ? f.ref : undefined;',
  '  if (typeof byRef !== "function") throw new TypeError("ref() takes a function imported from a function module (a remote function)");',
  '  return byRef;',
  '}'
].join('\n')

/** Bundle the workflow module `entryPath`, deploying the function modules it imports. */
export async function bundleWorkflow (entryPath: string, options: WorkflowBundleOptions): Promise<WorkflowBundle> {
  const bundleBytesMax = options.bundleBytesMax ?? CODE_BYTES_MAX.js
  if (!Number.isSafeInteger(bundleBytesMax) || bundleBytesMax < 1 || bundleBytesMax > CODE_BYTES_MAX.js) {
    throw new InvalidInputError(`bundleBytesMax must be an integer from 1 to ${CODE_BYTES_MAX.js}`)
  }
  if (typeof options.deployFunctionModule !== 'function') throw new InvalidInputError('deployFunctionModule must be a function')
  if (options.transformEntry !== undefined && typeof options.transformEntry !== 'function') throw new InvalidInputError('transformEntry must be a function')
  const entry = path.resolve(entryPath)
  await checkEntry(entry, entryPath)
  const state = new BuildState(entry, options)
  const code = await build(state)
  if (code.length > bundleBytesMax) throw new TooLargeError(`the workflow bundle of ${entryPath}`, code.length, bundleBytesMax)
  const found = await inspectWorkflowExports(code, { limits: options.limits ?? DEFAULT_WORKFLOW_LIMITS, signal: options.signal })
  const workflows = found.filter(e => e.type === 'workflow' && isExportName(e.name)).map(e => e.name)
  if (workflows.length === 0) throw new NoWorkflowsError(entryPath)
  return { code, workflows, functionModules: await state.functionModules() }
}

/** What one build knows: which files import the SDK, and the function modules deployed so far. */
class BuildState {
  readonly entry: string
  readonly entryDir: string
  /** The first error a callback threw: reported as itself, not as esbuild's wrapping of it. */
  failure: unknown
  private readonly options: WorkflowBundleOptions
  get transformEntry (): WorkflowBundleOptions['transformEntry'] { return this.options.transformEntry }
  private readonly scans = new Map<string, Promise<boolean>>()
  private readonly deployed = new Map<string, Promise<DeployedFunctionModule>>()

  constructor (entry: string, options: WorkflowBundleOptions) {
    this.entry = entry
    this.entryDir = path.dirname(entry)
    this.options = options
  }

  checkAborted (): void {
    if (this.options.signal?.aborted === true) throw new AbortedError('bundling the workflow was cancelled')
  }

  /** Whether `file` is a workflow module: the entry, or a file that imports the SDK. */
  async isWorkflowModule (file: string): Promise<boolean> {
    if (file === this.entry) return true
    let scan = this.scans.get(file)
    if (scan === undefined) {
      scan = importsOf(file).then(specifiers => specifiers.some(s => SDK_SPECIFIERS.includes(s)))
      this.scans.set(file, scan)
    }
    return await scan
  }

  /** Deploy `file` once, however many workflow modules import it. */
  async deploy (file: string): Promise<DeployedFunctionModule> {
    let deployed = this.deployed.get(file)
    if (deployed === undefined) {
      if (this.deployed.size >= WORKFLOW_FUNCTION_MODULES_MAX) {
        throw new InvalidInputError(`the workflow imports more than ${WORKFLOW_FUNCTION_MODULES_MAX} function modules`, { hint: 'gather the functions into fewer modules: one module may export up to 256 functions' })
      }
      this.checkAborted()
      deployed = this.options.deployFunctionModule(file).then(answer => checkDeployed(file, answer))
      this.deployed.set(file, deployed)
    }
    return await deployed
  }

  async functionModules (): Promise<WorkflowBundle['functionModules']> {
    const list = await Promise.all([...this.deployed].map(async ([file, p]) => ({ path: file, ...(await p) })))
    return list.sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0)
  }
}

function checkDeployed (file: string, answer: DeployedFunctionModule): DeployedFunctionModule {
  const ok = typeof answer === 'object' && answer !== null && typeof answer.fnId === 'string' && answer.fnId.length > 0 &&
    answer.fnId.length <= CID_CHARS_MAX && Array.isArray(answer.exports) && answer.exports.every(isExportName)
  if (!ok) throw new InvalidInputError(`deploying ${file} did not answer a function id and export names`)
  return { fnId: answer.fnId, exports: [...new Set(answer.exports)].sort() }
}

/** A function module as the workflow sees it: one remote stub per export, named as the export. */
function stubSource (module: DeployedFunctionModule): string {
  const lines = [`import { remote } from ${JSON.stringify(WORKFLOW_MODULE_SPECIFIER)};`]
  module.exports.forEach((name, i) => lines.push(`const f${i} = remote(${JSON.stringify(module.fnId)}, ${JSON.stringify(name)});`))
  // `export { f0 as B }` names any export, "default" included, where `export const` could not.
  lines.push(`export { ${module.exports.map((name, i) => `f${i} as ${name}`).join(', ')} };`)
  return lines.join('\n') + '\n'
}

/**
 * The import specifiers of one file as esbuild parses it (type-only imports erased), without
 * resolving or reading any of them.
 */
async function importsOf (file: string): Promise<string[]> {
  const specifiers: string[] = []
  const collect: esbuild.Plugin = {
    name: 'rhizome-scan',
    setup (b) {
      b.onResolve({ filter: /.*/ }, args => {
        if (args.kind === 'entry-point') return undefined
        specifiers.push(args.path)
        return { path: args.path, external: true }
      })
    }
  }
  try {
    await esbuild.build({ ...BUILD_OPTIONS, entryPoints: [file], absWorkingDir: path.dirname(file), metafile: false, plugins: [sourceFileGuard, collect] })
  } catch (err) {
    throw buildError(err)
  }
  return specifiers
}

const BUILD_OPTIONS = {
  outfile: 'bundle.js',
  bundle: true,
  write: false,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  charset: 'utf8',
  sourcemap: false,
  tsconfigRaw: {},
  logLevel: 'silent'
} as const satisfies esbuild.BuildOptions

/** Resolve what a workflow module imports: the SDK shim, a function module's stub, or a file bundled inline. */
function workflowImports (state: BuildState): esbuild.Plugin {
  return {
    name: PLUGIN_NAME,
    setup (b) {
      b.onResolve({ filter: /.*/ }, async args => {
        if (args.kind === 'entry-point' || (args.pluginData as { inner?: boolean } | undefined)?.inner === true) return undefined
        if (args.path === WORKFLOW_MODULE_SPECIFIER) return { path: args.path, external: true }
        if (SDK_SPECIFIERS.includes(args.path)) return { path: SDK_SPECIFIERS[0], namespace: SDK_NAMESPACE }
        if (isBuiltin(args.path)) return refuse(args.path, `imports the Node built-in "${args.path}", which a workflow cannot use (it runs in a sandbox, like a function)`)
        if (URL_IMPORT.test(args.path)) return refuse(args.path, `imports "${args.path}" by URL; a workflow is bundled from local files only`)
        if (!args.path.startsWith('.') && !path.isAbsolute(args.path)) return refuse(args.path, `imports the package "${args.path}"; a workflow module cannot`)
        try {
          state.checkAborted()
          const resolved = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: { inner: true } })
          if (resolved.errors.length > 0) return { errors: resolved.errors }
          if (resolved.namespace !== 'file' || !CODE_FILE.test(resolved.path) || await state.isWorkflowModule(resolved.path)) return { path: resolved.path }
          return { path: path.relative(state.entryDir, resolved.path), namespace: FUNCTION_NAMESPACE, pluginData: { file: resolved.path } }
        } catch (err) {
          state.failure ??= err
          throw err
        }
      })
      b.onLoad({ filter: /.*/, namespace: SDK_NAMESPACE }, () => ({ contents: SDK_SHIM, loader: 'js' }))
      b.onLoad({ filter: /.*/, namespace: FUNCTION_NAMESPACE }, async args => {
        try {
          const module = await state.deploy((args.pluginData as { file: string }).file)
          return { contents: stubSource(module), loader: 'js', resolveDir: state.entryDir }
        } catch (err) {
          state.failure ??= err
          throw err
        }
      })
    }
  }
}

/** The entry's source through `transformEntry`, after sourceFileGuard has passed the file. */
function entryTransform (state: BuildState): esbuild.Plugin[] {
  const transform = state.transformEntry
  if (transform === undefined) return []
  const loader = (file: string): esbuild.Loader => /\.[cm]?ts$/.test(file) ? 'ts' : /\.tsx$/.test(file) ? 'tsx' : /\.jsx$/.test(file) ? 'jsx' : 'js'
  return [{
    name: 'rhizome-entry-transform',
    setup (b) {
      b.onLoad({ filter: /.*/, namespace: 'file' }, async args => {
        if (args.path !== state.entry) return undefined
        try {
          return { contents: transform(await readFile(args.path, 'utf8'), args.path), loader: loader(args.path) }
        } catch (err) {
          state.failure ??= err
          throw err
        }
      })
    }
  }]
}

function refuse (specifier: string, text: string): esbuild.OnResolveResult {
  return { errors: [{ text, detail: specifier }] }
}

async function build (state: BuildState): Promise<Uint8Array> {
  let result: esbuild.BuildResult<{ write: false, metafile: true }>
  try {
    result = await esbuild.build({
      ...BUILD_OPTIONS,
      entryPoints: [state.entry],
      absWorkingDir: state.entryDir,
      metafile: true,
      plugins: [workflowImports(state), sourceFileGuard, ...entryTransform(state)]
    })
  } catch (err) {
    if (state.failure !== undefined) throw state.failure
    throw buildError(err)
  }
  // A namespace import's missing member is only a warning to esbuild; here it is what a missing named import is.
  const undefinedImport = result.warnings.find(w => w.id === 'import-is-undefined')
  if (undefinedImport !== undefined) throw messageError(undefinedImport, undefined)
  for (const output of Object.values(result.metafile.outputs)) {
    const external = output.imports.find(i => i.external === true && i.path !== WORKFLOW_MODULE_SPECIFIER)
    if (external !== undefined) throw new ForbiddenImportError(external.path, undefined, 'it was left outside the bundle', { hint: IMPORT_HINT })
  }
  const output = result.outputFiles[0]
  if (result.outputFiles.length !== 1 || output === undefined) throw new BundleError(`esbuild produced ${result.outputFiles.length} files instead of one`)
  return output.contents
}

function buildError (err: unknown): Error {
  if (err instanceof RhizomeError) return err
  const errors = (err as { errors?: esbuild.Message[] }).errors
  const first = Array.isArray(errors) ? errors[0] : undefined
  if (first === undefined) return new BundleError((err as Error).message ?? String(err), undefined, { cause: err })
  return messageError(first, err)
}

/** An esbuild message as the named error it stands for. */
function messageError (message: esbuild.Message, cause: unknown): Error {
  // esbuild columns are 0-based; editors and terminals expect 1-based.
  const location = message.location !== null ? { file: message.location.file, line: message.location.line, column: message.location.column + 1 } : undefined
  const where = location !== undefined ? `${location.file}:${location.line}:${location.column}` : undefined
  if (message.pluginName === PLUGIN_NAME) return new ForbiddenImportError(String(message.detail), where, message.text, { cause, hint: IMPORT_HINT })
  const missing = /(?:no matching export in|there is no matching export in) "([^"]+)"(?: for import "([^"]+)")?/i.exec(message.text)
  const name = missing?.[2] ?? /^Import "([^"]+)"/.exec(message.text)?.[1]
  if (missing !== null && name !== undefined) {
    const [namespace, ...rest] = missing[1].split(':')
    const module = rest.join(':')
    if (namespace === SDK_NAMESPACE) {
      return new ForbiddenImportError(SDK_SPECIFIERS[0], where, `"${name}" cannot be used inside a workflow`, { cause, hint: SDK_HINT })
    }
    if (namespace === FUNCTION_NAMESPACE) {
      return new BundleError(`${module} has no exported function "${name}": a workflow calls a function module's exported functions only`, location, { cause, hint: `export it from ${module} as a function (\`export async function ${name} (...) { ... }\`)` })
    }
  }
  return new BundleError(message.text, location, { cause })
}
