/**
 * Function manifests: what a deployed function is. The manifest names the code by CID (raw
 * codec, sha2-256), lists the callable exports, and carries the resource limits and whether
 * the function is deterministic. It is encoded as deterministic dag-cbor; its CID (dag-cbor
 * codec, sha2-256) is the function's id. The same code, name, exports and limits always give the
 * same manifest bytes and so the same id.
 *
 * A workflow bundle has a manifest too (kind 'workflow'; its exports are the workflow names, its
 * limits those of one activation): the same id scheme names the workflow a run runs. A workflow
 * is never run as a task; the task service refuses it by its kind.
 *
 * A manifest may carry a verification policy (src/model/verification.ts): how many peers run each
 * call and must agree on its result. A manifest without one has no `verification` key at all, so
 * the bytes (and the ids) of functions deployed before policies existed are unchanged. A workflow
 * manifest never has one: a workflow is never run as a task.
 *
 * Manifests arrive from other peers: decodeManifest caps the size before decoding, then checks
 * every field, refusing unknown fields and non-canonical encodings (so one function has one id).
 */

import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { TooLargeError } from '../model/errors.ts'
import { EXPORT_NAME_LENGTH_MAX, HIDDEN_CHARACTERS, exportNameProblem } from '../model/export-name.ts'
import { CODE_BYTES_MAX, DEFAULT_LIMITS, DEFAULT_WORKFLOW_LIMITS, limitsProblem } from '../sandbox/index.ts'
import type { FunctionKind, SandboxLimits } from '../sandbox/index.ts'
import { policyProblem } from '../model/verification.ts'
import type { VerificationPolicy } from '../model/verification.ts'
import { InvalidManifestError } from './errors.ts'

export const FUNCTION_MANIFEST_VERSION = 'function/1'

/** What the code is: a module of functions (JS or wasm), or a workflow bundle (JS, run by a run's driver). */
export type ManifestKind = FunctionKind | 'workflow'
export const MANIFEST_KINDS: readonly ManifestKind[] = ['js', 'wasm', 'workflow']

export interface FunctionManifest {
  rhizome: typeof FUNCTION_MANIFEST_VERSION
  name: string
  kind: ManifestKind
  /** Raw CID of the code (the JS bundle or the wasm module). */
  code: CID
  codeBytes: number
  /** Callable exports (for a workflow: its workflows), sorted, unique. */
  exports: string[]
  /** For a workflow: the limits of one activation (DEFAULT_WORKFLOW_LIMITS unless given). */
  limits: SandboxLimits
  /** True when equal calls give equal results (the default): results may be verified by replicas. */
  deterministic: boolean
  /** How many peers run each call and must agree (absent: the driving peer's default). Never on a workflow. */
  verification?: VerificationPolicy
}

/**
 * Largest encoded manifest accepted. A manifest is ~100 bytes plus its export names: 256 names
 * of 128 characters fit in 64 KiB with room to spare.
 */
export const MANIFEST_BYTES_MAX = 64 * 1024
/** Longest function name: a human label, shown in the CLI and dashboard. */
export const FUNCTION_NAME_LENGTH_MAX = 128
/** Most exports per function: a module, not a library of everything. */
export const EXPORTS_MAX = 256
/** Longest export name: the one rule of src/model/export-name.ts, which the task protocol uses too. */
export { EXPORT_NAME_LENGTH_MAX }

const FIELDS = ['code', 'codeBytes', 'deterministic', 'exports', 'kind', 'limits', 'name', 'rhizome']
/** Fields a manifest may leave out; when absent they are not in the bytes at all. */
const OPTIONAL_FIELDS = ['verification']
/** The limits a manifest carries, each exactly once (own keys; "toString" or "__proto__" are not limits). */
/** A UTF-16 surrogate without its pair: not a character, and not encodable as UTF-8. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
const LIMIT_FIELDS = Object.keys(DEFAULT_LIMITS).sort()

export interface ManifestInput {
  name: string
  kind: ManifestKind
  code: Uint8Array
  exports: string[]
  limits?: SandboxLimits
  deterministic?: boolean
  verification?: VerificationPolicy
}

/** The raw CID (CIDv1, codec 0x55, sha2-256) of function code. */
export async function codeCid (code: Uint8Array): Promise<CID> {
  return CID.create(1, raw.code, await sha256.digest(code))
}

/** Build and check a manifest for `code`. Exports are sorted and deduplicated. */
export async function createManifest (input: ManifestInput): Promise<FunctionManifest> {
  const manifest: FunctionManifest = {
    rhizome: FUNCTION_MANIFEST_VERSION,
    name: input.name,
    kind: input.kind,
    code: await codeCid(input.code),
    codeBytes: input.code.length,
    exports: [...new Set(input.exports)].sort(compareStrings),
    limits: { ...(input.limits ?? (input.kind === 'workflow' ? DEFAULT_WORKFLOW_LIMITS : DEFAULT_LIMITS)) },
    deterministic: input.deterministic ?? true
  }
  // Only when given: an absent policy leaves the bytes (and the id) as they were before policies.
  if (input.verification !== undefined) {
    const { replicas, quorum, spotCheckRate } = input.verification
    manifest.verification = { replicas, quorum, spotCheckRate }
  }
  return validateManifest(manifest)
}

/** Deterministic dag-cbor bytes of a (valid) manifest. */
export function encodeManifest (manifest: FunctionManifest): Uint8Array {
  const checked = validateManifest(manifest)
  const bytes = dagCbor.encode(checked)
  if (bytes.length > MANIFEST_BYTES_MAX) throw new TooLargeError('function manifest', bytes.length, MANIFEST_BYTES_MAX)
  return bytes
}

/** Decode and check manifest bytes from anywhere (another peer, a file). */
export function decodeManifest (bytes: Uint8Array): FunctionManifest {
  if (!(bytes instanceof Uint8Array)) throw new InvalidManifestError('bytes', 'must be a Uint8Array')
  if (bytes.length > MANIFEST_BYTES_MAX) throw new TooLargeError('function manifest', bytes.length, MANIFEST_BYTES_MAX)
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err) {
    throw new InvalidManifestError('bytes', `not dag-cbor: ${(err as Error).message}`, { cause: err })
  }
  const manifest = validateManifest(value)
  if (!equalBytes(dagCbor.encode(manifest), bytes)) throw new InvalidManifestError('bytes', 'not in canonical dag-cbor form')
  return manifest
}

/** The manifest's CID (CIDv1, dag-cbor codec 0x71, sha2-256): the function id. */
export async function manifestCid (bytes: Uint8Array): Promise<CID> {
  return CID.create(1, dagCbor.code, await sha256.digest(bytes))
}

/** Check every field of `value` as a manifest; returns it typed, or throws InvalidManifestError. */
export function validateManifest (value: unknown): FunctionManifest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidManifestError('(root)', 'must be a map')
  const m = value as Record<string, unknown>
  for (const key of Object.keys(m)) {
    if (!FIELDS.includes(key) && !OPTIONAL_FIELDS.includes(key)) throw new InvalidManifestError(/^[A-Za-z0-9_]{1,64}$/.test(key) ? key : JSON.stringify(key), 'is not a manifest field')
  }
  // A decoded map may carry a "__proto__" key as an own property (Object.keys skips nothing, but
  // code reading m.limits must not reach Object.prototype): every field read below is own.
  for (const key of FIELDS) {
    if (!Object.hasOwn(m, key)) throw new InvalidManifestError(key, 'is missing')
  }
  if (m.rhizome !== FUNCTION_MANIFEST_VERSION) throw new InvalidManifestError('rhizome', `must be "${FUNCTION_MANIFEST_VERSION}"`)
  checkLabel('name', m.name, FUNCTION_NAME_LENGTH_MAX)
  if (!MANIFEST_KINDS.includes(m.kind as ManifestKind)) throw new InvalidManifestError('kind', 'must be "js", "wasm" or "workflow"')
  const code = CID.asCID(m.code)
  if (code === null) throw new InvalidManifestError('code', 'must be a CID')
  if (code.version !== 1 || code.code !== raw.code || code.multihash.code !== sha256.code || code.multihash.size !== 32) {
    throw new InvalidManifestError('code', 'must be a CIDv1 with the raw codec and a sha2-256 hash')
  }
  // A workflow bundle is a JS module, and is held to the JS code limit.
  const codeBytesMax = CODE_BYTES_MAX[m.kind === 'wasm' ? 'wasm' : 'js']
  if (typeof m.codeBytes !== 'number' || !Number.isSafeInteger(m.codeBytes) || m.codeBytes < 1 || m.codeBytes > codeBytesMax) {
    throw new InvalidManifestError('codeBytes', `must be an integer from 1 to ${codeBytesMax} for ${m.kind} code`)
  }
  checkExports(m.exports)
  checkLimitKeys(m.limits)
  const problem = limitsProblem(m.limits)
  if (problem !== undefined) throw new InvalidManifestError('limits', problem)
  if (typeof m.deterministic !== 'boolean') throw new InvalidManifestError('deterministic', 'must be a boolean')
  if (Object.hasOwn(m, 'verification')) checkVerification(m.kind as ManifestKind, m.verification)
  return m as unknown as FunctionManifest
}

/** A policy is checked field by field (src/model/verification.ts); a workflow may not have one. */
function checkVerification (kind: ManifestKind, policy: unknown): void {
  if (kind === 'workflow') throw new InvalidManifestError('verification', 'is not allowed on a workflow: a workflow is never run as a task', { hint: 'give the policy to the function modules the workflow calls, e.g. `rhizome run FILE EXPORT --verify-replicas 3`' })
  const problem = policyProblem(policy)
  if (problem !== undefined) throw new InvalidManifestError('verification', problem, { hint: 'e.g. { replicas: 3, quorum: 2, spotCheckRate: 0.05 }, or `rhizome deploy FILE --verify-replicas 3 --quorum 2`' })
}

function checkLabel (field: string, value: unknown, lengthMax: number): void {
  if (typeof value !== 'string' || value.length === 0 || value.length > lengthMax) throw new InvalidManifestError(field, `must be a string of 1 to ${lengthMax} characters`)
  const hidden = HIDDEN_CHARACTERS.exec(value)
  if (hidden !== null) {
    const code = `U+${hidden[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`
    throw new InvalidManifestError(field, `must not contain control, bidi or invisible characters (found ${code} at position ${hidden.index})`, { hint: 'use visible characters only, e.g. --name my-functions' })
  }
  if (LONE_SURROGATE.test(value)) throw new InvalidManifestError(field, 'must be well-formed Unicode (it has a lone surrogate)')
}

/**
 * The limits map has exactly the known limit keys, as own properties. A check with `in` would
 * take "toString" or "__proto__" as limits, and the same code with such an extra key would get a
 * second function id.
 */
function checkLimitKeys (limits: unknown): void {
  if (typeof limits !== 'object' || limits === null || Array.isArray(limits)) throw new InvalidManifestError('limits', 'must be a map')
  for (const key of Object.keys(limits)) {
    if (!LIMIT_FIELDS.includes(key)) throw new InvalidManifestError('limits', `has an unknown field ${JSON.stringify(key)}; the fields are ${LIMIT_FIELDS.join(', ')}`)
  }
  for (const key of LIMIT_FIELDS) {
    if (!Object.hasOwn(limits, key)) throw new InvalidManifestError('limits', `is missing ${key}`)
  }
  if (Object.getPrototypeOf(limits) !== Object.prototype && Object.getPrototypeOf(limits) !== null) throw new InvalidManifestError('limits', 'must be a plain map')
}

function checkExports (exports: unknown): void {
  if (!Array.isArray(exports) || exports.length === 0 || exports.length > EXPORTS_MAX) {
    throw new InvalidManifestError('exports', `must be a list of 1 to ${EXPORTS_MAX} names`)
  }
  for (let i = 0; i < exports.length; i++) {
    // The task protocol refuses a call of any other name, so such an export could never be called.
    const problem = exportNameProblem(exports[i])
    if (problem !== undefined) throw new InvalidManifestError(`exports[${i}]`, problem, { hint: 'export names are JavaScript identifiers, e.g. sum or parse_row' })
    if (i > 0 && compareStrings(exports[i - 1] as string, exports[i] as string) >= 0) {
      throw new InvalidManifestError('exports', 'must be sorted and without duplicates')
    }
  }
}

function compareStrings (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
