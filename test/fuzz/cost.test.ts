/**
 * Cost tests: the work a decoder does is linear in the bytes it is given. Work is counted, never
 * timed: bytes copied for the frame decoder (its own counter), and for the dag-cbor decoders the
 * blocks of code V8 executed (./work.ts), for an input of n bytes against one of 2n bytes.
 */
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { FrameDecoder, encodeFrame } from '../../src/wire/frame.ts'
import { decodeAnnouncement, encodeAnnouncement, nestingExceeds } from '../../src/wire/membership-codec.ts'
import { decodeEnvelope, encodeEnvelope } from '../../src/wire/rpc.ts'
import { blocksExecuted, stopCounting } from './work.ts'

/** Twice the input may cost twice the work, plus this much for JIT and cache effects; quadratic work is 4×. */
const LINEAR_SLACK = 2.5

/** The fewest blocks over a few runs: the first runs also count one-time work (inline caches, lazy compilation). */
async function work (fn: () => unknown): Promise<number> {
  let least = Infinity
  for (let i = 0; i < 4; i++) least = Math.min(least, await blocksExecuted(fn))
  return least
}

async function assertLinear (what: string, make: (n: number) => Uint8Array, decode: (bytes: Uint8Array) => unknown, n: number): Promise<void> {
  const small = make(n)
  const large = make(2 * n)
  assert.ok(large.byteLength >= 1.8 * small.byteLength, `${what}: the large input is about twice the small one`)
  const a = await work(() => decode(small))
  const b = await work(() => decode(large))
  assert.ok(a > 0, `${what}: work was counted`)
  assert.ok(b <= LINEAR_SLACK * a, `${what}: ${small.byteLength} B cost ${a} blocks, ${large.byteLength} B cost ${b}`)
}

describe('decoder cost is linear in the input', () => {
  after(async () => { await stopCounting() })

  test('the block counter sees quadratic work as quadratic (these tests can fail)', async () => {
    // A quadratic use of counted code: walk the whole input once per 10 items in it.
    const make = (n: number): Uint8Array => encodeEnvelope({ id: 1, kind: 'req', body: Array.from({ length: n }, (_, i) => i) })
    const quadratic = (n: number) => (): void => {
      const bytes = make(n)
      for (let i = 0; i < n / 10; i++) nestingExceeds(bytes, 512)
    }
    const a = await work(quadratic(1000))
    const b = await work(quadratic(2000))
    assert.ok(b > 3 * a, `n: ${a} blocks, 2n: ${b} blocks`)
    // And code outside Rhizome and the CBOR libraries is not counted at all.
    assert.equal(await blocksExecuted(() => [...new Uint8Array(1000)].reduce((x, y) => x + y, 0)), 0)
  })

  test('frame decoder: bytes copied for 2n bytes in 16-byte chunks are twice those for n', () => {
    const copies = (n: number): number => {
      const frame = encodeFrame(new Uint8Array(n).fill(7))
      const decoder = new FrameDecoder(2 * n)
      for (let at = 0; at < frame.byteLength; at += 16) decoder.push(frame.subarray(at, at + 16))
      return decoder.bytesCopied
    }
    const n = 64 * 1024
    assert.ok(copies(n) <= 2 * (n + 3))
    assert.ok(copies(2 * n) <= 2 * copies(n) + 32)
  })

  test('rpc envelope: a body of many small items', async () => {
    await assertLinear('envelope', n => encodeEnvelope({ id: 1, kind: 'req', body: Array.from({ length: n }, (_, i) => ({ k: `v${i}`, n: i })) }), decodeEnvelope, 2000)
  })

  test('rpc envelope: a body of long strings and bytes', async () => {
    await assertLinear('envelope', n => encodeEnvelope({ id: 1, kind: 'res', body: { text: 'x'.repeat(n), bytes: new Uint8Array(n) } }), decodeEnvelope, 100_000)
  })

  test('rpc envelope: the nesting check walks each item once, however deep within the limit', async () => {
    // Wide and 400 deep: nestingExceeds keeps a stack of counts, it never rescans.
    const make = (n: number): Uint8Array => encodeEnvelope({ id: 1, kind: 'req', body: Array.from({ length: n }, () => [[[[1, 2, 3]]]]) })
    await assertLinear('nesting walk', make, bytes => nestingExceeds(bytes, 512), 2000)
  })

  test('membership announcement: more and longer addresses', async () => {
    const make = (n: number): Uint8Array => encodeAnnouncement({
      peerId: '12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf',
      networkId: 'rhizome',
      incarnation: 1,
      seq: 1,
      version: '0.1.0',
      addrs: Array.from({ length: n / 1000 }, (_, i) => `/dns4/${'a'.repeat(200)}${i}.example/tcp/4001`),
      capacity: { slotsFree: 1, slotsMax: 2, queueLength: 0 }
    })
    await assertLinear('announcement', make, decodeAnnouncement, 8000)
  })
})
