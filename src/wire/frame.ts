/**
 * Length-prefixed framing for Rhizome's stream protocols.
 *
 * Theory of operation: every message on a stream is `varint(length) || bytes`. The decoder is fed
 * chunks as they arrive and yields whole frames. It has two states per frame: reading the prefix
 * (one byte at a time, so a prefix split across chunks costs nothing extra) and collecting the
 * body. It checks the declared length against `frameBytesMax` as soon as the prefix proves it —
 * before buffering the body — so a peer cannot make us hold more than one frame's worth of memory.
 * A varint longer than 5 bytes (lengths past 2^35) is a protocol violation, not a large frame.
 *
 * Cost (STYLE.md §21): the body's chunks are kept in a list and copied once, into the finished
 * frame, when its last byte arrives — never re-concatenated per chunk (that was quadratic: a 1 MiB
 * frame fed 16 bytes at a time copied 32 GiB). A chunk that is a small view of a much larger
 * buffer is copied when it is kept, so holding it cannot pin the larger buffer; each byte is
 * therefore copied at most twice, which `bytesCopied` counts. A frame may take at most
 * `frameChunksMax` chunks to arrive, so a peer that dribbles a frame cannot make us keep tens of
 * thousands of tiny chunks. How long a frame may take to arrive is the shell's to enforce (this
 * layer has no clock): `partial` says whether a frame is in progress.
 */
import { Uint8ArrayList } from 'uint8arraylist'
import { ProtocolViolationError, TooLargeError } from '../model/errors.ts'

/** Longest varint we accept: 5 bytes hold 35 bits, far above any frame limit we use. */
const VARINT_BYTES_MAX = 5

/**
 * Chunks one frame may take to arrive (chunks carrying any of its bytes, empty ones included).
 * An honest sender writes a frame with one `send`; the muxer delivers it in data frames of up to
 * its window (yamux: 256 KiB) inside Noise messages of up to 64 KiB, so even a 1 MiB frame
 * arrives in a few dozen chunks. 16,384 still lets a 1 MiB frame arrive in 64-byte pieces (a
 * pathological link), while a peer feeding one byte per chunk is cut off after 16 KiB instead of
 * costing a list entry and a read per byte. 2^14 list entries are well under a megabyte of
 * bookkeeping.
 */
export const FRAME_CHUNKS_MAX_DEFAULT = 16_384

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

export interface FrameDecoderOptions {
  /** Default FRAME_CHUNKS_MAX_DEFAULT. */
  frameChunksMax?: number
}

export class FrameDecoder {
  readonly frameBytesMax: number
  readonly frameChunksMax: number
  /** Bytes copied so far (kept chunks copied out of larger buffers, plus finished frames): the decoder's work. */
  private copied = 0
  /** Body bytes of the frame in progress, as received. */
  private body = new Uint8ArrayList()
  /** Declared length of the frame in progress, once its prefix is complete. */
  private length: number | undefined
  /** Prefix of the frame in progress, while incomplete: its value so far, and how many bytes it had. */
  private prefixValue = 0
  private prefixBytes = 0
  /** Chunks that carried bytes of the frame in progress. */
  private frameChunks = 0

  constructor (frameBytesMax: number, options: FrameDecoderOptions = {}) {
    this.frameBytesMax = frameBytesMax
    this.frameChunksMax = options.frameChunksMax ?? FRAME_CHUNKS_MAX_DEFAULT
  }

  /** Bytes copied so far; linear in the bytes fed (at most twice). */
  get bytesCopied (): number {
    return this.copied
  }

  /** Bytes held that do not yet form a whole frame (prefix bytes included). */
  get bufferedBytes (): number {
    return this.prefixBytes + this.body.byteLength
  }

  /** True while a frame has started to arrive but is not complete. */
  get partial (): boolean {
    return this.bufferedBytes > 0 || this.length !== undefined
  }

  /**
   * Feed a chunk; returns the frames it completes (possibly none), in order. Throws TooLargeError
   * for a declared length past `frameBytesMax`, ProtocolViolationError for a bad prefix or a frame
   * that takes more than `frameChunksMax` chunks. After a throw the stream is broken: drop the decoder.
   */
  push (chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = []
    if (chunk.byteLength === 0) {
      if (this.partial) this.countChunk()
      return frames
    }
    let at = 0
    while (at < chunk.byteLength) {
      if (!this.partial) this.frameChunks = 0
      this.countChunk()
      if (this.length === undefined) {
        at = this.readPrefix(chunk, at)
        if (this.length === undefined) break // the chunk ended inside the prefix
      }
      const length: number = this.length
      const need = length - this.body.byteLength
      const take = Math.min(need, chunk.byteLength - at)
      const piece = chunk.subarray(at, at + take)
      at += take
      if (take === need) {
        frames.push(this.finish(piece, length))
      } else {
        this.keep(piece)
      }
    }
    return frames
  }

  private countChunk (): void {
    this.frameChunks++
    if (this.frameChunks > this.frameChunksMax) {
      throw new ProtocolViolationError(`a frame took more than ${this.frameChunksMax} chunks to arrive`, {
        hint: 'the peer is sending a frame in tiny pieces; an honest peer writes each frame at once'
      })
    }
  }

  /** Read prefix bytes from `chunk` starting at `at`; sets `length` when the prefix completes. Returns the new position. */
  private readPrefix (chunk: Uint8Array, at: number): number {
    while (at < chunk.byteLength) {
      if (this.prefixBytes >= VARINT_BYTES_MAX) throw new ProtocolViolationError('frame length prefix is longer than 5 bytes')
      const byte = chunk[at++]
      this.prefixValue += (byte & 0x7f) * 128 ** this.prefixBytes
      this.prefixBytes++
      // Even an incomplete prefix can already prove the frame too large.
      if (this.prefixValue > this.frameBytesMax) throw new TooLargeError('frame', this.prefixValue, this.frameBytesMax)
      if ((byte & 0x80) === 0) {
        this.length = this.prefixValue
        return at
      }
    }
    // Five continuation bytes already prove the prefix is at least six bytes long.
    if (this.prefixBytes >= VARINT_BYTES_MAX) throw new ProtocolViolationError('frame length prefix is longer than 5 bytes')
    return at
  }

  /** Keep part of a frame until the rest arrives. */
  private keep (piece: Uint8Array): void {
    // A small view of a large buffer (a muxer frame sliced out of a decrypted message) would pin
    // the whole buffer for as long as the frame takes; copy it, so memory held stays within
    // twice the bytes buffered.
    if (piece.byteLength * 2 < piece.buffer.byteLength) {
      piece = piece.slice()
      this.copied += piece.byteLength
    }
    this.body.append(piece)
  }

  /** Copy the kept chunks and the final piece into one new frame (frames never share memory with chunks). */
  private finish (last: Uint8Array, length: number): Uint8Array {
    const frame = new Uint8Array(length)
    let at = 0
    for (const part of this.body) {
      frame.set(part, at)
      at += part.byteLength
    }
    frame.set(last, at)
    this.copied += length
    this.body = new Uint8ArrayList()
    this.length = undefined
    this.prefixValue = 0
    this.prefixBytes = 0
    return frame
  }
}
