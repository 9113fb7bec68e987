import { describe, test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createWorkflowEngine } from '../../src/sandbox/index.ts'
import type { Resolution } from '../../src/sandbox/index.ts'
import { drive, fixture, options, replay, Store } from './workflow-harness.ts'

const basic = fixture('basic')

describe('workflow replay', () => {
  const engine = createWorkflowEngine()
  after(() => { engine.close() })

  for (const [exportName, args] of [['A', [5]], ['steps', [5]], ['dependent', [4]], ['refs', [3]], ['random', []], ['parent', [2]]] as const) {
    test(`${exportName}: a fresh run fed the same resolutions records the same commands and ends the same way`, async () => {
      const open = options(basic, exportName, [...args])
      const steps = await drive(engine, await engine.openWorkflow(open), basic, { store: new Store() })
      assert.ok(steps.length >= 2)
      const again = await replay(engine, open, steps)
      assert.deepEqual(again.map(s => s.result), steps.map(s => s.result))
    })
  }

  test('a fan-out answered one result per activation ends as when answered at once', async () => {
    // Fan-out answered one result per activation instead of all at once.
    const open = options(basic, 'A', [5])
    const run = await engine.openWorkflow(open)
    const first = await run.activate([])
    const results = [10, 6, 2]
    const done = []
    for (const command of first.commands) done.push(await run.activate([{ seq: command.seq, ok: true, value: results[command.seq] }]))
    assert.deepEqual(done.map(d => d.commands.length), [0, 0, 0])
    assert.deepEqual(done.map(d => d.done?.ok === true && d.done.value), [false, false, 14])
  })

  test('a 2,000-step sequential workflow keeps its context: the cost per activation stays flat', async () => {
    const n = 2_000
    const run = await engine.openWorkflow(options(basic, 'steps', [n]))
    const cpuMs: number[] = []
    let resolutions: Resolution[] = []
    let result = await run.activate([])
    let activations = 1
    for (;;) {
      if (result.done !== undefined) break
      assert.equal(result.commands.length, 1, 'one call per activation')
      const [command] = result.commands
      assert.equal(command.seq, activations - 1)
      resolutions = [{ seq: command.seq, ok: true, value: ((command as { args: unknown[] }).args[0] as number) + 1 }]
      const started = process.cpuUsage()
      result = await run.activate(resolutions)
      const used = process.cpuUsage(started)
      cpuMs.push((used.user + used.system) / 1000)
      activations++
    }
    assert.equal(activations, n + 1)
    assert.equal(result.done.ok && result.done.value, n)
    // Measured, not asserted (wall and CPU time depend on the machine): the mean host CPU time
    // per activation over the first and the last 200 steps. Replaying from the start on every
    // activation would make the last ones about 2,000 times the first.
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
    const head = mean(cpuMs.slice(0, 200))
    const tail = mean(cpuMs.slice(-200))
    console.log(`workflow activations: ${n} steps; host CPU per activation: first 200 ${head.toFixed(3)} ms, last 200 ${tail.toFixed(3)} ms (ratio ${(tail / head).toFixed(2)})`)
  })
})
