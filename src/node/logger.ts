/**
 * Structured JSON logs: one line per event on stderr, `{"t":…,"level":…,"ns":…,"msg":…,…fields}`.
 * stdout stays free for what a command prints for people (or for `--json` output).
 */
import type { LogFields, LogLevel, Logger } from '../model/log.ts'

const RESERVED = { t: true, level: true, ns: true, msg: true }

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }

export interface LoggerOptions {
  level: LogLevel
  /** Where lines go; default stderr. Tests pass a collector. */
  write?: (line: string) => void
  /** Clock for the `t` field; default Date.now. */
  now?: () => number
}

export function createLogger (namespace: string, options: LoggerOptions): Logger {
  const write = options.write ?? ((line: string) => { process.stderr.write(line) })
  const now = options.now ?? Date.now
  const threshold = RANK[options.level]
  const emit = (level: LogLevel, message: string, fields?: LogFields): void => {
    if (RANK[level] < threshold) return
    const record: Record<string, unknown> = { t: new Date(now()).toISOString(), level, ns: namespace, msg: message }
    if (fields !== undefined) {
      for (const [key, value] of Object.entries(fields)) {
        // A field named like a reserved key keeps its value under `key_` instead of overwriting it.
        record[Object.hasOwn(RESERVED, key) ? `${key}_` : key] = value instanceof Error ? { name: value.name, message: value.message } : value
      }
    }
    let line: string
    try {
      line = JSON.stringify(record, (_k, v: unknown) => typeof v === 'bigint' ? v.toString() : v)
    } catch {
      line = JSON.stringify({ t: record.t, level, ns: namespace, msg: message, fieldsError: 'unserializable fields' })
    }
    write(line + '\n')
  }
  return {
    namespace,
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (name) => createLogger(`${namespace}:${name}`, options)
  }
}
