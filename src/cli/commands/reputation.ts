import { EXIT_OK, dataDirOption, jsonOption } from '../command.ts'
import { connectPeer } from '../connect.ts'
import { formatDuration } from './status.ts'
import type { Command } from '../command.ts'
import type { ReputationView } from '../../api/types.ts'

export const reputation: Command = {
  usage: `rhizome reputation [--data-dir DIR | --api URL] [--json]

  This peer's record of each peer it has sent verified work to: answers that agreed with the
  accepted result, that disagreed, failures, proven lies, a score, and a ban's expiry.
  SCORE is (1 + agreed) / (2 + agreed + disagreed + failed): 0.50 for a peer never checked,
  towards 1 as its answers keep agreeing. A peer proven to lie gets no work until its ban ends.`,
  options: { ...dataDirOption, ...jsonOption },
  positionals: [0, 0],
  async run (context) {
    const peers = await (await connectPeer(context)).reputation()
    if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify(peers, null, 2) + '\n' }
    return { exitCode: EXIT_OK, stdout: reputationTable(peers, Date.now()) }
  }
}

export function reputationTable (peers: ReputationView[], nowMs: number): string {
  if (peers.length === 0) return 'no reputation records yet: they are kept for peers whose results this peer verified\n'
  const rows = [['PEER', 'AGREED', 'DISAGREED', 'FAILED', 'LIES', 'SCORE', 'BANNED']]
  for (const p of peers) {
    rows.push([
      p.peerId, String(p.agreements), String(p.disagreements), String(p.failures), String(p.lies), p.score.toFixed(2),
      p.bannedUntilMs > nowMs ? `for ${formatDuration(p.bannedUntilMs - nowMs)}` : p.bannedUntilMs > 0 ? 'no (served)' : 'no'
    ])
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map(r => r[i].length)))
  return rows.map(r => r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n'
}
