import { CliError, EXIT_OK, EXIT_USAGE, dataDirOption, jsonOption } from '../command.ts'
import { connectPeer } from '../connect.ts'
import { checkRunId } from '../run-follow.ts'
import { signalNameProblem } from '../../model/limits.ts'
import type { Command } from '../command.ts'

export const signal: Command = {
  usage: `rhizome signal ID NAME JSON [--data-dir DIR | --api URL] [--json]

  ID    a run id, as \`rhizome run\` or \`rhizome runs\` printed it
  NAME  the signal the workflow waits for with signal(NAME): letters, digits, '_', '.', '-'
  JSON  its value, as JSON: true, 5, '"text"', '{"approved":true}'

  Sends the run a signal on the peer that drives it. It is recorded in the run's memo first, then
  delivered to the code's next signal(NAME) — now if it waits, else when it does.`,
  options: { ...dataDirOption, ...jsonOption },
  positionals: [3, 3],
  async run (context) {
    const [id, name, text] = context.positionals
    const runId = checkRunId(id)
    const problem = signalNameProblem(name)
    if (problem !== undefined) {
      throw new CliError('ERR_USAGE', `signal name ${problem}`, { exitCode: EXIT_USAGE, hint: 'use the name the workflow passes to signal(), e.g. approve' })
    }
    const value = parseValue(text)
    const client = await connectPeer(context)
    await client.signalRun(runId, name, value)
    if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify({ runId, name, signalled: true }) + '\n' }
    return { exitCode: EXIT_OK, stdout: `signal ${name} sent to run ${runId}\n` }
  }
}

/** The value as JSON; exit 2 for text that is not. */
function parseValue (text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    throw new CliError('ERR_USAGE', `the signal value is not JSON: ${text}`, { exitCode: EXIT_USAGE, hint: 'strings need JSON quotes, e.g. \'"yes"\'; objects look like \'{"approved":true}\'' })
  }
}
