/**
 * Input generators for the fuzz suite. Random bytes alone rarely get past a decoder's first
 * check, so most inputs start from a valid value or encoding and break it in one place: a field
 * of the wrong type, a key a JavaScript object treats specially, a CID look-alike, an oversized
 * string, a deep nesting spliced into a valid map, a length header that claims gigabytes, or a few
 * flipped, inserted or dropped bytes.
 */
import fc from 'fast-check'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'

export const SAMPLE_CID = CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')

/** Keys that mean something to JavaScript objects, and the shape CID.asCID adopts. */
const TRICKY_KEYS = ['__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', 'prototype', '/', 'bytes', 'asCID', 'version', 'code', 'multihash']

/** Any value dag-cbor can encode: maps, lists, strings, bytes, integers (also past 2^53), floats, CIDs. */
export function dagValue (fieldNames: string[] = []): fc.Arbitrary<unknown> {
  const key = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom(...TRICKY_KEYS, ...(fieldNames.length > 0 ? fieldNames : ['x'])))
  const leaf = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.constantFrom(-1, 0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 53 - 1, -(2 ** 53) + 1, 1.5, -0.5, 1e300),
    fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n }),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.uint8Array({ maxLength: 80 }),
    fc.constant(SAMPLE_CID),
    cidLookAlike()
  )
  const { value } = fc.letrec(tie => ({
    value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, fc.array(tie('value'), { maxLength: 5 }), fc.dictionary(key, tie('value'), { maxKeys: 5 }))
  }))
  return value
}

/** A map that CID.asCID mistakes for a CID from another copy of multiformats. */
function cidLookAlike (): fc.Arbitrary<Record<string, unknown>> {
  return fc.oneof(fc.integer(), fc.string({ maxLength: 8 }), fc.boolean()).map(v => ({ '/': v, bytes: v }))
}

/** Strings, bytes and lists well past any field limit. */
export function oversized (): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.integer({ min: 100, max: 70_000 }).map(n => 'x'.repeat(n)),
    fc.integer({ min: 1025, max: 300_000 }).map(n => new Uint8Array(n)),
    fc.integer({ min: 17, max: 2000 }).map(n => Array.from({ length: n }, (_, i) => `/ip4/10.0.0.${i % 256}/tcp/1`))
  )
}

function clone (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(clone)
  if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array) && !(value instanceof CID)) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) Object.defineProperty(out, k, { value: clone(v), enumerable: true, writable: true, configurable: true })
    return out
  }
  return value
}

/**
 * `valid` with one place replaced: `steps` walk down (each picks a key or index, or a new key at
 * the end), and the value there becomes `replacement` (`undefined` deletes it).
 */
export function replaceAt (valid: unknown, steps: number[], newKey: string, replacement: unknown): unknown {
  const root = clone(valid)
  if (steps.length === 0) return replacement
  let node = root
  for (let i = 0; i < steps.length; i++) {
    const last = i === steps.length - 1
    if (Array.isArray(node)) {
      const index = steps[i] % (node.length + 1)
      if (last || index === node.length || typeof node[index] !== 'object' || node[index] === null) {
        if (replacement === undefined) node.splice(index, 1)
        else node[index] = replacement
        return root
      }
      node = node[index]
    } else if (typeof node === 'object' && node !== null && !(node instanceof Uint8Array)) {
      const record = node as Record<string, unknown>
      const keys = Object.keys(record)
      const key = steps[i] % (keys.length + 1) === keys.length ? newKey : keys[steps[i] % (keys.length + 1)]
      const child = record[key]
      if (last || typeof child !== 'object' || child === null || child instanceof Uint8Array || child instanceof CID) {
        if (replacement === undefined) delete record[key]
        else Object.defineProperty(record, key, { value: replacement, enumerable: true, writable: true, configurable: true })
        return root
      }
      node = child
    } else {
      return replacement
    }
  }
  return root
}

/** A valid value with one field replaced by anything: wrong types, tricky keys, oversized. */
export function mutatedValue (valid: fc.Arbitrary<unknown>, fieldNames: string[]): fc.Arbitrary<unknown> {
  return fc.tuple(
    valid,
    fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
    fc.constantFrom(...TRICKY_KEYS, ...fieldNames),
    fc.oneof({ weight: 4, arbitrary: dagValue(fieldNames) }, { weight: 1, arbitrary: oversized() }, { weight: 1, arbitrary: fc.constant(undefined) })
  ).map(([v, steps, key, replacement]) => replaceAt(v, steps, key, replacement))
}

/** `depth` nested one-element lists (or one-entry maps) around a 0, as CBOR bytes. */
export function deepNesting (depth: number, maps: boolean): Uint8Array {
  const open = maps ? [0xa1, 0x61, 0x61] : [0x81]
  const out = new Uint8Array(depth * open.length + 1)
  for (let i = 0; i < depth; i++) out.set(open, i * open.length)
  return out
}

/** A CBOR header of `major` type claiming a huge length, with no content behind it. */
function hugeHeader (major: number, bytes: number): Uint8Array {
  return major === 7 ? Uint8Array.of(0xfb) : bytes === 4 ? Uint8Array.of((major << 5) | 26, 0xff, 0xff, 0xff, 0xf0) : Uint8Array.of((major << 5) | 27, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0)
}

/** dag-cbor bytes of `value`; a value the encoder refuses (a CID look-alike, `undefined` at the root) becomes null. */
function encode (value: unknown): Uint8Array {
  try {
    return dagCbor.encode(value)
  } catch {
    return dagCbor.encode(null)
  }
}

const MARK = '\u0000fuzz-splice\u0000'
const MARK_BYTES = dagCbor.encode(MARK)

/** Encode `value` with `MARK` at one place, then splice raw CBOR bytes in its stead. */
function splice (value: unknown, steps: number[], key: string, raw: Uint8Array): Uint8Array {
  const encoded = encode(replaceAt(value, steps, key, MARK))
  const at = indexOf(encoded, MARK_BYTES)
  if (at < 0) return encoded
  const out = new Uint8Array(encoded.byteLength - MARK_BYTES.byteLength + raw.byteLength)
  out.set(encoded.subarray(0, at), 0)
  out.set(raw, at)
  out.set(encoded.subarray(at + MARK_BYTES.byteLength), at + raw.byteLength)
  return out
}

function indexOf (haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.byteLength <= haystack.byteLength; i++) {
    for (let j = 0; j < needle.byteLength; j++) if (haystack[i + j] !== needle[j]) continue outer
    return i
  }
  return -1
}

export type ByteEdit = { op: 'flip' | 'set' | 'insert' | 'delete' | 'truncate' | 'huge', at: number, byte: number }

/** `bytes` with `edits` applied in order (flipped, set, inserted, deleted bytes; a cut; a huge CBOR header). */
export function edit (bytes: Uint8Array, edits: ByteEdit[]): Uint8Array {
  let out = Uint8Array.from(bytes)
  for (const edit of edits) {
    const at = out.byteLength === 0 ? 0 : edit.at % (out.byteLength + 1)
    switch (edit.op) {
      case 'flip': if (at < out.byteLength) out[at] ^= 1 << (edit.byte % 8); break
      case 'set': if (at < out.byteLength) out[at] = edit.byte; break
      case 'insert': out = Uint8Array.from([...out.subarray(0, at), edit.byte, ...out.subarray(at)]); break
      case 'delete': out = Uint8Array.from([...out.subarray(0, at), ...out.subarray(at + 1)]); break
      case 'truncate': out = out.slice(0, at); break
      case 'huge': out = Uint8Array.from([...out.subarray(0, at), ...hugeHeader(edit.byte % 8, edit.byte % 2 === 0 ? 4 : 8), ...out.subarray(at)]); break
    }
  }
  return out
}

/** One to four byte edits for `edit`. */
export const byteEdits: fc.Arbitrary<ByteEdit[]> = fc.array(fc.record({
  op: fc.constantFrom('flip', 'set', 'insert', 'delete', 'truncate', 'huge') as fc.Arbitrary<ByteEdit['op']>,
  at: fc.nat(),
  byte: fc.integer({ min: 0, max: 255 })
}), { minLength: 1, maxLength: 4 })

/**
 * Bytes for a decoder of dag-cbor messages: random bytes, valid encodings, encodings with a few
 * bytes edited, encodings of mutated values, deep nesting (alone and spliced into a valid value),
 * and huge length headers spliced in.
 */
export function cborBytes (valid: fc.Arbitrary<unknown>, fieldNames: string[]): fc.Arbitrary<Uint8Array> {
  const encodable = (value: fc.Arbitrary<unknown>): fc.Arbitrary<Uint8Array> => value.map(encode)
  const validBytes = encodable(valid)
  const nestDepth = fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 100, max: 20_000 }))
  return fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    validBytes,
    fc.tuple(validBytes, byteEdits).map(([bytes, edits]) => edit(bytes, edits)),
    { weight: 3, arbitrary: encodable(mutatedValue(valid, fieldNames)) },
    encodable(dagValue(fieldNames)),
    fc.tuple(nestDepth, fc.boolean()).map(([depth, maps]) => deepNesting(depth, maps)),
    fc.tuple(valid, fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), fc.constantFrom('x', ...fieldNames), nestDepth, fc.boolean())
      .map(([v, steps, key, depth, maps]) => splice(v, steps, key, deepNesting(depth, maps))),
    fc.tuple(valid, fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), fc.constantFrom('x', ...fieldNames), fc.integer({ min: 2, max: 7 }), fc.boolean())
      .map(([v, steps, key, major, long]) => splice(v, steps, key, hugeHeader(major, long ? 8 : 4)))
  )
}

/** Values for a parser of decoded message bodies: anything, and mutations of a valid body. */
export function bodyValue (valid: fc.Arbitrary<unknown>, fieldNames: string[]): fc.Arbitrary<unknown> {
  return fc.oneof(valid, { weight: 4, arbitrary: mutatedValue(valid, fieldNames) }, dagValue(fieldNames))
}
