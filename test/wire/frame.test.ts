import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { FRAME_CHUNKS_MAX_DEFAULT, FrameDecoder, encodeFrame } from '../../src/wire/frame.ts'
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
    // 16 KiB one byte at a time is past the default chunk limit; raise it, as that limit is tested below.
    const decoder = new FrameDecoder(MiB, { frameChunksMax: stream.byteLength })
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

describe('FrameDecoder chunk limit (frameChunksMax)', () => {
  test(`the default is FRAME_CHUNKS_MAX_DEFAULT (${FRAME_CHUNKS_MAX_DEFAULT})`, () => {
    assert.equal(new FrameDecoder(MiB).frameChunksMax, FRAME_CHUNKS_MAX_DEFAULT)
  })

  test('a frame that arrives in exactly frameChunksMax one-byte chunks passes; one more byte is refused', () => {
    // A 2-byte prefix plus a body fills exactly FRAME_CHUNKS_MAX_DEFAULT bytes.
    const fits = encodeFrame(payload(FRAME_CHUNKS_MAX_DEFAULT - 2, 5))
    assert.equal(fits.byteLength, FRAME_CHUNKS_MAX_DEFAULT)
    const ok = new FrameDecoder(MiB)
    const frames: Uint8Array[] = []
    for (let i = 0; i < fits.byteLength; i++) frames.push(...ok.push(fits.subarray(i, i + 1)))
    assert.deepEqual(frames, [payload(FRAME_CHUNKS_MAX_DEFAULT - 2, 5)])

    const past = encodeFrame(payload(FRAME_CHUNKS_MAX_DEFAULT - 1, 5))
    const decoder = new FrameDecoder(MiB)
    for (let i = 0; i < FRAME_CHUNKS_MAX_DEFAULT; i++) assert.deepEqual(decoder.push(past.subarray(i, i + 1)), [])
    assert.throws(() => decoder.push(past.subarray(FRAME_CHUNKS_MAX_DEFAULT, FRAME_CHUNKS_MAX_DEFAULT + 1)), (err: unknown) => {
      assert.ok(err instanceof ProtocolViolationError)
      assert.equal(err.name, 'ProtocolViolationError')
      assert.match(err.message, /more than 16384 chunks/)
      assert.ok(err.hint !== undefined)
      return true
    })
  })

  test('a 1 MiB frame fed one byte per chunk is refused once it passes the chunk limit', () => {
    const frame = encodeFrame(payload(MiB, 6))
    const decoder = new FrameDecoder(2 * MiB)
    let fed = 0
    assert.throws(() => {
      for (; fed < frame.byteLength; fed++) decoder.push(frame.subarray(fed, fed + 1))
    }, { name: 'ProtocolViolationError', message: /chunks to arrive/ })
    assert.equal(fed, FRAME_CHUNKS_MAX_DEFAULT, 'refused on chunk frameChunksMax + 1')
    // It held at most what it was fed, copied once.
    assert.ok(decoder.bufferedBytes <= FRAME_CHUNKS_MAX_DEFAULT)
  })

  test('empty chunks count while a frame is in progress, and not between frames', () => {
    const decoder = new FrameDecoder(100, { frameChunksMax: 3 })
    for (let i = 0; i < 10; i++) assert.deepEqual(decoder.push(new Uint8Array(0)), [])
    assert.equal(decoder.partial, false)
    const frame = encodeFrame(payload(10, 1))
    assert.deepEqual(decoder.push(frame.subarray(0, 4)), []) // chunk 1
    assert.equal(decoder.partial, true)
    assert.deepEqual(decoder.push(new Uint8Array(0)), []) // chunk 2
    assert.deepEqual(decoder.push(new Uint8Array(0)), []) // chunk 3
    assert.throws(() => decoder.push(new Uint8Array(0)), { name: 'ProtocolViolationError' })
  })

  test('the count starts again with each frame, even when one chunk ends a frame and starts the next', () => {
    const bodies = [payload(9, 1), payload(9, 2), payload(9, 3)]
    const stream = concat(bodies.map(encodeFrame)) // 30 bytes: each frame is 10
    // Chunks of 5 bytes put each frame in 2 or 3 chunks; 3 is the limit.
    const decoder = new FrameDecoder(100, { frameChunksMax: 3 })
    const frames: Uint8Array[] = []
    for (const cut of [[0, 8], [8, 12], [12, 18], [18, 22], [22, 30]]) frames.push(...decoder.push(stream.subarray(cut[0], cut[1])))
    assert.deepEqual(frames, bodies)
    assert.equal(decoder.partial, false)
  })

  test('partial is true from the first prefix byte until the frame completes, empty frames included', () => {
    const decoder = new FrameDecoder(100)
    assert.equal(decoder.partial, false)
    assert.deepEqual(decoder.push(Uint8Array.of(0x00)), [new Uint8Array(0)])
    assert.equal(decoder.partial, false)
    assert.deepEqual(decoder.push(Uint8Array.of(0x02)), [])
    assert.equal(decoder.partial, true)
    assert.deepEqual(decoder.push(Uint8Array.of(7)), [])
    assert.equal(decoder.partial, true)
    assert.deepEqual(decoder.push(Uint8Array.of(8)), [Uint8Array.of(7, 8)])
    assert.equal(decoder.partial, false)
  })
})

describe('FrameDecoder cost: bytes copied are linear in bytes received', () => {
  /** Feed `frame` in `size`-byte chunks; each chunk a view of the frame (as a muxer slices a decrypted message) or a copy. */
  function feed (frame: Uint8Array, size: number, views: boolean): { decoder: FrameDecoder, frames: Uint8Array[] } {
    const decoder = new FrameDecoder(2 * MiB)
    const frames: Uint8Array[] = []
    for (let at = 0; at < frame.byteLength; at += size) {
      const chunk = views ? frame.subarray(at, at + size) : frame.slice(at, at + size)
      frames.push(...decoder.push(chunk))
    }
    return { decoder, frames }
  }

  // 128 KiB in 16-byte chunks is 8,193 chunks and 1 MiB in 128-byte chunks is 8,193: both within
  // the chunk limit. The old decoder re-copied its whole buffer per chunk: ~512 MiB and ~4 GiB.
  const cases: Array<[string, number, number]> = [['128 KiB in 16-byte chunks', 128 * 1024, 16], ['1 MiB in 128-byte chunks', MiB, 128]]
  for (const [what, size, chunk] of cases) {
    test(`${what}: each byte copied at most twice (views of a larger buffer) and exactly once (own buffers)`, () => {
      const body = payload(size, 3)
      const frame = encodeFrame(body)
      const fromViews = feed(frame, chunk, true)
      assert.deepEqual(fromViews.frames, [body])
      assert.ok(fromViews.decoder.bytesCopied <= 2 * frame.byteLength, `copied ${fromViews.decoder.bytesCopied} bytes for a ${frame.byteLength}-byte frame`)
      const fromCopies = feed(frame, chunk, false)
      assert.deepEqual(fromCopies.frames, [body])
      assert.equal(fromCopies.decoder.bytesCopied, size, 'only the finished frame is copied')
    })
  }

  test('twice the bytes in the same chunk size cost twice the copying, not four times', () => {
    const copies = (size: number): number => feed(encodeFrame(payload(size)), 16, true).decoder.bytesCopied
    const n = copies(32 * 1024)
    const twoN = copies(64 * 1024)
    assert.ok(twoN <= 2 * n + 64, `n: ${n}, 2n: ${twoN}`)
  })

  test('a kept chunk that is a small view of a large buffer is copied, so it does not pin the buffer', () => {
    const big = new Uint8Array(64 * 1024)
    big.set(encodeFrame(payload(100, 1)).subarray(0, 20), 0)
    const decoder = new FrameDecoder(1000)
    decoder.push(big.subarray(0, 20)) // 1 prefix byte, 19 body bytes kept
    assert.equal(decoder.bytesCopied, 19)
    // A chunk that is its own buffer is kept as is.
    const own = new FrameDecoder(1000)
    own.push(encodeFrame(payload(100, 1)).slice(0, 20))
    assert.equal(own.bytesCopied, 0)
  })
})
