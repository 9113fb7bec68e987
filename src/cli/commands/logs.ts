import { ApiAbortedError } from '../../api/client.ts'
import { printable } from '../printable.ts'
import { LOG_LIST_MAX } from '../../api/limits.ts'
import type { LogLevelName, LogRecordView } from '../../api/types.ts'
import { CliError, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, dataDirOption, jsonOption } from '../command.ts'
import { connectPeer } from '../connect.ts'
import type { Command } from '../command.ts'

const LEVELS: readonly LogLevelName[] = ['debug', 'info', 'warn', 'error']

export const logs: Command = {
  usage: `rhizome logs [--follow] [--level L] [--ns PREFIX] [--since TIME] [--limit N] [--json] [--data-dir DIR | --api URL]

  This peer's recent log records (it keeps a bounded history), oldest first, one per line.

  --follow       then print new records as the peer logs them, until Ctrl-C
  --level L      only L and more severe (${LEVELS.join(', ')})
  --ns PREFIX    only namespaces starting with PREFIX, e.g. rhizome:tasks
  --since TIME   only records since TIME: an ISO 8601 time, or ms since the epoch
  --limit N      the newest N records (default the peer's, 100; at most ${LOG_LIST_MAX})
  --json         one JSON object per line`,
  options: { ...dataDirOption, ...jsonOption, follow: { type: 'boolean' }, level: { type: 'string' }, ns: { type: 'string' }, since: { type: 'string' }, limit: { type: 'string' } },
  positionals: [0, 0],
  async run (context) {
    const level = context.values.level as string | undefined
    if (level !== undefined && !(LEVELS as readonly string[]).includes(level)) throw new CliError('ERR_USAGE', `--level must be one of ${LEVELS.join(', ')}, got ${JSON.stringify(level)}`, { exitCode: EXIT_USAGE, hint: 'e.g. --level warn' })
    const limitText = context.values.limit as string | undefined
    const limit = limitText === undefined ? undefined : /^\d{1,6}$/.test(limitText) ? Number(limitText) : NaN
    if (limit !== undefined && !(limit >= 1 && limit <= LOG_LIST_MAX)) throw new CliError('ERR_USAGE', `--limit must be a whole number from 1 to ${LOG_LIST_MAX}, got ${JSON.stringify(limitText)}`, { exitCode: EXIT_USAGE, hint: 'e.g. --limit 500' })
    const sinceText = context.values.since as string | undefined
    const sinceMs = sinceText === undefined ? undefined : /^\d{1,15}$/.test(sinceText) ? Number(sinceText) : Date.parse(sinceText)
    if (sinceMs !== undefined && Number.isNaN(sinceMs)) throw new CliError('ERR_USAGE', `--since must be an ISO 8601 time or ms since the epoch, got ${JSON.stringify(sinceText)}`, { exitCode: EXIT_USAGE, hint: 'e.g. --since 2026-01-31T12:00:00Z' })
    const query = { level: level as LogLevelName | undefined, ns: context.values.ns as string | undefined, sinceMs, limit }
    const json = context.values.json === true
    const client = await connectPeer(context)
    if (context.values.follow !== true) {
      return { exitCode: EXIT_OK, stdout: (await client.logs(query)).map(r => formatLogRecord(r, json)).join('') }
    }
    try {
      for await (const event of client.followLogs(query, { signal: context.signal })) {
        if (event.type === 'log') context.print(formatLogRecord(event, json))
        else context.print(json ? JSON.stringify(event) + '\n' : `… ${event.count} records not shown (this terminal read too slowly)\n`)
      }
    } catch (err) {
      if (!(err instanceof ApiAbortedError) && !context.signal.aborted) throw err
    }
    return { exitCode: EXIT_INTERRUPTED }
  }
}

/** `2026-01-31T12:00:00.000Z INFO  rhizome:tasks  message  key=value …`, or one JSON object. */
export function formatLogRecord (record: LogRecordView | ({ type: 'log' } & LogRecordView), json: boolean): string {
  const { atMs, level, ns, msg, fields } = record
  if (json) return JSON.stringify({ ...(record.id === undefined ? {} : { id: record.id }), atMs, level, ns, msg, ...(fields === undefined ? {} : { fields }) }) + '\n'
  const rest = fields === undefined ? '' : '  ' + Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')
  // Messages and fields may carry what other peers sent: shown, never obeyed by the terminal.
  return printable(`${new Date(atMs).toISOString()} ${level.toUpperCase().padEnd(5)} ${ns}  ${msg}${rest}`) + '\n'
}
