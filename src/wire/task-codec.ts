/**
 * Messages of the task protocol (`/rhizome/<net>/task/1.0.0`, docs/PROTOCOLS.md) and the task id.
 *
 * A task is one call of a function export with arguments. Its id is the CID (dag-cbor,
 * sha2-256) of `{ function, export, args }`, so equal calls are the same task on every peer.
 * A worker answers with an attestation — its signed statement that this task gave this result —
 * and, when small enough, the result bytes themselves.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { ProtocolViolationError } from '../model/errors.ts'
import { EXPORT_NAME, EXPORT_NAME_LENGTH_MAX } from '../model/export-name.ts'
import { PEER_ID_CHARS_MAX } from '../model/limits.ts'
import { asCid, isRecord } from './rpc.ts'

/** Arguments ride in the request frame; 1 MiB keeps frames small. Larger inputs belong in blobs. */
export const TASK_ARGS_BYTES_MAX = 1024 * 1024
/** Results up to 256 KiB come back in the reply; larger ones are fetched as a blob. */
export const RESULT_INLINE_BYTES_MAX = 256 * 1024
/** Ed25519 signatures are 64 bytes; leave room for other key types. */
const SIGNATURE_BYTES_MAX = 1024
/** Keeps attestations of Rhizome tasks from being replayed as signatures over anything else. */
export const ATTESTATION_DOMAIN = 'rhizome/attestation/1'

export interface TaskRequest {
  fn: CID
  export: string
  args: unknown[]
}

export interface Attestation {
  task: CID
  result: CID
  peer: string
  signature: Uint8Array
}

export interface TaskTimings {
  queueMs: number
  fetchMs: number
  runMs: number
}

export interface TaskReply {
  attestation: Attestation
  /** dag-cbor bytes of the result, when at most RESULT_INLINE_BYTES_MAX. */
  result?: Uint8Array
  timings: TaskTimings
}

export async function taskId (fn: CID, exportName: string, args: unknown[]): Promise<CID> {
  const bytes = dagCbor.encode({ function: fn, export: exportName, args })
  return CID.create(1, dagCbor.code, await sha256.digest(bytes))
}

/** The bytes a worker signs: the attestation minus its signature, under a domain tag. */
export function attestationSigningBytes (task: CID, result: CID, peer: string): Uint8Array {
  return dagCbor.encode({ domain: ATTESTATION_DOMAIN, task, result, peer })
}

export function encodeTaskRequest (request: TaskRequest): Record<string, unknown> {
  return { fn: request.fn, export: request.export, args: request.args }
}

export function parseTaskRequest (body: unknown): TaskRequest {
  if (!isRecord(body)) throw new ProtocolViolationError('task request must be a map')
  const fn = asCid(body.fn, 'task request fn')
  const exportName = body.export
  if (typeof exportName !== 'string' || !EXPORT_NAME.test(exportName)) throw new ProtocolViolationError(`task request export must be an identifier of at most ${EXPORT_NAME_LENGTH_MAX} characters`)
  if (!Array.isArray(body.args)) throw new ProtocolViolationError('task request args must be an array')
  return { fn, export: exportName, args: body.args }
}

export function encodeTaskReply (reply: TaskReply): Record<string, unknown> {
  const out: Record<string, unknown> = { attestation: { ...reply.attestation }, timings: { ...reply.timings } }
  if (reply.result !== undefined) out.result = reply.result
  return out
}

export function parseTaskReply (body: unknown): TaskReply {
  if (!isRecord(body)) throw new ProtocolViolationError('task reply must be a map')
  const a = body.attestation
  if (!isRecord(a)) throw new ProtocolViolationError('task reply attestation must be a map')
  if (typeof a.peer !== 'string' || a.peer.length > PEER_ID_CHARS_MAX) throw new ProtocolViolationError('attestation peer must be a peer id string')
  if (!(a.signature instanceof Uint8Array) || a.signature.byteLength > SIGNATURE_BYTES_MAX) throw new ProtocolViolationError('attestation signature must be bytes')
  const attestation: Attestation = { task: asCid(a.task, 'attestation task'), result: asCid(a.result, 'attestation result'), peer: a.peer, signature: a.signature }
  const t = body.timings
  if (!isRecord(t)) throw new ProtocolViolationError('task reply timings must be a map')
  const ms = (v: unknown, name: string): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 2 ** 31) throw new ProtocolViolationError(`task reply timings.${name} must be a non-negative number`)
    return v
  }
  const reply: TaskReply = { attestation, timings: { queueMs: ms(t.queueMs, 'queueMs'), fetchMs: ms(t.fetchMs, 'fetchMs'), runMs: ms(t.runMs, 'runMs') } }
  if (body.result !== undefined) {
    if (!(body.result instanceof Uint8Array) || body.result.byteLength > RESULT_INLINE_BYTES_MAX) throw new ProtocolViolationError(`task reply result must be bytes of at most ${RESULT_INLINE_BYTES_MAX}`)
    reply.result = body.result
  }
  return reply
}
