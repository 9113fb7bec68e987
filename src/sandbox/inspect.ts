/**
 * Load a JS function bundle once, in a throwaway isolate under limits, and report its exports.
 * Used when packaging functions: which exports are functions is only known by evaluating the
 * module, and evaluating untrusted code belongs in the sandbox.
 */

import ivm from 'isolated-vm'
import { InvalidInputError, TooLargeError } from '../model/errors.ts'
import { CallGuard } from './call-guard.ts'
import { SandboxAbortedError } from './errors.ts'
import { CODE_BYTES_MAX, DEFAULT_LIMITS, limitsProblem } from './limits.ts'
import type { SandboxLimits } from './limits.ts'
import { engineError } from './outcome.ts'
import { PRELUDE_SOURCE } from './prelude.ts'
import { copyInto, linkAndEvaluate, releaseAll } from './run-call.ts'

export interface ModuleExport {
  name: string
  /** `typeof` the exported value: 'function' for callable exports. */
  type: string
}

export interface InspectOptions {
  limits?: SandboxLimits
  signal?: AbortSignal
}

const MIB = 1024 * 1024

/** Evaluate `code` (one ES module) in a fresh isolate and list its exports, sorted by name. */
export async function inspectJsExports (code: Uint8Array, options: InspectOptions = {}): Promise<ModuleExport[]> {
  const startedMs = performance.now()
  const limits = options.limits ?? DEFAULT_LIMITS
  const problem = limitsProblem(limits)
  if (problem !== undefined) throw new InvalidInputError(problem)
  if (code.length > CODE_BYTES_MAX.js) throw new TooLargeError('js function code', code.length, CODE_BYTES_MAX.js)
  if (options.signal?.aborted === true) throw new SandboxAbortedError()
  let source: string
  try {
    source = new TextDecoder('utf-8', { fatal: true }).decode(code)
  } catch (err) {
    throw new InvalidInputError('js function code is not valid UTF-8', { cause: err })
  }
  const isolate = new ivm.Isolate({ memoryLimit: Math.ceil(limits.memoryBytesMax / MIB) })
  const guard = new CallGuard(isolate, limits.timeMs, startedMs, options.signal)
  try {
    return await guard.race(list(isolate, source, guard))
  } catch (err) {
    throw guard.reason !== undefined ? guard.error(guard.reason) : engineError(err, limits)
  } finally {
    guard.clear()
    if (!isolate.isDisposed) isolate.dispose()
  }
}

async function list (isolate: ivm.Isolate, source: string, guard: CallGuard): Promise<ModuleExport[]> {
  const references: Array<{ release: () => void }> = []
  try {
    const context = await isolate.createContext()
    references.push(context)
    const script = await isolate.compileScript(PRELUDE_SOURCE, { filename: 'rhizome:prelude' })
    const install = await script.run(context, { reference: true, timeout: guard.remainingMs() }) as ivm.Reference
    const lister = await install.apply(undefined, ['inspect', copyInto(new Uint8Array(0))], { result: { reference: true }, timeout: guard.remainingMs() }) as ivm.Reference
    references.push(install, lister)
    const module = await isolate.compileModule(source, { filename: 'rhizome:function' })
    references.push(module)
    await linkAndEvaluate(module, context, guard)
    const entries = await lister.apply(undefined, [module.namespace.derefInto()], { result: { copy: true }, timeout: guard.remainingMs() }) as unknown
    return readExports(entries)
  } finally {
    releaseAll(references)
  }
}

export function readExports (entries: unknown): ModuleExport[] {
  if (!Array.isArray(entries)) throw new InvalidInputError('the sandbox returned no export list')
  const exports: ModuleExport[] = []
  for (const entry of entries) {
    if (Array.isArray(entry) && typeof entry[0] === 'string' && typeof entry[1] === 'string') exports.push({ name: entry[0], type: entry[1] })
  }
  return exports.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
}
