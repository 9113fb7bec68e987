import { describe, test, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  createWorkflowEngine, DEFAULT_WORKFLOW_LIMITS, WORKFLOW_CALL_ARGS_BYTES_MAX, WORKFLOW_COMMANDS_PER_ACTIVATION_MAX
} from '../../src/sandbox/index.ts'
import type { ActivationResult, WorkflowRun } from '../../src/sandbox/index.ts'
import { drive, fixture, options } from './workflow-harness.ts'

const hostile = fixture('hostile')
const limits = fixture('limits')
const MIB = 1024 * 1024

function failed (result: ActivationResult): { name: string, retryable: boolean, message: string } {
  assert.ok(result.done !== undefined && !result.done.ok, `expected the run to fail, got ${JSON.stringify(result.done)}`)
  return result.done.error
}

/** Start the run and answer its first call (B(1) → 2): the second activation is where the fixture misbehaves. */
async function secondActivation (run: WorkflowRun): Promise<ActivationResult> {
  const first = await run.activate([])
  assert.equal(first.done, undefined, JSON.stringify(first.done))
  assert.equal(first.commands.length, 1)
  return await run.activate([{ seq: 0, ok: true, value: 2 }])
}

describe('workflow determinism', () => {
  const engine = createWorkflowEngine()
  after(() => { engine.close() })

  for (const name of ['clock', 'newDate', 'timer']) {
    test(`${name}: reading the clock ends the run with NondeterminismError`, async () => {
      const error = failed(await secondActivation(await engine.openWorkflow(options(hostile, name))))
      assert.equal(error.name, 'NondeterminismError')
      assert.equal(error.retryable, false)
      assert.match(error.message, /workflow/)
    })
  }

  test('catching the refusal does not save the run', async () => {
    const run = await engine.openWorkflow(options(hostile, 'catchesClock'))
    assert.equal(failed(await run.activate([])).name, 'NondeterminismError')
  })

  test('setInterval in the first activation ends the run', async () => {
    const run = await engine.openWorkflow(options(hostile, 'interval'))
    assert.equal(failed(await run.activate([])).name, 'NondeterminismError')
  })

  test('a workflow waiting on a promise nothing settles ends with WorkflowDeadlockError', async () => {
    assert.equal(failed(await secondActivation(await engine.openWorkflow(options(hostile, 'stuck')))).name, 'WorkflowDeadlockError')
  })

  test('nothing of the host is reachable, and the SDK hand-off is gone', async () => {
    const run = await engine.openWorkflow(options(hostile, 'escape'))
    const result = await secondActivation(run)
    assert.ok(result.done?.ok === true, JSON.stringify(result.done))
    assert.deepEqual(result.done.value, { seen: ['undefined', 'undefined', 'undefined', 'undefined', 'undefined', 'undefined'], imported: 'refused', b: 2 })
  })

  test('a workflow that pollutes the intrinsics still gets its calls recorded and its result reported', async () => {
    const run = await engine.openWorkflow(options(hostile, 'tamper', [21]))
    const first = await run.activate([])
    assert.deepEqual(first.commands.map(c => c.type === 'call' || c.type === 'child' ? [c.type, c.seq, c.export, c.args] : [c.type, c.seq]), [['call', 0, 'B', [21]]])
    const second = await run.activate([{ seq: 0, ok: true, value: { n: [42] } }])
    assert.ok(second.done?.ok === true, JSON.stringify(second.done))
    assert.deepEqual(second.done.value, { b: { n: [42] }, list: [{ n: [42] }] })
  })

  test('Math.random is seeded by the seed: the same seed gives the same numbers, another seed others', async () => {
    const basic = fixture('basic')
    const values = async (seed: number[]): Promise<unknown> => {
      const steps = await drive(engine, await engine.openWorkflow(options(basic, 'random', [], { seed: new Uint8Array(seed) })), basic)
      const done = steps[steps.length - 1].result.done
      assert.ok(done?.ok === true)
      return done.value
    }
    const a = await values([1, 2, 3])
    assert.deepEqual(await values([1, 2, 3]), a)
    assert.notDeepEqual(await values([1, 2, 4]), a)
  })
})

describe('workflow limits', () => {
  const engine = createWorkflowEngine()
  after(() => { engine.close() })
  const tight = { memoryBytesMax: 16 * MIB, timeMs: 200, outputBytesMax: 1024 }

  test('an activation that spins ends the run with SandboxTimeLimitError (CPU time)', async () => {
    for (const name of ['spin', 'microtaskSpin']) {
      const run = await engine.openWorkflow(options(hostile, name, [], { limits: tight }))
      const error = failed(await secondActivation(run))
      assert.equal(error.name, 'SandboxTimeLimitError', name)
      assert.match(error.message, /CPU time/)
      await assert.rejects(run.activate([]), { name: 'InvalidInputError' })
    }
    assert.equal(engine.stats().runsOpen, 0)
  })

  test('a module that spins while it loads reports SandboxTimeLimitError in the first activation', async () => {
    const run = await engine.openWorkflow(options(new TextEncoder().encode('for (;;) {}'), 'A', [], { limits: tight }))
    assert.equal(failed(await run.activate([])).name, 'SandboxTimeLimitError')
  })

  test(`a run's own arguments of ${WORKFLOW_CALL_ARGS_BYTES_MAX} bytes are taken; one more is TooLargeError`, async () => {
    const engine = createWorkflowEngine()
    const n = WORKFLOW_CALL_ARGS_BYTES_MAX - 6
    const run = await engine.openWorkflow(options(limits, 'fanOut', [new Uint8Array(n)]))
    run.close()
    await assert.rejects(engine.openWorkflow(options(limits, 'fanOut', [new Uint8Array(n + 1)])), { name: 'TooLargeError' })
    engine.close()
  })

  test('a workflow that fills its heap ends with SandboxMemoryLimitError', async () => {
    const run = await engine.openWorkflow(options(hostile, 'hog', [], { limits: { ...tight, timeMs: 5_000 } }))
    assert.equal(failed(await secondActivation(run)).name, 'SandboxMemoryLimitError')
  })

  test(`${WORKFLOW_COMMANDS_PER_ACTIVATION_MAX} calls in one activation pass; one more ends the run with WorkflowCommandsLimitError`, async () => {
    const at = await (await engine.openWorkflow(options(limits, 'fanOut', [WORKFLOW_COMMANDS_PER_ACTIVATION_MAX]))).activate([])
    assert.equal(at.done, undefined)
    assert.equal(at.commands.length, WORKFLOW_COMMANDS_PER_ACTIVATION_MAX)
    const past = await (await engine.openWorkflow(options(limits, 'fanOut', [WORKFLOW_COMMANDS_PER_ACTIVATION_MAX + 1]))).activate([])
    assert.equal(failed(past).name, 'WorkflowCommandsLimitError')
    engine.close()
  })

  test(`call arguments of ${WORKFLOW_CALL_ARGS_BYTES_MAX} bytes pass; one more ends the run with WorkflowArgsLimitError`, async () => {
    const engine = createWorkflowEngine()
    // dag-cbor of [bytes(n)]: 1 byte of array header, 5 of byte-string header, n bytes.
    const n = WORKFLOW_CALL_ARGS_BYTES_MAX - 6
    const at = await (await engine.openWorkflow(options(limits, 'bigArgs', [n]))).activate([])
    assert.equal(at.done, undefined, JSON.stringify(at.done))
    assert.equal((at.commands[0] as { argsBytes: Uint8Array }).argsBytes.length, WORKFLOW_CALL_ARGS_BYTES_MAX)
    const past = await (await engine.openWorkflow(options(limits, 'bigArgs', [n + 1]))).activate([])
    const error = failed(past)
    assert.equal(error.name, 'WorkflowArgsLimitError')
    assert.equal(error.retryable, false)
    engine.close()
  })

  test('a result of outputBytesMax passes; one byte more ends the run with SandboxOutputLimitError', async () => {
    const engine = createWorkflowEngine()
    // dag-cbor of bytes(n), 24 ≤ n < 256: 2 bytes of header.
    const small = { ...DEFAULT_WORKFLOW_LIMITS, outputBytesMax: 200 }
    const at = await (await engine.openWorkflow(options(limits, 'bigResult', [198], { limits: small }))).activate([])
    assert.equal(at.done?.ok === true && at.done.bytes.length, 200)
    const past = await (await engine.openWorkflow(options(limits, 'bigResult', [199], { limits: small }))).activate([])
    assert.equal(failed(past).name, 'SandboxOutputLimitError')
    engine.close()
  })

  test('arguments that are not data, or a function id that is not a CID, end the run with a named error', async () => {
    const engine = createWorkflowEngine()
    assert.equal(failed(await (await engine.openWorkflow(options(limits, 'notData'))).activate([])).name, 'UnsupportedValueError')
    assert.equal(failed(await (await engine.openWorkflow(options(limits, 'badFunction'))).activate([])).name, 'WorkflowDefinitionError')
    engine.close()
  })

  test('runsOpenMax runs may be open; one more is WorkflowRunsBusyError until one closes', async () => {
    const engine = createWorkflowEngine({ runsOpenMax: 2 })
    const a = await engine.openWorkflow(options(limits, 'fanOut', [1]))
    await engine.openWorkflow(options(limits, 'fanOut', [1]))
    await assert.rejects(engine.openWorkflow(options(limits, 'fanOut', [1])), (err: Error & { retryable?: boolean }) => {
      assert.equal(err.name, 'WorkflowRunsBusyError')
      assert.equal(err.retryable, true)
      return true
    })
    a.close()
    const c = await engine.openWorkflow(options(limits, 'fanOut', [1]))
    assert.equal(engine.stats().runsOpen, 2)
    c.close()
    engine.close()
    assert.equal(engine.stats().runsOpen, 0)
    await assert.rejects(engine.openWorkflow(options(limits, 'fanOut', [1])), { name: 'SandboxClosedError' })
  })

  test('closing the engine stops an activation in flight with SandboxClosedError', async () => {
    const engine = createWorkflowEngine()
    const run = await engine.openWorkflow(options(hostile, 'spin', [], { limits: { ...tight, timeMs: 60_000 } }))
    await run.activate([])
    const spinning = run.activate([{ seq: 0, ok: true, value: 2 }])
    setTimeout(() => { engine.close() }, 50)
    await assert.rejects(spinning, { name: 'SandboxClosedError' })
    // The isolate's own thread winds down after the dispose that ended the activation; a process
    // that exits within that window (this file's last test) can trip an assertion inside
    // isolated-vm's native teardown (seen once on a loaded 2-core machine). Let it finish.
    await new Promise(resolve => setTimeout(resolve, 250))
  })

  test('runsOpenMax is checked', () => {
    assert.throws(() => createWorkflowEngine({ runsOpenMax: 0 }), { name: 'ConfigError' })
    assert.throws(() => createWorkflowEngine({ runsOpenMax: 1025 }), { name: 'ConfigError' })
  })
})
