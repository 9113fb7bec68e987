/**
 * Home-set machine — theory of operation.
 *
 * PARTS. One peer of a run's home set runs three machines for the run and this one glues them:
 *  - the LEASE (every home-set peer): grants and refuses the lease, and asks for it when the
 *    driver's lease has lapsed (takeover) — see ../lease/lease.ts for why two drivers never
 *    overlap;
 *  - the memo REPLICA (every home-set peer): persists what a driver appends, refuses drivers of
 *    an older epoch, answers gathers and probes;
 *  - the memo DRIVER (only while this peer drives): pushes each new entry to the home set and says
 *    when a majority persisted it; after winning the lease it first GATHERS the memo from a
 *    majority, so it knows every entry any earlier driver's code depended on.
 * Messages between the memo driver and the replica of the same peer never leave it: they are
 * handed across here, in the order the machines produced them.
 *
 * LIFE OF A RUN on one peer:
 *
 *   follower ──lease won──► gathering ──memo gathered──► driving ──outcome durable──► settled
 *      ▲   └─────────── outcome in the local memo (persisted by this replica) ───────────┘ ▲
 *      └───── lease lost / fenced (`stop`) ◄────── gathering, driving                       │
 *   gathering ──the gathered memo holds the outcome──► pushes it back out ─────────────────┘
 *
 * A new run is no special case: the first peer of the home set in rendezvous order asks for the
 * lease at once (../lease/lease.ts), gathers an empty memo from a majority (one round trip), and
 * drives. A takeover is the same path with a non-empty memo.
 *
 * DELIVERY RULE. The shell hands the driver's new entries to `handleLocalEntry` and gives them to
 * the code only on `deliver`, i.e. once a majority of the home set persisted them. A later driver
 * gathers from a majority; two majorities share a peer; so every entry the code ever depended on
 * is in every later driver's memo, and its replay takes the same path. Entries never delivered may
 * be lost with the driver: the code never saw them, so a later driver that runs the work again
 * (and may get another value) contradicts nothing.
 *
 * SETTLED. The run's outcome is the entry RESULT_ENTRY_ID, added by the driver when the code
 * returned (or the run failed). When this peer's replica persists it, the run is over here:
 * `settled` is said once, the lease stops asking for the run (its grantor part still answers, so
 * a peer that missed the outcome can win a lease, gather, and learn it), and a driver here stops
 * renewing once the outcome is durable. A peer that takes over and finds the outcome in the
 * gathered memo does not replay anything: its memo driver pushes the memo back out (repairing the
 * replicas that missed the outcome) and it settles when its own replica has it.
 *
 * REPAIR. When membership says a home-set peer is gone for good, the DRIVER (and only it: one
 * source of reconfiguration per epoch) replaces it in place by the best alive peer in rendezvous
 * order on the run id (`add-member`: the shell sends it the run's spec), persists the new set,
 * and sends it to every member as `home-set { epoch }`. A member takes it only from the holder of
 * the newest lease it knows, for that lease's epoch: a deposed driver cannot reconfigure. The
 * lease and the memo driver switch to the new set (src/protocol/lease handleHomeSet; the memo
 * driver pulls the newcomer's empty memo and pushes it everything). Entries a majority of the old
 * set acknowledged are still held by a majority of the new one, since only a gone peer left.
 * Two members that briefly hold different sets are the case docs/LIMITS.md names as not covered.
 *
 * TRUST. Memo messages from peers outside the home set are ignored: only a home-set peer can
 * drive, and a stranger must not raise a replica's fence. The lease refuses strangers itself.
 *
 * CLOCK. Time is passed in; the parts each keep the largest time they were given.
 */
import { ConfigError, assert } from '../../model/errors.ts'
import { OutputQueue } from '../output-queue.ts'
import { createLease } from '../lease/index.ts'
import type { Lease, LeaseOutput } from '../lease/index.ts'
import { createMemoDriver, createMemoReplica } from '../memo/index.ts'
import type { DriverMessage, DriverOutput, MemoDriver, MemoEntry, MemoReplica, MemoValue, ReplicaMessage, ReplicaOutput } from '../memo/index.ts'
import { RESULT_ENTRY_ID } from './constants.ts'
import { rendezvousOwners } from '../placement.ts'
import { HOME_SET_MAX } from '../lease/index.ts'
import type { HomeMessage, HomeOutput, HomeRole, HomeRun, HomeRunOptions, HomeSetMessage, HomeVerdict } from './index.ts'

const DRIVER_MESSAGES = new Set(['append', 'gather', 'probe'])
const REPLICA_MESSAGES = new Set(['ack', 'refused', 'memo-part', 'probe-reply'])

export class HomeRunMachine implements HomeRun {
  private readonly o: HomeRunOptions
  private members: string[]
  private readonly lease: Lease
  private readonly replica: MemoReplica
  private driver: MemoDriver | undefined
  /** The epoch of `driver`, and whether its gather is done (`drive` said). */
  private drivingEpoch: number | undefined
  private driving = false
  private settledEntry: MemoEntry | undefined
  /** Ids this driver added and has not delivered yet (a gather's re-stamped entries are not the code's news). */
  private readonly undelivered = new Set<string>()
  private readonly out: OutputQueue<HomeOutput>

  constructor (options: HomeRunOptions, nowMs: number) {
    if (typeof options.runId !== 'string' || options.runId.length === 0) throw new ConfigError('runId', 'a run id is a non-empty string')
    if (!options.homeSet.includes(options.selfId)) throw new ConfigError('homeSet', 'a home-set machine runs on a peer of the home set')
    this.o = options
    this.members = [...options.homeSet]
    this.lease = createLease({ selfId: options.selfId, homeSet: this.members, restored: options.restored?.promise, ...options.lease }, nowMs)
    this.replica = createMemoReplica({ ...options.memo, entries: options.restored?.entries, epoch: options.restored?.epoch })
    const limits = { ...options.memo }
    const entriesMax = limits.memoEntriesMax ?? 10_000
    // One input can move a whole memo (a gather answered, a takeover's push-back): room for it twice, plus the sends.
    this.out = new OutputQueue(4 * entriesMax + 64 * this.members.length + 64)
    this.settledEntry = this.replica.memo().find(e => e.id === RESULT_ENTRY_ID)
    if (this.settledEntry !== undefined) this.out.push({ type: 'settled', entry: this.settledEntry })
    this.drain(nowMs)
  }

  // --- inputs ----------------------------------------------------------------------------------

  handleMessage (from: string, message: HomeMessage, nowMs: number): HomeVerdict {
    let verdict: HomeVerdict
    switch (message.type) {
      case 'lease-request':
        verdict = leaseVerdict(this.lease.handleLeaseRequest(from, message.epoch, message.round, nowMs))
        break
      case 'lease-grant':
        verdict = leaseVerdict(this.lease.handleLeaseGrant(from, message.epoch, message.round, nowMs))
        break
      case 'lease-refuse':
        verdict = leaseVerdict(this.lease.handleLeaseRefusal(from, message.epoch, message.round, message.reason, nowMs))
        break
      case 'home-set':
        verdict = this.handleHomeSetMessage(from, message, nowMs)
        break
      default:
        verdict = this.handleMemoMessage(from, message, nowMs)
    }
    this.drain(nowMs)
    return verdict
  }

  private handleMemoMessage (from: string, message: DriverMessage | ReplicaMessage, nowMs: number): HomeVerdict {
    if (!this.members.includes(from) || from === this.o.selfId) return 'ignored'
    if (DRIVER_MESSAGES.has(message.type)) return this.replica.handleMessage(from, message as DriverMessage, nowMs)
    if (REPLICA_MESSAGES.has(message.type)) return this.driver?.handleMessage(from, message as ReplicaMessage, nowMs) ?? 'ignored'
    return 'malformed'
  }

  handleLocalEntry (entry: { id: string, value: MemoValue }, nowMs: number): boolean {
    return this.handleLocalEntries([entry], nowMs)
  }

  handleLocalEntries (entries: ReadonlyArray<{ id: string, value: MemoValue }>, nowMs: number): boolean {
    const driver = this.driver
    if (!this.driving || driver === undefined) return false
    const fresh: Array<{ id: string, value: MemoValue }> = []
    for (const entry of entries) {
      if (driver.isDurable(entry.id)) {
        // Already durable with the memo's value (a replay asking again): nothing to wait for.
        this.out.push({ type: 'deliver', id: entry.id, epoch: this.drivingEpoch as number })
        continue
      }
      this.undelivered.add(entry.id)
      fresh.push(entry)
    }
    if (fresh.length > 0) driver.handleLocalEntries(fresh, nowMs)
    this.drain(nowMs)
    return true
  }

  takesEntries (): boolean {
    return this.driving && this.driver !== undefined
  }

  handleTimeout (nowMs: number): void {
    // A settled peer no longer asks for the lease; its grantor part only answers.
    if (this.settledEntry === undefined || this.driver !== undefined) this.lease.handleTimeout(nowMs)
    this.driver?.handleTimeout(nowMs)
    this.drain(nowMs)
  }

  // --- queries ---------------------------------------------------------------------------------

  poll (): HomeOutput | undefined {
    return this.out.poll()
  }

  nextTimeoutMs (): number {
    const lease = this.settledEntry === undefined || this.driver !== undefined ? this.lease.nextTimeoutMs() : Infinity
    return Math.min(lease, this.driver?.nextTimeoutMs() ?? Infinity)
  }

  role (): HomeRole {
    if (this.settledEntry !== undefined) return 'settled'
    if (this.driver === undefined) return 'follower'
    return this.driving ? 'driving' : 'gathering'
  }

  epoch (): number | undefined {
    return this.drivingEpoch
  }

  memo (): MemoEntry[] {
    return this.replica.memo()
  }

  homeSet (): string[] {
    return [...this.members]
  }

  // --- home-set repair ---------------------------------------------------------------------------

  handlePeersGone (gone: readonly string[], candidates: readonly string[], nowMs: number): boolean {
    if (!this.driving || this.drivingEpoch === undefined) return false
    const lost = this.members.filter(p => p !== this.o.selfId && gone.includes(p))
    if (lost.length === 0) return false
    const pool = rendezvousOwners(this.o.runId, candidates.filter(p => !this.members.includes(p) && !gone.includes(p)), lost.length)
    if (pool.length === 0) return false
    const next = this.members.map(p => lost.includes(p) && pool.length > 0 ? pool.shift() as string : p)
    const removed = this.members.filter(p => !next.includes(p))
    const added = next.filter(p => !this.members.includes(p))
    // The newcomers learn the run (its spec) first, then everyone hears the new set; the memo
    // driver then pulls each newcomer's (empty) memo and pushes it all it lacks.
    for (const peer of added) this.out.push({ type: 'add-member', peer, homeSet: [...next] })
    this.applyHomeSet(next, nowMs)
    // Everyone in either set hears it: a replaced peer that comes back stops asking for the lease.
    const told = new Set([...next, ...removed])
    told.delete(this.o.selfId)
    for (const peer of told) this.out.push({ type: 'send', to: peer, message: { type: 'home-set', epoch: this.drivingEpoch, homeSet: [...next] } })
    this.drain(nowMs)
    return true
  }

  /** A home-set change from the driver: taken only from the holder of the newest lease this peer knows. */
  private handleHomeSetMessage (from: string, message: HomeSetMessage, nowMs: number): HomeVerdict {
    const lease = this.lease.snapshot()
    if (message.epoch < lease.highestEpoch || lease.promise === undefined || lease.promise.holder !== from || lease.promise.epoch !== message.epoch) return 'refused'
    if (!message.homeSet.includes(from) || message.homeSet.length > HOME_SET_MAX) return 'malformed'
    if (sameMembers(message.homeSet, this.members)) return 'ignored'
    this.applyHomeSet(message.homeSet, nowMs)
    return 'accepted'
  }

  private applyHomeSet (next: string[], nowMs: number): void {
    this.members = [...next]
    this.out.push({ type: 'persist-home-set', homeSet: [...next] })
    this.lease.handleHomeSet(this.members, nowMs)
    this.driver?.handleHomeSet(this.members, nowMs)
  }

  outcome (): MemoEntry | undefined {
    return this.settledEntry
  }

  // --- the parts' outputs ----------------------------------------------------------------------

  /** Drain the three parts until none has anything left; messages between the local driver and
   *  replica are handed across here, so one pass may feed another. */
  private drain (nowMs: number): void {
    for (let moved = true; moved;) {
      moved = false
      for (let o = this.lease.poll(); o !== undefined; o = this.lease.poll()) { moved = true; this.onLease(o, nowMs) }
      const driver = this.driver
      if (driver !== undefined) {
        for (let o = driver.poll(); o !== undefined; o = driver.poll()) { moved = true; if (this.driver === driver) this.onDriver(o, nowMs) }
      }
      for (let o = this.replica.poll(); o !== undefined; o = this.replica.poll()) { moved = true; this.onReplica(o, nowMs) }
    }
  }

  private onLease (o: LeaseOutput, nowMs: number): void {
    switch (o.type) {
      case 'request':
        this.sendLease(o.to, { type: 'lease-request', epoch: o.epoch, round: o.round })
        return
      case 'grant':
        this.sendLease(o.to, { type: 'lease-grant', epoch: o.epoch, round: o.round })
        return
      case 'refuse':
        this.sendLease(o.to, { type: 'lease-refuse', epoch: o.epoch, round: o.round, reason: o.reason })
        return
      case 'persist':
        this.out.push({ type: 'persist-lease', promise: { ...o.promise } })
        return
      case 'became-driver':
        this.becameDriver(o.epoch, nowMs)
        return
      case 'lost-lease':
        this.stopDriving(o.epoch, 'lost-lease')
        return
      case 'fenced':
        // Nothing for the replica: the lease's highest epoch may be a candidacy that never won (a
        // peer cut off alone asks again and again, each time one epoch higher). Fencing our replica
        // at it would refuse the driver a majority still renews — which keeps its lease, so nobody
        // could take over either: the run would stall. A driver that did win a higher epoch fences
        // the replicas itself, with its gather, before anything of its own is durable.
    }
  }

  private sendLease (to: string, message: HomeMessage): void {
    assert(to !== this.o.selfId, 'the lease answers its own grantor in place')
    this.out.push({ type: 'send', to, message })
  }

  private becameDriver (epoch: number, nowMs: number): void {
    if (this.settledEntry !== undefined) return
    assert(this.driver === undefined || (this.drivingEpoch ?? 0) < epoch, 'a lease is won once per epoch')
    this.driver = createMemoDriver({ ...this.o.memo, self: this.o.selfId, epoch, homeSet: this.members, gather: true })
    this.drivingEpoch = epoch
    this.driving = false
    this.replica.handleEpoch(epoch, nowMs)
  }

  private stopDriving (epoch: number, reason: 'lost-lease' | 'fenced'): void {
    if (this.driver === undefined || this.drivingEpoch !== epoch) return
    const wasDriving = this.driving
    this.driver = undefined
    this.drivingEpoch = undefined
    this.driving = false
    this.undelivered.clear()
    // A peer that only gathered (and found the outcome, or had not started the code) has nothing to stop.
    if (wasDriving || this.settledEntry === undefined) this.out.push({ type: 'stop', epoch, reason })
  }

  private onDriver (o: DriverOutput, nowMs: number): void {
    switch (o.type) {
      case 'send':
        if (o.to === this.o.selfId) this.replica.handleMessage(this.o.selfId, o.message, nowMs)
        else this.out.push({ type: 'send', to: o.to, message: o.message })
        return
      case 'gathered':
        this.gathered(o.entries)
        return
      case 'durable':
        this.durable(o.id)
        return
      case 'conflict':
        this.out.push(o)
        return
      case 'fenced':
        this.stopDriving(this.drivingEpoch as number, 'fenced')
    }
  }

  private gathered (entries: MemoEntry[]): void {
    const epoch = this.drivingEpoch as number
    if (entries.some(e => e.id === RESULT_ENTRY_ID)) return // over already: the push-back settles the replicas
    this.driving = true
    this.out.push({ type: 'drive', epoch, memo: entries })
  }

  private durable (id: string): void {
    const epoch = this.drivingEpoch as number
    if (this.undelivered.delete(id)) this.out.push({ type: 'deliver', id, epoch })
    if (id === RESULT_ENTRY_ID) {
      // Over: a majority holds the outcome. Stop renewing; whoever missed it learns it by a gather.
      this.driver = undefined
      this.drivingEpoch = undefined
      this.driving = false
      this.undelivered.clear()
    }
  }

  private onReplica (o: ReplicaOutput, nowMs: number): void {
    switch (o.type) {
      case 'persist': {
        this.out.push({ type: 'persist-memo', entries: o.entries, epoch: o.epoch })
        const outcome = o.entries.find(e => e.id === RESULT_ENTRY_ID)
        if (outcome !== undefined && this.settledEntry === undefined) {
          this.settledEntry = outcome
          this.out.push({ type: 'settled', entry: outcome })
        }
        return
      }
      case 'send':
        if (o.to === this.o.selfId) {
          const driver = this.driver
          if (driver !== undefined) driver.handleMessage(this.o.selfId, o.message, nowMs)
        } else {
          this.out.push({ type: 'send', to: o.to, message: o.message })
        }
        return
      case 'conflict':
        this.out.push(o)
    }
  }
}

function sameMembers (a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((p, i) => p === b[i])
}

function leaseVerdict (verdict: 'accepted' | 'ignored' | 'invalid'): HomeVerdict {
  return verdict === 'invalid' ? 'malformed' : verdict
}
