import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import * as dagCbor from '@ipld/dag-cbor'
import { PRELUDE_TAPE_KINDS } from '../../src/sandbox/prelude.ts'
import { argsToTape, encodeResult, tapeToValue, TAPE_BIGINT, TAPE_BYTES, TAPE_CID, TAPE_LIST, TAPE_MAP, TAPE_SCALAR } from '../../src/sandbox/values.ts'

/** A result tape as the prelude writes it. */
function tape (kinds: number[], vals: unknown[], count = kinds.length): unknown {
  return { ok: true, kinds: Uint8Array.from(kinds), vals, count }
}

describe('values crossing the sandbox boundary', () => {
  test('the prelude numbers tape tokens as values.ts does', () => {
    assert.deepEqual(PRELUDE_TAPE_KINDS, { SCALAR: TAPE_SCALAR, BYTES: TAPE_BYTES, LIST: TAPE_LIST, MAP: TAPE_MAP, CID: TAPE_CID, BIGINT: TAPE_BIGINT })
  })

  test('a well-formed result tape becomes its value', () => {
    const value = tapeToValue(tape([TAPE_MAP, TAPE_SCALAR, TAPE_LIST, TAPE_SCALAR, TAPE_BIGINT, TAPE_BYTES], [1, 'a', 3, 'x', 5n, new Uint8Array([1])]))
    assert.deepEqual(value, { a: ['x', 5n, new Uint8Array([1])] })
  })

  const malformed: Array<[string, unknown]> = [
    ['not an object', 5],
    ['kinds not bytes', { kinds: [0], vals: [1], count: 1 }],
    ['count past the kinds', tape([TAPE_SCALAR], [1], 2)],
    ['count not matching vals', { kinds: Uint8Array.from([0, 0]), vals: [1], count: 2 }],
    ['a bad scalar', tape([TAPE_SCALAR], [{}])],
    ['NaN', tape([TAPE_SCALAR], [NaN])],
    ['bytes that are not bytes', tape([TAPE_BYTES], ['x'])],
    ['a BigInt past int64', tape([TAPE_BIGINT], [2n ** 63n])],
    ['a list longer than the tape', tape([TAPE_LIST, TAPE_SCALAR], [5, 1])],
    ['a negative count', tape([TAPE_LIST], [-1])],
    ['a map key that is not a string', tape([TAPE_MAP, TAPE_SCALAR, TAPE_SCALAR], [1, 2, 3])],
    ['a duplicate map key', tape([TAPE_MAP, TAPE_SCALAR, TAPE_SCALAR, TAPE_SCALAR, TAPE_SCALAR], [2, 'a', 1, 'a', 2])],
    ['an unknown token', tape([9], [1])],
    ['trailing tokens', tape([TAPE_SCALAR, TAPE_SCALAR], [1, 2])],
    ['an invalid CID', tape([TAPE_CID], [new Uint8Array([1, 2, 3])])]
  ]
  for (const [label, input] of malformed) {
    test(`a tape with ${label} is refused with UnsupportedValueError`, () => {
      assert.throws(() => tapeToValue(input), { name: 'UnsupportedValueError' })
    })
  }

  test('a "__proto__" map key stays a key and does not set the prototype', () => {
    const value = tapeToValue(tape([TAPE_MAP, TAPE_SCALAR, TAPE_SCALAR], [1, '__proto__', 'x'])) as object
    assert.equal(Object.getPrototypeOf(value), Object.prototype)
    assert.deepEqual(Object.getOwnPropertyDescriptor(value, '__proto__')?.value, 'x')
  })

  test('encodeResult passes at outputBytesMax and fails one byte past it', () => {
    const size = dagCbor.encode('hello').length
    assert.deepEqual(encodeResult('hello', size).bytes, dagCbor.encode('hello'))
    assert.throws(() => encodeResult('hello', size - 1), { name: 'SandboxOutputLimitError', bytes: size, outputBytesMax: size - 1 })
  })

  test('encodeResult returns the value as decoded from its bytes', () => {
    assert.equal(encodeResult(5n, 100).value, 5)
    assert.ok(Object.is(encodeResult(-0, 100).value, 0))
  })

  test('bytes arguments are copied exactly, not with their backing buffer', () => {
    const pool = Buffer.from('secret-secret-hello-secret')
    const view = pool.subarray(14, 19)
    const arg = argsToTape([view]).vals[1] as Uint8Array
    assert.equal(arg.buffer.byteLength, 5)
    assert.equal(Buffer.from(arg).toString(), 'hello')
  })
})
