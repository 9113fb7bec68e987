/**
 * The shape every CLI command has (STYLE.md §14): a name, help, options, and a handler that
 * returns what to print and the exit code. `main.ts` does the printing.
 *
 * A command is two parts. Its entry (name, summary, and how to load it) is in the static table
 * of `commands.ts`, which `rhizome --help` reads. Its module (usage, flags, handler) is imported
 * only when that command runs, so `rhizome status` never loads libp2p, esbuild or SQLite.
 */
import { RhizomeError } from '../model/errors.ts'
import type { ParseArgsOptionsConfig } from 'node:util'

export interface CommandContext {
  values: Record<string, string | boolean | Array<string | boolean> | undefined>
  positionals: string[]
  env: NodeJS.ProcessEnv
  /** Aborted on Ctrl-C / SIGTERM. */
  signal: AbortSignal
  /** For long-running commands that print as they go (to stdout). */
  print: (text: string) => void
  /** Whether stdout is a terminal: only then may a progress line be redrawn in place. */
  isTTY: boolean
}

export interface CommandResult {
  exitCode: number
  stdout?: string | Uint8Array
}

/** What a command's module exports: everything but its name and summary. */
export interface Command {
  usage: string
  options: ParseArgsOptionsConfig
  /** Positional arguments: [min, max]. */
  positionals: [number, number]
  run: (context: CommandContext) => Promise<CommandResult>
}

/** A command as `rhizome --help` lists it; `load` imports its module. */
export interface CommandEntry {
  /** One or two words: `status`, `node start`. */
  name: string
  summary: string
  load: () => Promise<Command>
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

/** Appended to the help of every command that talks to a peer. */
export const CONNECTION_HELP = `Finding the peer:
  --data-dir DIR     the peer's data dir, which holds its URL (api.json) and token (api.token);
                     default RHIZOME_DATA_DIR, then ~/.rhizome
  --api URL          reach the peer at URL instead, e.g. http://127.0.0.1:7070
  --api-token TOKEN  the token for --api (default RHIZOME_API_TOKEN, then DIR/api.token if
                     --data-dir is given too)`

/** A peer id flag (--on, --from), refused before contacting the peer when it cannot be one. */
export async function checkPeerIdFlag (flag: string, value: string): Promise<void> {
  // Loaded only when the flag is given: the peer id codec brings the key types with it.
  const { peerIdFromString } = await import('@libp2p/peer-id')
  try {
    peerIdFromString(value)
  } catch {
    throw new CliError('ERR_USAGE', `${flag} ${JSON.stringify(value)} is not a peer id`, { exitCode: EXIT_USAGE, hint: 'a peer id looks like 12D3KooW…; `rhizome peers` lists the peers this one knows' })
  }
}
