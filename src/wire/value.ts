/**
 * Decoding values that another peer sent: task results, and any other dag-cbor a peer hands us
 * on the task path. Nothing from the network reaches `dagCbor.decode` without passing here.
 *
 * The checks run in the order STYLE.md §10 asks: size first (a peer cannot make us parse more
 * than the largest honest value), then nesting depth by a linear scan of the CBOR headers
 * (`nestingExceeds`, no recursion: the dag-cbor decoder recurses once per level and overflows the
 * stack at a few thousand levels, so 50,000 nested arrays must be refused before it sees them),
 * then the decoder itself. Every failure is a `MalformedValueError` — a protocol violation by the
 * peer that sent the bytes, retryable from the caller's side because another peer may do better.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { ProtocolViolationError } from '../model/errors.ts'
import type { RhizomeErrorOptions } from '../model/errors.ts'
import { nestingExceeds } from './membership-codec.ts'

/**
 * Containers (arrays, maps, tags) nested inside each other. The sandbox lets a result nest up to
 * 256 levels (`VALUE_DEPTH_MAX` in src/sandbox/limits.ts), plus one tag for a CID at the bottom,
 * so every honest result passes; 512 is that doubled, and stays far below the few thousand levels
 * where the recursive dag-cbor decoder runs out of stack.
 */
export const REMOTE_VALUE_NESTING_DEPTH_MAX = 512

/**
 * 64 MiB: the largest result the sandbox can produce (`LIMITS_CEILING.outputBytesMax`) and the
 * default largest blob. Anything bigger was not made by an honest worker.
 */
export const REMOTE_VALUE_BYTES_MAX = 64 * 1024 * 1024

/** A peer sent a value that is not well-formed dag-cbor within the limits above. */
export class MalformedValueError extends ProtocolViolationError {
  constructor (message: string, options: RhizomeErrorOptions = {}) {
    super(message, { retryable: true, hint: 'the peer that sent it is faulty or hostile; ask another peer', ...options })
    this.name = 'MalformedValueError'
  }
}

/** Decode dag-cbor `bytes` that a peer sent as `what` (e.g. "task result from 12D3…"). */
export function decodeRemoteValue (bytes: Uint8Array, what: string): unknown {
  if (bytes.byteLength > REMOTE_VALUE_BYTES_MAX) {
    throw new MalformedValueError(`${what} is ${bytes.byteLength} bytes, more than the limit of ${REMOTE_VALUE_BYTES_MAX} bytes`)
  }
  if (nestingExceeds(bytes, REMOTE_VALUE_NESTING_DEPTH_MAX)) {
    throw new MalformedValueError(`${what} nests containers deeper than ${REMOTE_VALUE_NESTING_DEPTH_MAX} levels`)
  }
  try {
    return dagCbor.decode(bytes)
  } catch (err) {
    throw new MalformedValueError(`${what} is not valid dag-cbor: ${(err as Error).message}`, { cause: err })
  }
}

/** The multicodec of raw bytes: a blob stored as-is (`rhizome blob put`). */
export const RAW_CODE = 0x55

/** Whether a CID names something `decodeLinkedValue` can turn into a value: dag-cbor, or raw bytes. */
export function isValueCodec (code: number): boolean {
  return code === dagCbor.code || code === RAW_CODE
}

/**
 * The value a CID link stands for, from the blob it names (already verified against `cidCode`'s
 * CID by whoever fetched it). A dag-cbor blob decodes under the limits above; a raw blob is its
 * bytes, so a file stored with `rhizome blob put` can be an input as it is.
 */
export function decodeLinkedValue (cidCode: number, bytes: Uint8Array, what: string): unknown {
  if (cidCode === RAW_CODE) return bytes
  if (cidCode !== dagCbor.code) throw new MalformedValueError(`${what} has codec 0x${cidCode.toString(16)}; only dag-cbor and raw blobs are values`)
  return decodeRemoteValue(bytes, what)
}
