/**
 * The shell around durable runs' home sets (src/protocol/home/): for every run whose home set
 * includes this peer it keeps one HomeRun machine, moves its messages over the home protocol
 * (src/wire/home-codec.ts), writes what it asks to persist (src/store/home-repo.ts) before
 * sending what follows, arms its one timer, and tells the run service (`HomeRuns`) when to drive a
 * run, when an entry may be delivered to the code, when to stop, and when a run is settled.
 *
 * Opening a run: the peer a client asks is the run's first home-set peer (it drives, near the
 * client, with no forwarding hop); the other R − 1 are the run id's rendezvous owners among the
 * other alive peers. It asks each to keep the run (`open`) and answers the client once a majority
 * persisted it: from then on the run survives the loss of any minority of its home set.
 *
 * A restarted peer reads back every unsettled run it keeps and rejoins its home set: its lease
 * promise and memo replica are as they were, so it grants and answers as before, and may take
 * the run over if the driver is gone.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import * as dagCbor from '@ipld/dag-cbor'
import { RhizomeError, assert } from '../model/errors.ts'
import { rendezvousOwners } from '../protocol/placement.ts'
import { createHomeRun, RESULT_ENTRY_ID } from '../protocol/home/index.ts'
import type { HomeOutput, HomeRun } from '../protocol/home/index.ts'
import type { MemoEntry, MemoValue } from '../protocol/memo/index.ts'
import { HOME_FRAME_BYTES_MAX, parseHomeRequest, parseHomeStatus } from '../wire/home-codec.ts'
import type { HomeRequest, HomeStatus } from '../wire/home-codec.ts'
import { HOME_RUNS_LISTED_MAX } from '../store/home-repo.ts'
import type { HomeRepo, HomeRunRow } from '../store/home-repo.ts'
import type { Logger } from '../model/log.ts'
import { Lifecycle } from './lifecycle.ts'
import type { RpcService } from './rpc.ts'

/** A durable run's spec: what any home-set peer needs to drive it. Stored and sent as dag-cbor. */
export interface RunSpec {
  workflow: string
  export: string
  /** dag-cbor array of the arguments. */
  args: Uint8Array
  startedMs: number
  /** The peer that opened the run (its first home-set peer). */
  opener: string
  /** A child run: its parent's run id, and the ids of the runs above it, root first (cycle checks). */
  parent?: string
  ancestors?: string[]
}

/** What the home service tells the run service. Called outside the machine's input handling. */
export interface HomeRuns {
  /** This peer now keeps the run (it can answer for it, and may take it over). */
  opened: (runId: string, spec: RunSpec) => void
  drive: (runId: string, spec: RunSpec, epoch: number, memo: MemoEntry[]) => void
  /** Entries of the run driven here that a majority now keeps (those of one drain together). */
  deliver: (runId: string, ids: string[]) => void
  stop: (runId: string, reason: 'lost-lease' | 'fenced') => void
  settled: (runId: string, spec: RunSpec, outcome: MemoEntry) => void
  /** A signal relayed to this peer for a run it drives. */
  signal: (runId: string, name: string, value: Uint8Array) => void
}

export interface HomeServiceComponents {
  repo: HomeRepo
  rpc: Pick<RpcService, 'handle' | 'unhandle' | 'request'>
  selfId: string
  /** Alive peers other than this one (membership). */
  alivePeers: () => string[]
  /** Peers membership holds gone (missed announcements past goneAfterMs): candidates for repair. */
  gonePeers: () => string[]
  runs: HomeRuns
  log: Logger
}

export interface HomeServiceInit {
  networkId: string
  /** Default HOME_SET_SIZE_DEFAULT (3). */
  homeSetSize?: number
  /** Lease timings, for tests and benchmarks (defaults: src/protocol/lease/constants.ts). */
  lease?: { leaseMs?: number, renewMs?: number, graceMs?: number, staggerMs?: number }
}

/**
 * Lease timings a real peer uses (the protocol's defaults, src/protocol/lease/constants.ts, are
 * tuned for the simulator's LAN model). A peer's event loop also runs workflow activations,
 * SQLite commits and hundreds of task answers at once; under load on a small machine it stalls for
 * a few hundred ms now and then, and a driver that misses its renewals for 500 ms (the default
 * usable lease) is deposed and its run replayed for nothing. With a 1 s lease and renewals every
 * 250 ms the driver survives a 650 ms stall; a dead driver is replaced after about
 * leaseMs + graceMs + one round trip, ~1.2 s. The ratios still hold: clockDriftMaxMs + 2·renewMs < leaseMs.
 */
export const PEER_LEASE_TIMINGS = Object.freeze({ leaseMs: 1000, renewMs: 250, graceMs: 100, staggerMs: 100 })

/** How long one home message may wait for its peer: a lease round is 200 ms, so an answer later than this is useless. */
const HOME_MESSAGE_TIMEOUT_MS = 2_000
/** How long opening a run waits for a majority of its home set to keep it. */
export const HOME_OPEN_TIMEOUT_MS = 10_000
/** Home messages on one stream at once: lease rounds and memo batches of up to 64 runs per pair of peers. */
const HOME_INFLIGHT_MAX = 256

export function homeProtocol (networkId: string): string {
  return `/rhizome/${networkId}/home/1.0.0`
}

/** Fewer home-set peers kept the run than a majority: it was not started. */
export class HomeSetUnavailableError extends RhizomeError {
  constructor (runId: string, acked: number, needed: number) {
    super('ERR_HOME_SET_UNAVAILABLE', `run ${runId} was not started: ${acked} of its home-set peers kept it, ${needed} are needed`, {
      retryable: true,
      hint: 'too few peers are reachable to keep the run durable; check `rhizome peers` and start it again'
    })
    this.name = 'HomeSetUnavailableError'
  }
}

interface Held {
  machine: HomeRun
  spec: RunSpec
  homeSet: string[]
  timer?: ReturnType<typeof setTimeout>
}

export class HomeService {
  readonly protocol: string
  private readonly c: HomeServiceComponents
  private readonly init: HomeServiceInit
  private readonly lifecycle = new Lifecycle('the home service')
  private readonly held = new Map<string, Held>()

  constructor (components: HomeServiceComponents, init: HomeServiceInit) {
    this.c = components
    this.init = init
    this.protocol = homeProtocol(init.networkId)
  }

  get homeSetSize (): number {
    return this.init.homeSetSize ?? 3
  }

  async start (): Promise<void> {
    this.lifecycle.start()
    await this.c.rpc.handle({
      protocol: this.protocol,
      frameBytesMax: HOME_FRAME_BYTES_MAX,
      inflightMax: HOME_INFLIGHT_MAX,
      handler: async (body, { peerId }) => await this.handle(parseHomeRequest(body), peerId.toString())
    })
    // Rejoin the home sets of runs not over yet: the machines take them over if their driver is gone.
    for (const row of this.c.repo.listUnsettled(HOME_RUNS_LISTED_MAX)) this.load(row)
    this.repairTimer = setInterval(() => { this.repair() }, HOME_REPAIR_CHECK_MS)
    this.repairTimer.unref?.()
  }

  private repairTimer: ReturnType<typeof setInterval> | undefined

  /** Runs driven here whose home set lost a peer for good get a new one (the machine decides). */
  private repair (): void {
    const gone = this.c.gonePeers()
    if (gone.length === 0) return
    const alive = this.c.alivePeers().filter(p => p !== this.c.selfId)
    for (const [runId, h] of this.held) {
      if (h.machine.role() !== 'driving') continue
      if (h.machine.handlePeersGone(gone, alive, Date.now())) this.drain(runId, h)
    }
  }

  async stop (): Promise<void> {
    this.lifecycle.stop()
    clearInterval(this.repairTimer)
    await this.c.rpc.unhandle(this.protocol)
    for (const h of this.held.values()) clearTimeout(h.timer)
    this.held.clear()
  }

  /** The home set a run opened here gets: this peer first, then the rendezvous owners of the run id. */
  homeSetFor (runId: string): string[] {
    const others = this.c.alivePeers().filter(p => p !== this.c.selfId)
    return [this.c.selfId, ...rendezvousOwners(runId, others, this.homeSetSize - 1)]
  }

  /** Open a durable run here: resolves once a majority of its home set has persisted it. */
  async open (runId: string, spec: RunSpec): Promise<string[]> {
    const homeSet = this.homeSetFor(runId)
    const specBytes = dagCbor.encode(spec)
    this.keep(runId, specBytes, homeSet)
    const needed = Math.floor(homeSet.length / 2) + 1
    let acked = 1
    await new Promise<void>((resolve, reject) => {
      let answered = 1
      const settle = (): void => {
        if (acked >= needed) resolve()
        else if (answered === homeSet.length) reject(new HomeSetUnavailableError(runId, acked, needed))
      }
      settle()
      for (const peer of homeSet.slice(1)) {
        this.c.rpc.request(peerIdFromString(peer), this.protocol, { op: 'open', runId, spec: specBytes, homeSet }, { timeoutMs: HOME_OPEN_TIMEOUT_MS, signal: this.lifecycle.signal })
          .then(() => { acked += 1 }, (err: unknown) => { this.c.log.debug('home open not kept', { run: runId, peer, error: (err as Error).message }) })
          .finally(() => { answered += 1; settle() })
      }
    })
    return homeSet
  }

  /** A run whose open did not reach a majority: it was never started. Stop its machine here and
   *  mark it over in the store, so a restart does not rejoin it. */
  forget (runId: string): void {
    const h = this.held.get(runId)
    if (h !== undefined) clearTimeout(h.timer)
    this.held.delete(runId)
    this.c.repo.setSettled(runId)
  }

  /**
   * The driver's code produced an entry: replicate it; `deliver` follows once durable. False if no
   * longer driving. The entries of one turn of the event loop go to the machine together, at the
   * end of the turn (setImmediate): each replica then commits and acks them in one append, instead
   * of one commit (a disk sync) and one message each. An entry queued while the lease is lost in
   * the same turn is dropped with the run: the code never saw it, so nothing depends on it.
   */
  localEntry (runId: string, entry: { id: string, value: MemoValue }): boolean {
    const h = this.held.get(runId)
    if (h === undefined || !h.machine.takesEntries()) return false
    const queued = this.entriesQueued.get(runId)
    if (queued !== undefined) {
      queued.push(entry)
      return true
    }
    this.entriesQueued.set(runId, [entry])
    if (this.entriesQueued.size === 1) setImmediate(() => { this.flushEntries() })
    return true
  }

  /** Local entries of this turn, per run, in the order the run service made them. */
  private readonly entriesQueued = new Map<string, Array<{ id: string, value: MemoValue }>>()

  private flushEntries (): void {
    const queued = [...this.entriesQueued]
    this.entriesQueued.clear()
    if (this.lifecycle.stopping) return
    for (const [runId, entries] of queued) {
      const h = this.held.get(runId)
      if (h === undefined) continue
      if (!h.machine.handleLocalEntries(entries, Date.now())) {
        // No longer driving since they were queued: as `localEntry` answering false would say
        // (a run that ended meanwhile has nothing to stop).
        if (h.machine.role() !== 'settled') this.later(() => { this.c.runs.stop(runId, 'lost-lease') })
        continue
      }
      this.drain(runId, h)
    }
  }

  /** What this peer knows of a run (for the API, and for peers asking over the home protocol). */
  status (runId: string): HomeStatus {
    const h = this.held.get(runId)
    const row = this.c.repo.getRun(runId)
    if (h === undefined && row === undefined) return { known: false }
    const stored = h === undefined ? this.c.repo.getMemo(runId, RESULT_ENTRY_ID) : undefined
    const outcome = h !== undefined ? h.machine.outcome()?.value : stored === undefined ? undefined : valueOf(stored)
    const status: HomeStatus = { known: true, homeSet: h?.homeSet ?? row!.homeSet, state: outcome === undefined ? 'running' : 'settled' }
    const spec = row?.spec
    if (spec !== undefined) status.spec = spec
    if (row?.lease !== undefined) { status.driver = row.lease.holder; status.epoch = row.lease.epoch }
    if (outcome !== undefined) {
      status.outcome = { cid: outcome.cid, peer: outcome.peer }
      if (outcome.bytes !== undefined) status.outcome.bytes = outcome.bytes
    }
    return status
  }

  /** Ask the peers that should know a run (its rendezvous owners, then every alive peer) until one does. */
  async findRun (runId: string, signal?: AbortSignal): Promise<HomeStatus> {
    const local = this.status(runId)
    if (local.known) return local
    return await this.askOthers(runId, [], signal)
  }

  /**
   * What the other peers know of a run this peer keeps but may have fallen behind on (it was
   * replaced in the home set while down, or missed the outcome): its home set's members first,
   * then the rest in rendezvous order; the first that has it settled answers.
   */
  async findSettled (runId: string, signal?: AbortSignal): Promise<HomeStatus> {
    return await this.askOthers(runId, this.status(runId).homeSet ?? [], signal, true)
  }

  /**
   * Ask peers about a run, all at once (each answer within HOME_MESSAGE_TIMEOUT_MS, so a run id
   * nobody knows costs one timeout, not one per peer): `first` (the run's home set, when known),
   * then the run id's rendezvous owners — at most HOME_FIND_PEERS_MAX peers, and for a follower's
   * once-a-second poll (`settledOnly`) only the home set and FOLLOW_EXTRA_PEERS more. A settled
   * answer is preferred; then any that knows the run.
   */
  private async askOthers (runId: string, first: string[], signal: AbortSignal | undefined, settledOnly = false): Promise<HomeStatus> {
    const others = this.c.alivePeers().filter(p => p !== this.c.selfId)
    const ordered = [...new Set([...first.filter(p => p !== this.c.selfId), ...rendezvousOwners(runId, others, others.length)])]
    const asked = ordered.slice(0, settledOnly ? first.length + FOLLOW_EXTRA_PEERS : HOME_FIND_PEERS_MAX)
    const answers = await Promise.all(asked.map(async (peer) => {
      try {
        return parseHomeStatus(await this.c.rpc.request(peerIdFromString(peer), this.protocol, { op: 'status', runId }, { timeoutMs: HOME_MESSAGE_TIMEOUT_MS, signal }))
      } catch (err) {
        this.c.log.debug('home status not answered', { run: runId, peer, error: (err as Error).message })
        return undefined
      }
    }))
    return answers.find(a => a?.known === true && a.state === 'settled') ?? (settledOnly ? undefined : answers.find(a => a?.known === true)) ?? { known: false }
  }

  /** Relay a signal to the run's driver (this peer, or the holder of the lease as a home-set peer knows it). */
  async relaySignal (runId: string, name: string, value: Uint8Array): Promise<void> {
    const found = await this.findRun(runId)
    if (!found.known || found.driver === undefined) throw new RhizomeError('ERR_NOT_FOUND', `run ${runId} is not known to any reachable peer`, { hint: 'check the run id (`rhizome runs` on the peer that started it)' })
    if (found.state === 'settled') throw new RhizomeError('ERR_RUN_ENDED', `run ${runId} is not running any more (it has ended): it takes no more signals`, { hint: 'see its result with `rhizome run-status`' })
    if (found.driver === this.c.selfId) {
      this.c.runs.signal(runId, name, value)
      return
    }
    await this.c.rpc.request(peerIdFromString(found.driver), this.protocol, { op: 'signal', runId, name, value }, { timeoutMs: HOME_MESSAGE_TIMEOUT_MS })
  }

  // --- inbound ---------------------------------------------------------------------------------

  private async handle (request: HomeRequest, from: string): Promise<unknown> {
    switch (request.op) {
      case 'open':
        if (!request.homeSet.includes(this.c.selfId)) throw new RhizomeError('ERR_INVALID_INPUT', 'this peer is not in the home set it was asked to keep')
        this.keep(request.runId, request.spec, request.homeSet)
        return { ok: true }
      case 'msg': {
        const h = this.held.get(request.runId) ?? this.reload(request.runId)
        if (h === undefined) return {} // a run this peer never kept (or not yet: its open is on the way)
        h.machine.handleMessage(from, request.message, Date.now())
        this.drain(request.runId, h)
        return {}
      }
      case 'status':
        return this.status(request.runId)
      case 'signal':
        if (this.held.get(request.runId)?.machine.role() !== 'driving') throw new RhizomeError('ERR_NOT_FOUND', `this peer does not drive run ${request.runId}`, { retryable: true, hint: 'the run was taken over; ask again' })
        this.c.runs.signal(request.runId, request.name, request.value)
        return {}
    }
  }

  // --- machines --------------------------------------------------------------------------------

  /** Persist that this peer keeps the run, and start its machine. */
  private keep (runId: string, specBytes: Uint8Array, homeSet: string[]): void {
    if (this.held.has(runId)) return
    this.c.repo.openRun({ runId, spec: specBytes, homeSet, openedMs: Date.now() })
    const row = this.c.repo.getRun(runId)
    assert(row !== undefined, 'an opened run is stored')
    const h = this.load(row)
    if (h === undefined) throw new RhizomeError('ERR_INVALID_INPUT', `this peer was replaced in the home set of run ${runId} and does not keep it again`, { hint: 'the driver picks another peer for the home set' })
    this.c.runs.opened(runId, h.spec)
  }

  private reload (runId: string): Held | undefined {
    const row = this.c.repo.getRun(runId)
    return row === undefined ? undefined : this.load(row)
  }

  /** The run's machine from its stored row; undefined (and the run marked over here) when this
   *  peer is no longer in the run's home set — the driver replaced it while it was away, and told
   *  it so (src/protocol/home/home-run.ts handlePeersGone): it keeps nothing of the run any more. */
  private load (row: HomeRunRow): Held | undefined {
    if (!row.homeSet.includes(this.c.selfId)) {
      this.c.log.info('left the home set of a run: the driver replaced this peer', { run: row.runId })
      this.c.repo.setSettled(row.runId)
      return undefined
    }
    const spec = dagCbor.decode(row.spec) as RunSpec
    const entries = this.c.repo.listMemo(row.runId).map(e => ({ id: e.id, epoch: e.epoch, value: valueOf(e) }))
    const machine = createHomeRun({
      selfId: this.c.selfId,
      runId: row.runId,
      homeSet: row.homeSet,
      restored: { promise: row.lease, entries, epoch: row.memoEpoch },
      lease: this.init.lease ?? PEER_LEASE_TIMINGS
    }, Date.now())
    const h: Held = { machine, spec, homeSet: row.homeSet }
    this.held.set(row.runId, h)
    this.drain(row.runId, h)
    return h
  }

  private drain (runId: string, h: Held): void {
    // Deliveries of one drain go in one call (the run service hands them to the code in one
    // activation), still in order with what else the run service is told.
    let delivered: string[] = []
    const tell = (): void => {
      if (delivered.length === 0) return
      const ids = delivered
      delivered = []
      this.later(() => { this.c.runs.deliver(runId, ids) })
    }
    for (let o = h.machine.poll(); o !== undefined; o = h.machine.poll()) {
      if (o.type === 'deliver') {
        delivered.push(o.id)
        continue
      }
      if (o.type === 'drive' || o.type === 'stop' || o.type === 'settled') tell()
      this.output(runId, h, o)
    }
    tell()
    clearTimeout(h.timer)
    h.timer = undefined
    if (!h.homeSet.includes(this.c.selfId)) {
      // Replaced in the home set (the driver told it so): the run is not this peer's to keep.
      this.c.log.info('left the home set of a run: the driver replaced this peer', { run: runId })
      if (this.held.get(runId) === h) this.forget(runId)
      return
    }
    if (this.lifecycle.stopping) return
    const next = h.machine.nextTimeoutMs()
    if (next === Infinity) {
      // Settled and idle: nothing to keep in memory; a message for it reloads it from disk.
      if (h.machine.role() === 'settled' && this.held.get(runId) === h) this.held.delete(runId)
      return
    }
    h.timer = setTimeout(() => {
      h.timer = undefined
      h.machine.handleTimeout(Date.now())
      this.drain(runId, h)
    }, Math.max(0, next - Date.now()))
    h.timer.unref?.()
  }

  private output (runId: string, h: Held, o: HomeOutput): void {
    switch (o.type) {
      case 'send':
        this.c.rpc.request(peerIdFromString(o.to), this.protocol, { op: 'msg', runId, message: o.message }, { timeoutMs: HOME_MESSAGE_TIMEOUT_MS, signal: this.lifecycle.signal })
          .catch((err: unknown) => { this.c.log.debug('home message not delivered', { run: runId, peer: o.to, type: o.message.type, error: (err as Error).message }) })
        return
      case 'persist-lease':
        this.c.repo.setLease(runId, o.promise)
        return
      case 'persist-home-set':
        this.c.repo.setHomeSet(runId, o.homeSet)
        h.homeSet = o.homeSet
        return
      case 'add-member':
        this.c.rpc.request(peerIdFromString(o.peer), this.protocol, { op: 'open', runId, spec: dagCbor.encode(h.spec), homeSet: o.homeSet }, { timeoutMs: HOME_OPEN_TIMEOUT_MS, signal: this.lifecycle.signal })
          .then(() => { this.c.log.info('home set repaired', { run: runId, added: o.peer }) },
            (err: unknown) => { this.c.log.warn('a new home-set peer did not take the run', { run: runId, peer: o.peer, error: (err as Error).message }) })
        return
      case 'persist-memo':
        this.c.repo.putMemo(runId, o.entries.map(e => ({ id: e.id, epoch: e.epoch, cid: e.value.cid, peer: e.value.peer, bytes: e.value.bytes })), o.epoch)
        return
      case 'drive':
        this.later(() => { this.c.runs.drive(runId, h.spec, o.epoch, o.memo) })
        return
      case 'deliver': // gathered by `drain`
        return
      case 'stop':
        this.later(() => { this.c.runs.stop(runId, o.reason) })
        return
      case 'settled':
        this.c.repo.setSettled(runId)
        this.later(() => { this.c.runs.settled(runId, h.spec, o.entry) })
        return
      case 'conflict':
        this.c.log.warn('memo conflict: the workflow or a task is not deterministic', { run: runId, id: o.id, kept: o.kept.value.cid, dropped: o.dropped.value.cid })
    }
  }

  /** Run-service callbacks never run inside a machine's input handling (they feed it again). */
  private later (fn: () => void): void {
    queueMicrotask(() => {
      if (this.lifecycle.stopping) return
      try {
        fn()
      } catch (err) {
        this.c.log.error('run service callback failed', { error: (err as Error).message })
      }
    })
  }
}

/** How often the peer checks the home sets of the runs it drives for peers gone for good. Membership
 *  declares a peer gone only after goneAfterMs of silence, so checking every few seconds adds little. */
export const HOME_REPAIR_CHECK_MS = 2_000

/** Peers beyond a run's home set asked by a follower's poll (the run may have moved by a repair). */
const FOLLOW_EXTRA_PEERS = 3

/** Peers asked, in rendezvous order, when looking for a run this peer does not keep. */
export const HOME_FIND_PEERS_MAX = 16

function valueOf (e: { cid: string, peer: string, bytes?: Uint8Array }): MemoValue {
  return e.bytes === undefined ? { cid: e.cid, peer: e.peer } : { cid: e.cid, peer: e.peer, bytes: e.bytes }
}
