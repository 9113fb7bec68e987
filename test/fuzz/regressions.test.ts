/**
 * Inputs the fuzz suite found that a decoder mishandled, kept as fixed cases (each failed before
 * its fix), and a check that the generators reach past the decoders' first checks.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { decodeManifest } from '../../src/functions/manifest.ts'
import { parseReplicateRequest } from '../../src/net/function-service.ts'
import { DEFAULT_LIMITS } from '../../src/sandbox/index.ts'
import { decodeEnvelope } from '../../src/wire/rpc.ts'
import { parseTaskReply, parseTaskRequest } from '../../src/wire/task-codec.ts'
import { FUZZ_SEED_DEFAULT, isNamedRefusal } from './run.ts'
import { SAMPLE_CID, cborBytes, dagValue } from './inputs.ts'

const PEER = '12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf'

function manifestWithLimits (limits: Record<string, unknown>): Uint8Array {
  return dagCbor.encode({
    rhizome: 'function/1', name: 'fuzz', kind: 'js', code: SAMPLE_CID, codeBytes: 100, exports: ['main'], limits, deterministic: true
  })
}

describe('fuzz regressions', () => {
  // parseTaskRequest / parseTaskReply used CID.asCID, which adopts a map { '/': x, bytes: x } as a
  // CID from another library copy: it threw TypeError ("b.slice is not a function").
  test('a CID look-alike map as a task fn or attestation CID is a ProtocolViolationError', () => {
    for (const lookAlike of [{ '/': false, bytes: false }, { '/': 'x', bytes: 'x' }, { '/': 1, bytes: 1 }]) {
      assert.throws(() => parseTaskRequest({ fn: lookAlike, export: 'main', args: [] }), { name: 'ProtocolViolationError' })
      const reply = {
        attestation: { task: lookAlike, result: SAMPLE_CID, peer: PEER, signature: new Uint8Array(64) },
        timings: { queueMs: 0, fetchMs: 0, runMs: 0 }
      }
      assert.throws(() => parseTaskReply(reply), { name: 'ProtocolViolationError' })
    }
    assert.equal(parseTaskRequest({ fn: SAMPLE_CID, export: 'main', args: [] }).fn, SAMPLE_CID)
  })

  // The fn protocol's replicate handler used CID.asCID too: a look-alike map as `fn` threw
  // TypeError inside the handler, which was answered as ERR_INTERNAL with a stack trace logged,
  // instead of being refused as the sender's protocol violation.
  test('a CID look-alike map as a replicate request fn is a ProtocolViolationError', () => {
    for (const lookAlike of [{ '/': false, bytes: false }, { '/': 'x', bytes: 'x' }, { '/': 1, bytes: 1 }, { '/': SAMPLE_CID.bytes, bytes: SAMPLE_CID.bytes }]) {
      assert.throws(() => parseReplicateRequest({ op: 'replicate', fn: lookAlike }), { name: 'ProtocolViolationError', message: /fn must be a CID/ })
    }
    assert.equal(parseReplicateRequest({ op: 'replicate', fn: SAMPLE_CID }).fn, SAMPLE_CID)
    // What the wire delivers: a real CID decoded from dag-cbor (tag 42) is accepted.
    assert.ok(parseReplicateRequest(dagCbor.decode(dagCbor.encode({ op: 'replicate', fn: SAMPLE_CID }))).fn.equals(SAMPLE_CID))
  })

  // limitsProblem checked `key in DEFAULT_LIMITS`, which is true for "__proto__", "toString" and
  // every other Object.prototype name: a manifest carrying them was accepted (found with seed 7).
  test('manifest limits with an inherited name as a field are refused', () => {
    assert.doesNotThrow(() => decodeManifest(manifestWithLimits({ ...DEFAULT_LIMITS })))
    for (const key of ['__proto__', 'toString', 'constructor', 'hasOwnProperty']) {
      const limits: Record<string, unknown> = { ...DEFAULT_LIMITS }
      Object.defineProperty(limits, key, { value: 1, enumerable: true })
      assert.throws(() => decodeManifest(manifestWithLimits(limits)), { name: 'InvalidManifestError', message: new RegExp(`unknown field "${key}"`) }, key)
    }
  })

  // decodeEnvelope had no nesting limit: 600 levels decoded (a body that the encoders it meets
  // later overflow on), 10,000 were refused only because the decoder's stack overflow was caught.
  test('an envelope nested past RPC_NESTING_DEPTH_MAX is refused before decoding', () => {
    const nested = (depth: number): Uint8Array => {
      const head = [0xa3, 0x62, 0x69, 0x64, 0x01, 0x64, 0x62, 0x6f, 0x64, 0x79] // { id: 1, body:
      const tail = [0x00, 0x64, 0x6b, 0x69, 0x6e, 0x64, 0x63, 0x72, 0x65, 0x71] // [[[...0]]], kind: 'req' }
      const out = new Uint8Array(head.length + depth + tail.length).fill(0x81)
      out.set(head, 0)
      out.set(tail, head.length + depth)
      return out
    }
    assert.equal(decodeEnvelope(nested(10)).kind, 'req')
    for (const depth of [600, 10_000, 1_000_000]) {
      assert.throws(() => decodeEnvelope(nested(depth)), (err: unknown) => {
        assert.equal((err as Error).name, 'ProtocolViolationError')
        assert.match((err as Error).message, /nests containers deeper than/)
        assert.equal((err as Error).cause, undefined, 'refused by the check, not by a caught stack overflow')
        return true
      })
    }
  })
})

describe('fuzz generators reach past the first check', () => {
  // A generator that only ever produced undecodable bytes would pass every property and prove
  // nothing: a fair share of inputs must decode, and some must fail on a field, not on the bytes.
  test('envelope inputs: some accepted, some refused after decoding', () => {
    const envelope = fc.record({ id: fc.nat({ max: 1000 }), kind: fc.constantFrom('req', 'res'), body: dagValue() })
    const samples = fc.sample(cborBytes(envelope, ['id', 'kind', 'body']), { numRuns: 500, seed: FUZZ_SEED_DEFAULT })
    let accepted = 0
    let fieldRefusals = 0
    let byteRefusals = 0
    for (const bytes of samples) {
      try {
        decodeEnvelope(bytes)
        accepted++
      } catch (err) {
        assert.ok(isNamedRefusal(err))
        if ((err as Error).cause === undefined && !/nests/.test((err as Error).message)) fieldRefusals++
        else byteRefusals++
      }
    }
    assert.ok(accepted >= 50 && fieldRefusals >= 50 && byteRefusals >= 50, `accepted ${accepted}, refused on a field ${fieldRefusals}, on the bytes ${byteRefusals}`)
  })
})
