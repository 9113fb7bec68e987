/**
 * A lying peer, for tests of result verification: a separate process built from Rhizome's own
 * parts, wired the way src/node/node.ts `startNode` wires them — identity, SQLite and the blob
 * store in a data dir, the libp2p host, connection admission and peer scoring, the RPC layer,
 * and the membership, blob, function and task services over the real sandbox — so it joins a
 * network like any peer (hello and gossip; drivers see it alive with free slots), fetches the
 * code it is asked to run, really runs it, and serves its results by the blob protocol.
 *
 * The one difference: the task service runs functions through a sandbox wrapper that, for a
 * fraction `--lie-rate` of tasks, replaces the function's result with another valid value (a
 * number n becomes n + 1, a bigint n becomes n + 1n, anything else `{ lie: value }`). The task
 * service then stores that value, signs an attestation over its CID with this peer's real key
 * and answers, exactly as it does for an honest result: the caller's signature and hash checks
 * pass. Which tasks are lied about is decided by a hash of the task id and `--seed`, so the same
 * call gets the same answer every time, on every run.
 *
 *   node test/helpers/lying-peer-main.ts --data-dir DIR --network-id ID --lie-rate P
 *     [--bootstrap ADDR]... [--slots N] [--seed S] [--announce-interval-ms N]
 *     [--suspect-after-ms N] [--gone-after-ms N] [--log-level LEVEL] [--stop-on-stdin-end]
 *
 * stdout: one JSON line when it is serving, `{"event":"ready","peerId":…,"addrs":[…]}`, then
 * one per task it ran, `{"event":"task","taskId":…,"lied":true|false,"resultCid":…}` (a task
 * answered again from its stored result prints nothing: the answer is the one printed before).
 * Logs go to stderr. SIGTERM or SIGINT stops it, and with --stop-on-stdin-end so does the end of
 * stdin (a test that starts it keeps stdin open, so a test process that dies takes it along).
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { VERSION } from '../../src/model/version.ts'
import { AdmissionService, remoteAddressOf } from '../../src/net/admission-service.ts'
import { BlobService } from '../../src/net/blob-service.ts'
import { ed25519Signer } from '../../src/net/ed25519.ts'
import { FunctionService } from '../../src/net/function-service.ts'
import { createHost } from '../../src/net/host.ts'
import { recordMembershipEvent, redialCandidates } from '../../src/net/membership-record.ts'
import { MembershipService, REDIAL_PEERS_MAX, announceMinIntervalMs, announcedAddrs } from '../../src/net/membership-service.ts'
import { PeerScoring } from '../../src/net/peer-scoring.ts'
import { RpcService } from '../../src/net/rpc.ts'
import { TaskService, slotLimits } from '../../src/net/task-service.ts'
import { createLogger } from '../../src/node/logger.ts'
import { loadOrCreateIdentity } from '../../src/node/identity.ts'
import { prepareDataDir } from '../../src/node/lock.ts'
import { ADMISSION_OPTIONS_DEFAULTS, createAdmission, createBlocklist } from '../../src/protocol/admission/index.ts'
import { createMembership } from '../../src/protocol/membership/index.ts'
import { createSandbox } from '../../src/sandbox/index.ts'
import { createBlobStore, createFunctionRepo, createPeerRepo, openDatabase } from '../../src/store/index.ts'
import type { LogLevel } from '../../src/model/log.ts'
import type { BlobStore, Database } from '../../src/store/index.ts'
import type { PrivateKey } from '@libp2p/interface'
import type { Sandbox, SandboxCall, SandboxResult, RunOptions } from '../../src/sandbox/index.ts'

export interface LyingPeerOptions {
  dataDir: string
  networkId: string
  bootstrap: string[]
  /** Fraction of tasks lied about, 0..1. */
  lieRate: number
  /** Picks which tasks are lied about (with the task id). */
  seed: string
  slots: number
  announceIntervalMs: number
  suspectAfterMs: number
  goneAfterMs: number
  logLevel: LogLevel
  /** Stop when stdin ends: the process that started it (holding the other end) has gone. */
  stopOnStdinEnd?: boolean
}

export interface TaskLine { event: 'task', taskId: string, lied: boolean, resultCid: string }

/** Whether the task `taskId` is lied about: a uniform draw in [0, 1) from sha256(seed, task id), below `lieRate`. */
export async function liesAbout (taskId: string, seed: string, lieRate: number): Promise<boolean> {
  const digest = await sha256.digest(new TextEncoder().encode(`${seed}\n${taskId}`))
  const draw = new DataView(digest.digest.buffer, digest.digest.byteOffset, 4).getUint32(0) / 2 ** 32
  return draw < lieRate
}

/** A valid value that is not `value`: what the liar answers instead. */
export function falsify (value: unknown): unknown {
  if (typeof value === 'number' && Number.isFinite(value) && value + 1 !== value) return value + 1
  if (typeof value === 'bigint') return value + 1n
  return { lie: value }
}

/**
 * The sandbox the task service runs functions through: the real one, with the result replaced
 * for the tasks `liesAbout` picks. The task id is the call's seed (the task service seeds each
 * call with its task id's bytes).
 */
export function lyingSandbox (inner: Sandbox, options: { lieRate: number, seed: string, onTask: (line: TaskLine) => void }): Pick<Sandbox, 'run'> {
  return {
    async run (call: SandboxCall, runOptions?: RunOptions): Promise<SandboxResult> {
      const outcome = await inner.run(call, runOptions)
      const taskId = CID.decode(call.seed).toString()
      const lied = await liesAbout(taskId, options.seed, options.lieRate)
      const result = lied ? { ...outcome, value: falsify(outcome.value), bytes: dagCbor.encode(falsify(outcome.value)) } : outcome
      const resultCid = CID.create(1, dagCbor.code, await sha256.digest(result.bytes)).toString()
      options.onTask({ event: 'task', taskId, lied, resultCid })
      return result
    }
  }
}

/** Undo steps, run last-first; one that fails does not stop the rest. */
type Steps = Array<() => Promise<void> | void>

async function unwind (steps: Steps): Promise<void> {
  for (const step of steps.splice(0).reverse()) await Promise.resolve().then(step).catch(() => {})
}

async function started<T extends { start: () => Promise<void> | void, stop: () => Promise<void> | void }> (steps: Steps, service: T): Promise<T> {
  await service.start()
  steps.push(async () => { await service.stop() })
  return service
}

/** The store: identity, SQLite, the blob store, peers and functions. */
async function openStore (options: LyingPeerOptions, steps: Steps): Promise<{ privateKey: PrivateKey, db: Database, blobs: BlobStore }> {
  await prepareDataDir(options.dataDir)
  const { privateKey } = await loadOrCreateIdentity(options.dataDir)
  const db = openDatabase(join(options.dataDir, 'rhizome.db'))
  steps.push(() => db.close())
  const blobs = createBlobStore({ dir: join(options.dataDir, 'blobs'), db })
  steps.push(async () => { await blobs.flush() })
  return { privateKey, db, blobs }
}

/** Start the lying peer; resolves once it serves, with its id, addresses and a stop. */
export async function startLyingPeer (options: LyingPeerOptions, onTask: (line: TaskLine) => void): Promise<{ peerId: string, addrs: string[], stop: () => Promise<void> }> {
  const log = createLogger('liar', { level: options.logLevel })
  const steps: Steps = []
  try {
    const { privateKey, db, blobs } = await openStore(options, steps)
    const peers = createPeerRepo(db)
    const blocklist = createBlocklist()
    const admission = createAdmission({ connectionsMax: ADMISSION_OPTIONS_DEFAULTS.connectionsMax, connectionsPerAddressMax: ADMISSION_OPTIONS_DEFAULTS.connectionsPerAddressMax, limitLoopback: ADMISSION_OPTIONS_DEFAULTS.limitLoopback })
    const host = await createHost({
      privateKey,
      networkId: options.networkId,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: options.bootstrap,
      mdns: false,
      isBlocked: (remote) => blocklist.isBlocked(remote.toString(), Date.now()),
      admitsInbound: (addr) => { const { address, loopback } = remoteAddressOf(addr); return admission.admits(address, loopback) }
    })
    steps.push(async () => { await host.stop() })
    const slots = slotLimits(options.slots, availableParallelism())
    const membership = createMembership({
      selfId: host.peerId.toString(),
      networkId: options.networkId,
      version: VERSION,
      incarnation: Date.now(),
      addrs: announcedAddrs(host.getMultiaddrs().map(a => a.toString())),
      capacity: { slotsFree: slots.slotsMax, slotsMax: slots.slotsMax, queueLength: 0 },
      announceIntervalMs: options.announceIntervalMs,
      suspectAfterMs: options.suspectAfterMs,
      goneAfterMs: options.goneAfterMs,
      announceMinIntervalMs: announceMinIntervalMs(options.announceIntervalMs)
    })
    const admissionService = await started(steps, new AdmissionService({
      host, admission, log: log.child('admission'), now: Date.now,
      isAlive: (id) => membership.stateOf(id) === 'alive',
      scoreOf: (id) => peers.getPeer(id)?.score ?? 0
    }))
    const scoring = new PeerScoring({
      peers, blocklist, log, now: Date.now,
      onScore: (id, score) => { admissionService.handleScore(id, score) },
      hangUp: async (peer) => { await host.hangUp(peer) }
    })
    const onViolation = scoring.handleViolation.bind(scoring)
    const rpc = await started(steps, new RpcService({ libp2p: host, log: log.child('rpc'), onViolation }))
    const { networkId } = options
    await started(steps, new MembershipService({
      membership, host, pubsub: host.services.pubsub, rpc, log: log.child('membership'), now: Date.now, onViolation,
      onEvent: (event) => { recordMembershipEvent({ peers, membership }, event) },
      onProven: (id) => { admissionService.handleProven(id) },
      knownPeers: () => redialCandidates({ peers }, REDIAL_PEERS_MAX)
    }, { networkId }))
    const blobService = await started(steps, new BlobService({ rpc, blobs }, { networkId }))
    const fetchBlob = blobService.fetch.bind(blobService)
    const functions = await started(steps, new FunctionService({
      rpc, blobs, fetchBlob, functions: createFunctionRepo(db), contentRouting: host.contentRouting, selfId: host.peerId,
      alivePeers: () => membership.view().filter(p => p.state === 'alive').map(p => p.peerId),
      log: log.child('functions'), onViolation
    }, { networkId }))
    const sandbox = createSandbox()
    steps.push(async () => { await sandbox.close() })
    await started(steps, new TaskService({
      rpc, sandbox: lyingSandbox(sandbox, { lieRate: options.lieRate, seed: options.seed, onTask }),
      fetchBlob, blobs, selfId: host.peerId, log: log.child('tasks'), onViolation,
      loadFunction: async (fn, loadOptions) => await functions.load(fn, loadOptions),
      sign: ed25519Signer(privateKey),
      dial: async (peer, dialOptions) => await host.dial(peer, dialOptions),
      connected: (peer) => host.getConnections(peer).some(connection => connection.status === 'open'),
      onCapacity: (capacity) => { membership.handleCapacity(capacity) }
    }, { networkId, ...slots }))
    return { peerId: host.peerId.toString(), addrs: host.getMultiaddrs().map(a => a.toString()), stop: async () => { await unwind(steps) } }
  } catch (err) {
    await unwind(steps)
    throw err
  }
}

function numberFlag (values: Record<string, unknown>, name: string, fallback: number, min: number, max: number): number {
  const raw = values[name]
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number from ${min} to ${max}, got ${JSON.stringify(raw)}`)
  return n
}

/** The command line, checked. Membership timing defaults to the fast timing integration tests use. */
export function parseLyingPeerArgs (argv: string[]): LyingPeerOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      'data-dir': { type: 'string' },
      'network-id': { type: 'string' },
      bootstrap: { type: 'string', multiple: true },
      'lie-rate': { type: 'string' },
      seed: { type: 'string' },
      slots: { type: 'string' },
      'announce-interval-ms': { type: 'string' },
      'suspect-after-ms': { type: 'string' },
      'gone-after-ms': { type: 'string' },
      'log-level': { type: 'string' },
      'stop-on-stdin-end': { type: 'boolean' }
    }
  })
  const dataDir = values['data-dir']
  const networkId = values['network-id']
  if (dataDir === undefined || networkId === undefined) throw new Error('--data-dir DIR and --network-id ID are required')
  if (values['lie-rate'] === undefined) throw new Error('--lie-rate P (0..1) is required')
  const logLevel = (values['log-level'] ?? 'info') as LogLevel
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(logLevel)) throw new Error(`--log-level must be debug, info, warn, error or silent, got ${JSON.stringify(logLevel)}`)
  return {
    dataDir,
    networkId,
    bootstrap: values.bootstrap ?? [],
    lieRate: numberFlag(values, 'lie-rate', 0, 0, 1),
    seed: values.seed ?? '0',
    slots: Math.floor(numberFlag(values, 'slots', 4, 1, 1024)),
    announceIntervalMs: numberFlag(values, 'announce-interval-ms', 500, 1, 3_600_000),
    suspectAfterMs: numberFlag(values, 'suspect-after-ms', 2000, 1, 3_600_000),
    goneAfterMs: numberFlag(values, 'gone-after-ms', 4000, 1, 3_600_000),
    logLevel,
    stopOnStdinEnd: values['stop-on-stdin-end'] === true
  }
}

async function main (): Promise<void> {
  let options: LyingPeerOptions
  try {
    options = parseLyingPeerArgs(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`lying peer: ${(err as Error).message}\n`)
    process.exit(2)
  }
  const print = (line: object): void => { process.stdout.write(JSON.stringify(line) + '\n') }
  const peer = await startLyingPeer(options, print)
  let stopping = false
  const stop = (): void => {
    if (stopping) return
    stopping = true
    void peer.stop().finally(() => process.exit(0))
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  if (options.stopOnStdinEnd === true) {
    process.stdin.on('end', stop)
    process.stdin.on('error', stop)
    process.stdin.resume()
  }
  print({ event: 'ready', peerId: peer.peerId, addrs: peer.addrs, lieRate: options.lieRate, seed: options.seed })
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    process.stderr.write(`lying peer failed to start: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  })
}
