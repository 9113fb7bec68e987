import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { packageWasm } from '../../src/functions/index.ts'
import { CODE_BYTES_MAX } from '../../src/sandbox/index.ts'
import { buildWasm } from '../fixtures/functions/wasm-builder.ts'
import * as m from '../fixtures/functions/wasm-modules.ts'

describe('packageWasm', () => {
  test('lists the callable exports: numeric functions, without the ABI allocator', async () => {
    assert.deepEqual((await packageWasm(m.wasmAdd, { name: 'add' })).exports, ['add'])
    assert.deepEqual((await packageWasm(m.wasmSum, { name: 'sum' })).exports, ['sum'])
    assert.deepEqual((await packageWasm(m.wasmSum, { name: 'sum', exports: ['sum'] })).code, m.wasmSum)
  })

  test('refuses imports outside rhizome, naming them', async () => {
    await assert.rejects(packageWasm(m.wasmImportsEnv, { name: 'env' }), { name: 'ForbiddenImportError', specifier: 'env.abort' })
    await assert.rejects(packageWasm(m.wasmImportsMemory, { name: 'memory' }), { name: 'ForbiddenImportError', specifier: 'rhizome.memory' })
  })

  test('refuses malformed modules and modules that do not compile', async () => {
    await assert.rejects(packageWasm(m.notWasm, { name: 'junk' }), { name: 'WasmModuleError' })
    // A function body that returns nothing where an i32 is declared parses but does not validate.
    const invalid = buildWasm({ functions: [{ export: 'f', params: [], results: ['i32'], body: [] }] })
    await assert.rejects(packageWasm(invalid, { name: 'invalid' }), { name: 'WasmModuleError', message: /does not compile/ })
  })

  test('refuses a module with no callable export, or a missing requested export', async () => {
    await assert.rejects(packageWasm(m.wasmV128Param, { name: 'simd' }), { name: 'NoExportsError' })
    await assert.rejects(packageWasm(m.wasmAdd, { name: 'add', exports: ['sub'] }), { name: 'ExportNotFoundError', exportName: 'sub' })
  })

  test('refuses initial memory beyond the limits', async () => {
    await assert.rejects(packageWasm(m.wasmInitialMemory(129), { name: 'big', limits: { memoryBytesMax: 8 * 1024 * 1024, timeMs: 1000, outputBytesMax: 1024 } }), { name: 'SandboxMemoryLimitError' })
  })

  test(`refuses modules over ${CODE_BYTES_MAX.wasm} bytes`, async () => {
    const big = new Uint8Array(CODE_BYTES_MAX.wasm + 1)
    big.set(m.wasmAdd)
    await assert.rejects(packageWasm(big, { name: 'big' }), { name: 'TooLargeError' })
  })
})
