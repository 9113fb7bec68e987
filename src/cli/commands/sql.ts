import { SQL_ROWS_DEFAULT, SQL_ROWS_MAX, SQL_TIMEOUT_MS_DEFAULT, SQL_TIMEOUT_MS_MAX } from '../../api/limits.ts'
import { printable } from '../printable.ts'
import type { SqlResult } from '../../api/types.ts'
import { CliError, EXIT_OK, EXIT_USAGE, dataDirOption, jsonOption } from '../command.ts'
import { connectPeer } from '../connect.ts'
import type { Command } from '../command.ts'

export const sql: Command = {
  usage: `rhizome sql "SELECT …" [--json | --csv] [--max-rows N] [--timeout-ms N] [--data-dir DIR | --api URL]

  One read-only SQL query (SQLite) over this peer's history, as a table (--csv: CSV, --json:
  { columns, rows }). The views: runs, tasks, attempts, attestations, peers, peer_events,
  functions, blobs, log_events; README, "SQL over a peer's history", lists their columns.
  Writes, ATTACH and raw tables are refused; the query runs apart from the peer and is stopped
  at its time limit.

  --max-rows N    more rows than N is an error (default ${SQL_ROWS_DEFAULT}, at most ${SQL_ROWS_MAX})
  --timeout-ms N  stop the query after N ms (default ${SQL_TIMEOUT_MS_DEFAULT}, at most ${SQL_TIMEOUT_MS_MAX})

  e.g. rhizome sql "select peer, count(*) as tasks from tasks group by peer order by tasks desc"`,
  options: { ...dataDirOption, ...jsonOption, csv: { type: 'boolean' }, 'max-rows': { type: 'string' }, 'timeout-ms': { type: 'string' } },
  positionals: [1, 1],
  async run (context) {
    if (context.values.json === true && context.values.csv === true) throw new CliError('ERR_USAGE', '--json and --csv are one or the other', { exitCode: EXIT_USAGE, hint: 'pick one output format' })
    const maxRows = integerFlag(context.values['max-rows'], '--max-rows', SQL_ROWS_MAX)
    const timeoutMs = integerFlag(context.values['timeout-ms'], '--timeout-ms', SQL_TIMEOUT_MS_MAX)
    const result = await (await connectPeer(context)).sql({ sql: context.positionals[0], maxRows, timeoutMs })
    if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify(result, null, 2) + '\n' }
    if (context.values.csv === true) return { exitCode: EXIT_OK, stdout: sqlCsv(result) }
    return { exitCode: EXIT_OK, stdout: sqlTable(result) }
  }
}

function integerFlag (value: unknown, flag: string, max: number): number | undefined {
  if (value === undefined) return undefined
  const n = typeof value === 'string' && /^\d{1,9}$/.test(value) ? Number(value) : NaN
  if (!(n >= 1 && n <= max)) throw new CliError('ERR_USAGE', `${flag} must be a whole number from 1 to ${max}, got ${JSON.stringify(value)}`, { exitCode: EXIT_USAGE, hint: `leave it out for the default` })
  return n
}

/** A cell as text: NULL for null, JSON for a BLOB's bytes object. */
function cellText (value: unknown): string {
  if (value === null || value === undefined) return 'NULL'
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}

/** Columns padded to their widest cell; control characters in a cell shown escaped (a newline as \n), so a row stays one line and a peer's text cannot drive the terminal. */
export function sqlTable (result: SqlResult): string {
  const rows = [result.columns.map(printable), ...result.rows.map(r => r.map(v => printable(cellText(v))))]
  const widths = result.columns.map((_, i) => Math.max(...rows.map(r => r[i].length)))
  const lines = rows.map(r => r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd())
  return lines.join('\n') + `\n(${result.rows.length} row${result.rows.length === 1 ? '' : 's'})\n`
}

/**
 * CSV as RFC 4180 quotes it (a header row; a field holding a comma, quote or line break quoted,
 * quotes doubled; NULL an empty field), with LF line ends as Unix tools expect.
 */
export function sqlCsv (result: SqlResult): string {
  const field = (value: unknown): string => {
    const text = value === null || value === undefined ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value)
    return /[",\n\u000d]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
  }
  return [result.columns, ...result.rows].map(r => r.map(field).join(',')).join('\n') + '\n'
}
