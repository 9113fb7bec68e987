// The announcement codec: round trip, pinned bytes, fixtures in valid/invalid pairs, every limit
// one unit past, and seeded garbage that must only ever produce the named errors.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import {
  ANNOUNCEMENT_BYTES_MAX, ANNOUNCEMENT_NESTING_DEPTH_MAX, decodeAnnouncement, encodeAnnouncement, nestingExceeds
} from '../../src/wire/membership-codec.ts'
import {
  ADDRS_MAX, ADDR_CHARS_MAX, CAPACITY_VALUE_MAX, NETWORK_ID_CHARS_MAX, PEER_ID_CHARS_MAX, VERSION_CHARS_MAX
} from '../../src/protocol/membership/index.ts'
import type { Announcement } from '../../src/protocol/membership/index.ts'
import { createRandom } from '../../src/protocol/random.ts'

const PEER = '12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf'

function valid (): Announcement {
  return {
    peerId: PEER,
    networkId: 'rhizome',
    incarnation: 1_763_700_000_000,
    seq: 7,
    version: '0.1.0',
    addrs: ['/ip4/127.0.0.1/tcp/4001', '/ip4/127.0.0.1/tcp/4002/ws'],
    capacity: { slotsFree: 3, slotsMax: 4, queueLength: 0 }
  }
}

/** The valid announcement with some fields replaced (or deleted, with `undefined`), encoded
 *  without any validation, as a hostile peer would. */
function raw (changes: Record<string, unknown> = {}, capacityChanges: Record<string, unknown> = {}): Uint8Array {
  const value: Record<string, unknown> = { ...valid(), capacity: { ...valid().capacity, ...capacityChanges } }
  for (const [key, v] of Object.entries(changes)) {
    if (v === undefined) delete value[key]
    else value[key] = v
  }
  for (const [key, v] of Object.entries(capacityChanges)) {
    if (v === undefined) delete (value.capacity as Record<string, unknown>)[key]
  }
  return dagCbor.encode(value)
}

/** n nested single-item arrays around 1: [[[…1…]]]. */
function nested (n: number): unknown {
  let v: unknown = 1
  for (let i = 0; i < n; i++) v = [v]
  return v
}

const ALLOWED = new Set(['ProtocolViolationError', 'TooLargeError'])

function errorOf (fn: () => unknown): Error | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    return err as Error
  }
}

describe('membership codec: round trip', () => {
  it('decodes what it encodes', () => {
    assert.deepEqual(decodeAnnouncement(encodeAnnouncement(valid())), valid())
  })

  it('encodes deterministically, whatever the key order of the object', () => {
    const a = valid()
    const b: Announcement = {
      capacity: { queueLength: 0, slotsMax: 4, slotsFree: 3 },
      addrs: a.addrs, version: a.version, seq: a.seq, incarnation: a.incarnation, networkId: a.networkId, peerId: a.peerId
    }
    assert.deepEqual(encodeAnnouncement(b), encodeAnnouncement(a))
  })

  it('pins the bytes of one announcement (a change here breaks compatibility with deployed peers)', () => {
    const bytes = encodeAnnouncement({
      peerId: '12D3KooWA', networkId: 'n', incarnation: 1, seq: 2, version: '1', addrs: ['/a'], capacity: { slotsFree: 0, slotsMax: 1, queueLength: 2 }
    })
    // dag-cbor: a map of 7, keys sorted by length then bytes: seq, addrs, peerId, version, capacity, networkId, incarnation.
    assert.equal(Buffer.from(bytes).toString('hex'), 'a7637365710265616464727381622f616670656572496469313244334b6f6f57416776657273696f6e6131686361706163697479a368736c6f74734d61780169736c6f747346726565006b71756575654c656e67746802696e6574776f726b4964616e6b696e6361726e6174696f6e01')
  })

  it('drops fields it does not know when decoding (a newer peer may add some)', () => {
    const decoded = decodeAnnouncement(raw({ warmFunctions: ['bafy…'], future: { a: 1 } }, { gpus: 2 }))
    assert.deepEqual(decoded, valid())
  })

  it('returns fresh arrays: the decoded value shares nothing with the decoder', () => {
    const a = decodeAnnouncement(encodeAnnouncement(valid()))
    a.addrs.push('/x')
    assert.deepEqual(decodeAnnouncement(encodeAnnouncement(valid())).addrs, valid().addrs)
  })
})

describe('membership codec: size', () => {
  it('fits the largest valid announcement in ANNOUNCEMENT_BYTES_MAX, with room to spare', () => {
    const biggest: Announcement = {
      peerId: 'z'.repeat(PEER_ID_CHARS_MAX),
      networkId: '~'.repeat(NETWORK_ID_CHARS_MAX),
      incarnation: Number.MAX_SAFE_INTEGER,
      seq: Number.MAX_SAFE_INTEGER,
      version: 'v'.repeat(VERSION_CHARS_MAX),
      addrs: Array.from({ length: ADDRS_MAX }, () => '/' + 'a'.repeat(ADDR_CHARS_MAX - 1)),
      capacity: { slotsFree: CAPACITY_VALUE_MAX, slotsMax: CAPACITY_VALUE_MAX, queueLength: CAPACITY_VALUE_MAX }
    }
    const bytes = encodeAnnouncement(biggest)
    assert.equal(bytes.byteLength, 4497, 'the size documented at ANNOUNCEMENT_BYTES_MAX')
    assert.ok(bytes.byteLength < ANNOUNCEMENT_BYTES_MAX)
    assert.deepEqual(decodeAnnouncement(bytes), biggest)
  })

  it('decodes exactly ANNOUNCEMENT_BYTES_MAX bytes and refuses one byte more, before decoding', () => {
    // Pad with an unknown field so the message is valid at exactly the limit.
    let pad = ANNOUNCEMENT_BYTES_MAX - raw({ pad: '' }).byteLength
    let bytes = raw({ pad: 'p'.repeat(pad) })
    while (bytes.byteLength > ANNOUNCEMENT_BYTES_MAX) bytes = raw({ pad: 'p'.repeat(--pad) }) // the length header grows
    while (bytes.byteLength < ANNOUNCEMENT_BYTES_MAX) bytes = raw({ pad: 'p'.repeat(++pad) })
    assert.equal(bytes.byteLength, ANNOUNCEMENT_BYTES_MAX)
    assert.deepEqual(decodeAnnouncement(bytes), valid())
    const over = raw({ pad: 'p'.repeat(pad + 1) })
    assert.equal(over.byteLength, ANNOUNCEMENT_BYTES_MAX + 1)
    assert.throws(() => decodeAnnouncement(over), { name: 'TooLargeError', bytes: ANNOUNCEMENT_BYTES_MAX + 1, bytesMax: ANNOUNCEMENT_BYTES_MAX })
    // Garbage of the same size is refused for its size, not its content.
    assert.throws(() => decodeAnnouncement(new Uint8Array(ANNOUNCEMENT_BYTES_MAX + 1).fill(0xff)), { name: 'TooLargeError' })
  })
})

describe('membership codec: nesting', () => {
  it(`accepts ${ANNOUNCEMENT_NESTING_DEPTH_MAX} levels of containers and refuses one more, before decoding`, () => {
    // The root map is level 1, so an unknown field may nest DEPTH_MAX − 1 arrays.
    assert.deepEqual(decodeAnnouncement(raw({ deep: nested(ANNOUNCEMENT_NESTING_DEPTH_MAX - 1) })), valid())
    assert.throws(() => decodeAnnouncement(raw({ deep: nested(ANNOUNCEMENT_NESTING_DEPTH_MAX) })), {
      name: 'ProtocolViolationError', message: /nests containers deeper than 8/
    })
  })

  it('refuses 8 KiB of nested arrays with a ProtocolViolationError, not a stack overflow', () => {
    const bytes = new Uint8Array(ANNOUNCEMENT_BYTES_MAX).fill(0x81)
    assert.throws(() => decodeAnnouncement(bytes), { name: 'ProtocolViolationError' })
    const tags = new Uint8Array(ANNOUNCEMENT_BYTES_MAX)
    for (let i = 0; i + 1 < tags.length; i += 2) tags.set([0xd8, 42], i) // tag 42 (CID) wrapping tag 42 …
    assert.throws(() => decodeAnnouncement(tags), { name: 'ProtocolViolationError' })
  })

  it('counts depth like the decoder: maps, arrays and tags nest; strings and numbers do not', () => {
    assert.equal(nestingExceeds(dagCbor.encode(nested(3)), 3), false)
    assert.equal(nestingExceeds(dagCbor.encode(nested(4)), 3), true)
    assert.equal(nestingExceeds(dagCbor.encode({ a: { b: { c: 'x'.repeat(300) } } }), 3), false)
    assert.equal(nestingExceeds(dagCbor.encode({ a: { b: { c: [] } } }), 3), false, 'an empty array opens nothing')
    assert.equal(nestingExceeds(dagCbor.encode([[1, 2], [3, [4]]]), 2), true)
    assert.equal(nestingExceeds(dagCbor.encode([[1, 2], [3, 4], 5]), 2), false)
    assert.equal(nestingExceeds(new Uint8Array([0x9f, 0x9f, 0x9f]), 1), false, 'indefinite lengths are left to the decoder')
  })
})

describe('membership codec: fixtures (valid / invalid pairs)', () => {
  // [what, valid bytes, invalid bytes, field named in the error]
  const pairs: Array<[string, Uint8Array, Uint8Array, string]> = [
    ['peerId length', raw({ peerId: '1'.repeat(PEER_ID_CHARS_MAX) }), raw({ peerId: '1'.repeat(PEER_ID_CHARS_MAX + 1) }), 'peerId'],
    ['peerId alphabet', raw({ peerId: 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N' }), raw({ peerId: '12D3KooW0OIl' }), 'peerId'],
    ['peerId type', raw(), raw({ peerId: CID.parse('bafyreidykglsfhoixmivffc5uwhcgshx4j465xwqntbmu43nb2dzqwfvae') }), 'peerId'],
    ['peerId present', raw(), raw({ peerId: undefined }), 'peerId'],
    ['networkId length', raw({ networkId: 'n'.repeat(NETWORK_ID_CHARS_MAX) }), raw({ networkId: 'n'.repeat(NETWORK_ID_CHARS_MAX + 1) }), 'networkId'],
    ['networkId empty', raw({ networkId: 'n' }), raw({ networkId: '' }), 'networkId'],
    ['networkId ASCII', raw({ networkId: 'my net' }), raw({ networkId: 'réseau' }), 'networkId'],
    ['incarnation range', raw({ incarnation: Number.MAX_SAFE_INTEGER }), raw({ incarnation: 2n ** 64n - 1n }), 'incarnation'],
    ['incarnation sign', raw({ incarnation: 0 }), raw({ incarnation: -1 }), 'incarnation'],
    ['seq integer', raw({ seq: 1 }), raw({ seq: 1.5 }), 'seq'],
    ['seq type', raw({ seq: 0 }), raw({ seq: '1' }), 'seq'],
    ['version length', raw({ version: 'v'.repeat(VERSION_CHARS_MAX) }), raw({ version: 'v'.repeat(VERSION_CHARS_MAX + 1) }), 'version'],
    ['version printable', raw({ version: '0.1.0-rc.1' }), raw({ version: '0.1.0\n' }), 'version'],
    ['addrs count', raw({ addrs: Array.from({ length: ADDRS_MAX }, () => '/a') }), raw({ addrs: Array.from({ length: ADDRS_MAX + 1 }, () => '/a') }), 'addrs'],
    ['addrs item length', raw({ addrs: ['/' + 'a'.repeat(ADDR_CHARS_MAX - 1)] }), raw({ addrs: ['/' + 'a'.repeat(ADDR_CHARS_MAX)] }), 'addrs[0]'],
    ['addrs item type', raw({ addrs: [] }), raw({ addrs: ['/a', 7] }), 'addrs[1]'],
    ['addrs type', raw({ addrs: ['/a'] }), raw({ addrs: '/a' }), 'addrs'],
    ['capacity value', raw({}, { slotsMax: CAPACITY_VALUE_MAX }), raw({}, { slotsMax: CAPACITY_VALUE_MAX + 1 }), 'capacity.slotsMax'],
    ['capacity sign', raw({}, { queueLength: 0 }), raw({}, { queueLength: -1 }), 'capacity.queueLength'],
    ['capacity present', raw(), raw({}, { slotsFree: undefined }), 'capacity.slotsFree'],
    ['capacity free <= max', raw({}, { slotsFree: 4 }), raw({}, { slotsFree: 5 }), 'capacity.slotsFree'],
    ['capacity type', raw(), raw({ capacity: [3, 4, 0] }), 'capacity'],
    ['root type', raw(), dagCbor.encode([valid()]), '(root)'],
    ['root null', raw(), dagCbor.encode(null), '(root)']
  ]
  for (const [what, good, bad, field] of pairs) {
    it(`${what}: valid decodes, invalid is a ProtocolViolationError naming ${field}`, () => {
      decodeAnnouncement(good)
      assert.throws(() => decodeAnnouncement(bad), (err: Error) => {
        assert.equal(err.name, 'ProtocolViolationError')
        assert.ok(err.message.startsWith(`announcement.${field}: `), err.message)
        return true
      })
    })
  }

  it('refuses bytes that are not dag-cbor, with the decoder\'s error as cause', () => {
    const cases = [
      new Uint8Array([]),
      new Uint8Array([0xa1]), // truncated map
      new Uint8Array([0xbf, 0xff]), // indefinite map: not dag-cbor
      Uint8Array.from([...raw(), 0x00]), // trailing byte
      dagCbor.encode({ b: 1, a: 2 }).reverse(),
      new Uint8Array([0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]) // NaN
    ]
    for (const bytes of cases) {
      const err = errorOf(() => decodeAnnouncement(bytes))
      assert.equal(err?.name, 'ProtocolViolationError', Buffer.from(bytes).toString('hex'))
    }
    const err = errorOf(() => decodeAnnouncement(new Uint8Array([0xa1])))
    assert.ok(err?.cause instanceof Error)
  })

  it('refuses to encode what its peers would refuse (InvalidInputError naming the field)', () => {
    assert.throws(() => encodeAnnouncement({ ...valid(), version: 'v'.repeat(VERSION_CHARS_MAX + 1) }), { name: 'InvalidInputError', message: /^announcement\.version: / })
    assert.throws(() => encodeAnnouncement({ ...valid(), seq: -1 }), { name: 'InvalidInputError', message: /^announcement\.seq: / })
  })
})

describe('membership codec: garbage', () => {
  it('throws only the named errors on 600 seeded random and mutated inputs', () => {
    const rng = createRandom(2026)
    const base = encodeAnnouncement(valid())
    const outcomes: Record<string, number> = {}
    for (let i = 0; i < 600; i++) {
      let bytes: Uint8Array
      const kind = i % 3
      if (kind === 0) {
        bytes = new Uint8Array(rng.int(0, 400)).map(() => rng.int(0, 255))
      } else if (kind === 1) {
        bytes = Uint8Array.from(base)
        const flips = rng.int(1, 4)
        for (let f = 0; f < flips; f++) bytes[rng.int(0, bytes.length - 1)] = rng.int(0, 255)
      } else {
        bytes = base.subarray(0, rng.int(0, base.length))
      }
      const err = errorOf(() => decodeAnnouncement(bytes))
      const outcome = err === undefined ? 'decoded' : err.name
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1
      assert.ok(err === undefined || ALLOWED.has(err.name), `input ${i} (${Buffer.from(bytes).toString('hex')}) threw ${err?.name}: ${err?.message}`)
      if (err === undefined) assert.ok(decodeAnnouncement(encodeAnnouncement(decodeAnnouncement(bytes))))
    }
    assert.ok((outcomes.ProtocolViolationError ?? 0) > 300, JSON.stringify(outcomes))
  })
})
