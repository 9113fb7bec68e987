/**
 * A run's timeline: a row per peer that ran its tasks, a bar per task from when it was sent to
 * when it answered (a running task's bar grows to now), colored by state. Time runs left to
 * right from the run's start.
 */
import { formatMs, peerColor, shortId, svg } from './dom.ts'
import type { RunModel, TaskNode } from './run-model.ts'

const WIDTH = 1000
const LABEL_WIDTH = 92
const AXIS_HEIGHT = 22
const BAR_HEIGHT = 12
const BAR_GAP = 3
const ROW_PADDING = 6
const ROW_HEIGHT_MIN = 26
/** Lanes per peer: a peer runs as many tasks at once as it has slots, a handful; 8 stay legible. */
const GANTT_LANES_MAX = 8

export function renderGantt (model: RunModel, nowMs: number): SVGSVGElement {
  const rows = new Map<string, TaskNode[]>()
  for (const t of model.list()) {
    if (t.startedMs === undefined || t.peer === undefined) continue
    const row = rows.get(t.peer) ?? []
    row.push(t)
    rows.set(t.peer, row)
  }
  const peers = model.peers()
  const startMs = model.startedMs ?? Math.min(...model.list().map(t => t.queuedMs))
  const endMs = Math.max(startMs + 1000, model.finishedMs ?? nowMs)
  const spanMs = endMs - startMs
  const plotWidth = WIDTH - LABEL_WIDTH - 8
  const x = (ms: number): number => LABEL_WIDTH + (Math.min(Math.max(ms, startMs), endMs) - startMs) / spanMs * plotWidth
  const laned = peers.map(peer => lanes(rows.get(peer)!, nowMs))
  const heights = laned.map(l => l.count * (BAR_HEIGHT + BAR_GAP) + ROW_PADDING * 2 - BAR_GAP)
  const height = AXIS_HEIGHT + Math.max(ROW_HEIGHT_MIN, heights.reduce((a, b) => a + b, 0))
  const chart = svg('svg', { class: 'gantt', viewBox: `0 0 ${WIDTH} ${height}`, role: 'img', 'aria-label': 'tasks per peer over time' })
  chart.append(axis(spanMs, plotWidth, height))
  let y = AXIS_HEIGHT
  peers.forEach((peer, i) => {
    chart.append(svg('rect', { x: 0, y, width: WIDTH, height: heights[i], class: i % 2 === 0 ? 'row even' : 'row' }))
    chart.append(svg('circle', { cx: 9, cy: y + heights[i] / 2, r: 4, fill: peerColor(i) }))
    chart.append(svg('text', { x: 18, y: y + heights[i] / 2 + 4, class: 'row-label' }, svg('title', {}, peer), shortId(peer, 8)))
    for (const { task: t, lane } of laned[i].placed) {
      const x0 = x(t.startedMs!)
      const x1 = Math.max(x0 + 1.5, x(t.finishedMs ?? nowMs))
      chart.append(svg('rect', { x: x0.toFixed(1), y: y + ROW_PADDING + lane * (BAR_HEIGHT + BAR_GAP), width: (x1 - x0).toFixed(1), height: BAR_HEIGHT, rx: 2, class: `bar ${t.state}`, 'data-task-id': t.taskId },
        svg('title', {}, `${t.export} · ${t.state} · ${formatMs((t.finishedMs ?? nowMs) - t.startedMs!)}`)))
    }
    y += heights[i]
  })
  if (peers.length === 0) chart.append(svg('text', { x: WIDTH / 2, y: AXIS_HEIGHT + 17, class: 'empty', 'text-anchor': 'middle' }, 'no task has started yet'))
  return chart
}

/**
 * Tasks that overlap in time on one peer (it has several slots) go on separate lanes: each task
 * takes the first lane free at its start. At most GANTT_LANES_MAX lanes; past that, the lane
 * that frees first.
 */
function lanes (tasks: TaskNode[], nowMs: number): { count: number, placed: Array<{ task: TaskNode, lane: number }> } {
  const ends: number[] = []
  const placed: Array<{ task: TaskNode, lane: number }> = []
  for (const task of [...tasks].sort((a, b) => a.startedMs! - b.startedMs!)) {
    let lane = ends.findIndex(end => end <= task.startedMs!)
    if (lane === -1 && ends.length < GANTT_LANES_MAX) lane = ends.length
    if (lane === -1) lane = ends.indexOf(Math.min(...ends))
    ends[lane] = task.finishedMs ?? nowMs
    placed.push({ task, lane })
  }
  return { count: Math.max(1, ends.length), placed }
}

/** Ticks at a round step: about eight across the plot. */
function axis (spanMs: number, plotWidth: number, height: number): SVGGElement {
  const steps = [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000]
  const step = steps.find(s => spanMs / s <= 8) ?? 3_600_000
  const g = svg('g', { class: 'axis' })
  for (let t = 0, n = 0; t <= spanMs && n < 40; t += step, n++) {
    const x = LABEL_WIDTH + t / spanMs * plotWidth
    g.append(svg('line', { x1: x.toFixed(1), x2: x.toFixed(1), y1: AXIS_HEIGHT - 4, y2: height }))
    g.append(svg('text', { x: x.toFixed(1), y: AXIS_HEIGHT - 8, 'text-anchor': x > WIDTH - 40 ? 'end' : 'middle' }, t === 0 ? '0' : step >= 1000 ? `${t / 1000} s` : `${t} ms`))
  }
  return g
}
