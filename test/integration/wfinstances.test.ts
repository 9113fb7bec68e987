/**
 * A recorded scientific workflow on real peers: montage (Pegasus, 58 tasks, 114 edges) from the
 * WfCommons WfInstances, each task consuming its parents' outputs, run as a workflow on three peers
 * through the HTTP API. The run's result must equal the graph evaluated in-process; every task
 * must have run with exactly its parents' outputs (its task id, a hash of its arguments, is the
 * one the in-process evaluation predicts) and started only after all its parents had finished;
 * and the work must spread over more than one peer.
 *
 * Before that, the loader itself (bench/workloads/graph.ts): its bounds agree with the recorded
 * INDEX.csv, and it refuses cycles, unknown parents and graphs one task past its limit.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { CID } from 'multiformats/cid'
import { taskId } from '../../src/wire/task-codec.ts'
import { TestNetwork, waitFor } from '../helpers/peers.ts'
import {
  GRAPH_TASKS_MAX, TASK_NAME_LENGTH_MAX, TASK_RUNTIME_S_MAX, bounds, deployTaskFunction, deployWorkflow, evaluate, loadGraph, parseGraph, readIndex,
  runToEnd, startRun, taskValue, wfinstancesDir, workflowBundleSource
} from '../helpers/workloads.ts'
import type { Graph } from '../helpers/workloads.ts'
import type { TestPeer } from '../helpers/peers.ts'

const MONTAGE = 'pegasus/montage/montage-chameleon-2mass-005d-001.json'
/** 1 s recorded → 0.2 ms: montage's 222 s of work becomes ~44 ms, so the run is all overhead and order. */
const MS_PER_SECOND = 0.2
const RUN_TIMEOUT_MS = 90_000

/** A WfFormat document from [name, runtime, parents] rows. */
function wf (rows: Array<[string, number, string[]]>): unknown {
  return {
    workflow: {
      specification: { tasks: rows.map(([id, , parents]) => ({ id, parents })) },
      execution: { tasks: rows.map(([id, runtimeInSeconds]) => ({ id, runtimeInSeconds })), machines: [{}] }
    }
  }
}

describe('recorded workflow graphs: the loader', () => {
  test('work and critical path agree with INDEX.csv for every recorded instance', async () => {
    const dir = wfinstancesDir()
    const index = await readIndex(dir)
    assert.ok(index.length >= 6)
    for (const row of index) {
      const graph = await loadGraph(row.path, dir)
      assert.equal(graph.tasks.length, row.tasks, row.path)
      assert.equal(graph.tasks.reduce((n, t) => n + t.parents.length, 0), row.edges, row.path)
      // 1 s → 1000 ms: the bounds in seconds, to INDEX.csv's one decimal.
      const b = bounds(graph, 1000, 1)
      assert.ok(Math.abs(b.workMs / 1000 - row.workS) <= 0.051, `${row.path}: work ${b.workMs / 1000} vs ${row.workS}`)
      assert.ok(Math.abs(b.criticalPathMs / 1000 - row.criticalPathS) <= 0.051, `${row.path}: critical path ${b.criticalPathMs / 1000} vs ${row.criticalPathS}`)
    }
  })

  test('a diamond: topological order, sinks, bounds, and the expected output', () => {
    const graph = parseGraph(wf([['d', 4, ['b', 'c']], ['b', 2, ['a']], ['c', 3, ['a']], ['a', 1, []]]), 'diamond')
    assert.deepEqual(graph.tasks.map(t => t.name), ['a', 'b', 'c', 'd'])
    assert.deepEqual(graph.sinks, ['d'])
    assert.deepEqual(bounds(graph, 1, 2), { workMs: 10, criticalPathMs: 8, lowerBoundMs: 8 })
    assert.deepEqual(bounds(graph, 1, 1).lowerBoundMs, 10)
    const a = taskValue('a', [])
    assert.equal(evaluate(graph), taskValue('sinks', [taskValue('d', [taskValue('b', [a]), taskValue('c', [a])])]))
    assert.match(a, /^[0-9a-f]{8}$/)
  })

  test('refuses a cycle, an unknown parent, a missing runtime, and one past each limit', () => {
    assert.throws(() => parseGraph(wf([['a', 1, ['c']], ['b', 1, ['a']], ['c', 1, ['b']]]), 'cycle'), { name: 'InvalidInputError', message: /cycle/ })
    assert.throws(() => parseGraph(wf([['a', 1, ['zz']]]), 'orphan'), { name: 'InvalidInputError', message: /unknown parent zz/ })
    assert.throws(() => parseGraph({ workflow: { specification: { tasks: [{ id: 'a', parents: [] }] }, execution: { tasks: [] } } }, 'no runtime'), { name: 'InvalidInputError', message: /no runtime/ })
    const chain = (n: number): Array<[string, number, string[]]> => Array.from({ length: n }, (_, i) => [`t${i}`, 0, i === 0 ? [] : [`t${i - 1}`]])
    assert.equal(parseGraph(wf(chain(GRAPH_TASKS_MAX)), 'at the limit').tasks.length, GRAPH_TASKS_MAX)
    assert.throws(() => parseGraph(wf(chain(GRAPH_TASKS_MAX + 1)), 'past the limit'), { name: 'TooLargeError' })
    const name = 'n'.repeat(TASK_NAME_LENGTH_MAX)
    assert.equal(parseGraph(wf([[name, TASK_RUNTIME_S_MAX, []]]), 'longest').tasks[0].name, name)
    assert.throws(() => parseGraph(wf([[name + 'n', 1, []]]), 'name past'), { name: 'InvalidInputError', message: /task id/ })
    assert.throws(() => parseGraph(wf([['a', TASK_RUNTIME_S_MAX + 1, []]]), 'runtime past'), { name: 'InvalidInputError', message: /no runtime/ })
  })
})

describe('a recorded workflow on three real peers', { timeout: 240_000 }, () => {
  let net: TestNetwork
  let driver: TestPeer
  let graph: Graph
  let fnId: string
  let workflow: string

  before(async () => {
    graph = await loadGraph(MONTAGE)
    net = await TestNetwork.create()
    driver = await net.addPeer(['--slots', '1'])
    const rest = await Promise.all([1, 2].map(async () => await net.addPeer(['--bootstrap', driver.tcpAddr, '--slots', '1'])))
    const peers = [driver, ...rest]
    await waitFor('all peers to see each other', async () => {
      for (const p of peers) if ((await p.peers()).filter(x => x.state === 'alive').length < peers.length - 1) return false
      return true
    }, 60_000, 200)
    fnId = await deployTaskFunction(driver, 20_000, 3)
    workflow = await deployWorkflow(driver, 'montage', workflowBundleSource(fnId, graph, MS_PER_SECOND), ['dag'])
  })
  after(async () => { await net?.close() })

  test('montage (58 tasks): the right output, every task after its parents, on more than one peer', async () => {
    const runId = await startRun(driver, workflow, 'dag', [0])
    const { report, events } = await runToEnd(driver, runId, RUN_TIMEOUT_MS)
    assert.equal(report.status, 'finished', JSON.stringify(report.error))
    assert.equal(report.result, evaluate(graph))
    assert.equal(events.get('run:task:scheduled'), graph.tasks.length)

    // Each task's id names its arguments: the in-process evaluation predicts all 58.
    const fn = CID.parse(fnId)
    const outputs = new Map<string, string>()
    const idOf = new Map<string, string>()
    for (const t of graph.tasks) {
      const inputs = t.parents.map(p => outputs.get(p)!)
      outputs.set(t.name, taskValue(t.name, inputs))
      const ms = Math.round(t.runtimeS * MS_PER_SECOND * 1000) / 1000
      idOf.set(t.name, (await taskId(fn, 'task', [t.name, ms, ...inputs])).toString())
    }
    const byId = new Map(report.tasks.map(t => [t.taskId, t]))
    assert.equal(report.tasks.length, graph.tasks.length)
    for (const t of graph.tasks) {
      const ran = byId.get(idOf.get(t.name)!)
      assert.ok(ran !== undefined, `${t.name} ran with exactly its parents' outputs`)
      assert.equal(ran.status, 'accepted')
      assert.ok(ran.startedMs !== undefined && ran.finishedMs !== undefined && ran.startedMs <= ran.finishedMs, `${t.name} has its times`)
      for (const p of t.parents) {
        const parent = byId.get(idOf.get(p)!)!
        assert.ok(ran.startedMs >= parent.finishedMs!, `${t.name} started at ${ran.startedMs}, before its parent ${p} finished at ${parent.finishedMs}`)
      }
    }
    const peers = new Set(report.tasks.map(t => t.peer))
    assert.ok(peers.size >= 2, `all 58 tasks ran on ${[...peers].join(', ')}`)
  })
})
