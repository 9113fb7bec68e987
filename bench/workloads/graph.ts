/**
 * Recorded scientific workflows (WfCommons WfInstances, WfFormat 1.5) as task graphs for Rhizome's
 * workflow tests and benchmarks: load an instance, validate it, compute its lower bound, and
 * generate what runs it — a function module with one `task` function, and a workflow bundle that
 * calls `task` once per graph node as soon as the node's parents have answered.
 *
 * Each task is `task(name, ms, ...parentOutputs)`: it burns about `ms` of CPU (its recorded
 * runtime, scaled) and returns a short string hashed from its name and its inputs, so the
 * workflow's result — the hash of its sinks' outputs — changes if any task ran with a missing,
 * extra or reordered input. `evaluate` computes the same result in-process: the expected output.
 *
 * The instances live outside the repository, in `../shared/workloads/wfinstances` relative to its
 * root (README.md there describes the format and the bound).
 */
import { existsSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { InvalidInputError, NotFoundError, TooLargeError } from '../../src/model/errors.ts'

/** The repository's root (this file is bench/workloads/graph.ts). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/**
 * Largest instance file read: the biggest of the 22 recorded instances is 3.4 MB (montage, 1,738
 * tasks); 32 MiB leaves room for larger ones while refusing a file that is not a workflow.
 */
export const WFINSTANCE_FILE_BYTES_MAX = 32 * 1024 * 1024
/**
 * Most tasks in one graph: a workflow run may issue at most 10,000 calls (the run driver's
 * `commandsMax`, src/protocol/run/constants.ts), and each node is one call.
 */
export const GRAPH_TASKS_MAX = 10_000
/** Longest task name: names travel in every call's arguments; the recorded ones are ≤ 104 characters. */
export const TASK_NAME_LENGTH_MAX = 256
/**
 * Longest recorded runtime accepted, in seconds (a week): the recorded ones are ≤ 2,600 s; a
 * larger number is a broken file, and at 1 s → 1 ms it would be a task longer than a sandbox allows.
 */
export const TASK_RUNTIME_S_MAX = 7 * 24 * 3600

/** One node: its id, its recorded runtime, and the ids of the nodes whose outputs it consumes. */
export interface GraphTask {
  name: string
  runtimeS: number
  parents: string[]
}

/** A validated graph, its tasks in a topological order (every parent before its children). */
export interface Graph {
  /** The instance's path relative to the workloads folder (or a label). */
  label: string
  tasks: GraphTask[]
  /** Names of the tasks no other task consumes, sorted. */
  sinks: string[]
  /** Machines recorded in the run (0 for Nextflow instances: only the critical path bounds them). */
  machines: number
}

/** Names another folder holding the recorded instances (with their INDEX.csv). */
export const WFINSTANCES_ENV = 'RHIZOME_WFINSTANCES'

/**
 * Where the recorded instances are: `$RHIZOME_WFINSTANCES` if set, else
 * `../shared/workloads/wfinstances` from the repository's root; a clear error when missing.
 */
export function wfinstancesDir (root = REPO_ROOT): string {
  const dir = process.env[WFINSTANCES_ENV] ?? resolve(root, '..', 'shared', 'workloads', 'wfinstances')
  if (!existsSync(join(dir, 'INDEX.csv'))) {
    throw new NotFoundError(`the recorded workflows (INDEX.csv and the instances) are not at ${dir}`, {
      hint: `put the shared workloads beside the repository (../shared/workloads/wfinstances), as CI does, or name their folder in ${WFINSTANCES_ENV}`
    })
  }
  return dir
}

/** One row of INDEX.csv. */
export interface IndexRow {
  path: string
  tasks: number
  edges: number
  workS: number
  criticalPathS: number
  recordedMakespanS: number
  machines: number
}

export async function readIndex (dir = wfinstancesDir()): Promise<IndexRow[]> {
  const lines = (await readFile(join(dir, 'INDEX.csv'), 'utf8')).trim().split('\n')
  const header = lines[0].split(',')
  const want = ['path', 'tasks', 'edges', 'work_s', 'critical_path_s', 'recorded_makespan_s', 'machines']
  for (const column of want) if (!header.includes(column)) throw new InvalidInputError(`INDEX.csv has no column ${column}`, { hint: `expected the columns ${want.join(', ')}` })
  return lines.slice(1).map(line => {
    const cells = line.split(',')
    const get = (column: string): string => cells[header.indexOf(column)]
    return {
      path: get('path'),
      tasks: Number(get('tasks')),
      edges: Number(get('edges')),
      workS: Number(get('work_s')),
      criticalPathS: Number(get('critical_path_s')),
      recordedMakespanS: Number(get('recorded_makespan_s')),
      machines: Number(get('machines'))
    }
  })
}

/** Read and validate the instance at `path` (relative to the workloads folder, or absolute). */
export async function loadGraph (path: string, dir = wfinstancesDir()): Promise<Graph> {
  const file = resolve(dir, path)
  const size = (await stat(file)).size
  if (size > WFINSTANCE_FILE_BYTES_MAX) throw new TooLargeError(`the instance ${path}`, size, WFINSTANCE_FILE_BYTES_MAX)
  return parseGraph(JSON.parse(await readFile(file, 'utf8')), path)
}

interface WfSpecTask { id?: unknown, parents?: unknown }
interface WfExecTask { id?: unknown, runtimeInSeconds?: unknown }

/** A WfFormat document → a validated graph: known parents, no duplicates, no cycle, bounded size. */
export function parseGraph (doc: unknown, label: string): Graph {
  const bad = (why: string): InvalidInputError => new InvalidInputError(`${label}: ${why}`, { hint: 'expected a WfFormat 1.5 instance (workflow.specification.tasks, workflow.execution.tasks)' })
  const workflow = (doc as { workflow?: { specification?: { tasks?: unknown }, execution?: { tasks?: unknown, machines?: unknown } } })?.workflow
  const specTasks = workflow?.specification?.tasks
  const execTasks = workflow?.execution?.tasks
  if (!Array.isArray(specTasks) || !Array.isArray(execTasks)) throw bad('no specification or execution task list')
  if (specTasks.length === 0) throw bad('no tasks')
  if (specTasks.length > GRAPH_TASKS_MAX) throw new TooLargeError(`${label}: the graph's task count`, specTasks.length, GRAPH_TASKS_MAX, { hint: 'a run issues at most 10,000 calls; split the graph' })
  const runtimes = new Map<string, number>()
  for (const t of execTasks as WfExecTask[]) {
    if (typeof t?.id === 'string' && typeof t.runtimeInSeconds === 'number') runtimes.set(t.id, t.runtimeInSeconds)
  }
  const tasks: GraphTask[] = []
  const names = new Set<string>()
  for (const t of specTasks as WfSpecTask[]) {
    const name = t?.id
    if (typeof name !== 'string' || name.length === 0 || name.length > TASK_NAME_LENGTH_MAX) throw bad(`a task id is not a string of 1 to ${TASK_NAME_LENGTH_MAX} characters`)
    if (names.has(name)) throw bad(`the task ${name} appears twice`)
    names.add(name)
    const runtimeS = runtimes.get(name)
    if (runtimeS === undefined || !Number.isFinite(runtimeS) || runtimeS < 0 || runtimeS > TASK_RUNTIME_S_MAX) throw bad(`the task ${name} has no runtime between 0 and ${TASK_RUNTIME_S_MAX} s`)
    const parents = t.parents ?? []
    if (!Array.isArray(parents) || parents.some(p => typeof p !== 'string')) throw bad(`the task ${name} has parents that are not a list of ids`)
    if (new Set(parents).size !== parents.length) throw bad(`the task ${name} lists a parent twice`)
    tasks.push({ name, runtimeS, parents: parents as string[] })
  }
  for (const t of tasks) for (const p of t.parents) if (!names.has(p)) throw bad(`the task ${t.name} names an unknown parent ${p}`)
  const machines = workflow?.execution?.machines
  return { label, tasks: topologicalOrder(tasks, label), sinks: sinksOf(tasks), machines: Array.isArray(machines) ? machines.length : 0 }
}

/** Kahn's algorithm, ready tasks taken in file order; a cycle is named by one task on it. */
function topologicalOrder (tasks: GraphTask[], label: string): GraphTask[] {
  const waiting = new Map(tasks.map(t => [t.name, t.parents.length]))
  const children = new Map<string, string[]>(tasks.map(t => [t.name, []]))
  for (const t of tasks) for (const p of t.parents) children.get(p)!.push(t.name)
  const byName = new Map(tasks.map(t => [t.name, t]))
  const ready = tasks.filter(t => t.parents.length === 0).map(t => t.name)
  const order: GraphTask[] = []
  for (let i = 0; i < ready.length; i++) {
    order.push(byName.get(ready[i])!)
    for (const c of children.get(ready[i])!) {
      const left = waiting.get(c)! - 1
      waiting.set(c, left)
      if (left === 0) ready.push(c)
    }
  }
  if (order.length !== tasks.length) {
    const stuck = tasks.find(t => waiting.get(t.name)! > 0)!
    throw new InvalidInputError(`${label}: the tasks form a cycle (through ${stuck.name})`, { hint: 'a workflow graph must be acyclic: check the parents lists' })
  }
  return order
}

function sinksOf (tasks: GraphTask[]): string[] {
  const consumed = new Set(tasks.flatMap(t => t.parents))
  return tasks.map(t => t.name).filter(n => !consumed.has(n)).sort()
}

/** A recorded runtime scaled to milliseconds, rounded to the microsecond (the same rounding in bench/dask/graphs.py). */
export function scaledMs (runtimeS: number, msPerSecond: number): number {
  return Math.round(runtimeS * msPerSecond * 1000) / 1000
}

export interface Bounds {
  /** Sum of all tasks' scaled runtimes. */
  workMs: number
  /** The longest chain of dependent tasks, scaled. */
  criticalPathMs: number
  /** max(critical path, work ÷ workers): no schedule on `workers` workers finishes sooner. */
  lowerBoundMs: number
}

export function bounds (graph: Graph, msPerSecond: number, workers: number): Bounds {
  const finish = new Map<string, number>()
  let workMs = 0
  let criticalPathMs = 0
  for (const t of graph.tasks) {
    const ms = scaledMs(t.runtimeS, msPerSecond)
    workMs += ms
    const end = Math.max(0, ...t.parents.map(p => finish.get(p)!)) + ms
    finish.set(t.name, end)
    criticalPathMs = Math.max(criticalPathMs, end)
  }
  return { workMs, criticalPathMs, lowerBoundMs: Math.max(criticalPathMs, workMs / workers) }
}

// ---------------------------------------------------------------------------------------------
// What runs the graph

/** FNV-1a, 32 bits, over the string's UTF-16 code units (ASCII names: its bytes), as 8 hex digits. */
const FNV_SOURCE = `function fnv1a (text) {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0
  return h.toString(16).padStart(8, '0')
}
function taskValue (name, inputs) { return fnv1a(name + '(' + inputs.join(',') + ')') }`

// The same functions in this process, from the same source, so the expected output cannot drift.
const { taskValue } = new Function(`${FNV_SOURCE}\nreturn { taskValue }`)() as { taskValue: (name: string, inputs: string[]) => string }
export { taskValue }

/**
 * Loop iterations per millisecond of the burn loop on a typical x64 core (Node 24); benchmarks
 * measure their own with `calibrateBurn` — this default only sizes tests' (tiny) busy work.
 */
export const BURN_ITERATIONS_PER_MS_DEFAULT = 200_000

const BURN_SOURCE = `function burn (iterations) {
  let n = 0
  for (let i = 0; i < iterations; i++) n = (n + i) % 1000003
  return n
}`

/**
 * The function module: `task(name, ms, ...inputs)` burns `ms` × `iterationsPerMs` loop iterations
 * (no clock inside a sandbox: the amount of work is fixed, not the time) and returns
 * `taskValue(name, inputs)`; `spin(iterations)` is the bare loop, for calibration.
 */
export function functionModuleSource (iterationsPerMs = BURN_ITERATIONS_PER_MS_DEFAULT): string {
  return `// Generated: one task function for recorded workflow graphs.
${FNV_SOURCE}
${BURN_SOURCE}
export function task (name, ms, ...inputs) {
  if (burn(Math.round(ms * ${iterationsPerMs})) < 0) throw new Error('unreachable')
  return taskValue(name, inputs)
}
export function spin (iterations) { return burn(iterations) }
`
}

/** Iterations of the burn loop per ms in this process, measured over `sampleMs` (steady state). */
export function calibrateBurn (sampleMs = 200): number {
  const burn = new Function(`${BURN_SOURCE}\nreturn burn`)() as (iterations: number) => number
  burn(1_000_000) // tier up
  let iterations = 1_000_000
  for (;;) {
    const start = performance.now()
    burn(iterations)
    const ms = performance.now() - start
    if (ms >= sampleMs) return Math.round(iterations / ms)
    iterations = Math.ceil(iterations * Math.min(10, 1.5 * sampleMs / Math.max(ms, 0.1)))
  }
}

/** Semaphore used by the bundles: at most `max` calls in flight (0: no bound), FIFO. */
const LIMITER_SOURCE = `function limiter (max) {
  let active = 0
  const waiting = []
  return async (fn) => {
    if (max > 0 && active >= max) await new Promise(resolve => waiting.push(resolve))
    active++
    try { return await fn() } finally {
      active--
      const next = waiting.shift()
      if (next !== undefined) next()
    }
  }
}`

/**
 * The workflow bundle for one graph, runtimes scaled by `msPerSecond`: export `dag(inflightMax)`
 * starts each task once all its parents' outputs are in (a promise per task: its parents' promises,
 * then the call), at most `inflightMax` calls in flight (0: no bound), and returns
 * `taskValue('sinks', sink outputs in name order)`.
 */
export function workflowBundleSource (fnId: string, graph: Graph, msPerSecond: number): string {
  const index = new Map(graph.tasks.map((t, i) => [t.name, i]))
  const rows = graph.tasks.map(t => [t.name, scaledMs(t.runtimeS, msPerSecond), t.parents.map(p => index.get(p)!)])
  const sinks = graph.sinks.map(s => index.get(s)!)
  return `// Generated workflow bundle: ${graph.label}, ${graph.tasks.length} tasks, 1 s recorded → ${msPerSecond} ms.
import { workflow, remote } from 'rhizome:workflow'
${FNV_SOURCE}
${LIMITER_SOURCE}
const task = remote(${JSON.stringify(fnId)}, 'task')
// [name, ms, parent indices], parents first.
const TASKS = ${JSON.stringify(rows)}
const SINKS = ${JSON.stringify(sinks)}

export const dag = workflow(async (inflightMax) => {
  const limit = limiter(inflightMax)
  const outputs = []
  for (const [name, ms, parents] of TASKS) {
    outputs.push(Promise.all(parents.map(p => outputs[p])).then(inputs => limit(() => task(name, ms, ...inputs))))
  }
  return taskValue('sinks', await Promise.all(SINKS.map(i => outputs[i])))
})
`
}

/** `dag`'s result computed here, without burning: what a correct run must return. */
export function evaluate (graph: Graph): string {
  const outputs = new Map<string, string>()
  for (const t of graph.tasks) outputs.set(t.name, taskValue(t.name, t.parents.map(p => outputs.get(p)!)))
  return taskValue('sinks', graph.sinks.map(s => outputs.get(s)!))
}

/**
 * The micro-benchmark bundle: `chain(hops)` calls no-op tasks one after another, each on the
 * last one's output; `fan(total, batch, inflightMax)` runs `total` independent no-op tasks as
 * child runs of `batch` each (one run issues at most 10,000 calls, one activation 4,096).
 */
export function microBundleSource (fnId: string): string {
  return `// Generated workflow bundle: no-op chains and fan-outs.
import { workflow, remote } from 'rhizome:workflow'
${FNV_SOURCE}
${LIMITER_SOURCE}
const task = remote(${JSON.stringify(fnId)}, 'task')

export const chain = workflow(async (hops) => {
  let x = 'start'
  for (let i = 0; i < hops; i++) x = await task('hop' + i, 0, x)
  return x
})

export const batch = workflow(async (from, n, inflightMax) => {
  const limit = limiter(inflightMax)
  const outputs = await Promise.all(Array.from({ length: n }, (_, i) => limit(() => task('noop' + (from + i), 0))))
  return taskValue('batch' + from, outputs)
})

export const fan = workflow(async (total, size, inflightMax) => {
  const parts = []
  for (let from = 0; from < total; from += size) parts.push(batch(from, Math.min(size, total - from), inflightMax))
  return taskValue('fan', await Promise.all(parts))
})
`
}

/** `chain(hops)`'s expected result. */
export function evaluateChain (hops: number): string {
  let x = 'start'
  for (let i = 0; i < hops; i++) x = taskValue(`hop${i}`, [x])
  return x
}
