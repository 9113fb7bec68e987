/**
 * The logging contract. Loggers are namespaced (`rhizome:membership`) and structured: a short
 * message plus fields, written by the shell as one JSON line per event (src/node/logger.ts).
 * Code below the shell receives a Logger; it never writes to a stream itself.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'

export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent']

export type LogFields = Record<string, unknown>

export interface Logger {
  readonly namespace: string
  debug: (message: string, fields?: LogFields) => void
  info: (message: string, fields?: LogFields) => void
  warn: (message: string, fields?: LogFields) => void
  error: (message: string, fields?: LogFields) => void
  /** A logger for a sub-namespace: `rhizome:net` → `rhizome:net:rpc`. */
  child: (name: string) => Logger
}
