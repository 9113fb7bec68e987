import * as dagCbor from '@ipld/dag-cbor'
import { resolve } from 'node:path'
import { REPLICAS_MAX } from '../../api/limits.ts'
import { CODE_BYTES_MAX, DEFAULT_LIMITS, LIMITS_CEILING, LIMITS_FLOOR, bundleFunctions, createManifest, encodeManifest, limitsProblem, packageWasm } from '../../functions/index.ts'
import type { SandboxLimits } from '../../functions/index.ts'
import { RhizomeError } from '../../model/errors.ts'
import { REPLICAS_MAX as VERIFY_REPLICAS_MAX, majorityQuorum, policyProblem } from '../../model/verification.ts'
import type { VerificationPolicy } from '../../model/verification.ts'
import { readRegularFile } from '../../api/regular-file.ts'
import { CliError, EXIT_OK, EXIT_USAGE, dataDirOption, jsonOption } from '../command.ts'
import { connectPeer } from '../connect.ts'
import type { Command } from '../command.ts'

const MIB = 1024 * 1024

/** Copies of a deployed module: the deploying peer and two more, so it outlives one peer going away. */
export const DEPLOY_REPLICAS_DEFAULT = 3

/**
 * The verification flags, shared by `deploy` and `run`. `--replicas` already means the copies of
 * the code a deploy keeps, so the peers that run each call are `--verify-replicas`.
 */
export const verifyOptions = { 'verify-replicas': { type: 'string' }, quorum: { type: 'string' }, 'spot-check-rate': { type: 'string' } } as const

export const VERIFY_USAGE = `  --verify-replicas N  distinct peers that run each call of it (1..${VERIFY_REPLICAS_MAX}); without the verification
                 flags, the calling peer's default applies (trusted: 1 peer; open: 2 of 3, 5% spot checks)
  --quorum K     of those, how many must return the same result (default: a majority, floor(N/2)+1)
  --spot-check-rate P  chance (0..1) that a result taken from one peer is re-run on another (default 0)`

const VERIFY_HINT = `e.g. --verify-replicas 3 --quorum 2 --spot-check-rate 0.05; quorum is 1 for one replica, else 2..N; replicas at most ${VERIFY_REPLICAS_MAX}`

export const deploy: Command = {
  usage: `rhizome deploy FILE [--replicas N] [--name NAME] [--time-ms N] [--memory-mib N] [--output-bytes N]
                      [--verify-replicas N] [--quorum K] [--spot-check-rate P] [--data-dir DIR | --api URL] [--json]

  FILE           a TypeScript/JavaScript module (bundled with its relative imports), or a .wasm module
  --time-ms N    time limit of one call (default ${DEFAULT_LIMITS.timeMs})
  --memory-mib N memory limit of one call in MiB (default ${DEFAULT_LIMITS.memoryBytesMax / MIB})
  --output-bytes N  largest result of one call (default ${DEFAULT_LIMITS.outputBytesMax})
  --replicas N   peers that keep a copy, chosen by rendezvous hashing on the function id (default 3, at most ${REPLICAS_MAX})
  --name NAME    a name to call it by on peers that hold it (default: the file name)
${VERIFY_USAGE}`,
  options: { ...dataDirOption, ...jsonOption, ...verifyOptions, replicas: { type: 'string' }, name: { type: 'string' }, 'time-ms': { type: 'string' }, 'memory-mib': { type: 'string' }, 'output-bytes': { type: 'string' } },
  positionals: [1, 1],
  async run (context) {
    const file = resolve(context.positionals[0])
    const replicas = context.values.replicas === undefined ? DEPLOY_REPLICAS_DEFAULT : Number(context.values.replicas)
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > REPLICAS_MAX) {
      throw new CliError('ERR_USAGE', `--replicas must be an integer from 1 to ${REPLICAS_MAX}, got ${JSON.stringify(context.values.replicas)}`, { exitCode: EXIT_USAGE, hint: 'e.g. --replicas 3 (the default)' })
    }
    const name = (context.values.name as string | undefined) ?? moduleName(file)
    const limits = limitsFromFlags(context.values)
    const verification = policyFromFlags(context.values)
    const { manifestBytes, code } = await packageModule(file, name, limits, verification)
    const result = await (await connectPeer(context)).deploy(dagCbor.encode({ manifest: manifestBytes, code, replicas }))
    if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify(result, null, 2) + '\n' }
    const held = result.replicas.filter(r => r.ok).length
    const lines = [
      `${result.alreadyDeployed ? 'already deployed' : 'deployed'}  ${result.name}`,
      `function id  ${result.cid}`,
      `exports      ${result.exports.join(', ')}`,
      ...(verification === undefined ? [] : [`verification ${describePolicy(verification)}`]),
      `replicas     ${held}/${result.replicas.length} peers hold it${held < replicas ? ` (asked for ${replicas}; fewer peers are alive)` : ''}`,
      ...result.replicas.filter(r => !r.ok).map(r => `  ${r.peer}: ${r.error ?? 'failed'}`)
    ]
    return { exitCode: EXIT_OK, stdout: lines.join('\n') + '\n' }
  }
}

/** The name a module is deployed under by default: its file name without the extension. */
export function moduleName (file: string): string {
  return file.replace(/^.*\//, '').replace(/\.([cm]?[jt]s|wasm)$/, '')
}

/**
 * Bundle (or check) a module and write its manifest: what `rhizome deploy` sends, and what
 * `rhizome run` sends for each function module a workflow imports, so the same file deployed
 * either way gets the same function id (and the second deploy is no work). Packaging errors are
 * the user's to fix: exit 2.
 */
export async function packageModule (file: string, name: string, limits: SandboxLimits = DEFAULT_LIMITS, verification?: VerificationPolicy): Promise<{ manifestBytes: Uint8Array, code: Uint8Array }> {
  try {
    if (file.endsWith('.wasm')) {
      const bytes = await readWasm(file)
      const pkg = await packageWasm(bytes, { name, limits })
      return { code: pkg.code, manifestBytes: encodeManifest(await createManifest({ name, kind: 'wasm', code: pkg.code, exports: pkg.exports, limits, verification })) }
    }
    const bundle = await bundleFunctions(file)
    return { code: bundle.code, manifestBytes: encodeManifest(await createManifest({ name, kind: 'js', code: bundle.code, exports: bundle.exports, limits, verification })) }
  } catch (err) {
    if (err instanceof RhizomeError && !(err instanceof CliError)) throw new CliError(err.code, err.message, { hint: err.hint, exitCode: EXIT_USAGE })
    throw err
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

/**
 * The policy the verification flags ask for, or undefined when none is given (the manifest then
 * has no policy, and keeps the id it always had). Only `--verify-replicas N`: a strict majority
 * of N; only `--spot-check-rate P`: one peer, spot-checked.
 */
export function policyFromFlags (values: Record<string, unknown>): VerificationPolicy | undefined {
  const text = (flag: string): string | undefined => values[flag] as string | undefined
  if (text('verify-replicas') === undefined && text('quorum') === undefined && text('spot-check-rate') === undefined) return undefined
  const usage = (message: string): CliError => new CliError('ERR_USAGE', message, { exitCode: EXIT_USAGE, hint: VERIFY_HINT })
  const whole = (flag: string): number | undefined => {
    const value = text(flag)
    if (value === undefined) return undefined
    if (!/^\d{1,6}$/.test(value)) throw usage(`--${flag} must be a whole number, got ${JSON.stringify(value)}`)
    return Number(value)
  }
  const replicasGiven = whole('verify-replicas')
  const quorumGiven = whole('quorum')
  if (replicasGiven === undefined && quorumGiven !== undefined) throw usage('--quorum needs --verify-replicas N: the peers that run each call (--replicas is the copies of the code)')
  const rateText = text('spot-check-rate')
  if (rateText !== undefined && !/^(\d+(\.\d*)?|\.\d+)$/.test(rateText)) throw usage(`--spot-check-rate must be a number from 0 to 1, got ${JSON.stringify(rateText)}`)
  const replicas = replicasGiven ?? 1
  const policy = { replicas, quorum: quorumGiven ?? majorityQuorum(replicas), spotCheckRate: rateText === undefined ? 0 : Number(rateText) }
  const problem = policyProblem(policy)
  if (problem !== undefined) throw usage(`verification: ${problem.replace(/^replicas/, '--verify-replicas').replace(/^quorum/, '--quorum').replace(/^spotCheckRate/, '--spot-check-rate')}`)
  return policy
}

/** One line for a policy: "3 peers, 2 must agree, 5% spot checks". */
export function describePolicy (p: VerificationPolicy): string {
  const peers = p.replicas === 1 ? '1 peer' : `${p.replicas} peers, ${p.quorum} must agree`
  return `${peers}${p.spotCheckRate > 0 ? `, ${+(p.spotCheckRate * 100).toFixed(2)}% spot checks` : ''}`
}
