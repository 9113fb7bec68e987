/**
 * Request/response over long-lived libp2p streams (DESIGN.md §6: opening a stream costs ~1 ms,
 * a round trip on an open one ~0.19 ms, so hot paths keep streams open and tag requests by id).
 *
 * One outbound stream per (peer, protocol) is opened on first use and reused; requests on it are
 * told apart by id (src/wire/rpc.ts). The serving side runs at most `inflightMax` requests per
 * stream and answers the rest with a retryable `PeerBusyError`. Anything a peer sends that breaks
 * the framing or the envelope is a protocol violation: the stream is reset and `onViolation`
 * decides what happens to the peer (score, disconnect). So is a frame that takes longer than
 * `frameArrivalMs` to arrive once its first byte is in: the decoder (src/wire/frame.ts) has no
 * clock, so each read loop here arms one timer while a frame is partly in.
 *
 * Frames are coalesced: every frame written to a stream during one turn of the event loop goes
 * out in one `send` after it (setImmediate), so one muxer frame, one Noise message and one socket
 * write carry them all. With many tasks in flight, a driver's requests and a worker's answers
 * each cost a fraction of a send; a lone frame waits only for the rest of the turn it was made in,
 * never for a timer. Past RPC_COALESCE_BYTES_MAX the batch goes at once.
 *
 * The outbound stream is shared by every caller, so it is opened with the service's lifetime
 * (`stop()` aborts it) and its own dial deadline, never with one caller's signal: a caller that
 * gives up stops waiting for it, and the others keep theirs.
 */
import { AbortedError, ConfigError, PeerUnavailableError, ProtocolViolationError, RhizomeError, TimeoutError, failureFromData } from '../model/errors.ts'
import { FrameDecoder, encodeFrame } from '../wire/frame.ts'
import { Lifecycle } from './lifecycle.ts'
import { RPC_ID_MAX, decodeEnvelope, encodeEnvelope } from '../wire/rpc.ts'
import type { RpcEnvelope } from '../wire/rpc.ts'
import type { Logger } from '../model/log.ts'
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'

export interface RpcHandlerContext {
  peerId: PeerId
  signal: AbortSignal
}

export interface RpcProtocol {
  protocol: string
  /** Largest frame either side may send on this protocol. */
  frameBytesMax: number
  /** Requests one stream may have running at once on the serving side. */
  inflightMax: number
  /** Validates the body and does the work; a thrown RhizomeError is sent back as data. */
  handler: (body: unknown, context: RpcHandlerContext) => Promise<unknown>
}

export interface RpcRequestOptions {
  signal?: AbortSignal
  /** Default 30 s: long enough for a blob of the maximum size on a slow link. */
  timeoutMs?: number
}

export class PeerBusyError extends RhizomeError {
  constructor (message: string) {
    super('ERR_PEER_BUSY', message, { retryable: true, hint: 'the peer is at its limit of concurrent requests; retry shortly or ask another peer' })
    this.name = 'PeerBusyError'
  }
}

/** Default 30 s: long enough for a blob range of the maximum size on a slow link. */
export const REQUEST_TIMEOUT_MS_DEFAULT = 30_000

/**
 * Bytes of frames one stream gathers in a turn before sending them at once: 64 KiB is four of
 * Noise's largest messages, so a batch costs a few encryptions, and a large frame (a blob range
 * of 1 MiB) goes straight out instead of being copied into a batch.
 */
export const RPC_COALESCE_BYTES_MAX = 64 * 1024

/** Frames waiting to go out on one stream this turn, and the writers waiting for them to be sent. */
interface Outgoing {
  frames: Uint8Array[]
  bytes: number
  sent: Promise<void>
  settle: (err?: unknown) => void
}

/** What the RPC layer has sent: frames, and the sends that carried them (fewer, when coalesced). */
export interface RpcCounters {
  framesSent: number
  sends: number
}

/** One protocol's requests: sent by this peer and answered with an error, served here and failed. */
export interface RpcProtocolStats {
  protocol: string
  requestsSent: number
  requestErrors: number
  requestsServed: number
  serveErrors: number
}

/**
 * Longest wait to open the shared outbound stream (connect if needed, then negotiate the
 * protocol). Opening a stream on a live connection takes ~1 ms (DESIGN.md §6); a new connection
 * is a TCP, Noise and Yamux handshake, a few round trips. 10 s is libp2p's own dial timeout, so we
 * give up no sooner than libp2p would; a caller with a shorter deadline stops waiting sooner.
 */
export const RPC_DIAL_TIMEOUT_MS = 10_000

/**
 * Longest time one frame may take to arrive once its first byte is in. No caller waits longer
 * than the default request timeout, so a slower frame would be answered to nobody; 30 s still
 * lets the largest frame we use (1 MiB + 4 KiB) cross a link of ~300 kbit/s. A peer that dribbles
 * a frame more slowly is holding our buffer and a stream open for nothing: a protocol violation.
 */
export const FRAME_ARRIVAL_MS_MAX = 30_000

/**
 * Environment variable that lowers a peer's frame arrival limit (1..FRAME_ARRIVAL_MS_MAX ms), so
 * an integration test can watch a real peer cut off a dribbled frame in seconds rather than 30.
 * It can only lower the limit — a peer never waits longer than FRAME_ARRIVAL_MS_MAX — and it is
 * not a configuration option: an operator has no reason to set it.
 */
export const FRAME_ARRIVAL_MS_ENV = 'RHIZOME_FRAME_ARRIVAL_MS'

/** The frame arrival limit `env` asks for, or undefined if it asks for none. Throws ConfigError for a bad value. */
export function frameArrivalMsFromEnv (env: Readonly<Record<string, string | undefined>>): number | undefined {
  const text = env[FRAME_ARRIVAL_MS_ENV]
  if (text === undefined || text === '') return undefined
  const ms = /^[0-9]{1,6}$/.test(text) ? Number(text) : NaN
  if (!(ms >= 1 && ms <= FRAME_ARRIVAL_MS_MAX)) {
    throw new ConfigError(FRAME_ARRIVAL_MS_ENV, `must be an integer from 1 to ${FRAME_ARRIVAL_MS_MAX} (ms), not ${JSON.stringify(text.slice(0, 32))}`, {
      hint: `unset ${FRAME_ARRIVAL_MS_ENV}; it exists for tests, and can only lower the limit`
    })
  }
  return ms
}

interface Pending {
  resolve: (body: unknown) => void
  reject: (err: Error) => void
}

class ClientChannel {
  readonly stream: Stream
  readonly pending = new Map<number, Pending>()
  private nextId = 1

  constructor (stream: Stream) {
    this.stream = stream
  }

  allocateId (): number {
    const id = this.nextId
    this.nextId = this.nextId >= RPC_ID_MAX ? 1 : this.nextId + 1
    return id
  }

  failAll (err: Error): void {
    for (const pending of this.pending.values()) pending.reject(err)
    this.pending.clear()
  }
}

/** What RpcService needs of libp2p: serve a protocol, stop serving it, open a stream. */
export type RpcHost = Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>

export interface RpcServiceComponents {
  libp2p: RpcHost
  log: Logger
  /** Called when a peer breaks a protocol; the stream is already reset. */
  onViolation: (peerId: PeerId, protocol: string, err: Error) => void
  /**
   * Asked before each request is served, on every protocol: an error refuses it (sent back as the
   * answer; the handler never runs). A permissioned network refuses peers without a certificate
   * here (src/net/permission-service.ts). Synchronous when it can decide at once, so the hot path
   * costs no extra turn. Default: every request is served.
   */
  authorize?: (peerId: PeerId, protocol: string) => RhizomeError | undefined | Promise<RhizomeError | undefined>
  /** Asked before each request this peer sends: an error is thrown to the caller and nothing is
   *  sent (a permissioned peer tells a non-member nothing, not even its membership). */
  authorizeOutbound?: (peerId: PeerId, protocol: string) => RhizomeError | undefined | Promise<RhizomeError | undefined>
}

export interface RpcServiceInit {
  /** Default: FRAME_ARRIVAL_MS_ENV from the process environment if set, else FRAME_ARRIVAL_MS_MAX. */
  frameArrivalMs?: number
  /** Default RPC_DIAL_TIMEOUT_MS. */
  dialTimeoutMs?: number
  /** Default REQUEST_TIMEOUT_MS_DEFAULT; each request may pass its own. */
  requestTimeoutMs?: number
}

/** Inbound streams one peer may hold open per protocol; each runs up to `inflightMax` requests. */
const INBOUND_STREAMS_MAX = 32
/** Outbound streams per protocol: one per peer is all we open, so this is headroom for many peers. */
const OUTBOUND_STREAMS_MAX = 64

export class RpcService {
  private readonly libp2p: RpcHost
  private readonly log: Logger
  private readonly onViolation: RpcServiceComponents['onViolation']
  private readonly authorize: RpcServiceComponents['authorize']
  private readonly authorizeOutbound: RpcServiceComponents['authorizeOutbound']
  private readonly protocols = new Map<string, RpcProtocol>()
  private readonly channels = new Map<string, Promise<ClientChannel>>()
  private readonly serving = new Set<AbortController>()
  /** Streams being served, with their requests in flight: on stop() each request is answered
   *  with the stopped error and the stream reset, so callers hear at once that nobody will answer. */
  private readonly inbound = new Map<Stream, Map<number, AbortController>>()
  /** The service's lifetime: shared streams are opened under it, every request listens to it, and stop() aborts it. */
  private readonly lifecycle = new Lifecycle('the rpc service')
  /** Frames gathered per stream this turn (see write). */
  private readonly outgoing = new Map<Stream, Outgoing>()
  readonly counters: RpcCounters = { framesSent: 0, sends: 0 }
  /** Per registered protocol (so at most as many entries as protocols), for the peer's metrics. */
  private readonly protocolStats = new Map<string, RpcProtocolStats>()
  private readonly frameArrivalMs: number
  private readonly dialTimeoutMs: number
  private readonly requestTimeoutMs: number

  constructor (components: RpcServiceComponents, init: RpcServiceInit = {}) {
    this.libp2p = components.libp2p
    this.log = components.log
    this.onViolation = components.onViolation
    this.authorize = components.authorize
    this.authorizeOutbound = components.authorizeOutbound
    this.frameArrivalMs = init.frameArrivalMs ?? frameArrivalMsFromEnv(process.env) ?? FRAME_ARRIVAL_MS_MAX
    this.dialTimeoutMs = init.dialTimeoutMs ?? RPC_DIAL_TIMEOUT_MS
    this.requestTimeoutMs = init.requestTimeoutMs ?? REQUEST_TIMEOUT_MS_DEFAULT
  }

  /** Protocols may be registered before start; requests are refused only after stop(). */
  start (): void {
    this.lifecycle.start()
  }

  async handle (protocol: RpcProtocol): Promise<void> {
    this.protocols.set(protocol.protocol, protocol)
    await this.libp2p.handle(protocol.protocol, (stream, connection) => {
      this.serve(protocol, stream, connection).catch(err => {
        this.log.debug('rpc serve loop ended', { protocol: protocol.protocol, error: String(err) })
      })
    }, { maxInboundStreams: INBOUND_STREAMS_MAX, maxOutboundStreams: OUTBOUND_STREAMS_MAX })
  }

  /**
   * Stop serving `protocol` (a service's stop()); streams already open end with stop(). The spec
   * stays known, so a late request on it fails by its caller's signal, not by an assertion.
   */
  async unhandle (protocol: string): Promise<void> {
    await this.libp2p.unhandle(protocol).catch(() => {})
  }

  /** Requests and errors by protocol since start. */
  stats (): RpcProtocolStats[] {
    return [...this.protocolStats.values()].map(s => ({ ...s }))
  }

  private statsOf (protocol: string): RpcProtocolStats {
    let stats = this.protocolStats.get(protocol)
    if (stats === undefined) {
      stats = { protocol, requestsSent: 0, requestErrors: 0, requestsServed: 0, serveErrors: 0 }
      this.protocolStats.set(protocol, stats)
    }
    return stats
  }

  async request (peerId: PeerId, protocol: string, body: unknown, options: RpcRequestOptions = {}): Promise<unknown> {
    const spec = this.protocols.get(protocol)
    if (spec === undefined) throw new Error(`assertion failed: protocol ${protocol} was never registered`)
    const stats = this.statsOf(protocol)
    stats.requestsSent++
    try {
      return await this.requestOn(spec, peerId, body, options)
    } catch (err) {
      stats.requestErrors++
      throw err
    }
  }

  private async requestOn (spec: RpcProtocol, peerId: PeerId, body: unknown, options: RpcRequestOptions): Promise<unknown> {
    const protocol = spec.protocol
    if (this.lifecycle.stopping) throw this.lifecycle.stoppedError()
    let refusal = this.authorizeOutbound?.(peerId, protocol)
    if (refusal instanceof Promise) refusal = await refusal
    if (refusal !== undefined) throw refusal
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs
    const operation = this.lifecycle.operation({ signal: options.signal, timeoutMs })
    const { signal } = operation
    const abortError = (): RhizomeError => operation.reason === 'timeout'
      ? new TimeoutError(`no answer from ${peerId.toString()} on ${protocol} within ${timeoutMs} ms`)
      : operation.reason === 'stopped'
        ? this.lifecycle.stoppedError()
        : new AbortedError(`request to ${peerId.toString()} on ${protocol} was aborted`)
    try {
      // The stream may be shared with other callers: wait for it with our own signal only.
      const channel = await raceSignal(this.channel(peerId, spec), signal, abortError)
      return await this.exchange(channel, peerId, spec, body, signal, abortError)
    } finally {
      operation.release()
    }
  }

  /** Send one request on an open channel and wait for its answer, or for `signal`. */
  private async exchange (channel: ClientChannel, peerId: PeerId, spec: RpcProtocol, body: unknown, signal: AbortSignal, abortError: () => Error): Promise<unknown> {
    const id = channel.allocateId()
    const frame = encodeFrame(encodeEnvelope({ id, kind: 'req', body }))
    if (frame.byteLength > spec.frameBytesMax) {
      throw new ProtocolViolationError(`request of ${frame.byteLength} bytes exceeds ${spec.protocol} frame limit of ${spec.frameBytesMax}`)
    }
    return await new Promise<unknown>((resolve, reject) => {
      const onAbort = (): void => {
        channel.pending.delete(id)
        this.write(channel.stream, encodeFrame(encodeEnvelope({ id, kind: 'cancel' }))).catch(() => {})
        reject(abortError())
      }
      if (signal.aborted) { onAbort(); return }
      signal.addEventListener('abort', onAbort, { once: true })
      channel.pending.set(id, {
        resolve: (value) => { signal.removeEventListener('abort', onAbort); resolve(value) },
        reject: (err) => { signal.removeEventListener('abort', onAbort); reject(err) }
      })
      this.write(channel.stream, frame).catch(err => {
        channel.pending.get(id)?.reject(new PeerUnavailableError(`could not send to ${peerId.toString()}: ${String(err)}`, { cause: err }))
        channel.pending.delete(id)
      })
    })
  }

  /** Abort every request in flight, both ways, and close the shared streams. */
  async stop (): Promise<void> {
    this.lifecycle.stop()
    for (const controller of this.serving) controller.abort()
    const stopped = this.lifecycle.stoppedError().toData()
    const inbound = [...this.inbound]
    this.inbound.clear()
    await Promise.allSettled(inbound.map(async ([stream, running]) => {
      try {
        this.flushNow(stream)
        if (stream.status === 'open') for (const id of running.keys()) stream.send(encodeFrame(encodeEnvelope({ id, kind: 'err', error: stopped })))
      } finally {
        stream.abort(new Error('rhizome peer stopping'))
      }
    }))
    const channels = [...this.channels.values()]
    this.channels.clear()
    await Promise.allSettled(channels.map(async promise => {
      const channel = await promise
      channel.failAll(this.lifecycle.stoppedError())
      channel.stream.abort(new Error('rhizome peer stopping'))
    }))
  }

  private async channel (peerId: PeerId, spec: RpcProtocol): Promise<ClientChannel> {
    const key = `${peerId.toString()}|${spec.protocol}`
    let promise = this.channels.get(key)
    if (promise === undefined) {
      promise = this.open(peerId, spec)
      this.channels.set(key, promise)
      promise.catch(() => { if (this.channels.get(key) === promise) this.channels.delete(key) })
    }
    const channel = await promise
    if (channel.stream.status !== 'open') {
      if (this.channels.get(key) === promise) this.channels.delete(key)
      return await this.channel(peerId, spec)
    }
    return channel
  }

  private async open (peerId: PeerId, spec: RpcProtocol): Promise<ClientChannel> {
    if (this.lifecycle.stopping) throw this.lifecycle.stoppedError()
    let stream: Stream
    // Shared by every caller: the service's lifetime and the dial deadline, never one caller's signal.
    const operation = this.lifecycle.operation({ timeoutMs: this.dialTimeoutMs })
    try {
      stream = await this.libp2p.dialProtocol(peerId, spec.protocol, { signal: operation.signal })
    } catch (err) {
      if (operation.reason === 'stopped') throw new AbortedError(this.lifecycle.stoppedError().message, { cause: err })
      throw new PeerUnavailableError(`could not open ${spec.protocol} to ${peerId.toString()}: ${(err as Error).message}`, { cause: err })
    } finally {
      operation.release()
    }
    const channel = new ClientChannel(stream)
    const key = `${peerId.toString()}|${spec.protocol}`
    const forget = (err: Error): void => {
      channel.failAll(err)
      const current = this.channels.get(key)
      if (current !== undefined) current.then(c => { if (c === channel) this.channels.delete(key) }, () => {})
    }
    this.readClient(channel, peerId, spec).then(
      () => forget(new PeerUnavailableError(`${peerId.toString()} closed the ${spec.protocol} stream`)),
      (err: Error) => forget(err instanceof RhizomeError ? err : new PeerUnavailableError(`${spec.protocol} stream to ${peerId.toString()} failed: ${err.message}`, { cause: err }))
    )
    return channel
  }

  private async readClient (channel: ClientChannel, peerId: PeerId, spec: RpcProtocol): Promise<void> {
    const decoder = new FrameDecoder(spec.frameBytesMax)
    const clock = this.frameClock(peerId, spec.protocol, channel.stream)
    try {
      for await (const chunk of channel.stream) {
        let frames: Uint8Array[]
        try {
          frames = decoder.push(chunk.subarray())
        } catch (err) {
          this.violation(peerId, spec.protocol, channel.stream, err as Error)
          throw err
        }
        clock.update(decoder, frames.length)
        this.handleClientFrames(channel, peerId, spec, frames)
      }
    } finally {
      clock.clear()
    }
  }

  private handleClientFrames (channel: ClientChannel, peerId: PeerId, spec: RpcProtocol, frames: Uint8Array[]): void {
    for (const frame of frames) {
      let envelope: RpcEnvelope
      try {
        envelope = decodeEnvelope(frame)
        if (envelope.kind !== 'res' && envelope.kind !== 'err') throw new ProtocolViolationError(`a server sent a ${envelope.kind} frame`)
      } catch (err) {
        this.violation(peerId, spec.protocol, channel.stream, err as Error)
        throw err
      }
      const pending = channel.pending.get(envelope.id)
      if (pending === undefined) continue // answered after we gave up on it
      channel.pending.delete(envelope.id)
      if (envelope.kind === 'res') pending.resolve(envelope.body)
      else pending.reject(failureFromData(envelope.error!))
    }
  }

  private async serve (spec: RpcProtocol, stream: Stream, connection: Connection): Promise<void> {
    const peerId = connection.remotePeer
    const decoder = new FrameDecoder(spec.frameBytesMax)
    const clock = this.frameClock(peerId, spec.protocol, stream)
    const running = new Map<number, AbortController>()
    this.inbound.set(stream, running)
    try {
      for await (const chunk of stream) {
        let frames: Uint8Array[]
        try {
          frames = decoder.push(chunk.subarray())
        } catch (err) {
          this.violation(peerId, spec.protocol, stream, err as Error)
          return
        }
        clock.update(decoder, frames.length)
        for (const frame of frames) {
          let envelope: RpcEnvelope
          try {
            envelope = decodeEnvelope(frame)
            if (envelope.kind === 'res' || envelope.kind === 'err') throw new ProtocolViolationError(`a caller sent a ${envelope.kind} frame`)
          } catch (err) {
            this.violation(peerId, spec.protocol, stream, err as Error)
            return
          }
          if (envelope.kind === 'cancel') {
            running.get(envelope.id)?.abort()
            continue
          }
          if (running.has(envelope.id)) {
            this.violation(peerId, spec.protocol, stream, new ProtocolViolationError(`request id ${envelope.id} reused while in flight`))
            return
          }
          if (running.size >= spec.inflightMax) {
            const busy = new PeerBusyError(`${spec.inflightMax} requests already running on this stream`)
            await this.write(stream, encodeFrame(encodeEnvelope({ id: envelope.id, kind: 'err', error: busy.toData() })))
            continue
          }
          const controller = new AbortController()
          running.set(envelope.id, controller)
          this.serving.add(controller)
          this.answer(spec, stream, peerId, envelope, controller).finally(() => {
            running.delete(envelope.id)
            this.serving.delete(controller)
          })
        }
      }
    } finally {
      this.inbound.delete(stream)
      clock.clear()
      for (const controller of running.values()) controller.abort()
    }
  }

  private async answer (spec: RpcProtocol, stream: Stream, peerId: PeerId, envelope: RpcEnvelope, controller: AbortController): Promise<void> {
    let reply: Uint8Array
    const stats = this.statsOf(spec.protocol)
    stats.requestsServed++
    try {
      let refusal = this.authorize?.(peerId, spec.protocol)
      if (refusal instanceof Promise) refusal = await refusal
      if (refusal !== undefined) throw refusal
      const body = await spec.handler(envelope.body, { peerId, signal: controller.signal })
      reply = encodeEnvelope({ id: envelope.id, kind: 'res', body })
      if (reply.byteLength + 5 > spec.frameBytesMax) {
        throw new RhizomeError('ERR_TOO_LARGE', `answer of ${reply.byteLength} bytes exceeds the ${spec.protocol} frame limit of ${spec.frameBytesMax}`)
      }
    } catch (err) {
      stats.serveErrors++
      if (err instanceof ProtocolViolationError) {
        // The body broke the protocol's schema: the caller is at fault.
        this.violation(peerId, spec.protocol, stream, err)
        return
      }
      const failure = err instanceof RhizomeError
        ? err.toData()
        : { name: 'InternalError', code: 'ERR_INTERNAL', message: 'the peer failed to answer', retryable: true }
      if (!(err instanceof RhizomeError)) this.log.error('rpc handler failed', { protocol: spec.protocol, error: String((err as Error)?.stack ?? err) })
      reply = encodeEnvelope({ id: envelope.id, kind: 'err', error: failure })
    }
    if (controller.signal.aborted || stream.status !== 'open') return
    await this.write(stream, encodeFrame(reply)).catch(() => {})
  }

  /** The deadline for the frame in progress on one stream: a peer slower than frameArrivalMs broke the protocol. */
  private frameClock (peerId: PeerId, protocol: string, stream: Stream): FrameClock {
    return new FrameClock(this.frameArrivalMs, () => {
      this.violation(peerId, protocol, stream, new ProtocolViolationError(`a frame took longer than ${this.frameArrivalMs} ms to arrive`, {
        hint: 'the peer sent part of a frame and then too little of the rest; an honest peer sends each frame at once'
      }))
    })
  }

  private violation (peerId: PeerId, protocol: string, stream: Stream, err: Error): void {
    stream.abort(err)
    this.onViolation(peerId, protocol, err)
  }

  /** Queue a frame on `stream`; resolves once it is handed to the stream (after its drain, if full). */
  private async write (stream: Stream, bytes: Uint8Array): Promise<void> {
    let out = this.outgoing.get(stream)
    if (out === undefined) {
      let settle!: (err?: unknown) => void
      const sent = new Promise<void>((resolve, reject) => { settle = (err) => { if (err === undefined) resolve(); else reject(err) } })
      out = { frames: [], bytes: 0, sent, settle }
      this.outgoing.set(stream, out)
      const queued = out
      setImmediate(() => { this.flush(stream, queued) })
    }
    out.frames.push(bytes)
    out.bytes += bytes.byteLength
    this.counters.framesSent++
    const { sent } = out
    if (out.bytes >= RPC_COALESCE_BYTES_MAX) this.flush(stream, out)
    await sent
  }

  /** Send the frames gathered on `stream` in one piece, unless they went already. */
  private flush (stream: Stream, out: Outgoing): void {
    if (this.outgoing.get(stream) !== out) return
    this.outgoing.delete(stream)
    try {
      this.counters.sends++
      const payload = out.frames.length === 1 ? out.frames[0] : concatFrames(out.frames, out.bytes)
      if (stream.send(payload)) out.settle()
      else stream.onDrain().then(() => { out.settle() }, (err: unknown) => { out.settle(err ?? new Error('stream closed')) })
    } catch (err) {
      out.settle(err ?? new Error('stream closed'))
    }
  }

  /** Send what `stream` has gathered now (before the frames that must follow it, or a reset). */
  private flushNow (stream: Stream): void {
    const out = this.outgoing.get(stream)
    if (out !== undefined) this.flush(stream, out)
  }
}

/** Frames laid end to end in one buffer: a stream of frames reads the same however it is cut. */
function concatFrames (frames: Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(bytes)
  let at = 0
  for (const frame of frames) {
    out.set(frame, at)
    at += frame.byteLength
  }
  return out
}

/**
 * One timer per stream, armed while a frame is partly in. It restarts when a new frame begins
 * (the first push that leaves a frame partial, or one that finishes frames and starts another)
 * and stops when no frame is in progress.
 */
class FrameClock {
  private readonly ms: number
  private readonly onLate: () => void
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor (ms: number, onLate: () => void) {
    this.ms = ms
    this.onLate = onLate
  }

  /** Call after each push with the number of frames it completed. */
  update (decoder: FrameDecoder, framesCompleted: number): void {
    if (!decoder.partial) {
      this.clear()
      return
    }
    if (this.timer !== undefined && framesCompleted === 0) return // the same frame, still arriving
    this.clear()
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.onLate()
    }, this.ms)
  }

  clear (): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }
}

/** Wait for `promise`, or reject with `reason()` as soon as `signal` aborts; the promise itself runs on. */
async function raceSignal<T> (promise: Promise<T>, signal: AbortSignal, reason: () => Error): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {}) // nobody waits for it any more
    throw reason()
  }
  let onAbort = (): void => {}
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(reason())
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([promise, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}
