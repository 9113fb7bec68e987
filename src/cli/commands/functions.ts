import * as dagCbor from '@ipld/dag-cbor'
import { resolve } from 'node:path'
import { bundleFunctions } from '../../functions/bundle.ts'
import { createManifest, encodeManifest } from '../../functions/manifest.ts'
import { RhizomeError } from '../../model/errors.ts'
import { connectApi } from '../api-client.ts'
import { CliError, EXIT_OK, EXIT_USAGE, dataDirOption, jsonOption } from '../command.ts'
import type { Command } from '../command.ts'

/** Matches the peer's limit (docs/LIMITS.md). */
const REPLICAS_MAX = 16

interface DeployResult {
  cid: string
  name: string
  exports: string[]
  alreadyDeployed: boolean
  replicas: Array<{ peer: string, ok: boolean, error?: string }>
}

export const deploy: Command = {
  name: 'deploy',
  summary: 'bundle a module of functions, content-address it, and replicate it to peers',
  usage: `rhizome deploy FILE [--replicas N] [--name NAME] [--data-dir DIR | --api URL] [--json]

  --replicas N   peers that keep a copy, chosen by rendezvous hashing on the function id (default 3, at most ${REPLICAS_MAX})
  --name NAME    a name to call it by on peers that hold it (default: the file name)`,
  options: { ...dataDirOption, ...jsonOption, replicas: { type: 'string' }, name: { type: 'string' } },
  positionals: [1, 1],
  async run (context) {
    const file = resolve(context.positionals[0])
    const replicas = context.values.replicas === undefined ? 3 : Number(context.values.replicas)
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > REPLICAS_MAX) {
      throw new CliError('ERR_USAGE', `--replicas must be an integer from 1 to ${REPLICAS_MAX}`, { exitCode: EXIT_USAGE })
    }
    const name = (context.values.name as string | undefined) ?? file.replace(/^.*\//, '').replace(/\.[cm]?[jt]s$/, '')
    let manifestBytes: Uint8Array
    let code: Uint8Array
    try {
      const bundle = await bundleFunctions(file)
      code = bundle.code
      manifestBytes = encodeManifest(await createManifest({ name, kind: 'js', code, exports: bundle.exports }))
    } catch (err) {
      if (err instanceof RhizomeError) throw new CliError(err.code, err.message, { hint: err.hint, exitCode: EXIT_USAGE })
      throw err
    }
    const api = await connectApi(context)
    const result = await api.json<DeployResult>('POST', '/v1/functions', dagCbor.encode({ manifest: manifestBytes, code, replicas }))
    if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify(result, null, 2) + '\n' }
    const held = result.replicas.filter(r => r.ok).length
    const lines = [
      `${result.alreadyDeployed ? 'already deployed' : 'deployed'}  ${result.name}`,
      `function id  ${result.cid}`,
      `exports      ${result.exports.join(', ')}`,
      `replicas     ${held}/${result.replicas.length} peers hold it${held < replicas ? ` (asked for ${replicas}; fewer peers are alive)` : ''}`,
      ...result.replicas.filter(r => !r.ok).map(r => `  ${r.peer}: ${r.error ?? 'failed'}`)
    ]
    return { exitCode: EXIT_OK, stdout: lines.join('\n') + '\n' }
  }
}

interface FunctionRow { cid: string, name: string, kind: string, codeBytes: number, exports: string[], origin: string }

export const functionsList: Command = {
  name: 'functions',
  summary: 'list the functions this peer holds',
  usage: 'rhizome functions [--data-dir DIR | --api URL] [--json]',
  options: { ...dataDirOption, ...jsonOption },
  positionals: [0, 0],
  async run (context) {
    const api = await connectApi(context)
    const { functions } = await api.json<{ functions: FunctionRow[] }>('GET', '/v1/functions')
    if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify(functions, null, 2) + '\n' }
    if (functions.length === 0) return { exitCode: EXIT_OK, stdout: 'no functions held by this peer; deploy one with `rhizome deploy FILE`\n' }
    const rows = [['FUNCTION ID', 'NAME', 'KIND', 'BYTES', 'ORIGIN', 'EXPORTS'], ...functions.map(f => [f.cid, f.name, f.kind, String(f.codeBytes), f.origin, f.exports.join(', ')])]
    const widths = rows[0].map((_, i) => Math.max(...rows.map(r => r[i].length)))
    return { exitCode: EXIT_OK, stdout: rows.map(r => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n' }
  }
}

interface CallAnswer {
  taskId: string
  resultCid: string
  value: unknown
  peer: string
  attempts: number
  timings: { queueMs: number, fetchMs: number, runMs: number, totalMs: number }
}

export const call: Command = {
  name: 'call',
  summary: 'run one task: call an export of a deployed function with JSON arguments',
  usage: `rhizome call FN EXPORT [ARG...] [--on PEER] [--timeout-ms N] [--data-dir DIR | --api URL] [--json]

  FN            a function id (from \`rhizome deploy\`) or a name this peer knows
  ARG           each argument as JSON: 5, '"text"', '[1,2]', '{"a":1}'
  --on PEER     run it on that peer (default: the least loaded of a random sample)`,
  options: { ...dataDirOption, ...jsonOption, on: { type: 'string' }, 'timeout-ms': { type: 'string' } },
  positionals: [2, 66],
  async run (context) {
    const [fn, exportName, ...rawArgs] = context.positionals
    const args = rawArgs.map((text, i) => {
      try {
        return JSON.parse(text) as unknown
      } catch {
        throw new CliError('ERR_USAGE', `argument ${i + 1} is not JSON: ${text}`, { exitCode: EXIT_USAGE, hint: 'strings need JSON quotes, e.g. \'"hello"\'' })
      }
    })
    const timeoutMs = context.values['timeout-ms'] === undefined ? undefined : Number(context.values['timeout-ms'])
    const api = await connectApi(context)
    const answer = await api.json<CallAnswer>('POST', '/v1/call', new TextEncoder().encode(JSON.stringify({ fn, export: exportName, args, on: context.values.on, timeoutMs })))
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
