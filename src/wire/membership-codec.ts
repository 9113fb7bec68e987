/**
 * Wire format of membership announcements: one deterministic dag-cbor map per gossip message.
 *
 *   { addrs: [string], seq: int, peerId: string, version: string, capacity: { slotsMax, queueLength,
 *     slotsFree }, networkId: string, incarnation: int }          (dag-cbor sorts keys: length first)
 *
 * Inbound bytes are checked in the order STYLE.md §10 asks: size before anything else (a peer
 * cannot make us parse a megabyte), then nesting depth (the dag-cbor decoder recurses once per
 * level, and 8 KiB of `0x81` bytes overflows the stack), then decoding, then every field's type,
 * range and length. Unknown keys are ignored so that a newer peer can add fields (warm functions,
 * held blobs) without older peers refusing its announcements; the size and depth limits bound
 * what they can cost.
 *
 * Errors: TooLargeError (oversized), ProtocolViolationError (anything else wrong; the message names
 * the field, `cause` carries the decoder's error). Encoding a local announcement that breaks the
 * limits throws InvalidInputError: our peers would refuse it.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { InvalidInputError, ProtocolViolationError, TooLargeError, assert } from '../model/errors.ts'
import type { Announcement, Capacity } from '../protocol/membership/index.ts'
import {
  ADDRS_MAX, ADDR_CHARS_MAX, CAPACITY_VALUE_MAX, NETWORK_ID_CHARS_MAX, PEER_ID_CHARS_MAX, VERSION_CHARS_MAX,
  isAddrString, isCapacityValue, isCounter, isNetworkIdString, isPeerIdString, isVersionString
} from '../protocol/membership/index.ts'

/**
 * The largest announcement the field limits allow encodes to 4,497 bytes (16 addresses of 256
 * characters are 4.1 KiB of it; the codec test pins the number). 8 KiB is that rounded
 * up to a power of two, leaving room for fields a later version adds, while a peer flooding at the
 * rate limit (2 announcements/s) costs at most 16 KiB/s of decoding. Gossipsub's own limit (1 MiB
 * by default) is far above it.
 */
export const ANNOUNCEMENT_BYTES_MAX = 8192

/**
 * Containers (maps, arrays, tags) nested inside each other. A current announcement needs 2 (the
 * map and its capacity map or addrs array); 8 leaves room for later fields, and keeps the
 * recursive decoder far from the stack limit (it overflows at a few thousand levels).
 */
export const ANNOUNCEMENT_NESTING_DEPTH_MAX = 8

/** Deterministic dag-cbor of exactly the known fields. Throws InvalidInputError if a field breaks the limits. */
export function encodeAnnouncement (announcement: Announcement): Uint8Array {
  const checked = validate(announcement, (field, message) => new InvalidInputError(`announcement.${field}: ${message}`))
  const bytes = dagCbor.encode(checked)
  assert(bytes.byteLength <= ANNOUNCEMENT_BYTES_MAX, 'a valid announcement fits in ANNOUNCEMENT_BYTES_MAX')
  return bytes
}

/** Size-check, decode and validate an announcement received from a peer. */
export function decodeAnnouncement (bytes: Uint8Array): Announcement {
  assert(bytes instanceof Uint8Array, 'decodeAnnouncement takes a Uint8Array')
  if (bytes.byteLength > ANNOUNCEMENT_BYTES_MAX) {
    throw new TooLargeError('announcement', bytes.byteLength, ANNOUNCEMENT_BYTES_MAX)
  }
  if (nestingExceeds(bytes, ANNOUNCEMENT_NESTING_DEPTH_MAX)) {
    throw new ProtocolViolationError(`announcement: nests containers deeper than ${ANNOUNCEMENT_NESTING_DEPTH_MAX} levels`)
  }
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err) {
    throw new ProtocolViolationError('announcement: not valid dag-cbor', { cause: err })
  }
  return validate(value, (field, message) => new ProtocolViolationError(`announcement.${field}: ${message}`))
}

type Fail = (field: string, message: string) => Error

function validate (value: unknown, fail: Fail): Announcement {
  if (!isPlainMap(value)) throw fail('(root)', 'must be a map')
  const field = (name: string): unknown => Object.hasOwn(value, name) ? value[name] : undefined

  const peerId = field('peerId')
  if (!isPeerIdString(peerId)) throw fail('peerId', `must be a base58btc string of 1..${PEER_ID_CHARS_MAX} characters`)
  const networkId = field('networkId')
  if (!isNetworkIdString(networkId)) throw fail('networkId', `must be 1..${NETWORK_ID_CHARS_MAX} printable ASCII characters`)
  const incarnation = field('incarnation')
  if (!isCounter(incarnation)) throw fail('incarnation', 'must be a non-negative safe integer')
  const seq = field('seq')
  if (!isCounter(seq)) throw fail('seq', 'must be a non-negative safe integer')
  const version = field('version')
  if (!isVersionString(version)) throw fail('version', `must be 1..${VERSION_CHARS_MAX} printable ASCII characters`)

  const addrs = field('addrs')
  if (!Array.isArray(addrs)) throw fail('addrs', 'must be a list of multiaddr strings')
  if (addrs.length > ADDRS_MAX) throw fail('addrs', `must have at most ${ADDRS_MAX} items, got ${addrs.length}`)
  for (let i = 0; i < addrs.length; i++) {
    if (!isAddrString(addrs[i])) throw fail(`addrs[${i}]`, `must be 1..${ADDR_CHARS_MAX} visible ASCII characters`)
  }

  const capacity = field('capacity')
  if (!isPlainMap(capacity)) throw fail('capacity', 'must be a map { slotsFree, slotsMax, queueLength }')
  const numbers: Partial<Capacity> = {}
  for (const name of ['slotsFree', 'slotsMax', 'queueLength'] as const) {
    const n = Object.hasOwn(capacity, name) ? capacity[name] : undefined
    if (!isCapacityValue(n)) throw fail(`capacity.${name}`, `must be an integer in 0..${CAPACITY_VALUE_MAX}`)
    numbers[name] = n
  }
  const { slotsFree, slotsMax, queueLength } = numbers as Capacity
  if (slotsFree > slotsMax) throw fail('capacity.slotsFree', `must be <= slotsMax (${slotsFree} > ${slotsMax})`)

  return { peerId, networkId, incarnation, seq, version, addrs: [...addrs] as string[], capacity: { slotsFree, slotsMax, queueLength } }
}

/** A dag-cbor map decodes to a plain object; arrays, bytes, CIDs and null do not count. */
function isPlainMap (value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/**
 * Walk the CBOR item headers (RFC 8949 §3) without building values, and say whether containers
 * nest deeper than `depthMax`. Iterative, so it cannot overflow itself. It only looks at
 * structure: malformed input (truncation, reserved or indefinite lengths) ends the walk with
 * `false` and is left to the decoder to reject.
 */
export function nestingExceeds (bytes: Uint8Array, depthMax: number): boolean {
  const remaining: number[] = [] // items still expected by each open container
  let pos = 0
  while (pos < bytes.length) {
    const initial = bytes[pos++]
    const major = initial >>> 5
    const info = initial & 0x1f
    let argument: number
    if (info < 24) {
      argument = info
    } else if (info <= 27) {
      const size = 1 << (info - 24) // 1, 2, 4 or 8 bytes
      if (pos + size > bytes.length) return false
      argument = 0
      for (let i = 0; i < size; i++) argument = argument * 256 + bytes[pos + i]
      pos += size
    } else {
      return false // 28–30 reserved, 31 indefinite length: both invalid in dag-cbor
    }
    let children = 0
    if (major === 2 || major === 3) {
      if (argument > bytes.length - pos) return false
      pos += argument // byte or text string: skip its content
    } else if (major === 4) {
      children = argument
    } else if (major === 5) {
      children = argument * 2
    } else if (major === 6) {
      children = 1 // a tag wraps one item, and the decoder recurses into it
    }
    if (children > 0) {
      remaining.push(children)
      if (remaining.length > depthMax) return true
      continue
    }
    // This item is complete: count it against its container, closing containers that are full.
    while (remaining.length > 0) {
      remaining[remaining.length - 1] -= 1
      if (remaining[remaining.length - 1] > 0) break
      remaining.pop()
    }
    if (remaining.length === 0) return false // the top-level item is complete
  }
  return false
}
