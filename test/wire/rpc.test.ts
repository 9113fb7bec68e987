import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { RPC_ID_MAX, RPC_NESTING_DEPTH_MAX, decodeEnvelope, encodeEnvelope, isRecord } from '../../src/wire/rpc.ts'
import type { RpcEnvelope } from '../../src/wire/rpc.ts'

/** The longest error text decodeEnvelope accepts (FAILURE_TEXT_CHARS_MAX in src/wire/rpc.ts). */
const FAILURE_TEXT_CHARS_MAX = 2048

const cid = CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')

const failure = { name: 'PeerBusyError', code: 'ERR_PEER_BUSY', message: 'busy', retryable: true }

describe('rpc envelope round trip', () => {
  const envelopes: RpcEnvelope[] = [
    { id: 0, kind: 'req', body: { cid: cid.toString(), offset: 0, length: 1024 } },
    { id: 1, kind: 'req', body: null },
    { id: RPC_ID_MAX, kind: 'res', body: { total: 3, bytes: Uint8Array.of(1, 2, 3), link: cid, list: [1, 'two', true] } },
    { id: 7, kind: 'res', body: 'a string body' },
    { id: 8, kind: 'err', error: failure },
    { id: 9, kind: 'err', error: { ...failure, retryable: false, hint: 'ask another peer' } },
    { id: 10, kind: 'cancel' }
  ]
  for (const envelope of envelopes) {
    test(`${envelope.kind} #${envelope.id}`, () => {
      assert.deepEqual(decodeEnvelope(encodeEnvelope(envelope)), envelope)
    })
  }

  test('an error with hint: undefined is encoded without the hint', () => {
    const bytes = encodeEnvelope({ id: 3, kind: 'err', error: { ...failure, hint: undefined } })
    assert.deepEqual(decodeEnvelope(bytes), { id: 3, kind: 'err', error: failure })
  })

  test('fields that do not belong to the kind are dropped on decode', () => {
    const bytes = dagCbor.encode({ id: 4, kind: 'cancel', body: 'ignored', error: failure, extra: 1 })
    assert.deepEqual(decodeEnvelope(bytes), { id: 4, kind: 'cancel' })
  })

  // Regression: a handler that returns nothing once made RpcService send a res frame with no
  // body, which the caller rejected as a protocol violation and blamed the serving peer for.
  test('a res envelope with an undefined body round-trips', () => {
    assert.deepEqual(decodeEnvelope(encodeEnvelope({ id: 5, kind: 'res', body: undefined })), { id: 5, kind: 'res', body: null })
  })
})

interface Pair {
  what: string
  valid: unknown
  invalid: unknown
  error: string
}

const errorMap = (overrides: Record<string, unknown>): Record<string, unknown> => ({ ...failure, ...overrides })
const text = (chars: number): string => 'x'.repeat(chars)

/** Each case is a valid envelope and the smallest change that makes it invalid. */
const pairs: Pair[] = [
  { what: 'id negative', valid: { id: 0, kind: 'cancel' }, invalid: { id: -1, kind: 'cancel' }, error: 'ProtocolViolationError' },
  { what: 'id above RPC_ID_MAX', valid: { id: RPC_ID_MAX, kind: 'cancel' }, invalid: { id: RPC_ID_MAX + 1, kind: 'cancel' }, error: 'ProtocolViolationError' },
  { what: 'id a float', valid: { id: 2, kind: 'cancel' }, invalid: { id: 2.5, kind: 'cancel' }, error: 'ProtocolViolationError' },
  { what: 'id a string', valid: { id: 2, kind: 'cancel' }, invalid: { id: '2', kind: 'cancel' }, error: 'ProtocolViolationError' },
  { what: 'id missing', valid: { id: 2, kind: 'cancel' }, invalid: { kind: 'cancel' }, error: 'ProtocolViolationError' },
  { what: 'kind unknown', valid: { id: 1, kind: 'res', body: 1 }, invalid: { id: 1, kind: 'ping', body: 1 }, error: 'ProtocolViolationError' },
  { what: 'kind not a string', valid: { id: 1, kind: 'cancel' }, invalid: { id: 1, kind: 3 }, error: 'ProtocolViolationError' },
  { what: 'req without body', valid: { id: 1, kind: 'req', body: null }, invalid: { id: 1, kind: 'req' }, error: 'ProtocolViolationError' },
  { what: 'res without body', valid: { id: 1, kind: 'res', body: 0 }, invalid: { id: 1, kind: 'res' }, error: 'ProtocolViolationError' },
  { what: 'err without error map', valid: { id: 1, kind: 'err', error: failure }, invalid: { id: 1, kind: 'err' }, error: 'ProtocolViolationError' },
  { what: 'err with a string for error', valid: { id: 1, kind: 'err', error: failure }, invalid: { id: 1, kind: 'err', error: 'boom' }, error: 'ProtocolViolationError' },
  { what: 'err with a list for error', valid: { id: 1, kind: 'err', error: failure }, invalid: { id: 1, kind: 'err', error: [failure] }, error: 'ProtocolViolationError' },
  { what: 'error.name not a string', valid: { id: 1, kind: 'err', error: errorMap({}) }, invalid: { id: 1, kind: 'err', error: errorMap({ name: 5 }) }, error: 'ProtocolViolationError' },
  { what: 'error.code missing', valid: { id: 1, kind: 'err', error: errorMap({}) }, invalid: { id: 1, kind: 'err', error: { name: 'E', message: 'm', retryable: true } }, error: 'ProtocolViolationError' },
  { what: 'error.message null', valid: { id: 1, kind: 'err', error: errorMap({ message: '' }) }, invalid: { id: 1, kind: 'err', error: errorMap({ message: null }) }, error: 'ProtocolViolationError' },
  { what: 'error.retryable not a boolean', valid: { id: 1, kind: 'err', error: errorMap({ retryable: false }) }, invalid: { id: 1, kind: 'err', error: errorMap({ retryable: 'yes' }) }, error: 'ProtocolViolationError' },
  { what: 'error.hint not a string', valid: { id: 1, kind: 'err', error: errorMap({ hint: 'h' }) }, invalid: { id: 1, kind: 'err', error: errorMap({ hint: 5 }) }, error: 'ProtocolViolationError' },
  { what: 'error.name too long', valid: { id: 1, kind: 'err', error: errorMap({ name: text(FAILURE_TEXT_CHARS_MAX) }) }, invalid: { id: 1, kind: 'err', error: errorMap({ name: text(FAILURE_TEXT_CHARS_MAX + 1) }) }, error: 'ProtocolViolationError' },
  { what: 'error.code too long', valid: { id: 1, kind: 'err', error: errorMap({ code: text(FAILURE_TEXT_CHARS_MAX) }) }, invalid: { id: 1, kind: 'err', error: errorMap({ code: text(FAILURE_TEXT_CHARS_MAX + 1) }) }, error: 'ProtocolViolationError' },
  { what: 'error.message too long', valid: { id: 1, kind: 'err', error: errorMap({ message: text(FAILURE_TEXT_CHARS_MAX) }) }, invalid: { id: 1, kind: 'err', error: errorMap({ message: text(FAILURE_TEXT_CHARS_MAX + 1) }) }, error: 'ProtocolViolationError' },
  { what: 'error.hint too long', valid: { id: 1, kind: 'err', error: errorMap({ hint: text(FAILURE_TEXT_CHARS_MAX) }) }, invalid: { id: 1, kind: 'err', error: errorMap({ hint: text(FAILURE_TEXT_CHARS_MAX + 1) }) }, error: 'ProtocolViolationError' },
  { what: 'not a map: a list', valid: { id: 1, kind: 'cancel' }, invalid: [1, 'cancel'], error: 'ProtocolViolationError' },
  { what: 'not a map: a number', valid: { id: 1, kind: 'cancel' }, invalid: 1, error: 'ProtocolViolationError' },
  { what: 'not a map: null', valid: { id: 1, kind: 'cancel' }, invalid: null, error: 'ProtocolViolationError' },
  { what: 'not a map: bytes', valid: { id: 1, kind: 'cancel' }, invalid: Uint8Array.of(1, 2), error: 'ProtocolViolationError' }
]

describe('rpc envelope validation (valid / invalid pairs)', () => {
  for (const pair of pairs) {
    test(pair.what, () => {
      assert.doesNotThrow(() => decodeEnvelope(dagCbor.encode(pair.valid)), 'the valid half decodes')
      assert.throws(() => decodeEnvelope(dagCbor.encode(pair.invalid)), { name: pair.error })
    })
  }

  test('not dag-cbor', () => {
    const good = dagCbor.encode({ id: 1, kind: 'cancel' })
    assert.doesNotThrow(() => decodeEnvelope(good))
    const invalid: Array<[string, Uint8Array]> = [
      ['empty', new Uint8Array(0)],
      ['truncated', good.subarray(0, good.byteLength - 1)],
      ['trailing byte', Uint8Array.of(...good, 0)],
      ['a reserved byte', Uint8Array.of(0xff)],
      ['JSON text', new TextEncoder().encode('{"id":1,"kind":"cancel"}')],
      ['an indefinite-length map', Uint8Array.of(0xbf, 0x62, 0x69, 0x64, 0x01, 0xff)]
    ]
    for (const [what, bytes] of invalid) {
      assert.throws(() => decodeEnvelope(bytes), (err: unknown) => {
        assert.equal((err as Error).name, 'ProtocolViolationError', what)
        assert.ok((err as Error).cause !== undefined, `${what}: the decoder's error is kept as cause`)
        return true
      }, what)
    }
  })
})

describe('isRecord', () => {
  test('is true for plain maps only', () => {
    assert.equal(isRecord({}), true)
    assert.equal(isRecord({ a: 1 }), true)
    for (const value of [null, undefined, 1, 'x', [], Uint8Array.of(1), true]) {
      assert.equal(isRecord(value), false, String(value))
    }
  })
})

describe('rpc envelope nesting limit', () => {
  /** An envelope { id: 1, body: <`depth` nested lists>, kind: 'req' }: `depth` + 1 containers. */
  function nested (depth: number): Uint8Array {
    const head = [0xa3, 0x62, 0x69, 0x64, 0x01, 0x64, 0x62, 0x6f, 0x64, 0x79]
    const tail = [0x00, 0x64, 0x6b, 0x69, 0x6e, 0x64, 0x63, 0x72, 0x65, 0x71]
    const out = new Uint8Array(head.length + depth + tail.length).fill(0x81)
    out.set(head, 0)
    out.set(tail, head.length + depth)
    return out
  }

  test(`RPC_NESTING_DEPTH_MAX (${RPC_NESTING_DEPTH_MAX}) containers pass; one more is a ProtocolViolationError`, () => {
    assert.equal(RPC_NESTING_DEPTH_MAX, 512)
    assert.equal(decodeEnvelope(nested(RPC_NESTING_DEPTH_MAX - 1)).kind, 'req')
    assert.throws(() => decodeEnvelope(nested(RPC_NESTING_DEPTH_MAX)), { name: 'ProtocolViolationError', message: /deeper than 512 levels/ })
  })
})
