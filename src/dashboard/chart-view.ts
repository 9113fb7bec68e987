/**
 * Small charts over the last CHART_SECONDS: tasks finished per second and tasks running, from
 * the peer's events (rate-series.ts). An area under a line, the latest value and the peak.
 */
import { h, svg } from './dom.ts'
import type { Series } from './rate-series.ts'

const WIDTH = 300
const HEIGHT = 70

export function renderCharts (series: Series): HTMLElement {
  return h('div', { class: 'charts' },
    chart('tasks finished / s', series.finished, 'finished'),
    chart('tasks running', series.running, 'running'))
}

function chart (title: string, values: number[], kind: string): HTMLElement {
  const peak = Math.max(1, ...values)
  const step = WIDTH / Math.max(1, values.length - 1)
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(HEIGHT - 2 - (v / peak) * (HEIGHT - 6)).toFixed(1)}`)
  const line = points.join(' ')
  const plot = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: 'none', class: `chart ${kind}`, role: 'img', 'aria-label': title },
    svg('polygon', { points: `0,${HEIGHT} ${line} ${WIDTH},${HEIGHT}`, class: 'area' }),
    svg('polyline', { points: line, class: 'line' }))
  return h('figure', { class: 'chart-box', 'data-chart': kind },
    h('figcaption', {}, title, h('span', { class: 'value' }, String(values.at(-1) ?? 0)), h('span', { class: 'peak' }, `peak ${Math.max(0, ...values)}`)),
    plot)
}
