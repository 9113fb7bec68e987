/**
 * Tasks between peers: `/rhizome/<net>/task/1.0.0` (RPC, src/wire/task-codec.ts).
 *
 * Worker side: a fixed number of slots and a bounded queue. A request takes a slot, or waits
 * in the queue, or — when the queue is full — is answered at once with the retryable
 * `QueueFullError`, never queued without end. The task then loads its function (fetching and
 * verifying it if this peer has never seen it), runs in the sandbox under the manifest's limits,
 * stores the result as a dag-cbor blob and answers with a signed attestation. A cancel from the
 * caller (or the caller's connection dropping) aborts the task wherever it is: queued, fetching
 * or running.
 *
 * Caller side: checks that the attestation names the task it asked for and the peer it asked,
 * that the signature is that peer's, and that the result bytes hash to the attested CID.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { InvalidInputError, ProtocolViolationError, RhizomeError } from '../model/errors.ts'
import { RESULT_INLINE_BYTES_MAX, TASK_ARGS_BYTES_MAX, attestationSigningBytes, encodeTaskReply, encodeTaskRequest, parseTaskReply, parseTaskRequest, taskId } from '../wire/task-codec.ts'
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
export const CALL_TIMEOUT_MS_DEFAULT = 120_000

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

  /** Run a task here: queue for a slot, load the function, run it, attest the result. */
  async execute (fn: CID, exportName: string, args: unknown[], caller: PeerId, signal: AbortSignal): Promise<TaskReply> {
    const { functions, sandbox, blobs, log } = this.init
    const id = await taskId(fn, exportName, args)
    const t0 = performance.now()
    const release = await this.slots.acquire(signal)
    const t1 = performance.now()
    log.debug('task started', { task: id.toString(), fn: fn.toString(), export: exportName, caller: caller.toString() })
    try {
      const loaded = await functions.load(fn, { hints: [caller], signal })
      const t2 = performance.now()
      if (!loaded.manifest.exports.includes(exportName)) {
        throw new InvalidInputError(`function ${fn.toString()} has no export ${JSON.stringify(exportName)}; it exports ${loaded.manifest.exports.join(', ')}`, { hint: 'call one of the exports listed; `rhizome functions` shows them' })
      }
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
        timings: { queueMs: t1 - t0, fetchMs: t2 - t1, runMs: t3 - t2 }
      }
      if (outcome.bytes.byteLength <= RESULT_INLINE_BYTES_MAX) reply.result = outcome.bytes
      return reply
    } catch (err) {
      if (signal.aborted) log.info('task cancelled', { task: id.toString(), fn: fn.toString(), export: exportName })
      throw err
    } finally {
      release()
    }
  }

  /** Call `fn.exportName(...args)` on `peer` (this peer if it is us) and verify the answer. */
  async call (fn: CID, exportName: string, args: unknown[], peer: PeerId, options: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<CallResult> {
    const argsBytes = dagCbor.encode(args).byteLength
    if (argsBytes > TASK_ARGS_BYTES_MAX) throw new InvalidInputError(`arguments are ${argsBytes} bytes encoded; at most ${TASK_ARGS_BYTES_MAX} ride in a task (put larger inputs in blobs)`, { hint: 'store large inputs with `rhizome blob put FILE` and pass the CID as an argument' })
    const t0 = performance.now()
    const id = await taskId(fn, exportName, args)
    let reply: TaskReply
    if (peer.equals(this.init.selfId)) {
      const signal = options.signal ?? AbortSignal.timeout(options.timeoutMs ?? CALL_TIMEOUT_MS_DEFAULT)
      reply = await this.execute(fn, exportName, args, this.init.selfId, signal)
    } else {
      const body = await this.init.rpc.request(peer, this.protocol, encodeTaskRequest({ fn, export: exportName, args }), {
        signal: options.signal,
        timeoutMs: options.timeoutMs ?? CALL_TIMEOUT_MS_DEFAULT
      })
      reply = parseTaskReply(body)
    }
    const bytes = await this.verify(reply, id, peer, options.signal)
    return {
      taskId: id.toString(),
      resultCid: reply.attestation.result.toString(),
      value: dagCbor.decode(bytes),
      peer: peer.toString(),
      timings: { ...reply.timings, totalMs: performance.now() - t0 }
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
      await this.init.blobs.put(reply.result, dagCbor.code)
      return reply.result
    }
    if (await this.init.blobs.has(attestation.result)) return await this.init.blobs.get(attestation.result)
    return await this.init.blobService.fetch(peer, attestation.result, { signal })
  }
}
