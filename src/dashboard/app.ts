/**
 * The dashboard page: its panels, what feeds them and when they redraw.
 *
 * Feeds. The peer's event stream (`GET /v1/events`) says when something happened — a peer changed
 * state, a run started or ended, a task moved — and feeds the charts; the panels then read the
 * state itself from the API (peers, runs). The run on screen has its own stream
 * (`/v1/runs/:id/events`), which replays what the run did so far and then follows it, closed at
 * its `run:finished` (the browser would reconnect to an ended stream otherwise). Capacity is not
 * an event, so peers are also read every PEERS_REFRESH_MS.
 *
 * Drawing. Every change asks for a frame; a frame redraws what changed since the last one.
 */
import { ApiFailure, api, followEvents } from './api.ts'
import { renderCharts } from './chart-view.ts'
import { DagView } from './dag-view.ts'
import { formatMs, h, notice, replace, shortId } from './dom.ts'
import { renderGantt } from './gantt-view.ts'
import { renderNetwork } from './network-view.ts'
import { renderPeer } from './peer-view.ts'
import { RateSeries } from './rate-series.ts'
import { RunModel } from './run-model.ts'
import { renderRuns } from './runs-view.ts'
import type { ProgressEvent } from '../api/events.ts'
import type { NodeStatus, PeerView, RunReport, RunSummary } from '../api/types.ts'

/** Capacity changes without an event: read the peers this often (a membership announce is ~1 s). */
const PEERS_REFRESH_MS = 2000
/** The runs list and this peer's status, besides on events. */
const RUNS_REFRESH_MS = 5000
/** The run on screen's report (its critical path so far), while it runs: every 2 s for a run of
 *  up to REPORT_TASKS_PER_REFRESH tasks, less often for a larger one. The report reads every task's
 *  row on the peer's event loop, and the events already carry each task's state, so a 10,000-task
 *  run is read every 40 s rather than every 2 s per open tab. */
const REPORT_REFRESH_MS = 2000
const REPORT_TASKS_PER_REFRESH = 500
/** Events that change a list come in bursts (a fan-out); one read after the burst. */
const EVENT_DEBOUNCE_MS = 250
/** Redraws at most this often (5 a second): live enough to watch, cheap enough for a 1,000-task run. */
const PAINT_GAP_MS = 200
/** Runs listed: a screen's worth. */
const RUNS_LISTED = 30

const PEER_EVENT_TYPES = ['peer:state', 'run:started', 'run:finished', 'run:task:scheduled', 'run:task:started', 'run:task:done', 'run:task:failed', 'call:attempt', 'call:done', 'call:failed', 'events:dropped'] as const
const RUN_EVENT_TYPES = ['run:started', 'run:task:scheduled', 'run:task:started', 'run:task:done', 'run:task:failed', 'run:finished'] as const

interface Panels {
  live: HTMLElement
  banner: HTMLElement
  network: HTMLElement
  peer: HTMLElement
  charts: HTMLElement
  runs: HTMLElement
  runTitle: HTMLElement
  runSummary: HTMLElement
  dag: HTMLElement
  gantt: HTMLElement
}

export class Dashboard {
  private self: NodeStatus
  private peers: PeerView[] = []
  private runs: RunSummary[] | undefined
  private selectedPeer: string | undefined
  private run: RunModel | undefined
  private runStream: AbortController | undefined
  private followNewest = true
  private readonly rates = new RateSeries()
  private readonly problems = new Map<string, { message: string, hint?: string }>()
  private readonly panels: Panels
  private dagView: DagView | undefined
  private frame: number | undefined
  private paintedAtMs = -Infinity
  private readonly debounced = new Map<string, number>()

  constructor (root: HTMLElement, self: NodeStatus) {
    this.self = self
    this.panels = layout(root, self)
  }

  start (): void {
    this.followPeer()
    void this.refresh('peers')
    void this.refresh('runs')
    setInterval(() => { void this.refresh('peers') }, PEERS_REFRESH_MS)
    setInterval(() => { void this.refresh('runs'); void this.refresh('status') }, RUNS_REFRESH_MS)
    let reportAt = 0
    setInterval(() => {
      const run = this.run
      if (run === undefined || run.finished) return
      const tasks = run.tasks.size + run.tasksOmitted
      if (Date.now() - reportAt < REPORT_REFRESH_MS * Math.max(1, tasks / REPORT_TASKS_PER_REFRESH) - REPORT_REFRESH_MS / 2) return
      reportAt = Date.now()
      void this.refresh('report')
    }, REPORT_REFRESH_MS)
    setInterval(() => { this.draw() }, 1000) // the charts and a running run's timeline move with time
    this.draw()
  }

  /** Read one thing from the API; a failure becomes a problem shown on the page until it succeeds. */
  private async refresh (what: 'peers' | 'runs' | 'status' | 'report'): Promise<void> {
    try {
      if (what === 'peers') this.peers = (await api<{ peers: PeerView[] }>('peers')).peers
      else if (what === 'status') this.self = await api<NodeStatus>('status')
      else if (what === 'runs') this.onRuns((await api<{ runs: RunSummary[] }>('runList', {}, { query: `?limit=${RUNS_LISTED}` })).runs)
      else if (this.run !== undefined) {
        const run = this.run
        const report = await api<RunReport>('runGet', { id: run.runId })
        if (this.run === run) run.applyReport(report)
      }
      this.problems.delete(what)
    } catch (err) {
      this.problem(what, err)
    }
    this.draw()
  }

  private later (what: 'peers' | 'runs'): void {
    if (this.debounced.has(what)) return
    this.debounced.set(what, window.setTimeout(() => {
      this.debounced.delete(what)
      void this.refresh(what)
    }, EVENT_DEBOUNCE_MS))
  }

  private problem (source: string, err: unknown): void {
    const failure = err instanceof ApiFailure ? err : undefined
    this.problems.set(source, { message: failure?.message ?? String(err), hint: failure?.hint })
  }

  private onRuns (runs: RunSummary[]): void {
    this.runs = runs
    const newest = runs[0]
    if (this.followNewest && newest !== undefined && newest.runId !== this.run?.runId) this.show(newest.runId)
  }

  private followPeer (): void {
    void followEvents('events', {}, {
      onOpen: () => {
        this.problems.delete('events')
        this.setLive('live')
      },
      onEvent: (event) => { if (isOneOf(event, PEER_EVENT_TYPES)) this.onPeerEvent(event) }
    }).then(() => { this.peerStreamLost() }, () => { this.peerStreamLost() })
  }

  /**
   * The peer's event stream ended: refused (401, 503 at its limit of streams) or the peer is
   * gone. Ask why with a plain request, and follow the stream again a little later.
   */
  private peerStreamLost (): void {
    this.setLive('lost')
    void this.refresh('status').then(() => { if (!this.problems.has('status')) this.problems.set('events', { message: 'the live event stream was cut off', hint: 'retrying in a few seconds' }) })
    setTimeout(() => {
      this.setLive('connecting')
      this.followPeer()
    }, 3000)
  }

  private onPeerEvent (event: ProgressEvent): void {
    this.rates.apply(event)
    if (event.type === 'peer:state') this.later('peers')
    if (event.type === 'run:started' || event.type === 'run:finished') this.later('runs')
    if (this.run?.applyEvent(event) === true) this.draw()
  }

  /** Show run `runId`: its report now, then its own event stream. */
  private show (runId: string): void {
    this.runStream?.abort()
    const run = new RunModel(runId)
    this.run = run
    this.dagView = new DagView(task => { if (task.peer !== undefined) this.selectPeer(task.peer) })
    replace(this.panels.dag, this.dagView.element)
    void this.refresh('report')
    const stop = new AbortController()
    this.runStream = stop
    let ended = false
    const lost = (): void => {
      // The peer ends the stream after run:finished; before it, the stream was cut off.
      if (!ended && !stop.signal.aborted) this.problems.set('run', { message: `the events of run ${shortId(runId, 8)} could not be followed`, hint: 'its report is still read every few seconds' })
    }
    void followEvents('runEvents', { id: runId }, {
      onEvent: (event) => {
        if (!isOneOf(event, RUN_EVENT_TYPES)) return
        if (event.type === 'run:finished') {
          ended = true
          void this.refresh('report') // the final critical path and task states
        }
        if (run.applyEvent(event)) this.draw()
      }
    }, stop.signal).then(lost, lost)
    this.draw()
  }

  private selectPeer (peerId: string): void {
    this.selectedPeer = peerId
    this.draw()
  }

  private setLive (state: 'live' | 'connecting' | 'lost'): void {
    this.panels.live.className = `live ${state}`
    this.panels.live.textContent = state === 'live' ? 'live' : state === 'connecting' ? 'reconnecting…' : 'disconnected'
  }

  /**
   * Ask for a frame; the frame redraws every panel from the state, at most every PAINT_GAP_MS: a
   * fan-out's events arrive by the hundred per second, and one redraw shows them all.
   */
  private draw (): void {
    if (this.frame !== undefined) return
    const waitMs = Math.max(0, this.paintedAtMs + PAINT_GAP_MS - performance.now())
    this.frame = window.setTimeout(() => {
      requestAnimationFrame(() => {
        this.frame = undefined
        this.paintedAtMs = performance.now()
        this.paint()
      })
    }, waitMs)
  }

  private paint (): void {
    const nowMs = Date.now()
    this.paintBanner()
    renderNetwork(this.panels.network, { self: this.self, peers: this.peers, selected: this.selectedPeer, onSelect: id => { this.selectPeer(id) } })
    renderPeer(this.panels.peer, this.self, this.peers, this.selectedPeer, this.run, nowMs)
    replace(this.panels.charts, renderCharts(this.rates.series(nowMs)))
    renderRuns(this.panels.runs, {
      runs: this.runs,
      selected: this.run?.runId,
      followNewest: this.followNewest,
      nowMs,
      onSelect: (id) => { this.followNewest = false; this.show(id) },
      onFollow: () => { this.followNewest = true; void this.refresh('runs') }
    })
    this.paintRun(nowMs)
  }

  private paintBanner (): void {
    replace(this.panels.banner, ...[...this.problems.values()].map(p => h('div', { class: 'problem', role: 'alert' }, h('strong', {}, p.message), p.hint === undefined ? undefined : h('span', { class: 'hint' }, ` — ${p.hint}`))))
  }

  private paintRun (nowMs: number): void {
    const run = this.run
    if (run === undefined || this.dagView === undefined) {
      replace(this.panels.runTitle, 'Run')
      replace(this.panels.runSummary, this.runs?.length === 0 ? notice('empty', 'When a run starts, its tasks appear here as a graph, and on a timeline per peer.') : notice('loading', 'Waiting for a run…'))
      return
    }
    replace(this.panels.runTitle, 'Run ', h('span', { class: 'mono', title: run.runId }, shortId(run.runId, 10)), run.exportName === undefined ? undefined : h('span', { class: 'dim' }, ` ${run.exportName}`))
    const counts = run.counts()
    const elapsed = run.startedMs === undefined ? undefined : (run.finishedMs ?? nowMs) - run.startedMs
    replace(this.panels.runSummary,
      h('span', { class: `badge ${run.status ?? 'created'}`, 'data-run-status': run.status ?? 'created' }, run.status ?? 'loading'),
      h('span', { class: 'count', 'data-count': 'tasks' }, `${run.tasks.size + run.tasksOmitted} tasks`),
      ...(['queued', 'running', 'done', 'failed'] as const).map(s => h('span', { class: `count ${s}` }, h('i', { class: `swatch ${s}` }), `${counts[s]} ${s}`)),
      elapsed === undefined ? undefined : h('span', { class: 'count' }, `${formatMs(elapsed)}`),
      run.criticalPathMs === undefined ? undefined : h('span', { class: 'count critical' }, h('i', { class: 'swatch critical' }), `critical path ${run.criticalPath.length} task${run.criticalPath.length === 1 ? '' : 's'}, ${formatMs(run.criticalPathMs)}`),
      run.tasksOmitted === 0 ? undefined : h('p', { class: 'hint' }, `The first ${run.tasks.size} tasks are drawn; ${run.tasksOmitted} more are not (rhizome run-status ${run.runId} lists them all).`),
      run.error === undefined ? undefined : h('p', { class: 'problem' }, run.error))
    const retryMs = this.dagView.render(run, performance.now())
    if (retryMs !== undefined) setTimeout(() => { this.draw() }, retryMs)
    // Only for tasks a peer recorded before it kept their dependencies (the report has none, and
    // the run ended before the page saw their scheduled events): a run without dependencies at all
    // (a plain fan-out) is drawn in order too, and needs no excuse.
    if (this.dagView.inOrder && run.depsMissing) this.panels.runSummary.append(h('p', { class: 'hint' }, 'This run\'s tasks were recorded before this peer kept their dependencies: they are drawn in the order they were asked for, its critical path joined.'))
    replace(this.panels.gantt, run.tasks.size === 0 ? notice('empty', run.finished ? 'This run had no tasks.' : 'No tasks yet.') : renderGantt(run, nowMs))
  }
}

function layout (root: HTMLElement, self: NodeStatus): Panels {
  const panel = (name: string, title: string | HTMLElement, ...body: HTMLElement[]): HTMLElement => h('section', { class: `panel ${name}`, 'data-panel': name }, h('h2', {}, title), ...body)
  const p: Panels = {
    live: h('span', { class: 'live connecting' }, 'connecting…'),
    banner: h('div', { class: 'banner' }),
    network: h('div', { class: 'network-body' }, notice('loading', 'Loading peers…')),
    peer: h('div', {}),
    charts: h('div', {}),
    runs: h('div', {}),
    runTitle: h('span', {}, 'Run'),
    runSummary: h('div', { class: 'run-summary' }),
    dag: h('div', { class: 'dag-box' }),
    gantt: h('div', { class: 'gantt-box' })
  }
  replace(root,
    h('header', {}, h('h1', {}, 'Rhizome'), h('span', { class: 'mono dim', title: self.peerId }, `peer ${shortId(self.peerId, 8)}`), h('span', { class: 'dim' }, `network ${self.networkId}`), p.live),
    p.banner,
    h('main', {},
      h('div', { class: 'column side' }, panel('network', 'Network', p.network), panel('peer', 'Peer', p.peer), panel('runs', 'Runs', p.runs)),
      h('div', { class: 'column wide' }, panel('activity', 'Activity on this peer', p.charts), panel('run', p.runTitle, p.runSummary, h('h3', {}, 'Tasks and dependencies'), p.dag, h('h3', {}, 'Timeline per peer'), p.gantt))))
  return p
}

/** An event of one of `types` (the streams carry others the page has no use for). */
function isOneOf (event: unknown, types: readonly string[]): event is ProgressEvent {
  return typeof event === 'object' && event !== null && types.includes((event as { type?: unknown }).type as string)
}
