/**
 * Bundling: a module of functions and its relative imports become one ES module with esbuild.
 * A Rhizome function runs in a sandbox with no file system, network or Node built-ins, so any
 * import that is not a relative file is refused here, at deploy time, with the import's name —
 * not at run time on some other peer. Output is deterministic: the same sources give the same
 * bytes, so the same function id.
 */
import { builtinModules } from 'node:module'
import { relative } from 'node:path'
import * as esbuild from 'esbuild'
import { RhizomeError } from '../model/errors.ts'
import { CODE_BYTES_MAX, ForbiddenImportError, inspectJsExports } from '../sandbox/index.ts'

export class BundleError extends RhizomeError {
  constructor (message: string, hint: string) {
    super('ERR_BUNDLE', message, { hint })
    this.name = 'BundleError'
  }
}

export interface Bundle {
  code: Uint8Array
  /** The module's exported functions, sorted. */
  exports: string[]
}

const BUILTINS = new Set(builtinModules.flatMap(m => [m, `node:${m}`]))

export async function bundleFunctions (entryPath: string): Promise<Bundle> {
  const forbidden: esbuild.Plugin = {
    name: 'rhizome-imports',
    setup (build) {
      build.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind === 'entry-point') return undefined
        const spec = args.path
        const relativeFile = args.importer === '' ? entryPath : relative(process.cwd(), args.importer)
        if (spec.startsWith('./') || spec.startsWith('../')) return undefined
        const why = BUILTINS.has(spec) || spec.startsWith('node:')
          ? 'Node built-ins are not available inside the sandbox'
          : /^[a-z]+:/i.test(spec) ? 'URL imports are not available inside the sandbox' : 'package imports are not bundled yet: copy the code you need into a relative file'
        return { errors: [{ text: new ForbiddenImportError(spec, relativeFile, why).message }] }
      })
    }
  }
  let result: esbuild.BuildResult & { outputFiles: esbuild.OutputFile[] }
  try {
    result = await esbuild.build({
      entryPoints: [entryPath],
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      target: 'es2022',
      write: false,
      metafile: false,
      logLevel: 'silent',
      legalComments: 'none',
      charset: 'utf8',
      plugins: [forbidden]
    })
  } catch (err) {
    const failure = err as esbuild.BuildFailure
    const first = failure.errors?.[0]
    if (first === undefined) throw err
    if (first.text.startsWith('forbidden import')) {
      throw new BundleError(first.text, 'a Rhizome function is one self-contained module: use relative imports only, no Node built-ins, file system or network')
    }
    const at = first.location === null || first.location === undefined ? '' : `${first.location.file}:${first.location.line}:${first.location.column + 1}: `
    throw new BundleError(`${at}${first.text}`, 'fix the error in the source and deploy again')
  }
  const code = result.outputFiles[0].contents
  if (code.byteLength > CODE_BYTES_MAX.js) {
    throw new BundleError(`the bundle is ${code.byteLength} bytes; a function holds at most ${CODE_BYTES_MAX.js}`, 'split it into smaller functions, or move data into blobs')
  }
  const exports = (await inspectJsExports(code)).filter(e => e.type === 'function').map(e => e.name).sort()
  if (exports.length === 0) throw new BundleError(`${entryPath} exports no functions`, 'export the functions peers should run, e.g. `export async function double (x) { return x * 2 }`')
  return { code, exports }
}
