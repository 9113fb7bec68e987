/**
 * Tasks between peers: `/rhizome/<net>/task/1.0.0` (RPC, src/wire/task-codec.ts).
 *
 * Worker side: a task first loads its function — fetching and verifying it if this peer has
 * never seen it, under the function service's own per-caller budget and deadline — and only then
 * takes one of a fixed number of slots, or waits in a bounded queue, or — when the queue is full —
 * is answered at once with the retryable `QueueFullError`, never queued without end. Fetching
 * code never holds a slot: a caller that asks us to run code and then does not serve it ties up
 * its own fetch budget and nothing else. The task runs in the sandbox under the manifest's limits,
 * its result is stored as a dag-cbor blob and the answer is a signed attestation. A cancel from
 * the caller (or the caller's connection dropping) aborts the task wherever it is: fetching,
 * queued or running.
 *
 * Caller side: reaches the worker within `DIAL_TIMEOUT_MS` (an unreachable peer is reported as
 * such, not as a task timeout), then checks that the attestation names the task it asked for and
 * the peer it asked, that the signature is that peer's, that the result bytes hash to the
 * attested CID and that they decode within the limits of src/wire/value.ts. A worker that fails
 * any check broke the protocol: it is reported through `onMisbehaviour`, and the error is
 * retryable so the caller can run the task elsewhere.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { AbortedError, InvalidInputError, PeerUnavailableError, ProtocolViolationError, RhizomeError, TimeoutError } from '../model/errors.ts'
import { RESULT_INLINE_BYTES_MAX, TASK_ARGS_BYTES_MAX, attestationSigningBytes, encodeTaskReply, encodeTaskRequest, parseTaskReply, parseTaskRequest, taskId } from '../wire/task-codec.ts'
import { decodeRemoteValue } from '../wire/value.ts'
import { WorkflowNotCallableError } from '../functions/errors.ts'
import type { Logger } from '../model/log.ts'
import type { Sandbox } from '../sandbox/index.ts'
import type { BlobStore } from '../store/index.ts'
import type { TaskReply, TaskTimings } from '../wire/task-codec.ts'
import type { LoadedFunction } from './function-service.ts'
import { Lifecycle } from './lifecycle.ts'
import type { RpcService } from './rpc.ts'
import { Slots } from './slots.ts'
import type { Capacity } from './slots.ts'
import type { PeerId } from '@libp2p/interface'

/** Task frames carry arguments and inline results; both are capped below this. */
const TASK_FRAME_BYTES_MAX = Math.max(TASK_ARGS_BYTES_MAX, RESULT_INLINE_BYTES_MAX) + 4096
/** How long a caller waits for a task by default: the default sandbox time plus fetch and queue slack. */
import { CALL_TIMEOUT_MS_DEFAULT } from '../api/limits.ts'
export { CALL_TIMEOUT_MS_DEFAULT }
/**
 * How long the caller waits to reach a worker (connection and stream), apart from the task's own
 * timeout. A TCP + Noise + Yamux handshake on a slow link takes well under a second and a DHT
 * lookup for the peer's address on a small network under 5 s (DHT_TIMEOUT_MS in
 * function-service.ts); a peer not reached by then is unreachable, and the caller hears so.
 */
export const DIAL_TIMEOUT_MS = 10_000

/** Tasks that may wait per slot: a few seconds of backlog for short tasks, bounded memory. */
export const TASK_QUEUE_PER_SLOT = 16
/** Slots per CPU at most: tasks mostly wait on I/O or timers, but past this a configured slot count is a typo. */
export const SLOTS_PER_CPU_MAX = 64

/** The slots a peer runs with (the configured count, capped by its CPUs) and the queue behind them. */
export function slotLimits (slotsMaxConfigured: number, cpus: number): { slotsMax: number, queueLengthMax: number } {
  const slotsMax = Math.min(slotsMaxConfigured, cpus * SLOTS_PER_CPU_MAX)
  return { slotsMax, queueLengthMax: slotsMax * TASK_QUEUE_PER_SLOT }
}

export class AttestationInvalidError extends RhizomeError {
  constructor (message: string) {
    super('ERR_ATTESTATION_INVALID', message, { retryable: true, hint: 'the worker answered with a result it could not stand behind; run the task on another peer' })
    this.name = 'AttestationInvalidError'
  }
}

/**
 * The longest a served task may take, fetch, queue and run together, whatever its caller says: the
 * longest a caller may wait for one (the API's `timeoutMs` limit, 1 h). Past it nobody is waiting
 * for the answer; a caller that goes away sooner cancels it sooner.
 */
export const TASK_SERVE_TIMEOUT_MS_MAX = 3_600_000

/**
 * What the task service needs: the RPC layer, a way to load a function, the sandbox, blob
 * storage and fetch, and the peer's key. Nothing here is another whole service.
 */
export interface TaskServiceComponents {
  rpc: Pick<RpcService, 'handle' | 'unhandle' | 'request'>
  /** Load a function's manifest and code, fetching and verifying it if needed (FunctionService.load). */
  loadFunction: (fn: CID, options: { requester: PeerId, signal: AbortSignal }) => Promise<LoadedFunction>
  sandbox: Pick<Sandbox, 'run'>
  blobs: Pick<BlobStore, 'put' | 'has' | 'get'>
  /** Fetch a blob from a peer, verify and store it (BlobService.fetch). */
  fetchBlob: (peer: PeerId, cid: CID, options: { signal: AbortSignal }) => Promise<Uint8Array>
  /** Sign with this peer's key (PrivateKey.sign). */
  sign: (bytes: Uint8Array) => Uint8Array | Promise<Uint8Array>
  selfId: PeerId
  /** Open (or reuse) a connection to `peer`; the caller bounds it with `dialTimeoutMs`. */
  dial: (peer: PeerId, options: { signal: AbortSignal }) => Promise<unknown>
  /** This peer's capacity moved (for announcements). */
  onCapacity: (capacity: Capacity) => void
  /** A worker answered with something it cannot stand behind; the shell scores it. */
  onViolation: (peer: PeerId, protocol: string, reason: Error) => void
  log: Logger
}

export interface TaskServiceInit {
  networkId: string
  slotsMax: number
  queueLengthMax: number
  /** Default CALL_TIMEOUT_MS_DEFAULT. */
  callTimeoutMs?: number
  /** Default DIAL_TIMEOUT_MS. */
  dialTimeoutMs?: number
  /** Default TASK_SERVE_TIMEOUT_MS_MAX. */
  serveTimeoutMs?: number
}

export interface CallResult {
  taskId: string
  resultCid: string
  value: unknown
  peer: string
  timings: TaskTimings & { totalMs: number }
}

export function taskProtocol (networkId: string): string {
  return `/rhizome/${networkId}/task/1.0.0`
}

export class TaskService {
  private readonly components: TaskServiceComponents
  readonly protocol: string
  private readonly slots: Slots
  private readonly inflightMax: number
  private readonly callTimeoutMs: number
  private readonly dialTimeoutMs: number
  private readonly serveTimeoutMs: number
  private readonly lifecycle = new Lifecycle('the task service')

  constructor (components: TaskServiceComponents, init: TaskServiceInit) {
    this.components = components
    this.protocol = taskProtocol(init.networkId)
    this.slots = new Slots({ slotsMax: init.slotsMax, queueLengthMax: init.queueLengthMax, onChange: components.onCapacity })
    // The queue bounds work; this only bounds one caller's share of it.
    this.inflightMax = init.slotsMax + init.queueLengthMax
    this.callTimeoutMs = init.callTimeoutMs ?? CALL_TIMEOUT_MS_DEFAULT
    this.dialTimeoutMs = init.dialTimeoutMs ?? DIAL_TIMEOUT_MS
    this.serveTimeoutMs = init.serveTimeoutMs ?? TASK_SERVE_TIMEOUT_MS_MAX
  }

  capacity (): Capacity {
    return this.slots.capacity()
  }

  async start (): Promise<void> {
    this.lifecycle.start()
    await this.components.rpc.handle({
      protocol: this.protocol,
      frameBytesMax: TASK_FRAME_BYTES_MAX,
      inflightMax: this.inflightMax,
      handler: async (body, { peerId, signal }) => {
        const request = parseTaskRequest(body)
        const operation = this.lifecycle.operation({ signal, timeoutMs: this.serveTimeoutMs })
        try {
          return encodeTaskReply(await this.execute(request.fn, request.export, request.args, peerId, operation.signal))
        } catch (err) {
          if (operation.reason === 'stopped') throw this.lifecycle.stoppedError()
          throw err
        } finally {
          operation.release()
        }
      }
    })
  }

  /** Stop serving, and abort tasks in flight: fetching, queued, running, or called on other peers. */
  async stop (): Promise<void> {
    this.lifecycle.stop()
    await this.components.rpc.unhandle(this.protocol)
  }

  /** Run a task here: load the function, queue for a slot, run it, attest the result. */
  async execute (fn: CID, exportName: string, args: unknown[], caller: PeerId, signal: AbortSignal): Promise<TaskReply> {
    const { sandbox, blobs, log } = this.components
    const id = await taskId(fn, exportName, args)
    const t0 = performance.now()
    // Refuse at once when the queue is full, before fetching anything for a task we cannot run.
    this.slots.checkRoom()
    let release: (() => void) | undefined
    try {
      // Outside the slot: a fetch waits on the caller (or other peers), not on this peer's CPU.
      const loaded = await this.components.loadFunction(fn, { requester: caller, signal })
      const t1 = performance.now()
      if (!loaded.manifest.exports.includes(exportName)) {
        throw new InvalidInputError(`function ${fn.toString()} has no export ${JSON.stringify(exportName)}; it exports ${loaded.manifest.exports.join(', ')}`, { hint: 'call one of the exports listed; `rhizome functions` shows them' })
      }
      if (loaded.manifest.kind === 'workflow') throw new WorkflowNotCallableError(fn.toString(), exportName)
      release = await this.slots.acquire(signal)
      const t2 = performance.now()
      log.debug('task started', { task: id.toString(), fn: fn.toString(), export: exportName, caller: caller.toString() })
      const outcome = await sandbox.run({
        functionId: fn.toString(),
        kind: loaded.manifest.kind,
        code: loaded.code,
        exportName,
        args,
        seed: id.bytes,
        limits: loaded.manifest.limits
      }, { signal })
      const t3 = performance.now()
      const resultCid = await blobs.put(outcome.bytes, dagCbor.code)
      const self = this.components.selfId.toString()
      const signature = await this.components.sign(attestationSigningBytes(id, resultCid, self))
      log.info('task done', { task: id.toString(), fn: fn.toString(), export: exportName, result: resultCid.toString(), runMs: Math.round(t3 - t2) })
      const reply: TaskReply = {
        attestation: { task: id, result: resultCid, peer: self, signature },
        timings: { queueMs: t2 - t1, fetchMs: t1 - t0, runMs: t3 - t2 }
      }
      if (outcome.bytes.byteLength <= RESULT_INLINE_BYTES_MAX) reply.result = outcome.bytes
      return reply
    } catch (err) {
      if (signal.aborted) log.info('task cancelled', { task: id.toString(), fn: fn.toString(), export: exportName })
      throw err
    } finally {
      release?.()
    }
  }

  /**
   * Call `fn.exportName(...args)` on `peer` (this peer if it is us) and verify the answer. Ends
   * with AbortedError on the caller's signal or stop(), TimeoutError past `timeoutMs`.
   */
  async call (fn: CID, exportName: string, args: unknown[], peer: PeerId, options: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<CallResult> {
    const argsBytes = dagCbor.encode(args).byteLength
    if (argsBytes > TASK_ARGS_BYTES_MAX) throw new InvalidInputError(`arguments are ${argsBytes} bytes encoded; at most ${TASK_ARGS_BYTES_MAX} ride in a task (put larger inputs in blobs)`, { hint: 'store large inputs with `rhizome blob put FILE` and pass the CID as an argument' })
    if (this.lifecycle.stopping) throw this.lifecycle.stoppedError()
    const timeoutMs = options.timeoutMs ?? this.callTimeoutMs
    const operation = this.lifecycle.operation({ signal: options.signal, timeoutMs })
    try {
      return await this.callUnder(fn, exportName, args, peer, timeoutMs, operation.signal)
    } catch (err) {
      if (operation.reason === 'stopped') throw new AbortedError(this.lifecycle.stoppedError().message, { cause: err })
      if (operation.reason === 'timeout' && !(err instanceof TimeoutError)) {
        throw new TimeoutError(`the task did not finish on ${peer.toString()} within ${timeoutMs} ms`, { cause: err, hint: 'raise --timeout-ms, or make the function do less per call' })
      }
      throw err
    } finally {
      operation.release()
    }
  }

  private async callUnder (fn: CID, exportName: string, args: unknown[], peer: PeerId, timeoutMs: number, signal: AbortSignal): Promise<CallResult> {
    const t0 = performance.now()
    const id = await taskId(fn, exportName, args)
    const local = peer.equals(this.components.selfId)
    let body: unknown
    if (local) {
      body = encodeTaskReply(await this.execute(fn, exportName, args, this.components.selfId, signal))
    } else {
      await this.reach(peer, signal)
      body = await this.components.rpc.request(peer, this.protocol, encodeTaskRequest({ fn, export: exportName, args }), { signal, timeoutMs })
    }
    let reply: TaskReply
    let value: unknown
    try {
      reply = parseTaskReply(body)
      const bytes = await this.verify(reply, id, peer, signal)
      value = decodeRemoteValue(bytes, `the result of task ${id.toString()} from ${peer.toString()}`)
      // Kept only once it decodes: a blob store is no place for a hostile worker's garbage.
      if (reply.result !== undefined) await this.components.blobs.put(reply.result, dagCbor.code)
    } catch (err) {
      if (!local && (err instanceof AttestationInvalidError || err instanceof ProtocolViolationError)) this.components.onViolation(peer, this.protocol, err)
      throw err
    }
    return {
      taskId: id.toString(),
      resultCid: reply.attestation.result.toString(),
      value,
      peer: peer.toString(),
      timings: { ...reply.timings, totalMs: performance.now() - t0 }
    }
  }

  /** Connect to `peer` within `dialTimeoutMs`, so an unreachable worker fails fast and by name. */
  private async reach (peer: PeerId, callSignal: AbortSignal): Promise<void> {
    const operation = this.lifecycle.operation({ signal: callSignal, timeoutMs: this.dialTimeoutMs })
    try {
      await this.components.dial(peer, { signal: operation.signal })
    } catch (err) {
      if (operation.reason === 'cancelled' || operation.reason === 'stopped') throw new AbortedError(`the call to ${peer.toString()} was cancelled while connecting`, { cause: err })
      const message = operation.reason === 'timeout'
        ? `could not reach peer ${peer.toString()} within ${this.dialTimeoutMs} ms`
        : `could not reach peer ${peer.toString()}: ${(err as Error).message}`
      throw new PeerUnavailableError(message, {
        cause: err,
        hint: `check that ${peer.toString()} is running and reachable from this peer (\`rhizome peers\` shows its state), or call without --on to let placement choose a peer`
      })
    } finally {
      operation.release()
    }
  }

  private async verify (reply: TaskReply, id: CID, peer: PeerId, signal: AbortSignal): Promise<Uint8Array> {
    const { attestation } = reply
    if (!attestation.task.equals(id)) throw new AttestationInvalidError(`the worker attested task ${String(attestation.task)}, not ${String(id)}`)
    if (attestation.peer !== peer.toString()) throw new AttestationInvalidError(`the attestation names ${attestation.peer}, not the worker ${peer.toString()}`)
    const key = peerIdFromString(attestation.peer).publicKey
    if (key === undefined) throw new AttestationInvalidError(`peer id ${attestation.peer} does not embed its public key`)
    const valid = await key.verify(attestationSigningBytes(attestation.task, attestation.result, attestation.peer), attestation.signature)
    if (!valid) throw new AttestationInvalidError(`the attestation signature does not verify against ${attestation.peer}`)
    if (attestation.result.code !== dagCbor.code) throw new ProtocolViolationError('attested result must be a dag-cbor CID')
    if (reply.result !== undefined) {
      const digest = await sha256.digest(reply.result)
      if (!CID.create(1, dagCbor.code, digest).equals(attestation.result)) throw new AttestationInvalidError('the result bytes do not hash to the attested result CID')
      return reply.result
    }
    if (await this.components.blobs.has(attestation.result)) return await this.components.blobs.get(attestation.result)
    return await this.components.fetchBlob(peer, attestation.result, { signal })
  }
}
