import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { capWasmMemory, leb128, parseWasmModule, WASM_PAGE_BYTES } from '../../src/sandbox/wasm-module.ts'
import { buildWasm } from '../fixtures/functions/wasm-builder.ts'
import * as m from '../fixtures/functions/wasm-modules.ts'

describe('wasm module checks', () => {
  test('reads types, imports, function types, memories and exports', () => {
    const info = parseWasmModule(m.wasmBytesOut)
    assert.deepEqual(info.imports, [{ module: 'rhizome', name: 'output', kind: 'function', typeIndex: 0 }])
    assert.deepEqual(info.memories, [{ minPages: 1, maxPages: undefined, shared: false, memory64: false }])
    assert.deepEqual(info.exports.map(e => [e.name, e.kind]), [['memory', 'memory'], ['bytes', 'function']])
    assert.deepEqual(info.types[info.functionTypes[1]], { params: ['i32'], results: [] })
  })

  test('refuses truncated modules, overlong integers and trailing bytes in a section', () => {
    assert.throws(() => parseWasmModule(m.wasmAdd.subarray(0, 12)), { name: 'WasmModuleError' })
    const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]
    assert.throws(() => parseWasmModule(Uint8Array.from([...header, 1, 0xff, 0xff, 0xff, 0xff, 0x7f])), { name: 'WasmModuleError', message: /invalid integer/ })
    assert.throws(() => parseWasmModule(Uint8Array.from([...header, 3, 2, 0, 0])), { name: 'WasmModuleError', message: /trailing/ })
    assert.throws(() => parseWasmModule(Uint8Array.from([...header.slice(0, 4), 0x0d, 0, 1, 0])), { name: 'WasmModuleError', message: /version 1/ })
  })

  test('a vector count longer than its section is refused before looping', () => {
    const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]
    // Type section: one function type claiming 2^32 - 1 parameters.
    const section = [1, 0x60, ...leb128(2 ** 32 - 1)]
    assert.throws(() => parseWasmModule(Uint8Array.from([...header, 1, section.length, ...section])), { name: 'WasmModuleError', message: /vector/ })
  })

  test('capWasmMemory sets the maximum when there is none, keeps a lower one, and the result validates', () => {
    const uncapped = buildWasm({ memory: { minPages: 1 }, functions: [{ export: 'run', params: [], results: [], body: [] }] })
    const capped = capWasmMemory(uncapped, parseWasmModule(uncapped), 16)
    assert.ok(WebAssembly.validate(new Uint8Array(capped)))
    assert.deepEqual(parseWasmModule(capped).memories[0], { minPages: 1, maxPages: 16, shared: false, memory64: false })
    const memory = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(capped))).exports
    assert.deepEqual(Object.keys(memory), ['run'])
    const low = buildWasm({ memory: { minPages: 1, maxPages: 2 }, functions: [] })
    assert.equal(capWasmMemory(low, parseWasmModule(low), 16), low)
    const high = buildWasm({ memory: { minPages: 1, maxPages: 4000 }, functions: [] })
    assert.equal(parseWasmModule(capWasmMemory(high, parseWasmModule(high), 16)).memories[0].maxPages, 16)
  })

  test('a capped module cannot grow past the cap', () => {
    const capped = capWasmMemory(m.wasmGrow, parseWasmModule(m.wasmGrow), 4)
    const grow = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(capped))).exports.grow as (pages: number) => number
    assert.equal(grow(3), 1)
    assert.equal(grow(1), -1)
    assert.equal(WASM_PAGE_BYTES, 65536)
  })
})
