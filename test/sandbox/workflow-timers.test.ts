// sleep() and signal() in the workflow sandbox: they record commands like remote calls, a
// sleep's resolution resolves it with undefined, a signal's value arrives as a call's value, and
// a replay fed the same resolutions records the same commands.
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { createWorkflowEngine } from '../../src/sandbox/index.ts'
import { DURATION_MS_LIMIT, SIGNAL_NAME_CHARS_MAX } from '../../src/model/limits.ts'
import { doneOf, drive, fixture, options, replay } from './workflow-harness.ts'

const timers = fixture('timers')

describe('workflow timers and signals', () => {
  const engine = createWorkflowEngine()
  after(() => { engine.close() })

  test('sleep records a sleep command between two calls and resolves with undefined', async () => {
    const run = await engine.openWorkflow(options(timers, 'napping', [5, 1500]))
    const first = await run.activate([])
    assert.deepEqual(first.commands.map(c => c.type), ['call'])
    const second = await run.activate([{ seq: 0, ok: true, value: 10 }])
    assert.deepEqual(second.commands, [{ type: 'sleep', seq: 1, ms: 1500 }])
    assert.deepEqual(run.pendingSeqs(), [1])
    const third = await run.activate([{ seq: 1, ok: true, value: null }])
    assert.deepEqual(third.commands.map(c => c.type === 'call' ? [c.type, c.export, c.args] : [c.type]), [['call', 'C', [10]]])
    const last = await run.activate([{ seq: 2, ok: true, value: 11 }])
    assert.deepEqual(last.done, { ok: true, value: { b: 10, c: 11, slept: true }, bytes: dagCbor.encode({ b: 10, c: 11, slept: true }) })
  })

  test('a signal wait records its name; the value delivered is what the code gets; replay agrees', async () => {
    const run = await engine.openWorkflow(options(timers, 'approval', [4]))
    const steps = await drive(engine, run, timers, { signals: { approve: { ok: true, by: 'ann' } } })
    assert.deepEqual(steps[0].result.commands, [{ type: 'signal', seq: 0, name: 'approve' }])
    assert.deepEqual(doneOf(steps).ok && doneOf(steps), { ok: true, value: { decision: { ok: true, by: 'ann' }, b: 8 }, bytes: dagCbor.encode({ decision: { ok: true, by: 'ann' }, b: 8 }) })
    const again = await replay(engine, options(timers, 'approval', [4]), steps)
    assert.deepEqual(again.map(s => s.result), steps.map(s => s.result))
  })

  test('two waits for one name and one for another are three commands; each seq gets its own value', async () => {
    const run = await engine.openWorkflow(options(timers, 'manySignals'))
    const first = await run.activate([])
    assert.deepEqual(first.commands, [{ type: 'signal', seq: 0, name: 'x' }, { type: 'signal', seq: 1, name: 'x' }, { type: 'signal', seq: 2, name: 'y' }])
    const last = await run.activate([{ seq: 2, ok: true, value: 'y0' }, { seq: 0, ok: true, value: 'x0' }, { seq: 1, ok: true, value: 'x1' }])
    assert.ok(last.done?.ok === true)
    assert.deepEqual(last.done.value, ['x0', 'x1', 'y0'])
  })

  test('sleep takes whole ms from 0 to DURATION_MS_LIMIT: the limit records, one past throws a TypeError the code may catch', async () => {
    const at = await (await engine.openWorkflow(options(timers, 'badSleep', [DURATION_MS_LIMIT]))).activate([])
    assert.deepEqual(at.commands, [{ type: 'sleep', seq: 0, ms: DURATION_MS_LIMIT }])
    for (const ms of [DURATION_MS_LIMIT + 1, -1, 1.5, '5']) {
      const past = await (await engine.openWorkflow(options(timers, 'badSleep', [ms]))).activate([])
      assert.deepEqual(past.commands, [])
      assert.ok(past.done?.ok === true, JSON.stringify(past.done))
      assert.equal((past.done.value as { name: string }).name, 'TypeError')
      assert.match((past.done.value as { message: string }).message, /whole number of milliseconds/)
    }
  })

  test('signal names: 64 characters record; 65, a colon or a space end the run with a named failure', async () => {
    const name = 's'.repeat(SIGNAL_NAME_CHARS_MAX)
    const at = await (await engine.openWorkflow(options(timers, 'badSignal', [name]))).activate([])
    assert.deepEqual(at.commands, [{ type: 'signal', seq: 0, name }])
    const past = await (await engine.openWorkflow(options(timers, 'badSignal', [name + 's']))).activate([])
    assert.ok(past.done?.ok === false)
    assert.equal(past.done.error.code, 'ERR_FUNCTION_THREW')
    assert.match(past.done.error.message, /^TypeError: signal\(name\) takes a name of 1 to 64 characters/)
    for (const bad of ['a:b', 'a b']) {
      const run = await (await engine.openWorkflow(options(timers, 'badSignal', [bad]))).activate([])
      assert.ok(run.done?.ok === false, bad)
      assert.equal(run.done.error.code, 'ERR_WORKFLOW_DEFINITION')
      assert.match(run.done.error.message, /letters, digits/)
    }
  })

  test('returning continueAsNew(...args) ends the run ok with the next run\'s arguments; a marker not returned is a plain value', async () => {
    const run = await engine.openWorkflow(options(timers, 'countdown', [2, 0]))
    assert.equal((await run.activate([])).done, undefined)
    const last = await run.activate([{ seq: 0, ok: true, value: 4 }])
    assert.deepEqual(last.done, { ok: true, value: null, bytes: dagCbor.encode(null), continueAsNew: { args: [1, 4], argsBytes: dagCbor.encode([1, 4]) } })
    const end = await engine.openWorkflow(options(timers, 'countdown', [0, 6]))
    await end.activate([])
    assert.deepEqual((await end.activate([{ seq: 0, ok: true, value: 0 }])).done, { ok: true, value: 6, bytes: dagCbor.encode(6) })
    const kept = await (await engine.openWorkflow(options(timers, 'keepsMarker'))).activate([])
    assert.ok(kept.done?.ok === true && kept.done.continueAsNew === undefined)
    assert.deepEqual(kept.done.value, { frozen: true })
  })
})
