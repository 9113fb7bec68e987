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

/** A record as a peer's log history keeps it (src/node/log-history.ts). */
export interface TeedRecord {
  atMs: number
  level: Exclude<LogLevel, 'silent'>
  ns: string
  msg: string
  /** The fields as JSON text, cut to `fieldsCharsMax`; absent when there were none. */
  fields?: string
}

export interface TeeOptions {
  /** Records below this level are not kept (the peer's own log level, so history shows what the log shows). */
  level: LogLevel
  /** Receives each record; must not log itself. */
  sink: (record: TeedRecord) => void
  /** Longest message kept, in characters; longer is cut. */
  msgCharsMax: number
  /** Longest fields JSON kept, in characters; longer is replaced by a note of its length. */
  fieldsCharsMax: number
  now?: () => number
}

/**
 * `inner`, with every record at or above `options.level` also handed to `options.sink`: the
 * peer's logger keeps a bounded history of what it logged, for `rhizome logs` and SQL. Children
 * are teed too.
 */
export function teeLogger (inner: Logger, options: TeeOptions): Logger {
  const now = options.now ?? Date.now
  const threshold = RANK[options.level]
  const tee = (level: Exclude<LogLevel, 'silent'>, message: string, fields?: LogFields): void => {
    if (RANK[level] < threshold) return
    const record: TeedRecord = { atMs: now(), level, ns: inner.namespace, msg: message.length > options.msgCharsMax ? message.slice(0, options.msgCharsMax) + '…' : message }
    if (fields !== undefined && Object.keys(fields).length > 0) record.fields = fieldsJson(fields, options.fieldsCharsMax)
    options.sink(record)
  }
  return {
    namespace: inner.namespace,
    debug: (m, f) => { inner.debug(m, f); tee('debug', m, f) },
    info: (m, f) => { inner.info(m, f); tee('info', m, f) },
    warn: (m, f) => { inner.warn(m, f); tee('warn', m, f) },
    error: (m, f) => { inner.error(m, f); tee('error', m, f) },
    child: (name) => teeLogger(inner.child(name), options)
  }
}

function fieldsJson (fields: LogFields, charsMax: number): string {
  let text: string
  try {
    text = JSON.stringify(fields, (_k, v: unknown) => typeof v === 'bigint' ? v.toString() : v instanceof Error ? { name: v.name, message: v.message } : v)
  } catch {
    return JSON.stringify({ fieldsError: 'unserializable fields' })
  }
  return text.length <= charsMax ? text : JSON.stringify({ fieldsCut: `${text.length} characters, more than ${charsMax}` })
}
