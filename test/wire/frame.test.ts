import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { FrameDecoder, encodeFrame } from '../../src/wire/frame.ts'
import { ProtocolViolationError, TooLargeError } from '../../src/model/errors.ts'

const MiB = 1024 * 1024

/** Bytes whose value depends on position and a salt, so a misplaced slice cannot look right. */
function payload (length: number, salt = 0): Uint8Array {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = (i * 31 + salt * 7 + (i >> 8)) & 0xff
  return out
}

function concat (parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.byteLength, 0))
  let at = 0
  for (const part of parts) { out.set(part, at); at += part.byteLength }
  return out
}

/** Mulberry32: a tiny seeded generator, so a failing garbage case can be replayed from its seed. */
function seeded (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('encodeFrame / FrameDecoder', () => {
  test('round trip of one frame, with the varint prefix as long as the length needs', () => {
    const cases: Array<[number, number]> = [[0, 1], [1, 1], [127, 1], [128, 2], [16383, 2], [16384, 3], [MiB, 3]]
    for (const [size, prefixBytes] of cases) {
      const body = payload(size, size)
      const frame = encodeFrame(body)
      assert.equal(frame.byteLength, prefixBytes + size, `prefix of a ${size}-byte frame`)
      const decoder = new FrameDecoder(2 * MiB)
      const frames = decoder.push(frame)
      assert.equal(frames.length, 1, `frames from a ${size}-byte frame`)
      assert.deepEqual(frames[0], body)
      assert.equal(decoder.bufferedBytes, 0)
    }
  })

  test('several frames in one chunk come out in order, empty frames included', () => {
    const bodies = [payload(5, 1), payload(0), payload(200, 2), payload(0), payload(1, 3), payload(16384, 4)]
    const decoder = new FrameDecoder(MiB)
    const frames = decoder.push(concat(bodies.map(encodeFrame)))
    assert.deepEqual(frames, bodies)
    assert.equal(decoder.bufferedBytes, 0)
  })

  test('a stream split at every byte boundary yields the same frames', () => {
    const bodies = [payload(0), payload(1, 1), payload(127, 2), payload(128, 3), payload(300, 4), payload(0)]
    const stream = concat(bodies.map(encodeFrame))
    for (let cut = 0; cut <= stream.byteLength; cut++) {
      const decoder = new FrameDecoder(1000)
      const frames = [...decoder.push(stream.subarray(0, cut)), ...decoder.push(stream.subarray(cut))]
      assert.deepEqual(frames, bodies, `split at byte ${cut}`)
      assert.equal(decoder.bufferedBytes, 0, `split at byte ${cut}`)
    }
  })

  test('a stream fed one byte at a time yields the same frames, each when its last byte arrives', () => {
    const bodies = [payload(3, 1), payload(0), payload(130, 2), payload(16384, 3)]
    const encoded = bodies.map(encodeFrame)
    const stream = concat(encoded)
    const ends = new Set<number>()
    let at = 0
    for (const frame of encoded) { at += frame.byteLength; ends.add(at) }
    const decoder = new FrameDecoder(MiB)
    const frames: Uint8Array[] = []
    for (let i = 0; i < stream.byteLength; i++) {
      const out = decoder.push(stream.subarray(i, i + 1))
      assert.equal(out.length, ends.has(i + 1) ? 1 : 0, `frames completed by byte ${i}`)
      frames.push(...out)
    }
    assert.deepEqual(frames, bodies)
    assert.equal(decoder.bufferedBytes, 0)
  })

  test('a partial frame stays buffered until the rest arrives', () => {
    const frame = encodeFrame(payload(300))
    const decoder = new FrameDecoder(1000)
    assert.deepEqual(decoder.push(frame.subarray(0, 100)), [])
    assert.equal(decoder.bufferedBytes, 100)
    assert.deepEqual(decoder.push(frame.subarray(100)), [payload(300)])
    assert.equal(decoder.bufferedBytes, 0)
  })

  test('frames do not share memory with the chunk they came from', () => {
    const chunk = encodeFrame(payload(10, 9))
    const [frame] = new FrameDecoder(100).push(chunk)
    chunk.fill(0)
    assert.deepEqual(frame, payload(10, 9))
  })
})

describe('FrameDecoder limits', () => {
  const max = 1000

  test(`a frame of exactly frameBytesMax (${max}) passes`, () => {
    const decoder = new FrameDecoder(max)
    assert.deepEqual(decoder.push(encodeFrame(payload(max))), [payload(max)])
  })

  test('frameBytesMax + 1 throws TooLargeError when the whole frame arrives', () => {
    const decoder = new FrameDecoder(max)
    assert.throws(() => decoder.push(encodeFrame(payload(max + 1))), (err: unknown) => {
      assert.ok(err instanceof TooLargeError)
      assert.equal(err.name, 'TooLargeError')
      assert.equal(err.bytes, max + 1)
      assert.equal(err.bytesMax, max)
      return true
    })
  })

  test('frameBytesMax + 1 throws as soon as its whole prefix arrives, before any body byte', () => {
    const frame = encodeFrame(payload(max + 1))
    const prefix = frame.subarray(0, 2)
    assert.equal(frame.byteLength, prefix.byteLength + max + 1)
    assert.throws(() => new FrameDecoder(max).push(prefix), { name: 'TooLargeError' })
    // One byte shorter is the same prefix length and does not throw: it waits for the body.
    const ok = new FrameDecoder(max)
    assert.deepEqual(ok.push(encodeFrame(payload(max)).subarray(0, 2)), [])
    assert.equal(ok.bufferedBytes, 2)
  })

  test('an incomplete prefix that already proves the frame too large throws', () => {
    // 0xff alone says "127 plus more to come": at least 127 bytes.
    assert.throws(() => new FrameDecoder(126).push(Uint8Array.of(0xff)), { name: 'TooLargeError' })
    const ok = new FrameDecoder(127)
    assert.deepEqual(ok.push(Uint8Array.of(0xff)), [])
    assert.equal(ok.bufferedBytes, 1)
    // Two continued bytes of 0xff say at least 16383, whatever follows.
    const two = Uint8Array.of(0xff, 0xff)
    assert.throws(() => new FrameDecoder(16382).push(two), { name: 'TooLargeError' })
    assert.deepEqual(new FrameDecoder(16383).push(two), [])
  })

  test('the too-large check applies to a frame that follows good ones in the same chunk', () => {
    const decoder = new FrameDecoder(10)
    const chunk = concat([encodeFrame(payload(10)), encodeFrame(payload(11))])
    assert.throws(() => decoder.push(chunk), { name: 'TooLargeError' })
  })

  test('a 5-byte varint prefix is accepted; a 6-byte one throws ProtocolViolationError', () => {
    const frameBytesMax = 2 ** 30
    // 2^28 needs all five bytes: 0x80 0x80 0x80 0x80 0x01.
    const five = Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x01)
    const decoder = new FrameDecoder(frameBytesMax)
    assert.deepEqual(decoder.push(five), [])
    assert.equal(decoder.bufferedBytes, 5)
    const six = Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x00)
    assert.throws(() => new FrameDecoder(frameBytesMax).push(six), (err: unknown) => err instanceof ProtocolViolationError && err.name === 'ProtocolViolationError')
    // Five continuation bytes already prove the prefix is at least six bytes long.
    assert.throws(() => new FrameDecoder(frameBytesMax).push(six.subarray(0, 5)), { name: 'ProtocolViolationError' })
    // And the same prefix fed one byte at a time.
    const slow = new FrameDecoder(frameBytesMax)
    for (let i = 0; i < 4; i++) assert.deepEqual(slow.push(six.subarray(i, i + 1)), [])
    assert.throws(() => slow.push(six.subarray(4, 5)), { name: 'ProtocolViolationError' })
  })

  test('random garbage only ever throws TooLargeError or ProtocolViolationError', () => {
    const iterations = 400
    const limits = [0, 1, 127, 128, 1000, 70_000, 2 ** 31]
    let thrown = 0
    let decoded = 0
    for (let seed = 1; seed <= iterations; seed++) {
      const random = seeded(seed)
      const max = limits[Math.floor(random() * limits.length)]
      const bytes = new Uint8Array(Math.floor(random() * 96))
      for (let i = 0; i < bytes.byteLength; i++) {
        // Bias towards small bytes so that short, complete frames occur as well as huge prefixes.
        bytes[i] = random() < 0.5 ? Math.floor(random() * 8) : Math.floor(random() * 256)
      }
      const decoder = new FrameDecoder(max)
      let at = 0
      try {
        while (at < bytes.byteLength) {
          const end = Math.min(bytes.byteLength, at + 1 + Math.floor(random() * 16))
          for (const frame of decoder.push(bytes.subarray(at, end))) {
            assert.ok(frame.byteLength <= max, `seed ${seed}: a frame of ${frame.byteLength} bytes passed a limit of ${max}`)
            decoded++
          }
          at = end
        }
        assert.ok(decoder.bufferedBytes <= bytes.byteLength, `seed ${seed}: buffered more than was fed`)
      } catch (err) {
        const name = (err as Error).name
        assert.ok(
          (err instanceof TooLargeError && name === 'TooLargeError') || (err instanceof ProtocolViolationError && name === 'ProtocolViolationError'),
          `seed ${seed}: unexpected ${name}: ${(err as Error).message}`
        )
        thrown++
      }
    }
    // The generator must exercise both outcomes, or this test proves nothing.
    assert.ok(thrown > 0 && decoded > 0, `thrown ${thrown}, frames decoded ${decoded}`)
  })
})
