/**
 * The js engine's frozen realm (js-engine.ts, theory of operation): calls share one locked-down
 * context per isolate and get a fresh module instance each; a call that fails there is run again
 * exactly, in a fresh context of its own, with its whole time budget.
 */

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createJsEngine, DEFAULT_LIMITS } from '../../src/sandbox/index.ts'
import type { SandboxCall } from '../../src/sandbox/index.ts'
import type { JsEngine } from '../../src/sandbox/js-engine.ts'
import { REPLACE_AHEAD_CALLS } from '../../src/sandbox/run-call.ts'

const js = (source: string): Uint8Array => new TextEncoder().encode(source)

let ids = 0
function call (source: string, exportName: string, over: Partial<SandboxCall> = {}): SandboxCall {
  return { functionId: `frozen-${ids++}`, kind: 'js', code: js(source), exportName, args: [], seed: new Uint8Array([5]), limits: DEFAULT_LIMITS, ...over }
}

/** Let the engine prepare the next module instance (it does once a call's result is on its way). */
async function settle (engine: JsEngine): Promise<void> {
  await new Promise(resolve => setImmediate(resolve))
  await engine.preparationsSettled()
}

async function withEngine (body: (engine: JsEngine) => Promise<void>): Promise<void> {
  const engine = createJsEngine()
  try {
    await body(engine)
  } finally {
    await engine.close()
  }
}

/** Tells a frozen realm (the write to an intrinsic throws) from a fresh context (it succeeds). */
const CATCHES = 'export function probe () { try { Object.prototype.probe = 1; delete Object.prototype.probe; return "writable" } catch (err) { return [err.name, Object.isFrozen(Array.prototype)] } }'

describe('frozen realm', () => {
  test('module state is fresh on every fast-path call: a module counter returns 1 every time', async () => {
    await withEngine(async engine => {
      const counter = call('let calls = 0\nconst seen = []\nexport function count (x) { seen.push(x); return [++calls, seen.length] }', 'count')
      for (let i = 0; i < 40; i++) {
        assert.deepEqual((await engine.run({ ...counter, args: [i] })).value, [1, 1])
        if (i % 2 === 0) await settle(engine)
      }
      assert.deepEqual(engine.fastPathStats(), { fast: 40, fallbacks: 0, exact: 0, realms: 1 })
    })
  })

  test('the override mistake is tamed: an Error subclass that sets this.name and a prototype that overrides toString stay on the fast path', async () => {
    await withEngine(async engine => {
      const source = [
        'function Point (x) { this.x = x }',
        'Point.prototype.toString = function () { return "P(" + this.x + ")" }',
        'Point.prototype.constructor = Point',
        'class ParseError extends Error { constructor (m) { super(m); this.name = "ParseError" } }',
        'export function f (x) {',
        '  const e = new ParseError("bad " + x)',
        '  const o = { valueOf () { return 7 } }',
        '  o.toString = () => "own"',
        '  return [String(new Point(x)), e.name, e.message, e instanceof Error, String(o), o.hasOwnProperty("toString"), ({}).toString === Object.prototype.toString]',
        '}'
      ].join('\n')
      for (let i = 0; i < 3; i++) {
        assert.deepEqual((await engine.run(call(source, 'f', { functionId: 'frozen-override', args: [i] }))).value, [`P(${i})`, 'ParseError', `bad ${i}`, true, 'own', true, true])
        await settle(engine)
      }
      assert.deepEqual(engine.fastPathStats(), { fast: 3, fallbacks: 0, exact: 0, realms: 1 })
      // Writing on the built-in itself still fails here and reruns exactly, as pollution must.
      const pollute = 'export function p () { Object.prototype.toString = () => "evil"; return String({}) }\nexport function check () { return String({}) }'
      assert.equal((await engine.run(call(pollute, 'p', { functionId: 'frozen-override-pollute' }))).value, 'evil')
      await settle(engine)
      assert.equal((await engine.run(call(pollute, 'check', { functionId: 'frozen-override-pollute' }))).value, '[object Object]')
      assert.equal(engine.fastPathStats().fallbacks, 1)
    })
  })

  test('a call that adds to globalThis falls back and gets its result as in a fresh context; the next call sees no trace of it', async () => {
    await withEngine(async engine => {
      const source = 'export function add () { globalThis.leak = 42; return globalThis.leak }\nexport function read () { return [typeof globalThis.leak, Object.hasOwn(globalThis, "leak")] }'
      assert.equal((await engine.run(call(source, 'add', { functionId: 'frozen-global' }))).value, 42)
      assert.deepEqual(engine.fastPathStats(), { fast: 0, fallbacks: 1, exact: 0, realms: 1 })
      await settle(engine)
      const next = await engine.run(call(source, 'read', { functionId: 'frozen-global' }))
      assert.deepEqual([next.value, next.warm], [['undefined', false], true])
      assert.deepEqual(engine.fastPathStats(), { fast: 1, fallbacks: 1, exact: 0, realms: 2 })
    })
  })

  test('a call cannot read the previous call\'s regular expression matches (RegExp.$1, lastMatch)', async () => {
    await withEngine(async engine => {
      const source = 'export function match (s) { return /(sec)ret-(\\d+)/.exec(s)[2] }\nexport function peek () { return [RegExp.$1 ?? null, RegExp.lastMatch ?? null, RegExp["$&"] ?? null, RegExp.input ?? null] }'
      const id = 'frozen-regexp'
      assert.equal((await engine.run(call(source, 'match', { functionId: id, args: ['the secret-1234'] }))).value, '1234')
      const peek = await engine.run(call(source, 'peek', { functionId: id }))
      assert.deepEqual([peek.value, peek.warm], [[null, null, null, null], true])
      assert.equal(engine.fastPathStats().fast, 2)
    })
  })

  test('a pollution call falls back with the same result as a fresh context; the next call runs on the fast path', async () => {
    await withEngine(async engine => {
      const source = 'export function pollute () { Object.prototype.polluted = "yes"; Array.prototype.map = () => "evil"; return 1 }\nexport function check () { return [({}).polluted ?? null, [1, 2].map(x => x * 2)] }'
      const id = 'frozen-pollute'
      for (let i = 0; i < 3; i++) {
        assert.equal((await engine.run(call(source, 'pollute', { functionId: id }))).value, 1)
        await settle(engine)
        assert.deepEqual((await engine.run(call(source, 'check', { functionId: id }))).value, [null, [2, 4]])
        await settle(engine)
      }
      assert.deepEqual(engine.fastPathStats(), { fast: 3, fallbacks: 3, exact: 0, realms: 4 })
    })
  })

  test('a function that throws reports the same FunctionThrewError as it does in a fresh context', async () => {
    await withEngine(async engine => {
      const source = 'class Oops extends Error {}\nexport function f (n) { if (n > 0) throw new TypeError("bad " + n); throw new Oops("own " + Math.random()) }'
      const seen: string[] = []
      for (const n of [1, 0, 0]) {
        await assert.rejects(engine.run(call(source, 'f', { functionId: 'frozen-throws', args: [n] })), (err: Error & { thrownName?: string }) => {
          assert.equal(err.name, 'FunctionThrewError')
          seen.push(`${err.thrownName ?? ''}: ${err.message}`)
          return true
        })
      }
      assert.match(seen[0], /^TypeError: .*bad 1/)
      assert.match(seen[1], /^Error: .*own 0\./)
      assert.equal(seen[1], seen[2])
      assert.deepEqual(engine.fastPathStats(), { fast: 0, fallbacks: 3, exact: 0, realms: 3 })
      // The same call on an engine that never tried the frozen realm for it: same error, cold.
      await withEngine(async fresh => {
        await assert.rejects(fresh.run(call(source, 'f', { functionId: 'frozen-throws', args: [0] })), (err: Error & { thrownName?: string }) => `${err.thrownName ?? ''}: ${err.message}` === seen[1])
      })
    })
  })

  test('the exact rerun gets the whole time budget again: a throw after most of the budget is FunctionThrewError, not a time limit', async () => {
    await withEngine(async engine => {
      // Spins for ~60% of its budget by counting loop iterations calibrated in the same isolate
      // (no clock in a function): measured against a loop whose iterations the test counts.
      const limits = { ...DEFAULT_LIMITS, timeMs: 1_500 }
      const spin = 'export function spin (n) { let x = 0; for (let i = 0; i < n; i++) x = (x + i) % 1000003; return x }\nexport function late (n) { spin(n); throw new Error("late") }'
      const id = 'frozen-budget'
      const probe = 10_000_000
      // The first call also makes the isolate and the realm: the second measures the loop alone.
      await engine.run(call(spin, 'spin', { functionId: id, args: [probe], limits }))
      // A loaded machine can slow the loop between calibration and the call past the whole
      // budget: calibrate again and retry, up to 3 times. Without the fresh budget no try can
      // pass (60% in the frozen realm leaves 40% for a rerun that needs 60%).
      const outcomes: string[] = []
      for (let attempt = 0; attempt < 3 && outcomes.at(-1) !== 'FunctionThrewError'; attempt++) {
        const probeRun = await engine.run(call(spin, 'spin', { functionId: id, args: [probe], limits }))
        const perIterationMs = probeRun.runMs / probe
        const n = Math.floor(limits.timeMs * 0.6 / Math.max(perIterationMs, 1e-7))
        const failure = await engine.run(call(spin, 'late', { functionId: id, args: [n], limits })).then(() => undefined, (err: Error) => err)
        outcomes.push(failure?.name ?? 'no error')
      }
      assert.equal(outcomes.at(-1), 'FunctionThrewError', `outcomes: ${outcomes.join(', ')}`)
      const stats = engine.fastPathStats()
      assert.equal(stats.fallbacks, outcomes.length, 'each late call failed in the frozen realm first and was rerun exactly')
      assert.equal(stats.exact, 0)
    })
  })

  test('a function that catches the frozen realm\'s TypeError gives the same result every call, cold and warm', async () => {
    const results: unknown[] = []
    await withEngine(async engine => {
      for (let i = 0; i < 6; i++) {
        results.push((await engine.run(call(CATCHES, 'probe', { functionId: 'frozen-catches' }))).value)
        if (i % 2 === 1) await settle(engine)
      }
      assert.deepEqual(engine.fastPathStats(), { fast: 6, fallbacks: 0, exact: 0, realms: 1 })
    })
    await withEngine(async engine => {
      results.push((await engine.run(call(CATCHES, 'probe', { functionId: 'frozen-catches' }))).value)
    })
    assert.deepEqual(results, new Array(7).fill(['TypeError', true]))
  })

  test('top-level code that fails in the frozen realm runs exactly from then on, with the result of a fresh context', async () => {
    await withEngine(async engine => {
      // A polyfill: it adds to a built-in prototype at load, which the frozen realm refuses.
      const source = 'if (!Array.prototype.last) Array.prototype.last = function () { return this[this.length - 1] }\nexport function f () { return [1, 2, "legacy"].last() }'
      for (let i = 0; i < 3; i++) {
        assert.equal((await engine.run(call(source, 'f', { functionId: 'frozen-top-level' }))).value, 'legacy')
        await settle(engine)
      }
      assert.deepEqual(engine.fastPathStats(), { fast: 0, fallbacks: 1, exact: 2, realms: 1 })
      // The second and third calls ran in exact contexts built ahead of them.
      assert.equal(engine.preparationStats().used, 2)
    })
  })

  test('Math.random at top level is seeded by the function id on every call, as in a fresh context', async () => {
    await withEngine(async engine => {
      const source = 'const atLoad = Math.random()\nexport function f () { return [atLoad, Math.random()] }'
      const values = []
      for (let i = 0; i < 4; i++) {
        values.push((await engine.run(call(source, 'f', { functionId: 'frozen-random' }))).value)
        if (i % 2 === 0) await settle(engine)
      }
      for (const value of values) assert.deepEqual(value, values[0])
      assert.equal(engine.fastPathStats().fast, 4)
    })
  })
})

describe('replacing a retiring isolate', () => {
  test(`the replacement is made ${REPLACE_AHEAD_CALLS} calls before the retirement, behind the retiring isolate, so the call after the retirement finds it ready`, async () => {
    const isolateCallsMax = REPLACE_AHEAD_CALLS + 2
    const engine = createJsEngine({ isolateCallsMax })
    try {
      const noop = call('export function f () { return 7 }', 'f', { functionId: 'frozen-replace' })
      const results = []
      for (let i = 1; i <= isolateCallsMax - REPLACE_AHEAD_CALLS; i++) results.push(await engine.run(noop))
      await settle(engine)
      // Made ahead, kept behind: both alive, the old one still serving.
      assert.equal(engine.pool.stats().isolatesAlive, 2)
      for (let i = isolateCallsMax - REPLACE_AHEAD_CALLS + 1; i <= isolateCallsMax; i++) results.push(await engine.run(noop))
      assert.equal(engine.pool.stats().isolatesDisposed, 1)
      // Right after the retirement, no turn of the event loop in between.
      results.push(await engine.run(noop))
      assert.deepEqual(results.map(r => r.value), new Array(isolateCallsMax + 1).fill(7))
      assert.deepEqual(results.map(r => r.warm), [false, ...new Array(isolateCallsMax).fill(true)])
      assert.deepEqual({ coldStarts: engine.pool.stats().coldStarts, waited: engine.preparationStats().waited }, { coldStarts: 1, waited: 0 })
    } finally {
      await engine.close()
    }
  })
})
