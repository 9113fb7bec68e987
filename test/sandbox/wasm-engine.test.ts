import { describe, test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createWasmEngine, DEFAULT_LIMITS } from '../../src/sandbox/index.ts'
import type { SandboxCall, SandboxLimits } from '../../src/sandbox/index.ts'
import { engineCompliance } from './compliance.ts'
import * as m from '../fixtures/functions/wasm-modules.ts'

const MIB = 1024 * 1024
const PAGE = 65536

engineCompliance({
  kind: 'wasm',
  createEngine: options => createWasmEngine(options),
  add: { code: m.wasmAdd, exportName: 'add', args: [2, 3] },
  spin: { code: m.wasmSpin, exportName: 'spin', args: [] },
  // wasm memory is capped by declaration: initial memory past the cap is refused outright.
  memoryHog: { code: m.wasmInitialMemory(129), exportName: 'run', args: [], limits: { memoryBytesMax: 8 * MIB } },
  random: { code: m.wasmRandom, exportName: 'random', args: [] },
  bytesOut: n => ({ code: m.wasmBytesOut, exportName: 'bytes', args: [n] }),
  fails: { code: m.wasmDivideByZero, exportName: 'divide', args: [1, 0], errorName: 'WasmTrapError' }
})

let ids = 0
function call (code: Uint8Array, exportName: string, args: unknown[] = [], limits: Partial<SandboxLimits> = {}): SandboxCall {
  return { functionId: `wasm-test-${ids++}`, kind: 'wasm', code, exportName, args, seed: new Uint8Array([3]), limits: { ...DEFAULT_LIMITS, ...limits } }
}

describe('wasm engine', () => {
  const engine = createWasmEngine()
  after(async () => { await engine.close() })

  test('numbers map onto i32, i64 and f64; i64 results come back as numbers when safe', async () => {
    assert.equal((await engine.run(call(m.wasmAdd, 'add', [2 ** 31, 1]))).value, -(2 ** 31) + 1)
    assert.equal((await engine.run(call(m.wasmI64Add, 'add', [2, 3]))).value, 5)
    assert.equal((await engine.run(call(m.wasmI64Add, 'add', [2n ** 62n, 2n ** 62n - 1n]))).value, 2n ** 63n - 1n)
    assert.deepEqual((await engine.run(call(m.wasmPair, 'pair', [1.25]))).value, [2.5, 7])
  })

  test('i32 arguments up to 2^32 - 1 pass; 2^32 is refused', async () => {
    assert.equal((await engine.run(call(m.wasmAdd, 'add', [2 ** 32 - 1, 0]))).value, -1)
    await assert.rejects(engine.run(call(m.wasmAdd, 'add', [2 ** 32, 0])), { name: 'UnsupportedValueError' })
  })

  test('arguments that do not fit the signature are refused with UnsupportedValueError', async () => {
    for (const args of [[1], [1, 2, 3], ['1', 2], [1.5, 2], [null, 2], [2n, 1]]) {
      await assert.rejects(engine.run(call(m.wasmAdd, 'add', args)), { name: 'UnsupportedValueError' }, JSON.stringify(args, (_k, v: unknown) => typeof v === 'bigint' ? `${v}n` : v))
    }
    await assert.rejects(engine.run(call(m.wasmV128Param, 'run', [1])), { name: 'UnsupportedValueError', message: /numeric signatures/ })
  })

  test('bytes go in through alloc + memory and come out through rhizome.output', async () => {
    assert.equal((await engine.run(call(m.wasmSum, 'sum', [new Uint8Array([1, 2, 3, 250])]))).value, 256)
    assert.deepEqual((await engine.run(call(m.wasmBytesOut, 'bytes', [3]))).value, new Uint8Array(3))
    await assert.rejects(engine.run(call(m.wasmAdd, 'add', [new Uint8Array(1)])), { name: 'UnsupportedValueError', message: /alloc/ })
  })

  test('rhizome.output outside memory traps', async () => {
    await assert.rejects(engine.run(call(m.wasmOutputRaw, 'out', [PAGE - 1, 2])), { name: 'WasmTrapError', message: /outside/ })
    assert.deepEqual((await engine.run(call(m.wasmOutputRaw, 'out', [PAGE - 2, 2]))).value, new Uint8Array(2))
  })

  test('memory grows up to the cap; one page past it memory.grow returns -1', async () => {
    const limits = { memoryBytesMax: 8 * MIB }
    const pagesMax = (8 * MIB) / PAGE
    assert.equal((await engine.run(call(m.wasmGrow, 'grow', [pagesMax - 1], limits))).value, 1)
    assert.equal((await engine.run(call(m.wasmGrow, 'grow', [pagesMax], limits))).value, -1)
  })

  test('a module that traps when memory.grow fails reports WasmTrapError', async () => {
    await assert.rejects(engine.run(call(m.wasmGrowOrTrap, 'grow', [1000], { memoryBytesMax: 8 * MIB })), { name: 'WasmTrapError', retryable: false })
  })

  test('initial memory at the cap passes; one page more fails with SandboxMemoryLimitError', async () => {
    const limits = { memoryBytesMax: 8 * MIB }
    assert.equal((await engine.run(call(m.wasmInitialMemory(128), 'run', [], limits))).value, null)
    await assert.rejects(engine.run(call(m.wasmInitialMemory(129), 'run', [], limits)), { name: 'SandboxMemoryLimitError' })
  })

  test('every call gets a fresh instance: memory does not carry over', async () => {
    const c = call(m.wasmBump, 'bump')
    assert.equal((await engine.run(c)).value, 1)
    const again = await engine.run({ ...c })
    assert.equal(again.warm, true)
    assert.equal(again.value, 1)
  })

  test('recursion past the stack fails with SandboxStackOverflowError', async () => {
    await assert.rejects(engine.run(call(m.wasmRecurse, 'recurse')), { name: 'SandboxStackOverflowError' })
  })

  test('NaN results fail with UnsupportedValueError', async () => {
    await assert.rejects(engine.run(call(m.wasmNaN, 'nan')), { name: 'UnsupportedValueError' })
  })

  test('imports other than rhizome.output and rhizome.random_f64 with their signatures are refused', async () => {
    for (const [code, specifier] of [[m.wasmImportsEnv, 'env.abort'], [m.wasmImportsUnknownRhizome, 'rhizome.now'], [m.wasmImportsOutputWrongSignature, 'rhizome.output'], [m.wasmImportsMemory, 'rhizome.memory']] as const) {
      await assert.rejects(engine.run(call(code, 'run')), { name: 'ForbiddenImportError', specifier })
    }
  })

  test('malformed and unsupported modules fail with WasmModuleError', async () => {
    await assert.rejects(engine.run(call(m.notWasm, 'run')), { name: 'WasmModuleError' })
    await assert.rejects(engine.run(call(m.wasmSharedMemory, 'run')), { name: 'WasmModuleError', message: /shared/ })
    await assert.rejects(engine.run(call(m.wasmAdd.subarray(0, m.wasmAdd.length - 3), 'add')), { name: 'WasmModuleError' })
  })
})
