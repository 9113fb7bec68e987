/**
 * Functions on the network: deploy, replicate, locate, load.
 *
 * A function is two blobs — its code and its manifest (exports, limits, determinism) — and its
 * id is the manifest's CID. Deploying stores both and asks the `replicas` owners of the id
 * (rendezvous hashing over the live membership, src/protocol/placement.ts) to pull them, then
 * announces the id in the DHT. Any peer can later find the function without asking the
 * deployer: it computes the same owners from its own view, asks them, and falls back to DHT
 * providers. Whatever arrives is verified against its CID before it is kept.
 *
 * Protocol `/rhizome/<net>/fn/1.0.0` (RPC): `{ op: 'replicate', fn: CID }` asks a peer to pull
 * the function from the caller; it answers `{ held: true }` once both blobs are stored.
 *
 * Fetching on behalf of another peer (it asked us to run or replicate a function we lack) is work
 * that peer can make us do for free, so it is bounded apart from everything else: a budget of
 * concurrent fetches per requesting peer and in total (the excess is refused at once with the
 * retryable `PeerBusyError`), and a deadline per source. A requester that accepts our request for
 * the code it asked us to run and then does not serve it — no answer in time, or bytes that do not
 * verify — is reported through `onMisbehaviour`; one that honestly answers "not found" is not.
 */
import { CID } from 'multiformats/cid'
import * as dagCbor from '@ipld/dag-cbor'
import { sha256 } from 'multiformats/hashes/sha2'
import { decodeManifest, manifestCid } from '../functions/manifest.ts'
import { AbortedError, InvalidInputError, NotFoundError, ProtocolViolationError, RhizomeError, TimeoutError } from '../model/errors.ts'
import { rendezvousOwners } from '../protocol/placement.ts'
import { BoundedCache } from '../model/bounded-cache.ts'
import { REPLICAS_MAX } from '../model/limits.ts'
import { asCid, isRecord } from '../wire/rpc.ts'
import { BlobHashMismatchError } from '../store/errors.ts'
import { PeerBudget } from './slots.ts'
import type { FunctionManifest } from '../functions/manifest.ts'
import type { Logger } from '../model/log.ts'
import type { FunctionRepo, FunctionOrigin, FunctionRow, BlobStore } from '../store/index.ts'
import { Lifecycle } from './lifecycle.ts'
import type { Operation } from './lifecycle.ts'
import type { RpcService } from './rpc.ts'
import type { ContentRouting, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'

/** Default copies of a deployed function: survives two peers leaving at once. */
export const REPLICAS_DEFAULT = 3
/** More copies than this is a broadcast, not replication (src/model/limits.ts; clients check it early). */
export { REPLICAS_MAX }
/** Sources tried when locating a function before giving up. */
const LOCATE_SOURCES_MAX = 8
/** A DHT lookup on a small network answers in well under this; past it we stop waiting. */
const DHT_TIMEOUT_MS = 5000
/**
 * How long a deploy waits for one owner to pull the function: its whole fetch from us, which is
 * bounded by `CODE_FETCH_SOURCE_TIMEOUT_MS` per source, several sources, and slack.
 */
export const REPLICATE_TIMEOUT_MS = 60_000
/** Announcing a provider record walks the DHT to the closest peers: seconds, and nobody waits on it. */
export const PROVIDE_TIMEOUT_MS = 30_000
const FN_FRAME_BYTES_MAX = 4096
/**
 * Loaded functions kept in memory, so a warm task does not re-read and re-hash its code from
 * disk on every call. 64 entries / 64 MiB: the sandbox keeps compiled code for as many.
 */
export const LOADED_CACHE_ENTRIES_MAX = 64
export const LOADED_CACHE_BYTES_MAX = 64 * 1024 * 1024
/**
 * Tasks (or replicate requests) of one remote peer that may wait on a code fetch at once. A
 * caller's first burst to a peer that lacks the function gets a few waiting on the one fetch;
 * the rest are refused at once and placed elsewhere. A peer that stalls its fetches ties up at
 * most this many, for at most `CODE_FETCH_SOURCE_TIMEOUT_MS` each, and never a task slot.
 */
export const CODE_FETCHES_PER_PEER_MAX = 4
/**
 * Waits on code fetches for all remote peers together: four such peers at full budget. Each
 * distinct fetch may buffer a whole module (up to 16 MiB of wasm), so this also bounds memory.
 */
export const CODE_FETCHES_MAX = 16
/**
 * How long one source has to deliver a function (manifest and code). A 4 MiB bundle at 4 Mbit/s
 * arrives in about 8 s; a source that has not delivered by then is stalled or hostile, and the
 * next source is asked.
 */
export const CODE_FETCH_SOURCE_TIMEOUT_MS = 10_000

export class FunctionNotFoundError extends RhizomeError {
  constructor (fn: string, tried: number) {
    super('ERR_FUNCTION_NOT_FOUND', `function ${fn} was not found on any of ${tried} peer(s) asked`, {
      retryable: true,
      hint: 'deploy it with `rhizome deploy`, or wait until a peer that holds it is reachable'
    })
    this.name = 'FunctionNotFoundError'
  }
}

export class ManifestMismatchError extends RhizomeError {
  constructor (message: string) {
    super('ERR_MANIFEST_MISMATCH', message, { hint: 'the code and manifest do not belong together; bundle and deploy again' })
    this.name = 'ManifestMismatchError'
  }
}

/** A peer asked us to run (or replicate) a function, then did not serve its code when asked. */
export class CodeNotServedError extends ProtocolViolationError {
  constructor (fn: string, peer: string, options: { cause?: unknown } = {}) {
    super(`peer ${peer} asked for function ${fn} to be run here but did not serve its code`, {
      ...options,
      hint: 'a caller must serve the code it asks a peer to run, or answer that it does not hold it'
    })
    this.name = 'CodeNotServedError'
  }
}

export interface LoadedFunction {
  cid: CID
  manifest: FunctionManifest
  code: Uint8Array
  /** Whether it had to be fetched from another peer for this call. */
  fetched: boolean
}

/** What a deploy answers: defined once, in the API contract. */
export type { DeployResult } from '../api/types.ts'
import type { DeployResult } from '../api/types.ts'

/** What the function service needs; nothing here is another whole service. */
export interface FunctionServiceComponents {
  rpc: Pick<RpcService, 'handle' | 'unhandle' | 'request'>
  blobs: Pick<BlobStore, 'has' | 'get' | 'put'>
  /** Fetch a blob from a peer, verify it against its CID and store it (BlobService.fetch). */
  fetchBlob: (peer: PeerId, cid: CID, options: { signal: AbortSignal }) => Promise<Uint8Array>
  functions: Pick<FunctionRepo, 'add' | 'get' | 'byName' | 'list'>
  contentRouting: Pick<ContentRouting, 'findProviders' | 'provide'>
  selfId: PeerId
  /** Peer ids currently alive in the membership view (not including this peer). */
  alivePeers: () => string[]
  log: Logger
  /** A requesting peer did not serve the code it asked us to run; the shell scores it. */
  onViolation: (peer: PeerId, protocol: string, reason: Error) => void
  now?: () => number
}

export interface FunctionServiceInit {
  networkId: string
  /** Default CODE_FETCH_SOURCE_TIMEOUT_MS. */
  fetchSourceTimeoutMs?: number
  /** Default REPLICATE_TIMEOUT_MS. */
  replicateTimeoutMs?: number
}

export interface LoadOptions {
  /**
   * The remote peer on whose behalf the function is loaded (a task's caller, a replicate
   * request's sender). It is asked first, its fetches count against its budget, and its failure
   * to serve is reported. Absent (or this peer) for our own calls: no budget applies.
   */
  requester?: PeerId
  origin?: FunctionOrigin
  signal?: AbortSignal
}

export function fnProtocol (networkId: string): string {
  return `/rhizome/${networkId}/fn/1.0.0`
}

/** A replicate request from a peer: `{ op: 'replicate', fn: CID }`. Throws ProtocolViolationError for anything else. */
export function parseReplicateRequest (body: unknown): { fn: CID } {
  if (!isRecord(body) || body.op !== 'replicate') throw new ProtocolViolationError('fn request must be { op: "replicate", fn }')
  return { fn: asCid(body.fn, 'fn request fn') }
}

export class FunctionService {
  private readonly components: FunctionServiceComponents
  readonly protocol: string
  private readonly fetchSourceTimeoutMs: number
  private readonly replicateTimeoutMs: number
  private readonly lifecycle = new Lifecycle('the function service')
  /** Loads in progress, by function and requester: one requester's stalled fetch never holds up another's. */
  private readonly loading = new Map<string, Promise<LoadedFunction>>()
  private readonly fetches = new PeerBudget({ perPeerMax: CODE_FETCHES_PER_PEER_MAX, totalMax: CODE_FETCHES_MAX, what: 'code fetches' })
  private readonly loaded = new BoundedCache<string, LoadedFunction>({
    entriesMax: LOADED_CACHE_ENTRIES_MAX, bytesMax: LOADED_CACHE_BYTES_MAX, sizeOf: fn => fn.code.byteLength
  })

  constructor (components: FunctionServiceComponents, init: FunctionServiceInit) {
    this.components = components
    this.protocol = fnProtocol(init.networkId)
    this.fetchSourceTimeoutMs = init.fetchSourceTimeoutMs ?? CODE_FETCH_SOURCE_TIMEOUT_MS
    this.replicateTimeoutMs = init.replicateTimeoutMs ?? REPLICATE_TIMEOUT_MS
  }

  async start (): Promise<void> {
    this.lifecycle.start()
    await this.components.rpc.handle({
      protocol: this.protocol,
      frameBytesMax: FN_FRAME_BYTES_MAX,
      inflightMax: 4,
      handler: async (body, { peerId, signal }) => {
        const { fn } = parseReplicateRequest(body)
        await this.load(fn, { requester: peerId, origin: 'replica', signal })
        this.provide(fn)
        return { held: true }
      }
    })
  }

  /** Stop serving, and abort loads, fetches, replications and DHT work in flight. */
  async stop (): Promise<void> {
    this.lifecycle.stop()
    await this.components.rpc.unhandle(this.protocol)
  }

  /** Store a function deployed on this peer and replicate it. Same code twice: same id, no work. */
  async deploy (manifestBytes: Uint8Array, code: Uint8Array, replicas: number, signal?: AbortSignal): Promise<DeployResult> {
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > REPLICAS_MAX) throw new InvalidInputError(`replicas must be an integer from 1 to ${REPLICAS_MAX}`, { hint: `e.g. --replicas 3 (the default); at most ${REPLICAS_MAX}` })
    if (this.lifecycle.stopping) throw this.lifecycle.stoppedError()
    const manifest = decodeManifest(manifestBytes)
    const cid = await manifestCid(manifestBytes)
    await this.checkCode(manifest, code)
    const { blobs, functions, selfId } = this.components
    const known = functions.get(cid.toString())
    await blobs.put(code)
    await blobs.put(manifestBytes, dagCbor.code)
    this.index(cid, manifest, 'deploy')

    const owners = rendezvousOwners(cid.toString(), [selfId.toString(), ...this.components.alivePeers()], replicas)
    const results = await Promise.all(owners.map(async peer => {
      if (peer === selfId.toString()) return { peer, ok: true }
      const operation = this.lifecycle.operation({ signal, timeoutMs: this.replicateTimeoutMs })
      try {
        await this.components.rpc.request(peerIdFromString(peer), this.protocol, { op: 'replicate', fn: cid }, { signal: operation.signal, timeoutMs: this.replicateTimeoutMs })
        return { peer, ok: true }
      } catch (err) {
        const error = operation.reason === 'timeout' ? `did not pull the function within ${this.replicateTimeoutMs} ms` : (err as Error).message
        return { peer, ok: false, error }
      } finally {
        operation.release()
      }
    }))
    this.provide(cid)
    return { cid: cid.toString(), name: manifest.name, exports: manifest.exports, alreadyDeployed: known !== undefined, replicas: results }
  }

  /** The functions this peer holds, newest first. */
  list (): FunctionRow[] {
    return this.components.functions.list()
  }

  /** Resolve `fn-id` or a name known to this peer to a CID. */
  resolve (ref: string): CID {
    try {
      return CID.parse(ref)
    } catch {}
    const row = this.components.functions.byName(ref)
    if (row === undefined) throw new NotFoundError(`no function named ${JSON.stringify(ref)} is known to this peer`, { hint: 'pass the function id that `rhizome deploy` printed, or see `rhizome functions`' })
    return CID.parse(row.cid)
  }

  /** The function's manifest and code: local if held, else fetched from a peer that holds it and verified. */
  async load (cid: CID, options: LoadOptions = {}): Promise<LoadedFunction> {
    const key = cid.toString()
    const cached = this.loaded.get(key)
    if (cached !== undefined) return { ...cached, fetched: false }
    if (this.lifecycle.stopping) throw this.lifecycle.stoppedError()
    const requester = options.requester !== undefined && !options.requester.equals(this.components.selfId) ? options.requester : undefined
    // Waiting on a fetch is what a remote peer can make us do for free: its own budget, taken
    // before any work and refused at once when spent. Functions held on disk cost nothing.
    const release = requester !== undefined && !(await this.holds(cid)) ? this.fetches.tryAcquire(requester.toString()) : undefined
    let operation: Operation | undefined
    try {
      const loadKey = `${key}|${requester?.toString() ?? ''}`
      let pending = this.loading.get(loadKey)
      if (pending === undefined) {
        pending = this.loadOnce(cid, { ...options, requester }).then(fn => { this.loaded.set(key, fn); return fn }).finally(() => this.loading.delete(loadKey))
        this.loading.set(loadKey, pending)
      }
      // The load is shared: a caller stops waiting on its own signal, and stop() ends the load
      // itself. The deadline is the longest a load can take: the DHT lookup, then every source.
      operation = this.lifecycle.operation({ signal: options.signal, timeoutMs: DHT_TIMEOUT_MS + LOCATE_SOURCES_MAX * this.fetchSourceTimeoutMs })
      return await untilAborted(pending, operation.signal)
    } finally {
      operation?.release()
      release?.()
    }
  }

  /** Code fetches waiting now: for `peer` if given, else for all peers. */
  fetchesInflight (peer?: PeerId): number {
    return this.fetches.held(peer?.toString())
  }

  /** Whether both blobs of the function are on disk. */
  private async holds (cid: CID): Promise<boolean> {
    const { blobs } = this.components
    if (!await blobs.has(cid)) return false
    try {
      return await blobs.has(decodeManifest(await blobs.get(cid)).code)
    } catch {
      return false // not a manifest: loadOnce reports it
    }
  }

  private async loadOnce (cid: CID, options: LoadOptions): Promise<LoadedFunction> {
    const { blobs } = this.components
    if (await blobs.has(cid)) {
      const manifest = decodeManifest(await blobs.get(cid))
      if (await blobs.has(manifest.code)) {
        return { cid, manifest, code: await blobs.get(manifest.code), fetched: false }
      }
    }
    const { requester } = options
    const sources = await this.sources(cid, requester === undefined ? [] : [requester])
    let lastError: unknown
    for (const peer of sources) {
      const operation = this.lifecycle.operation({ signal: options.signal, timeoutMs: this.fetchSourceTimeoutMs })
      try {
        return await this.fetchFrom(peer, cid, options.origin ?? 'fetched', operation.signal)
      } catch (err) {
        if (operation.reason === 'stopped') throw this.lifecycle.stoppedError()
        if (operation.reason === 'cancelled') throw err
        const failure = operation.reason === 'timeout'
          ? new TimeoutError(`${peer.toString()} did not deliver function ${cid.toString()} within ${this.fetchSourceTimeoutMs} ms`, { cause: err })
          : err
        lastError = failure
        this.components.log.debug('function source failed', { fn: cid.toString(), from: peer.toString(), error: (failure as Error).message })
        if (requester !== undefined && peer.equals(requester) && servedNothing(failure)) {
          this.components.onViolation(requester, this.protocol, new CodeNotServedError(cid.toString(), peer.toString(), { cause: failure }))
        }
      } finally {
        operation.release()
      }
    }
    const notFound = new FunctionNotFoundError(cid.toString(), sources.length)
    if (lastError !== undefined) (notFound as { cause?: unknown }).cause = lastError
    throw notFound
  }

  /** Manifest, then code, from one source; both verified, then indexed. */
  private async fetchFrom (peer: PeerId, cid: CID, origin: FunctionOrigin, signal: AbortSignal): Promise<LoadedFunction> {
    const manifestBytes = await this.components.fetchBlob(peer, cid, { signal })
    const manifest = decodeManifest(manifestBytes)
    const code = await this.components.fetchBlob(peer, manifest.code, { signal })
    await this.checkCode(manifest, code)
    this.index(cid, manifest, origin)
    this.components.log.info('function fetched', { fn: cid.toString(), from: peer.toString(), codeBytes: code.byteLength })
    return { cid, manifest, code, fetched: true }
  }

  /** Where to look: the caller's hints, then the rendezvous owners, then DHT providers. */
  private async sources (cid: CID, hints: PeerId[]): Promise<PeerId[]> {
    const self = this.components.selfId.toString()
    const ids = new Set<string>(hints.map(h => h.toString()))
    for (const owner of rendezvousOwners(cid.toString(), [self, ...this.components.alivePeers()], REPLICAS_MAX)) ids.add(owner)
    if (ids.size - (ids.has(self) ? 1 : 0) < LOCATE_SOURCES_MAX) {
      const operation = this.lifecycle.operation({ timeoutMs: DHT_TIMEOUT_MS })
      try {
        for await (const provider of this.components.contentRouting.findProviders(cid, { signal: operation.signal })) {
          ids.add(provider.id.toString())
          if (ids.size > LOCATE_SOURCES_MAX) break
        }
      } catch {
      } finally {
        operation.release()
      }
    }
    ids.delete(self)
    return [...ids].slice(0, LOCATE_SOURCES_MAX).map(id => peerIdFromString(id))
  }

  private async checkCode (manifest: FunctionManifest, code: Uint8Array): Promise<void> {
    if (code.byteLength !== manifest.codeBytes) throw new ManifestMismatchError(`code is ${code.byteLength} bytes, the manifest says ${manifest.codeBytes}`)
    const codeCid = CID.create(1, manifest.code.code, await sha256.digest(code))
    if (!codeCid.equals(manifest.code)) throw new ManifestMismatchError(`code hashes to ${codeCid.toString()}, the manifest names ${manifest.code.toString()}`)
  }

  private index (cid: CID, manifest: FunctionManifest, origin: FunctionOrigin): void {
    this.components.functions.add({
      cid: cid.toString(),
      name: manifest.name,
      kind: manifest.kind,
      codeCid: manifest.code.toString(),
      codeBytes: manifest.codeBytes,
      exports: manifest.exports,
      addedMs: (this.components.now ?? Date.now)(),
      origin
    })
  }

  private provide (cid: CID): void {
    if (this.lifecycle.stopping) return
    const operation = this.lifecycle.operation({ timeoutMs: PROVIDE_TIMEOUT_MS })
    this.components.contentRouting.provide(cid, { signal: operation.signal }).catch((err: Error) => {
      this.components.log.debug('dht provide failed', { fn: cid.toString(), error: err.message })
    }).finally(() => { operation.release() })
  }
}

/**
 * Whether a source's failure means it did not serve what it holds or claimed: it accepted the
 * request and did not answer in time, or answered with bytes that do not verify. "Not found",
 * "busy" and a dropped connection are honest answers or accidents, not offences.
 */
function servedNothing (err: unknown): boolean {
  return err instanceof TimeoutError || err instanceof ProtocolViolationError || err instanceof ManifestMismatchError || err instanceof BlobHashMismatchError
}

/** `promise`, or AbortedError as soon as `signal` aborts (the work behind the promise is shared and goes on). */
async function untilAborted<T> (promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return await promise
  if (signal.aborted) throw new AbortedError('the load was cancelled')
  let onAbort: (() => void) | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => {
      onAbort = () => reject(new AbortedError('the load was cancelled'))
      signal.addEventListener('abort', onAbort, { once: true })
    })])
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}
