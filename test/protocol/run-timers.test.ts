// The run driver's timers and signals: recorded inputs (`record` → `handleRecorded`) that live in
// the memo, so a replay or a restart from the memo sees the same deadlines and values. Fed inputs
// with plain-number times; outputs asserted. The "shell" here stores a record by answering it.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import {
  CBOR_NULL, RUN_DRIVER_OPTIONS_DEFAULTS, RUN_RECORD_BYTES_MAX, createRunDriver, decodeUint, encodeUint, parseRecordId
} from '../../src/protocol/run/index.ts'
import type { CallCommand, Command, MemoEntry, Resolution, RunDriver, RunDriverOptions, RunEvent, RunOutput } from '../../src/protocol/run/index.ts'
import { SIGNAL_NAME_CHARS_MAX, SIGNAL_VALUE_BYTES_MAX } from '../../src/model/limits.ts'

const RUN = 'bafyRun'
const { activationTimeoutMs } = RUN_DRIVER_OPTIONS_DEFAULTS

function make (options: Partial<RunDriverOptions> = {}): RunDriver {
  return createRunDriver({ runId: RUN, ...options })
}

function drain (d: RunDriver): RunOutput[] {
  const out: RunOutput[] = []
  for (let o = d.poll(); o !== undefined; o = d.poll()) out.push(o)
  return out
}

function events (out: RunOutput[]): RunEvent[] {
  return out.flatMap(o => o.type === 'event' ? [o.event] : [])
}

function res (r: Resolution): string {
  return r.ok ? `${r.seq}:${r.result.bytes === undefined ? r.result.cid : JSON.stringify(dagCbor.decode(r.result.bytes))}` : `${r.seq}:${r.error.code}`
}

/** Short strings for the actions: "record sleep:0=1500", "activate 2 [0:null]", "finished ok". */
function brief (out: RunOutput[]): string[] {
  return out.flatMap(o => {
    switch (o.type) {
      case 'activate': return [`activate ${o.activation}${o.replay ? ' replay' : ''} [${o.resolutions.map(res).join(',')}]`]
      case 'record': return [`record ${o.id}=${JSON.stringify(dagCbor.decode(o.value))}`]
      case 'schedule': return [`schedule ${o.task.taskId}`]
      case 'cancel': return [`cancel ${o.taskId}`]
      case 'finished': return [o.outcome.ok ? 'finished ok' : `finished ${o.outcome.error.code}`]
      case 'event': return []
    }
    return [o.type]
  })
}

const sleep = (seq: number, ms: number): Command => ({ type: 'sleep', seq, ms })
const signal = (seq: number, name: string): Command => ({ type: 'signal', seq, name })
function call (seq: number, taskId: string): CallCommand {
  return { type: 'call', seq, taskId, fn: 'bafyFn', export: 'B', args: new Uint8Array([0x80]), ref: false }
}

/** The shell's half of a record: store it (here: keep it) and answer with its ref. */
function store (d: RunDriver, out: RunOutput[], nowMs: number, memo: MemoEntry[] = []): RunOutput[] {
  const next: RunOutput[] = []
  for (const o of out) {
    if (o.type !== 'record') continue
    const result = { cid: `cid-${o.id}`, bytes: o.value, peer: 'peerA' }
    memo.push({ id: o.id, result })
    d.handleRecorded(o.id, result, nowMs)
    next.push(...drain(d))
  }
  return next
}

function started (options: Partial<RunDriverOptions> = {}, nowMs = 0): RunDriver {
  const d = make(options)
  d.handleStart(nowMs)
  drain(d)
  return d
}

const done = { ok: true as const, value: new Uint8Array([0xf6]) }

describe('run driver: sleep', () => {
  it('records the deadline, arms the timer when recorded, records the wake when due, then resolves', () => {
    const d = started({}, 1000)
    d.handleActivation({ commands: [sleep(0, 1500)] }, 1000)
    const out = drain(d)
    assert.deepEqual(brief(out), ['record sleep:0=2500'])
    assert.equal(d.counts().timersArmed, 0, 'not armed before the deadline is durable')
    const stored = store(d, out, 1001)
    assert.deepEqual(brief(stored), [])
    assert.deepEqual(events(stored).map(e => e.type), ['run:timer:started'])
    assert.equal(d.nextTimeoutMs(), 2500)
    d.handleTimeout(2499)
    assert.deepEqual(brief(drain(d)), [], 'a ms early: nothing')
    d.handleTimeout(2500)
    const fired = drain(d)
    assert.deepEqual(brief(fired), ['record wake:0=null'])
    const woke = store(d, fired, 2500)
    assert.deepEqual(brief(woke), ['activate 2 [0:null]'])
    const firedEvent = events(woke).find(e => e.type === 'run:timer:fired')
    assert.deepEqual(firedEvent, { type: 'run:timer:fired', runId: RUN, atMs: 2500, timerId: 'sleep:0', seqs: [0] })
    d.handleActivation({ commands: [], done }, 2501)
    assert.equal(d.status(), 'finished')
  })

  it('a run waiting only on a timer is not stalled', () => {
    const d = started()
    d.handleActivation({ commands: [sleep(0, 10)] }, 0)
    assert.equal(d.status(), 'running')
    assert.ok(!brief(drain(d)).includes('finished ERR_WORKFLOW_STALLED'))
  })

  it('sleeps in order: k counts the sleeps of one execution; two timers fire in deadline order', () => {
    const d = started()
    d.handleActivation({ commands: [sleep(0, 300), sleep(1, 100)] }, 0)
    const out = drain(d)
    assert.deepEqual(brief(out), ['record sleep:0=300', 'record sleep:1=100'])
    store(d, out, 0)
    assert.equal(d.nextTimeoutMs(), 100)
    d.handleTimeout(400)
    const fired = drain(d)
    assert.deepEqual(brief(fired), ['record wake:1=null', 'record wake:0=null'])
    assert.deepEqual(brief(store(d, fired, 400)), ['activate 2 [1:null]'])
    d.handleActivation({ commands: [] }, 401)
    assert.deepEqual(brief(drain(d)), ['activate 3 [0:null]'])
  })

  it('restored mid-sleep from a memo: the replay re-arms the recorded deadline, records nothing new', () => {
    const memo: MemoEntry[] = [{ id: 'sleep:0', result: { cid: 'c', bytes: encodeUint(5000), peer: 'peerA' } }]
    const d = make({ memo, startedMs: 0 })
    d.handleStart(4000)
    drain(d)
    d.handleActivation({ commands: [sleep(0, 1500)] }, 4000)
    assert.deepEqual(brief(drain(d)), [], 'no second deadline recorded')
    assert.equal(d.nextTimeoutMs(), 5000, 'the first life\'s deadline, not 4000 + 1500')
    d.handleTimeout(5000)
    assert.deepEqual(brief(drain(d)), ['record wake:0=null'])
  })

  it('a timer that fired is never armed again: a replay with wake:k in the memo resolves at once', () => {
    const memo: MemoEntry[] = [
      { id: 'sleep:0', result: { cid: 'c0', bytes: encodeUint(100), peer: 'peerA' } },
      { id: 'wake:0', result: { cid: 'c1', bytes: CBOR_NULL, peer: 'peerA' } }
    ]
    const d = make({ memo })
    d.handleStart(50_000)
    drain(d)
    d.handleActivation({ commands: [sleep(0, 100)] }, 50_000)
    assert.deepEqual(brief(drain(d)), ['activate 2 [0:null]'])
    assert.equal(d.counts().timersArmed, 0)
    assert.equal(d.nextTimeoutMs(), 50_000 + activationTimeoutMs, 'only the activation deadline: no timer')
  })

  it('eviction mid-sleep keeps the armed timer; its firing asks for a replay, which resolves from the memo', () => {
    const d = started()
    d.handleActivation({ commands: [sleep(0, 100)] }, 0)
    store(d, drain(d), 0)
    d.handleEvict(10)
    drain(d)
    assert.equal(d.counts().timersArmed, 1)
    d.handleTimeout(100)
    const replay = store(d, drain(d), 100)
    assert.deepEqual(brief(replay), ['activate 2 replay []'])
    d.handleActivation({ commands: [sleep(0, 100)] }, 101)
    assert.deepEqual(brief(drain(d)), ['activate 3 [0:null]'])
    assert.equal(d.memo().filter(e => e.id.startsWith('wake:')).length, 1)
  })

  it('a record is emitted once per id: a second sleep k in a replay while its deadline is being stored waits on it', () => {
    const d = started()
    d.handleActivation({ commands: [sleep(0, 100)] }, 0)
    const first = drain(d)
    d.handleEvict(1)
    drain(d)
    d.handleTimeout(2)
    assert.deepEqual(brief(drain(d)), [])
    assert.equal(d.counts().recordsPending, 1)
    store(d, first, 3)
    assert.equal(d.counts().timersArmed, 1)
  })

  it('the run ending drops armed timers and pending records; a late handleRecorded is ignored', () => {
    const d = started()
    d.handleActivation({ commands: [sleep(0, 100), sleep(1, 200)] }, 0)
    const out = drain(d)
    store(d, out.slice(0, 1), 0)
    d.handleCancel(5)
    assert.deepEqual(brief(drain(d)), ['finished ERR_RUN_CANCELLED'])
    assert.equal(d.nextTimeoutMs(), undefined)
    assert.equal(d.handleRecorded('sleep:1', { cid: 'c', bytes: encodeUint(200), peer: 'p' }, 6), 'late')
  })

  it('handleRecorded for an id not being recorded is a bug in the shell', () => {
    const d = started()
    d.handleActivation({ commands: [sleep(0, 100)] }, 0)
    drain(d)
    assert.throws(() => d.handleRecorded('wake:0', { cid: 'c', bytes: CBOR_NULL, peer: 'p' }, 1), /assertion/i)
  })
})

describe('run driver: signals', () => {
  const value = (v: unknown): Uint8Array => dagCbor.encode(v)

  it('a wait, then the signal: recorded as signal:<name>:0, then delivered with its value', () => {
    const d = started()
    d.handleActivation({ commands: [signal(0, 'approve')] }, 0)
    assert.equal(d.status(), 'running', 'waiting on a signal is not a stall')
    assert.deepEqual(brief(drain(d)), [])
    assert.equal(d.handleSignal('approve', value({ ok: 1 }), 10), 'accepted')
    const out = drain(d)
    assert.deepEqual(brief(out), ['record signal:approve:0={"ok":1}'])
    const delivered = store(d, out, 11)
    assert.deepEqual(brief(delivered), ['activate 2 [0:{"ok":1}]'])
    const received = events(delivered).find(e => e.type === 'run:signal:received')
    assert.deepEqual(received, { type: 'run:signal:received', runId: RUN, atMs: 11, name: 'approve', signalId: 'signal:approve:0', bytes: 5, seqs: [0] })
  })

  it('a signal before the wait stays in the memo and answers the later wait at once', () => {
    const d = started()
    d.handleActivation({ commands: [call(0, 't1')] }, 0)
    drain(d)
    d.handleSignal('go', value(7), 1)
    assert.deepEqual(brief(store(d, drain(d), 1)), [])
    d.handleTaskOutcome('t1', { ok: true, result: { cid: 'r1', peer: 'p' } }, 2)
    drain(d)
    d.handleActivation({ commands: [signal(1, 'go')] }, 3)
    assert.deepEqual(brief(drain(d)), ['activate 3 [1:7]'])
  })

  it('two waits for one name take the first and second signal; other names count apart', () => {
    const d = started()
    d.handleActivation({ commands: [signal(0, 'x'), signal(1, 'x'), signal(2, 'y')] }, 0)
    drain(d)
    d.handleSignal('y', value('y0'), 1)
    d.handleSignal('x', value('x0'), 1)
    d.handleSignal('x', value('x1'), 1)
    const out = drain(d)
    assert.deepEqual(brief(out), ['record signal:y:0="y0"', 'record signal:x:0="x0"', 'record signal:x:1="x1"'])
    // Stored one by one: the first activation carries the first, the rest batch into the next.
    assert.deepEqual(brief(store(d, out, 2)), ['activate 2 [2:"y0"]'])
    d.handleActivation({ commands: [] }, 3)
    assert.deepEqual(brief(drain(d)), ['activate 3 [0:"x0",1:"x1"]'])
  })

  it('restored from a memo: the signal count goes on from the memo, and a replay gets the same values', () => {
    const memo: MemoEntry[] = [{ id: 'signal:x:0', result: { cid: 'c', bytes: value('first'), peer: 'p' } }]
    const d = make({ memo })
    d.handleStart(0)
    drain(d)
    d.handleSignal('x', value('second'), 1)
    assert.deepEqual(brief(drain(d)).filter(b => b.startsWith('record')), ['record signal:x:1="second"'])
    d.handleActivation({ commands: [signal(0, 'x')] }, 2)
    assert.deepEqual(brief(drain(d)), ['activate 2 [0:"first"]'])
  })

  it('eviction while waiting: the signal asks for a replay; the replayed wait resolves from the memo', () => {
    const d = started()
    d.handleActivation({ commands: [signal(0, 'x')] }, 0)
    drain(d)
    d.handleEvict(1)
    drain(d)
    d.handleSignal('x', value(1), 2)
    assert.deepEqual(brief(store(d, drain(d), 2)), ['activate 2 replay []'])
    d.handleActivation({ commands: [signal(0, 'x')] }, 3)
    assert.deepEqual(brief(drain(d)), ['activate 3 [0:1]'])
  })

  it('refuses bad names and values with named errors, the run going on; one past each limit', () => {
    const d = started()
    d.handleActivation({ commands: [signal(0, 'x')] }, 0)
    drain(d)
    const name = 'n'.repeat(SIGNAL_NAME_CHARS_MAX)
    assert.equal(d.handleSignal(name, value(1), 1), 'accepted')
    assert.throws(() => d.handleSignal(name + 'n', value(1), 1), { name: 'InvalidInputError', code: 'ERR_INVALID_INPUT' })
    assert.throws(() => d.handleSignal('', value(1), 1), { name: 'InvalidInputError' })
    assert.throws(() => d.handleSignal('a:b', value(1), 1), { name: 'InvalidInputError' })
    assert.equal(d.handleSignal('x', new Uint8Array(SIGNAL_VALUE_BYTES_MAX), 1), 'accepted')
    assert.throws(() => d.handleSignal('x', new Uint8Array(SIGNAL_VALUE_BYTES_MAX + 1), 1), (err: Error & { code?: string, hint?: string }) => err.code === 'ERR_TOO_LARGE' && typeof err.hint === 'string')
    assert.equal(d.status(), 'running')
  })

  it('a signal past memoEntriesMax is refused with RunHistoryLimitError; the run goes on', () => {
    const d = started({ memoEntriesMax: 2 })
    d.handleActivation({ commands: [signal(0, 'x')] }, 0)
    drain(d)
    d.handleSignal('y', value(1), 1)
    d.handleSignal('y', value(2), 1)
    assert.throws(() => d.handleSignal('y', value(3), 1), { name: 'RunHistoryLimitError', code: 'ERR_RUN_HISTORY_LIMIT' })
    assert.equal(d.status(), 'running')
  })

  it('signal bytes past RUN_RECORD_BYTES_MAX are refused with RunHistoryLimitError (recordBytesMax)', () => {
    const d = started()
    d.handleActivation({ commands: [signal(0, 'x')] }, 0)
    drain(d)
    const full = Math.floor(RUN_RECORD_BYTES_MAX / SIGNAL_VALUE_BYTES_MAX)
    for (let i = 0; i < full; i++) d.handleSignal('y', new Uint8Array(SIGNAL_VALUE_BYTES_MAX), 1)
    store(d, drain(d), 1)
    assert.equal(d.counts().recordBytes, RUN_RECORD_BYTES_MAX)
    assert.throws(() => d.handleSignal('y', new Uint8Array(1), 1), (err: Error & { limit?: string }) => err.name === 'RunHistoryLimitError' && err.limit === 'recordBytesMax')
  })

  it('a signal to an ended run is late', () => {
    const d = started()
    d.handleCancel(1)
    assert.equal(d.handleSignal('x', value(1), 2), 'late')
  })
})

describe('run driver: recorded inputs in the memo', () => {
  it('record ids parse, and never as task ids (CIDs hold no colon)', () => {
    assert.deepEqual(parseRecordId('sleep:3'), { kind: 'sleep', k: 3 })
    assert.deepEqual(parseRecordId('wake:0'), { kind: 'wake', k: 0 })
    assert.deepEqual(parseRecordId('signal:order.paid:12'), { kind: 'signal', name: 'order.paid', n: 12 })
    for (const id of ['bafyreigh2akiscaildc', 'sleep:01', 'sleep:-1', 'signal::1', 'signal:a:b:1', 'wake:']) assert.equal(parseRecordId(id), undefined, id)
  })

  it('the hand-written uint and null are exactly dag-cbor, and decode only their shortest form', () => {
    for (const n of [0, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 1_764_000_000_000, Number.MAX_SAFE_INTEGER]) {
      assert.deepEqual(encodeUint(n), dagCbor.encode(n), String(n))
      assert.equal(decodeUint(encodeUint(n)), n)
    }
    assert.deepEqual(CBOR_NULL, dagCbor.encode(null))
    assert.equal(decodeUint(new Uint8Array([0x18, 5])), undefined, 'not shortest')
    assert.equal(decodeUint(CBOR_NULL), undefined)
  })

  it('refuses a memo whose recorded inputs lack bytes or a wake time', () => {
    assert.throws(() => make({ memo: [{ id: 'signal:x:0', result: { cid: 'c', peer: 'p' } }] }), { name: 'ConfigError' })
    assert.throws(() => make({ memo: [{ id: 'sleep:0', result: { cid: 'c', bytes: CBOR_NULL, peer: 'p' } }] }), { name: 'ConfigError' })
  })

  it('sleeps count toward commandsMax and their records toward memoEntriesMax', () => {
    const a = started({ commandsMax: 2 })
    a.handleActivation({ commands: [sleep(0, 1), sleep(1, 1), sleep(2, 1)] }, 0)
    assert.deepEqual(brief(drain(a)).at(-1), 'finished ERR_RUN_HISTORY_LIMIT')
    const b = started({ memoEntriesMax: 2 })
    b.handleActivation({ commands: [sleep(0, 1)] }, 0)
    store(b, drain(b), 0)
    b.handleTimeout(1)
    store(b, drain(b), 1)
    assert.equal(b.counts().memoEntries, 2)
    b.handleActivation({ commands: [sleep(1, 1)] }, 2)
    assert.deepEqual(brief(drain(b)), ['finished ERR_RUN_HISTORY_LIMIT'])
  })
})

describe('run driver: continue-as-new', () => {
  it('done with continueAs ends the run as continued, carrying the next arguments, and cancels what is in flight', () => {
    const d = started()
    d.handleActivation({ commands: [call(0, 't1'), call(1, 't2')] }, 0)
    drain(d)
    d.handleTaskOutcome('t1', { ok: true, result: { cid: 'r1', peer: 'p' } }, 1)
    drain(d)
    const next = dagCbor.encode([4])
    d.handleActivation({ commands: [], done: { ok: true, value: CBOR_NULL, continueAs: next } }, 2)
    const out = drain(d)
    assert.deepEqual(brief(out), ['cancel t2', 'finished ok'])
    const finished = out.find(o => o.type === 'finished')
    assert.ok(finished?.type === 'finished' && finished.outcome.ok)
    assert.deepEqual(finished.outcome.continueAs, next)
    assert.equal(d.status(), 'continued')
    const event = events(out).find(e => e.type === 'run:finished')
    assert.ok(event?.type === 'run:finished')
    assert.equal(event.status, 'continued')
    assert.equal(d.handleSignal('x', dagCbor.encode(1), 3), 'late', 'a continued run has ended')
  })

  it('a history limit\'s hint names continueAsNew', () => {
    const d = started({ commandsMax: 1 })
    d.handleActivation({ commands: [sleep(0, 1), sleep(1, 1)] }, 0)
    const finished = drain(d).find(o => o.type === 'finished')
    assert.ok(finished?.type === 'finished' && !finished.outcome.ok)
    assert.match(finished.outcome.error.hint ?? '', /continueAsNew/)
  })
})
