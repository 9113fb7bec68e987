// Property: a workflow that awaits a random sequence of sleeps and signal waits, driven through
// every interleaving of activations, stored records, clock steps, signals, evictions and
// restarts from the memo (losing whatever was not stored yet), finishes with the signal values
// in the order they were sent, each timer's deadline and firing recorded once across all lives,
// and no sleep resolved before its deadline. The "code" is a deterministic script; the "shell"
// stores a record when the choices say so.
import '../helpers/property.ts'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import * as dagCbor from '@ipld/dag-cbor'
import { createRunDriver, decodeUint, parseRecordId } from '../../src/protocol/run/index.ts'
import type { ActivationResult, Command, MemoEntry, Resolution, RunDriver, RunOutput } from '../../src/protocol/run/index.ts'

type Step = { kind: 'sleep', ms: number } | { kind: 'signal', name: 'a' | 'b' }

/** The workflow code: awaits the steps one at a time; returns the values its signal waits got. */
class Code {
  private pos = 0
  private seq = 0
  private waiting: number | undefined
  private readonly values: unknown[] = []
  /** `onSlept(k, nowMs)`: the code's k-th sleep resolved at nowMs. */
  private readonly steps: Step[]
  private readonly onSlept: (k: number, nowMs: number) => void
  constructor (steps: Step[], onSlept: (k: number, nowMs: number) => void) {
    this.steps = steps
    this.onSlept = onSlept
  }

  activate (resolutions: Resolution[], nowMs: number): ActivationResult {
    for (const r of resolutions) {
      assert.equal(r.seq, this.waiting, 'only the awaited step resolves')
      assert.ok(r.ok && r.result.bytes !== undefined)
      const step = this.steps[this.pos]
      if (step.kind === 'signal') this.values.push(dagCbor.decode(r.result.bytes))
      else this.onSlept(this.steps.slice(0, this.pos).filter(s => s.kind === 'sleep').length, nowMs)
      this.pos++
      this.waiting = undefined
    }
    if (this.pos === this.steps.length) return { commands: [], done: { ok: true, value: dagCbor.encode(this.values) } }
    const step = this.steps[this.pos]
    const seq = this.seq++
    this.waiting = seq
    const command: Command = step.kind === 'sleep' ? { type: 'sleep', seq, ms: step.ms } : { type: 'signal', seq, name: step.name }
    return { commands: [command] }
  }
}

interface World {
  steps: Step[]
  now: number
  memo: MemoEntry[]
  driver: RunDriver
  code: Code
  activation: { resolutions: Resolution[] } | undefined
  records: Array<{ id: string, value: Uint8Array }>
  /** Signals sent and stored, per name; the values sent are 0, 1, 2, … per name. */
  stored: Record<string, number>
  /** Signals handed to the driver but not stored yet. */
  unstored: Array<{ name: string, id?: string }>
  finished?: RunOutput & { type: 'finished' }
  /** Every record output ever emitted, by id: each must be emitted once over all lives, but for records lost to a restart. */
  emitted: Map<string, number>
  /** Every sleep the code saw resolve, in every life and replay. */
  slept: Array<{ k: number, nowMs: number }>
  restarts: number
}

function drain (w: World): void {
  for (let o = w.driver.poll(); o !== undefined; o = w.driver.poll()) {
    if (o.type === 'activate') {
      if (o.replay) w.code = newCode(w)
      w.activation = { resolutions: o.resolutions }
    } else if (o.type === 'record') {
      w.records.push({ id: o.id, value: o.value })
      w.emitted.set(o.id, (w.emitted.get(o.id) ?? 0) + 1)
    } else if (o.type === 'finished') {
      w.finished = o
    }
  }
}

function newCode (w: World): Code {
  return new Code(w.steps, (k, nowMs) => { w.slept.push({ k, nowMs }) })
}

function newLife (w: World, memo: MemoEntry[]): void {
  w.driver = createRunDriver({ runId: 'bafyRun', memo, startedMs: 0 })
  w.code = newCode(w)
  w.activation = undefined
  w.records = []
  w.driver.handleStart(w.now)
  drain(w)
}

const wanted = (w: World): number => w.steps.filter(s => s.kind === 'signal').length
const sent = (w: World): number => w.stored.a + w.stored.b + w.unstored.length

/** One action, chosen by `choice`; false if it could not apply. */
function act (w: World, choice: number): boolean {
  switch (choice % 6) {
    case 0: {
      if (w.activation === undefined) return false
      const { resolutions } = w.activation
      w.activation = undefined
      w.driver.handleActivation(w.code.activate(resolutions, w.now), w.now)
      break
    }
    case 1: {
      const record = w.records.shift()
      if (record === undefined) return false
      const result = { cid: `cid-${record.id}`, bytes: record.value, peer: 'p' }
      w.memo.push({ id: record.id, result })
      w.driver.handleRecorded(record.id, result, w.now)
      const parsed = parseRecordId(record.id)
      if (parsed?.kind === 'signal') {
        w.stored[parsed.name]++
        w.unstored.shift()
      }
      break
    }
    case 2: {
      const next = w.driver.nextTimeoutMs()
      w.now += next === undefined ? 1 : Math.max(1, Math.min(next - w.now, 7))
      w.driver.handleTimeout(w.now)
      break
    }
    case 3: {
      if (sent(w) >= wanted(w)) return false
      // Send the next signal any step still needs: names in the order of the steps.
      const name = w.steps.filter(s => s.kind === 'signal')[sent(w)].name
      const n = (name === 'a' ? w.stored.a : w.stored.b) + w.unstored.filter(u => u.name === name).length
      w.driver.handleSignal(name, dagCbor.encode(`${name}${n}`), w.now)
      w.unstored.push({ name })
      break
    }
    case 4:
      if (w.activation !== undefined) return false
      w.driver.handleEvict(w.now)
      break
    case 5:
      if (w.restarts >= 3) return false
      w.restarts++
      // Unstored signals were never acknowledged: their sender sends them again.
      w.unstored = []
      newLife(w, [...w.memo])
      return true
  }
  drain(w)
  return true
}

function runTrial (steps: Step[], choices: number[]): void {
  const w = { steps, now: 1000, memo: [], stored: { a: 0, b: 0 }, unstored: [], emitted: new Map(), slept: [], restarts: 0 } as unknown as World
  newLife(w, [])
  for (const choice of choices) {
    if (w.finished !== undefined) break
    act(w, choice)
  }
  // Then make progress: answer, store, signal, let time pass — until the run ends.
  for (let i = 0; i < 10_000 && w.finished === undefined; i++) {
    if (!act(w, 0) && !act(w, 1) && !act(w, 3)) act(w, 2)
  }
  assert.ok(w.finished !== undefined, 'the run ended')
  assert.ok(w.finished.outcome.ok, JSON.stringify(w.finished.outcome))
  // The values in the order of the steps: the n-th wait for a name got the n-th signal sent for it.
  const counts = { a: 0, b: 0 }
  const expected = steps.flatMap(s => s.kind === 'signal' ? [`${s.name}${counts[s.name]++}`] : [])
  assert.deepEqual(dagCbor.decode(w.finished.outcome.value), expected)
  // Each stored record id once (the memo is grow-only); a timer's deadline and firing recorded once.
  const ids = w.memo.map(e => e.id)
  assert.equal(new Set(ids).size, ids.length)
  const sleeps = steps.filter(s => s.kind === 'sleep').length
  assert.equal(ids.filter(id => id.startsWith('sleep:')).length, sleeps)
  assert.equal(ids.filter(id => id.startsWith('wake:')).length, sleeps)
  // No sleep resolved before its recorded deadline, in any life or replay.
  for (const { k, nowMs } of w.slept) {
    const deadline = decodeUint(w.memo.find(e => e.id === `sleep:${k}`)!.result.bytes!)!
    assert.ok(nowMs >= deadline, `sleep ${k} resolved at ${nowMs}, before its deadline ${deadline}`)
  }
  // A record id is emitted again only if a restart lost it before it was stored.
  for (const [id, times] of w.emitted) assert.ok(times === 1 || w.restarts > 0, `${id} emitted ${times} times`)
}

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('sleep' as const), ms: fc.nat(40) }),
  fc.record({ kind: fc.constant('signal' as const), name: fc.constantFrom('a' as const, 'b' as const) })
)

describe('run driver property: timers and signals', () => {
  it('every interleaving finishes with the signals in order and each timer recorded once', () => {
    fc.assert(fc.property(fc.array(stepArb, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 80 }), (steps, choices) => {
      runTrial(steps, choices)
    }), { numRuns: 400 })
  })
})
