import { RUN_STATUSES } from '../../api/client.ts'
import type { RunStatus } from '../../api/types.ts'
import { CliError, EXIT_OK, EXIT_USAGE, dataDirOption, jsonOption } from '../command.ts'
import { connectPeer } from '../connect.ts'
import { formatRunList } from '../run-report.ts'
import type { Command } from '../command.ts'

export const runs: Command = {
  usage: `rhizome runs [--limit N] [--status STATUS] [--data-dir DIR | --api URL] [--json]

  --limit N          the newest N runs (default: the peer's, 100)
  --status STATUS    only runs that are ${RUN_STATUSES.join(', ')}

  The runs this peer drives, newest first: id, status, workflow, when it started, how long it took.`,
  options: { ...dataDirOption, ...jsonOption, limit: { type: 'string' }, status: { type: 'string' } },
  positionals: [0, 0],
  async run (context) {
    const limit = limitFromFlag(context.values.limit)
    const status = context.values.status as string | undefined
    if (status !== undefined && !(RUN_STATUSES as readonly string[]).includes(status)) {
      throw new CliError('ERR_USAGE', `--status must be one of ${RUN_STATUSES.join(', ')}, got ${JSON.stringify(status)}`, { exitCode: EXIT_USAGE, hint: 'e.g. --status running' })
    }
    const list = await (await connectPeer(context)).runs({ limit, status: status as RunStatus | undefined })
    if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify(list, null, 2) + '\n' }
    return { exitCode: EXIT_OK, stdout: formatRunList(list) }
  }
}

function limitFromFlag (value: unknown): number | undefined {
  if (value === undefined) return undefined
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN
  if (!Number.isSafeInteger(n) || n < 1) throw new CliError('ERR_USAGE', `--limit must be a whole number from 1, got ${JSON.stringify(value)}`, { exitCode: EXIT_USAGE, hint: 'e.g. --limit 20' })
  return n
}
