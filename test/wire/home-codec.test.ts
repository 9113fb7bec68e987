import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import { HOME_FRAME_BYTES_MAX, parseHomeRequest, parseHomeStatus, parseRunSpec, RUN_SPEC_BYTES_MAX } from '../../src/wire/home-codec.ts'
import { MEMO_INLINE_BYTES_MAX, MEMO_OPTIONS_DEFAULTS } from '../../src/protocol/memo/index.ts'
import { HOME_SET_MAX } from '../../src/protocol/lease/index.ts'

const entry = (id: string, bytes?: Uint8Array) => ({ id, epoch: 1, value: bytes === undefined ? { cid: 'bafy-x', peer: 'p1' } : { cid: 'bafy-x', peer: 'p1', bytes } })
const msg = (message: unknown) => ({ op: 'msg', runId: 'run-1', message })

test('home requests: every message type parses back to itself', () => {
  const messages = [
    { type: 'lease-request', epoch: 2, round: 7 },
    { type: 'lease-grant', epoch: 2, round: 7 },
    { type: 'lease-refuse', epoch: 3, round: 7, reason: 'held' },
    { type: 'append', epoch: 2, entries: [entry('a'), entry('b', new Uint8Array([1, 2]))] },
    { type: 'gather', epoch: 2, nonce: 5 },
    { type: 'probe', epoch: 2, digest: { count: 1, hashA: 4_000_000_000, hashB: 0 } },
    { type: 'ack', epoch: 2, ids: ['a', 'b'] },
    { type: 'refused', epoch: 9 },
    { type: 'memo-part', epoch: 2, nonce: 5, part: 0, parts: 1, entries: [entry('a')] },
    { type: 'home-set', epoch: 2, homeSet: ['p1', 'p2', 'p3'] }
  ]
  for (const m of messages) assert.deepEqual(parseHomeRequest(dagCbor.decode(dagCbor.encode(msg(m)))), msg(m))
  assert.deepEqual(parseHomeRequest({ op: 'status', runId: 'run-1' }), { op: 'status', runId: 'run-1' })
})

test('home requests: malformed or oversized bodies are protocol violations, by name', () => {
  const bad: unknown[] = [
    null, [], 'x', { op: 'nope', runId: 'r' }, { op: 'status' }, { op: 'status', runId: 'x'.repeat(129) },
    msg({ type: 'lease-request', epoch: -1, round: 0 }),
    msg({ type: 'lease-request', epoch: 1.5, round: 0 }),
    msg({ type: 'lease-refuse', epoch: 1, round: 0, reason: 'because' }),
    msg({ type: 'append', epoch: 1, entries: Array.from({ length: MEMO_OPTIONS_DEFAULTS.batchEntriesMax + 1 }, (_, i) => entry(`e${i}`)) }),
    msg({ type: 'append', epoch: 1, entries: [entry('a', new Uint8Array(MEMO_INLINE_BYTES_MAX + 1))] }),
    msg({ type: 'append', epoch: 1, entries: [{ id: 'a', epoch: 1 }] }),
    msg({ type: 'home-set', epoch: 1, homeSet: [] }),
    msg({ type: 'home-set', epoch: 1, homeSet: ['p1', 'p1'] }),
    msg({ type: 'home-set', epoch: 1, homeSet: Array.from({ length: HOME_SET_MAX + 1 }, (_, i) => `p${i}`) }),
    msg({ type: 'unknown' }),
    { op: 'open', runId: 'r', spec: new Uint8Array(RUN_SPEC_BYTES_MAX + 1), homeSet: ['p1'] },
    { op: 'signal', runId: 'r', name: '', value: new Uint8Array(1) }
  ]
  for (const body of bad) assert.throws(() => parseHomeRequest(body), { name: 'ProtocolViolationError' }, JSON.stringify(body)?.slice(0, 120))
})

test('home status and run spec answers are checked on the asking side', () => {
  assert.deepEqual(parseHomeStatus({ known: false }), { known: false })
  assert.throws(() => parseHomeStatus({ known: true, state: 'exploded' }), { name: 'ProtocolViolationError' })
  const spec = { workflow: 'bafy-w', export: 'main', args: dagCbor.encode([1]), startedMs: 5, opener: 'p1', ancestors: ['r0'] }
  assert.deepEqual(parseRunSpec(dagCbor.encode(spec)), spec)
  assert.throws(() => parseRunSpec(dagCbor.encode({ ...spec, startedMs: -1 })), { name: 'ProtocolViolationError' })
  assert.throws(() => parseRunSpec(new Uint8Array([0xff, 0x00])), { name: 'ProtocolViolationError' })
  assert.throws(() => parseRunSpec(dagCbor.encode({ ...spec, ancestors: Array.from({ length: 65 }, (_, i) => `r${i}`) })), { name: 'ProtocolViolationError' })
  assert.ok(HOME_FRAME_BYTES_MAX >= RUN_SPEC_BYTES_MAX, 'a spec fits in a frame')
})
