/**
 * Module instances built ahead of their call (js-engine.ts, theory of operation): after a clean
 * call the warm isolate builds the next call's module instance (in its frozen realm, or in an
 * exact context of its own) in the background. Every call still sees fresh module state and a
 * clean realm; a preparation that fails or is cut short leaves the call to load the module
 * itself, as a cold call does, and reports the same error.
 */

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { RhizomeError } from '../../src/model/errors.ts'
import { createJsEngine, DEFAULT_LIMITS, LIMITS_CEILING } from '../../src/sandbox/index.ts'
import type { SandboxCall } from '../../src/sandbox/index.ts'
import { IsolatePool } from '../../src/sandbox/isolate-pool.ts'
import { HOSTILE_FIXTURES } from '../fixtures/functions/hostile.ts'
import type { PoolEntry } from '../../src/sandbox/isolate-pool.ts'

const js = (source: string): Uint8Array => new TextEncoder().encode(source)

/** Module state and globals a call changes; every call must see them fresh: [1, 1]. */
const COUNTER = 'let calls = 0\nexport function count () { globalThis.total = (globalThis.total ?? 0) + 1; Object.prototype.polluted = "yes"; return [++calls, globalThis.total] }\nexport function clean () { return ({}).polluted ?? null }'

/**
 * Top-level code that computes for a while (tens of milliseconds on a 2-core peer) before the
 * module is ready: long enough that a preparation is surely still running when a call arrives,
 * or is cut by a small preparation time limit.
 */
const SLOW_TOP_LEVEL = 'let x = 0\nfor (let i = 0; i < 20_000_000; i++) x = (x + i * 7) % 1000003\nexport function value () { return x }'

/** Let the engine start preparing (it does once the call's result is on its way), then let that finish. */
async function settle (engine: { preparationsSettled: () => Promise<void> }): Promise<void> {
  await nextTurn()
  await engine.preparationsSettled()
}

/** One turn of the event loop: preparations start in it. */
async function nextTurn (): Promise<void> {
  await new Promise(resolve => setImmediate(resolve))
}

let ids = 0
function call (source: string, exportName: string, over: Partial<SandboxCall> = {}): SandboxCall {
  return { functionId: `prepared-${ids++}`, kind: 'js', code: js(source), exportName, args: [], seed: new Uint8Array([3]), limits: DEFAULT_LIMITS, ...over }
}

/** A real pool that also remembers the entries it kept warm, so a test can reach their isolates. */
class RecordingPool extends IsolatePool {
  readonly kept: Array<PoolEntry<unknown>> = []
  override release (entry: PoolEntry<unknown>): boolean {
    const kept = super.release(entry)
    if (kept) this.kept.push(entry)
    return kept
  }
}

describe('prepared contexts', () => {
  test('a context built ahead serves exactly one call: module state, globals and intrinsics are fresh each time', async () => {
    const engine = createJsEngine()
    try {
      const counter = call(COUNTER, 'count')
      const results = []
      for (let i = 0; i < 3; i++) {
        results.push(await engine.run(counter))
        await settle(engine)
      }
      assert.deepEqual(results.map(r => r.value), [[1, 1], [1, 1], [1, 1]])
      assert.deepEqual(results.map(r => r.warm), [false, true, true])
      assert.equal((await engine.run({ ...counter, exportName: 'clean' })).value, null)
      // The second, third and fourth calls ran in contexts built for them, each one new.
      assert.deepEqual(engine.preparationStats(), { started: 3, used: 3, waited: 0, failed: 0 })
    } finally {
      await engine.close()
    }
  })

  test('every hostile fixture with a follow-up: the follow-up runs in a context prepared after the hostile call and sees a clean realm', async () => {
    const engine = createJsEngine()
    try {
      const fixtures = HOSTILE_FIXTURES.filter(f => f.kind === 'js' && f.followUp !== undefined)
      assert.ok(fixtures.length >= 5)
      for (const fixture of fixtures) {
        const followUp = fixture.followUp as NonNullable<typeof fixture.followUp>
        const hostile = call(fixture.source ?? '', fixture.exportName, { args: fixture.args, limits: { ...DEFAULT_LIMITS, ...fixture.limits } })
        await engine.run(hostile)
        await settle(engine)
        const usedBefore = engine.preparationStats().used
        const result = await engine.run({ ...hostile, exportName: followUp.exportName, args: followUp.args })
        assert.deepEqual(result.value, followUp.expectedValue, fixture.name)
        assert.equal(engine.preparationStats().used, usedBefore + 1, fixture.name)
      }
    } finally {
      await engine.close()
    }
  })

  test('a call that arrives while its isolate is being prepared waits for that preparation; a concurrent call gets its own isolate', async () => {
    const engine = createJsEngine()
    try {
      const slow = call(SLOW_TOP_LEVEL, 'value', { limits: { ...DEFAULT_LIMITS, timeMs: 60_000 } })
      const first = await engine.run(slow)
      await nextTurn()
      // The preparation started once the first call had returned, and is still running.
      const [second, third] = await Promise.all([engine.run(slow), engine.run(slow)])
      assert.equal(second.value, first.value)
      assert.equal(third.value, first.value)
      assert.deepEqual([second.warm, third.warm].sort(), [false, true])
      assert.equal(engine.pool.stats().coldStarts, 2)
      assert.equal(engine.preparationStats().waited, 1)
      assert.equal(engine.preparationStats().used, 1)
      await engine.preparationsSettled()
    } finally {
      await engine.close()
    }
  })

  test('a call that comes before the preparation started builds its own context, and no preparation starts in the isolate it holds', async () => {
    const engine = createJsEngine()
    try {
      const counter = call(COUNTER, 'count')
      await engine.run(counter)
      // Issued while the first call's result is still on its way: the isolate is leased again at once.
      const second = await engine.run(counter)
      assert.deepEqual([second.value, second.warm], [[1, 1], true])
      await settle(engine)
      assert.deepEqual(engine.preparationStats(), { started: 1, used: 0, waited: 0, failed: 0 })
      assert.deepEqual((await engine.run(counter)).value, [1, 1])
      assert.equal(engine.preparationStats().used, 1)
    } finally {
      await engine.close()
    }
  })

  test(`prepareTimeMsMax from 1 to ${LIMITS_CEILING.timeMs} ms is accepted; one past either end is a ConfigError`, async () => {
    for (const ok of [1, LIMITS_CEILING.timeMs]) await createJsEngine({ prepareTimeMsMax: ok }).close()
    for (const bad of [0, LIMITS_CEILING.timeMs + 1, 1.5]) assert.throws(() => createJsEngine({ prepareTimeMsMax: bad }), { name: 'ConfigError' })
  })

  test('a preparation past its time limit is dropped: the waiting call builds its own context, and the isolate prepares no more', async () => {
    const engine = createJsEngine({ prepareTimeMsMax: 1 })
    try {
      const slow = call(SLOW_TOP_LEVEL, 'value', { limits: { ...DEFAULT_LIMITS, timeMs: 60_000 } })
      const first = await engine.run(slow)
      await nextTurn()
      const second = await engine.run(slow)
      await nextTurn()
      const third = await engine.run(slow)
      assert.deepEqual([second.value, third.value], [first.value, first.value])
      assert.deepEqual([second.warm, third.warm], [true, true])
      assert.deepEqual(engine.preparationStats(), { started: 1, used: 0, waited: 1, failed: 1 })
    } finally {
      await engine.close()
    }
  })

  test('top-level code that throws fails every call with the same error, prepared or not', async () => {
    const engine = createJsEngine()
    try {
      // Counts its loads on globalThis: had any context been shared, a later call would say "top 2".
      const throwing = call('globalThis.loaded = (globalThis.loaded ?? 0) + 1\nthrow new RangeError("top " + globalThis.loaded)\nexport function f () { return 1 }', 'f')
      for (let i = 0; i < 3; i++) {
        await assert.rejects(engine.run(throwing), (err: Error & { thrownName?: string }) => {
          assert.equal(err.name, 'FunctionThrewError')
          assert.equal(err.thrownName, 'RangeError')
          assert.match(err.message, /top 1 \(while loading the module\)/)
          return true
        })
      }
      // A top-level throw disposes the isolate, as it always did: nothing to prepare.
      assert.equal(engine.preparationStats().started, 0)
    } finally {
      await engine.close()
    }
  })

  test('top-level code slower than the next call\'s whole budget still fails that call with SandboxTimeLimitError', async () => {
    const engine = createJsEngine()
    try {
      const slow = call(SLOW_TOP_LEVEL, 'value', { limits: { ...DEFAULT_LIMITS, timeMs: 60_000 } })
      await engine.run(slow)
      await settle(engine)
      assert.equal(engine.preparationStats().failed, 0)
      // The context is ready, but loading the module took longer than this call may: the call
      // is charged for it, as it would be had it loaded the module itself.
      await assert.rejects(engine.run({ ...slow, limits: { ...DEFAULT_LIMITS, timeMs: 1 } }), { name: 'SandboxTimeLimitError' })
      assert.equal(engine.preparationStats().used, 1)
      assert.equal((await engine.run(slow)).warm, false)
    } finally {
      await engine.close()
    }
  })

  test('close() during a preparation returns, fails the call waiting on it with SandboxClosedError, and the preparation settles', async () => {
    const engine = createJsEngine()
    const slow = call(SLOW_TOP_LEVEL, 'value', { limits: { ...DEFAULT_LIMITS, timeMs: 60_000 } })
    await engine.run(slow)
    await nextTurn()
    const waiting = engine.run(slow)
    await engine.close()
    await assert.rejects(waiting, { name: 'SandboxClosedError' })
    await engine.preparationsSettled()
    assert.equal(engine.preparationStats().failed, 1)
    assert.equal(engine.pool.stats().isolatesAlive, 0)
  })

  test('close() while an idle isolate is being prepared disposes it and the preparation settles', async () => {
    const engine = createJsEngine()
    const slow = call(SLOW_TOP_LEVEL, 'value', { limits: { ...DEFAULT_LIMITS, timeMs: 60_000 } })
    await engine.run(slow)
    await nextTurn()
    await engine.close()
    await engine.preparationsSettled()
    assert.deepEqual(engine.preparationStats(), { started: 1, used: 0, waited: 0, failed: 1 })
    assert.equal(engine.pool.stats().isolatesAlive, 0)
  })

  test('an isolate evicted from the warm set while being prepared is disposed; its function starts cold next time', async () => {
    const engine = createJsEngine({ cacheSize: 1 })
    try {
      const slow = call(SLOW_TOP_LEVEL, 'value', { limits: { ...DEFAULT_LIMITS, timeMs: 60_000 } })
      const first = await engine.run(slow)
      await nextTurn()
      // Another function's isolate takes the only warm place.
      await engine.run(call('export function f () { return 2 }', 'f'))
      await engine.preparationsSettled()
      assert.equal(engine.preparationStats().failed, 1)
      const again = await engine.run(slow)
      assert.equal(again.value, first.value)
      assert.equal(again.warm, false)
    } finally {
      await engine.close()
    }
  })

  test('an isolate disposed under its preparation (as isolated-vm does at the memory limit) fails the waiting call with a named error and is not kept', async () => {
    const pool = new RecordingPool()
    const engine = createJsEngine({ pool })
    try {
      const slow = call(SLOW_TOP_LEVEL, 'value', { limits: { ...DEFAULT_LIMITS, timeMs: 60_000 } })
      const first = await engine.run(slow)
      await nextTurn()
      const waiting = engine.run(slow)
      pool.kept[0].isolate.dispose()
      await assert.rejects(waiting, (err: Error) => err instanceof RhizomeError)
      assert.equal(pool.stats().isolatesAlive, 0)
      const again = await engine.run(slow)
      assert.deepEqual([again.value, again.warm], [first.value, false])
      await engine.preparationsSettled()
      assert.equal(engine.preparationStats().failed, 1)
    } finally {
      await engine.close()
      pool.close()
    }
  })

  test('an idle isolate disposed under its preparation is skipped: the next call starts cold', async () => {
    const pool = new RecordingPool()
    const engine = createJsEngine({ pool })
    try {
      const slow = call(SLOW_TOP_LEVEL, 'value', { limits: { ...DEFAULT_LIMITS, timeMs: 60_000 } })
      const first = await engine.run(slow)
      await nextTurn()
      pool.kept[0].isolate.dispose()
      await engine.preparationsSettled()
      const again = await engine.run(slow)
      assert.deepEqual([again.value, again.warm], [first.value, false])
      assert.deepEqual(engine.preparationStats(), { started: 1, used: 0, waited: 0, failed: 1 })
    } finally {
      await engine.close()
      pool.close()
    }
  })

  test('an isolate retired after isolateCallsMax calls is replaced ahead of the next call, with its context prepared', async () => {
    const engine = createJsEngine({ isolateCallsMax: 2 })
    try {
      const counter = call(COUNTER, 'count')
      const results = []
      for (let i = 0; i < 5; i++) {
        results.push(await engine.run(counter))
        await settle(engine)
      }
      assert.deepEqual(results.map(r => r.value), Array(5).fill([1, 1]))
      // Only the first call started cold; the third and fifth ran in replacements made ahead.
      assert.deepEqual(results.map(r => r.warm), [false, true, true, true, true])
      assert.deepEqual(engine.pool.stats(), { warmHits: 4, coldStarts: 1, isolatesAlive: 1, isolatesIdle: 1, isolatesDisposed: 2, callsActive: 0 })
      assert.deepEqual(engine.preparationStats(), { started: 5, used: 4, waited: 0, failed: 0 })
    } finally {
      await engine.close()
    }
  })

  test('no replacement is made for a pool closed right after the retiring call', async () => {
    const engine = createJsEngine({ isolateCallsMax: 1 })
    await engine.run(call(COUNTER, 'count'))
    await engine.close()
    await nextTurn()
    assert.equal(engine.pool.stats().isolatesAlive, 0)
    assert.equal(engine.preparationStats().started, 0)
  })
})
