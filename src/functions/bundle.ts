/**
 * Bundling a JS/TS function module with esbuild into ONE self-contained ES module: relative
 * imports and pure npm packages are bundled in; Node built-ins, URL imports and anything left
 * external are refused, naming the import and the file that has it.
 *
 * Determinism: the same files give byte-identical bundles wherever the project sits on disk
 * (paths in the bundle's comments are relative to the entry's folder), and no tsconfig.json is
 * read — a function's bundle depends on its own source files only.
 *
 * Exports: the bundle is evaluated once in the sandbox, under limits, and its exported
 * *functions* are listed. Other exports (constants, classes are functions too) stay in the
 * module but are not callable as tasks, so they are left out of the list; so are exports whose
 * names are not identifiers (src/model/export-name.ts), which no task can name.
 */

import { constants, statSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { isBuiltin } from 'node:module'
import path from 'node:path'
import * as esbuild from 'esbuild'
import { InvalidInputError, TooLargeError } from '../model/errors.ts'
import { isExportName } from '../model/export-name.ts'
import { CODE_BYTES_MAX, ExportNotFoundError, ForbiddenImportError, inspectJsExports } from '../sandbox/index.ts'
import type { SandboxLimits } from '../sandbox/index.ts'
import { BundleError, NoExportsError } from './errors.ts'

export interface BundleOptions {
  /**
   * Largest bundle accepted, in bytes. Default (and ceiling) CODE_BYTES_MAX.js, 4 MiB: what
   * every peer's sandbox accepts.
   */
  bundleBytesMax?: number
  /** Only these exports become callable; each must be an exported function. Default: all exported functions. */
  exports?: string[]
  /** Limits for evaluating the bundle once to list its exports (default DEFAULT_LIMITS). */
  limits?: SandboxLimits
  signal?: AbortSignal
}

export interface Bundle {
  /** One ES module, UTF-8. */
  code: Uint8Array
  /** Callable exports, sorted. */
  exports: string[]
}

const PLUGIN_NAME = 'rhizome-imports'

/**
 * Largest source file read into a bundle, in bytes. A bundle is at most 4 MiB, but its sources may
 * be larger (types, comments, code that tree-shaking drops); 4 times that leaves room, and stops
 * a mistaken path (a disk image, /dev/zero) from being read into memory without end.
 */
export const SOURCE_FILE_BYTES_MAX = 16 * 1024 * 1024

/** Why `path` cannot be a source file (not a regular file, or too large), or undefined. */
function sourceFileProblem (stats: { isFile: () => boolean, isDirectory: () => boolean, isFIFO: () => boolean, size: number }): string | undefined {
  if (!stats.isFile()) return stats.isDirectory() ? 'is a directory, not a source file' : stats.isFIFO() ? 'is a named pipe (FIFO), not a source file' : 'is not a regular file'
  if (stats.size > SOURCE_FILE_BYTES_MAX) return `is ${stats.size} bytes, more than the limit of ${SOURCE_FILE_BYTES_MAX} bytes for a source file`
  return undefined
}

/**
 * The entry file, checked before esbuild reads it: opened with O_NONBLOCK so a FIFO does not block
 * the open, then its type and size taken from that handle.
 */
export async function checkEntry (entry: string, shown: string): Promise<void> {
  let handle
  try {
    handle = await open(entry, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new InvalidInputError(`cannot read ${shown}: ${code === 'ENOENT' ? 'no such file' : code ?? (err as Error).message}`, { hint: 'pass the path of a .ts, .js or .wasm module', cause: err })
  }
  try {
    const stats = await handle.stat()
    const problem = sourceFileProblem(stats)
    if (problem === undefined) return
    if (stats.isFile()) throw new TooLargeError(`source file ${shown}`, stats.size, SOURCE_FILE_BYTES_MAX, { hint: 'a function module is source code; keep data in blobs' })
    throw new InvalidInputError(`${shown} ${problem}`, { hint: 'pass the path of a .ts, .js or .wasm module' })
  } finally {
    await handle.close()
  }
}

/** Refuse imports that a function cannot have: Node built-ins and URLs. */
const importGuard: esbuild.Plugin = {
  name: PLUGIN_NAME,
  setup (build) {
    build.onResolve({ filter: /.*/ }, args => {
      if (args.kind === 'entry-point') return undefined
      if (isBuiltin(args.path)) {
        return { errors: [{ text: `imports the Node built-in "${args.path}", which a Rhizome function cannot use`, detail: args.path }] }
      }
      if (/^[a-z][a-z0-9+.-]*:/i.test(args.path)) {
        return { errors: [{ text: `imports "${args.path}" by URL; a Rhizome function is bundled from local files only`, detail: args.path }] }
      }
      return undefined
    })
  }
}

/** Refuse source files that are not regular files, or are too large, before esbuild reads them. */
export const sourceFileGuard: esbuild.Plugin = {
  name: 'rhizome-source-files',
  setup (build) {
    // Imported files too: esbuild would read a FIFO or a device it is pointed at without end.
    build.onLoad({ filter: /.*/, namespace: 'file' }, args => {
      let problem: string | undefined
      try {
        problem = sourceFileProblem(statSync(args.path))
      } catch {
        return undefined // esbuild reports the missing file itself
      }
      return problem === undefined ? undefined : { errors: [{ text: `${args.path} ${problem}`, detail: args.path }] }
    })
  }
}

/** Bundle `entryPath` and its imports into one ES module, and list its exported functions. */
export async function bundleFunctions (entryPath: string, options: BundleOptions = {}): Promise<Bundle> {
  const bundleBytesMax = options.bundleBytesMax ?? CODE_BYTES_MAX.js
  if (!Number.isSafeInteger(bundleBytesMax) || bundleBytesMax < 1 || bundleBytesMax > CODE_BYTES_MAX.js) {
    throw new InvalidInputError(`bundleBytesMax must be an integer from 1 to ${CODE_BYTES_MAX.js}`)
  }
  const entry = path.resolve(entryPath)
  await checkEntry(entry, entryPath)
  const code = await build(entry)
  if (code.length > bundleBytesMax) throw new TooLargeError(`the bundle of ${entryPath}`, code.length, bundleBytesMax)
  const found = await inspectJsExports(code, { limits: options.limits, signal: options.signal })
  // `export { f as "not-an-id" }` is valid JavaScript, but no task can name such an export.
  const functions = found.filter(e => e.type === 'function' && isExportName(e.name)).map(e => e.name)
  let exports = functions
  if (options.exports !== undefined) {
    for (const name of options.exports) {
      if (!functions.includes(name)) throw new ExportNotFoundError(name, functions)
    }
    exports = [...new Set(options.exports)].sort()
  }
  if (exports.length === 0) throw new NoExportsError(entryPath)
  return { code, exports }
}

async function build (entry: string): Promise<Uint8Array> {
  const workingDir = path.dirname(entry)
  let result: esbuild.BuildResult<{ write: false, metafile: true }>
  try {
    result = await esbuild.build({
      entryPoints: [entry],
      absWorkingDir: workingDir,
      outfile: 'bundle.js',
      bundle: true,
      write: false,
      metafile: true,
      format: 'esm',
      platform: 'neutral',
      target: 'es2022',
      mainFields: ['module', 'main'],
      charset: 'utf8',
      sourcemap: false,
      tsconfigRaw: {},
      logLevel: 'silent',
      plugins: [importGuard, sourceFileGuard]
    })
  } catch (err) {
    throw buildError(err)
  }
  for (const output of Object.values(result.metafile.outputs)) {
    const external = output.imports.find(i => i.external === true)
    if (external !== undefined) throw new ForbiddenImportError(external.path, undefined, 'it was left outside the bundle')
  }
  const output = result.outputFiles[0]
  if (result.outputFiles.length !== 1 || output === undefined) throw new BundleError(`esbuild produced ${result.outputFiles.length} files instead of one`)
  return output.contents
}

function buildError (err: unknown): Error {
  const errors = (err as { errors?: esbuild.Message[] }).errors
  const first = Array.isArray(errors) ? errors[0] : undefined
  if (first === undefined) return new BundleError((err as Error).message ?? String(err), undefined, { cause: err })
  // esbuild columns are 0-based; editors and terminals expect 1-based.
  const location = first.location !== null ? { file: first.location.file, line: first.location.line, column: first.location.column + 1 } : undefined
  if (first.pluginName === PLUGIN_NAME) {
    const file = location !== undefined ? `${location.file}:${location.line}:${location.column}` : undefined
    return new ForbiddenImportError(String(first.detail), file, first.text, { cause: err })
  }
  return new BundleError(first.text, location, { cause: err })
}
