/**
 * Values crossing the sandbox boundary. Arguments and results travel as a flat *tape* of tokens
 * (two parallel arrays, structured-cloned by isolated-vm), never as live objects: no host object
 * enters an isolate and no isolate object reaches the host. The host validates every tape it
 * receives, because it was written by code running next to the function.
 *
 * Tape tokens (`kinds[i]`, `vals[i]`; a result tape's `kinds` is a Uint8Array with spare capacity
 * and `count` says how many tokens there are):
 *   SCALAR  null | boolean | finite number | string
 *   BYTES   Uint8Array
 *   LIST    length n; the next n values are the elements
 *   MAP     entry count n; then n × (SCALAR string key, value)
 *   CID     result: the CID's bytes; argument: a CidParts object
 *   BIGINT  bigint within int64
 */

import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { UnsupportedValueError, SandboxOutputLimitError } from './errors.ts'
import { VALUE_DEPTH_MAX } from './limits.ts'

export const TAPE_SCALAR = 0
export const TAPE_BYTES = 1
export const TAPE_LIST = 2
export const TAPE_MAP = 3
export const TAPE_CID = 4
export const TAPE_BIGINT = 5

export interface Tape {
  kinds: number[]
  vals: unknown[]
}

/** What an isolate needs to rebuild a CID argument as an object `CID.asCID` recognises. */
export interface CidParts {
  bytes: Uint8Array
  version: number
  code: number
  multihashCode: number
  digest: Uint8Array
  multihashBytes: Uint8Array
}

export const INT64_MIN = -(2n ** 63n)
export const INT64_MAX = 2n ** 63n - 1n

/** Encode call arguments as a tape, refusing anything outside the dag-cbor data model. */
export function argsToTape (args: readonly unknown[]): Tape {
  if (!Array.isArray(args)) throw new UnsupportedValueError('the arguments must be an array')
  const tape: Tape = { kinds: [], vals: [] }
  writeValue(tape, args, 'arguments', 0, new Set())
  return tape
}

function writeValue (tape: Tape, value: unknown, path: string, depth: number, ancestors: Set<object>): void {
  if (depth > VALUE_DEPTH_MAX) throw new UnsupportedValueError(`${path} is nested deeper than ${VALUE_DEPTH_MAX} levels`)
  switch (typeof value) {
    case 'string':
    case 'boolean':
      push(tape, TAPE_SCALAR, value)
      return
    case 'number':
      if (!Number.isFinite(value)) throw new UnsupportedValueError(`${path} is ${value}, which dag-cbor cannot encode`)
      push(tape, TAPE_SCALAR, value)
      return
    case 'bigint':
      if (value < INT64_MIN || value > INT64_MAX) throw new UnsupportedValueError(`${path} is a BigInt outside the int64 range`)
      push(tape, TAPE_BIGINT, value)
      return
    case 'object':
      break
    default:
      throw new UnsupportedValueError(`${path} is ${describeType(value)}, which is not data`)
  }
  if (value === null) {
    push(tape, TAPE_SCALAR, null)
    return
  }
  if (value instanceof Uint8Array) {
    // Copy: a view (a Buffer from Node's pool, say) would otherwise carry its whole backing
    // ArrayBuffer, including bytes that are not part of the value, into the isolate.
    push(tape, TAPE_BYTES, new Uint8Array(value))
    return
  }
  const cid = CID.asCID(value)
  if (cid !== null) {
    const parts: CidParts = {
      bytes: new Uint8Array(cid.bytes),
      version: cid.version,
      code: cid.code,
      multihashCode: cid.multihash.code,
      digest: new Uint8Array(cid.multihash.digest),
      multihashBytes: new Uint8Array(cid.multihash.bytes)
    }
    push(tape, TAPE_CID, parts)
    return
  }
  if (ancestors.has(value)) throw new UnsupportedValueError(`${path} contains a cycle`)
  ancestors.add(value)
  if (Array.isArray(value)) {
    push(tape, TAPE_LIST, value.length)
    for (let i = 0; i < value.length; i++) {
      if (value[i] === undefined) throw new UnsupportedValueError(`${path}[${i}] is undefined, which dag-cbor cannot encode in an array`)
      writeValue(tape, value[i], `${path}[${i}]`, depth + 1, ancestors)
    }
  } else {
    const proto: unknown = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) throw new UnsupportedValueError(`${path} is ${describeType(value)}, not a plain object`)
    // Like JSON: properties whose value is undefined are left out.
    const entries = Object.entries(value).filter(([, v]) => v !== undefined)
    push(tape, TAPE_MAP, entries.length)
    for (const [key, v] of entries) {
      push(tape, TAPE_SCALAR, key)
      writeValue(tape, v, `${path}.${key}`, depth + 1, ancestors)
    }
  }
  ancestors.delete(value)
}

function push (tape: Tape, kind: number, val: unknown): void {
  tape.kinds.push(kind)
  tape.vals.push(val)
}

function describeType (value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'symbol') return 'a symbol'
  if (typeof value === 'undefined') return 'undefined'
  if (typeof value === 'object') {
    const ctor: unknown = (Object.getPrototypeOf(value) as { constructor?: unknown } | null)?.constructor
    const name = typeof ctor === 'function' && typeof ctor.name === 'string' && ctor.name !== '' ? ctor.name : 'an object'
    return `a ${name}`
  }
  return typeof value
}

/**
 * Rebuild a value from a tape written inside an isolate. Every token is checked: the tape is
 * untrusted input.
 */
export function tapeToValue (tape: unknown): unknown {
  if (typeof tape !== 'object' || tape === null) throw malformed('not an object')
  const { kinds, vals, count } = tape as { kinds?: unknown, vals?: unknown, count?: unknown }
  if (!(kinds instanceof Uint8Array) || !Array.isArray(vals)) throw malformed('no kinds or vals')
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1 || count > kinds.length || count !== vals.length) throw malformed('bad token count')
  const reader: TapeReader = { kinds, vals: vals as unknown[], end: count, at: 0 }
  const value = readValue(reader, 0)
  if (reader.at !== count) throw malformed('trailing tokens')
  return value
}

/** Tokens [0, end) of `kinds`/`vals`; `at` is the next to read. */
interface TapeReader { kinds: Uint8Array, vals: unknown[], end: number, at: number }

function readValue (r: TapeReader, depth: number): unknown {
  if (depth > VALUE_DEPTH_MAX) throw new UnsupportedValueError(`the result is nested deeper than ${VALUE_DEPTH_MAX} levels`)
  if (r.at >= r.end) throw malformed('truncated')
  const kind = r.kinds[r.at]
  const val = r.vals[r.at]
  r.at++
  switch (kind) {
    case TAPE_SCALAR:
      if (val === null || typeof val === 'boolean' || typeof val === 'string') return val
      if (typeof val === 'number' && Number.isFinite(val)) return val
      throw malformed('bad scalar')
    case TAPE_BYTES:
      if (val instanceof Uint8Array) return val
      throw malformed('bad bytes')
    case TAPE_BIGINT:
      if (typeof val === 'bigint' && val >= INT64_MIN && val <= INT64_MAX) return val
      throw malformed('bad bigint')
    case TAPE_CID:
      if (!(val instanceof Uint8Array)) throw malformed('bad CID')
      try {
        return CID.decode(val)
      } catch (err) {
        throw new UnsupportedValueError('the result contains an invalid CID', { cause: err })
      }
    case TAPE_LIST: {
      const length = count(r, val)
      const list: unknown[] = []
      for (let i = 0; i < length; i++) list.push(readValue(r, depth + 1))
      return list
    }
    case TAPE_MAP: {
      const length = count(r, val)
      const map: Record<string, unknown> = {}
      for (let i = 0; i < length; i++) {
        const key = r.vals[r.at]
        if (r.at >= r.end || r.kinds[r.at] !== TAPE_SCALAR || typeof key !== 'string') throw malformed('bad map key')
        if (Object.hasOwn(map, key)) throw malformed('duplicate map key')
        r.at++
        // defineProperty, not assignment: a key named "__proto__" must stay a key.
        Object.defineProperty(map, key, { value: readValue(r, depth + 1), enumerable: true, writable: true, configurable: true })
      }
      return map
    }
    default:
      throw malformed('unknown token')
  }
}

function count (r: TapeReader, val: unknown): number {
  // Every element takes at least one token, so a count beyond the tokens left is a lie.
  if (typeof val !== 'number' || !Number.isSafeInteger(val) || val < 0 || val > r.end - r.at) throw malformed('bad count')
  return val
}

function malformed (detail: string): UnsupportedValueError {
  return new UnsupportedValueError(`the sandbox returned a malformed result (${detail})`)
}

/**
 * Encode a result as deterministic dag-cbor under `outputBytesMax`, and return the value as
 * every peer will see it: decoded from those bytes (so a BigInt that fits a safe integer comes
 * back as a number, and -0 as 0).
 */
export function encodeResult (value: unknown, outputBytesMax: number): { value: unknown, bytes: Uint8Array } {
  let bytes: Uint8Array
  try {
    bytes = dagCbor.encode(value)
  } catch (err) {
    throw new UnsupportedValueError(`the result cannot be encoded as dag-cbor: ${(err as Error).message}`, { cause: err })
  }
  if (bytes.length > outputBytesMax) throw new SandboxOutputLimitError(bytes.length, outputBytesMax)
  return { value: dagCbor.decode(bytes), bytes }
}
