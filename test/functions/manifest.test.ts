import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import {
  createManifest, decodeManifest, encodeManifest, EXPORTS_MAX, FUNCTION_NAME_LENGTH_MAX, manifestCid, MANIFEST_BYTES_MAX, MANIFEST_KINDS
} from '../../src/functions/index.ts'
import type { FunctionManifest } from '../../src/functions/index.ts'
import { CODE_BYTES_MAX, DEFAULT_LIMITS, DEFAULT_WORKFLOW_LIMITS, LIMITS_CEILING } from '../../src/sandbox/index.ts'
import { parseTaskRequest } from '../../src/wire/task-codec.ts'
import { REPLICAS_MAX } from '../../src/model/verification.ts'

const code = new TextEncoder().encode('export function B (x) { return x * 2 }')

async function manifest (): Promise<FunctionManifest> {
  return await createManifest({ name: 'fns', kind: 'js', code, exports: ['D', 'B', 'C', 'B'] })
}

/** A valid manifest with one field replaced, encoded as dag-cbor without validation. */
async function tampered (field: string, value: unknown): Promise<Uint8Array> {
  const m = { ...(await manifest()) } as Record<string, unknown>
  if (value === undefined) delete m[field]
  else m[field] = value
  return dagCbor.encode(m)
}

describe('function manifests', () => {
  test('createManifest names the code by raw CID and sorts and deduplicates the exports', async () => {
    const m = await manifest()
    assert.equal(m.rhizome, 'function/1')
    assert.equal(m.code.code, 0x55)
    assert.equal(m.code.multihash.code, sha256.code)
    assert.equal(m.codeBytes, code.length)
    assert.deepEqual(m.exports, ['B', 'C', 'D'])
    assert.deepEqual(m.limits, DEFAULT_LIMITS)
    assert.equal(m.deterministic, true)
  })

  test('round trip: decode(encode(m)) equals m; the CID is dag-cbor + sha2-256', async () => {
    const m = await manifest()
    const bytes = encodeManifest(m)
    const decoded = decodeManifest(bytes)
    assert.deepEqual({ ...decoded, code: decoded.code.toString() }, { ...m, code: m.code.toString() })
    const cid = await manifestCid(bytes)
    assert.equal(cid.version, 1)
    assert.equal(cid.code, 0x71)
    assert.equal(cid.multihash.code, sha256.code)
  })

  test('the same code gives the same manifest CID; other code another', async () => {
    const a = await manifestCid(encodeManifest(await manifest()))
    const b = await manifestCid(encodeManifest(await manifest()))
    const other = await manifestCid(encodeManifest(await createManifest({ name: 'fns', kind: 'js', code: new Uint8Array([1]), exports: ['B'] })))
    assert.ok(a.equals(b))
    assert.ok(!a.equals(other))
  })

  test('kind workflow: exports are the workflow names, limits default to those of one activation, JS code limit', async () => {
    assert.deepEqual(MANIFEST_KINDS, ['js', 'wasm', 'workflow'])
    const m = await createManifest({ name: 'flow', kind: 'workflow', code, exports: ['A', 'Child'] })
    assert.equal(m.kind, 'workflow')
    assert.deepEqual(m.exports, ['A', 'Child'])
    assert.deepEqual(m.limits, DEFAULT_WORKFLOW_LIMITS)
    const bytes = encodeManifest(m)
    assert.equal(decodeManifest(bytes).kind, 'workflow')
    // The same bundle as a workflow and as functions: two different ids.
    const asJs = await manifestCid(encodeManifest(await createManifest({ name: 'flow', kind: 'js', code, exports: ['A', 'Child'], limits: DEFAULT_WORKFLOW_LIMITS })))
    assert.ok(!(await manifestCid(bytes)).equals(asJs))
    // A workflow bundle is JS: held to the JS code limit, not the larger wasm one.
    const m2 = { ...m } as Record<string, unknown>
    m2.codeBytes = CODE_BYTES_MAX.js
    assert.equal(decodeManifest(dagCbor.encode(m2)).codeBytes, CODE_BYTES_MAX.js)
    m2.codeBytes = CODE_BYTES_MAX.js + 1
    assert.throws(() => decodeManifest(dagCbor.encode(m2)), { name: 'InvalidManifestError', field: 'codeBytes' })
    await assert.rejects(createManifest({ name: 'flow', kind: 'workflow', code, exports: ['not-a-name'] }), { name: 'InvalidManifestError', field: 'exports[0]' })
    await assert.rejects(createManifest({ name: 'flow', kind: 'workflow', code, exports: [] }), { name: 'InvalidManifestError', field: 'exports' })
  })

  // Invalid manifests, each with the field the error names.
  const invalid: Array<[string, string, unknown, string]> = [
    ['wrong version', 'rhizome', 'function/2', 'rhizome'],
    ['missing name', 'name', undefined, 'name'],
    ['empty name', 'name', '', 'name'],
    [`name of ${FUNCTION_NAME_LENGTH_MAX + 1} characters`, 'name', 'n'.repeat(FUNCTION_NAME_LENGTH_MAX + 1), 'name'],
    ['name with a control character', 'name', 'a\u001bb', 'name'],
    ['unknown kind', 'kind', 'python', 'kind'],
    ['kind Workflow (case matters)', 'kind', 'Workflow', 'kind'],
    ['code that is not a CID', 'code', 'bafy', 'code'],
    ['code CID with the dag-cbor codec', 'code', CID.create(1, 0x71, CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy').multihash), 'code'],
    ['codeBytes zero', 'codeBytes', 0, 'codeBytes'],
    ['codeBytes one past the js maximum', 'codeBytes', CODE_BYTES_MAX.js + 1, 'codeBytes'],
    ['codeBytes not an integer', 'codeBytes', 1.5, 'codeBytes'],
    ['no exports', 'exports', [], 'exports'],
    [`${EXPORTS_MAX + 1} exports`, 'exports', Array.from({ length: EXPORTS_MAX + 1 }, (_, i) => `f${String(i).padStart(4, '0')}`), 'exports'],
    ['unsorted exports', 'exports', ['C', 'B'], 'exports'],
    ['duplicate exports', 'exports', ['B', 'B'], 'exports'],
    ['an export that is not a string', 'exports', ['B', 7], 'exports[1]'],
    ['limits one past the time ceiling', 'limits', { ...DEFAULT_LIMITS, timeMs: LIMITS_CEILING.timeMs + 1 }, 'limits'],
    ['limits with an unknown field', 'limits', { ...DEFAULT_LIMITS, cpus: 2 }, 'limits'],
    ['limits missing a field', 'limits', { timeMs: 1000, memoryBytesMax: DEFAULT_LIMITS.memoryBytesMax }, 'limits'],
    ['deterministic not a boolean', 'deterministic', 'yes', 'deterministic'],
    ['an unknown field', 'owner', 'me', 'owner']
  ]
  for (const [label, field, value, errorField] of invalid) {
    test(`refuses a manifest with ${label}: InvalidManifestError on ${errorField}`, async () => {
      await assert.rejects(async () => decodeManifest(await tampered(field, value)), { name: 'InvalidManifestError', field: errorField })
    })
  }

  // Names: valid and invalid pairs. Export names follow the one rule the task protocol uses
  // (src/model/export-name.ts); function names are labels without hidden characters.
  const exportNames: Array<[string, boolean]> = [
    ['sum', true], ['_private', true], ['$dollar', true], ['camelCase2', true], ['x'.repeat(128), true],
    ['x'.repeat(129), false], ['2fast', false], ['with-dash', false], ['with space', false], ['dot.ted', false],
    ['caf\u00e9', false], ['a\u200bb', false], ['a\u202eb', false], ['a\u0000b', false], ['', false]
  ]
  for (const [name, ok] of exportNames) {
    test(`export name ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${name.length})` : name)} is ${ok ? 'accepted' : 'refused: InvalidManifestError on exports[0]'}`, async () => {
      const bytes = await tampered('exports', [name])
      if (ok) assert.deepEqual(decodeManifest(bytes).exports, [name])
      else assert.throws(() => decodeManifest(bytes), { name: 'InvalidManifestError', field: 'exports[0]' })
      // The task protocol draws the same line, so every listed export can be called.
      const request = { fn: CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'), export: name, args: [] }
      if (ok) assert.equal(parseTaskRequest(request).export, name)
      else assert.throws(() => parseTaskRequest(request), { name: 'ProtocolViolationError' })
    })
  }

  const functionNames: Array<[string, boolean]> = [
    ['fns', true], ['my functions v2', true], ['caf\u00e9', true], ['\u6f22\u5b57', true], ['emoji \u{1f600}', true],
    ['bidi \u202eevil', false], ['zero\u200bwidth', false], ['joiner\u200d', false], ['bom\ufeff', false], ['c1 \u0085', false],
    ['del \u007f', false], ['line\u2028sep', false], ['isolate \u2066', false]
  ]
  for (const [name, ok] of functionNames) {
    test(`function name ${JSON.stringify(name)} is ${ok ? 'accepted' : 'refused: InvalidManifestError on name'}`, async () => {
      const bytes = await tampered('name', name)
      if (ok) assert.equal(decodeManifest(bytes).name, name)
      else assert.throws(() => decodeManifest(bytes), { name: 'InvalidManifestError', field: 'name' })
    })
  }

  test('limits keys are own properties: toString, __proto__, constructor and hasOwnProperty are unknown fields', async () => {
    for (const key of ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'valueOf']) {
      const limits: Record<string, unknown> = { ...DEFAULT_LIMITS }
      Object.defineProperty(limits, key, { value: 1, enumerable: true, configurable: true, writable: true })
      const bytes = await tampered('limits', limits)
      assert.throws(() => decodeManifest(bytes), { name: 'InvalidManifestError', field: 'limits' }, key)
    }
  })

  test('a function name with a lone surrogate is refused when the manifest is made', async () => {
    await assert.rejects(createManifest({ name: 'lone \ud800', kind: 'js', code, exports: ['B'] }), { name: 'InvalidManifestError', field: 'name' })
  })

  test('a manifest missing a field names it, even one Object.prototype has (toString is not a field)', async () => {
    await assert.rejects(async () => decodeManifest(await tampered('deterministic', undefined)), { name: 'InvalidManifestError', field: 'deterministic' })
    await assert.rejects(async () => decodeManifest(await tampered('toString', 'x')), { name: 'InvalidManifestError', field: 'toString' })
  })

  test('refuses bytes that are not dag-cbor, not a map, or not canonical', async () => {
    assert.throws(() => decodeManifest(new Uint8Array([0xff, 0x00])), { name: 'InvalidManifestError', field: 'bytes' })
    assert.throws(() => decodeManifest(dagCbor.encode([1, 2])), { name: 'InvalidManifestError', field: '(root)' })
    const canonical = encodeManifest(await manifest())
    // The same map with its first key's length written in two bytes instead of one.
    const first = canonical[1]
    const longForm = Uint8Array.from([canonical[0], 0x78, first & 0x1f, ...canonical.subarray(2)])
    assert.throws(() => decodeManifest(longForm), { name: 'InvalidManifestError', field: 'bytes' })
  })

  test(`manifests of ${MANIFEST_BYTES_MAX} bytes are decoded; one byte more is refused before decoding`, async () => {
    // Pad the name so the whole encoding is exactly MANIFEST_BYTES_MAX: still refused, but by
    // field validation (the name is too long), which shows the size check let it through.
    const withName = async (length: number): Promise<Uint8Array> => await tampered('name', 'x'.repeat(length))
    let length = MANIFEST_BYTES_MAX - encodeManifest(await manifest()).length
    length += MANIFEST_BYTES_MAX - (await withName(length)).length
    const padded = await withName(length)
    assert.equal(padded.length, MANIFEST_BYTES_MAX)
    assert.throws(() => decodeManifest(padded), { name: 'InvalidManifestError', field: 'name' })
    const over = await withName(length + 1)
    assert.equal(over.length, MANIFEST_BYTES_MAX + 1)
    assert.throws(() => decodeManifest(over), { name: 'TooLargeError' })
  })

  test('createManifest refuses invalid input with named errors too', async () => {
    await assert.rejects(createManifest({ name: 'x', kind: 'js', code, exports: [] }), { name: 'InvalidManifestError', field: 'exports' })
    await assert.rejects(createManifest({ name: 'x', kind: 'js', code: new Uint8Array(0), exports: ['B'] }), { name: 'InvalidManifestError', field: 'codeBytes' })
  })

  test('a manifest without a verification policy has the bytes and id it had before policies existed', async () => {
    // Pinned: a change to these ids would give every deployed function a new id.
    const m = await manifest()
    assert.equal(Object.hasOwn(m, 'verification'), false)
    assert.equal((await manifestCid(encodeManifest(m))).toString(), 'bafyreidkqg2uk7dtjzxxishfmtzidslw56xuntbmkfoz7va7akncr3j2iu')
    const flow = await createManifest({ name: 'flow', kind: 'workflow', code, exports: ['A'] })
    assert.equal((await manifestCid(encodeManifest(flow))).toString(), 'bafyreicaswie54jybyy6tm3tiekb6ybn5wne34ixywefyiceqm6dd2i5yy')
  })

  test('a verification policy is carried, round-trips, and gives another id', async () => {
    const policy = { replicas: 3, quorum: 2, spotCheckRate: 0.05 }
    const m = await createManifest({ name: 'fns', kind: 'js', code, exports: ['B'], verification: policy })
    const bytes = encodeManifest(m)
    assert.deepEqual(decodeManifest(bytes).verification, policy)
    const plain = encodeManifest(await createManifest({ name: 'fns', kind: 'js', code, exports: ['B'] }))
    assert.ok(!(await manifestCid(bytes)).equals(await manifestCid(plain)))
    const wasm = await createManifest({ name: 'w', kind: 'wasm', code, exports: ['B'], verification: { replicas: REPLICAS_MAX, quorum: REPLICAS_MAX, spotCheckRate: 1 } })
    assert.equal(decodeManifest(encodeManifest(wasm)).verification?.replicas, REPLICAS_MAX)
  })

  const badPolicies: Array<[string, unknown, RegExp]> = [
    ['not a map', 3, /must be a map/],
    ['a list', [3, 2, 0], /must be a map/],
    ['an unknown key', { replicas: 3, quorum: 2, spotCheckRate: 0, trust: 1 }, /unknown field "trust"/],
    ['a missing key', { replicas: 3, quorum: 2 }, /missing spotCheckRate/],
    ['replicas 0', { replicas: 0, quorum: 1, spotCheckRate: 0 }, /replicas must be an integer from 1/],
    [`replicas ${REPLICAS_MAX + 1}`, { replicas: REPLICAS_MAX + 1, quorum: 2, spotCheckRate: 0 }, new RegExp(`from 1 to ${REPLICAS_MAX}`)],
    ['replicas 1 with quorum 2', { replicas: 1, quorum: 2, spotCheckRate: 0 }, /quorum must be 1 when replicas is 1/],
    ['quorum 1 of 3', { replicas: 3, quorum: 1, spotCheckRate: 0 }, /quorum must be from 2 to replicas \(3\)/],
    ['quorum above replicas', { replicas: 3, quorum: 4, spotCheckRate: 0 }, /quorum must be from 2/],
    ['a spot-check rate above 1', { replicas: 1, quorum: 1, spotCheckRate: 1.5 }, /spotCheckRate must be a number from 0 to 1/],
    ['a negative spot-check rate', { replicas: 1, quorum: 1, spotCheckRate: -0.1 }, /spotCheckRate/]
  ]
  for (const [label, policy, message] of badPolicies) {
    test(`refuses a verification policy with ${label}: InvalidManifestError on verification`, async () => {
      await assert.rejects(async () => decodeManifest(await tampered('verification', policy)), { name: 'InvalidManifestError', field: 'verification', message })
    })
  }

  test('a workflow manifest may not carry a verification policy', async () => {
    const policy = { replicas: 3, quorum: 2, spotCheckRate: 0 }
    await assert.rejects(createManifest({ name: 'flow', kind: 'workflow', code, exports: ['A'], verification: policy }), { name: 'InvalidManifestError', field: 'verification', message: /never run as a task/ })
    const flow = { ...(await createManifest({ name: 'flow', kind: 'workflow', code, exports: ['A'] })), verification: policy }
    assert.throws(() => decodeManifest(dagCbor.encode(flow)), { name: 'InvalidManifestError', field: 'verification' })
  })

  test('a policy spot-check rate written as a float where an integer belongs is not canonical', async () => {
    // 1.0 as a float64 decodes to 1, which encodes as an integer: a second encoding of one policy.
    const m = await createManifest({ name: 'fns', kind: 'js', code, exports: ['B'], verification: { replicas: 1, quorum: 1, spotCheckRate: 1 } })
    const bytes = encodeManifest(m)
    const at = findSequence(bytes, new TextEncoder().encode('spotCheckRate'))
    assert.ok(at > 0)
    const end = at + 'spotCheckRate'.length
    assert.equal(bytes[end], 0x01) // the integer 1
    const floatOne = Uint8Array.from([...bytes.subarray(0, end), 0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, ...bytes.subarray(end + 1)])
    assert.throws(() => decodeManifest(floatOne), { name: 'InvalidManifestError', field: 'bytes' })
  })
})

function findSequence (haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer
    return i
  }
  return -1
}
