/**
 * A run as a live DAG: a box per task colored by its state, an edge per dependency, the
 * critical path drawn over it. Laid out by dagre (left to right: what came first on the left).
 *
 * A task's dependencies are every result its code had received when it asked for it (the driver
 * knows no finer), so ten chains side by side that deliver results in the same turn each depend
 * on all ten. Laid out with every such edge, the chains tangle. The layout uses one edge per task,
 * from the dependency that finished last — the one it waited for, and the rule the critical path
 * follows, so that path is always a straight run of boxes — and the other dependencies are drawn
 * faintly over it.
 *
 * Laying out is the expensive part (DAG_TASKS_MAX in run-model.ts says how expensive), so it is
 * redone only when tasks or edges were added, and no sooner than twice the time the last layout
 * took after it: a fan-out of hundreds of tasks arriving over a second is laid out a few times,
 * not hundreds. State changes only recolor the boxes already there.
 */
import dagre from '@dagrejs/dagre'
import { formatMs, peerColor, shortId, svg } from './dom.ts'
import type { RunModel, TaskNode } from './run-model.ts'

const NODE_WIDTH = 26
const NODE_HEIGHT = 18
/** The first layout of a run is immediate; the next waits at least this (and twice the last one's cost). */
const LAYOUT_GAP_MS_MIN = 250

interface Placed { x: number, y: number }

export class DagView {
  readonly element: SVGSVGElement
  private readonly edgesLayer: SVGGElement
  private readonly nodesLayer: SVGGElement
  private readonly boxes = new Map<string, SVGGElement>()
  private laidOutShape = ''
  private laidOutAtMs = 0
  private layoutCostMs = 0
  private positions = new Map<string, Placed>()
  private criticalKey = ''
  private readonly onSelect: (task: TaskNode) => void

  constructor (onSelect: (task: TaskNode) => void) {
    this.onSelect = onSelect
    this.edgesLayer = svg('g', { class: 'edges' })
    this.nodesLayer = svg('g', { class: 'nodes' })
    this.element = svg('svg', { class: 'dag', role: 'img', 'aria-label': 'the run\'s tasks and their dependencies' }, this.edgesLayer, this.nodesLayer)
  }

  /** Redraw from the model; returns the milliseconds after which to call again (a layout is due), if any. */
  render (model: RunModel, nowMs: number): number | undefined {
    if (shapeOf(model) !== this.laidOutShape) {
      const waitMs = this.laidOutAtMs + Math.max(LAYOUT_GAP_MS_MIN, 2 * this.layoutCostMs) - nowMs
      if (this.laidOutShape !== '' && waitMs > 0) {
        this.paint(model)
        return waitMs
      }
      this.layout(model)
      this.laidOutAtMs = performance.now()
    }
    this.paint(model)
    return undefined
  }

  /** Whether the last layout had no dependencies to go by (see layoutInOrder). */
  get inOrder (): boolean {
    return this.laidOutInOrder
  }

  private laidOutInOrder = false

  private layout (model: RunModel): void {
    const started = performance.now()
    const tasks = model.list()
    this.laidOutInOrder = tasks.length > 1 && !tasks.some(t => t.deps.length > 0)
    if (this.laidOutInOrder) this.layoutInOrder(model)
    else this.layoutGraph(model)
    this.laidOutShape = shapeOf(model)
    this.criticalKey = ''
    this.layoutCostMs = performance.now() - started
  }

  /**
   * A run known only from its report (it ended before this page followed it, and the peer keeps
   * no dependencies once a run ends): a grid in the order the tasks were asked for, column by
   * column, the critical path joined. Nothing is drawn as a dependency that is not known to be one.
   */
  private layoutInOrder (model: RunModel): void {
    const tasks = model.list().sort((a, b) => a.queuedMs - b.queuedMs)
    const columns = Math.max(1, Math.ceil(Math.sqrt(tasks.length * 3)))
    const rows = Math.ceil(tasks.length / columns)
    const stepX = NODE_WIDTH + 26
    const stepY = NODE_HEIGHT + 8
    this.positions = new Map(tasks.map((t, i) => [t.taskId, { x: 12 + Math.floor(i / rows) * stepX + NODE_WIDTH / 2, y: 12 + (i % rows) * stepY + NODE_HEIGHT / 2 }]))
    this.size(24 + columns * stepX - 26, 24 + rows * stepY - 8)
    this.edgesLayer.replaceChildren()
    for (let i = 1; i < model.criticalPath.length; i++) {
      const from = this.positions.get(model.criticalPath[i - 1])
      const to = this.positions.get(model.criticalPath[i])
      if (from === undefined || to === undefined) continue
      this.edgesLayer.append(svg('path', { d: `M${from.x.toFixed(1)} ${from.y.toFixed(1)} L${to.x.toFixed(1)} ${to.y.toFixed(1)}`, class: 'edge primary critical', 'data-from': model.criticalPath[i - 1], 'data-to': model.criticalPath[i] }))
    }
  }

  private size (graphWidth: number, graphHeight: number): void {
    const width = Math.max(graphWidth, 200)
    const height = Math.max(graphHeight, 60)
    // Drawn at its own size, shrunk to the panel's width when wider (CSS max-width), never blown up.
    this.element.setAttribute('viewBox', `0 0 ${width.toFixed(0)} ${height.toFixed(0)}`)
    this.element.setAttribute('width', width.toFixed(0))
    this.element.setAttribute('height', height.toFixed(0))
  }

  private layoutGraph (model: RunModel): void {
    const g = new dagre.graphlib.Graph()
    g.setGraph({ rankdir: 'LR', nodesep: 8, ranksep: 26, marginx: 12, marginy: 12 })
    g.setDefaultEdgeLabel(() => ({}))
    const tasks = model.list()
    for (const t of tasks) g.setNode(t.taskId, { width: NODE_WIDTH, height: NODE_HEIGHT })
    const onPath = new Map(model.criticalPath.map((id, i) => [id, model.criticalPath[i - 1]]))
    for (const t of tasks) {
      const parent = onPath.get(t.taskId) ?? lastFinished(model, t)
      if (parent !== undefined) g.setEdge(parent, t.taskId)
    }
    dagre.layout(g)
    this.positions = new Map(tasks.map(t => {
      const n = g.node(t.taskId) as { x: number, y: number }
      return [t.taskId, { x: n.x, y: n.y }]
    }))
    const size = g.graph() as { width?: number, height?: number }
    this.size(size.width ?? 0, size.height ?? 0)
    this.drawEdges(model, g)
  }

  private drawEdges (model: RunModel, g: InstanceType<typeof dagre.graphlib.Graph>): void {
    const critical = criticalEdges(model)
    this.edgesLayer.replaceChildren()
    for (const t of model.list()) {
      const to = this.positions.get(t.taskId)!
      for (const dep of t.deps) {
        const from = this.positions.get(dep)
        if (from === undefined || g.hasEdge(dep, t.taskId)) continue
        this.edgesLayer.append(svg('path', { d: `M${(from.x + NODE_WIDTH / 2).toFixed(1)} ${from.y.toFixed(1)} L${(to.x - NODE_WIDTH / 2).toFixed(1)} ${to.y.toFixed(1)}`, class: 'edge secondary', 'data-from': dep, 'data-to': t.taskId }))
      }
    }
    for (const e of g.edges()) {
      const points = (g.edge(e) as { points?: Array<{ x: number, y: number }> }).points ?? []
      if (points.length < 2) continue
      const d = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(' ')
      this.edgesLayer.append(svg('path', { d, class: critical.has(`${e.v}>${e.w}`) ? 'edge primary critical' : 'edge primary', 'data-from': e.v, 'data-to': e.w }))
    }
  }

  /** Boxes: one per task laid out, class by state; the critical path's boxes and edges marked. */
  private paint (model: RunModel): void {
    const onPath = new Set(model.criticalPath)
    const key = model.criticalPath.join()
    if (key !== this.criticalKey) {
      const critical = criticalEdges(model)
      for (const path of Array.from(this.edgesLayer.children)) {
        const base = path.getAttribute('class')!.replace(' critical', '')
        path.setAttribute('class', critical.has(`${path.getAttribute('data-from')}>${path.getAttribute('data-to')}`) ? `${base} critical` : base)
      }
      this.criticalKey = key
    }
    const peerIndex = new Map(model.peers().map((p, i) => [p, i]))
    for (const t of model.list()) {
      const at = this.positions.get(t.taskId)
      if (at === undefined) continue
      let box = this.boxes.get(t.taskId)
      if (box === undefined) {
        box = this.box(t)
        this.boxes.set(t.taskId, box)
        this.nodesLayer.append(box)
      }
      box.setAttribute('transform', `translate(${(at.x - NODE_WIDTH / 2).toFixed(1)} ${(at.y - NODE_HEIGHT / 2).toFixed(1)})`)
      const cls = `task ${t.state}${onPath.has(t.taskId) ? ' critical' : ''}`
      if (box.getAttribute('class') !== cls) box.setAttribute('class', cls)
      if (box.getAttribute('data-state') !== t.state) box.setAttribute('data-state', t.state)
      box.firstElementChild!.textContent = tooltip(t)
      const index = t.peer === undefined || t.startedMs === undefined ? undefined : peerIndex.get(t.peer)
      const dot = box.lastElementChild!
      const fill = index === undefined ? 'none' : peerColor(index)
      if (dot.getAttribute('fill') !== fill) dot.setAttribute('fill', fill)
    }
  }

  private box (t: TaskNode): SVGGElement {
    return svg('g', { 'data-task-id': t.taskId, onclick: () => { this.onSelect(t) } },
      svg('title', {}, tooltip(t)),
      svg('rect', { width: NODE_WIDTH, height: NODE_HEIGHT, rx: 4 }),
      svg('text', { x: NODE_WIDTH / 2 - 2, y: NODE_HEIGHT / 2 + 3.5 }, t.export.slice(0, 3)),
      // Which peer ran it: the peer's color, as on the timeline.
      svg('circle', { class: 'peer-dot', cx: NODE_WIDTH - 4, cy: 4, r: 3, fill: 'none' }))
  }
}

/** What the layout depends on: the tasks and their edges, and once the run ended, its final
 *  critical path (laid out as a straight chain). */
function shapeOf (model: RunModel): string {
  return model.finished ? `${model.shapeVersion}:${model.criticalPath.join()}` : String(model.shapeVersion)
}

/** The dependency of `t` that finished last (what it waited for), among those drawn. */
function lastFinished (model: RunModel, t: TaskNode): string | undefined {
  let best: TaskNode | undefined
  for (const id of t.deps) {
    const dep = model.tasks.get(id)
    if (dep !== undefined && (best === undefined || (dep.finishedMs ?? -1) >= (best.finishedMs ?? -1))) best = dep
  }
  return best?.taskId
}

function criticalEdges (model: RunModel): Set<string> {
  const edges = new Set<string>()
  for (let i = 1; i < model.criticalPath.length; i++) edges.add(`${model.criticalPath[i - 1]}>${model.criticalPath[i]}`)
  return edges
}

function tooltip (t: TaskNode): string {
  const ran = t.startedMs !== undefined && t.finishedMs !== undefined ? `, ${formatMs(t.finishedMs - t.startedMs)}` : ''
  const deps = t.deps.length + t.depsOmitted
  return `${t.export} · task ${shortId(t.taskId, 8)} · ${t.state}${ran}` +
    `${t.peer === undefined ? '' : ` · on ${shortId(t.peer)}`}${deps === 0 ? '' : ` · after ${deps} task${deps === 1 ? '' : 's'}`}` +
    `${t.error === undefined ? '' : ` · ${t.error}`}`
}
