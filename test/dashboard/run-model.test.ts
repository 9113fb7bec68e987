import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { DAG_DEPS_PER_TASK_MAX, DAG_TASKS_MAX, RunModel } from '../../src/dashboard/run-model.ts'
import type { ProgressEvent } from '../../src/api/events.ts'
import type { RunReport } from '../../src/api/types.ts'

const RUN = 'bafyrun'

function scheduled (taskId: string, atMs: number, deps: string[] = []): ProgressEvent {
  return { type: 'run:task:scheduled', runId: RUN, taskId, fn: 'bafyfn', export: 'C', deps, atMs }
}

function report (tasks: RunReport['tasks'], extra: Partial<RunReport> = {}): RunReport {
  return { runId: RUN, workflow: 'bafywf', export: 'lanes', status: 'running', startedMs: 1000, driver: 'peer-a', tasks, ...extra }
}

describe('the run model behind the dashboard\'s DAG', () => {
  test('events build the tasks, their dependencies and states; other runs\' events are ignored', () => {
    const run = new RunModel(RUN)
    assert.equal(run.applyEvent({ type: 'run:started', runId: RUN, workflow: 'bafywf', export: 'lanes', atMs: 1000 }), true)
    run.applyEvent(scheduled('a', 1001))
    run.applyEvent(scheduled('b', 1002, ['a']))
    run.applyEvent({ type: 'run:task:started', runId: RUN, taskId: 'a', peer: 'peer-b', attempt: 1, atMs: 1003 })
    run.applyEvent({ type: 'run:task:done', runId: RUN, taskId: 'a', peer: 'peer-b', ms: 5, atMs: 1008 })
    assert.equal(run.applyEvent({ type: 'run:task:done', runId: 'other', taskId: 'b', peer: 'peer-b', ms: 5, atMs: 1009 }), false)
    assert.deepEqual(run.tasks.get('b')?.deps, ['a'])
    assert.deepEqual(run.counts(), { queued: 1, running: 0, done: 1, failed: 0 })
    assert.deepEqual({ peer: run.tasks.get('a')?.peer, startedMs: run.tasks.get('a')?.startedMs, finishedMs: run.tasks.get('a')?.finishedMs }, { peer: 'peer-b', startedMs: 1003, finishedMs: 1008 })
    run.applyEvent({ type: 'run:finished', runId: RUN, status: 'finished', atMs: 1010 })
    assert.equal(run.finished, true)
  })

  test('a report read before the replayed events: states never go back, the events add the dependencies', () => {
    const run = new RunModel(RUN)
    run.applyReport(report([
      { taskId: 'a', fn: 'bafyfn', export: 'C', attempt: 1, status: 'accepted', queuedMs: 1001, startedMs: 1003, finishedMs: 1008, peer: 'peer-b' },
      { taskId: 'b', fn: 'bafyfn', export: 'C', attempt: 1, status: 'running', queuedMs: 1009, startedMs: 1010, peer: 'peer-c' }
    ], { criticalPath: { taskIds: ['a'], ms: 7 } }))
    const shape = run.shapeVersion
    run.applyEvent(scheduled('a', 1001))
    run.applyEvent(scheduled('b', 1009, ['a']))
    run.applyEvent({ type: 'run:task:started', runId: RUN, taskId: 'a', peer: 'peer-b', attempt: 1, atMs: 1003 })
    assert.equal(run.tasks.get('a')?.state, 'done', 'a replayed start does not undo a known end')
    assert.deepEqual(run.tasks.get('b')?.deps, ['a'])
    assert.ok(run.shapeVersion > shape, 'a dependency learned later changes the shape')
    assert.deepEqual(run.criticalPath, ['a'])
  })

  test('a run that ended before the page followed it: the report\'s dependencies are the DAG\'s edges; only tasks recorded without them leave it unjoined', () => {
    const run = new RunModel(RUN)
    const many = Array.from({ length: DAG_DEPS_PER_TASK_MAX + 2 }, (_, i) => `f${i}`)
    run.applyReport(report([
      { taskId: 'a', fn: 'bafyfn', export: 'C', attempt: 1, status: 'accepted', queuedMs: 1001, finishedMs: 1008, deps: [] },
      { taskId: 'b', fn: 'bafyfn', export: 'C', attempt: 1, status: 'accepted', queuedMs: 1009, finishedMs: 1010, deps: ['a'] },
      { taskId: 'c', fn: 'bafyfn', export: 'C', attempt: 1, status: 'accepted', queuedMs: 1011, finishedMs: 1012, deps: many, depsCount: 40 }
    ], { status: 'finished', finishedMs: 1013 }))
    assert.deepEqual(run.tasks.get('b')?.deps, ['a'])
    assert.deepEqual(run.tasks.get('c')?.deps, many.slice(-DAG_DEPS_PER_TASK_MAX))
    assert.equal(run.tasks.get('c')?.depsOmitted, 40 - DAG_DEPS_PER_TASK_MAX)
    assert.equal(run.depsMissing, false, 'every task\'s dependencies are known, even the one with none')

    const old = new RunModel(RUN)
    old.applyReport(report([
      { taskId: 'a', fn: 'bafyfn', export: 'C', attempt: 1, status: 'accepted', queuedMs: 1001 },
      { taskId: 'b', fn: 'bafyfn', export: 'C', attempt: 1, status: 'accepted', queuedMs: 1009 }
    ], { status: 'finished' }))
    assert.equal(old.depsMissing, true, 'rows from before dependencies were kept')
    const shape = old.shapeVersion
    old.applyEvent(scheduled('a', 1001))
    old.applyEvent(scheduled('b', 1009, ['a']))
    assert.equal(old.depsMissing, false, 'the scheduled events name them')
    assert.deepEqual(old.tasks.get('b')?.deps, ['a'])
    assert.ok(old.shapeVersion > shape)
  })

  test('a failed task tried again runs again', () => {
    const run = new RunModel(RUN)
    run.applyEvent(scheduled('a', 1))
    run.applyEvent({ type: 'run:task:started', runId: RUN, taskId: 'a', peer: 'p1', attempt: 1, atMs: 2 })
    run.applyEvent({ type: 'run:task:failed', runId: RUN, taskId: 'a', error: { name: 'PeerUnavailableError', code: 'ERR_PEER_UNAVAILABLE', message: 'gone', retryable: true }, atMs: 3 })
    assert.equal(run.tasks.get('a')?.state, 'failed')
    run.applyEvent({ type: 'run:task:started', runId: RUN, taskId: 'a', peer: 'p2', attempt: 2, atMs: 4 })
    assert.equal(run.tasks.get('a')?.state, 'running')
    assert.equal(run.tasks.get('a')?.peer, 'p2')
  })

  test(`at most DAG_TASKS_MAX (${DAG_TASKS_MAX}) tasks are kept; one more is counted, once`, () => {
    const run = new RunModel(RUN)
    for (let i = 0; i < DAG_TASKS_MAX; i++) run.applyEvent(scheduled(`t${i}`, i))
    assert.equal(run.tasks.size, DAG_TASKS_MAX)
    assert.equal(run.tasksOmitted, 0)
    run.applyEvent(scheduled('one-more', DAG_TASKS_MAX))
    run.applyEvent(scheduled('one-more', DAG_TASKS_MAX))
    assert.equal(run.tasks.size, DAG_TASKS_MAX)
    assert.equal(run.tasksOmitted, 1)
    assert.equal(run.tasks.has('one-more'), false)
  })

  test(`at most DAG_DEPS_PER_TASK_MAX (${DAG_DEPS_PER_TASK_MAX}) dependencies are drawn per task; the rest are counted`, () => {
    const run = new RunModel(RUN)
    const deps = Array.from({ length: DAG_DEPS_PER_TASK_MAX }, (_, i) => `d${i}`)
    run.applyEvent(scheduled('at-limit', 1, deps))
    run.applyEvent(scheduled('one-past', 2, ['first', ...deps]))
    assert.deepEqual(run.tasks.get('at-limit')?.deps, deps)
    assert.equal(run.tasks.get('at-limit')?.depsOmitted, 0)
    assert.deepEqual(run.tasks.get('one-past')?.deps, deps, 'the last delivered are kept')
    assert.equal(run.tasks.get('one-past')?.depsOmitted, 1)
    // The peer names at most RUN_EVENT_DEPS_MAX and counts the rest.
    run.applyEvent({ type: 'run:task:scheduled', runId: RUN, taskId: 'counted', fn: 'bafyfn', export: 'C', deps, depsCount: 300, atMs: 3 })
    assert.equal(run.tasks.get('counted')?.depsOmitted, 300 - DAG_DEPS_PER_TASK_MAX)
  })
})
