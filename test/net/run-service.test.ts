/**
 * The run service with its real parts — the run driver, the workflow sandbox, SQLite — and a stub
 * for the one thing that needs a network: executing a task. The stub computes what the functions
 * would, so the runs' results are checked, not just their shape.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { RhizomeError } from '../../src/model/errors.ts'
import { createLogger } from '../../src/node/logger.ts'
import { HomeSetUnavailableError } from '../../src/net/home-service.ts'
import { COMMANDS_PER_TURN_MAX, DISPATCHES_PER_TURN_MAX, HISTORY_WRITES_PER_COMMIT_MAX, RunService } from '../../src/net/run-service.ts'
import { createWorkflowEngine } from '../../src/sandbox/index.ts'
import { createRunRepo, openDatabase } from '../../src/store/index.ts'
import { RUN_EVENT_DEPS_MAX } from '../../src/api/events.ts'
import type { ProgressEvent } from '../../src/api/events.ts'
import type { RunServiceComponents, RunTask, TaskExecution } from '../../src/net/run-service.ts'
import type { WorkflowEngine } from '../../src/sandbox/index.ts'

const log = createLogger('rhizome', { level: 'silent' })
const FN = CID.create(1, dagCbor.code, await sha256.digest(dagCbor.encode({ fixture: 'run-service' })))
const CODE = new TextEncoder().encode([
  "import { workflow, remote } from 'rhizome:workflow'",
  `const B = remote('${FN.toString()}', 'B')`,
  `const C = remote('${FN.toString()}', 'C')`,
  'export const A = workflow(async (x) => { const [b, c] = await Promise.all([B(x), C(x)]); return b + c })',
  'export const slow = workflow(async (x) => await B(x))',
  'export const fan = workflow(async (n) => (await Promise.all(Array.from({ length: n }, (_, i) => B(i)))).length)',
  'export const fanIn = workflow(async (n) => await C((await Promise.all(Array.from({ length: n }, (_, i) => B(i)))).length))',
  ''
].join('\n'))
const WORKFLOW = CID.create(1, dagCbor.code, await sha256.digest(CODE))

async function resultOf (value: unknown): Promise<TaskExecution> {
  const bytes = dagCbor.encode(value)
  const cid = CID.create(1, dagCbor.code, await sha256.digest(bytes))
  return { resultCid: cid.toString(), bytes, peer: '12D3KooWStub', attempts: 1, timings: { queueMs: 0, fetchMs: 0, runMs: 1, totalMs: 1 } }
}

/** B(x) = 2x, C(x) = x + 1, computed here as a worker would. */
async function compute (task: RunTask): Promise<TaskExecution> {
  const x = task.args[0] as number
  return await resultOf(task.export === 'B' ? 2 * x : x + 1)
}

describe('the run service (real driver, sandbox and SQLite; tasks executed by a stub)', () => {
  let dir: string
  let db: ReturnType<typeof openDatabase>
  let engine: WorkflowEngine
  const events: ProgressEvent[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rhizome-run-service-'))
    db = openDatabase(join(dir, 'rhizome.db'))
    engine = createWorkflowEngine()
  })
  after(async () => {
    await engine.close()
    db.close()
    await rm(dir, { recursive: true, force: true })
  })

  function service (execute: RunServiceComponents['execute'], home?: RunServiceComponents['home'], repo = createRunRepo(db)): RunService {
    const runs = new RunService({
      home,
      runs: repo,
      readBlob: async () => { throw new Error('every result here is inline') },
      putBlob: async () => { throw new Error('runs here are not durable: nothing is stored') },
      hasBlob: async () => false,
      loadWorkflow: async (id) => {
        assert.equal(id.toString(), WORKFLOW.toString())
        return { code: CODE, manifest: { exports: ['A', 'slow', 'fan', 'fanIn'] } }
      },
      openWorkflow: async (options) => await engine.openWorkflow(options),
      execute,
      emit: (event) => { events.push(event) },
      selfId: '12D3KooWSelf',
      log
    })
    runs.start()
    return runs
  }

  test('a durable run whose home set cannot keep it is refused with that error and recorded failed, not left running', async () => {
    const forgotten: string[] = []
    // The home set as the run service sees it: here, one whose majority is out of reach.
    const home: RunServiceComponents['home'] = {
      open: async (runId) => { throw new HomeSetUnavailableError(runId, 1, 2) },
      forget: (runId) => { forgotten.push(runId) },
      localEntry: () => false,
      findRun: async () => ({ known: false }),
      findSettled: async () => ({ known: false }),
      keeps: () => false,
      homeSetOf: () => undefined,
      relaySignal: async () => {}
    }
    const runs = service(async (task) => await compute(task), home)
    await assert.rejects(runs.startRun(WORKFLOW, 'A', [5]), { code: 'ERR_HOME_SET_UNAVAILABLE' })
    const [row] = runs.list()
    assert.equal(row.status, 'failed')
    assert.deepEqual(forgotten, [row.runId], 'the machine of the run that never started is stopped')
    await runs.stop()
  })

  test('a fan-out runs each task once and finishes with the right value, reported and persisted', async () => {
    const calls: string[] = []
    const runs = service(async (task) => { calls.push(task.export); return await compute(task) })
    const { runId } = await runs.startRun(WORKFLOW, 'A', [5])
    await runs.settled(runId)
    const report = runs.report(runId)
    assert.equal(report.status, 'finished', JSON.stringify(report.error))
    assert.equal(report.result, 16)
    assert.deepEqual(calls.sort(), ['B', 'C'])
    assert.deepEqual(report.tasks.map(t => t.status), ['accepted', 'accepted'])
    assert.ok(events.some(e => e.type === 'run:finished' && e.runId === runId))
    await runs.stop()
  })

  test(`a task asked for after a fan-in names at most RUN_EVENT_DEPS_MAX (${RUN_EVENT_DEPS_MAX}) of its dependencies in its scheduled event, and counts them all`, async () => {
    // Every B answers at once, once all are asked for: their results reach the code in an
    // activation or two, the last of which asks for C — whose dependencies are the results it
    // delivered, well past the limit.
    const n = 2 * RUN_EVENT_DEPS_MAX + 2
    let release!: () => void
    const released = new Promise<void>(resolve => { release = resolve })
    let asked = 0
    const runs = service(async (task) => {
      if (task.export === 'B') {
        if (++asked === n) release()
        await released
      }
      return await compute(task)
    })
    const { runId } = await runs.startRun(WORKFLOW, 'fanIn', [n])
    await runs.settled(runId)
    assert.equal(runs.report(runId).result, n + 1)
    const scheduled = events.filter(e => e.type === 'run:task:scheduled' && e.runId === runId) as Array<Extract<ProgressEvent, { type: 'run:task:scheduled' }>>
    const bs = scheduled.slice(0, n)
    assert.ok(bs.every(e => e.deps?.length === 0 && e.depsCount === 0), 'the fan-out depends on nothing')
    const c = scheduled[n]
    assert.equal(c.export, 'C')
    assert.ok(c.depsCount! > RUN_EVENT_DEPS_MAX && c.depsCount! <= n, `C depends on ${c.depsCount} of the ${n} results`)
    assert.equal(c.deps?.length, RUN_EVENT_DEPS_MAX)
    assert.ok(c.deps!.every(id => bs.some(b => b.taskId === id)))
    await runs.stop()
  })

  test('a finished run\'s report names each task\'s dependencies, from memory while driven and from its rows after the peer restarts', async () => {
    const n = RUN_EVENT_DEPS_MAX + 2
    let release!: () => void
    const released = new Promise<void>(resolve => { release = resolve })
    let asked = 0
    let whileRunning: ReturnType<RunService['report']> | undefined
    let runId = ''
    const runs: RunService = service(async (task) => {
      if (task.export === 'B') {
        if (++asked === n) release()
        await released
      }
      if (task.export === 'C') {
        // C's row is written behind, in a later turn: wait for it (bounded), then read the report.
        const deadline = Date.now() + 10_000
        while (!runs.report(runId).tasks.some(t => t.export === 'C') && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 5))
        whileRunning = runs.report(runId)
        assert.equal(whileRunning.status, 'running')
      }
      return await compute(task)
    })
    runId = (await runs.startRun(WORKFLOW, 'fanIn', [n])).runId
    await runs.settled(runId)
    await runs.stop()
    const c = events.find(e => e.type === 'run:task:scheduled' && e.runId === runId && e.export === 'C') as Extract<ProgressEvent, { type: 'run:task:scheduled' }>
    assert.ok(c.depsCount! > 1, `C depends on ${c.depsCount} results`)
    const expected = (report: ReturnType<RunService['report']> | undefined): void => {
      const tasks = new Map(report?.tasks.map(t => [t.taskId, t]))
      assert.deepEqual(tasks.get(c.taskId)?.deps, c.deps, 'C: the same deps its scheduled event named')
      assert.equal(tasks.get(c.taskId)?.depsCount, c.depsCount! > RUN_EVENT_DEPS_MAX ? c.depsCount : undefined)
      const bs = report!.tasks.filter(t => t.export === 'B')
      assert.equal(bs.length, n)
      assert.ok(bs.every(b => b.deps?.length === 0 && b.depsCount === undefined), 'the fan-out depends on nothing')
    }
    expected(whileRunning)
    // The peer restarts: a new connection, a new service; the run is only in the database now.
    db.close()
    db = openDatabase(join(dir, 'rhizome.db'))
    const restarted = service(async (task) => await compute(task))
    const after = restarted.report(runId)
    assert.equal(after.status, 'finished')
    assert.equal(after.result, n + 1)
    expected(after)
    await restarted.stop()
  })

  test('backpressure: a task the scheduler refuses as full waits and is submitted again; the run does not fail', async () => {
    let refusals = 0
    const runs = service(async (task) => {
      if (task.export === 'B' && refusals < 3) {
        refusals++
        throw new RhizomeError('ERR_SCHEDULER_QUEUE_FULL', 'full, for the test', { retryable: true })
      }
      return await compute(task)
    })
    const { runId } = await runs.startRun(WORKFLOW, 'A', [1])
    await runs.settled(runId)
    assert.equal(refusals, 3)
    assert.equal(runs.report(runId).result, 4)
    await runs.stop()
  })

  test('any other failure reaches the workflow and ends the run with that named error', async () => {
    const runs = service(async () => { throw new RhizomeError('ERR_FUNCTION_THREW', 'B threw, for the test') })
    const { runId } = await runs.startRun(WORKFLOW, 'slow', [1])
    await runs.settled(runId)
    const report = runs.report(runId)
    assert.equal(report.status, 'failed')
    assert.equal(report.error?.code, 'ERR_FUNCTION_THREW')
    await runs.stop()
  })

  test('cancel aborts the task in flight and ends the run cancelled', async () => {
    let aborted = false
    const runs = service(async (_task, { signal }) => await new Promise<TaskExecution>((_resolve, reject) => {
      signal.addEventListener('abort', () => { aborted = true; reject(new RhizomeError('ERR_ABORTED', 'cancelled')) }, { once: true })
    }))
    const { runId } = await runs.startRun(WORKFLOW, 'slow', [1])
    const deadline = Date.now() + 10_000
    while (runs.report(runId).tasks.length === 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
    runs.cancel(runId)
    await runs.settled(runId)
    assert.equal(runs.report(runId).status, 'cancelled')
    assert.ok(aborted, 'the task in flight was aborted')
    await runs.stop()
  })

  test('a fan-out one past a turn\'s dispatches is sent over two turns of the event loop, each task once, and its history in bounded commits', async () => {
    // Turns counted by a setImmediate chain: the service paces itself by the same clock.
    let turn = 0
    let counting = true
    const count = (): void => { turn += 1; if (counting) setImmediate(count) }
    setImmediate(count)
    const turns: number[] = []
    const n = DISPATCHES_PER_TURN_MAX + 1
    const runs = service(async (task) => { turns.push(turn); return await compute(task) })
    const { runId } = await runs.startRun(WORKFLOW, 'fan', [n])
    await runs.settled(runId)
    counting = false
    assert.equal(runs.report(runId).status, 'finished')
    assert.equal(runs.report(runId).result, n)
    assert.equal(turns.length, n, 'each task dispatched once')
    const perTurn = new Map<number, number>()
    for (const t of turns) perTurn.set(t, (perTurn.get(t) ?? 0) + 1)
    assert.equal(Math.max(...perTurn.values()), DISPATCHES_PER_TURN_MAX, 'a full turn, then the one past it later')
    assert.equal(perTurn.size, 2)
    await runs.stop()
  })

  /** A run repo that counts the history writes (task rows, events, memo rows) of each commit. */
  function countingCommits (): { repo: ReturnType<typeof createRunRepo>, batches: number[] } {
    const repo = createRunRepo(db)
    const batches: number[] = []
    let writes = 0
    const realBatch = repo.batchHistory.bind(repo)
    repo.batchHistory = (fn) => {
      writes = 0
      try { return realBatch(fn) } finally { batches.push(writes) }
    }
    for (const name of ['upsertTask', 'appendEvent', 'addMemo'] as const) {
      const real = (repo[name] as (...args: unknown[]) => unknown).bind(repo)
      ;(repo as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => { writes += 1; return real(...args) }
    }
    return { repo, batches }
  }

  test('a fan-out whose history is one write past a commit\'s bound is written in more than one commit, all of it', async () => {
    const { repo, batches } = countingCommits()
    const n = HISTORY_WRITES_PER_COMMIT_MAX + 1
    const runs = service(async (task) => await compute(task), undefined, repo)
    const { runId } = await runs.startRun(WORKFLOW, 'fan', [n])
    await runs.settled(runId)
    assert.equal(runs.report(runId).result, n)
    assert.equal(runs.report(runId).tasks.length, n, 'every task\'s row is written')
    assert.ok(Math.max(...batches) <= HISTORY_WRITES_PER_COMMIT_MAX, `largest commit ${Math.max(...batches)} writes`)
    assert.ok(batches.some(b => b === HISTORY_WRITES_PER_COMMIT_MAX), 'the turn that scheduled them all filled one commit and spilled')
    assert.ok(COMMANDS_PER_TURN_MAX > 0)
    await runs.stop()
  })

  test('a fan-out that ends before its history is flushed still writes it in bounded commits', async (t) => {
    // On a loaded machine the HISTORY_FLUSH_MS timer can come after the whole run: the run's end
    // then writes everything queued. Held back here (mocked setTimeout), so it must happen.
    const { repo, batches } = countingCommits()
    t.mock.timers.enable({ apis: ['setTimeout'] })
    const n = HISTORY_WRITES_PER_COMMIT_MAX + 1
    const runs = service(async (task) => await compute(task), undefined, repo)
    const { runId } = await runs.startRun(WORKFLOW, 'fan', [n])
    await runs.settled(runId)
    t.mock.timers.reset()
    assert.equal(runs.report(runId).result, n)
    assert.equal(runs.report(runId).tasks.length, n, 'every task\'s row is written')
    assert.ok(batches.reduce((a, b) => a + b, 0) >= 2 * n, `every task's history was written: ${JSON.stringify(batches)}`)
    assert.ok(batches.length > 1, `more than one commit: ${JSON.stringify(batches)}`)
    assert.ok(Math.max(...batches) <= HISTORY_WRITES_PER_COMMIT_MAX, `largest commit ${Math.max(...batches)} writes`)
    await runs.stop()
  })

  test('a run this peer was driving when it stopped is reported interrupted when the service starts again', async () => {
    const repo = createRunRepo(db)
    repo.createRun({ runId: 'bafyInterrupted', workflow: WORKFLOW.toString(), export: 'A', args: dagCbor.encode([1]), status: 'running', startedMs: 1, driverPeer: '12D3KooWSelf' })
    repo.createRun({ runId: 'bafyOtherDriver', workflow: WORKFLOW.toString(), export: 'A', args: dagCbor.encode([1]), status: 'running', startedMs: 1, driverPeer: '12D3KooWOther' })
    const runs = service(async (task) => await compute(task))
    const report = runs.report('bafyInterrupted')
    assert.equal(report.status, 'failed')
    assert.equal(report.error?.code, 'ERR_RUN_INTERRUPTED')
    assert.ok(report.error?.hint !== undefined)
    assert.equal(runs.report('bafyOtherDriver').status, 'running', 'a run another peer drives is not this peer\'s to close')
    await runs.stop()
  })
})
