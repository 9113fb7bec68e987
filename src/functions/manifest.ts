/**
 * A function's manifest: what a peer needs to know before running it — its kind, the CID of its
 * code, the exports that may be called, the limits each call runs under, and whether it is
 * deterministic. Encoded as deterministic dag-cbor; its CID is the function id, so the same code
 * with the same settings always has the same id.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { ProtocolViolationError, TooLargeError } from '../model/errors.ts'
import { CODE_BYTES_MAX, DEFAULT_LIMITS, limitsProblem } from '../sandbox/index.ts'
import type { FunctionKind, SandboxLimits } from '../sandbox/index.ts'

export const MANIFEST_VERSION = 'function/1'
/** A manifest lists names and numbers; 64 KiB holds hundreds of exports. */
export const MANIFEST_BYTES_MAX = 64 * 1024
/** Exports one function module may offer. */
export const EXPORTS_MAX = 256
/** Function names are for people: short and printable. */
export const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
const EXPORT_NAME = /^[A-Za-z_$][A-Za-z0-9_$]{0,127}$/

export interface FunctionManifest {
  rhizome: typeof MANIFEST_VERSION
  name: string
  kind: FunctionKind
  code: CID
  codeBytes: number
  exports: string[]
  limits: SandboxLimits
  deterministic: boolean
}

export interface ManifestInput {
  name: string
  kind: FunctionKind
  code: Uint8Array
  exports: string[]
  limits?: Partial<SandboxLimits>
  deterministic?: boolean
}

export async function createManifest (input: ManifestInput): Promise<FunctionManifest> {
  const manifest: FunctionManifest = {
    rhizome: MANIFEST_VERSION,
    name: input.name,
    kind: input.kind,
    code: CID.create(1, raw.code, await sha256.digest(input.code)),
    codeBytes: input.code.byteLength,
    exports: [...input.exports].sort(),
    limits: { ...DEFAULT_LIMITS, ...input.limits },
    deterministic: input.deterministic ?? true
  }
  validate(manifest)
  return manifest
}

export function encodeManifest (manifest: FunctionManifest): Uint8Array {
  validate(manifest)
  return dagCbor.encode({ ...manifest, limits: { ...manifest.limits } })
}

export function decodeManifest (bytes: Uint8Array): FunctionManifest {
  if (bytes.byteLength > MANIFEST_BYTES_MAX) throw new TooLargeError('function manifest', bytes.byteLength, MANIFEST_BYTES_MAX)
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err) {
    throw new ProtocolViolationError('function manifest is not valid dag-cbor', { cause: err })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ProtocolViolationError('function manifest must be a map')
  const m = value as Record<string, unknown>
  const limits = m.limits as Record<string, unknown> | undefined
  const manifest = {
    rhizome: m.rhizome,
    name: m.name,
    kind: m.kind,
    code: CID.asCID(m.code) ?? m.code,
    codeBytes: m.codeBytes,
    exports: m.exports,
    limits: typeof limits === 'object' && limits !== null ? { memoryBytesMax: limits.memoryBytesMax, timeMs: limits.timeMs, outputBytesMax: limits.outputBytesMax } : limits,
    deterministic: m.deterministic
  } as FunctionManifest
  const extra = Object.keys(m).filter(k => !(k in manifest))
  if (extra.length > 0) throw new ProtocolViolationError(`function manifest has unknown fields: ${extra.join(', ')}`)
  validate(manifest)
  return manifest
}

/** The function id: CIDv1, dag-cbor, sha2-256 of the manifest bytes. */
export async function manifestCid (bytes: Uint8Array): Promise<CID> {
  return CID.create(1, dagCbor.code, await sha256.digest(bytes))
}

function validate (m: FunctionManifest): void {
  const fail = (field: string, rule: string): never => { throw new ProtocolViolationError(`function manifest ${field} ${rule}`) }
  if (m.rhizome !== MANIFEST_VERSION) fail('rhizome', `must be "${MANIFEST_VERSION}"`)
  if (typeof m.name !== 'string' || !NAME.test(m.name)) fail('name', 'must be 1-64 characters of letters, digits, ".", "_" or "-"')
  if (m.kind !== 'js' && m.kind !== 'wasm') fail('kind', 'must be "js" or "wasm"')
  if (!(m.code instanceof CID) || m.code.code !== raw.code || m.code.multihash.code !== sha256.code) fail('code', 'must be a raw sha2-256 CID')
  if (typeof m.codeBytes !== 'number' || !Number.isSafeInteger(m.codeBytes) || m.codeBytes < 1 || m.codeBytes > CODE_BYTES_MAX[m.kind]) {
    fail('codeBytes', `must be an integer from 1 to ${CODE_BYTES_MAX[m.kind]}`)
  }
  if (!Array.isArray(m.exports) || m.exports.length === 0 || m.exports.length > EXPORTS_MAX) fail('exports', `must list 1 to ${EXPORTS_MAX} names`)
  for (const name of m.exports) if (typeof name !== 'string' || !EXPORT_NAME.test(name)) fail('exports', `has an invalid name ${JSON.stringify(name)}`)
  if (new Set(m.exports).size !== m.exports.length) fail('exports', 'has duplicates')
  if (typeof m.limits !== 'object' || m.limits === null) fail('limits', 'must be a map')
  const problem = limitsProblem(m.limits)
  if (problem !== undefined) fail('limits', problem)
  if (typeof m.deterministic !== 'boolean') fail('deterministic', 'must be true or false')
}
