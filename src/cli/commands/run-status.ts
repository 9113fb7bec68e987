import { EXIT_INTERRUPTED, dataDirOption, jsonOption } from '../command.ts'
import { connectPeer } from '../connect.ts'
import { checkRunId, detachedText, followRun } from '../run-follow.ts'
import { reportResult } from './run.ts'
import type { Command } from '../command.ts'

export const runStatus: Command = {
  usage: `rhizome run-status ID [--wait] [--data-dir DIR | --api URL] [--json]

  ID      a run id, as \`rhizome run\` or \`rhizome runs\` printed it
  --wait  follow the run's progress until it ends, then print its report; exits 1 if it failed
          or was cancelled (Ctrl-C stops following, not the run). A run that continued as new
          (continueAsNew) is followed to the last run of its chain, whose report is printed

  The report: the run's status, its result once it has one, which peer ran which task (queued,
  started and finished, in ms since the run started), and the critical path.`,
  options: { ...dataDirOption, ...jsonOption, wait: { type: 'boolean' } },
  positionals: [1, 1],
  async run (context) {
    const runId = checkRunId(context.positionals[0])
    const client = await connectPeer(context)
    const wait = context.values.wait === true
    if (!wait) return reportResult(await client.run(runId), context, false)
    const last = await followRun(client, runId, context, context.values.json !== true)
    if (last === undefined) return { exitCode: EXIT_INTERRUPTED, stdout: detachedText(runId, context) }
    return reportResult(await client.run(last), context, true)
  }
}
