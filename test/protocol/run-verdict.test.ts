// The run driver's verdicts on accepted results (checks, confirmations, disproofs) and `fix:<id>`
// memo entries. No mocks: the "workflow code" is whatever the test answers to each `activate`.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  FIX_ENTRY_PREFIX, checkEntryId, createRunDriver, fixEntryId, parseFixEntryId, parseRecordId, sleepId, verifiedMemo
} from '../../src/protocol/run/index.ts'
import type {
  ActivationResult, CallCommand, CheckVerdict, MemoEntry, Outcome, Resolution, RunDriver, RunDriverOptions, RunEvent, RunOutput
} from '../../src/protocol/run/index.ts'

const RUN = 'bafyRun'
const enc = (text: string): Uint8Array => new TextEncoder().encode(text)
const dec = (bytes: Uint8Array): string => new TextDecoder().decode(bytes)

const OPEN: CheckVerdict = { type: 'open' }
const CONFIRMED: CheckVerdict = { type: 'confirmed' }
function disproven (cid: string, bytes?: Uint8Array): CheckVerdict {
  return { type: 'disproven', result: bytes === undefined ? { cid, peer: 'peerC' } : { cid, peer: 'peerC', bytes } }
}

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

/** Short strings for the actions: "schedule t1", "activate 2 replay [0:r1]", "cancel t2", "finished ok v". */
function brief (out: RunOutput[]): string[] {
  return out.flatMap(o => {
    switch (o.type) {
      case 'activate': return [`activate ${o.activation}${o.replay ? ' replay' : ''} [${o.resolutions.map(res).join(',')}]`]
      case 'schedule': return [`schedule ${o.task.taskId}`]
      case 'cancel': return [`cancel ${o.taskId}`]
      case 'finished': return [o.outcome.ok ? `finished ok ${dec(o.outcome.value)}` : `finished ${o.outcome.error.code}`]
      case 'event': return []
    }
    return [o.type]
  })
}

function res (r: Resolution): string {
  return r.ok ? `${r.seq}:${r.result.cid}` : `${r.seq}:${r.error.code}`
}

function call (seq: number, taskId: string): CallCommand {
  return { type: 'call', seq, taskId, fn: 'bafyFn', export: 'f', args: enc(`[${seq}]`), ref: false }
}

function ok (cid: string, bytes?: Uint8Array): Outcome {
  return bytes === undefined ? { ok: true, result: { cid, peer: 'peerA' } } : { ok: true, result: { cid, peer: 'peerA', bytes } }
}

const done = (value: string): ActivationResult => ({ commands: [], done: { ok: true, value: enc(value) } })

/** Started, t1 scheduled and accepted as r1 (delivered in activation 2, outstanding), then answered with `then`. */
function withT1 (then: ActivationResult = { commands: [call(1, 't2')] }, options: Partial<RunDriverOptions> = {}): RunDriver {
  const d = make(options)
  d.handleStart(0)
  d.handleActivation({ commands: [call(0, 't1')] }, 1)
  d.handleTaskOutcome('t1', ok('r1'), 2)
  drain(d)
  d.handleActivation(then, 3)
  drain(d)
  return d
}

/**
 * A replayable workflow: `const a = await A(); const b = await B(a); return b` — B's task id is
 * derived from A's result (`tB(<cid>)`), as a real call's id is from its arguments.
 */
class Flow {
  private seq = 0
  private readonly got = new Map<number, Resolution>()
  private aSeq = -1
  private bSeq = -1

  answer (o: RunOutput | undefined): ActivationResult {
    assert.ok(o !== undefined && o.type === 'activate', 'the driver asked for an activation')
    if (o.replay) {
      this.seq = 0
      this.got.clear()
      this.aSeq = -1
      this.bSeq = -1
    }
    for (const r of o.resolutions) this.got.set(r.seq, r)
    const commands: CallCommand[] = []
    if (this.aSeq < 0) {
      this.aSeq = this.seq++
      commands.push(call(this.aSeq, 'tA'))
    }
    const a = this.got.get(this.aSeq)
    if (a === undefined || !a.ok) return { commands }
    if (this.bSeq < 0) {
      this.bSeq = this.seq++
      commands.push(call(this.bSeq, `tB(${a.result.cid})`))
    }
    const b = this.got.get(this.bSeq)
    if (b === undefined || !b.ok) return { commands }
    return { commands, done: { ok: true, value: enc(b.result.cid) } }
  }
}

/** The driver's next activation output among `out`. */
function activation (out: RunOutput[]): RunOutput | undefined {
  return out.find(o => o.type === 'activate')
}

describe('run driver verdicts: fix entry ids', () => {
  it('fix:<taskId> round-trips, and collides with no task id or recorded input', () => {
    assert.equal(FIX_ENTRY_PREFIX, 'fix:')
    assert.equal(fixEntryId('bafyT1'), 'fix:bafyT1')
    assert.equal(parseFixEntryId(fixEntryId('bafyT1')), 'bafyT1')
    for (const id of ['bafyT1', 'fix:', 'fix:a:b', 'fix:fix:a', sleepId(0), 'signal:go:0', 'run:result', 'FIX:bafy']) {
      assert.equal(parseFixEntryId(id), undefined, id)
    }
    assert.equal(parseRecordId(fixEntryId('bafyT1')), undefined, 'a fix is not a recorded input')
    // A fix names a task id: never a recorded input, another fix, or nothing.
    for (const bad of ['', sleepId(0), 'fix:bafyT1']) assert.throws(() => fixEntryId(bad), /assertion failed/)
  })
})

describe('run driver verdicts: a memo with fixes', () => {
  it('a call of <id> resolves with fix:<id>, whether the fix comes before or after the entry', () => {
    for (const order of ['after', 'before'] as const) {
      const entry: MemoEntry = { id: 't1', result: { cid: 'wrong', peer: 'peerL' } }
      const fix: MemoEntry = { id: fixEntryId('t1'), result: { cid: 'right', peer: 'peerC', bytes: enc('1') } }
      const d = make({ memo: order === 'after' ? [entry, fix] : [fix, entry] })
      d.handleStart(0)
      drain(d)
      d.handleActivation({ commands: [call(0, 't1')] }, 1)
      assert.deepEqual(brief(drain(d)), ['activate 2 [0:right]'], order)
      assert.deepEqual(d.memo(), [{ id: 't1', result: { cid: 'right', peer: 'peerC', bytes: enc('1') } }], 'one entry, holding the fix')
      assert.equal(d.counts().memoEntries, 1)
      assert.equal(d.counts().memoInlineBytes, 1)
    }
  })

  it('a fix without its entry still answers the call; a fix given twice is refused', () => {
    const d = make({ memo: [{ id: fixEntryId('t1'), result: { cid: 'right', peer: 'peerC' } }] })
    d.handleStart(0)
    drain(d)
    d.handleActivation({ commands: [call(0, 't1')] }, 1)
    assert.deepEqual(brief(drain(d)), ['activate 2 [0:right]'])
    const twice = [{ id: fixEntryId('t1'), result: { cid: 'a', peer: 'p' } }, { id: fixEntryId('t1'), result: { cid: 'b', peer: 'p' } }]
    assert.throws(() => make({ memo: twice }), { name: 'ConfigError' })
  })
})

describe('run driver verdicts: open checks hold the end', () => {
  it('the code returns while a check is open: the run stays running until it is confirmed, then ends with that outcome', () => {
    const d = withT1({ commands: [call(1, 't2')] })
    assert.equal(d.handleVerdict('t1', OPEN, 4), 'accepted')
    assert.deepEqual(events(drain(d)), [{ type: 'run:task:checking', runId: RUN, atMs: 4, taskId: 't1' }])
    assert.equal(d.counts().checksOpen, 1)
    d.handleTaskOutcome('t2', ok('r2'), 5)
    drain(d)
    d.handleActivation(done('v'), 6)
    assert.deepEqual(brief(drain(d)), [], 'held: not finished')
    assert.equal(d.status(), 'running')
    assert.equal(d.handleVerdict('t1', CONFIRMED, 7), 'accepted')
    const out = drain(d)
    assert.deepEqual(brief(out), ['finished ok v'])
    assert.deepEqual(events(out)[0], { type: 'run:task:confirmed', runId: RUN, atMs: 7, taskId: 't1' })
    assert.equal(d.status(), 'finished')
    assert.equal(d.counts().checksOpen, 0)
  })

  it('with several checks open the run ends only when the last closes; a repeated open counts once', () => {
    const d = withT1({ commands: [call(1, 't2')] })
    d.handleTaskOutcome('t2', ok('r2'), 4)
    drain(d)
    d.handleVerdict('t1', OPEN, 5)
    d.handleVerdict('t2', OPEN, 5)
    d.handleVerdict('t2', OPEN, 5)
    assert.equal(events(drain(d)).length, 2, 'one checking event per check')
    assert.equal(d.counts().checksOpen, 2)
    d.handleActivation(done('v'), 6)
    d.handleVerdict('t2', CONFIRMED, 7)
    assert.deepEqual(brief(drain(d)), [])
    assert.equal(d.status(), 'running')
    d.handleVerdict('t1', CONFIRMED, 8)
    assert.deepEqual(brief(drain(d)), ['finished ok v'])
  })

  it('a failed or continued outcome is held the same way', () => {
    const error = { name: 'WorkflowError', code: 'ERR_WORKFLOW', message: 'no', retryable: false }
    const cases: Array<[ActivationResult, string, string]> = [
      [{ commands: [], done: { ok: false, error } }, 'finished ERR_WORKFLOW', 'failed'],
      [{ commands: [], done: { ok: true, value: enc('v'), continueAs: enc('[2]') } }, 'finished ok v', 'continued']
    ]
    for (const [answer, finished, status] of cases) {
      const d = withT1()
      d.handleVerdict('t1', OPEN, 4)
      d.handleTaskOutcome('t2', ok('r2'), 5)
      drain(d)
      d.handleActivation(answer, 6)
      assert.deepEqual(brief(drain(d)), [])
      assert.equal(d.status(), 'running')
      d.handleVerdict('t1', CONFIRMED, 7)
      assert.deepEqual(brief(drain(d)), [finished])
      assert.equal(d.status(), status)
    }
  })

  it('while held, tasks in flight carry on (their results join the memo, no activation); the end cancels the rest', () => {
    const d = withT1({ commands: [call(1, 't2'), call(2, 't3'), call(3, 't4')] })
    d.handleVerdict('t1', OPEN, 4)
    d.handleTaskOutcome('t2', ok('r2'), 5)
    drain(d)
    d.handleActivation(done('v'), 6)
    assert.equal(d.handleTaskOutcome('t3', ok('r3'), 7), 'accepted')
    assert.deepEqual(brief(drain(d)), [], 'the code is done: nothing to deliver to')
    assert.equal(d.counts().memoEntries, 3)
    assert.equal(d.counts().inFlight, 1)
    d.handleVerdict('t1', CONFIRMED, 8)
    assert.deepEqual(brief(drain(d)), ['cancel t4', 'finished ok v'])
  })

  it('run timeout and cancel still end a held run; verdicts after the end are late', () => {
    const d = withT1(undefined, { runTimeoutMs: 1000 })
    d.handleVerdict('t1', OPEN, 4)
    d.handleTaskOutcome('t2', ok('r2'), 5)
    d.handleActivation(done('v'), 6)
    drain(d)
    assert.equal(d.nextTimeoutMs(), 1000)
    d.handleTimeout(1000)
    assert.deepEqual(brief(drain(d)), ['finished ERR_RUN_TIMEOUT'])
    assert.equal(d.counts().checksOpen, 0)
    assert.equal(d.handleVerdict('t1', CONFIRMED, 1001), 'late')
    assert.equal(d.handleVerdict('t1', disproven('r9'), 1001), 'late')
    assert.deepEqual(drain(d), [])

    const c = withT1()
    c.handleVerdict('t1', OPEN, 4)
    c.handleTaskOutcome('t2', ok('r2'), 5)
    c.handleActivation(done('v'), 6)
    drain(c)
    c.handleCancel(6)
    assert.deepEqual(brief(drain(c)), ['finished ERR_RUN_CANCELLED'])
  })

  it('verdicts for ids the run does not hold as results are late and change nothing', () => {
    const d = withT1({ commands: [call(1, 't2')] })
    drain(d)
    for (const id of ['unknown', 't2' /* in flight, not accepted */, fixEntryId('t1')]) {
      assert.equal(d.handleVerdict(id, OPEN, 4), 'late', id)
      assert.equal(d.handleVerdict(id, disproven('rX'), 4), 'late', id)
    }
    assert.deepEqual(drain(d), [])
    assert.equal(d.counts().checksOpen, 0)
    // A recorded input is not a result to check.
    const s = make({ memo: [{ id: sleepId(0), result: { cid: 'c', peer: 'p', bytes: new Uint8Array([0x01]) } }] })
    assert.equal(s.handleVerdict(sleepId(0), OPEN, 0), 'late')
  })

  it('open checks are bounded by the memo: each names an accepted result', () => {
    const d = withT1({ commands: [call(1, 't2')] })
    d.handleTaskOutcome('t2', ok('r2'), 4)
    for (let i = 0; i < 5; i++) {
      d.handleVerdict('t1', OPEN, 5)
      d.handleVerdict('t2', OPEN, 5)
      d.handleVerdict(`t${i + 10}`, OPEN, 5)
    }
    assert.equal(d.counts().checksOpen, 2)
    assert.ok(d.counts().checksOpen <= d.counts().memoEntries)
  })
})

describe('run driver verdicts: disproofs', () => {
  it('between activations: the memo takes the fix, the check closes, and the code replays at once; tasks in flight are joined, not rescheduled', () => {
    const d = withT1({ commands: [call(1, 't2')] })
    d.handleVerdict('t1', OPEN, 4)
    drain(d)
    assert.equal(d.handleVerdict('t1', disproven('f1', enc('ab')), 5), 'accepted')
    const out = drain(d)
    assert.deepEqual(brief(out), ['activate 3 replay []'])
    assert.deepEqual(events(out).map(e => e.type), ['run:task:disproven', 'run:evicted', 'run:activation'])
    assert.deepEqual(events(out)[0], { type: 'run:task:disproven', runId: RUN, atMs: 5, taskId: 't1', resultCid: 'f1' })
    assert.equal(d.counts().checksOpen, 0)
    assert.deepEqual(d.memo(), [{ id: 't1', result: { cid: 'f1', peer: 'peerC', bytes: enc('ab') } }])
    assert.equal(d.counts().memoInlineBytes, 2)
    d.handleActivation({ commands: [call(0, 't1'), call(1, 't2')] }, 6)
    assert.deepEqual(brief(drain(d)), ['activate 4 [0:f1]'], 't2 joins the task in flight')
    d.handleActivation({ commands: [] }, 7)
    d.handleTaskOutcome('t2', ok('r2'), 8)
    assert.deepEqual(brief(drain(d)), ['activate 5 [1:r2]'])
    assert.equal(d.counts().scheduled, 2, 'nothing scheduled twice')
  })

  it('with an activation outstanding: the replay waits for its answer, which is discarded (commands not scheduled, done not taken)', () => {
    for (const answer of [{ commands: [call(1, 'tWrong')] }, done('wrong')]) {
      const d = make()
      d.handleStart(0)
      d.handleActivation({ commands: [call(0, 't1')] }, 1)
      d.handleTaskOutcome('t1', ok('r1'), 2)
      drain(d) // activation 2 [0:r1] outstanding
      d.handleVerdict('t1', OPEN, 3)
      d.handleVerdict('t1', disproven('f1'), 3)
      assert.deepEqual(brief(drain(d)), [], 'no activation while one is outstanding')
      d.handleActivation(answer, 4)
      assert.deepEqual(brief(drain(d)), ['activate 3 replay []'])
      assert.equal(d.status(), 'running')
      d.handleActivation({ commands: [call(0, 't1')] }, 5)
      assert.deepEqual(brief(drain(d)), ['activate 4 [0:f1]'])
      assert.equal(d.counts().scheduled, 1)
    }
  })

  it('many disproofs at once cost one replay (handleVerdicts, and one-by-one while an activation is outstanding)', () => {
    const accepted = (): RunDriver => {
      const d = withT1({ commands: [call(1, 't2'), call(2, 't3')] })
      d.handleOutcomes([{ kind: 'task', id: 't2', outcome: ok('r2') }, { kind: 'task', id: 't3', outcome: ok('r3') }], 4)
      drain(d)
      return d
    }
    const d = accepted()
    d.handleActivation({ commands: [call(3, 't4')] }, 5)
    drain(d)
    const verdicts = ['t1', 't2', 't3'].map(taskId => ({ taskId, verdict: disproven(`f-${taskId}`) }))
    assert.deepEqual(d.handleVerdicts(verdicts, 6), ['accepted', 'accepted', 'accepted'])
    assert.deepEqual(brief(drain(d)), ['activate 4 replay []'])

    const e = accepted() // activation 3 [1:r2,2:r3] outstanding
    for (const v of verdicts) e.handleVerdict(v.taskId, v.verdict, 6)
    e.handleActivation({ commands: [] }, 7)
    const out = drain(e)
    assert.deepEqual(brief(out), ['activate 4 replay []'])
    assert.equal(events(out).filter(ev => ev.type === 'run:evicted').length, 1)
  })

  it('a held end is dropped by a disproof; the replay recomputes it from the fix', () => {
    const d = withT1()
    d.handleVerdict('t1', OPEN, 4)
    d.handleTaskOutcome('t2', ok('r2'), 5)
    drain(d)
    d.handleActivation(done('from r1'), 6)
    d.handleVerdict('t1', disproven('f1'), 7)
    assert.deepEqual(brief(drain(d)), ['activate 4 replay []'])
    d.handleActivation({ commands: [call(0, 't1'), call(1, 't2')] }, 8)
    assert.deepEqual(brief(drain(d)), ['activate 5 [0:f1,1:r2]'])
    d.handleActivation(done('from f1'), 9)
    assert.deepEqual(brief(drain(d)), ['finished ok from f1'])
  })

  it('a disproof without an open check also replays; one repeating the result already held changes nothing', () => {
    const d = withT1({ commands: [call(1, 't2')] })
    drain(d)
    d.handleVerdict('t1', disproven('f1'), 4)
    assert.deepEqual(brief(drain(d)), ['activate 3 replay []'])
    d.handleActivation({ commands: [call(0, 't1'), call(1, 't2')] }, 5)
    drain(d)
    d.handleActivation({ commands: [] }, 6)
    drain(d)
    d.handleVerdict('t1', OPEN, 7)
    d.handleVerdict('t1', disproven('f1'), 8)
    const out = drain(d)
    assert.deepEqual(brief(out), [], 'the code already saw f1')
    assert.deepEqual(events(out).map(e => e.type), ['run:task:checking', 'run:task:disproven'])
    assert.equal(d.counts().checksOpen, 0)
  })

  it('before the start: the memo takes the fix and the first activation sees it', () => {
    const d = make({ memo: [{ id: 't1', result: { cid: 'wrong', peer: 'peerL' } }] })
    assert.equal(d.handleVerdict('t1', OPEN, 0), 'accepted')
    assert.equal(d.handleVerdict('t1', disproven('f1'), 0), 'accepted')
    d.handleStart(1)
    assert.deepEqual(brief(drain(d)), ['activate 1 []'])
    d.handleActivation({ commands: [call(0, 't1')] }, 2)
    assert.deepEqual(brief(drain(d)), ['activate 2 [0:f1]'])
  })
})

describe('run driver verdicts: a workflow replays on a disproof', () => {
  it('A accepted under check, B called with it; A disproven → replay, B called with the fix as a new task; the end waits for the checks', () => {
    const flow = new Flow()
    const d = make()
    d.handleStart(0)
    d.handleActivation(flow.answer(activation(drain(d))), 1)
    assert.deepEqual(brief(drain(d)), ['schedule tA'])
    // A's result is accepted from one peer, under a spot check.
    d.handleTaskOutcome('tA', ok('a-wrong'), 2)
    d.handleVerdict('tA', OPEN, 2)
    d.handleActivation(flow.answer(activation(drain(d))), 3)
    assert.deepEqual(brief(drain(d)), ['schedule tB(a-wrong)'])
    // The check disproves A while B (computed from the wrong value) runs: the code replays.
    d.handleVerdict('tA', disproven('a-right'), 4)
    let out = drain(d)
    assert.deepEqual(brief(out), ['activate 3 replay []'])
    d.handleActivation(flow.answer(activation(out)), 5)
    out = drain(d)
    assert.deepEqual(brief(out), ['activate 4 [0:a-right]'])
    d.handleActivation(flow.answer(activation(out)), 6)
    assert.deepEqual(brief(drain(d)), ['schedule tB(a-right)'], 'B with the fixed value is a new task')
    // The new B is accepted under a check of its own; the old B settles unawaited.
    d.handleTaskOutcome('tB(a-wrong)', ok('b-wrong'), 7)
    assert.deepEqual(brief(drain(d)), [], 'nobody waits on the old B')
    d.handleTaskOutcome('tB(a-right)', ok('b-right'), 8)
    d.handleVerdict('tB(a-right)', OPEN, 8)
    d.handleActivation(flow.answer(activation(drain(d))), 9)
    assert.deepEqual(brief(drain(d)), [], 'done is held while B is checked')
    assert.equal(d.status(), 'running')
    d.handleVerdict('tB(a-right)', CONFIRMED, 10)
    assert.deepEqual(brief(drain(d)), ['finished ok b-right'])
    assert.equal(d.counts().scheduled, 3, 'A once, the old B once, the new B once')
  })
})

describe('verifiedMemo: what a driver that takes a run over may trust', () => {
  it('leaves out results still under check (and every marker); keeps fixed ones, their fixes, and everything else', () => {
    const ids = ['bafyA', 'check:bafyA', 'bafyB', 'check:bafyB', 'fix:bafyB', 'bafyC', 'sleep:0', 'check:bafyGone']
    const kept = verifiedMemo(ids.map(id => ({ id }))).map(e => e.id)
    assert.deepEqual(kept, ['bafyB', 'fix:bafyB', 'bafyC', 'sleep:0'])
    assert.equal(checkEntryId('bafyA'), 'check:bafyA')
    assert.throws(() => checkEntryId('check:bafyA'), /names a task id/)
  })
})
