/**
 * The shape every CLI command has (STYLE.md §14): a name, help, options, and a handler that
 * returns what to print and the exit code. `main.ts` does the printing.
 */
import { RhizomeError } from '../model/errors.ts'
import type { ParseArgsOptionsConfig } from 'node:util'

export interface CommandContext {
  values: Record<string, string | boolean | Array<string | boolean> | undefined>
  positionals: string[]
  env: NodeJS.ProcessEnv
  /** Aborted on Ctrl-C / SIGTERM. */
  signal: AbortSignal
  /** For long-running commands that print as they go. */
  print: (text: string) => void
}

export interface CommandResult {
  exitCode: number
  stdout?: string | Uint8Array
}

export interface Command {
  name: string
  summary: string
  usage: string
  options: ParseArgsOptionsConfig
  /** Positional arguments: [min, max]. */
  positionals: [number, number]
  run: (context: CommandContext) => Promise<CommandResult>
}

/** Exit codes: 0 ok, 1 the operation failed, 2 the command line or config was wrong. */
export const EXIT_OK = 0
export const EXIT_FAILED = 1
export const EXIT_USAGE = 2
/** Stopped by Ctrl-C, as shells report SIGINT (128 + 2). */
export const EXIT_INTERRUPTED = 130

/** A failure the CLI reports with its code and a hint, then exits. */
export class CliError extends RhizomeError {
  readonly exitCode: number
  constructor (code: string, message: string, options: { hint?: string, exitCode?: number, cause?: unknown } = {}) {
    super(code, message, { hint: options.hint, cause: options.cause })
    this.name = 'CliError'
    this.exitCode = options.exitCode ?? EXIT_FAILED
  }
}

export const dataDirOption = {
  'data-dir': { type: 'string' },
  api: { type: 'string' },
  /** The peer's API token for --api (else RHIZOME_API_TOKEN; with --data-dir, DIR/api.token). */
  'api-token': { type: 'string' }
} as const satisfies ParseArgsOptionsConfig

export const jsonOption = {
  json: { type: 'boolean' }
} as const satisfies ParseArgsOptionsConfig
