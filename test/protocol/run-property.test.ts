// Property: for a random dependency graph of calls, every interleaving of activations, task
// outcomes, evictions and restarts (from the memo) ends finished, with each distinct task scheduled
// once per driver life, nothing accepted ever scheduled again, and the value a direct evaluation
// gives. The "workflow code" is a deterministic script standing in for the sandbox; the "workers"
// are a pure function of (fn, args). fast-check prints the seed and path that replay a failure.
import '../helpers/property.ts'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { createRunDriver } from '../../src/protocol/run/index.ts'
import type { ActivationResult, CallCommand, Outcome, Resolution, ResultRef, RunDriver, RunOutput, TaskSpec } from '../../src/protocol/run/index.ts'

type Fn = 'inc' | 'dbl' | 'boom'
interface GraphNode { fn: Fn, c: number, deps: number[] }

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** The worker: a pure function. Values stay in −6..6 so equal calls (equal task ids) are common. */
function work (fn: Fn, args: number[]): { ok: true, value: number } | { ok: false } {
  const sum = args.reduce((a, b) => a + b, 0)
  if (fn === 'inc') return { ok: true, value: mod7(sum + 1) }
  if (fn === 'dbl') return { ok: true, value: mod7(sum * 2) }
  return sum % 3 === 0 ? { ok: false } : { ok: true, value: mod7(sum) }
}

/** `x % 7` without −0 (a negative multiple of 7 gives −0, which JSON — the values' encoding here — writes as 0). */
function mod7 (x: number): number {
  return (x % 7) + 0
}

function argsOf (node: GraphNode, values: number[]): number[] {
  return [node.c, ...node.deps.map(d => values[d])]
}

/** What the workflow should return, evaluated directly: a failed call counts as -1 (the code catches it). */
function evaluate (graph: GraphNode[]): number[] {
  const values: number[] = []
  for (const node of graph) {
    const r = work(node.fn, argsOf(node, values))
    values.push(r.ok ? r.value : -1)
  }
  return values
}

/** Task ids are content ids in Rhizome; here, the call's text does the same job. */
function taskIdOf (fn: Fn, args: number[]): string {
  return `${fn}(${args.join(',')})`
}

/** The blob store: a result's CID names its value, so a memo entry without bytes can be read back. */
function valueOf (result: ResultRef): number {
  const text = result.bytes === undefined ? result.cid.slice(2) : decoder.decode(result.bytes)
  return Number(text)
}

/**
 * The workflow code: `await` each node's call once all its inputs are known, catch failures as -1,
 * return every node's value. Deterministic in what it is told: issues, in node order, every node
 * whose dependencies have resolved; numbers its calls from 0.
 */
class Script {
  private readonly values = new Map<number, number>()
  private readonly issued = new Set<number>()
  private readonly seqNode = new Map<number, number>()
  private nextSeq = 0
  private readonly graph: GraphNode[]
  constructor (graph: GraphNode[]) {
    this.graph = graph
  }

  activate (resolutions: Resolution[]): ActivationResult {
    for (const r of resolutions) {
      const node = this.seqNode.get(r.seq)
      assert.ok(node !== undefined, `a resolution for seq ${r.seq} this code issued`)
      assert.ok(!this.values.has(node), 'each call is resolved once')
      this.values.set(node, r.ok ? valueOf(r.result) : -1)
    }
    if (this.values.size === this.graph.length) {
      const all = this.graph.map((_, i) => this.values.get(i) as number)
      return { commands: [], done: { ok: true, value: encoder.encode(JSON.stringify(all)) } }
    }
    const commands: CallCommand[] = []
    this.graph.forEach((node, i) => {
      if (this.issued.has(i) || !node.deps.every(d => this.values.has(d))) return
      const args = [node.c, ...node.deps.map(d => this.values.get(d) as number)]
      const seq = this.nextSeq++
      this.issued.add(i)
      this.seqNode.set(seq, i)
      commands.push({ type: 'call', seq, taskId: taskIdOf(node.fn, args), fn: node.fn, export: 'default', args: encoder.encode(JSON.stringify(args)), ref: false })
    })
    return { commands }
  }
}

interface Trial { graph: GraphNode[], choices: number[], memoInlineBytesMax: number, restartsMax: number }

const graphArb = fc.array(fc.record({
  fn: fc.constantFrom<Fn>('inc', 'dbl', 'boom'),
  c: fc.nat(3),
  deps: fc.array(fc.nat(), { maxLength: 3 })
}), { minLength: 1, maxLength: 12 }).map(nodes => nodes.map((node, i) => ({
  ...node,
  deps: i === 0 ? [] : [...new Set(node.deps.map(d => d % i))].sort((a, b) => a - b)
})))

const trialArb: fc.Arbitrary<Trial> = fc.record({
  graph: graphArb,
  choices: fc.array(fc.nat(), { maxLength: 300 }),
  memoInlineBytesMax: fc.constantFrom(1, 1 << 20),
  restartsMax: fc.nat(2)
})

function runTrial ({ graph, choices, memoInlineBytesMax, restartsMax }: Trial): void {
  const expected = evaluate(graph)
  const accepted = new Set<string>()
  let now = 0
  let restarts = 0
  let memoAtStart = new Set<string>()
  let driver: RunDriver = createRunDriver({ runId: 'bafyRun' })
  let script: Script | undefined
  let scheduledThisLife = new Set<string>()
  const inFlight = new Map<string, TaskSpec>()
  let pending: { replay: boolean, resolutions: Resolution[] } | undefined
  let finished: RunOutput | undefined

  const drain = (): void => {
    for (let o = driver.poll(); o !== undefined; o = driver.poll()) {
      if (o.type === 'activate') {
        assert.equal(pending, undefined, 'at most one activation outstanding')
        pending = { replay: o.replay, resolutions: o.resolutions }
      } else if (o.type === 'schedule') {
        const id = o.task.taskId
        assert.ok(!scheduledThisLife.has(id), `task ${id} scheduled once per driver life`)
        assert.ok(!accepted.has(id), `task ${id} was accepted before: never scheduled again`)
        assert.ok(!memoAtStart.has(id), `task ${id} is in the memo the driver started from`)
        scheduledThisLife.add(id)
        inFlight.set(id, o.task)
      } else if (o.type === 'cancel') {
        assert.fail(`nothing is left to cancel when the code returns after awaiting everything (${o.taskId})`)
      } else if (o.type === 'finished') {
        assert.equal(finished, undefined, 'finished once')
        finished = o
      }
    }
  }

  const startLife = (): void => {
    const memo = restarts === 0 ? [] : driver.memo()
    memoAtStart = new Set(memo.map(e => e.id))
    driver = createRunDriver({ runId: 'bafyRun', memo, memoInlineBytesMax, startedMs: 0 })
    scheduledThisLife = new Set()
    inFlight.clear()
    pending = undefined
    script = undefined
    driver.handleStart(now)
    drain()
  }
  startLife()

  for (let step = 0; finished === undefined; step++) {
    assert.ok(step < 10_000, 'the run ends within 10,000 steps')
    now += 1
    type Action = { kind: 'activation' } | { kind: 'outcome', taskId: string } | { kind: 'evict' } | { kind: 'restart' }
    const options: Action[] = []
    if (pending !== undefined) options.push({ kind: 'activation' })
    for (const taskId of inFlight.keys()) options.push({ kind: 'outcome', taskId })
    if (pending === undefined) options.push({ kind: 'evict' })
    if (restarts < restartsMax) options.push({ kind: 'restart' })
    // Past the scripted choices, always make progress (the first option).
    const action = options[step < choices.length ? choices[step] % options.length : 0]
    assert.ok(action !== undefined, 'there is always something to do while the run is going')

    if (action.kind === 'activation') {
      const { replay, resolutions } = pending as { replay: boolean, resolutions: Resolution[] }
      pending = undefined
      if (script === undefined || replay) script = new Script(graph)
      driver.handleActivation(script.activate(resolutions), now)
    } else if (action.kind === 'outcome') {
      const task = inFlight.get(action.taskId) as TaskSpec
      inFlight.delete(action.taskId)
      const r = work(task.fn as Fn, JSON.parse(decoder.decode(task.args)) as number[])
      const outcome: Outcome = r.ok
        ? { ok: true, result: { cid: `v:${r.value}`, peer: `peer${now % 3}`, bytes: encoder.encode(String(r.value)) } }
        : { ok: false, error: { name: 'FunctionThrewError', code: 'ERR_FUNCTION_THREW', message: 'boom', retryable: false } }
      if (r.ok) accepted.add(action.taskId)
      assert.equal(driver.handleTaskOutcome(action.taskId, outcome, now), 'accepted')
    } else if (action.kind === 'evict') {
      driver.handleEvict(now)
      script = undefined
    } else {
      restarts += 1
      startLife()
      continue
    }
    drain()
  }

  assert.equal(driver.status(), 'finished')
  assert.ok(finished?.type === 'finished' && finished.outcome.ok, 'the run finished with a value')
  assert.deepEqual(JSON.parse(decoder.decode(finished.outcome.value)), expected)
  assert.equal(inFlight.size, 0)
  // Every distinct task of the graph was scheduled in some life; in the last, only those not yet accepted.
  for (const id of scheduledThisLife) assert.ok(!memoAtStart.has(id))
}

describe('run driver: property', () => {
  it('random graphs × random interleavings, evictions and restarts: finished, each task once, the direct value', () => {
    fc.assert(fc.property(trialArb, trial => { runTrial(trial) }), { numRuns: 400 })
  })

  it('a diamond with repeated calls, interleaved every way the choices allow', () => {
    const diamond: GraphNode[] = [
      { fn: 'inc', c: 1, deps: [] },
      { fn: 'dbl', c: 0, deps: [0] },
      { fn: 'dbl', c: 0, deps: [0] }, // the same call as node 1: one task
      { fn: 'boom', c: 0, deps: [1, 2] },
      { fn: 'inc', c: 2, deps: [3] }
    ]
    fc.assert(fc.property(fc.array(fc.nat(), { maxLength: 40 }), fc.nat(2), (choices, restartsMax) => {
      runTrial({ graph: diamond, choices, memoInlineBytesMax: 1 << 20, restartsMax })
    }), { numRuns: 200 })
  })
})
