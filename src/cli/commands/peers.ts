import { EXIT_OK, dataDirOption, jsonOption } from '../command.ts'
import { connectPeer } from '../connect.ts'
import { formatDuration } from './status.ts'
import type { Command } from '../command.ts'
import type { PeerView } from '../../api/types.ts'

export const peers: Command = {
  usage: 'rhizome peers [--data-dir DIR | --api URL] [--json]',
  options: { ...dataDirOption, ...jsonOption },
  positionals: [0, 0],
  async run (context) {
    const peers = await (await connectPeer(context)).peers()
    if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify(peers, null, 2) + '\n' }
    return { exitCode: EXIT_OK, stdout: peerTable(peers, Date.now()) }
  }
}

export function peerTable (peers: PeerView[], nowMs: number): string {
  if (peers.length === 0) return 'no peers known yet\n'
  const rows = [['PEER', 'STATE', 'CONN', 'SLOTS', 'QUEUE', 'VERSION', 'LAST SEEN']]
  for (const p of peers) {
    rows.push([
      p.peerId, p.state, p.connected ? 'yes' : 'no',
      `${p.capacity.slotsFree}/${p.capacity.slotsMax}`, String(p.capacity.queueLength), p.version,
      `${formatDuration(Math.max(0, nowMs - p.lastSeenMs))} ago`
    ])
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map(r => r[i].length)))
  return rows.map(r => r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n'
}
