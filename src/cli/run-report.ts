/**
 * How the CLI shows workflow runs: the live progress of one run (from its events), its report
 * at the end (result, which peer ran which task and when, the critical path), and the list of
 * runs. Pure functions of API data, so their output is tested from canned reports.
 */
import { RhizomeError, failureFromData } from '../model/errors.ts'
import type { ProgressEvent } from '../api/events.ts'
import type { RunReport, RunSummary, RunTaskReport } from '../api/types.ts'

/** A peer id shortened for tables: its start (the key type) and its end (where ids differ). */
export function shortPeer (peer: string): string {
  return peer.length <= 16 ? peer : `${peer.slice(0, 8)}…${peer.slice(-6)}`
}

/** A CID shortened for tables; the full one is in `--json`. */
export function shortCid (cid: string): string {
  return cid.length <= 20 ? cid : `${cid.slice(0, 10)}…${cid.slice(-6)}`
}

interface TaskState { export: string, state: 'scheduled' | 'running' | 'done' | 'failed', peer?: string }

/** Cells of the progress bar: fits an 80-column terminal with the counts beside it. */
export const PROGRESS_BAR_CELLS = 20
/** Peers listed under the bar: a screenful stays readable; the rest are counted on one line. */
export const PROGRESS_PEERS_SHOWN = 8

/**
 * A run's progress, from its events: the counts for a progress line, and a line per task start
 * and finish for output that is not a terminal.
 */
export class RunProgress {
  private readonly tasks = new Map<string, TaskState>()

  /** Feed one event; answers the lines to print for it when the output is not a terminal. */
  handle (event: ProgressEvent): string[] {
    switch (event.type) {
      case 'run:task:scheduled':
        if (!this.tasks.has(event.taskId)) this.tasks.set(event.taskId, { export: event.export, state: 'scheduled' })
        return []
      case 'run:task:started': {
        const task = this.task(event.taskId)
        task.state = 'running'
        task.peer = event.peer
        return [`started  ${task.export} on ${shortPeer(event.peer)}${event.attempt > 1 ? ` (attempt ${event.attempt})` : ''}`]
      }
      case 'run:task:done': {
        const task = this.task(event.taskId)
        task.state = 'done'
        task.peer = event.peer
        return [`done     ${task.export} on ${shortPeer(event.peer)} in ${Math.round(event.ms)} ms`]
      }
      case 'run:task:failed': {
        const task = this.task(event.taskId)
        task.state = 'failed'
        return [`failed   ${task.export}: ${event.error.name}: ${event.error.message}`]
      }
      case 'run:timer:started':
        return [`sleeping until ${new Date(event.wakeAtMs).toISOString()} (${event.timerId})`]
      case 'run:timer:fired':
        return [`woke     (${event.timerId})`]
      case 'run:signal:received':
        return [`signal   ${event.name} (${event.bytes} bytes)`]
      case 'run:finished':
        return event.status === 'continued' && event.continuedAs !== undefined ? [`continued as run ${event.continuedAs}`] : []
      default:
        return []
    }
  }

  /** The progress line: tasks scheduled, running and done, and the peers running them. */
  line (): string {
    let running = 0
    let done = 0
    let failed = 0
    const peers = new Set<string>()
    for (const task of this.tasks.values()) {
      if (task.state === 'running') running++
      if (task.state === 'done') done++
      if (task.state === 'failed') failed++
      if (task.state === 'running' && task.peer !== undefined) peers.add(task.peer)
    }
    const shown = [...peers].sort().slice(0, 3).map(shortPeer)
    const on = peers.size === 0 ? '' : ` on ${peers.size} peer${peers.size === 1 ? '' : 's'} (${shown.join(', ')}${peers.size > shown.length ? ', …' : ''})`
    return `tasks: ${this.tasks.size} scheduled, ${running} running${on}, ${done} done${failed > 0 ? `, ${failed} failed` : ''}`
  }

  /**
   * The live bar: a summary line (a bar of the tasks settled, then done / running / queued), and a
   * line per peer that ran or runs a task — how many it runs now and has done — busiest first, at
   * most PROGRESS_PEERS_SHOWN of them.
   */
  barLines (): string[] {
    const counts = { scheduled: 0, running: 0, done: 0, failed: 0 }
    const peers = new Map<string, { running: number, done: number }>()
    for (const task of this.tasks.values()) {
      counts[task.state]++
      if (task.peer === undefined || (task.state !== 'running' && task.state !== 'done')) continue
      const peer = peers.get(task.peer) ?? { running: 0, done: 0 }
      peer[task.state]++
      peers.set(task.peer, peer)
    }
    const total = this.tasks.size
    const settled = counts.done + counts.failed
    const filled = total === 0 ? 0 : Math.floor(PROGRESS_BAR_CELLS * settled / total)
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(PROGRESS_BAR_CELLS - filled)}]`
    const lines = [`tasks ${bar} ${settled}/${total}: ${counts.done} done, ${counts.running} running, ${counts.scheduled} queued${counts.failed > 0 ? `, ${counts.failed} failed` : ''}`]
    const ranked = [...peers].sort(([pa, a], [pb, b]) => b.running - a.running || b.done - a.done || (pa < pb ? -1 : 1))
    for (const [peer, c] of ranked.slice(0, PROGRESS_PEERS_SHOWN)) lines.push(`  ${shortPeer(peer).padEnd(15)}  ${c.running} running, ${c.done} done`)
    const more = ranked.length - PROGRESS_PEERS_SHOWN
    if (more > 0) lines.push(`  … and ${more} more peer${more === 1 ? '' : 's'}`)
    return lines
  }

  private task (taskId: string): TaskState {
    let task = this.tasks.get(taskId)
    if (task === undefined) {
      // Events were dropped (a slow reader): the task is counted, by id, from what is known now.
      task = { export: taskId.slice(-8), state: 'scheduled' }
      this.tasks.set(taskId, task)
    }
    return task
  }
}

/** Milliseconds from the run's start, for the task table. */
function since (report: RunReport, ms: number | undefined): string {
  return ms === undefined ? '-' : String(Math.max(0, Math.round(ms - report.startedMs)))
}

function table (rows: string[][], rightAligned: Set<number>): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map(r => r[i].length)))
  return rows.map(r => r.map((cell, i) => rightAligned.has(i) ? cell.padStart(widths[i]) : cell.padEnd(widths[i])).join('  ').trimEnd())
}

/** Which peer ran which task, and when: queued → started → finished, in ms since the run started. */
export function taskTable (report: RunReport): string[] {
  if (report.tasks.length === 0) return []
  const tasks = [...report.tasks].sort((a, b) => a.queuedMs - b.queuedMs || (a.startedMs ?? Infinity) - (b.startedMs ?? Infinity) || (a.taskId < b.taskId ? -1 : 1))
  // Verification's column, when any other peer answered for a task: quorum members and spot
  // checks that agreed, and answers that did not.
  const verified = tasks.some(t => t.agreed !== undefined || t.disagreed !== undefined)
  const rows = [['task', 'peer', 'queued', 'started', 'finished', 'status', ...(verified ? ['checked by'] : [])]]
  for (const t of tasks) {
    const row = [t.export, t.peer === undefined ? '-' : shortPeer(t.peer), since(report, t.queuedMs), since(report, t.startedMs), since(report, t.finishedMs), taskStatus(t)]
    if (verified) row.push(checkedBy(t))
    rows.push(row)
  }
  return table(rows, new Set([2, 3, 4]))
}

/** `2 agreed`, `1 disagreed (12D3Koo…abc123)`: who else answered for the task. */
function checkedBy (t: RunTaskReport): string {
  const parts: string[] = []
  if (t.agreed !== undefined) parts.push(`${t.agreed.length} agreed`)
  if (t.disagreed !== undefined) parts.push(`${t.disagreed.length} disagreed (${t.disagreed.map(shortPeer).join(', ')})`)
  return parts.length === 0 ? '-' : parts.join(', ')
}

function taskStatus (t: RunTaskReport): string {
  const attempt = t.attempt > 1 ? ` (attempt ${t.attempt})` : ''
  return t.status === 'failed' && t.error !== undefined ? `failed: ${t.error.name}${attempt}` : `${t.status}${attempt}`
}

/** Columns of the timeline chart. */
const TIMELINE_WIDTH = 48
/** Peers shown in the timeline; a run on more peers shows the busiest. */
const TIMELINE_PEERS_MAX = 16

/**
 * Each peer's tasks on one time axis (since the run started), so tasks that ran at the same
 * moment on different peers line up:
 *
 *   12D3KooW…aaaaaa  |██████████████          |  B
 *   12D3KooW…bbbbbb  |█████████████           |  C
 */
export function timeline (report: RunReport): string[] {
  const ran = report.tasks.filter(t => t.peer !== undefined && t.startedMs !== undefined && t.finishedMs !== undefined)
  if (ran.length === 0) return []
  const start = report.startedMs
  const end = Math.max(report.finishedMs ?? 0, ...ran.map(t => t.finishedMs!))
  const span = Math.max(1, end - start)
  const column = (ms: number): number => Math.min(TIMELINE_WIDTH - 1, Math.floor((ms - start) / span * TIMELINE_WIDTH))
  const byPeer = new Map<string, typeof ran>()
  for (const t of ran) byPeer.set(t.peer!, [...(byPeer.get(t.peer!) ?? []), t])
  const peers = [...byPeer.entries()].sort((a, b) => b[1].length - a[1].length).slice(0, TIMELINE_PEERS_MAX)
  const lines = [`timeline, 0 to ${Math.round(span)} ms:`]
  for (const [peer, tasks] of peers.sort((a, b) => a[0] < b[0] ? -1 : 1)) {
    const cells = Array.from({ length: TIMELINE_WIDTH }, () => ' ')
    for (const t of tasks) for (let c = column(t.startedMs!); c <= column(t.finishedMs!); c++) cells[c] = '█'
    const names = [...new Set(tasks.map(t => t.export))]
    lines.push(`${shortPeer(peer)}  |${cells.join('')}|  ${tasks.length === 1 ? names[0] : `${tasks.length} tasks (${names.slice(0, 3).join(', ')}${names.length > 3 ? ', …' : ''})`}`)
  }
  return lines
}

/** The critical path by export names: `B → C (40 ms)`. */
export function criticalPathLine (report: RunReport): string | undefined {
  const path = report.criticalPath
  if (path === undefined || path.taskIds.length === 0) return undefined
  const byId = new Map(report.tasks.map(t => [t.taskId, t.export]))
  return `${path.taskIds.map(id => byId.get(id) ?? shortCid(id)).join(' → ')} (${Math.round(path.ms)} ms)`
}

/**
 * A run's report as the CLI prints it: the result as JSON on the first line (so `| head -1`
 * gets it), then the run, the task table and the critical path.
 */
export function formatRunReport (report: RunReport): string {
  const lines: string[] = []
  if (report.status === 'finished') lines.push(JSON.stringify(report.result ?? null))
  const took = report.finishedMs !== undefined ? ` in ${Math.round(report.finishedMs - report.startedMs)} ms` : ''
  const peers = new Set(report.tasks.map(t => t.peer).filter(p => p !== undefined))
  lines.push(
    `  run            ${report.runId}`,
    `  status         ${report.status}${took}`,
    `  workflow       ${report.export} of ${report.workflow}`,
    `  driven by      ${report.driver}`,
    `  tasks          ${report.tasks.length} on ${peers.size} peer${peers.size === 1 ? '' : 's'}`
  )
  const critical = criticalPathLine(report)
  if (critical !== undefined) lines.push(`  critical path  ${critical}`)
  const checked = report.verification
  if (checked !== undefined) {
    const replaced = checked.disproven.length
    lines.push(`  checked        ${checked.checks} result${checked.checks === 1 ? '' : 's'} checked again after use; ${replaced === 0 ? 'none wrong' : `${replaced} wrong, replaced (the run replayed on the right ones)`}`)
  }
  if (report.continuedAs !== undefined) lines.push(`  continued as   ${report.continuedAs}`)
  if (report.error !== undefined) lines.push(`  error          ${report.error.name}: ${report.error.message}`)
  const chart = timeline(report)
  if (chart.length > 0) lines.push('', ...chart.map(r => `  ${r}`))
  const rows = taskTable(report)
  if (rows.length > 0) lines.push('', ...rows.map(r => `  ${r}`))
  return lines.join('\n') + '\n'
}

/** Why a run that ended otherwise than finished failed, as the error the CLI reports (exit 1). */
export function runFailure (report: RunReport): RhizomeError {
  if (report.error !== undefined) {
    const err = failureFromData(report.error)
    if (err.hint !== undefined) return err
    return new RhizomeError(report.error.code, report.error.message, { hint: `\`rhizome run-status ${report.runId} --json\` shows every task and its error` })
  }
  if (report.status === 'cancelled') return new RhizomeError('ERR_RUN_CANCELLED', `run ${report.runId} was cancelled`, { hint: 'start it again with `rhizome run FILE EXPORT ARGS...`' })
  return new RhizomeError('ERR_RUN_FAILED', `run ${report.runId} ended ${report.status}`, { hint: `\`rhizome run-status ${report.runId} --json\` shows every task and its error` })
}

/** `rhizome runs`: one row per run, newest first as the peer lists them. */
export function formatRunList (runs: RunSummary[]): string {
  if (runs.length === 0) return 'no runs on this peer yet (start one with `rhizome run FILE EXPORT ARGS...`)\n'
  const rows = [['run', 'status', 'export', 'workflow', 'started', 'took']]
  for (const r of runs) {
    rows.push([r.runId, r.status, r.export, shortCid(r.workflow), new Date(r.startedMs).toISOString(), r.finishedMs === undefined ? '-' : `${Math.round(r.finishedMs - r.startedMs)} ms`])
  }
  return table(rows, new Set([5])).join('\n') + '\n'
}
