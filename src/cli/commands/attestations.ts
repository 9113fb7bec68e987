import { CliError, EXIT_OK, EXIT_USAGE, dataDirOption, jsonOption } from '../command.ts'
import { connectPeer } from '../connect.ts'
import { formatDuration } from './status.ts'
import type { Command } from '../command.ts'
import type { TaskAttestations } from '../../api/types.ts'

/** Longest task id accepted: the peer's own limit (a task id is a CID, far shorter). */
const TASK_ID_CHARS_MAX = 256

export const attestations: Command = {
  usage: `rhizome attestations TASK [--data-dir DIR | --api URL] [--json]

  TASK  a task id, as \`rhizome run-status RUN\` shows it

  Who computed the task's result and who checked it, each with the result CID it signed:
  accepted (its result was used), agreed, disagreed, checked (a spot check's answer).
  Kept by the peer that verified the task, for 7 days.`,
  options: { ...dataDirOption, ...jsonOption },
  positionals: [1, 1],
  async run (context) {
    const taskId = context.positionals[0]
    if (taskId.length === 0 || taskId.length > TASK_ID_CHARS_MAX || /\s/.test(taskId)) {
      throw new CliError('ERR_USAGE', `${JSON.stringify(taskId.slice(0, 64))} is not a task id`, { exitCode: EXIT_USAGE, hint: 'task ids are shown by `rhizome run-status RUN`' })
    }
    const answer = await (await connectPeer(context)).attestations(taskId)
    if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify(answer, null, 2) + '\n' }
    return { exitCode: EXIT_OK, stdout: attestationTable(answer, Date.now()) }
  }
}

/** Role order in the table: what was used first, then who agreed, disagreed, checked. */
const ROLE_ORDER = ['accepted', 'agreed', 'disagreed', 'checked']

export function attestationTable (answer: TaskAttestations, nowMs: number): string {
  const rows = [['ROLE', 'PEER', 'RESULT', 'WHEN']]
  const sorted = [...answer.attestations].sort((a, b) => ROLE_ORDER.indexOf(a.role) - ROLE_ORDER.indexOf(b.role) || a.atMs - b.atMs)
  for (const a of sorted) rows.push([a.role, a.peer, a.resultCid, `${formatDuration(Math.max(0, nowMs - a.atMs))} ago`])
  const widths = rows[0].map((_, i) => Math.max(...rows.map(r => r[i].length)))
  const count = (role: string): number => answer.attestations.filter(a => a.role === role).length
  const runIds = [...new Set(answer.attestations.flatMap(a => a.runId === undefined ? [] : [a.runId]))]
  const head = [
    `task       ${answer.taskId}`,
    ...(runIds.length === 0 ? [] : [`run        ${runIds.join(', ')}`]),
    `answers    ${answer.attestations.length}: ${count('accepted')} accepted, ${count('agreed')} agreed, ${count('disagreed')} disagreed, ${count('checked')} checked`,
    ''
  ]
  return [...head, ...rows.map(r => r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd())].join('\n') + '\n'
}
