/**
 * Just enough of the WebAssembly binary format (spec §5, "Binary Format") to check a module
 * before it runs: its function signatures, imports, memories and exports. Everything else is
 * skipped by section size and left to V8's validator.
 *
 * Rhizome's wasm ABI (see wasm-engine.ts) allows imports only from the module "rhizome", and
 * caps linear memory by rewriting the memory section's maximum, because memory.grow is executed
 * by V8 and a wasm memory does not count against an isolate's heap limit.
 */

import { ForbiddenImportError, SandboxMemoryLimitError, WasmModuleError } from './errors.ts'

export const WASM_PAGE_BYTES = 65_536

export type WasmValueType = 'i32' | 'i64' | 'f32' | 'f64' | 'v128' | 'funcref' | 'externref'
export type WasmExternKind = 'function' | 'table' | 'memory' | 'global' | 'tag'

export interface WasmFuncType { params: WasmValueType[], results: WasmValueType[] }
export interface WasmImport { module: string, name: string, kind: WasmExternKind, typeIndex?: number }
export interface WasmExport { name: string, kind: WasmExternKind, index: number }
export interface WasmMemory { minPages: number, maxPages: number | undefined, shared: boolean, memory64: boolean }

export interface WasmModuleInfo {
  types: WasmFuncType[]
  imports: WasmImport[]
  /** Type index of every function, imported ones first (the function index space). */
  functionTypes: number[]
  memories: WasmMemory[]
  exports: WasmExport[]
  /** Byte range of the whole memory section (id, size and content), when there is one. */
  memorySection: { start: number, end: number } | undefined
}

/** What Rhizome provides to wasm modules: import name → signature. */
export const RHIZOME_IMPORTS: Readonly<Record<string, WasmFuncType>> = Object.freeze({
  /** Make bytes [ptr, ptr+len) of the module's exported memory the call's result. */
  output: { params: ['i32', 'i32'], results: [] },
  /** Next double in [0, 1) from the task-seeded generator (the same one as Math.random in JS). */
  random_f64: { params: [], results: ['f64'] }
})

/** Export name of the allocator a module provides to take bytes arguments: (i32 length) → i32 pointer. */
export const ALLOC_EXPORT = 'alloc'

const VALUE_TYPES: Record<number, WasmValueType> = { 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64', 0x7b: 'v128', 0x70: 'funcref', 0x6f: 'externref' }
const EXTERN_KINDS: WasmExternKind[] = ['function', 'table', 'memory', 'global', 'tag']

class Reader {
  readonly bytes: Uint8Array
  at: number
  end: number
  constructor (bytes: Uint8Array, at: number, end: number) {
    this.bytes = bytes
    this.at = at
    this.end = end
  }

  byte (): number {
    if (this.at >= this.end) throw new WasmModuleError(`the WebAssembly module is truncated at byte ${this.at}`)
    return this.bytes[this.at++]
  }

  /** Unsigned LEB128 of at most 32 bits. */
  u32 (): number {
    let result = 0
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte()
      result += (b & 0x7f) * 2 ** shift
      if ((b & 0x80) === 0) {
        if (result > 0xffffffff) break
        return result
      }
    }
    throw new WasmModuleError(`the WebAssembly module has an invalid integer at byte ${this.at}`)
  }

  name (): string {
    const length = this.u32()
    if (length > this.end - this.at) throw new WasmModuleError('the WebAssembly module has a name running past its section')
    const slice = this.bytes.subarray(this.at, this.at + length)
    this.at += length
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(slice)
    } catch {
      throw new WasmModuleError('the WebAssembly module has a name that is not UTF-8')
    }
  }

  valueType (): WasmValueType {
    const code = this.byte()
    const type = VALUE_TYPES[code]
    if (type === undefined) throw new WasmModuleError(`the WebAssembly module uses value type 0x${code.toString(16)}, which Rhizome does not run (GC and typed references are not supported)`)
    return type
  }

  limits (): WasmMemory {
    const flags = this.byte()
    if (flags > 0x07) throw new WasmModuleError(`the WebAssembly module has invalid limits flags 0x${flags.toString(16)}`)
    const memory64 = (flags & 0x04) !== 0
    if (memory64) throw new WasmModuleError('the WebAssembly module uses a 64-bit memory; Rhizome runs wasm32 modules')
    const minPages = this.u32()
    const maxPages = (flags & 0x01) !== 0 ? this.u32() : undefined
    return { minPages, maxPages, shared: (flags & 0x02) !== 0, memory64 }
  }
}

/** Parse a module's header and the sections Rhizome checks. Throws WasmModuleError when malformed. */
export function parseWasmModule (bytes: Uint8Array): WasmModuleInfo {
  if (bytes.length < 8 || bytes[0] !== 0x00 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new WasmModuleError('the code is not a WebAssembly module (no \\0asm header)')
  }
  if (bytes[4] !== 0x01 || bytes[5] !== 0x00 || bytes[6] !== 0x00 || bytes[7] !== 0x00) {
    throw new WasmModuleError('the WebAssembly module is not binary format version 1 (components are not supported)')
  }
  const info: WasmModuleInfo = { types: [], imports: [], functionTypes: [], memories: [], exports: [], memorySection: undefined }
  const r = new Reader(bytes, 8, bytes.length)
  while (r.at < r.end) {
    const start = r.at
    const id = r.byte()
    const size = r.u32()
    if (size > r.end - r.at) throw new WasmModuleError(`the WebAssembly module's section ${id} runs past the end of the module`)
    const section = new Reader(bytes, r.at, r.at + size)
    r.at += size
    switch (id) {
      case 1: readTypes(section, info); break
      case 2: readImports(section, info); break
      case 3: readFunctions(section, info); break
      case 5:
        info.memorySection = { start, end: r.at }
        readMemories(section, info)
        break
      case 7: readExports(section, info); break
      default: continue
    }
    if (section.at !== section.end) throw new WasmModuleError(`the WebAssembly module's section ${id} has trailing bytes`)
  }
  return info
}

function readTypes (r: Reader, info: WasmModuleInfo): void {
  const count = r.u32()
  for (let i = 0; i < count; i++) {
    const form = r.byte()
    if (form !== 0x60) throw new WasmModuleError(`the WebAssembly module declares a type of form 0x${form.toString(16)}; only function types are supported (no GC types)`)
    const params = vector(r, () => r.valueType())
    const results = vector(r, () => r.valueType())
    info.types.push({ params, results })
  }
}

function readImports (r: Reader, info: WasmModuleInfo): void {
  const count = r.u32()
  for (let i = 0; i < count; i++) {
    const module = r.name()
    const name = r.name()
    const kindCode = r.byte()
    const kind = EXTERN_KINDS[kindCode]
    if (kind === undefined) throw new WasmModuleError(`the WebAssembly module has an import of unknown kind 0x${kindCode.toString(16)}`)
    if (kind === 'function') {
      const typeIndex = r.u32()
      info.imports.push({ module, name, kind, typeIndex })
      info.functionTypes.push(typeIndex)
      continue
    }
    // Any other import is refused; record it and skip its description.
    info.imports.push({ module, name, kind })
    if (kind === 'table') {
      r.valueType()
      r.limits()
    } else if (kind === 'memory') {
      r.limits()
    } else if (kind === 'global') {
      r.valueType()
      r.byte()
    } else {
      r.byte()
      r.u32()
    }
  }
}

function readFunctions (r: Reader, info: WasmModuleInfo): void {
  const count = r.u32()
  for (let i = 0; i < count; i++) info.functionTypes.push(r.u32())
}

function readMemories (r: Reader, info: WasmModuleInfo): void {
  const count = r.u32()
  for (let i = 0; i < count; i++) info.memories.push(r.limits())
}

function readExports (r: Reader, info: WasmModuleInfo): void {
  const count = r.u32()
  for (let i = 0; i < count; i++) {
    const name = r.name()
    const kindCode = r.byte()
    const kind = EXTERN_KINDS[kindCode]
    if (kind === undefined) throw new WasmModuleError(`the WebAssembly module has an export of unknown kind 0x${kindCode.toString(16)}`)
    info.exports.push({ name, kind, index: r.u32() })
  }
}

function vector<T> (r: Reader, item: () => T): T[] {
  const count = r.u32()
  // Each item takes at least one byte: a count beyond the section is a lie, not a loop to run.
  if (count > r.end - r.at) throw new WasmModuleError('the WebAssembly module has a vector longer than its section')
  const items: T[] = []
  for (let i = 0; i < count; i++) items.push(item())
  return items
}

/** The signature of function `index`, or undefined when the index or its type is out of range. */
export function functionType (info: WasmModuleInfo, index: number): WasmFuncType | undefined {
  const typeIndex = info.functionTypes[index]
  return typeIndex === undefined ? undefined : info.types[typeIndex]
}

/** Names of the exported functions a caller may call (the ABI's allocator excluded). */
export function callableExports (info: WasmModuleInfo): string[] {
  return info.exports.filter(e => e.kind === 'function' && e.name !== ALLOC_EXPORT).map(e => e.name)
}

function sameType (a: WasmFuncType, b: WasmFuncType): boolean {
  return a.params.join() === b.params.join() && a.results.join() === b.results.join()
}

function formatType (t: WasmFuncType): string {
  return `(${t.params.join(', ')}) -> (${t.results.join(', ')})`
}

/**
 * Check that a module keeps to Rhizome's ABI: imports only `rhizome.*` functions with their
 * signatures, at most one memory, unshared, whose initial size fits `memoryBytesMax`.
 */
export function checkWasmModule (info: WasmModuleInfo, memoryBytesMax: number): void {
  for (const imp of info.imports) {
    const specifier = `${imp.module}.${imp.name}`
    if (imp.module !== 'rhizome' || imp.kind !== 'function') {
      throw new ForbiddenImportError(specifier, undefined, `a wasm module may import only functions from "rhizome" (${Object.keys(RHIZOME_IMPORTS).join(', ')})`)
    }
    const expected = RHIZOME_IMPORTS[imp.name]
    if (expected === undefined || !Object.hasOwn(RHIZOME_IMPORTS, imp.name)) {
      throw new ForbiddenImportError(specifier, undefined, `Rhizome provides only ${Object.keys(RHIZOME_IMPORTS).join(', ')}`)
    }
    const actual = imp.typeIndex !== undefined ? info.types[imp.typeIndex] : undefined
    if (actual === undefined || !sameType(actual, expected)) {
      throw new ForbiddenImportError(specifier, undefined, `its signature must be ${formatType(expected)}`)
    }
  }
  if (info.memories.length > 1) throw new WasmModuleError(`the WebAssembly module declares ${info.memories.length} memories; Rhizome runs modules with at most one`)
  const memory = info.memories[0]
  if (memory === undefined) return
  if (memory.shared) throw new WasmModuleError('the WebAssembly module declares a shared memory; threads are not supported')
  if (memory.minPages * WASM_PAGE_BYTES > memoryBytesMax) {
    throw new SandboxMemoryLimitError(memoryBytesMax, `the WebAssembly module declares ${memory.minPages} pages (${memory.minPages * WASM_PAGE_BYTES} bytes) of initial memory`)
  }
}

/**
 * Return the module with its memory's maximum lowered to `pagesMax` (when absent or higher), so
 * memory.grow past the cap returns -1 as the wasm spec prescribes, on every peer alike.
 */
export function capWasmMemory (bytes: Uint8Array, info: WasmModuleInfo, pagesMax: number): Uint8Array {
  const memory = info.memories[0]
  if (info.memorySection === undefined || memory === undefined) return bytes
  if (memory.maxPages !== undefined && memory.maxPages <= pagesMax) return bytes
  const content = [...leb128(1), 0x01, ...leb128(memory.minPages), ...leb128(pagesMax)]
  const section = Uint8Array.from([5, ...leb128(content.length), ...content])
  const { start, end } = info.memorySection
  const out = new Uint8Array(bytes.length - (end - start) + section.length)
  out.set(bytes.subarray(0, start), 0)
  out.set(section, start)
  out.set(bytes.subarray(end), start + section.length)
  return out
}

export function leb128 (value: number): number[] {
  const out: number[] = []
  let v = value
  do {
    let b = v % 128
    v = Math.floor(v / 128)
    if (v > 0) b |= 0x80
    out.push(b)
  } while (v > 0)
  return out
}
