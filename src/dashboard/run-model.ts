/**
 * One run as the dashboard draws it: its tasks (state, peer, times), the dependencies between
 * them and its critical path, merged from the run's report (`GET /v1/runs/:id`) and its progress
 * events (`/v1/runs/:id/events`) in whatever order they arrive. No DOM here: the views read it,
 * tests feed it.
 *
 * A task's state only moves forward (queued → running → done | failed): the report and the
 * replayed events describe the same run at different moments, and the later word wins. The one
 * way back is a new attempt of a failed task (the driver retries it on another peer).
 */
import type { ProgressEvent } from '../api/events.ts'
import type { RunReport, RunStatus, RunTaskReport } from '../api/types.ts'

export type TaskState = 'queued' | 'running' | 'done' | 'failed'

export interface TaskNode {
  taskId: string
  fn: string
  export: string
  state: TaskState
  /** The peer that ran it (or runs it now). */
  peer?: string
  attempt: number
  /** The tasks whose results the code had when it asked for this one (the last DAG_DEPS_PER_TASK_MAX delivered). */
  deps: string[]
  /** Dependencies not kept (past DAG_DEPS_PER_TASK_MAX). */
  depsOmitted: number
  /** Whether `deps` is what the task depended on, not just unknown: false until the report or a
   *  scheduled event names them (a peer recorded tasks without their dependencies before it kept them). */
  depsKnown: boolean
  queuedMs: number
  startedMs?: number
  finishedMs?: number
  error?: string
}

/**
 * Tasks of one run the dashboard keeps and draws. dagre lays out 1,000 tasks in ~0.7 s on a slow
 * core (200 in ~0.2 s), and a page that freezes for longer on every new task is not live; a run
 * with more tasks shows its first 1,000 and says how many more it has.
 */
export const DAG_TASKS_MAX = 1000

/**
 * Dependencies drawn per task. A task asked for after a fan-in of 200 results depends on all
 * 200; drawing each edge costs the layout more than the rest of the graph (200 tasks with
 * 2,000 edges took dagre ~1 s) and shows a solid wedge. The last 8 delivered show what it waited
 * for; the task's tooltip counts the rest.
 */
export const DAG_DEPS_PER_TASK_MAX = 8

/** Ids of tasks past DAG_TASKS_MAX kept so each is counted once (the report and the events both
 *  name it): 100,000 ids is ~7 MB of strings; past that the count says "at least". */
export const OMITTED_IDS_MAX = 100_000

const RANK: Record<TaskState, number> = { queued: 0, running: 1, done: 2, failed: 2 }

const STATE_OF_REPORT: Record<RunTaskReport['status'], TaskState> = {
  scheduled: 'queued',
  running: 'running',
  accepted: 'done',
  failed: 'failed',
  cancelled: 'failed'
}

export class RunModel {
  readonly runId: string
  status: RunStatus | undefined
  workflow: string | undefined
  exportName: string | undefined
  driver: string | undefined
  startedMs: number | undefined
  finishedMs: number | undefined
  error: string | undefined
  readonly tasks = new Map<string, TaskNode>()
  /** Tasks of the run past DAG_TASKS_MAX: counted, not kept. */
  tasksOmitted = 0
  criticalPath: string[] = []
  criticalPathMs: number | undefined
  /** Bumped when a task or a dependency is added: the layout is redone only then. */
  shapeVersion = 0
  /** Bumped on every change: the views redraw only then. */
  version = 0
  private readonly omitted = new Set<string>()

  constructor (runId: string) {
    this.runId = runId
  }

  get finished (): boolean {
    return this.status !== undefined && this.status !== 'created' && this.status !== 'running'
  }

  applyReport (report: RunReport): void {
    this.status = report.status
    this.workflow = report.workflow
    this.exportName = report.export
    this.driver = report.driver
    this.startedMs = report.startedMs
    this.finishedMs = report.finishedMs
    this.error = report.error === undefined ? undefined : `${report.error.code}: ${report.error.message}`
    for (const t of report.tasks) {
      const node = this.add(t.taskId, t.fn, t.export, t.queuedMs, t.deps, t.depsCount)
      if (node === undefined) continue
      this.advance(node, STATE_OF_REPORT[t.status], { peer: t.peer, startedMs: t.startedMs, finishedMs: t.finishedMs })
      node.attempt = Math.max(node.attempt, t.attempt)
      if (t.error !== undefined) node.error = `${t.error.code}: ${t.error.message}`
    }
    if (report.criticalPath !== undefined) {
      this.criticalPath = report.criticalPath.taskIds
      this.criticalPathMs = report.criticalPath.ms
    }
    this.version++
  }

  /** Apply one of the run's progress events; false if it was not about this run. */
  applyEvent (event: ProgressEvent): boolean {
    if (!('runId' in event) || event.runId !== this.runId) return false
    switch (event.type) {
      case 'run:started':
        this.status ??= 'running'
        this.startedMs ??= event.atMs
        break
      case 'run:task:scheduled':
        this.add(event.taskId, event.fn, event.export, event.atMs, event.deps, event.depsCount)
        break
      case 'run:task:started': {
        const node = this.tasks.get(event.taskId)
        if (node !== undefined) {
          // A failed attempt is tried again elsewhere: a later attempt runs it once more.
          if (node.state === 'failed' && (event.attempt > node.attempt || event.atMs > (node.finishedMs ?? Infinity))) {
            node.state = 'running'
            node.finishedMs = undefined
          }
          node.attempt = Math.max(node.attempt, event.attempt)
          this.advance(node, 'running', { peer: event.peer, startedMs: event.atMs })
        }
        break
      }
      case 'run:task:done': {
        const node = this.tasks.get(event.taskId)
        if (node !== undefined) this.advance(node, 'done', { peer: event.peer, finishedMs: event.atMs })
        break
      }
      case 'run:task:failed': {
        const node = this.tasks.get(event.taskId)
        if (node !== undefined) {
          this.advance(node, 'failed', { finishedMs: event.atMs })
          node.error = `${event.error.code}: ${event.error.message}`
        }
        break
      }
      case 'run:finished':
        this.status = event.status
        this.finishedMs = event.atMs
        if (event.error !== undefined) this.error = `${event.error.code}: ${event.error.message}`
        break
      default:
        return true
    }
    this.version++
    return true
  }

  /** The tasks in the order they were asked for. */
  list (): TaskNode[] {
    return [...this.tasks.values()]
  }

  /** The peers that ran (or run) its tasks, in a fixed order: the views color them alike. */
  peers (): string[] {
    const peers = new Set<string>()
    for (const t of this.tasks.values()) if (t.peer !== undefined && t.startedMs !== undefined) peers.add(t.peer)
    return [...peers].sort()
  }

  counts (): Record<TaskState, number> {
    const counts: Record<TaskState, number> = { queued: 0, running: 0, done: 0, failed: 0 }
    for (const t of this.tasks.values()) counts[t.state]++
    return counts
  }

  /** Whether some task's dependencies are unknown (recorded by a peer before it kept them, and
   *  no scheduled event seen): the DAG cannot join those tasks. */
  get depsMissing (): boolean {
    for (const t of this.tasks.values()) if (!t.depsKnown) return true
    return false
  }

  private add (taskId: string, fn: string, exportName: string, queuedMs: number, deps: string[] | undefined, depsCount = deps?.length ?? 0): TaskNode | undefined {
    const known = this.tasks.get(taskId)
    if (known !== undefined) {
      // An older peer's report has no dependencies; the scheduled event that follows it does.
      if (deps !== undefined && (!known.depsKnown || (known.deps.length === 0 && deps.length > 0))) {
        const grew = deps.length > 0
        this.keepDeps(known, deps, depsCount)
        if (grew) this.shapeVersion++
      }
      return known
    }
    if (this.tasks.size >= DAG_TASKS_MAX) {
      if (!this.omitted.has(taskId) && this.omitted.size < OMITTED_IDS_MAX) {
        this.omitted.add(taskId)
        this.tasksOmitted = this.omitted.size
      }
      return undefined
    }
    const node: TaskNode = { taskId, fn, export: exportName, state: 'queued', attempt: 0, deps: [], depsOmitted: 0, depsKnown: false, queuedMs }
    if (deps !== undefined) this.keepDeps(node, deps, depsCount)
    this.tasks.set(taskId, node)
    this.shapeVersion++
    return node
  }

  /** The last delivered are kept: the ones the task waited for. */
  private keepDeps (node: TaskNode, deps: string[], depsCount: number): void {
    node.deps = deps.slice(-DAG_DEPS_PER_TASK_MAX)
    node.depsOmitted = Math.max(depsCount, deps.length) - node.deps.length
    node.depsKnown = true
  }

  private advance (node: TaskNode, state: TaskState, at: { peer?: string, startedMs?: number, finishedMs?: number }): void {
    if (at.peer !== undefined && RANK[state] >= RANK[node.state]) node.peer = at.peer
    if (at.startedMs !== undefined && (state === 'running' || node.startedMs === undefined)) node.startedMs = at.startedMs
    if (at.finishedMs !== undefined) node.finishedMs = at.finishedMs
    if (RANK[state] >= RANK[node.state]) node.state = state
  }
}
