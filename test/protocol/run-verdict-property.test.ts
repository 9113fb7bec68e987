// Property: for a random dependency graph of calls whose workers sometimes lie (a wrong result,
// accepted under a check that later disproves it), every interleaving of activations, outcomes,
// verdicts, evictions and restarts (from the memo with its `fix:` entries) ends finished with the
// value a direct evaluation gives, never while a check is open, and schedules each task id at most
// once per driver life and never after it was accepted. The "workflow code" is a deterministic
// script standing in for the sandbox. fast-check prints the seed and path that replay a failure.
import '../helpers/property.ts'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { createRunDriver, fixEntryId } from '../../src/protocol/run/index.ts'
import type { ActivationResult, CallCommand, MemoEntry, Resolution, ResultRef, RunDriver, RunOutput, TaskSpec } from '../../src/protocol/run/index.ts'

type Fn = 'inc' | 'dbl'
interface GraphNode { fn: Fn, c: number, deps: number[] }

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** The honest worker: a pure function; values stay in 0..6 so equal calls (equal ids) are common. */
function work (fn: Fn, args: number[]): number {
  const sum = args.reduce((a, b) => a + b, 0)
  return fn === 'inc' ? (sum + 1) % 7 : (sum * 2) % 7
}

function evaluate (graph: GraphNode[]): number[] {
  const values: number[] = []
  for (const node of graph) values.push(work(node.fn, [node.c, ...node.deps.map(d => values[d])]))
  return values
}

function refOf (value: number, peer: string): ResultRef {
  return { cid: `v:${value}`, peer, bytes: encoder.encode(String(value)) }
}

function valueOf (result: ResultRef): number {
  return Number(result.bytes === undefined ? result.cid.slice(2) : decoder.decode(result.bytes))
}

/** The workflow code: issues, in node order, every node whose inputs have resolved; returns all values. */
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
      assert.ok(node !== undefined && r.ok, `a result for seq ${r.seq} this code issued`)
      this.values.set(node, valueOf(r.result))
    }
    if (this.values.size === this.graph.length) {
      return { commands: [], done: { ok: true, value: encoder.encode(JSON.stringify(this.graph.map((_, i) => this.values.get(i)))) } }
    }
    const commands: CallCommand[] = []
    this.graph.forEach((node, i) => {
      if (this.issued.has(i) || !node.deps.every(d => this.values.has(d))) return
      const args = [node.c, ...node.deps.map(d => this.values.get(d) as number)]
      const seq = this.nextSeq++
      this.issued.add(i)
      this.seqNode.set(seq, i)
      commands.push({ type: 'call', seq, taskId: `${node.fn}(${args.join(',')})`, fn: node.fn, export: 'default', args: encoder.encode(JSON.stringify(args)), ref: false })
    })
    return { commands }
  }
}

interface Trial { graph: GraphNode[], choices: number[], restartsMax: number }

const graphArb = fc.array(fc.record({
  fn: fc.constantFrom<Fn>('inc', 'dbl'),
  c: fc.nat(3),
  deps: fc.array(fc.nat(), { maxLength: 3 })
}), { minLength: 1, maxLength: 10 }).map(nodes => nodes.map((node, i) => ({
  ...node,
  deps: i === 0 ? [] : [...new Set(node.deps.map(d => d % i))].sort((a, b) => a - b)
})))

type Action =
  | { kind: 'activation' }
  | { kind: 'outcome', taskId: string, how: 'honest' | 'checked' | 'lie' }
  | { kind: 'verdict', taskId: string }
  | { kind: 'evict' }
  | { kind: 'restart' }

function runTrial ({ graph, choices, restartsMax }: Trial): void {
  const expected = evaluate(graph)
  /** The shell's memo: accepted results (right or wrong) and `fix:` entries, as persisted. */
  const shellMemo: MemoEntry[] = []
  const accepted = new Set<string>()
  /** Open checks, as the verifier sees them: task id → the right result. */
  const checks = new Map<string, { right: ResultRef, lied: boolean }>()
  let now = 0
  let restarts = 0
  let driver: RunDriver = createRunDriver({ runId: 'bafyRun' })
  let script: Script | undefined
  let scheduledThisLife = new Set<string>()
  const inFlight = new Map<string, TaskSpec>()
  let pending: Resolution[] | undefined
  let pendingReplay = false
  let finished: RunOutput | undefined

  const drain = (): void => {
    for (let o = driver.poll(); o !== undefined; o = driver.poll()) {
      if (o.type === 'activate') {
        assert.equal(pending, undefined, 'at most one activation outstanding')
        pending = o.resolutions
        pendingReplay = o.replay
      } else if (o.type === 'schedule') {
        const id = o.task.taskId
        assert.ok(!scheduledThisLife.has(id), `task ${id} scheduled once per driver life`)
        assert.ok(!accepted.has(id), `task ${id} was accepted before: never scheduled again`)
        scheduledThisLife.add(id)
        inFlight.set(id, o.task)
      } else if (o.type === 'cancel') {
        inFlight.delete(o.taskId)
      } else if (o.type === 'finished') {
        assert.equal(finished, undefined, 'finished once')
        assert.equal(checks.size, 0, 'the run never ends while a check is open')
        finished = o
      }
    }
  }

  const startLife = (): void => {
    driver = createRunDriver({ runId: 'bafyRun', memo: shellMemo, startedMs: 0 })
    // The verifier's checks outlive the driver: the shell tells the new one.
    for (const taskId of checks.keys()) assert.equal(driver.handleVerdict(taskId, { type: 'open' }, now), 'accepted')
    scheduledThisLife = new Set()
    inFlight.clear()
    pending = undefined
    script = undefined
    driver.handleStart(now)
    drain()
  }

  const outcome = (taskId: string, how: 'honest' | 'checked' | 'lie'): void => {
    const task = inFlight.get(taskId) as TaskSpec
    inFlight.delete(taskId)
    const right = refOf(work(task.fn as Fn, JSON.parse(decoder.decode(task.args)) as number[]), `peer${now % 3}`)
    const given = how === 'lie' ? refOf((valueOf(right) + 1) % 7, 'liar') : right
    accepted.add(taskId)
    shellMemo.push({ id: taskId, result: given })
    assert.equal(driver.handleTaskOutcome(taskId, { ok: true, result: given }, now), 'accepted')
    if (how === 'honest') return
    checks.set(taskId, { right, lied: how === 'lie' })
    assert.equal(driver.handleVerdict(taskId, { type: 'open' }, now), 'accepted')
  }

  const verdict = (taskId: string): void => {
    const check = checks.get(taskId)!
    checks.delete(taskId)
    if (!check.lied) {
      assert.equal(driver.handleVerdict(taskId, { type: 'confirmed' }, now), 'accepted')
      return
    }
    shellMemo.push({ id: fixEntryId(taskId), result: check.right })
    assert.equal(driver.handleVerdict(taskId, { type: 'disproven', result: check.right }, now), 'accepted')
  }

  startLife()
  for (let step = 0; finished === undefined; step++) {
    assert.ok(step < 10_000, 'the run ends within 10,000 steps')
    now += 1
    const options: Action[] = []
    if (pending !== undefined) options.push({ kind: 'activation' })
    for (const taskId of inFlight.keys()) {
      for (const how of ['honest', 'checked', 'lie'] as const) options.push({ kind: 'outcome', taskId, how })
    }
    for (const taskId of checks.keys()) options.push({ kind: 'verdict', taskId })
    if (pending === undefined) options.push({ kind: 'evict' })
    if (restarts < restartsMax) options.push({ kind: 'restart' })
    // Past the scripted choices, always make progress (the first option).
    const action = options[step < choices.length ? choices[step] % options.length : 0]
    assert.ok(action !== undefined, 'there is always something to do while the run is going')

    if (action.kind === 'activation') {
      const resolutions = pending as Resolution[]
      pending = undefined
      if (script === undefined || pendingReplay) script = new Script(graph)
      driver.handleActivation(script.activate(resolutions), now)
    } else if (action.kind === 'outcome') {
      outcome(action.taskId, action.how)
    } else if (action.kind === 'verdict') {
      verdict(action.taskId)
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
}

describe('run driver verdicts: property', () => {
  it('random graphs × lying workers × random interleavings, evictions and restarts: the true value, never with a check open', () => {
    fc.assert(fc.property(fc.record({
      graph: graphArb,
      choices: fc.array(fc.nat(), { maxLength: 300 }),
      restartsMax: fc.nat(2)
    }), trial => { runTrial(trial) }), { numRuns: 300 })
  })
})
