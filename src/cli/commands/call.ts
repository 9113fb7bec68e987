import { CALL_TIMEOUT_MS_MAX } from '../../api/limits.ts'
import { exportNameProblem } from '../../model/export-name.ts'
import { CliError, EXIT_OK, EXIT_USAGE, checkPeerIdFlag, dataDirOption, jsonOption } from '../command.ts'
import { connectPeer } from '../connect.ts'
import type { Command } from '../command.ts'

export const call: Command = {
  usage: `rhizome call FN EXPORT [ARG...] [--on PEER] [--timeout-ms N] [--data-dir DIR | --api URL] [--json]

  FN            a function id (from \`rhizome deploy\`) or a name this peer knows
  ARG           each argument as JSON: 5, '"text"', '[1,2]', '{"a":1}'
  --on PEER     run it on that peer (default: the least loaded of a random sample)
  --timeout-ms N  give up after N ms, 1 to ${CALL_TIMEOUT_MS_MAX}`,
  options: { ...dataDirOption, ...jsonOption, on: { type: 'string' }, 'timeout-ms': { type: 'string' } },
  positionals: [2, 66],
  async run (context) {
    const [fn, exportName, ...rawArgs] = context.positionals
    const badExport = exportNameProblem(exportName)
    if (badExport !== undefined) throw new CliError('ERR_USAGE', `EXPORT ${badExport}`, { exitCode: EXIT_USAGE, hint: 'export names are JavaScript identifiers; `rhizome functions` lists each function\'s exports' })
    const args = jsonArgs(rawArgs)
    const timeoutMs = timeoutFromFlag(context.values['timeout-ms'])
    const on = context.values.on as string | undefined
    if (on !== undefined) await checkPeerIdFlag('--on', on)
    // The client waits the call's timeout plus a margin, so the peer's own 504 arrives first.
    const answer = await (await connectPeer(context)).call({ fn, export: exportName, args, on, timeoutMs })
    if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify(answer, null, 2) + '\n' }
    const t = answer.timings
    const ms = (n: number): string => `${n.toFixed(1)} ms`
    return {
      exitCode: EXIT_OK,
      stdout: [
        JSON.stringify(answer.value),
        `  ran on   ${answer.peer}${answer.attempts > 1 ? ` (attempt ${answer.attempts})` : ''}`,
        `  task     ${answer.taskId}`,
        `  result   ${answer.resultCid}`,
        `  timings  queue ${ms(t.queueMs)}, fetch ${ms(t.fetchMs)}, run ${ms(t.runMs)}, total ${ms(t.totalMs)}`
      ].join('\n') + '\n'
    }
  }
}

/** Arguments given on the command line, each as JSON (`5`, `'"text"'`, `'[1,2]'`); exit 2 for one that is not. */
export function jsonArgs (rawArgs: string[]): unknown[] {
  return rawArgs.map((text, i) => {
    try {
      return JSON.parse(text) as unknown
    } catch {
      throw new CliError('ERR_USAGE', `argument ${i + 1} is not JSON: ${text}`, { exitCode: EXIT_USAGE, hint: 'strings need JSON quotes, e.g. \'"hello"\'' })
    }
  })
}

/** `--timeout-ms`: a whole number of ms from 1 to CALL_TIMEOUT_MS_MAX, refused here (exit 2) rather than by the peer. */
function timeoutFromFlag (value: unknown): number | undefined {
  if (value === undefined) return undefined
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN
  if (!Number.isSafeInteger(n) || n < 1 || n > CALL_TIMEOUT_MS_MAX) {
    throw new CliError('ERR_USAGE', `--timeout-ms must be a whole number of ms from 1 to ${CALL_TIMEOUT_MS_MAX}, got ${JSON.stringify(value)}`, { exitCode: EXIT_USAGE, hint: 'e.g. --timeout-ms 30000; leave it out for the peer\'s default' })
  }
  return n
}
