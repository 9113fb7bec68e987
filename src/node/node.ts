/**
 * The composition root: builds a peer from its parts — identity, SQLite, blob store, libp2p
 * host, connection admission, the RPC layer, the membership, blob, function and task services,
 * the sandbox, and the local HTTP API — starts them in order and stops them in reverse, within a
 * bounded time. Wiring only: every decision lives in the part that owns it.
 */
import { rename, rm, writeFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { InvalidInputError, RhizomeError, assert } from '../model/errors.ts'
import { VERSION } from '../model/version.ts'
import { AdmissionService, remoteAddressOf } from '../net/admission-service.ts'
import { BlobService } from '../net/blob-service.ts'
import { FunctionService } from '../net/function-service.ts'
import { createHost } from '../net/host.ts'
import { recordMembershipEvent, redialCandidates } from '../net/membership-record.ts'
import { MembershipService, REDIAL_PEERS_MAX, announceMinIntervalMs, announcedAddrs } from '../net/membership-service.ts'
import { PeerScoring } from '../net/peer-scoring.ts'
import { RpcService } from '../net/rpc.ts'
import { callPlaced } from '../net/task-placement.ts'
import type { PlacedCallResult } from '../net/task-placement.ts'
import { ed25519Signer } from '../net/ed25519.ts'
import { TaskService, slotLimits } from '../net/task-service.ts'
import { createAdmission, createBlocklist } from '../protocol/admission/index.ts'
import { createMembership } from '../protocol/membership/index.ts'
import { placementCandidates, schedulerCandidates } from '../protocol/placement.ts'
import { PeerLossTracker } from '../protocol/scheduler/peer-loss.ts'
import { createRandom } from '../protocol/random.ts'
import { SOLO_POLICY, SchedulerService } from '../net/scheduler-service.ts'
import { TrustService } from '../net/trust-service.ts'
import { resolvePolicy } from '../model/verification.ts'
import type { VerificationPolicy } from '../model/verification.ts'
import { createReputation } from '../protocol/reputation/index.ts'
import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromString } from '@libp2p/peer-id'
import { randomInt } from 'node:crypto'
import { createSandbox, createWorkflowEngine } from '../sandbox/index.ts'
import { RunService } from '../net/run-service.ts'
import type { RunTask, TaskExecution } from '../net/run-service.ts'
import { createBlobStore, createFunctionRepo, createHomeRepo, createPeerRepo, createPermissionRepo, createRunRepo, createVerifyRepo, openDatabase } from '../store/index.ts'
import { createLogRepo } from '../store/log-repo.ts'
import { LOG_FIELDS_CHARS_MAX, LOG_MSG_CHARS_MAX, LogHistory } from './log-history.ts'
import { teeLogger } from './logger.ts'
import { VerifyWriter } from '../store/verify-repo.ts'
import { HomeService } from '../net/home-service.ts'
import { apiTokenPath, loadOrCreateApiToken } from './api-token.ts'
import { startHttpApi } from './http-api.ts'
import { createMetricsRegistry, registerNodeMetrics } from './metrics.ts'
import type { NodeMetrics } from './metrics.ts'
import type { Registry } from 'prom-client'
import { ProgressBus, callWithProgress, peerStateEvent } from './progress.ts'
import type { ProgressCallOptions } from './progress.ts'
import { loadOrCreateIdentity } from './identity.ts'
import { lockDataDir, prepareDataDir } from './lock.ts'
import { ApiListenError, DatabaseOpenError, ListenError, listenFailures } from './start-errors.ts'
import type { Logger } from '../model/log.ts'
import type { Host } from '../net/host.ts'
import type { CallResult } from '../net/task-service.ts'
import type { Membership, MembershipEvent } from '../protocol/membership/index.ts'
import type { BlobStore, FunctionRepo, HomeRepo, PeerRepo, PermissionRepo, RunRepo, VerifyRepo } from '../store/index.ts'
import { GOSSIP_SCORE_PENDING, NotAMemberError, PermissionService, gatedPubsub } from '../net/permission-service.ts'
import { createPermission } from '../protocol/permission/index.ts'
import type { Action, Certificate, Permission, Revocation } from '../protocol/permission/index.ts'
import { decodeCertificate, decodeRevocation } from '../wire/certificate-codec.ts'
import { loadOwnCertificate } from './certificate.ts'
import { issuerPeerId } from '../net/certificate-signatures.ts'
import { CertificateError } from './start-errors.ts'
import type { GossipSub } from '@libp2p/gossipsub'
import type { NodeConfig } from './config.ts'
import type { HttpApi } from './http-api.ts'
import type { NetworkMode, NetworkStatus, NodeStatus as ApiNodeStatus, PeerView as ApiPeerView, RevocationResult } from '../api/types.ts'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import { taskId } from '../wire/task-codec.ts'

/** `stop()` gives up waiting for libp2p after this long; a stuck socket must not hang shutdown. */
export const STOP_TIMEOUT_MS = 5000

// What the API answers for status and peers: defined once, in src/api/types.ts.
export type { NodeStatus, PeerView } from '../api/types.ts'

export interface RhizomeNode {
  readonly peerId: PeerId
  readonly config: NodeConfig
  readonly host: Host
  readonly blobs: BlobStore
  readonly log: Logger
  readonly functions: FunctionService
  readonly tasks: TaskService
  /** Run a task: on `on` if given, else on a peer chosen by placement, retrying retryable failures elsewhere. */
  call: (fn: CID, exportName: string, args: unknown[], options: ProgressCallOptions) => Promise<CallResult & { attempts: number }>
  /** Progress events of everything this peer does for its clients (`GET /v1/events`). */
  readonly progress: ProgressBus
  /** The workflow runs this peer drives. */
  readonly runs: RunService
  /** Reputation records, lie proofs and task attestations on disk (`config.verification` is the mode). */
  readonly verify: VerifyRepo
  /** Who may join: open, or permissioned by certificates (`rhizome network`). */
  readonly network: NodeNetwork
  /** This peer's Prometheus metrics (`GET /metrics`, src/node/metrics.ts). */
  readonly metrics: NodeMetrics
  /** The bounded history of what this peer logged (`rhizome logs`). */
  readonly logs: LogHistory
  addrs: () => string[]
  status: () => Promise<ApiNodeStatus>
  peers: () => ApiPeerView[]
  apiUrl: () => string
  stop: () => Promise<void>
}

export interface NodeNetwork {
  readonly mode: NetworkMode
  status: () => NetworkStatus
  /** Enforce a signed revocation (its encoded bytes) and gossip it; named error if refused. */
  submitRevocation: (bytes: Uint8Array) => Promise<RevocationResult['result']>
}

/** Steps that undo a start, run last-first; one that fails does not stop the rest. */
class Teardown {
  private readonly steps: Array<() => Promise<void> | void> = []

  add (step: () => Promise<void> | void): void {
    this.steps.push(step)
  }

  /** Start `service` and stop it on teardown. */
  async started<T extends { start: () => Promise<void> | void, stop: () => Promise<void> | void }> (service: T): Promise<T> {
    await service.start()
    this.add(async () => { await service.stop() })
    return service
  }

  async run (): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) await Promise.resolve().then(step).catch(() => {})
  }
}

export async function startNode (config: NodeConfig, baseLog: Logger): Promise<RhizomeNode> {
  const startedAt = Date.now()
  // What the peer logs is also kept, bounded, in its database: `rhizome logs`, and SQL over log_events.
  const logs = new LogHistory()
  const log = teeLogger(baseLog, { level: config.logLevel, sink: (record) => { logs.add(record) }, msgCharsMax: LOG_MSG_CHARS_MAX, fieldsCharsMax: LOG_FIELDS_CHARS_MAX })
  await prepareDataDir(config.dataDir)
  const teardown = new Teardown()
  teardown.add(await lockDataDir(config.dataDir))
  try {
    const store = await openStore(config, log, teardown, logs)
    const progress = new ProgressBus()
    const registry = createMetricsRegistry()
    const gate = await openPermission(config, store, log)
    const net = await startNet(config, store, startedAt, log, teardown, registry, gate)
    const services = await startServices(config, store, net, progress, log, teardown)
    const { runs, verifiedCall, workflows } = await startRuns(config, store, net, services, progress, log, teardown)
    const metrics = startMetrics(registry, config, store, net, services, runs, workflows, teardown)
    const node = describeNode({ config, log, startedAt, store, net, services, progress, runs, verifiedCall, metrics, teardown })
    const api = await startApi(config, node, services.blobService, log, teardown)
    node.apiUrl = () => api.url
    log.info('started', { peerId: net.host.peerId.toString(), createdIdentity: store.createdIdentity, addrs: node.addrs(), api: api.url, startMs: Date.now() - startedAt })
    return node
  } catch (err) {
    await teardown.run()
    throw err
  }
}

interface Store {
  privateKey: PrivateKey
  createdIdentity: boolean
  peers: PeerRepo
  blobs: BlobStore
  functions: FunctionRepo
  runs: RunRepo
  home: HomeRepo
  verify: VerifyRepo
  /** Attestations and reputation changes, batched (VERIFY_FLUSH_MS). */
  verifyWriter: VerifyWriter
  logs: LogHistory
  /** Certificates and revocations of a permissioned network. */
  permissions: PermissionRepo
}

async function openStore (config: NodeConfig, log: Logger, teardown: Teardown, logs: LogHistory): Promise<Store> {
  const { privateKey, created } = await loadOrCreateIdentity(config.dataDir)
  const dbPath = join(config.dataDir, 'rhizome.db')
  let db: ReturnType<typeof openDatabase>
  try {
    db = openDatabase(dbPath)
  } catch (err) {
    if (err instanceof RhizomeError) throw err
    throw new DatabaseOpenError(dbPath, (err as Error).message, { cause: err })
  }
  teardown.add(() => db.close())
  logs.open(createLogRepo(db))
  teardown.add(() => { logs.close() })
  const blobs = createBlobStore({ dir: join(config.dataDir, 'blobs'), db })
  // Before the database closes (teardown runs last-added first): task results still in memory go to disk.
  teardown.add(async () => { await blobs.flush() })
  const repo = createVerifyRepo(db)
  repo.prune(Date.now())
  const verifyWriter = new VerifyWriter(db, repo, (err) => { log.error('could not keep attestations and reputation changes', { error: err.message }) })
  // Reads see every write already made: what waits in the batch is written first.
  const verify: VerifyRepo = {
    ...repo,
    attestationsOf: (taskId) => { verifyWriter.flush(); return repo.attestationsOf(taskId) },
    loadReputation: () => { verifyWriter.flush(); return repo.loadReputation() }
  }
  teardown.add(() => { verifyWriter.flush() })
  return {
    privateKey,
    createdIdentity: created,
    peers: createPeerRepo(db),
    blobs,
    functions: createFunctionRepo(db),
    runs: createRunRepo(db),
    home: createHomeRepo(db),
    verify,
    verifyWriter,
    logs,
    permissions: createPermissionRepo(db)
  }
}

interface Net {
  host: Host
  membership: Membership
  rpc: RpcService
  admissionService: AdmissionService
  onViolation: (remote: PeerId, protocol: string, err: Error) => void
  slots: { slotsMax: number, queueLengthMax: number }
  /** The gossipsub the services use: in a permissioned network, gated to members. */
  pubsub: Pick<GossipSub, 'topicValidators' | 'subscribe' | 'unsubscribe' | 'publish'>
  /** The permissioned network's gate; undefined in an open network. */
  permission?: PermissionService
  /** Whether a peer (this one too) may do `action`: always, in an open network. */
  permits: (peerId: string, action: Action) => boolean
  /** Told of each peer that lost its membership (revoked, expired): its tasks go elsewhere. */
  lostListeners: Set<(peerId: string) => void>
}

/** A permissioned peer's machine and own certificate, before the network starts. */
interface Gate { permission: Permission, own: Certificate, ownIssuer?: Certificate }

/**
 * With `--certificate`: check it (CertificateError if it is not usable by this peer now), load
 * the stored certificates and revocations, and hold its own. Without: an open network (undefined).
 */
async function openPermission (config: NodeConfig, store: Store, log: Logger): Promise<Gate | undefined> {
  if (config.certificate === '') return undefined
  const self = (await import('@libp2p/peer-id')).peerIdFromPrivateKey(store.privateKey).toString()
  const now = Date.now()
  const { certificate: own, issuerCertificate: ownIssuer, founder } = await loadOwnCertificate(config.certificate, self, now)
  const certificates: Certificate[] = []
  const revocations: Revocation[] = []
  // Stored rows were checked when they came; one that no longer decodes is dropped, never trusted.
  for (const row of store.permissions.listCertificates()) {
    try { certificates.push(decodeCertificate(row.bytes)) } catch { store.permissions.deleteCertificate(row.peerId, row.serial) }
  }
  for (const row of store.permissions.listRevocations()) {
    try { revocations.push(decodeRevocation(row.bytes)) } catch { store.permissions.deleteRevocation(row.key) }
  }
  const permission = createPermission({ mode: 'permissioned', networkId: own.network, issuers: [founder], issuerPeerId, certificates, revocations })
  // A delegated certificate's admin first: the machine accepts what it signed only while it holds the admin's.
  const adminResult = ownIssuer === undefined ? 'admitted' : permission.handleCertificate(ownIssuer, true, now)
  if (adminResult !== 'admitted') throw new CertificateError(config.certificate, `holds its issuing admin's certificate, refused by this peer's own records: ${adminResult}`)
  const result = permission.handleCertificate(own, true, now)
  if (result !== 'admitted') throw new CertificateError(config.certificate, `is refused by this peer's own records: ${result}`)
  log.info('permissioned network', { networkId: own.network, roles: own.roles, notAfter: new Date(own.notAfter).toISOString(), members: permission.counts().members, revocations: permission.counts().revocations })
  return { permission, own, ...(ownIssuer !== undefined ? { ownIssuer } : {}) }
}

/** The host, connection admission, the score policy, the membership state machine and the RPC layer. */
async function startNet (config: NodeConfig, store: Store, startedAt: number, log: Logger, teardown: Teardown, metricsRegistry: Registry, gate: Gate | undefined): Promise<Net> {
  const netLog = log.child('net')
  // The permission service is made once the host exists; the host asks it through this.
  const bound: { permission?: PermissionService } = {}
  const blocklist = createBlocklist()
  const admission = createAdmission({ connectionsMax: config.connectionsMax, connectionsPerAddressMax: config.connectionsPerAddressMax, limitLoopback: config.connectionsLimitLoopback })
  let host: Host
  try {
    host = await createHost({
      privateKey: store.privateKey,
      networkId: config.networkId,
      listen: config.listen,
      bootstrap: config.bootstrap,
      mdns: config.mdns,
      connectionsMax: config.connectionsMax,
      metricsRegistry,
      isBlocked: (remote) => blocklist.isBlocked(remote.toString(), Date.now()) || (bound.permission?.refuses(remote.toString()) ?? false),
      admitsInbound: (addr) => { const { address, loopback } = remoteAddressOf(addr); return admission.admits(address, loopback) },
      ...(gate !== undefined ? { dht: false, gossipScore: (id: string) => bound.permission?.gossipScore(id) ?? GOSSIP_SCORE_PENDING } : {})
    })
  } catch (err) {
    if (err instanceof RhizomeError) throw err
    throw new ListenError(listenFailures(err, config.listen), { cause: err })
  }
  teardown.add(async () => { await withTimeout(host.stop(), STOP_TIMEOUT_MS) })

  const slots = slotLimits(config.slotsMax, availableParallelism())
  const membership = createMembership({
    selfId: host.peerId.toString(),
    networkId: config.networkId,
    version: VERSION,
    incarnation: startedAt,
    addrs: announcedAddrs(host.getMultiaddrs().map(a => a.toString())),
    capacity: { slotsFree: slots.slotsMax, slotsMax: slots.slotsMax, queueLength: 0 },
    announceIntervalMs: config.announceIntervalMs,
    suspectAfterMs: config.suspectAfterMs,
    goneAfterMs: config.goneAfterMs,
    announceMinIntervalMs: announceMinIntervalMs(config.announceIntervalMs)
  })
  const admissionService = await teardown.started(new AdmissionService({
    host, admission, log: netLog.child('admission'), now: Date.now,
    isAlive: (id) => membership.stateOf(id) === 'alive',
    scoreOf: (id) => store.peers.getPeer(id)?.score ?? 0
  }))
  const scoring = new PeerScoring({
    peers: store.peers, blocklist, log: netLog, now: Date.now,
    onScore: (id, score) => { admissionService.handleScore(id, score) },
    hangUp: async (peer) => { await host.hangUp(peer) }
  })
  const onViolation = scoring.handleViolation.bind(scoring)
  // A permissioned peer's gate fails closed: nothing is served or sent before the permission
  // service exists to say who is a member.
  const notYet = (peer: PeerId): NotAMemberError => new NotAMemberError(`peer ${peer.toString()} cannot be checked yet: this peer is still starting`)
  const authorize = gate === undefined ? undefined : (peer: PeerId, protocol: string) => bound.permission !== undefined ? bound.permission.authorize(peer, protocol) : notYet(peer)
  const authorizeOutbound = gate === undefined ? undefined : (peer: PeerId, protocol: string) => bound.permission !== undefined ? bound.permission.authorizeOutbound(peer, protocol) : notYet(peer)
  const rpc = await teardown.started(new RpcService({ libp2p: host, log: netLog.child('rpc'), onViolation, authorize, authorizeOutbound }))
  const lostListeners = new Set<(peerId: string) => void>()
  if (gate === undefined) return { host, membership, rpc, admissionService, onViolation, slots, pubsub: host.services.pubsub, permits: () => true, lostListeners }
  // Started before the services that dial: every connection they open exchanges credentials first.
  const permission = bound.permission = await teardown.started(new PermissionService({
    permission: gate.permission, repo: store.permissions, rpc, host, pubsub: host.services.pubsub, own: gate.own, ...(gate.ownIssuer !== undefined ? { ownIssuer: gate.ownIssuer } : {}), log: netLog.child('permission'), now: Date.now,
    onLost: (id) => { for (const listener of lostListeners) listener(id) }
  }))
  const permits = (id: string, action: Action): boolean => permission.allows(id, action)
  return { host, membership, rpc, admissionService, onViolation, slots, pubsub: gatedPubsub(host.services.pubsub, id => permits(id, 'gossip')), permission, permits, lostListeners }
}

interface Services {
  /** Told of every membership transition after it is recorded (the scheduler's lost peers). */
  membershipListeners: Set<(event: MembershipEvent) => void>
  membershipService: MembershipService
  blobService: BlobService
  functions: FunctionService
  tasks: TaskService
  sandbox: ReturnType<typeof createSandbox>
}

async function startServices (config: NodeConfig, store: Store, net: Net, progress: ProgressBus, log: Logger, teardown: Teardown): Promise<Services> {
  const membershipListeners = new Set<(event: MembershipEvent) => void>()
  const { host, membership, rpc, onViolation } = net
  const { networkId } = config
  const membershipService = await teardown.started(new MembershipService({
    membership, host, pubsub: net.pubsub, rpc, log: log.child('membership'), now: Date.now, onViolation,
    onEvent: (event) => {
      recordMembershipEvent({ peers: store.peers, membership }, event)
      progress.emit(peerStateEvent(event))
      for (const listener of membershipListeners) listener(event)
    },
    onProven: (id) => { net.admissionService.handleProven(id) },
    knownPeers: () => redialCandidates({ peers: store.peers }, REDIAL_PEERS_MAX)
  }, { networkId }))
  const blobService = await teardown.started(new BlobService({ rpc, blobs: store.blobs }, { networkId }))
  const fetchBlob = blobService.fetch.bind(blobService)
  const functions = await teardown.started(new FunctionService({
    rpc, blobs: store.blobs, fetchBlob, functions: store.functions, contentRouting: net.permission === undefined ? host.contentRouting : NO_CONTENT_ROUTING, selfId: host.peerId,
    alivePeers: () => membership.view().filter(p => p.state === 'alive' && net.permits(p.peerId, 'function')).map(p => p.peerId),
    log: log.child('functions'), onViolation
  }, { networkId }))
  const sandbox = createSandbox()
  teardown.add(async () => { await sandbox.close() })
  const tasks = await teardown.started(new TaskService({
    rpc, sandbox, fetchBlob, blobs: store.blobs, selfId: host.peerId, log: log.child('tasks'), onViolation,
    loadFunction: async (fn, options) => await functions.load(fn, options),
    sign: ed25519Signer(store.privateKey),
    dial: async (peer, options) => await host.dial(peer, options),
    connected: (peer) => host.getConnections(peer).some(connection => connection.status === 'open'),
    onCapacity: (capacity) => { membership.handleCapacity(capacity) }
  }, { networkId, ...net.slots }))
  return { membershipService, blobService, functions, tasks, membershipListeners, sandbox }
}

/** Workflow runs driven here: the run service, its workflow sandbox, and the scheduler for its tasks. */
async function startRuns (config: NodeConfig, store: Store, net: Net, services: Services, progress: ProgressBus, log: Logger, teardown: Teardown): Promise<{ runs: RunService, verifiedCall: VerifiedCall, workflows: ReturnType<typeof createWorkflowEngine> }> {
  const { host } = net
  const { functions } = services
  const self = host.peerId.toString()
  const workflows = createWorkflowEngine()
  teardown.add(async () => { await workflows.close() })
  const trust = await startTrust(config, store, net, log, teardown)
  const scheduler = await startScheduler(net, services, store, trust, log, teardown)
  // A function's own policy, else this peer's mode; a function that says it is not deterministic
  // cannot be checked by running it again, so it is taken from one peer.
  const policyOf = async (fn: CID): Promise<VerificationPolicy> => {
    const { manifest } = await functions.load(fn)
    return manifest.deterministic ? resolvePolicy(manifest.verification, config.verification) : SOLO_POLICY
  }
  // The run service and the home service call each other: the home service is built first and
  // told of the run service before it starts (it rejoins unsettled runs at start).
  const bound: { runs?: RunService } = {}
  const ready = (): RunService => {
    assert(bound.runs !== undefined, 'the run service starts before the home service')
    return bound.runs
  }
  // A peer proven to lie keeps no run's memo either: home sets are drawn from the others.
  // In a permissioned network only peers allowed tasks keep a run's memo (a client is given no work).
  const alive = (): string[] => net.membership.view().filter(p => p.state === 'alive' && trust.standing(p.peerId) !== 'banned' && net.permits(p.peerId, 'task')).map(p => p.peerId)
  const home = new HomeService({
    repo: store.home, rpc: net.rpc, selfId: self, log: log.child('home'), alivePeers: alive,
    gonePeers: () => net.membership.view().filter(p => p.state === 'gone').map(p => p.peerId),
    runs: {
      opened: (runId, spec) => { ready().opened(runId, spec) },
      drive: (runId, spec, epoch, memo) => { ready().drive(runId, spec, epoch, memo) },
      deliver: (runId, id) => { ready().deliver(runId, id) },
      stop: (runId, reason) => { ready().stopDriving(runId, reason) },
      settled: (runId, spec, outcome) => { ready().runSettled(runId, spec, outcome) },
      signal: (runId, name, value) => { ready().signalFromHome(runId, name, value) }
    }
  }, { networkId: config.networkId })
  const runs = await teardown.started(new RunService({
    runs: store.runs,
    readBlob: async (cid, from) => await readOrFetch(store.blobs, services.blobService, cid, from),
    putBlob: async (bytes) => await store.blobs.put(bytes, dagCbor.code),
    hasBlob: async (cid) => await store.blobs.has(cid),
    home: {
      open: async (runId, spec) => await home.open(runId, spec),
      localEntry: (runId, entry) => home.localEntry(runId, entry),
      findRun: async (runId) => await home.findRun(runId),
      findSettled: async (runId) => await home.findSettled(runId),
      keeps: (runId) => store.home.getRun(runId) !== undefined,
      homeSetOf: (runId) => home.status(runId).homeSet,
      relaySignal: async (runId, name, value) => { await home.relaySignal(runId, name, value) },
      forget: (runId) => { home.forget(runId) }
    },
    loadWorkflow: async (id, options) => await functions.load(id, options),
    openWorkflow: async (options) => await workflows.openWorkflow(options),
    locateTasks: async (taskIds) => await locateTasks(services.tasks, self, alive().filter(p => p !== self), taskIds),
    execute: async (task, options) => await executeAttached(services.tasks, scheduler, { ...task, policy: await policyOf(task.fn) }, options, log),
    emit: (event) => { progress.emit(event) },
    attestationsOf: (taskId) => store.verify.attestationsOf(taskId),
    selfId: self,
    log: log.child('runs')
  }))
  bound.runs = runs
  teardown.add(scheduler.onVerdict((taskId, verdict) => { runs.verdict(taskId, verdict) }))
  await teardown.started(home)
  /** `rhizome call` without --on: a function whose policy is more than one unchecked peer goes
   *  through verification like a run's task (replicas, quorum, spot checks); others keep the
   *  single-call placement. With --on the caller chose the peer, and takes its word. */
  const verifiedCall: VerifiedCall = async (fn, exportName, args, options) => {
    const policy = await policyOf(fn)
    if (policy.replicas === 1 && policy.spotCheckRate === 0) return undefined
    const id = (await taskId(fn, exportName, args)).toString()
    const t0 = performance.now()
    const done = await scheduler.run({ taskId: id, fn, export: exportName, args, inputs: [], ref: false, policy }, { signal: options.signal, onAttempt: options.onAttempt })
    const value = done.value !== undefined ? done.value : done.bytes !== undefined ? dagCbor.decode(done.bytes) : dagCbor.decode(await readOrFetch(store.blobs, services.blobService, CID.parse(done.resultCid), done.peer))
    return { taskId: id, resultCid: done.resultCid, peer: done.peer, value, signature: done.attestations[0]?.signature ?? new Uint8Array(), attempts: done.attempts, timings: { ...done.timings, totalMs: performance.now() - t0 } }
  }
  return { runs, verifiedCall, workflows }
}

/** The node's metrics over its parts' own counts (src/node/metrics.ts). */
function startMetrics (registry: Registry, config: NodeConfig, store: Store, net: Net, services: Services, runs: RunService, workflows: ReturnType<typeof createWorkflowEngine>, teardown: Teardown): NodeMetrics {
  const metrics = registerNodeMetrics(registry, {
    peerId: net.host.peerId.toString(),
    version: VERSION,
    networkId: config.networkId,
    onTaskEnd: (listener) => services.tasks.onTaskEnd(listener),
    capacity: () => services.tasks.capacity(),
    queueLengthMax: net.slots.queueLengthMax,
    peers: () => net.membership.counts(),
    runs: () => runs.stats(),
    blobs: () => store.blobs.totals(),
    sandbox: () => services.sandbox.stats(),
    workflows: () => workflows.stats(),
    rpc: () => net.rpc.stats()
  })
  teardown.add(() => { metrics.close() })
  return metrics
}

/** How long a takeover waits for peers to say which tasks they hold: a round trip, with room. */
const LOCATE_TIMEOUT_MS = 2_000

/** Which peer (this one included) holds each task: running it, or its result. First answer wins. */
async function locateTasks (tasks: TaskService, self: string, peers: string[], taskIds: string[]): Promise<Map<string, string>> {
  const holders = new Map<string, string>()
  for (const id of tasks.holds(taskIds)) holders.set(id, self)
  await Promise.allSettled(peers.map(async (peer) => {
    for (const id of await tasks.locate(peerIdFromString(peer), taskIds, { timeoutMs: LOCATE_TIMEOUT_MS })) if (!holders.has(id)) holders.set(id, peer)
  }))
  return holders
}

/**
 * A task with a peer to attach to (it holds the task for an earlier driver of the run) is asked
 * of that peer first: it joins the running task or answers from its stored result. If that
 * fails, the task goes to placement like any other.
 */
async function executeAttached (tasks: TaskService, scheduler: SchedulerService, task: RunTask & { policy: VerificationPolicy }, options: { signal: AbortSignal, onAttempt: (attempt: number, peer: string) => void }, log: Logger): Promise<TaskExecution> {
  // Re-attaching trusts the one peer that runs it: only for results taken from one peer unchecked.
  const solo = task.policy.replicas === 1 && task.policy.spotCheckRate === 0
  if (task.attach !== undefined && solo) {
    const t0 = performance.now()
    try {
      options.onAttempt(1, task.attach)
      const inputs = task.inputs.map(input => ({ cid: input.cid, peers: [input.peer] }))
      const peer = peerIdFromString(task.attach)
      const done = task.ref
        ? await tasks.call(task.fn, task.export, task.args, peer, { signal: options.signal, ref: true, inputs })
        : await tasks.call(task.fn, task.export, task.args, peer, { signal: options.signal, inputs })
      const bytes = 'value' in done ? dagCbor.encode(done.value) : undefined
      return { resultCid: done.resultCid, bytes, peer: done.peer, attempts: 1, timings: { ...done.timings, totalMs: performance.now() - t0 } }
    } catch (err) {
      if (options.signal.aborted) throw err
      log.debug('re-attaching a task failed; placing it anew', { task: task.taskId, peer: task.attach, error: (err as Error).message })
    }
  }
  return await scheduler.run(task, options)
}

/** A blob held here, or fetched (and verified, and kept) from the peer named. */
async function readOrFetch (blobs: BlobStore, blobService: BlobService, cid: CID, from: string | undefined): Promise<Uint8Array> {
  if (from === undefined || await blobs.has(cid)) return await blobs.get(cid)
  return await blobService.fetch(peerIdFromString(from), cid)
}

/** The scheduler that places workflow tasks: the live view, lost peers from membership, tasks through the task service. */
async function startScheduler (net: Net, services: Services, store: Store, trust: TrustService, log: Logger, teardown: Teardown): Promise<SchedulerService> {
  const { host, membership } = net
  const { tasks } = services
  const self = host.peerId.toString()
  const losses = new PeerLossTracker(id => membership.get(id)?.incarnation)
  const lossListeners = new Set<(peerId: string) => void>()
  services.membershipListeners.add((event) => {
    if (losses.handleEvent(event)) for (const listener of lossListeners) listener(event.peerId)
  })
  // A member revoked or expired is lost at once, whatever membership still thinks of it.
  net.lostListeners.add((peerId) => { for (const listener of lossListeners) listener(peerId) })
  return await teardown.started(new SchedulerService({
    callTask: async (fn, exportName, args, peer, options) => {
      const inputs = (options.inputs ?? []).map(input => ({ cid: input.cid, peers: [input.peer] }))
      const target = peerIdFromString(peer)
      const done = options.ref === true
        ? await tasks.call(fn, exportName, args, target, { signal: options.signal, ref: true, inputs })
        : await tasks.call(fn, exportName, args, target, { signal: options.signal, inputs })
      return stillPermitted(net, done)
    },
    candidates: () => schedulerCandidates({ peerId: self, ...tasks.capacity(), addrs: host.getMultiaddrs().map(a => a.toString()) }, membership.view()).filter(c => net.permits(c.peerId, 'task')),
    onPeerGone: (listener) => {
      lossListeners.add(listener)
      return () => { lossListeners.delete(listener) }
    },
    now: () => performance.now(),
    random: createRandom(randomInt(0, 2 ** 32)),
    log: log.child('scheduler'),
    trust: {
      // This peer's own results need no one's word.
      standing: (id) => id === self ? 'trusted' : trust.standing(id),
      score: (id) => trust.score(id),
      observe: (id, kind) => { if (id !== self) trust.observe(id, kind) },
      prove: (proof) => { trust.prove(proof) },
      onLiar: (listener) => trust.onLiar(listener)
    },
    recordAttestations: (taskId, rows) => {
      const atMs = Date.now()
      store.verifyWriter.addAttestations(taskId, undefined, rows.map(r => ({ peerId: r.peer, resultCid: r.resultCid, signature: r.signature, role: r.role, atMs })))
    }
  }))
}

/** Reputation and lie proofs: the machine from the stored records, its shell on the proof gossip topic. */
async function startTrust (config: NodeConfig, store: Store, net: Net, log: Logger, teardown: Teardown): Promise<TrustService> {
  const reputation = createReputation({ records: store.verify.loadReputation() })
  return await teardown.started(new TrustService({
    reputation,
    pubsub: net.pubsub,
    saveRecord: (record) => { store.verifyWriter.saveReputation(record) },
    saveProof: (proof, bytes, receivedMs) => { store.verify.addProof(proof.task.toString(), proof.liar.peer, bytes, receivedMs) },
    now: Date.now,
    log: log.child('trust'),
    onViolation: net.onViolation
  }, { networkId: config.networkId }))
}

interface NodeParts {
  config: NodeConfig
  log: Logger
  startedAt: number
  store: Store
  net: Net
  services: Services
  progress: ProgressBus
  runs: RunService
  /** A call whose function's policy asks for more than one unchecked peer, verified as a run's task is; undefined for one that does not. */
  verifiedCall: VerifiedCall
  metrics: NodeMetrics
  teardown: Teardown
}

type VerifiedCall = (fn: CID, exportName: string, args: unknown[], options: { signal?: AbortSignal, onAttempt?: (attempt: number, peer: string) => void }) => Promise<PlacedCallResult | undefined>

/** The peer as the API and the CLI see it: its parts, `call` through placement, and read-only views. */
function describeNode ({ config, log, startedAt, store, net, services, progress, runs, verifiedCall, metrics, teardown }: NodeParts): RhizomeNode {
  const { host, membership } = net
  const { tasks } = services
  const self = host.peerId.toString()
  const node: RhizomeNode = {
    peerId: host.peerId,
    config,
    host,
    blobs: store.blobs,
    log,
    functions: services.functions,
    tasks,
    call: callWithProgress(progress, async (fn, exportName, args, options) => (options.on === undefined ? await verifiedCall(fn, exportName, args, options) : undefined) ?? await callPlaced({
      call: async (...call) => stillPermitted(net, await tasks.call(...call)),
      candidates: () => placementCandidates({ peerId: self, ...tasks.capacity() }, membership.view()).filter(c => net.permits(c.peerId, 'task')),
      log: log.child('tasks')
    }, fn, exportName, args, options), startedAt.toString(36)),
    progress,
    runs,
    verify: store.verify,
    logs: store.logs,
    network: net.permission !== undefined ? permissionedNetwork(net.permission) : openNetwork(config.networkId),
    metrics,
    addrs: () => host.getMultiaddrs().map(a => a.toString()),
    peers: () => {
      const connected = new Set(host.getConnections().map(c => c.remotePeer.toString()))
      return membership.view().map(entry => ({ ...entry, connected: connected.has(entry.peerId) }))
    },
    status: async () => {
      const counts = { alive: 0, suspect: 0, gone: 0 }
      for (const entry of membership.view()) counts[entry.state]++
      return {
        peerId: self,
        version: VERSION,
        networkId: config.networkId,
        verification: config.verification,
        dataDir: config.dataDir,
        addrs: node.addrs(),
        apiUrl: node.apiUrl(),
        uptimeMs: Date.now() - startedAt,
        connections: host.getConnections().length,
        peers: counts,
        blobs: { count: store.blobs.count() ?? 0 },
        networkMode: node.network.mode
      }
    },
    apiUrl: () => '',
    stop: async () => {
      log.info('stopping')
      await teardown.run()
      log.info('stopped')
    }
  }
  return node
}

/** A permissioned network: its members, revocations and refusals, and revocations submitted here. */
function permissionedNetwork (permission: PermissionService): NodeNetwork {
  return {
    mode: 'permissioned',
    status: () => permission.status(),
    submitRevocation: async (bytes) => await permission.submitRevocation(bytes)
  }
}

/** A permissioned network leaves the DHT out: functions are found by asking members. */
const NO_CONTENT_ROUTING = {
  findProviders: async function * () {},
  provide: async () => {}
}

/**
 * A task's result from a peer that is no longer allowed tasks (revoked or expired while it ran)
 * is refused: retryable, so the task is placed elsewhere.
 */
function stillPermitted<T extends { peer: string }> (net: Net, done: T): T {
  if (net.permits(done.peer, 'task')) return done
  throw new NotAMemberError(`the result of peer ${done.peer} is refused: it is no longer allowed tasks in this network`, { retryable: true, hint: 'the task is placed on another member' })
}

/** An open network: any peer that knows the network id joins; there is nothing to revoke. */
function openNetwork (networkId: string): NodeNetwork {
  return {
    mode: 'open',
    status: () => ({ mode: 'open', networkId, members: [], revocations: [], refused: {} }),
    submitRevocation: async () => {
      throw new InvalidInputError(`network ${networkId} is open: it has no members to revoke`, { hint: 'revocations apply to permissioned networks (`rhizome network create`, then start peers with --certificate)' })
    }
  }
}

/** The HTTP API, its token, and DIR/api.json so the CLI finds it. */
async function startApi (config: NodeConfig, node: RhizomeNode, blobService: BlobService, log: Logger, teardown: Teardown): Promise<HttpApi> {
  // Made once, kept across restarts: scripts read DIR/api.token and keep working (api-token.ts).
  const { token } = await loadOrCreateApiToken(config.dataDir)
  let api: HttpApi
  try {
    api = await startHttpApi({ node, blobService, host: config.apiHost, port: config.apiPort, token, tokenPath: apiTokenPath(config.dataDir), progress: node.progress, log: log.child('api') })
  } catch (err) {
    if (err instanceof RhizomeError) throw err
    const code = (err as NodeJS.ErrnoException).code
    throw new ApiListenError(config.apiHost, config.apiPort, code !== undefined ? `${code}${code === 'EADDRINUSE' ? ', the port is in use' : ''}` : (err as Error).message, { cause: err })
  }
  teardown.add(() => api.close())
  const apiFile = join(config.dataDir, 'api.json')
  await writeFile(`${apiFile}.tmp`, JSON.stringify({ url: api.url, pid: process.pid, peerId: node.peerId.toString() }) + '\n', { mode: 0o600 })
  await rename(`${apiFile}.tmp`, apiFile)
  teardown.add(async () => { await rm(apiFile, { force: true }) })
  return api
}

async function withTimeout (promise: Promise<unknown> | void, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  await Promise.race([promise, new Promise(resolve => { timer = setTimeout(resolve, ms) })])
  clearTimeout(timer)
}
