import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import ivm from 'isolated-vm'
import { CACHE_SIZE_CEILING, CALLS_CONCURRENT_CEILING, ISOLATE_CALLS_CEILING, IsolatePool } from '../../src/sandbox/isolate-pool.ts'

const create = async (): Promise<{ isolate: ivm.Isolate, state: null }> => ({ isolate: new ivm.Isolate({ memoryLimit: 8 }), state: null })
const always = (): boolean => true

describe('isolate pool', () => {
  test(`cacheSize up to ${CACHE_SIZE_CEILING} and callsConcurrentMax up to ${CALLS_CONCURRENT_CEILING} are accepted; one more is a ConfigError`, () => {
    assert.doesNotThrow(() => new IsolatePool({ cacheSize: CACHE_SIZE_CEILING, callsConcurrentMax: CALLS_CONCURRENT_CEILING }))
    assert.throws(() => new IsolatePool({ cacheSize: CACHE_SIZE_CEILING + 1 }), { name: 'ConfigError', field: 'cacheSize' })
    assert.throws(() => new IsolatePool({ callsConcurrentMax: CALLS_CONCURRENT_CEILING + 1 }), { name: 'ConfigError', field: 'callsConcurrentMax' })
    assert.throws(() => new IsolatePool({ callsConcurrentMax: 0 }), { name: 'ConfigError' })
    assert.throws(() => new IsolatePool({ cacheSize: 1.5 }), { name: 'ConfigError' })
    assert.doesNotThrow(() => new IsolatePool({ isolateCallsMax: ISOLATE_CALLS_CEILING }))
    assert.throws(() => new IsolatePool({ isolateCallsMax: ISOLATE_CALLS_CEILING + 1 }), { name: 'ConfigError', field: 'isolateCallsMax' })
  })

  test('an isolate serves isolateCallsMax calls, then is replaced', async () => {
    const pool = new IsolatePool({ isolateCallsMax: 2 })
    const first = await pool.acquire('a', always, create)
    pool.release(first.entry)
    const second = await pool.acquire('a', always, create)
    assert.equal(second.entry, first.entry)
    pool.release(second.entry)
    assert.equal(first.entry.isolate.isDisposed, true)
    const third = await pool.acquire('a', always, create)
    assert.equal(third.warm, false)
    pool.close()
  })

  test('leases up to callsConcurrentMax isolates; one more is SandboxBusyError', async () => {
    const pool = new IsolatePool({ callsConcurrentMax: 2 })
    const a = await pool.acquire('a', always, create)
    const b = await pool.acquire('b', always, create)
    await assert.rejects(pool.acquire('c', always, create), { name: 'SandboxBusyError' })
    pool.release(a.entry)
    const c = await pool.acquire('a', always, create)
    assert.equal(c.warm, true)
    pool.discard(b.entry)
    pool.discard(c.entry)
    assert.deepEqual(pool.stats(), { warmHits: 1, coldStarts: 2, isolatesAlive: 0, isolatesIdle: 0, isolatesDisposed: 2, callsActive: 0 })
    pool.close()
  })

  test('idle isolates whose state is not accepted are disposed, not reused', async () => {
    const pool = new IsolatePool()
    const a = await pool.acquire('a', always, create)
    pool.release(a.entry)
    const again = await pool.acquire('a', () => false, create)
    assert.equal(again.warm, false)
    assert.equal(a.entry.isolate.isDisposed, true)
    pool.close()
    assert.equal(again.entry.isolate.isDisposed, true)
  })

  test('one idle isolate past cacheSize disposes the least recently released one, across keys', async () => {
    const pool = new IsolatePool({ cacheSize: 2 })
    const a = await pool.acquire('a', always, create)
    const b = await pool.acquire('b', always, create)
    const c = await pool.acquire('c', always, create)
    pool.release(a.entry)
    pool.release(b.entry)
    const again = await pool.acquire('a', always, create) // a leaves the idle set and comes back as the newest
    assert.equal(again.entry, a.entry)
    pool.release(a.entry)
    pool.release(c.entry) // one past cacheSize: b is the oldest
    assert.equal(b.entry.isolate.isDisposed, true)
    assert.equal(a.entry.isolate.isDisposed, false)
    assert.equal(c.entry.isolate.isDisposed, false)
    assert.equal(pool.stats().isolatesIdle, 2)
    assert.equal((await pool.acquire('b', always, create)).warm, false)
    const warmC = await pool.acquire('c', always, create)
    assert.equal(warmC.warm, true)
    pool.close()
    assert.equal(a.entry.isolate.isDisposed, true)
    assert.equal(pool.stats().isolatesIdle, 0)
  })

  test('cacheSize 0 keeps nothing warm', async () => {
    const pool = new IsolatePool({ cacheSize: 0 })
    const a = await pool.acquire('a', always, create)
    pool.release(a.entry)
    assert.equal(a.entry.isolate.isDisposed, true)
    assert.equal((await pool.acquire('a', always, create)).warm, false)
    pool.close()
  })

  test('after close() acquiring fails with SandboxClosedError', async () => {
    const pool = new IsolatePool()
    pool.close()
    await assert.rejects(pool.acquire('a', always, create), { name: 'SandboxClosedError' })
  })
})
