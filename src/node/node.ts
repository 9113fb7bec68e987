/**
 * The composition root: builds a peer from its parts — identity, SQLite, blob store, libp2p
 * host, the membership, blob, function and task protocols, the sandbox, and the local HTTP
 * API — and takes it apart again within a bounded time.
 */
import { rename, rm, writeFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { InvalidInputError, PeerUnavailableError, RhizomeError } from '../model/errors.ts'
import { BlobService } from '../net/blob-service.ts'
import { FunctionService } from '../net/function-service.ts'
import { createHost } from '../net/host.ts'
import { AdmissionService, remoteAddressOf } from '../net/admission-service.ts'
import { MembershipService } from '../net/membership-service.ts'
import { RpcService } from '../net/rpc.ts'
import { TaskService } from '../net/task-service.ts'
import { BLOCK_MS, VIOLATION_SCORE, createAdmission, createBlocklist } from '../protocol/admission/index.ts'
import { ADDRS_MAX, createMembership } from '../protocol/membership/index.ts'
import { PlacementAttempts } from '../protocol/placement.ts'
import { createSandbox } from '../sandbox/index.ts'
import { createBlobStore, createFunctionRepo, createPeerRepo, openDatabase } from '../store/index.ts'
import { apiTokenPath, loadOrCreateApiToken } from './api-token.ts'
import { startHttpApi } from './http-api.ts'
import { ProgressBus } from './progress.ts'
import { loadOrCreateIdentity } from './identity.ts'
import { lockDataDir, prepareDataDir } from './lock.ts'
import { ApiListenError, DatabaseOpenError, ListenError, listenFailures } from './start-errors.ts'
import { VERSION } from '../model/version.ts'
import type { Logger } from '../model/log.ts'
import type { Host } from '../net/host.ts'
import type { CallResult } from '../net/task-service.ts'
import type { Membership, MembershipEvent, PeerEntry } from '../protocol/membership/index.ts'
import type { BlobStore, PeerRepo } from '../store/index.ts'
import type { NodeConfig } from './config.ts'
import type { HttpApi } from './http-api.ts'
import type { ProgressEvent } from '../api/events.ts'
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/** Peers redialed from the last known view on start; the rest arrive through gossip. */
const REDIAL_PEERS_MAX = 8
/** Tasks that may wait per slot: a few seconds of backlog for short tasks, bounded memory. */
const TASK_QUEUE_PER_SLOT = 16
/** A task is tried on at most this many peers before the caller sees the error. */
const CALL_ATTEMPTS_MAX = 3
/** `stop()` gives up waiting for libp2p after this long; a stuck socket must not hang shutdown. */
export const STOP_TIMEOUT_MS = 5000

export interface PeerView extends PeerEntry {
  connected: boolean
}

export interface NodeStatus {
  peerId: string
  version: string
  networkId: string
  dataDir: string
  addrs: string[]
  apiUrl: string
  uptimeMs: number
  connections: number
  peers: { alive: number, suspect: number, gone: number }
  blobs: { count: number }
}

export interface CallOptions {
  on?: string
  timeoutMs?: number
  signal?: AbortSignal
  /** This call's progress events (its attempts), besides the peer-wide `progress` bus. */
  onProgress?: (event: ProgressEvent) => void
}

export interface RhizomeNode {
  readonly peerId: PeerId
  readonly config: NodeConfig
  readonly host: Host
  readonly blobs: BlobStore
  readonly log: Logger
  readonly functions: FunctionService
  readonly tasks: TaskService
  /** Run a task: on `on` if given, else on a peer chosen by placement, retrying retryable failures elsewhere. */
  call: (fn: CID, exportName: string, args: unknown[], options: CallOptions) => Promise<CallResult & { attempts: number }>
  /** Progress events of everything this peer does for its clients (`GET /v1/events`). */
  readonly progress: ProgressBus
  addrs: () => string[]
  status: () => Promise<NodeStatus>
  peers: () => PeerView[]
  apiUrl: () => string
  stop: () => Promise<void>
}

export async function startNode (config: NodeConfig, log: Logger): Promise<RhizomeNode> {
  const startedAt = Date.now()
  await prepareDataDir(config.dataDir)
  const unlock = await lockDataDir(config.dataDir)
  const cleanups: Array<() => Promise<void> | void> = [unlock]
  const cleanup = async (): Promise<void> => {
    for (const fn of cleanups.reverse()) await Promise.resolve().then(fn).catch(() => {})
  }
  try {
    return await assemble(config, log, startedAt, cleanups, cleanup)
  } catch (err) {
    await cleanup()
    throw err
  }
}

async function assemble (config: NodeConfig, log: Logger, startedAt: number, cleanups: Array<() => Promise<void> | void>, cleanup: () => Promise<void>): Promise<RhizomeNode> {
  const { privateKey, created } = await loadOrCreateIdentity(config.dataDir)
  const dbPath = join(config.dataDir, 'rhizome.db')
  let db: ReturnType<typeof openDatabase>
  try {
    db = openDatabase(dbPath)
  } catch (err) {
    if (err instanceof RhizomeError) throw err
    throw new DatabaseOpenError(dbPath, (err as Error).message, { cause: err })
  }
  cleanups.push(() => db.close())
  const peerRepo = createPeerRepo(db)
  const blobs = createBlobStore({ dir: join(config.dataDir, 'blobs'), db })

  const blocklist = createBlocklist()
  const admission = createAdmission({
    connectionsMax: config.connectionsMax,
    connectionsPerAddressMax: config.connectionsPerAddressMax,
    limitLoopback: config.connectionsLimitLoopback
  })
  let host: Host
  try {
    host = await createHost({
      privateKey,
      networkId: config.networkId,
      listen: config.listen,
      bootstrap: config.bootstrap,
      mdns: config.mdns,
      isBlocked: (remote) => blocklist.isBlocked(remote.toString(), Date.now()),
      connectionsMax: config.connectionsMax,
      admitsInbound: (addr) => {
        const { address, loopback } = remoteAddressOf(addr)
        return admission.admits(address, loopback)
      }
    })
  } catch (err) {
    if (err instanceof RhizomeError) throw err
    throw new ListenError(listenFailures(err, config.listen), { cause: err })
  }
  cleanups.push(async () => { await withTimeout(host.stop(), STOP_TIMEOUT_MS) })
  const peerId = host.peerId
  const netLog = log.child('net')

  const onViolation = (remote: PeerId, protocol: string, err: Error): void => {
    const id = remote.toString()
    if (peerRepo.getPeer(id) === undefined) peerRepo.upsertPeer({ peerId: id, state: 'unknown', addrs: [], lastSeenMs: Date.now() })
    const score = peerRepo.adjustScore(id, VIOLATION_SCORE)
    peerRepo.recordPeerEvent(id, 'violation', Date.now(), `${protocol}: ${err.message}`)
    netLog.warn('peer broke protocol; disconnecting', { peer: id, protocol, error: err.message, score })
    admissionService.handleScore(id, score)
    if (blocklist.handleScore(id, score, Date.now())) netLog.warn('peer blocked', { peer: id, forMs: BLOCK_MS })
    host.hangUp(remote).catch(() => {})
  }

  const rpc = new RpcService({ libp2p: host, log: netLog.child('rpc'), onViolation })
  cleanups.push(() => rpc.stop())

  const slotsMax = Math.min(config.slotsMax, availableParallelism() * 64)
  const membership: Membership = createMembership({
    selfId: peerId.toString(),
    networkId: config.networkId,
    version: VERSION,
    incarnation: startedAt,
    addrs: announcedAddrs(host),
    capacity: { slotsFree: slotsMax, slotsMax, queueLength: 0 },
    announceIntervalMs: config.announceIntervalMs,
    suspectAfterMs: config.suspectAfterMs,
    goneAfterMs: config.goneAfterMs,
    // A peer announcing several times per interval is flooding; a quarter interval allows for jitter.
    announceMinIntervalMs: Math.floor(config.announceIntervalMs / 4)
  })
  // Declared before onViolation can first run (rpc handlers start with the services below).
  const admissionService = new AdmissionService({
    host,
    admission,
    log: netLog.child('admission'),
    now: Date.now,
    isAlive: (id) => membership.stateOf(id) === 'alive',
    scoreOf: (id) => peerRepo.getPeer(id)?.score ?? 0
  })
  admissionService.start()
  cleanups.push(() => admissionService.stop())
  const progress = new ProgressBus()
  const persist = (event: MembershipEvent): void => {
    progress.emit({ type: 'peer:state', peer: event.peerId, state: membershipState(event), atMs: event.atMs })
    if (event.type === 'peer:joined' || event.type === 'peer:alive') admissionService.handleProven(event.peerId)
    peerRepo.recordPeerEvent(event.peerId, event.type, event.atMs)
    const entry = membership.get(event.peerId)
    if (entry !== undefined) {
      peerRepo.upsertPeer({
        peerId: entry.peerId,
        state: entry.state,
        addrs: entry.addrs,
        version: entry.version,
        incarnation: entry.incarnation,
        slotsFree: entry.capacity.slotsFree,
        slotsMax: entry.capacity.slotsMax,
        queueLength: entry.capacity.queueLength,
        lastSeenMs: entry.lastSeenMs
      })
    }
  }
  const membershipService = new MembershipService({
    host,
    rpc,
    membership,
    networkId: config.networkId,
    log: log.child('membership'),
    now: Date.now,
    onEvent: persist,
    onViolation,
    onProven: (remote) => { admissionService.handleProven(remote.toString()) }
  })
  host.addEventListener('self:peer:update', () => {
    membership.handleAddrs(announcedAddrs(host))
  })
  await membershipService.start()
  cleanups.push(() => membershipService.stop())

  const blobService = new BlobService({ rpc, blobs, networkId: config.networkId })
  await blobService.start()

  const alivePeers = (): string[] => membership.view().filter(p => p.state === 'alive').map(p => p.peerId)
  const functions = new FunctionService({
    host,
    rpc,
    blobs,
    blobService,
    functions: createFunctionRepo(db),
    networkId: config.networkId,
    log: log.child('functions'),
    alivePeers,
    onMisbehaviour: (peer, reason) => onViolation(peer, functions.protocol, reason)
  })
  await functions.start()
  const sandbox = createSandbox()
  cleanups.push(() => sandbox.close())
  const tasks = new TaskService({
    rpc,
    sandbox,
    functions,
    blobs,
    blobService,
    privateKey,
    selfId: peerId,
    networkId: config.networkId,
    slotsMax,
    queueLengthMax: slotsMax * TASK_QUEUE_PER_SLOT,
    log: log.child('tasks'),
    onCapacity: (capacity) => membership.handleCapacity(capacity),
    dial: async (peer, options) => await host.dial(peer, options),
    onMisbehaviour: (peer, reason) => onViolation(peer, tasks.protocol, reason)
  })
  await tasks.start()

  let callsStarted = 0
  const call: RhizomeNode['call'] = async (fn, exportName, args, options) => {
    const callId = `${startedAt.toString(36)}-${(++callsStarted).toString(36)}`
    const report = (event: ProgressEvent): void => {
      progress.emit(event)
      options.onProgress?.(event)
    }
    report({ type: 'call:started', callId, fn: fn.toString(), export: exportName, atMs: Date.now() })
    try {
      const result = await callOnce(fn, exportName, args, options, callId, report)
      report({ type: 'call:done', callId, peer: result.peer, attempts: result.attempts, totalMs: Math.round(result.timings.totalMs), atMs: Date.now() })
      return result
    } catch (err) {
      const failure = err instanceof RhizomeError ? err.toData() : { name: 'InternalError', code: 'ERR_INTERNAL', message: 'the call failed', retryable: false }
      report({ type: 'call:failed', callId, error: failure, atMs: Date.now() })
      throw err
    }
  }
  const callOnce = async (fn: CID, exportName: string, args: unknown[], options: CallOptions, callId: string, report: (event: ProgressEvent) => void): Promise<CallResult & { attempts: number }> => {
    if (options.on !== undefined) {
      let target: PeerId
      try {
        target = peerIdFromString(options.on)
      } catch (err) {
        throw new InvalidInputError(`${JSON.stringify(options.on)} is not a peer id`, { cause: err, hint: 'a peer id looks like 12D3KooW…; `rhizome peers` lists them' })
      }
      report({ type: 'call:attempt', callId, attempt: 1, peer: options.on, atMs: Date.now() })
      return { ...await tasks.call(fn, exportName, args, target, options), attempts: 1 }
    }
    const placement = new PlacementAttempts(CALL_ATTEMPTS_MAX)
    let lastError: unknown
    for (;;) {
      const candidates = [{ peerId: peerId.toString(), ...tasks.capacity() }, ...membership.view()
        .filter(p => p.state === 'alive')
        .map(p => ({ peerId: p.peerId, slotsFree: p.capacity.slotsFree, queueLength: p.capacity.queueLength }))]
      const chosen = placement.next(candidates, Math.random)
      if (chosen === undefined) break
      report({ type: 'call:attempt', callId, attempt: placement.attempts, peer: chosen.peerId, atMs: Date.now() })
      try {
        return { ...await tasks.call(fn, exportName, args, peerIdFromString(chosen.peerId), options), attempts: placement.attempts }
      } catch (err) {
        lastError = err
        const retryable = err instanceof RhizomeError && err.retryable
        if (!placement.shouldRetry({ retryable }, options.signal?.aborted === true)) throw err
        report({ type: 'call:retry', callId, attempt: placement.attempts, peer: chosen.peerId, error: (err as RhizomeError).toData(), atMs: Date.now() })
        log.child('tasks').info('task attempt failed; trying another peer', { peer: chosen.peerId, error: (err as Error).message })
      }
    }
    if (lastError !== undefined) throw lastError
    throw new PeerUnavailableError('no peer is available to run the task')
  }

  redialKnownPeers(host, peerRepo, netLog)

  const node: RhizomeNode = {
    peerId,
    config,
    host,
    blobs,
    log,
    functions,
    tasks,
    call,
    progress,
    addrs: () => host.getMultiaddrs().map(a => a.toString()),
    peers: () => {
      const connected = new Set(host.getConnections().map(c => c.remotePeer.toString()))
      return membership.view().map(entry => ({ ...entry, connected: connected.has(entry.peerId) }))
    },
    status: async () => {
      const counts = { alive: 0, suspect: 0, gone: 0 }
      for (const entry of membership.view()) counts[entry.state]++
      return {
        peerId: peerId.toString(),
        version: VERSION,
        networkId: config.networkId,
        dataDir: config.dataDir,
        addrs: node.addrs(),
        apiUrl: api.url,
        uptimeMs: Date.now() - startedAt,
        connections: host.getConnections().length,
        peers: counts,
        blobs: { count: blobs.count() ?? 0 }
      }
    },
    apiUrl: () => api.url,
    stop: async () => {
      log.info('stopping')
      await cleanup()
      log.info('stopped')
    }
  }

  // Made once, kept across restarts: scripts read DIR/api.token and keep working (api-token.ts).
  const { token } = await loadOrCreateApiToken(config.dataDir)
  let api: HttpApi
  try {
    api = await startHttpApi({ node, blobService, host: config.apiHost, port: config.apiPort, token, tokenPath: apiTokenPath(config.dataDir), progress, log: log.child('api') })
  } catch (err) {
    if (err instanceof RhizomeError) throw err
    const code = (err as NodeJS.ErrnoException).code
    throw new ApiListenError(config.apiHost, config.apiPort, code !== undefined ? `${code}${code === 'EADDRINUSE' ? ', the port is in use' : ''}` : (err as Error).message, { cause: err })
  }
  cleanups.push(() => api.close())
  const apiFile = join(config.dataDir, 'api.json')
  await writeFile(`${apiFile}.tmp`, JSON.stringify({ url: api.url, pid: process.pid, peerId: peerId.toString() }) + '\n', { mode: 0o600 })
  await rename(`${apiFile}.tmp`, apiFile)
  cleanups.push(async () => { await rm(apiFile, { force: true }) })

  log.info('started', { peerId: peerId.toString(), createdIdentity: created, addrs: node.addrs(), api: api.url, startMs: Date.now() - startedAt })
  return node
}

/** The addresses a peer announces: loopback last, and no more than an announcement may carry. */
function announcedAddrs (host: Host): string[] {
  const addrs = host.getMultiaddrs().map(a => a.toString())
  const loopback = (a: string): boolean => a.startsWith('/ip4/127.') || a.startsWith('/ip6/::1/')
  return [...addrs.filter(a => !loopback(a)), ...addrs.filter(loopback)].slice(0, ADDRS_MAX)
}

function redialKnownPeers (host: Host, peerRepo: PeerRepo, log: Logger): void {
  const known = peerRepo.listPeers().filter(p => p.state !== 'gone' && p.addrs.length > 0).slice(0, REDIAL_PEERS_MAX)
  for (const peer of known) {
    let addrs
    try {
      addrs = peer.addrs.map(a => multiaddr(a.includes('/p2p/') ? a : `${a}/p2p/${peer.peerId}`))
      peerIdFromString(peer.peerId)
    } catch {
      continue
    }
    host.dial(addrs, { signal: AbortSignal.timeout(5000) }).catch((err: Error) => {
      log.debug('redial failed', { peer: peer.peerId, error: err.message })
    })
  }
}

async function withTimeout (promise: Promise<unknown> | void, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  await Promise.race([promise, new Promise(resolve => { timer = setTimeout(resolve, ms) })])
  clearTimeout(timer)
}

function membershipState (event: MembershipEvent): 'joined' | 'alive' | 'suspect' | 'gone' | 'removed' {
  switch (event.type) {
    case 'peer:joined': return 'joined'
    case 'peer:alive': return 'alive'
    case 'peer:suspect': return 'suspect'
    case 'peer:gone': return 'gone'
    case 'peer:removed': return 'removed'
  }
}
