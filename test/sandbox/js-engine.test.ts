import { describe, test, after } from 'node:test'
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import { createJsEngine, CODE_BYTES_MAX, DEFAULT_LIMITS, VALUE_DEPTH_MAX } from '../../src/sandbox/index.ts'
import type { SandboxCall } from '../../src/sandbox/index.ts'
import { THROWN_MESSAGE_LENGTH_MAX } from '../../src/sandbox/limits.ts'
import { engineCompliance } from './compliance.ts'

const js = (source: string): Uint8Array => new TextEncoder().encode(source)

engineCompliance({
  kind: 'js',
  createEngine: options => createJsEngine(options),
  add: { code: js('export function add (a, b) { return a + b }'), exportName: 'add', args: [2, 3] },
  spin: { code: js('export function spin () { for (;;) {} }'), exportName: 'spin', args: [] },
  memoryHog: {
    code: js('export function hog () { const keep = []; for (;;) keep.push(new Array(100000).fill(1.5)) }'),
    exportName: 'hog',
    args: [],
    limits: { memoryBytesMax: 16 * 1024 * 1024 }
  },
  random: { code: js('export function random () { return [Math.random(), Math.random(), Math.random()] }'), exportName: 'random', args: [] },
  bytesOut: n => ({ code: js('export function bytes (n) { return new Uint8Array(n) }'), exportName: 'bytes', args: [n] }),
  fails: { code: js('export function fails () { throw new TypeError("no good") }'), exportName: 'fails', args: [], errorName: 'FunctionThrewError' }
})

let ids = 0
function call (source: string, exportName: string, args: unknown[] = [], over: Partial<SandboxCall> = {}): SandboxCall {
  return { functionId: `js-test-${ids++}`, kind: 'js', code: js(source), exportName, args, seed: new Uint8Array([7]), limits: DEFAULT_LIMITS, ...over }
}

describe('js engine', () => {
  const engine = createJsEngine()
  after(async () => { await engine.close() })

  test('arguments and results cover the dag-cbor data model, CIDs included', async () => {
    const cid = CID.create(1, raw.code, await sha256.digest(new Uint8Array([1, 2, 3])))
    const arg = { n: 1, f: 1.5, s: 'héllo', t: true, z: null, b: new Uint8Array([1, 2]), big: 2n ** 62n, list: [1, [2, [3]]], cid }
    const result = await engine.run(call(`
      export function echo (x) {
        return { ...x, isCid: x.cid['/'] === x.cid.bytes, cidVersion: x.cid.version, digestLength: x.cid.multihash.digest.length }
      }`, 'echo', [arg]))
    const value = result.value as Record<string, unknown>
    assert.deepEqual({ ...value, cid: undefined }, { ...arg, cid: undefined, isCid: true, cidVersion: 1, digestLength: 32 })
    assert.ok(CID.asCID(value.cid)?.equals(cid))
    assert.deepEqual(result.bytes, dagCbor.encode(value))
  })

  test('async functions are awaited; returning nothing gives null; undefined properties are left out', async () => {
    assert.equal((await engine.run(call('export async function f () { await null; return 7 }', 'f'))).value, 7)
    assert.equal((await engine.run(call('export function f () {}', 'f'))).value, null)
    assert.deepEqual((await engine.run(call('export function f () { return { a: 1, b: undefined } }', 'f'))).value, { a: 1 })
  })

  test('a map key named __proto__ stays a key', async () => {
    const result = await engine.run(call('export function f () { return JSON.parse(\'{"__proto__": {"x": 1}}\') }', 'f'))
    assert.ok(Object.hasOwn(result.value as object, '__proto__'))
    assert.deepEqual(Object.getPrototypeOf(result.value), Object.prototype)
  })

  test('BigInt results up to int64 max pass; one past fails with UnsupportedValueError', async () => {
    const source = 'export function f (n) { return BigInt(n) + 2n ** 62n + (2n ** 62n - 1n) }'
    assert.equal((await engine.run(call(source, 'f', [0]))).value, 2n ** 63n - 1n)
    await assert.rejects(engine.run(call(source, 'f', [1])), { name: 'UnsupportedValueError' })
  })

  test(`results nested ${VALUE_DEPTH_MAX} levels pass; one more fails with UnsupportedValueError`, async () => {
    const source = 'export function nest (n) { let v = 0; for (let i = 0; i < n; i++) v = [v]; return v }'
    await engine.run(call(source, 'nest', [VALUE_DEPTH_MAX]))
    await assert.rejects(engine.run(call(source, 'nest', [VALUE_DEPTH_MAX + 1])), { name: 'UnsupportedValueError', message: /nested deeper/ })
  })

  test(`arguments nested deeper than ${VALUE_DEPTH_MAX} levels are refused before the call`, async () => {
    let deep: unknown = 0
    for (let i = 0; i < VALUE_DEPTH_MAX; i++) deep = [deep]
    await engine.run(call('export function f () { return 1 }', 'f', deep as unknown[]))
    await assert.rejects(engine.run(call('export function f () { return 1 }', 'f', [deep])), { name: 'UnsupportedValueError' })
  })

  test('arguments outside the data model are refused', async () => {
    for (const bad of [() => 1, Symbol('s'), NaN, Infinity, [undefined], new Map(), new Date(0), 2n ** 63n]) {
      await assert.rejects(engine.run(call('export function f () { return 1 }', 'f', [bad])), { name: 'UnsupportedValueError' })
    }
    const cycle: Record<string, unknown> = {}
    cycle.self = cycle
    await assert.rejects(engine.run(call('export function f () { return 1 }', 'f', [cycle])), { name: 'UnsupportedValueError', message: /cycle/ })
  })

  test('module state does not survive from one call to the next', async () => {
    const c = call('let n = 0; export function inc () { globalThis.seen = (globalThis.seen ?? 0) + 1; return [++n, globalThis.seen] }', 'inc')
    assert.deepEqual((await engine.run(c)).value, [1, 1])
    const again = await engine.run({ ...c })
    assert.equal(again.warm, true)
    assert.deepEqual(again.value, [1, 1])
  })

  test('top-level code sees randomness seeded by the function id, the same for every call', async () => {
    const c = call('const atLoad = Math.random(); export function f () { return atLoad }', 'f')
    const a = await engine.run(c)
    const b = await engine.run({ ...c, seed: new Uint8Array([1, 2]) })
    assert.equal(a.value, b.value)
  })

  test('dates from explicit values work; the clock does not', async () => {
    assert.equal((await engine.run(call('export function f () { return new Date(0).toISOString() }', 'f'))).value, '1970-01-01T00:00:00.000Z')
    await assert.rejects(engine.run(call('export function f () { return Date.now() }', 'f')), { name: 'NondeterminismError', retryable: false })
  })

  test('a thrown error keeps its name and a message cut to the limit', async () => {
    await assert.rejects(engine.run(call('class MyError extends Error { name = "MyError" } export function f () { throw new MyError("mine") }', 'f')), {
      name: 'FunctionThrewError', thrownName: 'MyError', thrownMessage: 'mine', message: 'MyError: mine'
    })
    await assert.rejects(engine.run(call(`export function f () { throw new Error("x".repeat(${THROWN_MESSAGE_LENGTH_MAX + 1})) }`, 'f')), (err: Error & { thrownMessage: string }) => {
      assert.equal(err.thrownMessage, 'x'.repeat(THROWN_MESSAGE_LENGTH_MAX) + '…')
      return true
    })
  })

  test('an isolate is reused only for the same code', async () => {
    const a = call('export function f () { return "a" }', 'f')
    await engine.run(a)
    const b = await engine.run({ ...a, code: js('export function f () { return "b" }') })
    assert.equal(b.value, 'b')
    assert.equal(b.warm, false)
  })

  test('the idle cache keeps at most cacheSize isolates, disposing the least recently used', async () => {
    const small = createJsEngine({ cacheSize: 1 })
    try {
      const a = call('export function f () { return 1 }', 'f')
      const b = call('export function f () { return 2 }', 'f')
      await small.run(a)
      await small.run(b)
      assert.equal(small.pool.stats().isolatesIdle, 1)
      assert.equal((await small.run({ ...b })).warm, true)
      assert.equal((await small.run({ ...a })).warm, false)
      const stats = small.pool.stats()
      assert.equal(stats.isolatesDisposed, 2)
      assert.equal(stats.warmHits, 1)
    } finally {
      await small.close()
    }
  })

  test(`code of ${CODE_BYTES_MAX.js} bytes is accepted; one byte more is refused with TooLargeError`, async () => {
    const body = 'export function f () { return 1 }\n'
    const exact = body + '/'.repeat(CODE_BYTES_MAX.js - body.length)
    assert.equal((await engine.run(call(exact, 'f'))).value, 1)
    await assert.rejects(engine.run(call(exact + ' ', 'f')), { name: 'TooLargeError' })
  })

  test('code that is not UTF-8 is refused', async () => {
    await assert.rejects(engine.run({ ...call('', 'f'), code: new Uint8Array([0xff, 0xfe]) }), { name: 'InvalidInputError' })
  })
})
