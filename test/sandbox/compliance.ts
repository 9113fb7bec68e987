/**
 * The behaviour every sandbox engine shares (STYLE.md §15): run from js-engine.test.ts and
 * wasm-engine.test.ts with that engine's own fixtures. Every failure is followed by a normal
 * call on the same engine, which must still be right.
 */

import { describe, test, after } from 'node:test'
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import type { SandboxCall, SandboxEngine } from '../../src/sandbox/index.ts'
import { DEFAULT_LIMITS, LIMITS_CEILING } from '../../src/sandbox/index.ts'
import type { SandboxLimits } from '../../src/sandbox/index.ts'

export interface KitCall {
  code: Uint8Array
  exportName: string
  args: unknown[]
}

export interface EngineKit {
  kind: 'js' | 'wasm'
  createEngine: (options?: { callsConcurrentMax?: number, cacheSize?: number }) => SandboxEngine
  /** add(2, 3) returns 5. */
  add: KitCall
  /** Never returns. */
  spin: KitCall
  /** Needs more memory than `memoryLimits.memoryBytesMax`. */
  memoryHog: KitCall & { limits: Partial<SandboxLimits> }
  /** Returns numbers drawn from the seeded random generator. */
  random: KitCall
  /** Returns a Uint8Array of `n` zero bytes. */
  bytesOut: (n: number) => KitCall
  /** The function's own failure, and the error name that reports it. */
  fails: KitCall & { errorName: string }
}

let ids = 0

export function engineCompliance (kit: EngineKit): void {
  describe(`${kit.kind} engine compliance`, () => {
    const engine = kit.createEngine()
    after(async () => { await engine.close() })

    const call = (c: KitCall, over: Partial<SandboxCall> = {}, limits: Partial<SandboxLimits> = {}): SandboxCall => ({
      functionId: `${kit.kind}-compliance-${ids++}`,
      kind: kit.kind,
      code: c.code,
      exportName: c.exportName,
      args: c.args,
      seed: new Uint8Array([1, 2, 3, 4]),
      limits: { ...DEFAULT_LIMITS, ...limits },
      ...over
    })

    const stillServes = async (): Promise<void> => {
      const result = await engine.run(call(kit.add))
      assert.equal(result.value, 5)
    }

    test('runs a call and returns its value with the dag-cbor bytes', async () => {
      const result = await engine.run(call(kit.add))
      assert.equal(result.value, 5)
      assert.deepEqual(result.bytes, dagCbor.encode(5))
      assert.equal(result.warm, false)
      assert.ok(result.runMs >= 0)
    })

    test('a second call of the same function reuses a warm isolate', async () => {
      const first = call(kit.add)
      await engine.run(first)
      const second = await engine.run({ ...first })
      assert.equal(second.warm, true)
      assert.equal(second.value, 5)
    })

    test('a call past its time limit fails with SandboxTimeLimitError, and the engine serves the next call', async () => {
      await assert.rejects(engine.run(call(kit.spin, {}, { timeMs: 200 })), { name: 'SandboxTimeLimitError', retryable: true })
      await stillServes()
    })

    test('a call past its memory limit fails with SandboxMemoryLimitError, and the engine serves the next call', async () => {
      await assert.rejects(engine.run(call(kit.memoryHog, {}, kit.memoryHog.limits)), { name: 'SandboxMemoryLimitError', retryable: false })
      await stillServes()
    })

    test('a call aborted before it starts fails with SandboxAbortedError', async () => {
      const controller = new AbortController()
      controller.abort()
      await assert.rejects(engine.run(call(kit.add), { signal: controller.signal }), { name: 'SandboxAbortedError', retryable: true })
      await stillServes()
    })

    test('a running call that is aborted fails with SandboxAbortedError, and the engine serves the next call', async () => {
      const controller = new AbortController()
      const running = engine.run(call(kit.spin, {}, { timeMs: 60_000 }), { signal: controller.signal })
      setTimeout(() => controller.abort(), 50)
      await assert.rejects(running, { name: 'SandboxAbortedError' })
      await stillServes()
    })

    test('repeated calls with the same seed return the same value; another seed another value', async () => {
      const c = call(kit.random)
      const a = await engine.run(c)
      const b = await engine.run({ ...c })
      const cold = await engine.run({ ...c, functionId: `${c.functionId}-other-isolate` })
      const other = await engine.run({ ...c, seed: new Uint8Array([9, 9, 9]) })
      assert.deepEqual(a.bytes, b.bytes)
      assert.deepEqual(a.bytes, cold.bytes)
      assert.notDeepEqual(a.bytes, other.bytes)
    })

    test('a result at the output limit passes; one byte past it fails with SandboxOutputLimitError', async () => {
      const size = dagCbor.encode(new Uint8Array(1000)).length
      const ok = await engine.run(call(kit.bytesOut(1000), {}, { outputBytesMax: size }))
      assert.deepEqual(ok.value, new Uint8Array(1000))
      await assert.rejects(engine.run(call(kit.bytesOut(1000), {}, { outputBytesMax: size - 1 })), { name: 'SandboxOutputLimitError', retryable: false })
      await stillServes()
    })

    test('the function\'s own failure is reported by name and is not retryable', async () => {
      await assert.rejects(engine.run(call(kit.fails)), { name: kit.fails.errorName, retryable: false })
      await stillServes()
    })

    test('an unknown export fails with ExportNotFoundError naming the exports', async () => {
      await assert.rejects(engine.run(call({ ...kit.add, exportName: 'nope' })), (err: Error & { available?: string[] }) => {
        assert.equal(err.name, 'ExportNotFoundError')
        assert.ok(err.available?.includes(kit.add.exportName))
        return true
      })
      await stillServes()
    })

    test('limits one past the ceiling, and a call of the other kind, are refused as invalid input', async () => {
      await assert.rejects(engine.run(call(kit.add, {}, { timeMs: LIMITS_CEILING.timeMs + 1 })), { name: 'InvalidInputError' })
      await assert.rejects(engine.run(call(kit.add, { kind: kit.kind === 'js' ? 'wasm' : 'js' })), { name: 'InvalidInputError' })
      await stillServes()
    })

    test('failures serialize through toData()', async () => {
      const err = await engine.run(call(kit.spin, {}, { timeMs: 100 })).then(() => undefined, (e: unknown) => e)
      const data = (err as { toData: () => unknown }).toData()
      assert.deepEqual(Object.keys(data as object).sort(), ['code', 'hint', 'message', 'name', 'retryable'])
      assert.equal((data as { name: string }).name, 'SandboxTimeLimitError')
    })

    test('callsConcurrentMax calls run at once; one more fails with SandboxBusyError', async () => {
      const small = kit.createEngine({ callsConcurrentMax: 2 })
      try {
        const controller = new AbortController()
        const running = [0, 1].map(async () => await small.run(call(kit.spin, {}, { timeMs: 60_000 }), { signal: controller.signal }).catch((e: Error) => e))
        await assert.rejects(small.run(call(kit.add)), { name: 'SandboxBusyError', retryable: true })
        controller.abort()
        for (const err of await Promise.all(running)) assert.equal((err as Error).name, 'SandboxAbortedError')
        assert.equal((await small.run(call(kit.add))).value, 5)
      } finally {
        await small.close()
      }
    })

    test('close() stops a running call with SandboxClosedError and refuses later calls', async () => {
      const closing = kit.createEngine()
      const running = closing.run(call(kit.spin, {}, { timeMs: 60_000 }))
      await new Promise(resolve => setTimeout(resolve, 50))
      await closing.close()
      await assert.rejects(running, { name: 'SandboxClosedError', retryable: true })
      await assert.rejects(closing.run(call(kit.add)), { name: 'SandboxClosedError' })
    })
  })
}
