// The run driver, fed inputs with plain-number times; outputs asserted. No mocks: the "workflow
// code" is whatever the test answers to each `activate`.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  CHILD_DEPTH_LIMIT, RUN_COUNT_LIMIT, RUN_DRIVER_OPTIONS_DEFAULTS, createRunDriver
} from '../../src/protocol/run/index.ts'
import type {
  CallCommand, ChildCommand, Outcome, Resolution, RunDriver, RunDriverOptions, RunEvent, RunOutput
} from '../../src/protocol/run/index.ts'
import type { FailureData } from '../../src/model/errors.ts'

const RUN = 'bafyRun'
const enc = (text: string): Uint8Array => new TextEncoder().encode(text)
const { activationTimeoutMs, runTimeoutMs } = RUN_DRIVER_OPTIONS_DEFAULTS

function make (options: Partial<RunDriverOptions> = {}): RunDriver {
  return createRunDriver({ runId: RUN, ...options })
}

function drain (d: RunDriver): RunOutput[] {
  const out: RunOutput[] = []
  for (let o = d.poll(); o !== undefined; o = d.poll()) out.push(o)
  return out
}

/** The non-event outputs of one drain. */
function actions (out: RunOutput[]): Array<Exclude<RunOutput, { type: 'event' }>> {
  return out.filter((o): o is Exclude<RunOutput, { type: 'event' }> => o.type !== 'event')
}

function events (out: RunOutput[]): RunEvent[] {
  return out.flatMap(o => o.type === 'event' ? [o.event] : [])
}

/** Short strings for the actions: "schedule t1", "activate 2 [0:ok,1:ERR_X]", "cancel t2", "finished ok". */
function brief (out: RunOutput[]): string[] {
  return actions(out).map(o => {
    switch (o.type) {
      case 'activate': return `activate ${o.activation}${o.replay ? ' replay' : ''} [${o.resolutions.map(res).join(',')}]`
      case 'schedule': return `schedule ${o.task.taskId}`
      case 'start-child': return `start-child ${o.child.runId}`
      case 'cancel': return `cancel ${o.taskId}`
      case 'cancel-child': return `cancel-child ${o.runId}`
      case 'finished': return o.outcome.ok ? 'finished ok' : `finished ${o.outcome.error.code}`
    }
    return 'unknown'
  })
}

function res (r: Resolution): string {
  return r.ok ? `${r.seq}:${r.result.cid}` : `${r.seq}:${r.error.code}`
}

function call (seq: number, taskId: string, extra: Partial<CallCommand> = {}): CallCommand {
  return { type: 'call', seq, taskId, fn: 'bafyFn', export: 'B', args: enc(`[${seq}]`), ref: false, ...extra }
}

function child (seq: number, runId: string): ChildCommand {
  return { type: 'child', seq, runId, workflow: 'bafyFlow', export: 'A', args: enc('[1]') }
}

function ok (cid: string, peer = 'peerA', bytes?: Uint8Array): Outcome {
  return bytes === undefined ? { ok: true, result: { cid, peer } } : { ok: true, result: { cid, peer, bytes } }
}

const THREW: FailureData = { name: 'FunctionThrewError', code: 'ERR_FUNCTION_THREW', message: 'boom', retryable: false }
const failed: Outcome = { ok: false, error: THREW }

/** A started driver with its first activation drained. */
function started (options: Partial<RunDriverOptions> = {}, nowMs = 0): RunDriver {
  const d = make(options)
  d.handleStart(nowMs)
  drain(d)
  return d
}

describe('run driver: activations', () => {
  it('starts with one activation and no resolutions, timed by the activation deadline', () => {
    const d = make()
    assert.equal(d.status(), 'created')
    assert.equal(d.nextTimeoutMs(), undefined, 'nothing is timed before the start')
    d.handleStart(100)
    const out = drain(d)
    assert.deepEqual(brief(out), ['activate 1 []'])
    assert.deepEqual(events(out).map(e => e.type), ['run:started', 'run:activation'])
    assert.equal(d.status(), 'running')
    assert.equal(d.nextTimeoutMs(), 100 + activationTimeoutMs)
  })

  it('schedules each distinct task id once, however many seqs ask, and resolves every seq waiting on it', () => {
    const d = started()
    d.handleActivation({ commands: [call(0, 't1'), call(1, 't2'), call(2, 't1')] }, 1)
    assert.deepEqual(brief(drain(d)), ['schedule t1', 'schedule t2'])
    assert.equal(d.nextTimeoutMs(), runTimeoutMs, 'between activations only the run deadline is timed')
    assert.equal(d.handleTaskOutcome('t1', ok('r1'), 2), 'accepted')
    assert.deepEqual(brief(drain(d)), ['activate 2 [0:r1,2:r1]'])
    // Asked again in a later activation: answered from the memo, not scheduled.
    d.handleActivation({ commands: [call(3, 't1')] }, 3)
    const out = drain(d)
    assert.deepEqual(brief(out), ['activate 3 [3:r1]'])
    assert.deepEqual(events(out).find(e => e.type === 'run:task:reused'), { type: 'run:task:reused', runId: RUN, atMs: 3, seq: 3, taskId: 't1', from: 'memo' })
    assert.equal(d.counts().scheduled, 2)
  })

  it('batches outcomes that arrive while an activation is outstanding into the next one, in seq order', () => {
    const d = started()
    d.handleActivation({ commands: [call(0, 't1'), call(1, 't2'), call(2, 't3')] }, 1)
    drain(d)
    d.handleTaskOutcome('t3', ok('r3'), 2)
    assert.deepEqual(brief(drain(d)), ['activate 2 [2:r3]'])
    d.handleTaskOutcome('t2', ok('r2'), 3)
    d.handleTaskOutcome('t1', failed, 4)
    assert.deepEqual(brief(drain(d)), [], 'no second activation while one is outstanding')
    d.handleActivation({ commands: [] }, 5)
    assert.deepEqual(brief(drain(d)), ['activate 3 [0:ERR_FUNCTION_THREW,1:r2]'])
  })

  it('outcomes handed over together reach the code in one activation, in seq order; a late batch is late', () => {
    const d = started()
    d.handleActivation({ commands: [call(0, 't1'), call(1, 't2'), child(2, 'bafyChild'), call(3, 't4')] }, 1)
    drain(d)
    const verdicts = d.handleOutcomes([
      { kind: 'task', id: 't2', outcome: ok('r2') },
      { kind: 'child', id: 'bafyChild', outcome: ok('rc') },
      { kind: 'task', id: 't1', outcome: failed }
    ], 2)
    assert.deepEqual(verdicts, ['accepted', 'accepted', 'accepted'])
    assert.deepEqual(brief(drain(d)), ['activate 2 [0:ERR_FUNCTION_THREW,1:r2,2:rc]'])
    // While an activation is outstanding they wait for the next one, as single outcomes do.
    d.handleOutcomes([{ kind: 'task', id: 't4', outcome: ok('r4') }], 3)
    assert.deepEqual(brief(drain(d)), [])
    d.handleActivation({ commands: [], done: { ok: true, value: enc('1') } }, 4)
    drain(d)
    assert.deepEqual(d.handleOutcomes([{ kind: 'task', id: 't4', outcome: ok('r4') }], 5), ['late'])
  })

  it('a joined seq is reported as reused from the task in flight', () => {
    const d = started()
    d.handleActivation({ commands: [call(0, 't1')] }, 1)
    drain(d)
    d.handleTaskOutcome('t1', ok('r1'), 2)
    drain(d)
    d.handleActivation({ commands: [call(1, 't2'), call(2, 't2')] }, 3)
    const out = drain(d)
    assert.deepEqual(brief(out), ['schedule t2'])
    assert.equal(events(out).filter(e => e.type === 'run:task:reused' && e.from === 'in-flight').length, 1)
    d.handleTaskOutcome('t2', ok('r2', 'peerB', enc('7')), 9)
    const accepted = events(drain(d)).find(e => e.type === 'run:task:accepted')
    assert.deepEqual(accepted, { type: 'run:task:accepted', runId: RUN, atMs: 9, taskId: 't2', cid: 'r2', peer: 'peerB', inlineBytes: 1, scheduledAtMs: 3, seqs: [1, 2] })
  })

  it('fails a run whose code waits on nothing in flight (WorkflowStalledError)', () => {
    const d = started()
    d.handleActivation({ commands: [] }, 1)
    assert.deepEqual(brief(drain(d)), ['finished ERR_WORKFLOW_STALLED'])
    assert.equal(d.status(), 'failed')
  })

  it('the Ref inputs of a call travel with its schedule output', () => {
    const d = started()
    d.handleActivation({ commands: [call(0, 't1', { inputs: ['bafyIn1', 'bafyIn2'], ref: true })] }, 1)
    const out = drain(d)
    const schedule = actions(out).find(o => o.type === 'schedule')
    assert.deepEqual(schedule, { type: 'schedule', task: { taskId: 't1', fn: 'bafyFn', export: 'B', args: enc('[0]'), inputs: ['bafyIn1', 'bafyIn2'] } })
    assert.deepEqual(events(out), [
      { type: 'run:activation:done', runId: RUN, atMs: 1, activation: 1, commands: 1, done: false },
      { type: 'run:task:scheduled', runId: RUN, atMs: 1, seq: 0, taskId: 't1', fn: 'bafyFn', export: 'B', inputs: ['bafyIn1', 'bafyIn2'] }
    ])
  })
})

describe('run driver: failures reach the code', () => {
  it('a non-retryable task failure is a rejection; the run goes on and finishes as the code says', () => {
    const d = started()
    d.handleActivation({ commands: [call(0, 't1')] }, 1)
    drain(d)
    d.handleTaskOutcome('t1', failed, 2)
    const out = drain(d)
    assert.deepEqual(brief(out), ['activate 2 [0:ERR_FUNCTION_THREW]'])
    assert.equal(d.status(), 'running')
    assert.deepEqual(events(out)[0], { type: 'run:task:failed', runId: RUN, atMs: 2, taskId: 't1', error: THREW, scheduledAtMs: 1, seqs: [0] })
    // The code catches it and asks again: the same failure, not a second attempt.
    d.handleActivation({ commands: [call(1, 't1'), call(2, 't2')] }, 3)
    assert.deepEqual(brief(drain(d)), ['schedule t2', 'activate 3 [1:ERR_FUNCTION_THREW]'])
    d.handleActivation({ commands: [] }, 4)
    d.handleTaskOutcome('t2', ok('r2'), 4)
    assert.deepEqual(brief(drain(d)), ['activate 4 [2:r2]'])
    d.handleActivation({ commands: [], done: { ok: true, value: enc('14') } }, 5)
    const end = drain(d)
    assert.deepEqual(actions(end), [{ type: 'finished', outcome: { ok: true, value: enc('14') } }])
    assert.equal(d.status(), 'finished')
  })

  it('the code rethrowing ends the run failed with its error', () => {
    const d = started()
    const error: FailureData = { name: 'WorkflowThrewError', code: 'ERR_WORKFLOW_THREW', message: 'no', retryable: false }
    d.handleActivation({ commands: [], done: { ok: false, error } }, 1)
    const out = drain(d)
    assert.deepEqual(actions(out), [{ type: 'finished', outcome: { ok: false, error } }])
    assert.equal(d.status(), 'failed')
    const fin = events(out).find(e => e.type === 'run:finished')
    assert.deepEqual(fin, { type: 'run:finished', runId: RUN, atMs: 1, status: 'failed', error, activations: 1, tasksScheduled: 0, memoEntries: 0 })
  })
})

describe('run driver: the end', () => {
  it('done finishes once; calls not awaited are cancelled, commands of the last activation dropped; later inputs are ignored', () => {
    const d = started()
    d.handleActivation({ commands: [call(0, 't1'), call(1, 't2')] }, 1)
    drain(d)
    d.handleTaskOutcome('t1', ok('r1'), 2)
    drain(d)
    d.handleActivation({ commands: [call(2, 't3')], done: { ok: true, value: enc('1') } }, 3)
    assert.deepEqual(brief(drain(d)), ['cancel t2', 'finished ok'])
    assert.equal(d.nextTimeoutMs(), undefined)
    // Everything after the end races it honestly and is ignored.
    assert.equal(d.handleTaskOutcome('t2', ok('r2'), 4), 'late')
    assert.equal(d.handleTaskOutcome('never-scheduled', ok('x'), 4), 'late')
    d.handleActivation({ commands: [call(9, 't9')] }, 5)
    d.handleCancel(6)
    d.handleTimeout(runTimeoutMs * 2)
    d.handleEvict(7)
    d.handleStart(8)
    assert.deepEqual(drain(d), [])
    assert.equal(d.status(), 'finished')
  })

  it('cancel: a cancel for each task and child in flight, in schedule order, then finished with RunCancelledError', () => {
    const d = started()
    d.handleActivation({ commands: [call(0, 't1'), child(1, 'bafyChild'), call(2, 't2')] }, 1)
    drain(d)
    d.handleCancel(2)
    const out = drain(d)
    assert.deepEqual(brief(out), ['cancel t1', 'cancel-child bafyChild', 'cancel t2', 'finished ERR_RUN_CANCELLED'])
    assert.deepEqual(events(out).map(e => e.type), ['run:task:cancelled', 'run:child:cancelled', 'run:task:cancelled', 'run:finished'])
    assert.equal(d.status(), 'cancelled')
  })

  it('cancelled while an activation is outstanding: the late answer is ignored', () => {
    const d = started()
    d.handleCancel(1)
    assert.deepEqual(brief(drain(d)), ['finished ERR_RUN_CANCELLED'])
    d.handleActivation({ commands: [call(0, 't1')] }, 2)
    assert.deepEqual(drain(d), [])
  })

  it('cancelled before it started: finished at once, the start is ignored', () => {
    const d = make()
    d.handleCancel(1)
    assert.deepEqual(brief(drain(d)), ['finished ERR_RUN_CANCELLED'])
    d.handleStart(2)
    assert.deepEqual(drain(d), [])
    assert.equal(d.status(), 'cancelled')
  })
})

describe('run driver: child runs', () => {
  it('start-child once per child run id, with the ancestor chain; its outcome resolves every seq', () => {
    const d = started({ ancestors: ['bafyRoot'] })
    d.handleActivation({ commands: [child(0, 'bafyKid'), child(1, 'bafyKid')] }, 1)
    const out = actions(drain(d))
    assert.deepEqual(out, [{ type: 'start-child', child: { runId: 'bafyKid', workflow: 'bafyFlow', export: 'A', args: enc('[1]'), ancestors: ['bafyRoot', RUN] } }])
    assert.equal(d.handleChildOutcome('bafyKid', ok('kidResult', 'peerK'), 2), 'accepted')
    assert.deepEqual(brief(drain(d)), ['activate 2 [0:kidResult,1:kidResult]'])
    assert.deepEqual(d.memo(), [{ id: 'bafyKid', result: { cid: 'kidResult', peer: 'peerK' } }])
  })

  it('a child whose run id is this run or an ancestor fails that seq with WorkflowCycleError instead of starting', () => {
    const d = started({ ancestors: ['bafyRoot', 'bafyMid'] })
    d.handleActivation({ commands: [child(0, RUN), child(1, 'bafyRoot'), child(2, 'bafyOk')] }, 1)
    const out = drain(d)
    assert.deepEqual(brief(out), ['start-child bafyOk', 'activate 2 [0:ERR_WORKFLOW_CYCLE,1:ERR_WORKFLOW_CYCLE]'])
    const refused = events(out).filter(e => e.type === 'run:child:refused')
    assert.equal(refused.length, 2)
    assert.equal(refused[0].type === 'run:child:refused' && refused[0].error.name, 'WorkflowCycleError')
    assert.equal(d.status(), 'running', 'the code may catch it')
  })

  it('children nest at most childDepthMax levels: one past is refused with WorkflowDepthError', () => {
    const chain = (n: number): string[] => Array.from({ length: n }, (_, i) => `bafyA${i}`)
    const atLimit = started({ ancestors: chain(2), childDepthMax: 3 })
    atLimit.handleActivation({ commands: [child(0, 'bafyDeep')] }, 1)
    assert.deepEqual(brief(drain(atLimit)), ['start-child bafyDeep'], 'a child at depth 3 of 3 starts')
    const past = started({ ancestors: chain(3), childDepthMax: 3 })
    past.handleActivation({ commands: [child(0, 'bafyDeeper')] }, 1)
    assert.deepEqual(brief(drain(past)), ['activate 2 [0:ERR_WORKFLOW_DEPTH]'])
  })
})

describe('run driver: history limits', () => {
  it('commandsMax: at the limit runs, one past fails the run and cancels what is in flight', () => {
    const d = started({ commandsMax: 3 })
    d.handleActivation({ commands: [call(0, 't1'), call(1, 't1'), call(2, 't1')] }, 1)
    assert.deepEqual(brief(drain(d)), ['schedule t1'])
    const e = started({ commandsMax: 3 })
    e.handleActivation({ commands: [call(0, 't1'), call(1, 't1'), call(2, 't1'), call(3, 't2')] }, 1)
    const out = drain(e)
    assert.deepEqual(brief(out), ['schedule t1', 'cancel t1', 'finished ERR_RUN_HISTORY_LIMIT'])
    const finished = actions(out).find(o => o.type === 'finished')
    assert.ok(finished?.type === 'finished' && !finished.outcome.ok)
    assert.equal(finished.outcome.error.name, 'RunHistoryLimitError')
    assert.match(finished.outcome.error.message, /commandsMax/)
    assert.ok(finished.outcome.error.hint)
  })

  it('memoEntriesMax: distinct ids, counted with the memo and failures; repeats are free; one past fails', () => {
    const d = started({ memoEntriesMax: 3, memo: [{ id: 'm1', result: { cid: 'r', peer: 'p' } }] })
    d.handleActivation({ commands: [call(0, 't1'), call(1, 'm1'), call(2, 't2'), call(3, 't1')] }, 1)
    assert.deepEqual(brief(drain(d)), ['schedule t1', 'schedule t2', 'activate 2 [1:r]'])
    d.handleTaskOutcome('t1', failed, 2)
    d.handleActivation({ commands: [] }, 3)
    drain(d)
    d.handleActivation({ commands: [call(4, 't3')] }, 4)
    const out = brief(drain(d))
    assert.deepEqual(out, ['cancel t2', 'finished ERR_RUN_HISTORY_LIMIT'])
  })

  it('argsBytesMax: arguments up to the limit run, one byte past fails', () => {
    const d = started({ argsBytesMax: 10 })
    d.handleActivation({ commands: [call(0, 't1', { args: new Uint8Array(6) }), call(1, 't2', { args: new Uint8Array(4) })] }, 1)
    assert.deepEqual(brief(drain(d)), ['schedule t1', 'schedule t2'])
    assert.equal(d.counts().argsBytes, 10)
    const e = started({ argsBytesMax: 10 })
    e.handleActivation({ commands: [call(0, 't1', { args: new Uint8Array(6) }), call(1, 't2', { args: new Uint8Array(5) })] }, 1)
    assert.deepEqual(brief(drain(e)), ['schedule t1', 'cancel t1', 'finished ERR_RUN_HISTORY_LIMIT'])
  })

  it('memoInlineBytesMax: past the budget the memo keeps the CID only, the code still gets the bytes once', () => {
    const d = started({ memoInlineBytesMax: 4 })
    d.handleActivation({ commands: [call(0, 't1'), call(1, 't2')] }, 1)
    drain(d)
    d.handleTaskOutcome('t1', ok('r1', 'p', enc('abcd')), 2)
    drain(d)
    d.handleTaskOutcome('t2', ok('r2', 'p', enc('e')), 3)
    d.handleActivation({ commands: [] }, 4)
    const activate = actions(drain(d)).find(o => o.type === 'activate')
    assert.ok(activate?.type === 'activate')
    assert.deepEqual(activate.resolutions, [{ seq: 1, ok: true, result: { cid: 'r2', peer: 'p', bytes: enc('e') } }])
    assert.deepEqual(d.memo(), [
      { id: 't1', result: { cid: 'r1', peer: 'p', bytes: enc('abcd') } },
      { id: 't2', result: { cid: 'r2', peer: 'p' } }
    ])
    assert.equal(d.counts().memoInlineBytes, 4)
  })
})

describe('run driver: restart and eviction', () => {
  it('restarts from a memo: the replay resolves accepted tasks from it and schedules only the rest', () => {
    const first = started()
    first.handleActivation({ commands: [call(0, 't1'), call(1, 't2')] }, 1)
    drain(first)
    first.handleTaskOutcome('t1', ok('r1', 'peerA', enc('5')), 2)
    drain(first)
    const memo = first.memo()
    assert.deepEqual(memo, [{ id: 't1', result: { cid: 'r1', peer: 'peerA', bytes: enc('5') } }])

    // The peer restarts: a new driver from the persisted memo, and the code replays from the start.
    const d = make({ memo, startedMs: 0 })
    d.handleStart(100)
    const startOut = drain(d)
    assert.deepEqual(brief(startOut), ['activate 1 []'])
    assert.deepEqual(events(startOut)[0], { type: 'run:started', runId: RUN, atMs: 100, memoEntries: 1 })
    d.handleActivation({ commands: [call(0, 't1'), call(1, 't2')] }, 101)
    assert.deepEqual(brief(drain(d)), ['schedule t2', 'activate 2 [0:r1]'])
    assert.equal(d.nextTimeoutMs(), 101 + activationTimeoutMs)
    d.handleActivation({ commands: [] }, 102)
    assert.equal(d.nextTimeoutMs(), runTimeoutMs, 'the run deadline counts from the first start')
  })

  it('eviction: the next settle asks for a replay; replayed calls join the task in flight or hit the memo', () => {
    const d = started()
    d.handleActivation({ commands: [call(0, 't1'), call(1, 't2')] }, 1)
    drain(d)
    d.handleEvict(2)
    assert.deepEqual(events(drain(d)).map(e => e.type), ['run:evicted'])
    d.handleTaskOutcome('t1', ok('r1'), 3)
    assert.deepEqual(brief(drain(d)), ['activate 2 replay []'])
    // The replay numbers from 0 again: t1 from the memo, t2 joins the task in flight.
    d.handleActivation({ commands: [call(0, 't1'), call(1, 't2')] }, 4)
    assert.deepEqual(brief(drain(d)), ['activate 3 [0:r1]'])
    d.handleActivation({ commands: [] }, 5)
    d.handleTaskOutcome('t2', ok('r2'), 6)
    assert.deepEqual(brief(drain(d)), ['activate 4 [1:r2]'])
    assert.equal(d.counts().scheduled, 2)
  })
})

describe('run driver: timeouts and clock', () => {
  it('an activation unanswered for activationTimeoutMs fails the run; a ms earlier nothing happens', () => {
    const d = started({ activationTimeoutMs: 1000 }, 0)
    d.handleTimeout(999)
    assert.deepEqual(drain(d), [])
    d.handleTimeout(1000)
    assert.deepEqual(brief(drain(d)), ['finished ERR_ACTIVATION_TIMEOUT'])
  })

  it('the run deadline counts from startedMs when resuming, and cancels what is in flight', () => {
    const d = make({ startedMs: 0, runTimeoutMs: 5000 })
    d.handleStart(4000)
    drain(d)
    d.handleActivation({ commands: [call(0, 't1')] }, 4001)
    drain(d)
    assert.equal(d.nextTimeoutMs(), 5000)
    d.handleTimeout(4999)
    assert.deepEqual(drain(d), [])
    d.handleTimeout(5000)
    assert.deepEqual(brief(drain(d)), ['cancel t1', 'finished ERR_RUN_TIMEOUT'])
  })

  it('a clock that steps back does not move time backwards', () => {
    const d = started({ activationTimeoutMs: 1000 }, 500)
    d.handleTimeout(100)
    assert.equal(d.nextTimeoutMs(), 1500)
  })
})

describe('run driver: bugs in the shell fail assertions', () => {
  it('an activation answered with none outstanding, an unknown outcome, seqs that do not grow, a second start', () => {
    const d = started()
    d.handleActivation({ commands: [call(0, 't1')] }, 1)
    drain(d)
    assert.throws(() => d.handleActivation({ commands: [] }, 2), /assertion failed: an activation is answered once/)
    assert.throws(() => d.handleTaskOutcome('t9', ok('x'), 2), /assertion failed: an outcome arrives once/)
    assert.throws(() => d.handleChildOutcome('t1', ok('x'), 2), /assertion failed: an outcome arrives once, for a child/)
    assert.throws(() => d.handleStart(2), /assertion failed: a run starts once/)
    d.handleTaskOutcome('t1', ok('r1'), 3)
    drain(d)
    assert.throws(() => d.handleActivation({ commands: [call(0, 't2')] }, 4), /seqs grow/)
  })

  it('evicting during an activation', () => {
    const d = started()
    assert.throws(() => d.handleEvict(1), /between activations/)
  })
})

describe('run driver: options', () => {
  it('refuses bad options with ConfigError naming the field, including one past each bound', () => {
    assert.throws(() => make({ runId: '' }), { name: 'ConfigError', field: 'runId' })
    assert.throws(() => make({ commandsMax: 0 }), { name: 'ConfigError', field: 'commandsMax' })
    assert.doesNotThrow(() => make({ commandsMax: RUN_COUNT_LIMIT }))
    assert.throws(() => make({ commandsMax: RUN_COUNT_LIMIT + 1 }), { name: 'ConfigError', field: 'commandsMax' })
    assert.throws(() => make({ memoEntriesMax: RUN_COUNT_LIMIT + 1 }), { name: 'ConfigError', field: 'memoEntriesMax' })
    assert.throws(() => make({ childDepthMax: CHILD_DEPTH_LIMIT + 1 }), { name: 'ConfigError', field: 'childDepthMax' })
    assert.throws(() => make({ runTimeoutMs: 1.5 }), { name: 'ConfigError', field: 'runTimeoutMs' })
    assert.throws(() => make({ ancestors: ['a', 'b'], childDepthMax: 1 }), { name: 'ConfigError', field: 'ancestors' })
    assert.throws(() => make({ startedMs: -1 }), { name: 'ConfigError', field: 'startedMs' })
  })

  it('refuses a memo with a duplicate id, a bad entry, or more than memoEntriesMax entries', () => {
    const entry = (id: string): { id: string, result: { cid: string, peer: string } } => ({ id, result: { cid: 'r', peer: 'p' } })
    assert.throws(() => make({ memo: [entry('a'), entry('a')] }), { name: 'ConfigError', field: 'memo[1].id' })
    assert.throws(() => make({ memo: [{ id: 'a', result: { cid: '', peer: 'p' } }] }), { name: 'ConfigError', field: 'memo[0].result' })
    assert.doesNotThrow(() => make({ memo: [entry('a'), entry('b')], memoEntriesMax: 2 }))
    assert.throws(() => make({ memo: [entry('a'), entry('b'), entry('c')], memoEntriesMax: 2 }), { name: 'ConfigError', field: 'memo' })
  })

  it('defaults are the documented numbers', () => {
    assert.deepEqual({ ...RUN_DRIVER_OPTIONS_DEFAULTS }, {
      commandsMax: 10_000,
      memoEntriesMax: 10_000,
      argsBytesMax: 64 * 1024 * 1024,
      memoInlineBytesMax: 16 * 1024 * 1024,
      childDepthMax: 16,
      activationTimeoutMs: 60_000,
      runTimeoutMs: 86_400_000
    })
  })
})
