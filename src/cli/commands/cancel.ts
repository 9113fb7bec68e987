import { EXIT_OK, dataDirOption, jsonOption } from '../command.ts'
import { connectPeer } from '../connect.ts'
import { checkRunId } from '../run-follow.ts'
import type { Command } from '../command.ts'

export const cancel: Command = {
  usage: `rhizome cancel ID [--data-dir DIR | --api URL] [--json]

  ID  a run id, as \`rhizome run\` or \`rhizome runs\` printed it

  Cancels the run on the peer that drives it: its tasks in flight are cancelled on their workers,
  and the run ends as cancelled. A run that already ended stays as it ended.`,
  options: { ...dataDirOption, ...jsonOption },
  positionals: [1, 1],
  async run (context) {
    const runId = checkRunId(context.positionals[0])
    const client = await connectPeer(context)
    await client.cancelRun(runId)
    const report = await client.run(runId)
    if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify({ runId, status: report.status }) + '\n' }
    return { exitCode: EXIT_OK, stdout: `run ${runId} is ${report.status}\n` }
  }
}
