import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { REMOTE_VALUE_BYTES_MAX, REMOTE_VALUE_NESTING_DEPTH_MAX, decodeRemoteValue } from '../../src/wire/value.ts'

/** `depth` one-item arrays inside each other around an empty one: `depth` levels that hold something. */
function nestedArrays (depth: number): Uint8Array {
  const bytes = new Uint8Array(depth + 1).fill(0x81) // array of one item
  bytes[depth] = 0x80 // the innermost: an empty array
  return bytes
}

const malformed = (err: unknown): boolean => {
  const e = err as { name: string, code: string, retryable: boolean }
  return e.name === 'MalformedValueError' && e.code === 'ERR_PROTOCOL_VIOLATION' && e.retryable
}

describe('decodeRemoteValue', () => {
  test('decodes well-formed dag-cbor, links and bytes included', () => {
    const cid = CID.parse('bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
    const value = { n: 1, s: 'x', list: [1, [2, [3]]], bytes: new Uint8Array([1, 2]), link: cid }
    assert.deepEqual(decodeRemoteValue(dagCbor.encode(value), 'a value'), value)
  })

  test('a lone 0xff byte is a named, retryable protocol violation naming what was decoded', () => {
    assert.throws(() => decodeRemoteValue(Uint8Array.of(0xff), 'the result from peer X'), (err: Error) => malformed(err) && /the result from peer X is not valid dag-cbor/.test(err.message))
  })

  test(`${REMOTE_VALUE_NESTING_DEPTH_MAX} nested containers decode; one more is refused before decoding`, () => {
    const deepest = decodeRemoteValue(nestedArrays(REMOTE_VALUE_NESTING_DEPTH_MAX), 'v')
    assert.ok(Array.isArray(deepest))
    assert.throws(() => decodeRemoteValue(nestedArrays(REMOTE_VALUE_NESTING_DEPTH_MAX + 1), 'v'), (err: Error) => malformed(err) && /deeper than 512 levels/.test(err.message))
  })

  test('the sandbox\'s deepest honest result (256 levels and a CID) passes', () => {
    const cid = CID.parse('bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
    let value: unknown = cid
    for (let i = 0; i < 257; i++) value = [value]
    assert.deepEqual(decodeRemoteValue(dagCbor.encode(value), 'v'), value)
  })

  test('50,000 nested arrays are refused in linear time, without overflowing the stack', () => {
    assert.throws(() => decodeRemoteValue(nestedArrays(50_000), 'v'), malformed)
    assert.throws(() => decodeRemoteValue(nestedArrays(5_000_000), 'v'), malformed)
  })

  test(`one byte past ${REMOTE_VALUE_BYTES_MAX} bytes is refused before anything is parsed`, () => {
    assert.throws(() => decodeRemoteValue(new Uint8Array(REMOTE_VALUE_BYTES_MAX + 1), 'v'), (err: Error) => malformed(err) && /more than the limit/.test(err.message))
  })
})
