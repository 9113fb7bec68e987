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
 * Inputs by reference: a top-level argument that is a CID link and is listed in the request's
 * `inputs` is made local before the task takes a slot — found in this peer's blob store, or
 * fetched (and verified) from the peers the caller named, in order — under a per-caller budget of
 * fetches in flight like the one for code, several inputs at once. A fetched input stays in this
 * peer's blob store: the next task that needs it here finds it local, and this peer can serve it
 * to others. Once the task holds a slot the inputs are read back from the store and decoded under
 * the limits of src/wire/value.ts, so a task waiting in the queue holds no input bytes in memory.
 * An input that no named peer serves ends the task with the retryable `InputUnavailableError`; a
 * link not listed in `inputs` reaches the function as a CID.
 *
 * Caller side: reaches the worker within `DIAL_TIMEOUT_MS` (an unreachable peer is reported as
 * such, not as a task timeout), then checks that the attestation names the task it asked for and
 * the peer it asked, that the signature is that peer's, that the result bytes hash to the
 * attested CID and that they decode within the limits of src/wire/value.ts. A worker that fails
 * any check broke the protocol: it is reported through `onMisbehaviour`, and the error is
 * retryable so the caller can run the task elsewhere. A call by reference (`ref: true`) checks
 * the attestation the same way but receives no result bytes: the worker keeps the result blob
 * and the caller gets its CID, to hand to the next task as an input.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { AbortedError, InvalidInputError, PeerUnavailableError, ProtocolViolationError, RhizomeError, TimeoutError, TooLargeError } from '../model/errors.ts'
import type { RhizomeErrorOptions } from '../model/errors.ts'
import { INPUT_PEERS_MAX, RESULT_INLINE_BYTES_MAX, TASK_ARGS_BYTES_MAX, TASK_INPUTS_FRAME_BYTES_MAX, TASK_INPUTS_MAX, attestationSigningBytes, encodeTaskReply, encodeTaskRequest, parseTaskReply, parseTaskRequest, taskId } from '../wire/task-codec.ts'
import type { TaskInput } from '../wire/task-codec.ts'
import { MalformedValueError, decodeLinkedValue, decodeRemoteValue, isValueCodec } from '../wire/value.ts'
import { WorkflowNotCallableError } from '../functions/errors.ts'
import type { Logger } from '../model/log.ts'
import type { Sandbox } from '../sandbox/index.ts'
import type { BlobStore } from '../store/index.ts'
import type { TaskReply, TaskTimings } from '../wire/task-codec.ts'
import type { LoadedFunction } from './function-service.ts'
import { Ed25519Verifier } from './ed25519.ts'
import { Lifecycle } from './lifecycle.ts'
import type { RpcService } from './rpc.ts'
import { PeerBudget, Slots } from './slots.ts'
import type { Capacity } from './slots.ts'
import type { PeerId } from '@libp2p/interface'

/**
 * Results of tasks run here that a second ask is answered from, by task id. A run that changes
 * driver asks again for the tasks it had in flight — a few hundred at most (a driver holds that
 * many at once) — and they may have finished a moment before; 4,096 ids (~100 bytes each) cover
 * that many times over. The result bytes themselves stay in the blob store.
 */
export const TASK_RESULTS_REMEMBERED_MAX = 4096

/** Task ids in one task-locate request: a driver holds at most a few hundred tasks in flight
 *  (the scheduler's pendingMax), so 1,024 covers a takeover in one message per peer. */
export const TASK_LOCATE_IDS_MAX = 1024
/** A locate frame: 1,024 ids of ~60 characters, with room. */
const TASK_LOCATE_FRAME_BYTES_MAX = 256 * 1024

/** What one execution of a task here produced (shared by everyone who asked for it). */
interface Executed {
  resultCid: CID
  bytesLength: number
  /** The result's bytes, for the answers of this execution's own callers (not kept once remembered). */
  bytes?: Uint8Array
  queueMs: number
  fetchMs: number
  runMs: number
}

/** Wait for `promise`, or stop waiting (AbortedError) when `signal` aborts: a joiner's cancel does not cancel the shared run. */
async function abortable<T> (promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) throw new AbortedError('the task was cancelled', { cause: signal.reason })
  return await new Promise<T>((resolve, reject) => {
    const onAbort = (): void => { reject(new AbortedError('the task was cancelled', { cause: signal.reason })) }
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => { signal.removeEventListener('abort', onAbort) })
  })
}

/** Task frames carry arguments and the inputs list, or an inline result; each is capped below this. */
const TASK_FRAME_BYTES_MAX = Math.max(TASK_ARGS_BYTES_MAX + TASK_INPUTS_FRAME_BYTES_MAX, RESULT_INLINE_BYTES_MAX) + 4096
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

/**
 * Input blobs being fetched at once for one remote caller's tasks. A task with several inputs
 * fetches up to this many side by side; a caller that names peers that never answer ties up this
 * many fetches, for at most INPUT_FETCH_SOURCE_TIMEOUT_MS per peer named, and never a slot. One
 * past it is refused at once with the retryable PeerBusyError, as for code fetches
 * (CODE_FETCHES_PER_PEER_MAX in src/net/function-service.ts).
 */
export const INPUT_FETCHES_PER_PEER_MAX = 4
/**
 * Input fetches for all remote callers together: two callers at full budget. Each fetch holds the
 * whole blob in memory to hash it (at most the store's 64 MiB), so this bounds that memory to
 * 512 MiB in the worst case.
 */
export const INPUT_FETCHES_MAX = 8
/**
 * How long one named peer has to deliver one input: the largest blob (64 MiB) at about 4 Mbit/s
 * takes ~134 s. A peer that has not delivered by then is stalled or gone, and the next is asked.
 * (The blob protocol's own per-range deadline ends a peer that stops answering far sooner.)
 */
export const INPUT_FETCH_SOURCE_TIMEOUT_MS = 150_000
/**
 * Bytes of a task's resolved inputs together, as stored: the largest value the sandbox produces
 * (LIMITS_CEILING.outputBytesMax, 64 MiB) — one task's output can feed the next whole, and a
 * task cannot pull several maximal values into one sandbox call.
 */
export const TASK_INPUT_BYTES_MAX = 64 * 1024 * 1024

/** No peer named for an input served it (and this peer does not hold it). Retryable: it may be served later or elsewhere. */
export class InputUnavailableError extends RhizomeError {
  readonly cid: string
  readonly peersTried: string[]
  constructor (cid: string, peersTried: string[], options: RhizomeErrorOptions = {}) {
    const tried = peersTried.length === 0 ? 'no peer was named that could serve it' : `tried ${peersTried.join(', ')}`
    super('ERR_INPUT_UNAVAILABLE', `task input ${cid} could not be fetched: ${tried}`, {
      retryable: true,
      hint: 'name a peer that holds the input (or run the task on one), and check that it is reachable; `rhizome blob get` on a holder shows whether it still has it',
      ...options
    })
    this.name = 'InputUnavailableError'
    this.cid = cid
    this.peersTried = peersTried
  }
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
  blobs: Pick<BlobStore, 'put' | 'putCached' | 'has' | 'get'>
  /** Fetch a blob from a peer, verify and store it (BlobService.fetch). */
  fetchBlob: (peer: PeerId, cid: CID, options: { signal: AbortSignal }) => Promise<Uint8Array>
  /** Sign with this peer's key (PrivateKey.sign). */
  sign: (bytes: Uint8Array) => Uint8Array | Promise<Uint8Array>
  selfId: PeerId
  /** Open (or reuse) a connection to `peer`; the caller bounds it with `dialTimeoutMs`. */
  dial: (peer: PeerId, options: { signal: AbortSignal }) => Promise<unknown>
  /**
   * Whether an open connection to `peer` exists now. A call to such a peer skips `dial`: asking
   * libp2p to dial a connected peer costs ~70 µs of lookups per task for nothing. Absent: always dial.
   */
  connected?: (peer: PeerId) => boolean
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

/** What a call by reference returns: the verified attestation's facts, no value. */
export interface RefResult {
  taskId: string
  resultCid: string
  peer: string
  /** The worker's signature over (task, result, peer): kept as provenance and lie proofs. */
  signature: Uint8Array
  timings: TaskTimings & { totalMs: number }
}

export interface CallResult extends RefResult {
  value: unknown
}

export interface TaskCallOptions {
  signal?: AbortSignal
  /** Default the service's `callTimeoutMs`. */
  timeoutMs?: number
  /** Leave the result on the worker: verify the attestation, receive no bytes, return no value. */
  ref?: boolean
  /** Top-level CID-link arguments for the worker to resolve, each with peers that hold it (at most TASK_INPUTS_MAX, INPUT_PEERS_MAX peers each). */
  inputs?: Array<{ cid: string, peers: string[] }>
}

/** How a task this peer answered ended: its result (with the timings its reply carries), a failure's code, or cancelled by its caller. */
export type TaskEnd = { outcome: 'ok', timings: TaskTimings } | { outcome: 'failed', code: string } | { outcome: 'cancelled' }

/** What the worker does with a task beyond running it. */
interface ExecuteOptions {
  ref?: boolean
  inputs?: TaskInput[]
}

export function taskProtocol (networkId: string): string {
  return `/rhizome/${networkId}/task/1.0.0`
}

export class TaskService {
  private readonly components: TaskServiceComponents
  readonly protocol: string
  /** `/rhizome/<net>/task-locate/1.0.0`: which of these tasks are you running, or did you run lately? */
  readonly locateProtocol: string
  private readonly slots: Slots
  /** Input fetches in flight per remote caller and in total. */
  private readonly inputFetches = new PeerBudget({ perPeerMax: INPUT_FETCHES_PER_PEER_MAX, totalMax: INPUT_FETCHES_MAX, what: 'task input fetches' })
  private readonly inflightMax: number
  private readonly callTimeoutMs: number
  private readonly dialTimeoutMs: number
  private readonly serveTimeoutMs: number
  private readonly lifecycle = new Lifecycle('the task service')
  /** Workers' public keys, imported once each, for checking their attestations. */
  private readonly verifier = new Ed25519Verifier()

  constructor (components: TaskServiceComponents, init: TaskServiceInit) {
    this.components = components
    this.protocol = taskProtocol(init.networkId)
    this.locateProtocol = `/rhizome/${init.networkId}/task-locate/1.0.0`
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
          return encodeTaskReply(await this.execute(request.fn, request.export, request.args, peerId, operation.signal, { ref: request.ref, inputs: request.inputs }))
        } catch (err) {
          if (operation.reason === 'stopped') throw this.lifecycle.stoppedError()
          throw err
        } finally {
          operation.release()
        }
      }
    })
    await this.components.rpc.handle({
      protocol: this.locateProtocol,
      frameBytesMax: TASK_LOCATE_FRAME_BYTES_MAX,
      inflightMax: 4,
      handler: async (body) => {
        const ids = (body as { ids?: unknown })?.ids
        if (!Array.isArray(ids) || ids.length > TASK_LOCATE_IDS_MAX || !ids.every(id => typeof id === 'string' && id.length <= 128)) {
          throw new ProtocolViolationError(`a task-locate request is { ids: [...] } with at most ${TASK_LOCATE_IDS_MAX} task ids`)
        }
        return { held: this.holds(ids as string[]) }
      }
    })
  }

  /** Stop serving, and abort tasks in flight: fetching, queued, running, or called on other peers. */
  async stop (): Promise<void> {
    this.lifecycle.stop()
    await this.components.rpc.unhandle(this.protocol)
    await this.components.rpc.unhandle(this.locateProtocol)
  }

  /** Which of `ids` this peer is running or ran lately (and would answer without running again). */
  holds (ids: string[]): string[] {
    return ids.filter(id => this.running.has(id) || this.remembered.has(id))
  }

  /** Ask `peer` which of `ids` it holds (see `holds`). */
  async locate (peer: PeerId, ids: string[], options: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<string[]> {
    if (ids.length === 0) return []
    if (peer.equals(this.components.selfId)) return this.holds(ids)
    const reply = await this.components.rpc.request(peer, this.locateProtocol, { ids: ids.slice(0, TASK_LOCATE_IDS_MAX) }, options)
    const held = (reply as { held?: unknown })?.held
    if (!Array.isArray(held) || held.length > TASK_LOCATE_IDS_MAX || !held.every(id => typeof id === 'string' && id.length <= 128)) {
      throw new ProtocolViolationError('a task-locate answer must be { held: [task id, ...] }')
    }
    const asked = new Set(ids)
    return (held as string[]).filter(id => asked.has(id))
  }

  /** Input fetches in flight now: for `peer`'s tasks if given, else for all. */
  inputFetchesInflight (peer?: PeerId): number {
    return this.inputFetches.held(peer?.toString())
  }

  /**
   * Run a task here: load the function and its inputs, queue for a slot, run it, attest the
   * result. A task is named by its id (the CID of function, export and arguments) and tasks are
   * pure, so one this peer is running already is JOINED, not run again, and one it ran lately is
   * answered from the result it stored (TASK_RESULTS_REMEMBERED_MAX). This is how a run that
   * changed driver gets back the tasks its old driver had sent here: the new driver asks again,
   * and the answer costs no second execution.
   */
  async execute (fn: CID, exportName: string, args: unknown[], caller: PeerId, signal: AbortSignal, options: ExecuteOptions = {}): Promise<TaskReply> {
    try {
      const reply = await this.answer(fn, exportName, args, caller, signal, options)
      this.ended({ outcome: 'ok', timings: reply.timings })
      return reply
    } catch (err) {
      this.ended(signal.aborted ? { outcome: 'cancelled' } : { outcome: 'failed', code: err instanceof RhizomeError ? err.code : 'ERR_INTERNAL' })
      throw err
    }
  }

  private readonly endListeners = new Set<(end: TaskEnd) => void>()

  /** Be told of every task this peer answers as a worker: its outcome, and its timings if it ran (the peer's metrics). */
  onTaskEnd (listener: (end: TaskEnd) => void): () => void {
    this.endListeners.add(listener)
    return () => { this.endListeners.delete(listener) }
  }

  private ended (end: TaskEnd): void {
    for (const listener of this.endListeners) listener(end)
  }

  private async answer (fn: CID, exportName: string, args: unknown[], caller: PeerId, signal: AbortSignal, options: ExecuteOptions): Promise<TaskReply> {
    const id = await taskId(fn, exportName, args)
    const key = id.toString()
    const t0 = performance.now()
    const remembered = this.remembered.get(key)
    let done: Executed
    if (remembered !== undefined && await this.components.blobs.has(remembered.resultCid)) {
      this.components.log.info('task answered from an earlier run', { task: key, result: remembered.resultCid.toString() })
      done = { ...remembered, fetchMs: 0, queueMs: 0 }
    } else {
      const running = this.running.get(key)
      if (running !== undefined) {
        this.components.log.info('task joined a run in progress', { task: key })
        done = await abortable(running, signal)
      } else {
        const execution = this.executeOnce(id, fn, exportName, args, caller, signal, options, t0)
        this.running.set(key, execution)
        try {
          done = await execution
        } finally {
          this.running.delete(key)
        }
        this.remember(key, done)
      }
    }
    const self = this.components.selfId.toString()
    const signature = await this.components.sign(attestationSigningBytes(id, done.resultCid, self))
    const reply: TaskReply = {
      attestation: { task: id, result: done.resultCid, peer: self, signature },
      timings: { queueMs: done.queueMs, fetchMs: done.fetchMs, runMs: done.runMs }
    }
    // By reference, the result stays here (it is in the blob store) and only its CID travels.
    if (options.ref !== true && done.bytesLength <= RESULT_INLINE_BYTES_MAX) reply.result = done.bytes ?? await this.components.blobs.get(done.resultCid)
    return reply
  }

  /** Tasks running here by id: a second ask for one joins it. */
  private readonly running = new Map<string, Promise<Executed>>()
  /** Tasks run here lately by id, oldest first (a Map keeps insertion order). */
  private readonly remembered = new Map<string, Executed>()

  private remember (key: string, done: Executed): void {
    this.remembered.delete(key)
    this.remembered.set(key, { resultCid: done.resultCid, bytesLength: done.bytesLength, queueMs: done.queueMs, fetchMs: done.fetchMs, runMs: done.runMs })
    if (this.remembered.size > TASK_RESULTS_REMEMBERED_MAX) this.remembered.delete(this.remembered.keys().next().value as string)
  }

  private async executeOnce (id: CID, fn: CID, exportName: string, args: unknown[], caller: PeerId, signal: AbortSignal, options: ExecuteOptions, t0: number): Promise<Executed> {
    const { sandbox, blobs, log } = this.components
    // Refuse at once when the queue is full, before fetching anything for a task we cannot run.
    this.slots.checkRoom()
    let release: (() => void) | undefined
    try {
      // Outside the slot: a fetch waits on the caller (or other peers), not on this peer's CPU.
      const loaded = await this.components.loadFunction(fn, { requester: caller, signal })
      if (!loaded.manifest.exports.includes(exportName)) {
        throw new InvalidInputError(`function ${fn.toString()} has no export ${JSON.stringify(exportName)}; it exports ${loaded.manifest.exports.join(', ')}`, { hint: 'call one of the exports listed; `rhizome functions` shows them' })
      }
      if (loaded.manifest.kind === 'workflow') throw new WorkflowNotCallableError(fn.toString(), exportName)
      // Also outside the slot: inputs are made local (fetched into the store) before we queue.
      const resolved = await this.fetchInputs(args, options.inputs ?? [], caller, signal)
      const t1 = performance.now()
      release = await this.slots.acquire(signal)
      const t2 = performance.now()
      const callArgs = await this.resolveArgs(args, resolved, signal)
      log.debug('task started', { task: id.toString(), fn: fn.toString(), export: exportName, caller: caller.toString() })
      const outcome = await sandbox.run({
        functionId: fn.toString(),
        kind: loaded.manifest.kind,
        code: loaded.code,
        exportName,
        args: callArgs,
        seed: id.bytes,
        limits: loaded.manifest.limits
      }, { signal })
      const t3 = performance.now()
      // Re-computable (the function gives it again), so no disk sync waits on it: see putCached.
      const resultCid = await blobs.putCached(outcome.bytes, dagCbor.code)
      log.info('task done', { task: id.toString(), fn: fn.toString(), export: exportName, result: resultCid.toString(), runMs: Math.round(t3 - t2) })
      return { resultCid, bytesLength: outcome.bytes.byteLength, bytes: outcome.bytes, queueMs: t2 - t1, fetchMs: t1 - t0, runMs: t3 - t2 }
    } catch (err) {
      if (signal.aborted) log.info('task cancelled', { task: id.toString(), fn: fn.toString(), export: exportName })
      throw err
    } finally {
      release?.()
    }
  }

  /**
   * The top-level arguments that are CID links listed in `inputs`, made local: found in the blob
   * store, or fetched from the peers named for them, in order, several inputs at once. Returns
   * the CIDs to resolve once the task holds a slot. Costs a remote caller its fetch budget.
   */
  private async fetchInputs (args: unknown[], inputs: TaskInput[], caller: PeerId, signal: AbortSignal): Promise<Set<string>> {
    const resolved = new Set<string>()
    if (inputs.length === 0) return resolved
    const peersOf = new Map<string, string[]>()
    for (const input of inputs) if (!peersOf.has(input.cid.toString())) peersOf.set(input.cid.toString(), input.peers)
    const wanted = new Map<string, CID>()
    for (const arg of args) {
      if (!(arg instanceof CID) || !peersOf.has(arg.toString())) continue
      if (!isValueCodec(arg.code)) throw new InvalidInputError(`task input ${arg.toString()} has codec 0x${arg.code.toString(16)}; only dag-cbor values and raw blobs can be inputs`, { hint: 'pass a CID of a dag-cbor value (a task result) or of a raw blob (`rhizome blob put`)' })
      wanted.set(arg.toString(), arg)
      resolved.add(arg.toString())
    }
    const missing: CID[] = []
    for (const cid of wanted.values()) if (!await this.components.blobs.has(cid)) missing.push(cid)
    if (missing.length === 0) return resolved
    // A remote caller pays for what it makes us fetch: units taken at once, all or none, before any work.
    const remote = !caller.equals(this.components.selfId)
    const parallel = Math.min(missing.length, INPUT_FETCHES_PER_PEER_MAX)
    const releases: Array<() => void> = []
    try {
      if (remote) for (let i = 0; i < parallel; i++) releases.push(this.inputFetches.tryAcquire(caller.toString()))
      // One input that cannot be had ends the task: the others stop fetching.
      const failed = new AbortController()
      const fetchSignal = AbortSignal.any([signal, failed.signal])
      let next = 0
      const worker = async (): Promise<void> => {
        while (next < missing.length) {
          const cid = missing[next++]
          await this.fetchInput(cid, peersOf.get(cid.toString()) ?? [], fetchSignal)
        }
      }
      const workers = Array.from({ length: parallel }, async () => await worker().catch((err: unknown) => { failed.abort(); throw err }))
      const outcomes = await Promise.allSettled(workers)
      if (signal.aborted) throw new AbortedError('the task was cancelled while fetching its inputs', { cause: signal.reason })
      // The first failure is the cause; the others were stopped by it.
      const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected' && !(o.reason instanceof AbortedError)) ??
        outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected')
      if (failure !== undefined) throw failure.reason
      return resolved
    } finally {
      for (const release of releases) release()
    }
  }

  /** One input from the peers named for it, in order, each within INPUT_FETCH_SOURCE_TIMEOUT_MS; fetched bytes are verified and kept. */
  private async fetchInput (cid: CID, peers: string[], signal: AbortSignal): Promise<void> {
    const tried: string[] = []
    let lastError: unknown
    for (const name of peers) {
      if (name === this.components.selfId.toString()) continue // we looked in our store already
      let peer: PeerId
      try {
        peer = peerIdFromString(name)
      } catch (err) {
        throw new ProtocolViolationError(`task input ${cid.toString()} names ${JSON.stringify(name)}, which is not a peer id`, { cause: err })
      }
      tried.push(name)
      const operation = this.lifecycle.operation({ signal, timeoutMs: INPUT_FETCH_SOURCE_TIMEOUT_MS })
      try {
        await this.components.fetchBlob(peer, cid, { signal: operation.signal })
        this.components.log.info('task input fetched', { input: cid.toString(), from: name })
        return
      } catch (err) {
        if (operation.reason === 'stopped') throw this.lifecycle.stoppedError()
        if (operation.reason === 'cancelled') throw new AbortedError(`fetching task input ${cid.toString()} was cancelled`, { cause: err })
        lastError = operation.reason === 'timeout'
          ? new TimeoutError(`${name} did not deliver task input ${cid.toString()} within ${INPUT_FETCH_SOURCE_TIMEOUT_MS} ms`, { cause: err })
          : err
        this.components.log.debug('task input source failed', { input: cid.toString(), from: name, error: (lastError as Error).message })
      } finally {
        operation.release()
      }
    }
    throw new InputUnavailableError(cid.toString(), tried, { cause: lastError })
  }

  /**
   * The arguments the function sees: each resolved input read back from the store and decoded
   * under the limits of src/wire/value.ts, the rest as they came. The inputs' bytes together are
   * bounded by TASK_INPUT_BYTES_MAX.
   */
  private async resolveArgs (args: unknown[], resolved: Set<string>, signal: AbortSignal): Promise<unknown[]> {
    if (resolved.size === 0) return args
    let bytesTotal = 0
    const out: unknown[] = []
    for (const arg of args) {
      if (!(arg instanceof CID) || !resolved.has(arg.toString())) { out.push(arg); continue }
      const bytes = await this.components.blobs.get(arg, { signal })
      bytesTotal += bytes.byteLength
      if (bytesTotal > TASK_INPUT_BYTES_MAX) {
        throw new TooLargeError('the task\'s inputs together', bytesTotal, TASK_INPUT_BYTES_MAX, { hint: 'pass fewer or smaller inputs by reference, or split the work into more tasks' })
      }
      try {
        out.push(decodeLinkedValue(arg.code, bytes, `task input ${arg.toString()}`))
      } catch (err) {
        // The bytes are what the CID names (verified): the caller named something that is no value.
        if (err instanceof MalformedValueError) throw new InvalidInputError(err.message, { cause: err, hint: 'an input must be the CID of a dag-cbor value within the limits in docs/LIMITS.md, or of a raw blob' })
        throw err
      }
    }
    return out
  }

  /**
   * Call `fn.exportName(...args)` on `peer` (this peer if it is us) and verify the answer. With
   * `ref: true` the result stays on the worker and only its CID comes back. Ends with
   * AbortedError on the caller's signal or stop(), TimeoutError past `timeoutMs`.
   */
  async call (fn: CID, exportName: string, args: unknown[], peer: PeerId, options: TaskCallOptions & { ref: true }): Promise<RefResult>
  async call (fn: CID, exportName: string, args: unknown[], peer: PeerId, options?: TaskCallOptions & { ref?: false }): Promise<CallResult>
  async call (fn: CID, exportName: string, args: unknown[], peer: PeerId, options?: TaskCallOptions): Promise<RefResult | CallResult>
  async call (fn: CID, exportName: string, args: unknown[], peer: PeerId, options: TaskCallOptions = {}): Promise<RefResult | CallResult> {
    const argsBytes = dagCbor.encode(args).byteLength
    if (argsBytes > TASK_ARGS_BYTES_MAX) throw new InvalidInputError(`arguments are ${argsBytes} bytes encoded; at most ${TASK_ARGS_BYTES_MAX} ride in a task (put larger inputs in blobs)`, { hint: 'store large inputs with `rhizome blob put FILE` and pass the CID as an argument' })
    const execute: ExecuteOptions = { ref: options.ref === true, inputs: parseCallInputs(options.inputs ?? []) }
    if (this.lifecycle.stopping) throw this.lifecycle.stoppedError()
    const timeoutMs = options.timeoutMs ?? this.callTimeoutMs
    const operation = this.lifecycle.operation({ signal: options.signal, timeoutMs })
    try {
      return await this.callUnder(fn, exportName, args, peer, timeoutMs, operation.signal, execute)
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

  private async callUnder (fn: CID, exportName: string, args: unknown[], peer: PeerId, timeoutMs: number, signal: AbortSignal, options: ExecuteOptions): Promise<RefResult | CallResult> {
    const t0 = performance.now()
    const id = await taskId(fn, exportName, args)
    const local = peer.equals(this.components.selfId)
    let body: unknown
    if (local) {
      body = encodeTaskReply(await this.execute(fn, exportName, args, this.components.selfId, signal, options))
    } else {
      if (this.components.connected?.(peer) !== true) await this.reach(peer, signal)
      body = await this.components.rpc.request(peer, this.protocol, encodeTaskRequest({ fn, export: exportName, args, ...options }), { signal, timeoutMs })
    }
    let reply: TaskReply
    let value: unknown
    try {
      reply = parseTaskReply(body)
      await this.verifyAttestation(reply, id, peer)
      if (options.ref !== true) {
        const bytes = await this.resultBytes(reply, peer, signal)
        value = decodeRemoteValue(bytes, `the result of task ${id.toString()} from ${peer.toString()}`)
      } else if (reply.result !== undefined) {
        // A worker that predates `ref` sends small results anyway: checked like any other, then kept.
        await this.checkInline(reply.result, reply.attestation.result)
        decodeRemoteValue(reply.result, `the result of task ${id.toString()} from ${peer.toString()}`)
      }
      // Kept only once it decodes: a blob store is no place for a hostile worker's garbage.
      if (reply.result !== undefined) await this.components.blobs.putCached(reply.result, dagCbor.code)
    } catch (err) {
      if (!local && (err instanceof AttestationInvalidError || err instanceof ProtocolViolationError)) this.components.onViolation(peer, this.protocol, err)
      throw err
    }
    const result: RefResult = {
      taskId: id.toString(),
      resultCid: reply.attestation.result.toString(),
      peer: peer.toString(),
      signature: reply.attestation.signature,
      timings: { ...reply.timings, totalMs: performance.now() - t0 }
    }
    return options.ref === true ? result : { ...result, value }
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

  /** The attestation names this task and this peer, is signed by that peer, and attests a dag-cbor result. */
  private async verifyAttestation (reply: TaskReply, id: CID, peer: PeerId): Promise<void> {
    const { attestation } = reply
    if (!attestation.task.equals(id)) throw new AttestationInvalidError(`the worker attested task ${String(attestation.task)}, not ${String(id)}`)
    if (attestation.peer !== peer.toString()) throw new AttestationInvalidError(`the attestation names ${attestation.peer}, not the worker ${peer.toString()}`)
    // The worker is `peer`, whose id embeds its key: the id we dialled, not one the reply names.
    const key = peer.publicKey
    if (key === undefined) throw new AttestationInvalidError(`peer id ${attestation.peer} does not embed its public key`)
    const valid = key.type === 'Ed25519'
      ? this.verifier.verify(attestation.peer, key.raw, attestationSigningBytes(attestation.task, attestation.result, attestation.peer), attestation.signature)
      : await key.verify(attestationSigningBytes(attestation.task, attestation.result, attestation.peer), attestation.signature)
    if (!valid) throw new AttestationInvalidError(`the attestation signature does not verify against ${attestation.peer}`)
    if (attestation.result.code !== dagCbor.code) throw new ProtocolViolationError('attested result must be a dag-cbor CID')
  }

  /** Inline result bytes hash to the attested result CID. */
  private async checkInline (bytes: Uint8Array, attested: CID): Promise<void> {
    const digest = await sha256.digest(bytes)
    if (!CID.create(1, dagCbor.code, digest).equals(attested)) throw new AttestationInvalidError('the result bytes do not hash to the attested result CID')
  }

  /** The attested result's bytes: inline (checked), held here already, or fetched from the worker (verified). */
  private async resultBytes (reply: TaskReply, peer: PeerId, signal: AbortSignal): Promise<Uint8Array> {
    const { attestation } = reply
    if (reply.result !== undefined) {
      await this.checkInline(reply.result, attestation.result)
      return reply.result
    }
    if (await this.components.blobs.has(attestation.result)) return await this.components.blobs.get(attestation.result)
    return await this.components.fetchBlob(peer, attestation.result, { signal })
  }
}

/** A caller's `inputs`, checked against the limits a worker enforces, so nonsense fails here and by name. */
function parseCallInputs (inputs: Array<{ cid: string, peers: string[] }>): TaskInput[] {
  if (inputs.length > TASK_INPUTS_MAX) throw new InvalidInputError(`${inputs.length} inputs named; a task takes at most ${TASK_INPUTS_MAX}`, { hint: 'pass fewer arguments by reference: gather them into one value, or split the work' })
  return inputs.map(({ cid, peers }) => {
    let parsed: CID
    try {
      parsed = CID.parse(cid)
    } catch (err) {
      throw new InvalidInputError(`input ${JSON.stringify(cid)} is not a CID`, { cause: err, hint: 'name each input by the CID a call by reference returned' })
    }
    if (peers.length > INPUT_PEERS_MAX) throw new InvalidInputError(`input ${cid} names ${peers.length} peers; at most ${INPUT_PEERS_MAX} are asked`, { hint: 'name the peers most likely to hold it first, and at most that many' })
    for (const peer of peers) {
      try {
        peerIdFromString(peer)
      } catch (err) {
        throw new InvalidInputError(`input ${cid} names ${JSON.stringify(peer)}, which is not a peer id`, { cause: err, hint: 'name peers by the ids `rhizome peers` shows' })
      }
    }
    return { cid: parsed, peers: [...peers] }
  })
}
