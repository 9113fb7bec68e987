// Each shared limit is defined once in src/model/limits.ts (or src/model/export-name.ts); these
// tests pin that every layer that checks it accepts exactly the limit and refuses one past it.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import { EXPORT_NAME_LENGTH_MAX, isExportName } from '../../src/model/export-name.ts'
import { CID_CHARS_MAX, DURATION_MS_LIMIT, PEER_ID_CHARS_MAX } from '../../src/model/limits.ts'
import { parseRequest } from '../../src/net/blob-service.ts'
import { createAdmission, createBlocklist } from '../../src/protocol/admission/index.ts'
import { isPeerIdString } from '../../src/protocol/membership/index.ts'
import { validateCall } from '../../src/sandbox/validate.ts'
import { DEFAULT_LIMITS } from '../../src/sandbox/limits.ts'
import { encodeTaskReply, encodeTaskRequest, parseTaskReply, parseTaskRequest } from '../../src/wire/task-codec.ts'

const cid = CID.create(1, raw.code, await sha256.digest(new Uint8Array([1])))

describe('shared limits', () => {
  test(`a peer id of ${PEER_ID_CHARS_MAX} characters passes announcements and attestations; one more fails both`, () => {
    const reply = (peer: string): unknown => encodeTaskReply({
      attestation: { task: cid, result: cid, peer, signature: new Uint8Array(64) },
      timings: { queueMs: 0, fetchMs: 0, runMs: 0 }
    })
    const longest = 'z'.repeat(PEER_ID_CHARS_MAX)
    assert.equal(isPeerIdString(longest), true)
    assert.equal(parseTaskReply(reply(longest)).attestation.peer, longest)
    assert.equal(isPeerIdString(longest + 'z'), false)
    assert.throws(() => parseTaskReply(reply(longest + 'z')), { name: 'ProtocolViolationError', message: /attestation peer/ })
  })

  test(`a CID string of ${CID_CHARS_MAX + 1} characters is refused by the blob protocol before decoding`, () => {
    const request = (text: string): unknown => ({ cid: text, offset: 0, length: 1 })
    const longest = 'b' + 'a'.repeat(CID_CHARS_MAX - 1)
    // The longest passes the length check and fails only as an undecodable CID.
    assert.throws(() => parseRequest(request(longest)), (err: Error) => err.name === 'ProtocolViolationError' && !err.message.includes(`at most ${CID_CHARS_MAX}`))
    assert.throws(() => parseRequest(request(longest + 'a')), { name: 'ProtocolViolationError', message: new RegExp(`at most ${CID_CHARS_MAX} characters`) })
    assert.equal(parseRequest(request(cid.toString())).cid.toString(), cid.toString())
  })

  test(`an export name of ${EXPORT_NAME_LENGTH_MAX} characters passes the rule, the task codec and the sandbox; one more fails all three`, () => {
    const call = (exportName: string): Parameters<typeof validateCall>[0] => ({
      kind: 'js', functionId: 'f', code: new Uint8Array(1), exportName, args: [], seed: new Uint8Array(32), limits: DEFAULT_LIMITS
    })
    const longest = 'x'.repeat(EXPORT_NAME_LENGTH_MAX)
    assert.equal(isExportName(longest), true)
    assert.equal(parseTaskRequest(encodeTaskRequest({ fn: cid, export: longest, args: [] })).export, longest)
    assert.doesNotThrow(() => validateCall(call(longest), 'js'))
    assert.equal(isExportName(longest + 'x'), false)
    assert.throws(() => parseTaskRequest(encodeTaskRequest({ fn: cid, export: longest + 'x', args: [] })), { name: 'ProtocolViolationError', message: new RegExp(`at most ${EXPORT_NAME_LENGTH_MAX}`) })
    assert.throws(() => validateCall(call(longest + 'x'), 'js'), { name: 'InvalidInputError' })
  })

  test(`time options of ${DURATION_MS_LIMIT} ms are accepted by admission; one more is a ConfigError`, () => {
    assert.doesNotThrow(() => createBlocklist({ blockMs: DURATION_MS_LIMIT }))
    assert.doesNotThrow(() => createAdmission({ idleMs: DURATION_MS_LIMIT }))
    assert.throws(() => createBlocklist({ blockMs: DURATION_MS_LIMIT + 1 }), { name: 'ConfigError' })
    assert.throws(() => createAdmission({ idleMs: DURATION_MS_LIMIT + 1 }), { name: 'ConfigError' })
  })
})
