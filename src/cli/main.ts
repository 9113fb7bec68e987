/**
 * `rhizome` — the command line. Finds the command, parses its flags strictly (an unknown
 * command or flag prints help and exits 2), runs it, prints what it returns.
 *
 * Start-up is part of the interface: this file imports only the command table, and a command's
 * module (with whatever it needs: an HTTP client, libp2p, esbuild) is imported once that
 * command is chosen. `bench/cli.bench.ts` measures it; docs/PERFORMANCE.md has the numbers.
 */
import { parseArgs } from 'node:util'
import { RhizomeError } from '../model/errors.ts'
import { VERSION } from '../model/version.ts'
import { CONNECTION_HELP, CliError, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE } from './command.ts'
import { COMMANDS } from './commands.ts'
import { enableCliCompileCache } from './compile-cache.ts'
import type { Command, CommandEntry } from './command.ts'

export { COMMANDS }

/** Where main() writes; a test passes its own. */
export interface CliIo {
  out: (text: string | Uint8Array) => void
  err: (text: string) => void
  /** Whether stdout is a terminal (progress lines are redrawn in place only then). */
  isTTY: boolean
}

const processIo: CliIo = {
  out: text => { process.stdout.write(text) },
  err: text => { process.stderr.write(text) },
  isTTY: process.stdout.isTTY === true
}

function table (entries: CommandEntry[]): string[] {
  const width = Math.max(...entries.map(c => c.name.length))
  return entries.map(c => `  ${c.name.padEnd(width)}  ${c.summary}`)
}

export function helpText (): string {
  return [
    `rhizome ${VERSION} — a peer-to-peer network for decentralized execution`,
    '',
    'Usage: rhizome <command> [options]',
    '',
    'Commands:',
    ...table(COMMANDS),
    '',
    'Every command that talks to a peer finds it by --data-dir DIR (or RHIZOME_DATA_DIR, default',
    '~/.rhizome), which holds its API token, or by --api URL with --api-token TOKEN (or',
    'RHIZOME_API_TOKEN). `rhizome help <command>` or `rhizome <command> --help` shows its options.',
    ''
  ].join('\n')
}

/** The commands under a first word (`node`, `blob`), for `rhizome node --help`. */
function groupText (group: string, entries: CommandEntry[]): string {
  return [`Usage: rhizome ${group} <command> [options]`, '', `Commands under \`rhizome ${group}\`:`, ...table(entries), '', `\`rhizome help ${group} <command>\` shows its options.`, ''].join('\n')
}

function commandHelp (entry: CommandEntry, command: Command): string {
  const connection = 'api' in command.options ? `\n\n${CONNECTION_HELP}` : ''
  return `${entry.summary}\n\nUsage: ${command.usage}${connection}\n`
}

function findCommand (argv: string[]): { entry: CommandEntry, rest: string[] } | undefined {
  for (const entry of [...COMMANDS].sort((a, b) => b.name.length - a.name.length)) {
    const words = entry.name.split(' ')
    if (words.every((w, i) => argv[i] === w)) return { entry, rest: argv.slice(words.length) }
  }
  return undefined
}

/** The commands whose name starts with `word` and has more words after it. */
function group (word: string | undefined): CommandEntry[] {
  return COMMANDS.filter(c => c.name.startsWith(`${word} `))
}

const isHelpFlag = (arg: string): boolean => arg === '--help' || arg === '-h'

export async function main (argv: string[], env: NodeJS.ProcessEnv, signal: AbortSignal, io: CliIo = processIo): Promise<number> {
  const { out, err } = io
  if (argv.length === 0) { out(helpText()); return EXIT_USAGE }
  if (argv[0] === '--version' || argv[0] === 'version') { out(`${VERSION}\n`); return EXIT_OK }
  if (argv[0] === 'help' || isHelpFlag(argv[0])) {
    const topic = argv.slice(1).filter(a => !isHelpFlag(a))
    if (topic.length === 0) { out(helpText()); return EXIT_OK }
    const found = findCommand(topic)
    if (found !== undefined && found.rest.length === 0) { out(commandHelp(found.entry, await found.entry.load())); return EXIT_OK }
    if (topic.length === 1 && group(topic[0]).length > 0) { out(groupText(topic[0], group(topic[0]))); return EXIT_OK }
    err(`error: there is no command \`rhizome ${topic.join(' ')}\`\nhint: \`rhizome help\` lists the commands\n\n`)
    err(helpText())
    return EXIT_USAGE
  }
  const found = findCommand(argv)
  if (found === undefined) {
    const members = group(argv[0])
    if (members.length > 0 && (argv.length === 1 || isHelpFlag(argv[1]))) {
      // `rhizome node --help` lists the node commands; a bare `rhizome node` is incomplete.
      if (argv.length > 1) { out(groupText(argv[0], members)); return EXIT_OK }
      err(`error: \`rhizome ${argv[0]}\` needs a command\n\n${groupText(argv[0], members)}`)
      return EXIT_USAGE
    }
    err(`error: unknown command: ${argv.slice(0, 2).join(' ')}\nhint: the commands are listed below\n\n`)
    err(members.length > 0 ? groupText(argv[0], members) : helpText())
    return EXIT_USAGE
  }
  const { entry, rest } = found
  const command = await entry.load()
  if (rest.some(isHelpFlag)) { out(commandHelp(entry, command)); return EXIT_OK }
  let parsed
  try {
    parsed = parseArgs({ args: rest, options: command.options, allowPositionals: true, strict: true, allowNegative: true })
    const [min, max] = command.positionals
    if (parsed.positionals.length < min || parsed.positionals.length > max) {
      throw new Error(max === 0 ? `unexpected argument ${JSON.stringify(parsed.positionals[0])}` : `expected ${min === max ? min : `${min} to ${max}`} argument(s), got ${parsed.positionals.length}`)
    }
  } catch (e) {
    err(`error: ${(e as Error).message}\nhint: \`rhizome ${entry.name} --help\` lists its options and arguments\n\nUsage: ${command.usage}\n`)
    return EXIT_USAGE
  }
  try {
    const result = await command.run({ values: parsed.values, positionals: parsed.positionals, env, signal, print: out, isTTY: io.isTTY })
    if (result.stdout !== undefined) out(result.stdout)
    return result.exitCode
  } catch (e) {
    if (e instanceof RhizomeError) {
      err(`error: ${e.message}${e.code === 'ERR_CONFIG' || e.code === 'ERR_USAGE' ? '' : ` (${e.code})`}\n`)
      if (e.hint !== undefined) err(`hint: ${e.hint}\n`)
      return exitCodeOf(e)
    }
    err(`error: ${(e as Error)?.stack ?? String(e)}\n`)
    return EXIT_FAILED
  }
}

function exitCodeOf (e: RhizomeError): number {
  if (e instanceof CliError) return e.exitCode
  if (e.code === 'ERR_CONFIG') return EXIT_USAGE
  // Ctrl-C while a request was in flight: the client's ApiAbortedError.
  if (e.code === 'ERR_ABORTED' && e.name === 'ApiAbortedError') return EXIT_INTERRUPTED
  return EXIT_FAILED
}

/** Run as a process: wire Ctrl-C / SIGTERM to an abort, exit with the command's code. */
export async function runCli (): Promise<void> {
  // Run as `node src/cli/main.ts` (devnet peers, tests), the command modules still get the cache; through bin/rhizome.js it is on already.
  enableCliCompileCache()
  const controller = new AbortController()
  let signals = 0
  const onSignal = (name: string): void => {
    signals++
    if (signals > 1) {
      process.stderr.write(`\n${name} again: exiting now\n`)
      process.exit(130)
    }
    controller.abort()
  }
  process.on('SIGINT', () => onSignal('SIGINT'))
  process.on('SIGTERM', () => onSignal('SIGTERM'))
  const code = await main(process.argv.slice(2), process.env, controller.signal)
  process.exitCode = code
  // libp2p and timers may hold the loop briefly after stop; do not wait on them forever.
  setTimeout(() => process.exit(code), 2000).unref()
}

if (import.meta.main) await runCli()
