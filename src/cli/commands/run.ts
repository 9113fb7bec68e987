import * as dagCbor from '@ipld/dag-cbor'
import { relative, resolve } from 'node:path'
import { REPLICAS_MAX } from '../../api/limits.ts'
import { bundleWorkflow, createManifest, encodeManifest } from '../../functions/index.ts'
import type { WorkflowBundle } from '../../functions/index.ts'
import { exportNameProblem } from '../../model/export-name.ts'
import { RhizomeError } from '../../model/errors.ts'
import { CliError, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, dataDirOption, jsonOption } from '../command.ts'
import { connectPeer } from '../connect.ts'
import { detachedText, followRun } from '../run-follow.ts'
import { formatRunReport, runFailure } from '../run-report.ts'
import { jsonArgs } from './call.ts'
import { autoParallel } from './check.ts'
import { DEPLOY_REPLICAS_DEFAULT, VERIFY_USAGE, moduleName, packageModule, policyFromFlags, verifyOptions } from './deploy.ts'
import type { VerificationPolicy } from '../../model/verification.ts'
import type { RhizomeClient } from '../../api/client.ts'
import type { DeployResult, RunReport } from '../../api/types.ts'
import type { Command, CommandContext, CommandResult } from '../command.ts'

/** Copies of a workflow bundle: the peer that drives the run holds it; a run is driven where it starts. */
export const WORKFLOW_REPLICAS_DEFAULT = 1

export const run: Command = {
  usage: `rhizome run FILE EXPORT [ARG...] [--detach] [--replicas N] [--verify-replicas N] [--quorum K]
                   [--spot-check-rate P] [--auto-parallel] [--data-dir DIR | --api URL] [--json]

  FILE          a workflow module (TypeScript/JavaScript) that imports @rhizome-net/rhizome
  EXPORT        the workflow to run: an export marked with workflow()
  ARG           each argument as JSON: 5, '"text"', '[1,2]', '{"a":1}'
  --detach      start the run and return at once, printing its id
  --replicas N  peers that keep the workflow bundle (default ${WORKFLOW_REPLICAS_DEFAULT}, the peer driving the run; at most ${REPLICAS_MAX})
  --json        print the report as JSON (with --detach: {"runId": ...})
  --auto-parallel  before bundling, rewrite independent awaits of FILE into Promise.all, as
                \`rhizome check --fix\` would, without changing the file
${VERIFY_USAGE}
                 (each applies to every function module the workflow imports; a workflow itself
                 always runs on the peer that drives it)

  Each module of functions the workflow imports is deployed first, as \`rhizome deploy\` would
  (${DEPLOY_REPLICAS_DEFAULT} replicas): the same file gets the same id, and deploying it again is no work.
  Then the workflow bundle is deployed and the run starts on the peer; its progress is shown until
  it ends, then its result, which peer ran which task, and the critical path.
  Ctrl-C stops following, not the run: the peer drives it to its end. Follow it again with
  \`rhizome run-status ID --wait\`, or stop it with \`rhizome cancel ID\`.`,
  options: { ...dataDirOption, ...jsonOption, ...verifyOptions, detach: { type: 'boolean' }, replicas: { type: 'string' }, 'auto-parallel': { type: 'boolean' } },
  positionals: [2, 66],
  async run (context) {
    const [file, exportName, ...rawArgs] = context.positionals
    const badExport = exportNameProblem(exportName)
    if (badExport !== undefined) throw new CliError('ERR_USAGE', `EXPORT ${badExport}`, { exitCode: EXIT_USAGE, hint: 'EXPORT is the name of an exported workflow, e.g. `rhizome run flow.ts A 5`' })
    const args = jsonArgs(rawArgs)
    const replicas = replicasFromFlag(context.values.replicas)
    const verification = policyFromFlags(context.values)
    const json = context.values.json === true
    const client = await connectPeer(context)
    const deployed: Array<{ file: string, result: DeployResult }> = []
    const rewrite = context.values['auto-parallel'] === true ? await autoParallel() : undefined
    const bundle = await bundleForRun(resolve(file), client, context, deployed, verification, rewrite?.transform)
    if (!bundle.workflows.includes(exportName)) {
      throw new CliError('ERR_USAGE', `${file} has no workflow ${JSON.stringify(exportName)}; its workflows are ${bundle.workflows.join(', ')}`, { exitCode: EXIT_USAGE, hint: 'name one of them, or mark the export with workflow(): `export const A = workflow(async (x) => ...)`' })
    }
    const manifest = encodeManifest(await createManifest({ name: moduleName(resolve(file)), kind: 'workflow', code: bundle.code, exports: bundle.workflows }))
    const workflow = await client.deploy(dagCbor.encode({ manifest, code: bundle.code, replicas }))
    const { runId } = await client.startRun({ workflow: workflow.cid, export: exportName, args })
    if (!json) {
      const lines = deployed.map(d => `functions  ${relative(process.cwd(), d.file) || d.file}  ${d.result.cid}${d.result.alreadyDeployed ? ' (already deployed)' : ''}`)
      if (rewrite !== undefined) lines.push(`auto-parallel  ${rewrite.applied()} ${rewrite.applied() === 1 ? 'rewrite' : 'rewrites'} applied to ${relative(process.cwd(), resolve(file)) || file}`)
      lines.push(`workflow   ${workflow.name}  ${workflow.cid}`, `run        ${runId}`)
      context.print(lines.join('\n') + '\n')
    }
    if (context.values.detach === true) {
      return { exitCode: EXIT_OK, stdout: json ? JSON.stringify({ runId }) + '\n' : detachedText(runId, context).replace(/^.*\n/, `started run ${runId}\n`) }
    }
    const last = await followRun(client, runId, context, !json)
    if (last === undefined) return { exitCode: EXIT_INTERRUPTED, stdout: detachedText(runId, context) }
    return reportResult(await client.run(last), context, true)
  }
}

/**
 * Bundle the workflow, deploying each function module it imports through the peer's API. The
 * user's mistakes in the sources (a forbidden import, a syntax error, no workflow) exit 2; what the
 * peer answers (unreachable, refused) is reported as the peer's error.
 */
async function bundleForRun (file: string, client: RhizomeClient, context: CommandContext, deployed: Array<{ file: string, result: DeployResult }>, verification: VerificationPolicy | undefined, transformEntry?: (text: string, file: string) => string): Promise<WorkflowBundle> {
  const fromPeer = new WeakSet<object>()
  try {
    return await bundleWorkflow(file, {
      signal: context.signal,
      transformEntry,
      deployFunctionModule: async (absPath) => {
        const { manifestBytes, code } = await packageModule(absPath, moduleName(absPath), undefined, verification)
        try {
          const result = await client.deploy(dagCbor.encode({ manifest: manifestBytes, code, replicas: DEPLOY_REPLICAS_DEFAULT }))
          deployed.push({ file: absPath, result })
          return { fnId: result.cid, exports: result.exports }
        } catch (err) {
          if (typeof err === 'object' && err !== null) fromPeer.add(err)
          throw err
        }
      }
    })
  } catch (err) {
    if (err instanceof RhizomeError && !(err instanceof CliError) && !fromPeer.has(err)) throw new CliError(err.code, err.message, { hint: err.hint, exitCode: EXIT_USAGE, cause: err })
    throw err
  }
}

/**
 * A run's report as the command's result. `strict`: a run that did not finish exits 1 with its
 * error and hint (after the report, so which task failed where is on screen).
 */
export function reportResult (report: RunReport, context: CommandContext, strict: boolean): CommandResult {
  const ok = report.status === 'finished' || !strict
  if (context.values.json === true) return { exitCode: ok ? EXIT_OK : EXIT_FAILED, stdout: JSON.stringify(report, null, 2) + '\n' }
  if (ok) return { exitCode: EXIT_OK, stdout: formatRunReport(report) }
  context.print(formatRunReport(report))
  throw runFailure(report)
}

function replicasFromFlag (value: unknown): number {
  if (value === undefined) return WORKFLOW_REPLICAS_DEFAULT
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN
  if (!Number.isSafeInteger(n) || n < 1 || n > REPLICAS_MAX) {
    throw new CliError('ERR_USAGE', `--replicas must be an integer from 1 to ${REPLICAS_MAX}, got ${JSON.stringify(value)}`, { exitCode: EXIT_USAGE, hint: `e.g. --replicas 3; the default, ${WORKFLOW_REPLICAS_DEFAULT}, keeps the bundle on the peer that drives the run` })
  }
  return n
}
