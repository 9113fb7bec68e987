/**
 * Following a run from the CLI (`rhizome run`, `rhizome run-status --wait`): its events as a
 * progress line on a terminal, or a line per task start and finish elsewhere. Ctrl-C stops
 * following, not the run: the peer drives it to its end whether anyone watches or not.
 */
import { CID } from 'multiformats/cid'
import { CliError, EXIT_USAGE } from './command.ts'
import { progressLine } from './progress.ts'
import { RunProgress } from './run-report.ts'
import type { RhizomeClient } from '../api/client.ts'
import type { CommandContext } from './command.ts'

/**
 * Follow `runId` until it ends — and the runs it continued as (continueAsNew), to the last of the
 * chain: that run's id once its `run:finished` arrived, undefined if Ctrl-C stopped the following
 * (the run goes on). `show: false` follows silently (for `--json`).
 */
export async function followRun (client: RhizomeClient, runId: string, context: CommandContext, show: boolean): Promise<string | undefined> {
  const progress = new RunProgress()
  const line = progressLine(context.print, true)
  try {
    for (let current: string | undefined = runId; current !== undefined;) {
      const following: string = current
      current = undefined
      for await (const event of client.runEvents(following, { signal: context.signal })) {
        if (event.type === 'run:finished' && event.status === 'continued' && event.continuedAs !== undefined) current = event.continuedAs
        const lines = progress.handle(event)
        if (!show) continue
        if (context.isTTY) line.update(progress.line())
        else for (const text of lines) context.print(`${text}\n`)
      }
      if (current === undefined) return following
    }
    return runId
  } catch (err) {
    if (context.signal.aborted) return undefined
    throw err
  } finally {
    if (show && context.isTTY) line.done()
  }
}

/** The connection flags the user gave, so the commands we suggest reach the same peer. */
function connectionFlags (context: CommandContext): string {
  const flags: string[] = []
  const dataDir = context.values['data-dir']
  const api = context.values.api
  if (typeof dataDir === 'string') flags.push(`--data-dir ${shellWord(dataDir)}`)
  if (typeof api === 'string') flags.push(`--api ${shellWord(api)}`)
  return flags.length === 0 ? '' : ` ${flags.join(' ')}`
}

function shellWord (text: string): string {
  return /^[\w./:@%+=,-]+$/.test(text) ? text : `'${text.replace(/'/g, '\'\\\'\'')}'`
}

/** What to print when Ctrl-C stops following: the run keeps going; how to follow it again, or cancel it. */
export function detachedText (runId: string, context: CommandContext): string {
  const flags = connectionFlags(context)
  return [
    `run ${runId} goes on without you watching (Ctrl-C stops following, not the run)`,
    `  follow it  rhizome run-status ${runId} --wait${flags}`,
    `  cancel it  rhizome cancel ${runId}${flags}`
  ].join('\n') + '\n'
}

/** A run id from the command line: a CID, refused here (exit 2) rather than by the peer. */
export function checkRunId (text: string): string {
  try {
    return CID.parse(text).toString()
  } catch {
    throw new CliError('ERR_USAGE', `${JSON.stringify(text)} is not a run id`, { exitCode: EXIT_USAGE, hint: 'a run id is a CID (bafy…), as `rhizome run` printed it; `rhizome runs` lists the runs of a peer' })
  }
}
