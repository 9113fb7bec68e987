import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createSandbox, DEFAULT_LIMITS, inspectJsExports } from '../../src/sandbox/index.ts'
import type { SandboxCall } from '../../src/sandbox/index.ts'
import { wasmAdd, wasmSpin } from '../fixtures/functions/wasm-modules.ts'

const js = (source: string): Uint8Array => new TextEncoder().encode(source)
const base = { seed: new Uint8Array(1), limits: DEFAULT_LIMITS, args: [] as unknown[] }

describe('createSandbox', () => {
  test('dispatches on kind and counts warm hits, isolates alive and disposed', async () => {
    const sandbox = createSandbox()
    try {
      const jsCall: SandboxCall = { ...base, functionId: 'sb-js', kind: 'js', code: js('export function f (a) { return a * 3 }'), exportName: 'f', args: [2] }
      const wasmCall: SandboxCall = { ...base, functionId: 'sb-wasm', kind: 'wasm', code: wasmAdd, exportName: 'add', args: [2, 2] }
      assert.equal((await sandbox.run(jsCall)).value, 6)
      assert.equal((await sandbox.run(wasmCall)).value, 4)
      assert.equal((await sandbox.run(jsCall)).warm, true)
      await assert.rejects(sandbox.run({ ...wasmCall, functionId: 'sb-spin', code: wasmSpin, exportName: 'spin', args: [], limits: { ...DEFAULT_LIMITS, timeMs: 50 } }), { name: 'SandboxTimeLimitError' })
      assert.deepEqual(sandbox.stats(), { warmHits: 1, coldStarts: 3, isolatesAlive: 2, isolatesIdle: 2, isolatesDisposed: 1, callsActive: 0 })
    } finally {
      await sandbox.close()
    }
    assert.equal(sandbox.stats().isolatesAlive, 0)
  })

  test('refuses an unknown kind as invalid input', async () => {
    const sandbox = createSandbox()
    try {
      await assert.rejects(sandbox.run({ ...base, functionId: 'x', kind: 'python' as 'js', code: js(''), exportName: 'f' }), { name: 'InvalidInputError' })
    } finally {
      await sandbox.close()
    }
  })

  test('one concurrency limit covers both kinds', async () => {
    const sandbox = createSandbox({ callsConcurrentMax: 1 })
    try {
      const controller = new AbortController()
      const spinning = sandbox.run({ ...base, functionId: 'sb-spin-2', kind: 'wasm', code: wasmSpin, exportName: 'spin', limits: { ...DEFAULT_LIMITS, timeMs: 60_000 } }, { signal: controller.signal })
      await assert.rejects(sandbox.run({ ...base, functionId: 'sb-js-2', kind: 'js', code: js('export function f () { return 1 }'), exportName: 'f' }), { name: 'SandboxBusyError' })
      controller.abort()
      await assert.rejects(spinning, { name: 'SandboxAbortedError' })
    } finally {
      await sandbox.close()
    }
  })
})

describe('inspectJsExports', () => {
  test('lists every export with its type, sorted', async () => {
    const exports = await inspectJsExports(js('export const b = 1; export function a () {}; export class C {}; export default async () => 1'))
    assert.deepEqual(exports, [{ name: 'C', type: 'function' }, { name: 'a', type: 'function' }, { name: 'b', type: 'number' }, { name: 'default', type: 'function' }])
  })

  test('runs the module under limits, refusing imports', async () => {
    await assert.rejects(inspectJsExports(js('import x from "y"; export function f () { return x }')), { name: 'ForbiddenImportError', specifier: 'y' })
    await assert.rejects(inspectJsExports(js('for (;;) {}'), { limits: { ...DEFAULT_LIMITS, timeMs: 50 } }), { name: 'SandboxTimeLimitError' })
  })
})
