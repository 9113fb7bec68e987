/**
 * One peer in detail (click it in the network graph): what the membership view says of it, and
 * what it did in the run on screen.
 */
import { formatMs, h, notice, replace } from './dom.ts'
import type { NodeStatus, PeerView } from '../api/types.ts'
import type { RunModel } from './run-model.ts'

export function renderPeer (root: Element, self: NodeStatus, peers: PeerView[], selected: string | undefined, run: RunModel | undefined, nowMs: number): void {
  if (selected === undefined) {
    replace(root, notice('empty', 'Click a peer in the network for its details.'))
    return
  }
  const ran = run === undefined ? [] : run.list().filter(t => t.peer === selected)
  const ranLine = run === undefined ? undefined : ['tasks in this run', `${ran.filter(t => t.state === 'done').length} done, ${ran.filter(t => t.state === 'running').length} running, ${ran.filter(t => t.state === 'failed').length} failed`]
  let rows: Array<[string, string] | undefined>
  if (selected === self.peerId) {
    rows = [
      ['peer', self.peerId], ['state', 'alive (this peer)'], ['version', self.version], ['network', `${self.networkId} (${self.networkMode})`],
      ['verification', self.verification], ['uptime', formatMs(self.uptimeMs)], ['connections', String(self.connections)],
      ['blobs', String(self.blobs.count)], ['addresses', self.addrs.join('\n')], ranLine as [string, string] | undefined
    ]
  } else {
    const p = peers.find(x => x.peerId === selected)
    if (p === undefined) {
      replace(root, notice('empty', 'This peer has left the membership view.', 'Peers that are gone for long are forgotten; click another.'))
      return
    }
    rows = [
      ['peer', p.peerId], ['state', `${p.state} for ${formatMs(Math.max(0, nowMs - p.stateSinceMs))}`], ['connected', p.connected ? 'yes' : 'no'],
      ['slots', `${p.capacity.slotsMax - p.capacity.slotsFree} busy of ${p.capacity.slotsMax}`], ['queue', String(p.capacity.queueLength)],
      ['version', p.version], ['incarnation', String(p.incarnation)], ['last seen', `${formatMs(Math.max(0, nowMs - p.lastSeenMs))} ago`],
      ['addresses', p.addrs.join('\n')], ranLine as [string, string] | undefined
    ]
  }
  replace(root, h('table', { class: 'details', 'data-peer-id': selected },
    h('tbody', {}, ...rows.filter(r => r !== undefined).map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', { class: k === 'peer' || k === 'addresses' ? 'mono wrap' : '' }, v))))))
}
