// The SDK's sleep and signal outside a run: sleep is a plain timer, signal a clear error.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { continueAsNew, isWorkflow, signal, sleep, workflow } from '../../src/sdk/index.ts'
import { DURATION_MS_LIMIT, SIGNAL_NAME_CHARS_MAX } from '../../src/model/limits.ts'

describe('SDK sleep and signal outside a run', () => {
  test('sleep resolves with undefined; ms outside 0..DURATION_MS_LIMIT or not whole is a TypeError', async () => {
    const nap = workflow(async () => await sleep(0))
    assert.equal(await nap(), undefined)
    for (const ms of [-1, 1.5, DURATION_MS_LIMIT + 1, Number.NaN]) await assert.rejects(sleep(ms), { name: 'TypeError' }, String(ms))
  })

  test('signal rejects with ERR_NOT_IN_RUN and a hint; a bad name (one past the length limit) is a TypeError first', async () => {
    await assert.rejects(signal('approve'), (err: Error & { code?: string, hint?: string }) => err.code === 'ERR_NOT_IN_RUN' && /rhizome signal/.test(err.hint ?? ''))
    await assert.rejects(signal('n'.repeat(SIGNAL_NAME_CHARS_MAX)), { code: 'ERR_NOT_IN_RUN' })
    await assert.rejects(signal('n'.repeat(SIGNAL_NAME_CHARS_MAX + 1)), { name: 'TypeError' })
  })

  test('in-process, a workflow that returns continueAsNew(...) is called again with those arguments', async () => {
    let calls = 0
    const countdown = workflow(async (n: number, sum: number): Promise<number> => {
      calls++
      if (n > 0) return continueAsNew(n - 1, sum + n)
      return sum
    })
    assert.ok(isWorkflow(countdown))
    assert.equal(await countdown(4, 0), 10)
    assert.equal(calls, 5)
  })
})
