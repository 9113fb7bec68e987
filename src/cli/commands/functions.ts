import { EXIT_OK, dataDirOption, jsonOption } from '../command.ts'
import { connectPeer } from '../connect.ts'
import type { Command } from '../command.ts'

export const functionsList: Command = {
  usage: 'rhizome functions [--data-dir DIR | --api URL] [--json]',
  options: { ...dataDirOption, ...jsonOption },
  positionals: [0, 0],
  async run (context) {
    const functions = await (await connectPeer(context)).functions()
    if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify(functions, null, 2) + '\n' }
    if (functions.length === 0) return { exitCode: EXIT_OK, stdout: 'no functions held by this peer; deploy one with `rhizome deploy FILE`\n' }
    const rows = [['FUNCTION ID', 'NAME', 'KIND', 'BYTES', 'ORIGIN', 'EXPORTS'], ...functions.map(f => [f.cid, f.name, f.kind, String(f.codeBytes), f.origin, f.exports.join(', ')])]
    const widths = rows[0].map((_, i) => Math.max(...rows.map(r => r[i].length)))
    return { exitCode: EXIT_OK, stdout: rows.map(r => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n' }
  }
}
