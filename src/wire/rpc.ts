/**
 * The envelope every Rhizome request/response protocol uses on a long-lived stream.
 *
 * A stream carries many requests at once, told apart by `id` (chosen by the side that opened
 * the stream). Each frame is one dag-cbor map:
 *   { id, kind: 'req',    body }             caller → server
 *   { id, kind: 'res',    body }             server → caller
 *   { id, kind: 'err',    error: Failure }   server → caller, the request failed
 *   { id, kind: 'cancel' }                   caller → server, stop working on it
 * Bodies are validated by the protocol that owns them; this file only checks the envelope.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { ProtocolViolationError } from '../model/errors.ts'
import type { FailureData } from '../model/errors.ts'
import { nestingExceeds } from './membership-codec.ts'

export type RpcKind = 'req' | 'res' | 'err' | 'cancel'

export interface RpcEnvelope {
  id: number
  kind: RpcKind
  body?: unknown
  error?: FailureData
}

/** Request ids wrap around well below 2^53 so they stay exact integers in every codec. */
export const RPC_ID_MAX = 2 ** 31 - 1

/**
 * Containers (maps, lists, tags) nested inside each other in one frame. The deepest honest body is
 * a task's arguments: the sandbox accepts values 256 deep (VALUE_DEPTH_MAX), inside the request
 * map, the args list and the envelope; 512 is twice that. The dag-cbor decoder recurses once per
 * level and overflows the stack at a few thousand, and so do the encoders a decoded body meets
 * later (a task id hashes the arguments): checked before decoding, with a linear walk.
 */
export const RPC_NESTING_DEPTH_MAX = 512

const KINDS = new Set<string>(['req', 'res', 'err', 'cancel'])
const FAILURE_TEXT_CHARS_MAX = 2048

export function encodeEnvelope (envelope: RpcEnvelope): Uint8Array {
  const out: Record<string, unknown> = { id: envelope.id, kind: envelope.kind }
  // A request or response always carries a body; `undefined` (a handler that returns nothing)
  // travels as null, which dag-cbor can encode.
  if (envelope.kind === 'req' || envelope.kind === 'res') out.body = envelope.body ?? null
  if (envelope.error !== undefined) out.error = stripUndefined(envelope.error)
  return dagCbor.encode(out)
}

export function decodeEnvelope (bytes: Uint8Array): RpcEnvelope {
  if (nestingExceeds(bytes, RPC_NESTING_DEPTH_MAX)) {
    throw new ProtocolViolationError(`rpc frame nests containers deeper than ${RPC_NESTING_DEPTH_MAX} levels`)
  }
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err) {
    throw new ProtocolViolationError('rpc frame is not valid dag-cbor', { cause: err })
  }
  if (!isRecord(value)) throw new ProtocolViolationError('rpc frame is not a map')
  const { id, kind } = value
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > RPC_ID_MAX) {
    throw new ProtocolViolationError(`rpc frame id must be an integer in 0..${RPC_ID_MAX}`)
  }
  if (typeof kind !== 'string' || !KINDS.has(kind)) {
    throw new ProtocolViolationError('rpc frame kind must be one of req, res, err, cancel')
  }
  const envelope: RpcEnvelope = { id, kind: kind as RpcKind }
  if (kind === 'req' || kind === 'res') {
    if (!('body' in value)) throw new ProtocolViolationError(`rpc ${kind} frame has no body`)
    envelope.body = value.body
  }
  if (kind === 'err') envelope.error = decodeFailure(value.error)
  return envelope
}

function decodeFailure (value: unknown): FailureData {
  if (!isRecord(value)) throw new ProtocolViolationError('rpc err frame has no error map')
  const text = (field: string, required: boolean): string | undefined => {
    const v = value[field]
    if (v === undefined && !required) return undefined
    if (typeof v !== 'string' || v.length > FAILURE_TEXT_CHARS_MAX) {
      throw new ProtocolViolationError(`rpc error.${field} must be a string of at most ${FAILURE_TEXT_CHARS_MAX} characters`)
    }
    return v
  }
  if (typeof value.retryable !== 'boolean') throw new ProtocolViolationError('rpc error.retryable must be a boolean')
  const failure: FailureData = {
    name: text('name', true) as string,
    code: text('code', true) as string,
    message: text('message', true) as string,
    retryable: value.retryable
  }
  const hint = text('hint', false)
  if (hint !== undefined) failure.hint = hint
  return failure
}

export function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array)
}

/**
 * `value` if it is a CID the dag-cbor decoder built from a peer's bytes (tag 42); otherwise a
 * ProtocolViolationError saying `what` must be a CID. The one CID check for peer input: CID.asCID
 * would also adopt a plain map shaped `{ '/': x, bytes: x }` as a CID from another copy of the
 * library, and throw a TypeError or build a broken CID from it.
 */
export function asCid (value: unknown, what: string): CID {
  if (!(value instanceof CID)) throw new ProtocolViolationError(`${what} must be a CID`)
  return value
}

function stripUndefined (failure: FailureData): FailureData {
  const out: FailureData = { name: failure.name, code: failure.code, message: failure.message, retryable: failure.retryable }
  if (failure.hint !== undefined) out.hint = failure.hint
  return out
}
