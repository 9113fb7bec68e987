/**
 * The runs this peer drives, newest first: status, workflow export, id, when and how long.
 * Click one to draw it; by default the newest run is drawn as soon as it starts.
 */
import { formatMs, h, notice, replace, shortId } from './dom.ts'
import type { RunSummary } from '../api/types.ts'

export interface RunsViewInput {
  runs: RunSummary[] | undefined
  selected: string | undefined
  followNewest: boolean
  nowMs: number
  onSelect: (runId: string) => void
  onFollow: () => void
}

export function renderRuns (root: Element, input: RunsViewInput): void {
  if (input.runs === undefined) {
    replace(root, notice('loading', 'Loading runs…'))
    return
  }
  if (input.runs.length === 0) {
    replace(root, notice('empty', 'No runs on this peer yet.', 'Start one with `rhizome run FILE EXPORT ARGS…`; it appears here as it starts.'))
    return
  }
  const rows = input.runs.map(run => h('tr', {
    class: `run-row${run.runId === input.selected ? ' selected' : ''}`,
    'data-run-id': run.runId,
    tabindex: 0,
    onclick: () => { input.onSelect(run.runId) },
    onkeydown: (event) => { if ((event as KeyboardEvent).key === 'Enter') input.onSelect(run.runId) }
  },
  h('td', {}, h('span', { class: `badge ${run.status}` }, run.status)),
  h('td', { class: 'mono' }, run.export),
  h('td', { class: 'mono dim', title: run.runId }, shortId(run.runId, 8)),
  h('td', { class: 'dim' }, new Date(run.startedMs).toLocaleTimeString()),
  h('td', { class: 'num' }, formatMs((run.finishedMs ?? input.nowMs) - run.startedMs))))
  replace(root,
    h('table', { class: 'runs' }, h('thead', {}, h('tr', {}, h('th', {}, 'status'), h('th', {}, 'workflow'), h('th', {}, 'run'), h('th', {}, 'started'), h('th', { class: 'num' }, 'took'))), h('tbody', {}, ...rows)),
    input.followNewest ? h('p', { class: 'hint' }, 'Showing the newest run as runs start. Click a run to keep it.') : h('button', { type: 'button', class: 'link-button', onclick: input.onFollow }, 'Follow the newest run'))
}
