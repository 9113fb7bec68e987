/**
 * The network as this peer sees it: itself in the middle, every peer of its membership view on
 * a ring around it, colored by state (alive, suspect, gone), with a gauge of its load (busy
 * slots of its capacity, and its queue); a line for each open connection. Click a peer for
 * its details.
 */
import { h, replace, shortId, svg } from './dom.ts'
import type { NodeStatus, PeerView } from '../api/types.ts'

const SIZE = 360
const CENTER = SIZE / 2
const RING = 130
const RADIUS = 22

export interface NetworkViewInput {
  self: NodeStatus
  peers: PeerView[]
  selected: string | undefined
  onSelect: (peerId: string) => void
}

export function renderNetwork (root: Element, input: NetworkViewInput): void {
  const { self, peers } = input
  const graph = svg('svg', { viewBox: `0 0 ${SIZE} ${SIZE}`, class: 'network-graph', role: 'img', 'aria-label': `network: this peer and ${peers.length} others` })
  const positions = peers.map((_, i) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, peers.length)
    return { x: CENTER + RING * Math.cos(angle), y: CENTER + RING * Math.sin(angle) }
  })
  graph.append(svg('circle', { cx: CENTER, cy: CENTER, r: RING, class: 'ring' }))
  peers.forEach((p, i) => {
    if (p.connected) graph.append(svg('line', { x1: CENTER, y1: CENTER, x2: positions[i].x, y2: positions[i].y, class: 'link' }))
  })
  graph.append(peerNode({ id: self.peerId, state: 'alive', x: CENTER, y: CENTER, label: 'this peer', self: true, selected: input.selected === self.peerId, onSelect: input.onSelect }))
  peers.forEach((p, i) => {
    const busy = p.capacity.slotsMax - p.capacity.slotsFree
    graph.append(peerNode({
      id: p.peerId,
      state: p.state,
      x: positions[i].x,
      y: positions[i].y,
      label: `${busy}/${p.capacity.slotsMax} busy · q${p.capacity.queueLength}`,
      load: p.capacity.slotsMax > 0 ? busy / p.capacity.slotsMax : 0,
      selected: input.selected === p.peerId,
      onSelect: input.onSelect
    }))
  })
  const counts = { alive: 0, suspect: 0, gone: 0 }
  for (const p of peers) counts[p.state]++
  replace(root,
    graph,
    h('p', { class: 'legend' },
      h('span', { class: 'dot alive' }), `${counts.alive + 1} alive `,
      h('span', { class: 'dot suspect' }), `${counts.suspect} suspect `,
      h('span', { class: 'dot gone' }), `${counts.gone} gone · ${self.connections} connections`),
    peers.length === 0 ? h('p', { class: 'hint' }, 'This peer knows no other peer yet. Start more with `rhizome node start --bootstrap ADDR` (ADDR from `rhizome status`).') : undefined
  )
}

interface PeerNodeInput {
  id: string
  state: PeerView['state']
  x: number
  y: number
  label: string
  load?: number
  self?: boolean
  selected: boolean
  onSelect: (peerId: string) => void
}

function peerNode (p: PeerNodeInput): SVGGElement {
  const g = svg('g', {
    class: `peer ${p.state}${p.self === true ? ' self' : ''}${p.selected ? ' selected' : ''}`,
    transform: `translate(${p.x.toFixed(1)} ${p.y.toFixed(1)})`,
    'data-peer-id': p.id,
    'data-state': p.state,
    tabindex: 0,
    role: 'button',
    onclick: () => { p.onSelect(p.id) },
    onkeydown: (event) => { if ((event as KeyboardEvent).key === 'Enter') p.onSelect(p.id) }
  }, svg('title', {}, `${p.id} (${p.state})`))
  g.append(svg('circle', { r: RADIUS, class: 'body' }))
  if (p.load !== undefined) g.append(loadArc(p.load))
  g.append(svg('text', { class: 'id', y: 4 }, shortId(p.id, 4)))
  g.append(svg('text', { class: 'label', y: RADIUS + 14 }, p.label))
  return g
}

/** The share of busy slots as an arc around the peer, clockwise from the top. */
function loadArc (load: number): SVGElement {
  const r = RADIUS + 5
  if (load <= 0) return svg('circle', { r, class: 'load-track' })
  if (load >= 1) return svg('circle', { r, class: 'load full' })
  const angle = 2 * Math.PI * load
  const x = r * Math.sin(angle)
  const y = -r * Math.cos(angle)
  const g = svg('g', {}, svg('circle', { r, class: 'load-track' }))
  g.append(svg('path', { class: 'load', d: `M 0 ${-r} A ${r} ${r} 0 ${angle > Math.PI ? 1 : 0} 1 ${x.toFixed(2)} ${y.toFixed(2)}` }))
  return g
}
