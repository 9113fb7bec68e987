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
import type { Logger } from '../model/log.ts'
import type { Sandbox } from '../sandbox/index.ts'
import type { BlobStore } from '../store/index.ts'
import type { TaskReply, TaskTimings } from '../wire/task-codec.ts'
import type { BlobService } from './blob-service.ts'
import type { FunctionService } from './function-service.ts'
import type { RpcService } from './rpc.ts'
import { Slots } from './slots.ts'
import type { Capacity } from './slots.ts'
import type { PeerId, PrivateKey } from '@libp2p/interface'

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

export class AttestationInvalidError extends RhizomeError {
  constructor (message: string) {
    super('ERR_ATTESTATION_INVALID', message, { retryable: true, hint: 'the worker answered with a result it could not stand behind; run the task on another peer' })
    this.name = 'AttestationInvalidError'
  }
}

export interface TaskServiceInit {
  rpc: RpcService
  sandbox: Sandbox
  functions: FunctionService
  blobs: BlobStore
  blobService: BlobService
  privateKey: PrivateKey
  selfId: PeerId
  networkId: string
  slotsMax: number
  queueLengthMax: number
  log: Logger
  onCapacity: (capacity: Capacity) => void
  /** Open (or reuse) a connection to `peer`; the caller bounds it with DIAL_TIMEOUT_MS. */
  dial: (peer: PeerId, options: { signal: AbortSignal }) => Promise<unknown>
  /** A worker answered with something it cannot stand behind; the shell scores it. */
  onMisbehaviour: (peer: PeerId, reason: Error) => void
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
  private readonly init: TaskServiceInit
  readonly protocol: string
  private readonly slots: Slots

  constructor (init: TaskServiceInit) {
    this.init = init
    this.protocol = taskProtocol(init.networkId)
    this.slots = new Slots({ slotsMax: init.slotsMax, queueLengthMax: init.queueLengthMax, onChange: init.onCapacity })
  }

  capacity (): Capacity {
    return this.slots.capacity()
  }


  async start (): Promise<void> {
    await this.init.rpc.handle({
      protocol: this.protocol,
      frameBytesMax: TASK_FRAME_BYTES_MAX,
      // The queue bounds work; this only bounds one caller's share of it.
      inflightMax: this.init.slotsMax + this.init.queueLengthMax,
      handler: async (body, { peerId, signal }) => {
        const request = parseTaskRequest(body)
        return encodeTaskReply(await this.execute(request.fn, request.export, request.args, peerId, signal))
      }
    })
  }

  /** Run a task here: load the function, queue for a slot, run it, attest the result. */
  async execute (fn: CID, exportName: string, args: unknown[], caller: PeerId, signal: AbortSignal): Promise<TaskReply> {
    const { functions, sandbox, blobs, log } = this.init
    const id = await taskId(fn, exportName, args)
    const t0 = performance.now()
    // Refuse at once when the queue is full, before fetching anything for a task we cannot run.
    this.slots.checkRoom()
    let release: (() => void) | undefined
    try {
      // Outside the slot: a fetch waits on the caller (or other peers), not on this peer's CPU.
      const loaded = await functions.load(fn, { requester: caller, signal })
      const t1 = performance.now()
      if (!loaded.manifest.exports.includes(exportName)) {
        throw new InvalidInputError(`function ${fn.toString()} has no export ${JSON.stringify(exportName)}; it exports ${loaded.manifest.exports.join(', ')}`, { hint: 'call one of the exports listed; `rhizome functions` shows them' })
      }
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
      const signature = await this.init.privateKey.sign(attestationSigningBytes(id, resultCid, this.init.selfId.toString()))
      log.info('task done', { task: id.toString(), fn: fn.toString(), export: exportName, result: resultCid.toString(), runMs: Math.round(t3 - t2) })
      const reply: TaskReply = {
        attestation: { task: id, result: resultCid, peer: this.init.selfId.toString(), signature },
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

  /** Call `fn.exportName(...args)` on `peer` (this peer if it is us) and verify the answer. */
  async call (fn: CID, exportName: string, args: unknown[], peer: PeerId, options: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<CallResult> {
    const argsBytes = dagCbor.encode(args).byteLength
    if (argsBytes > TASK_ARGS_BYTES_MAX) throw new InvalidInputError(`arguments are ${argsBytes} bytes encoded; at most ${TASK_ARGS_BYTES_MAX} ride in a task (put larger inputs in blobs)`, { hint: 'store large inputs with `rhizome blob put FILE` and pass the CID as an argument' })
    const t0 = performance.now()
    const id = await taskId(fn, exportName, args)
    const timeoutMs = options.timeoutMs ?? CALL_TIMEOUT_MS_DEFAULT
    const local = peer.equals(this.init.selfId)
    let body: unknown
    if (local) {
      body = encodeTaskReply(await this.executeLocally(fn, exportName, args, timeoutMs, options.signal))
    } else {
      await this.reach(peer, options.signal)
      body = await this.init.rpc.request(peer, this.protocol, encodeTaskRequest({ fn, export: exportName, args }), {
        signal: options.signal,
        timeoutMs
      })
    }
    let reply: TaskReply
    let value: unknown
    try {
      reply = parseTaskReply(body)
      const bytes = await this.verify(reply, id, peer, options.signal)
      value = decodeRemoteValue(bytes, `the result of task ${id.toString()} from ${peer.toString()}`)
      // Kept only once it decodes: a blob store is no place for a hostile worker's garbage.
      if (reply.result !== undefined) await this.init.blobs.put(reply.result, dagCbor.code)
    } catch (err) {
      if (!local && (err instanceof AttestationInvalidError || err instanceof ProtocolViolationError)) this.init.onMisbehaviour(peer, err)
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

  /** Run on this peer under the caller's signal and the call's timeout, whichever ends first. */
  private async executeLocally (fn: CID, exportName: string, args: unknown[], timeoutMs: number, callerSignal: AbortSignal | undefined): Promise<TaskReply> {
    const deadline = AbortSignal.timeout(timeoutMs)
    const signal = callerSignal === undefined ? deadline : AbortSignal.any([callerSignal, deadline])
    try {
      return await this.execute(fn, exportName, args, this.init.selfId, signal)
    } catch (err) {
      if (deadline.aborted && callerSignal?.aborted !== true) {
        throw new TimeoutError(`the task did not finish on this peer within ${timeoutMs} ms`, { cause: err, hint: 'raise --timeout-ms, or make the function do less per call' })
      }
      throw err
    }
  }

  /** Connect to `peer` within DIAL_TIMEOUT_MS, so an unreachable worker fails fast and by name. */
  private async reach (peer: PeerId, callerSignal: AbortSignal | undefined): Promise<void> {
    const deadline = AbortSignal.timeout(DIAL_TIMEOUT_MS)
    const signal = callerSignal === undefined ? deadline : AbortSignal.any([callerSignal, deadline])
    try {
      await this.init.dial(peer, { signal })
    } catch (err) {
      if (callerSignal?.aborted === true) throw new AbortedError(`the call to ${peer.toString()} was cancelled while connecting`, { cause: err })
      const message = deadline.aborted
        ? `could not reach peer ${peer.toString()} within ${DIAL_TIMEOUT_MS} ms`
        : `could not reach peer ${peer.toString()}: ${(err as Error).message}`
      throw new PeerUnavailableError(message, {
        cause: err,
        hint: `check that ${peer.toString()} is running and reachable from this peer (\`rhizome peers\` shows its state), or call without --on to let placement choose a peer`
      })
    }
  }

  private async verify (reply: TaskReply, id: CID, peer: PeerId, signal?: AbortSignal): Promise<Uint8Array> {
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
    if (await this.init.blobs.has(attestation.result)) return await this.init.blobs.get(attestation.result)
    return await this.init.blobService.fetch(peer, attestation.result, { signal })
  }
}
