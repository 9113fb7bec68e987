/**
 * Packaging a WebAssembly module as a function: check that it compiles, keeps to Rhizome's wasm
 * ABI (imports only from "rhizome", one unshared 32-bit memory) and list its callable exports:
 * exported functions with numeric signatures, the ABI's `alloc` excepted.
 */

import { TooLargeError } from '../model/errors.ts'
import { isExportName } from '../model/export-name.ts'
import { ALLOC_EXPORT, CODE_BYTES_MAX, DEFAULT_LIMITS, ExportNotFoundError, checkWasmModule, parseWasmModule, WasmModuleError } from '../sandbox/index.ts'
import type { SandboxLimits, WasmModuleInfo } from '../sandbox/index.ts'
import { NoExportsError } from './errors.ts'

export interface WasmPackageOptions {
  /** The function's name, for messages. */
  name: string
  /** Only these exports become callable. Default: every callable export. */
  exports?: string[]
  /** Limits the module must fit (its initial memory); default DEFAULT_LIMITS. */
  limits?: SandboxLimits
}

export interface WasmPackage {
  code: Uint8Array
  exports: string[]
}

const NUMERIC = new Set(['i32', 'i64', 'f32', 'f64'])

export async function packageWasm (bytes: Uint8Array, options: WasmPackageOptions): Promise<WasmPackage> {
  if (bytes.length > CODE_BYTES_MAX.wasm) throw new TooLargeError(`wasm module ${options.name}`, bytes.length, CODE_BYTES_MAX.wasm)
  const info = parseWasmModule(bytes)
  checkWasmModule(info, (options.limits ?? DEFAULT_LIMITS).memoryBytesMax)
  try {
    await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>)
  } catch (err) {
    throw new WasmModuleError(`wasm module ${options.name} does not compile: ${(err as Error).message}`, { cause: err })
  }
  const callable = callableNumericExports(info)
  let exports = callable
  if (options.exports !== undefined) {
    for (const name of options.exports) {
      if (!callable.includes(name)) throw new ExportNotFoundError(name, callable)
    }
    exports = [...new Set(options.exports)].sort()
  }
  if (exports.length === 0) throw new NoExportsError(`wasm module ${options.name}`)
  return { code: bytes, exports }
}

function callableNumericExports (info: WasmModuleInfo): string[] {
  const names: string[] = []
  for (const e of info.exports) {
    // A wasm export name may be any string; only identifiers can be named in a task.
    if (e.kind !== 'function' || e.name === ALLOC_EXPORT || !isExportName(e.name)) continue
    const type = info.types[info.functionTypes[e.index]]
    if (type !== undefined && [...type.params, ...type.results].every(t => NUMERIC.has(t))) names.push(e.name)
  }
  return names.sort()
}
