import * as dagCbor from '@ipld/dag-cbor'
import { resolve } from 'node:path'
import { CODE_BYTES_MAX, DEFAULT_LIMITS, LIMITS_CEILING, LIMITS_FLOOR, bundleFunctions, createManifest, encodeManifest, limitsProblem, packageWasm } from '../../functions/index.ts'
import type { SandboxLimits } from '../../functions/index.ts'
import { RhizomeError } from '../../model/errors.ts'
import { exportNameProblem } from '../../model/export-name.ts'
import { readRegularFile } from '../../api/regular-file.ts'
import { callWaitMs, connectApi } from '../api-client.ts'
import { checkPeerIdFlag } from './blob.ts'
import { CliError, EXIT_OK, EXIT_USAGE, dataDirOption, jsonOption } from '../command.ts'
import type { Command } from '../command.ts'

const MIB = 1024 * 1024
/** Matches the peer's limit (docs/LIMITS.md). */
const REPLICAS_MAX = 16
/** Matches the peer's limit on a call's timeout (docs/LIMITS.md): checked here so a bad value exits 2 before the peer is asked. */
const CALL_TIMEOUT_MS_MAX = 3_600_000

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
  usage: `rhizome deploy FILE [--replicas N] [--name NAME] [--time-ms N] [--memory-mib N] [--output-bytes N]
                      [--data-dir DIR | --api URL] [--json]

  FILE           a TypeScript/JavaScript module (bundled with its relative imports), or a .wasm module
  --time-ms N    time limit of one call (default ${DEFAULT_LIMITS.timeMs})
  --memory-mib N memory limit of one call in MiB (default ${DEFAULT_LIMITS.memoryBytesMax / MIB})
  --output-bytes N  largest result of one call (default ${DEFAULT_LIMITS.outputBytesMax})
  --replicas N   peers that keep a copy, chosen by rendezvous hashing on the function id (default 3, at most ${REPLICAS_MAX})
  --name NAME    a name to call it by on peers that hold it (default: the file name)`,
  options: { ...dataDirOption, ...jsonOption, replicas: { type: 'string' }, name: { type: 'string' }, 'time-ms': { type: 'string' }, 'memory-mib': { type: 'string' }, 'output-bytes': { type: 'string' } },
  positionals: [1, 1],
  async run (context) {
    const file = resolve(context.positionals[0])
    const replicas = context.values.replicas === undefined ? 3 : Number(context.values.replicas)
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > REPLICAS_MAX) {
      throw new CliError('ERR_USAGE', `--replicas must be an integer from 1 to ${REPLICAS_MAX}, got ${JSON.stringify(context.values.replicas)}`, { exitCode: EXIT_USAGE, hint: 'e.g. --replicas 3 (the default)' })
    }
    const name = (context.values.name as string | undefined) ?? file.replace(/^.*\//, '').replace(/\.([cm]?[jt]s|wasm)$/, '')
    const limits = limitsFromFlags(context.values)
    let manifestBytes: Uint8Array
    let code: Uint8Array
    try {
      if (file.endsWith('.wasm')) {
        const bytes = await readWasm(file)
        const pkg = await packageWasm(bytes, { name, limits })
        code = pkg.code
        manifestBytes = encodeManifest(await createManifest({ name, kind: 'wasm', code, exports: pkg.exports, limits }))
      } else {
        const bundle = await bundleFunctions(file)
        code = bundle.code
        manifestBytes = encodeManifest(await createManifest({ name, kind: 'js', code, exports: bundle.exports, limits }))
      }
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

/**
 * A .wasm file is read whole, as a regular file (not a FIFO or device) and at most the wasm code
 * limit: past it the module cannot be deployed anyway.
 */
async function readWasm (file: string): Promise<Uint8Array> {
  return await readRegularFile(file, CODE_BYTES_MAX.wasm, 'wasm module')
}

const LIMITS_HINT = `see docs/LIMITS.md; the allowed ranges are --time-ms ${LIMITS_FLOOR.timeMs}..${LIMITS_CEILING.timeMs}, --memory-mib ${LIMITS_FLOOR.memoryBytesMax / MIB}..${LIMITS_CEILING.memoryBytesMax / MIB}, --output-bytes ${LIMITS_FLOOR.outputBytesMax}..${LIMITS_CEILING.outputBytesMax}`

function limitsFromFlags (values: Record<string, unknown>): SandboxLimits {
  const int = (flag: string): number | undefined => {
    const text = values[flag]
    if (text === undefined) return undefined
    const n = Number(text)
    if (typeof text !== 'string' || !/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new CliError('ERR_USAGE', `--${flag} must be a whole number, got ${JSON.stringify(text)}`, { exitCode: EXIT_USAGE, hint: LIMITS_HINT })
    return n
  }
  const memoryMib = int('memory-mib')
  const limits: SandboxLimits = {
    timeMs: int('time-ms') ?? DEFAULT_LIMITS.timeMs,
    memoryBytesMax: memoryMib === undefined ? DEFAULT_LIMITS.memoryBytesMax : memoryMib * MIB,
    outputBytesMax: int('output-bytes') ?? DEFAULT_LIMITS.outputBytesMax
  }
  const problem = limitsProblem(limits)
  if (problem !== undefined) throw new CliError('ERR_USAGE', `limits: ${problem}`, { exitCode: EXIT_USAGE, hint: LIMITS_HINT })
  return limits
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
  --on PEER     run it on that peer (default: the least loaded of a random sample)
  --timeout-ms N  give up after N ms, 1 to ${CALL_TIMEOUT_MS_MAX}`,
  options: { ...dataDirOption, ...jsonOption, on: { type: 'string' }, 'timeout-ms': { type: 'string' } },
  positionals: [2, 66],
  async run (context) {
    const [fn, exportName, ...rawArgs] = context.positionals
    const badExport = exportNameProblem(exportName)
    if (badExport !== undefined) throw new CliError('ERR_USAGE', `EXPORT ${badExport}`, { exitCode: EXIT_USAGE, hint: 'export names are JavaScript identifiers; `rhizome functions` lists each function\'s exports' })
    const args = rawArgs.map((text, i) => {
      try {
        return JSON.parse(text) as unknown
      } catch {
        throw new CliError('ERR_USAGE', `argument ${i + 1} is not JSON: ${text}`, { exitCode: EXIT_USAGE, hint: 'strings need JSON quotes, e.g. \'"hello"\'' })
      }
    })
    const timeoutMs = timeoutFromFlag(context.values['timeout-ms'])
    const on = context.values.on as string | undefined
    if (on !== undefined) checkPeerIdFlag('--on', on)
    const api = await connectApi(context)
    const answer = await api.json<CallAnswer>('POST', '/v1/call', new TextEncoder().encode(JSON.stringify({ fn, export: exportName, args, on: context.values.on, timeoutMs })), { timeoutMs: callWaitMs(timeoutMs) })
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

/** `--timeout-ms`: a whole number of ms from 1 to CALL_TIMEOUT_MS_MAX, refused here (exit 2) rather than by the peer. */
function timeoutFromFlag (value: unknown): number | undefined {
  if (value === undefined) return undefined
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN
  if (!Number.isSafeInteger(n) || n < 1 || n > CALL_TIMEOUT_MS_MAX) {
    throw new CliError('ERR_USAGE', `--timeout-ms must be a whole number of ms from 1 to ${CALL_TIMEOUT_MS_MAX}, got ${JSON.stringify(value)}`, { exitCode: EXIT_USAGE, hint: 'e.g. --timeout-ms 30000; leave it out for the peer\'s default' })
  }
  return n
}
