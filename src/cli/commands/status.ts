import { EXIT_OK, dataDirOption, jsonOption } from '../command.ts'
import { connectPeer } from '../connect.ts'
import type { Command } from '../command.ts'

export const status: Command = {
  usage: 'rhizome status [--data-dir DIR | --api URL] [--json]',
  options: { ...dataDirOption, ...jsonOption },
  positionals: [0, 0],
  async run (context) {
    const s = await (await connectPeer(context)).status()
    if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify(s, null, 2) + '\n' }
    const lines = [
      `peer       ${s.peerId}`,
      `version    ${s.version}`,
      `network    ${s.networkId}`,
      `verification: ${s.verification}`,
      `data dir   ${s.dataDir}`,
      `api        ${s.apiUrl}`,
      `uptime     ${formatDuration(s.uptimeMs)}`,
      `peers      ${s.peers.alive} alive, ${s.peers.suspect} suspect, ${s.peers.gone} gone (${s.connections} connections)`,
      `blobs      ${s.blobs.count}`,
      ...s.addrs.map((a, i) => `${i === 0 ? 'listening' : '         '}  ${a}`)
    ]
    return { exitCode: EXIT_OK, stdout: lines.join('\n') + '\n' }
  }
}

export function formatDuration (ms: number): string {
  if (ms < 1000) return `${ms} ms`
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min ${s % 60} s`
  return `${Math.floor(m / 60)} h ${m % 60} min`
}
