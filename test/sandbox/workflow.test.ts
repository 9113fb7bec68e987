import { describe, test, after } from 'node:test'
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { base58btc } from 'multiformats/bases/base58'
import { createWorkflowEngine, inspectWorkflowExports } from '../../src/sandbox/index.ts'
import type { WorkflowCommand } from '../../src/sandbox/index.ts'
import { doneOf, drive, fixture, FNS, options, source, Store } from './workflow-harness.ts'

const basic = fixture('basic')

const call = (seq: number, exportName: string, args: unknown[], ref = false): Partial<WorkflowCommand> =>
  ({ type: 'call', seq, fn: FNS, export: exportName, args, ref })

/** Commands without their bytes, for deepEqual. */
const shape = (commands: WorkflowCommand[]): unknown[] => commands.map(command => {
  if (command.type === 'sleep' || command.type === 'signal') return command
  const { argsBytes, ...rest } = command
  assert.deepEqual(argsBytes, dagCbor.encode(rest.args))
  return rest
})

describe('workflow runs', () => {
  const engine = createWorkflowEngine()
  after(() => { engine.close() })

  test('fan-out with Promise.all records three commands in one activation', async () => {
    const run = await engine.openWorkflow(options(basic, 'A', [5]))
    const first = await run.activate([])
    assert.deepEqual(shape(first.commands), [call(0, 'B', [5]), call(1, 'C', [5]), call(2, 'D', [5])])
    assert.equal(first.done, undefined)
    assert.deepEqual(run.pendingSeqs(), [0, 1, 2])
    const second = await run.activate([{ seq: 2, ok: true, value: 2 }, { seq: 0, ok: true, value: 10 }, { seq: 1, ok: true, value: 6 }])
    assert.deepEqual(second.commands, [])
    assert.deepEqual(second.done, { ok: true, value: 14, bytes: dagCbor.encode(14) })
  })

  test('a function id is checked on every call: a non-canonical spelling after many canonical calls still ends the run', async () => {
    const other = CID.parse(FNS).toV1().toString(base58btc)
    const code = source([
      "import { workflow, remote } from 'rhizome:workflow'",
      `const good = remote('${FNS}', 'B')`,
      `const bad = remote('${other}', 'B')`,
      'export const W = workflow(async () => { await Promise.all(Array.from({ length: 50 }, (_, i) => good(i))); return await bad(0) })'
    ].join('\n'))
    const run = await engine.openWorkflow(options(code, 'W'))
    const first = await run.activate([])
    assert.equal(first.commands.length, 50)
    const second = await run.activate(first.commands.map(c => ({ seq: c.seq, ok: true as const, value: 1 })))
    assert.equal(second.done?.ok === false && second.done.error.name, 'WorkflowDefinitionError')
  })

  test('sequential awaits record one command per activation', async () => {
    const run = await engine.openWorkflow(options(basic, 'steps', [3]))
    const steps = await drive(engine, run, basic)
    assert.deepEqual(steps.map(s => shape(s.result.commands)), [[call(0, 'C', [0])], [call(1, 'C', [1])], [call(2, 'C', [2])], []])
    assert.deepEqual(doneOf(steps), { ok: true, value: 3, bytes: dagCbor.encode(3) })
  })

  test('a dependent call takes the previous result as its argument', async () => {
    const run = await engine.openWorkflow(options(basic, 'dependent', [4]))
    assert.deepEqual(shape((await run.activate([])).commands), [call(0, 'B', [4])])
    assert.deepEqual(shape((await run.activate([{ seq: 0, ok: true, value: 8 }])).commands), [call(1, 'C', [8])])
    const last = await run.activate([{ seq: 1, ok: true, value: 9 }])
    assert.deepEqual(last.done, { ok: true, value: { b: 8, c: 9 }, bytes: dagCbor.encode({ b: 8, c: 9 }) })
  })

  test('a .ref() result passed as an argument is a CID link in the next command', async () => {
    const store = new Store()
    const run = await engine.openWorkflow(options(basic, 'refs', [5]))
    const steps = await drive(engine, run, basic, { store })
    const [refCalls, sumCall] = steps.map(s => s.result.commands)
    assert.deepEqual(refCalls.map(c => c.type === 'call' && c.ref), [true, true])
    const cids = [await store.put(10), await store.put(6)]
    assert.equal(sumCall.length, 1)
    const sum = sumCall[0]
    assert.ok(sum.type === 'call')
    assert.equal(sum.ref, false)
    const links = (sum.args[0] as unknown[]).map(link => CID.asCID(link)?.toString())
    assert.deepEqual(links, cids)
    // In the bytes too: dag-cbor tag 42, so the task id names its inputs by content.
    assert.deepEqual(dagCbor.decode(sum.argsBytes), [[CID.parse(cids[0]), CID.parse(cids[1])]])
    const done = doneOf(steps)
    assert.ok(done.ok)
    const value = done.value as { total: number, first: string, isRef: boolean, ref: unknown }
    assert.equal(value.total, 16)
    assert.equal(value.first, cids[0])
    assert.equal(value.isRef, true)
    // A Ref in the result is a CID link as well.
    assert.equal(CID.asCID(value.ref)?.toString(), cids[1])
  })

  test('a failed call rejects with an Error the workflow may catch', async () => {
    const error = { name: 'FunctionThrewError', code: 'ERR_FUNCTION_THREW', message: 'TypeError: no good', retryable: false }
    const run = await engine.openWorkflow(options(basic, 'catches', [1]))
    const done = doneOf(await drive(engine, run, basic, { fail: { B: error } }))
    assert.deepEqual(done.ok && done.value, { caught: true, ...error, isError: true })
  })

  test('an uncaught rejection ends the run with ok: false and that failure itself (name, code, message)', async () => {
    const error = { name: 'SandboxTimeLimitError', code: 'ERR_SANDBOX_TIME_LIMIT', message: 'too slow', retryable: true }
    const run = await engine.openWorkflow(options(basic, 'uncaught', [1]))
    const done = doneOf(await drive(engine, run, basic, { fail: { B: error } }))
    assert.equal(done.ok, false)
    assert.ok(!done.ok)
    assert.deepEqual(done.error, error)
    assert.equal(engine.stats().runsOpen, 0, 'an ended run frees its slot')
  })

  test('calling a workflow from a workflow records a child command', async () => {
    const run = await engine.openWorkflow(options(basic, 'parent', [4]))
    const first = await run.activate([])
    assert.deepEqual(shape(first.commands), [{ type: 'child', seq: 0, export: 'child', args: [4] }])
    const steps = await drive(engine, await engine.openWorkflow(options(basic, 'parent', [4])), basic)
    assert.deepEqual(doneOf(steps), { ok: true, value: 51, bytes: dagCbor.encode(51) })
    run.close()
  })

  test('a child workflow that is not exported ends the run with WorkflowDefinitionError', async () => {
    const run = await engine.openWorkflow(options(basic, 'callsHidden'))
    const result = await run.activate([])
    assert.deepEqual(result.commands, [])
    assert.equal(result.done?.ok === false && result.done.error.name, 'WorkflowDefinitionError')
  })

  test('a call nobody awaits does not end the run; its failure is not an unhandled error', async () => {
    const error = { name: 'E', code: 'ERR_E', message: 'lost', retryable: false }
    const run = await engine.openWorkflow(options(basic, 'forgets', [1]))
    const done = doneOf(await drive(engine, run, basic, { fail: { B: error } }))
    assert.deepEqual(done.ok && done.value, 2)
  })

  test('an export that is not a workflow is ExportNotFoundError listing the workflows', async () => {
    for (const exportName of ['helper', 'version', 'missing']) {
      const run = await engine.openWorkflow(options(basic, exportName))
      const result = await run.activate([])
      assert.ok(result.done !== undefined && !result.done.ok)
      assert.equal(result.done.error.name, 'ExportNotFoundError')
      assert.match(result.done.error.message, /A, callsHidden, catches, child, dependent, forgets, parent, random, refs, steps, uncaught/)
    }
  })

  test('resolutions are checked: unknown, repeated and malformed ones are refused and the run goes on', async () => {
    const run = await engine.openWorkflow(options(basic, 'A', [5]))
    await assert.rejects(run.activate([{ seq: 0, ok: true, value: 1 }]), { name: 'InvalidInputError', message: /starts the workflow/ })
    await run.activate([])
    await assert.rejects(run.activate([{ seq: 7, ok: true, value: 1 }]), { name: 'InvalidInputError', message: /seq 7/ })
    await assert.rejects(run.activate([{ seq: 0, ok: true, value: 1 }, { seq: 0, ok: true, value: 1 }]), { name: 'InvalidInputError' })
    await assert.rejects(run.activate([{ seq: 0, ok: true }]), { name: 'InvalidInputError', message: /value is missing/ })
    await assert.rejects(run.activate([{ seq: 0, ok: false, error: { name: 'E' } as never }]), { name: 'InvalidInputError' })
    await assert.rejects(run.activate([{ seq: 0, ok: true, value: () => 1 }]), { name: 'UnsupportedValueError' })
    assert.deepEqual(run.pendingSeqs(), [0, 1, 2])
    const result = await run.activate([{ seq: 0, ok: true, value: 1 }, { seq: 1, ok: true, value: 1 }, { seq: 2, ok: true, value: 1 }])
    assert.equal(result.done?.ok && result.done.value, 1)
    await assert.rejects(run.activate([]), { name: 'InvalidInputError', message: /has ended/ })
  })

  test('a .ref() call needs a CID to resolve it', async () => {
    const run = await engine.openWorkflow(options(basic, 'refs', [5]))
    await run.activate([])
    await assert.rejects(run.activate([{ seq: 0, ok: true, value: 10 }]), { name: 'InvalidInputError', message: /CID/ })
    await assert.rejects(run.activate([{ seq: 0, ok: true, ref: 'not a cid' }]), { name: 'InvalidInputError', message: /CID/ })
    run.close()
  })

  test('activations of one run do not overlap; close ends the run', async () => {
    const run = await engine.openWorkflow(options(basic, 'A', [5]))
    const first = run.activate([])
    await assert.rejects(run.activate([]), { name: 'InvalidInputError', message: /still running/ })
    await first
    run.close()
    run.close()
    await assert.rejects(run.activate([]), { name: 'InvalidInputError', message: /closed/ })
  })

  test('a bundle that fails to load reports it in the first activation', async () => {
    const cases: Array<[string, string]> = [
      ['export const A = (', 'FunctionThrewError'],
      ['import fs from "node:fs"; export const A = 1', 'ForbiddenImportError'],
      ['throw new RangeError("at load")', 'FunctionThrewError'],
      ['import { remote } from "rhizome:workflow"; remote("x", "y")(1)', 'FunctionThrewError'],
      ['export const t = Date.now()', 'NondeterminismError']
    ]
    for (const [text, name] of cases) {
      const run = await engine.openWorkflow(options(source(text), 'A'))
      const result = await run.activate([])
      assert.equal(result.done?.ok === false && result.done.error.name, name, text)
    }
    assert.equal(engine.stats().runsOpen, 0)
  })

  test('options are checked before anything runs', async () => {
    await assert.rejects(engine.openWorkflow(options(basic, 'not an identifier')), { name: 'InvalidInputError' })
    await assert.rejects(engine.openWorkflow(options(basic, 'A', [undefined])), { name: 'UnsupportedValueError' })
    await assert.rejects(engine.openWorkflow(options(basic, 'A', [], { seed: new Uint8Array(129) })), { name: 'TooLargeError' })
    await assert.rejects(engine.openWorkflow(options(basic, 'A', [], { limits: { memoryBytesMax: 1, timeMs: 1, outputBytesMax: 1 } })), { name: 'InvalidInputError' })
  })
})

describe('workflow inspection', () => {
  test('lists exports, marking workflows', async () => {
    const exports = await inspectWorkflowExports(basic)
    assert.deepEqual(exports.filter(e => e.type === 'workflow').map(e => e.name), ['A', 'callsHidden', 'catches', 'child', 'dependent', 'forgets', 'parent', 'random', 'refs', 'steps', 'uncaught'])
    assert.deepEqual(exports.filter(e => e.type !== 'workflow'), [{ name: 'helper', type: 'function' }, { name: 'version', type: 'number' }])
  })

  test('a bundle importing anything else is refused', async () => {
    await assert.rejects(inspectWorkflowExports(source('import x from "./fns.js"; export const A = x')), { name: 'ForbiddenImportError' })
    await assert.rejects(inspectWorkflowExports(source('for (;;) {}'), { limits: { memoryBytesMax: 16 * 1024 * 1024, timeMs: 100, outputBytesMax: 1024 } }), { name: 'SandboxTimeLimitError' })
  })
})
