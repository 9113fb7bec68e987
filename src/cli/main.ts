/**
 * `rhizome` — the command line. Finds the command, parses its flags strictly (an unknown
 * command or flag prints help and exits 2), runs it, prints what it returns.
 */
import { parseArgs } from 'node:util'
import { RhizomeError } from '../model/errors.ts'
import { VERSION } from '../node/index.ts'
import { CliError, EXIT_FAILED, EXIT_USAGE } from './command.ts'
import { blobGet, blobPut } from './commands/blob.ts'
import { devnet } from './commands/devnet.ts'
import { call, deploy, functionsList } from './commands/functions.ts'
import { nodeStart } from './commands/node-start.ts'
import { peers } from './commands/peers.ts'
import { status } from './commands/status.ts'
import type { Command } from './command.ts'

export const COMMANDS: Command[] = [nodeStart, status, peers, deploy, functionsList, call, blobPut, blobGet, devnet]

export function helpText (): string {
  const width = Math.max(...COMMANDS.map(c => c.name.length))
  return [
    `rhizome ${VERSION} — a peer-to-peer network for decentralized execution`,
    '',
    'Usage: rhizome <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map(c => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Every command that talks to a peer finds it by --data-dir DIR (or RHIZOME_DATA_DIR, default',
    '~/.rhizome), which holds its API token, or by --api URL with --api-token TOKEN (or',
    'RHIZOME_API_TOKEN). `rhizome <command> --help` shows its options.',
    ''
  ].join('\n')
}

function findCommand (argv: string[]): { command: Command, rest: string[] } | undefined {
  for (const command of [...COMMANDS].sort((a, b) => b.name.length - a.name.length)) {
    const words = command.name.split(' ')
    if (words.every((w, i) => argv[i] === w)) return { command, rest: argv.slice(words.length) }
  }
  return undefined
}

export async function main (argv: string[], env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<number> {
  const out = (text: string | Uint8Array): void => { process.stdout.write(text) }
  const err = (text: string): void => { process.stderr.write(text) }
  if (argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
    out(helpText())
    return argv.length === 0 ? EXIT_USAGE : 0
  }
  if (argv[0] === '--version' || argv[0] === 'version') { out(`${VERSION}\n`); return 0 }
  const found = findCommand(argv)
  if (found === undefined) {
    err(`error: unknown command: ${argv.slice(0, 2).join(' ')}\nhint: the commands are listed below\n\n`)
    err(helpText())
    return EXIT_USAGE
  }
  const { command, rest } = found
  if (rest.includes('--help') || rest.includes('-h')) { out(`${command.summary}\n\nUsage: ${command.usage}\n`); return 0 }
  let parsed
  try {
    parsed = parseArgs({ args: rest, options: command.options, allowPositionals: true, strict: true, allowNegative: true })
    const [min, max] = command.positionals
    if (parsed.positionals.length < min || parsed.positionals.length > max) {
      throw new Error(max === 0 ? `unexpected argument ${JSON.stringify(parsed.positionals[0])}` : `expected ${min === max ? min : `${min} to ${max}`} argument(s), got ${parsed.positionals.length}`)
    }
  } catch (e) {
    err(`error: ${(e as Error).message}\nhint: \`rhizome ${command.name} --help\` lists its options and arguments\n\nUsage: ${command.usage}\n`)
    return EXIT_USAGE
  }
  try {
    const result = await command.run({ values: parsed.values, positionals: parsed.positionals, env, signal, print: out })
    if (result.stdout !== undefined) out(result.stdout)
    return result.exitCode
  } catch (e) {
    if (e instanceof RhizomeError) {
      err(`error: ${e.message}${e.code === 'ERR_CONFIG' || e.code === 'ERR_USAGE' ? '' : ` (${e.code})`}\n`)
      if (e.hint !== undefined) err(`hint: ${e.hint}\n`)
      return e instanceof CliError ? e.exitCode : e.code === 'ERR_CONFIG' ? EXIT_USAGE : EXIT_FAILED
    }
    err(`error: ${(e as Error)?.stack ?? String(e)}\n`)
    return EXIT_FAILED
  }
}

/** Run as a process: wire Ctrl-C / SIGTERM to an abort, exit with the command's code. */
export async function runCli (): Promise<void> {
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
