/**
 * The task request's by-reference fields: `ref` and `inputs` round-trip, are absent from a plain
 * request (so it is byte-for-byte what peers sent before them), and each limit is tried one past.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { INPUT_PEERS_MAX, TASK_INPUTS_MAX, encodeTaskRequest, parseTaskRequest } from '../../src/wire/task-codec.ts'

const fn = CID.parse('bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
const input = CID.parse('bafyreidykglsfhoixmivffc5uwhcgshx4j465xwqntbmu43nb2dzqwfvae')
const peer = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'

/** What a request looks like on the wire: encoded and decoded again, as the RPC layer does. */
function wire (body: Record<string, unknown>): unknown {
  return dagCbor.decode(dagCbor.encode(body))
}

describe('task request: ref and inputs', () => {
  test('a plain request carries neither field, and its bytes are those of { fn, export, args }', () => {
    const encoded = encodeTaskRequest({ fn, export: 'main', args: [1, input] })
    assert.deepEqual(Object.keys(encoded).sort(), ['args', 'export', 'fn'])
    assert.deepEqual(dagCbor.encode(encoded), dagCbor.encode({ fn, export: 'main', args: [1, input] }))
    const parsed = parseTaskRequest(wire(encoded))
    assert.equal(parsed.ref, undefined)
    assert.equal(parsed.inputs, undefined)
    assert.equal(encodeTaskRequest({ fn, export: 'main', args: [], ref: false, inputs: [] }).ref, undefined)
  })

  test('ref and inputs round-trip; inputs name CIDs as links', () => {
    const parsed = parseTaskRequest(wire(encodeTaskRequest({ fn, export: 'main', args: [input], ref: true, inputs: [{ cid: input, peers: [peer] }] })))
    assert.equal(parsed.ref, true)
    assert.equal(parsed.inputs?.length, 1)
    assert.ok(parsed.inputs?.[0].cid instanceof CID)
    assert.ok(parsed.inputs?.[0].cid.equals(input))
    assert.deepEqual(parsed.inputs?.[0].peers, [peer])
  })

  test(`one input past TASK_INPUTS_MAX (${TASK_INPUTS_MAX}) and one peer past INPUT_PEERS_MAX (${INPUT_PEERS_MAX}) are protocol violations`, () => {
    const body = (inputs: unknown): unknown => wire({ fn, export: 'main', args: [], inputs })
    const entry = { cid: input, peers: [peer] }
    assert.equal(parseTaskRequest(body(Array(TASK_INPUTS_MAX).fill(entry))).inputs?.length, TASK_INPUTS_MAX)
    assert.throws(() => parseTaskRequest(body(Array(TASK_INPUTS_MAX + 1).fill(entry))), { name: 'ProtocolViolationError', message: new RegExp(`at most ${TASK_INPUTS_MAX}`) })
    assert.equal(parseTaskRequest(body([{ cid: input, peers: Array(INPUT_PEERS_MAX).fill(peer) }])).inputs?.[0].peers.length, INPUT_PEERS_MAX)
    assert.throws(() => parseTaskRequest(body([{ cid: input, peers: Array(INPUT_PEERS_MAX + 1).fill(peer) }])), { name: 'ProtocolViolationError', message: new RegExp(`at most ${INPUT_PEERS_MAX}`) })
  })

  test('malformed fields are protocol violations', () => {
    const bad: Array<[string, Record<string, unknown>]> = [
      ['ref not a boolean', { ref: 1 }],
      ['inputs not an array', { inputs: { cid: input } }],
      ['an input not a map', { inputs: [input] }],
      ['an input cid as a string', { inputs: [{ cid: input.toString(), peers: [] }] }],
      ['an input cid that only looks like one', { inputs: [{ cid: { '/': input.toString() }, peers: [] }] }],
      ['peers not an array', { inputs: [{ cid: input, peers: peer }] }],
      ['a peer not a string', { inputs: [{ cid: input, peers: [7] }] }],
      ['an empty peer', { inputs: [{ cid: input, peers: [''] }] }],
      ['a peer too long', { inputs: [{ cid: input, peers: ['x'.repeat(129)] }] }]
    ]
    for (const [what, extra] of bad) {
      assert.throws(() => parseTaskRequest(wire({ fn, export: 'main', args: [], ...extra })), { name: 'ProtocolViolationError' }, what)
    }
  })
})
