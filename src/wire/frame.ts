/**
 * Length-prefixed framing for Rhizome's stream protocols.
 *
 * Theory of operation: every message on a stream is `varint(length) || bytes`. The decoder is fed
 * chunks as they arrive and yields whole frames. It checks the declared length against
 * `frameBytesMax` as soon as the prefix is read — before buffering the body — so a peer cannot
 * make us hold more than one frame's worth of memory. A varint longer than 5 bytes (lengths past
 * 2^35) is a protocol violation, not a large frame.
 */
import { ProtocolViolationError, TooLargeError } from '../model/errors.ts'

/** Longest varint we accept: 5 bytes hold 35 bits, far above any frame limit we use. */
const VARINT_BYTES_MAX = 5

export function encodeFrame (payload: Uint8Array): Uint8Array {
  const prefix: number[] = []
  let n = payload.byteLength
  do {
    let byte = n & 0x7f
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    prefix.push(byte)
  } while (n > 0)
  const out = new Uint8Array(prefix.length + payload.byteLength)
  out.set(prefix, 0)
  out.set(payload, prefix.length)
  return out
}

export class FrameDecoder {
  readonly frameBytesMax: number
  private buffer: Uint8Array = new Uint8Array(0)

  constructor (frameBytesMax: number) {
    this.frameBytesMax = frameBytesMax
  }

  /** Bytes held that do not yet form a whole frame. */
  get bufferedBytes (): number {
    return this.buffer.byteLength
  }

  /** Feed a chunk; returns the frames it completes (possibly none). Throws on a bad prefix. */
  push (chunk: Uint8Array): Uint8Array[] {
    this.buffer = this.buffer.byteLength === 0 ? chunk : concat(this.buffer, chunk)
    const frames: Uint8Array[] = []
    for (;;) {
      const header = this.readHeader()
      if (header === undefined) break
      const { length, headerBytes } = header
      if (this.buffer.byteLength < headerBytes + length) break
      frames.push(this.buffer.slice(headerBytes, headerBytes + length))
      this.buffer = this.buffer.subarray(headerBytes + length)
    }
    return frames
  }

  private readHeader (): { length: number, headerBytes: number } | undefined {
    let length = 0
    let scale = 1
    for (let i = 0; i < this.buffer.byteLength; i++) {
      if (i >= VARINT_BYTES_MAX) throw new ProtocolViolationError('frame length prefix is longer than 5 bytes')
      const byte = this.buffer[i]
      length += (byte & 0x7f) * scale
      scale *= 128
      if ((byte & 0x80) === 0) {
        if (length > this.frameBytesMax) throw new TooLargeError('frame', length, this.frameBytesMax)
        return { length, headerBytes: i + 1 }
      }
    }
    if (this.buffer.byteLength >= VARINT_BYTES_MAX) throw new ProtocolViolationError('frame length prefix is longer than 5 bytes')
    // Even an incomplete prefix can already prove the frame too large.
    if (length > this.frameBytesMax) throw new TooLargeError('frame', length, this.frameBytesMax)
    return undefined
  }
}

function concat (a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength)
  out.set(a, 0)
  out.set(b, a.byteLength)
  return out
}
