/**
 * Messages of the task protocol (`/rhizome/<net>/task/1.0.0`, docs/PROTOCOLS.md) and the task id.
 *
 * A task is one call of a function export with arguments. Its id is the CID (dag-cbor,
 * sha2-256) of `{ function, export, args }`, so equal calls are the same task on every peer.
 * A worker answers with an attestation — its signed statement that this task gave this result —
 * and, when small enough and not asked for by reference (`ref`), the result bytes themselves.
 *
 * A request may name some of its arguments by content: an argument that is a CID link (dag-cbor
 * tag 42), listed in `inputs` with the peers that hold it, is fetched by the worker and replaced by
 * its value before the call. The link stays in `args`, so the task id names its inputs by CID.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { ProtocolViolationError } from '../model/errors.ts'
import { EXPORT_NAME, EXPORT_NAME_LENGTH_MAX } from '../model/export-name.ts'
import { PEER_ID_CHARS_MAX, SIGNATURE_BYTES_MAX } from '../model/limits.ts'
import { asCid, isRecord } from './rpc.ts'

/** Arguments ride in the request frame; 1 MiB keeps frames small. Larger inputs belong in blobs. */
export const TASK_ARGS_BYTES_MAX = 1024 * 1024
/** Results up to 256 KiB come back in the reply; larger ones are fetched as a blob. */
export const RESULT_INLINE_BYTES_MAX = 256 * 1024
/**
 * Inputs named by CID in one task request. A worker resolves only top-level arguments, and a
 * function with more than 16 positional parameters is not one anybody writes; each input may be
 * a whole blob (up to 64 MiB) to fetch, so the list is kept short. A larger fan-in belongs in a
 * dag-cbor value whose links the function resolves itself, or in a tree of tasks.
 */
export const TASK_INPUTS_MAX = 16
/**
 * Peers named as holding one input. The worker asks them in order, each with its own deadline;
 * 8 is the number of sources a function lookup tries (LOCATE_SOURCES_MAX in
 * src/net/function-service.ts): past it the chance that the next one serves is small and the
 * wait long.
 */
export const INPUT_PEERS_MAX = 8
/**
 * The bytes `inputs` may add to a request frame: per input a CID (under 100 bytes as dag-cbor) and
 * its peers' ids (PEER_ID_CHARS_MAX each) with a few bytes of CBOR framing each.
 */
export const TASK_INPUTS_FRAME_BYTES_MAX = TASK_INPUTS_MAX * (128 + INPUT_PEERS_MAX * (PEER_ID_CHARS_MAX + 8))
/** Keeps attestations of Rhizome tasks from being replayed as signatures over anything else. */
export const ATTESTATION_DOMAIN = 'rhizome/attestation/1'

/** A task argument named by CID, and the peers the caller says hold its bytes. */
export interface TaskInput {
  cid: CID
  peers: string[]
}

export interface TaskRequest {
  fn: CID
  export: string
  args: unknown[]
  /**
   * The caller wants the result by reference: the worker keeps the result blob and answers with
   * the attestation alone, never the bytes inline. Absent on the wire means false (peers that
   * predate it never send it).
   */
  ref?: boolean
  /**
   * Top-level arguments that are CID links the worker should resolve before running: it fetches
   * each from the peers named (or finds it in its own store) and passes the decoded value in the
   * link's place. Absent means none: every link is passed through as a CID.
   */
  inputs?: TaskInput[]
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
  const out: Record<string, unknown> = { fn: request.fn, export: request.export, args: request.args }
  // Written only when set, so a plain request is byte-for-byte what it was before these fields.
  if (request.ref === true) out.ref = true
  if (request.inputs !== undefined && request.inputs.length > 0) out.inputs = request.inputs.map(i => ({ cid: i.cid, peers: i.peers }))
  return out
}

export function parseTaskRequest (body: unknown): TaskRequest {
  if (!isRecord(body)) throw new ProtocolViolationError('task request must be a map')
  const fn = asCid(body.fn, 'task request fn')
  const exportName = body.export
  if (typeof exportName !== 'string' || !EXPORT_NAME.test(exportName)) throw new ProtocolViolationError(`task request export must be an identifier of at most ${EXPORT_NAME_LENGTH_MAX} characters`)
  if (!Array.isArray(body.args)) throw new ProtocolViolationError('task request args must be an array')
  const request: TaskRequest = { fn, export: exportName, args: body.args }
  if (body.ref !== undefined) {
    if (typeof body.ref !== 'boolean') throw new ProtocolViolationError('task request ref must be a boolean')
    if (body.ref) request.ref = true
  }
  if (body.inputs !== undefined) request.inputs = parseInputs(body.inputs)
  return request
}

function parseInputs (value: unknown): TaskInput[] {
  if (!Array.isArray(value)) throw new ProtocolViolationError('task request inputs must be an array')
  if (value.length > TASK_INPUTS_MAX) throw new ProtocolViolationError(`task request names ${value.length} inputs; at most ${TASK_INPUTS_MAX} are allowed`)
  return value.map((entry: unknown, i) => {
    if (!isRecord(entry)) throw new ProtocolViolationError(`task request inputs[${i}] must be a map`)
    const cid = asCid(entry.cid, `task request inputs[${i}].cid`)
    const peers = entry.peers
    if (!Array.isArray(peers)) throw new ProtocolViolationError(`task request inputs[${i}].peers must be an array`)
    if (peers.length > INPUT_PEERS_MAX) throw new ProtocolViolationError(`task request inputs[${i}] names ${peers.length} peers; at most ${INPUT_PEERS_MAX} are allowed`)
    for (const peer of peers) {
      if (typeof peer !== 'string' || peer.length === 0 || peer.length > PEER_ID_CHARS_MAX) throw new ProtocolViolationError(`task request inputs[${i}].peers must be peer id strings of at most ${PEER_ID_CHARS_MAX} characters`)
    }
    return { cid, peers: peers as string[] }
  })
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
