/**
 * Run lease state machine — theory of operation.
 *
 * ONE MACHINE PER PEER PER RUN, playing two parts at once: GRANTOR (every home-set peer answers
 * the lease requests of whoever wants to drive) and REQUESTER (the peer that drives, or wants to).
 * Every input carries `nowMs`, the caller's clock; this file never reads a clock, draws a random
 * number or does I/O. Like membership, the machine keeps the largest time it was given: a clock
 * stepping back holds time still.
 *
 * GRANTOR. It keeps a promise {epoch, holder}: the highest epoch it has granted, and to whom, and
 * the local time at which its grant to that holder expires (grant time + leaseMs). A request
 * (from, epoch) is answered:
 *   - epoch < promise.epoch, or = promise.epoch from another peer → refuse 'stale-epoch' (fenced:
 *     the answer carries the highest epoch seen, so the sender learns what to beat);
 *   - epoch = promise.epoch from the holder → grant (a renewal: the expiry moves to now + leaseMs);
 *   - epoch > promise.epoch while the grant to ANOTHER holder has not expired → refuse 'held';
 *   - otherwise → the promise becomes {epoch, from}, is PERSISTED (a `persist` output, before the
 *     grant in the same poll order), and the grant is sent.
 * So a grantor grants at most one driver per epoch, never an epoch below one it granted, and never
 * two live grants at once — except that a grant to ITSELF counts only while it is the driver: the
 * peer knows its own mind, and a candidate that has not won (or a driver that lost its lease)
 * believes nothing that grant protects. So two candidates do not block each other: the one with
 * the higher epoch is granted, and the other steps down. The promise is all a grantor persists: it is written only when it
 * changes (a new epoch), never on renewal. A restarted grantor reads it back and treats it as
 * granted at the restart (expiry = restart + leaseMs): it does not know when its last grant was,
 * so it waits out the longest it could still be running.
 *
 * REQUESTER. To hold epoch e it sends rounds: a round is a request (e, round number) to every
 * home-set peer, its own grantor answered in place. It remembers when it SENT each round, and for
 * each grantor the send time of the latest round that grantor granted. Its lease is valid until
 *
 *     leaseEnd = (the majority-th latest of those send times) + leaseMs − clockDriftMaxMs
 *
 * on its own clock. When that first lies in the future, the peer has won: `became-driver { e }`.
 * A driver sends a round every renewMs; if leaseEnd passes before a majority renews, it emits
 * `lost-lease { e }` and must stop driving at once.
 *
 * WHY TWO DRIVERS NEVER OVERLAP. A majority of grantors granted rounds sent at or after the
 * majority-th latest send time s; each did so at or after s, so each honours its grant until at
 * least s + leaseMs on its own clock, and refuses every other driver until then. Any other driver
 * needs a majority too, so one of them is in both majorities: a second lease cannot be granted
 * while the first is believed. The driver counts from its SEND time, so network delay only
 * shortens its lease, never lengthens it. Clocks are used only to measure durations, so their
 * offsets do not matter; what matters is how far they MOVE against each other during one lease:
 * a driver whose clock steps back (time held still) believes longer, a grantor whose clock steps
 * forward expires early. THE BOUND: safety holds when, within any one lease, the driver's clock
 * falling behind plus any grantor's clock running ahead (steps and rate drift together) is at
 * most clockDriftMaxMs. The driver's usable lease per round is leaseMs − clockDriftMaxMs, and a
 * renewal must complete in that time minus renewMs (so clockDriftMaxMs + 2·renewMs < leaseMs is
 * required, leaving a round trip of slack for a lost round).
 *
 * TAKEOVER. A follower (home-set peer, not requesting) watches its own grantor: when its grant
 * expired more than graceMs ago plus rank × staggerMs, it becomes a candidate for epoch
 * highestEpoch + 1 (self-granted and persisted first, so a restart never reuses it). The rank is
 * its place in the home set's rendezvous order, which every peer computes alike: when the driver
 * fails, the best surviving peer in that order tries first, and the others see its requests —
 * each grant resets their watch — before their stagger runs out. (A rank counted from the failed
 * driver would need every peer to agree on who that was; after partitions they do not, and two
 * peers with the same rank duel again and again — the simulator found such runs.) A candidate
 * gives up ('follower' again) on a stale-epoch refusal, when it grants a higher epoch to someone
 * else, or when so many grantors refuse 'held' in one round that no majority is left. Whenever
 * it steps down (a failed attempt, or a lost lease) it waits a full leaseMs + graceMs +
 * rank × staggerMs from then before trying again, so two peers that failed together (a duel:
 * both asked for the same epoch) retry staggered by rank. A fresh run (nothing ever granted) is
 * started by the first peer of the home set at once; the others wait a lease first. Safety never
 * depends on the stagger or the grace: they only make duels rare.
 *
 * ROUNDS. Each round has a number unique in this life (epochs are never reused across lives, see
 * above), echoed in answers, so a late or duplicated grant is credited with the send time of the
 * round it answers, never a later one.
 *
 * HOME SET. Quorums are majorities of the home set this machine was given; safety needs every
 * peer to use the same home set for a run. A change is a reconfiguration: this machine drops
 * grants from peers that left and shortens its lease to match, but two peers with different home
 * sets at once are not covered (docs/LIMITS.md).
 */
import { OutputQueue } from '../output-queue.ts'
import { ConfigError, assert } from '../../model/errors.ts'
import { PEER_ID_CHARS_MAX } from '../../model/limits.ts'
import { DURATION_MS_LIMIT, EPOCH_MAX, HOME_SET_MAX, LEASE_DEFAULTS } from './constants.ts'
import type {
  InputVerdict, Lease, LeaseOptions, LeaseOutput, LeasePromise, LeaseRole, LeaseSnapshot, RefusalReason
} from './index.ts'

interface Settings {
  selfId: string
  leaseMs: number
  renewMs: number
  graceMs: number
  staggerMs: number
  clockDriftMaxMs: number
}

/** One round: a request, a persist, an answer per home-set peer and a few events, with room. */
const OUTPUT_QUEUE_LENGTH_MAX = 4 * HOME_SET_MAX + 16

export class LeaseMachine implements Lease {
  private readonly s: Settings
  private homeSet: string[]
  private selfIndex: number
  private clockMs: number
  private readonly outputs = new OutputQueue<LeaseOutput>(OUTPUT_QUEUE_LENGTH_MAX)

  // grantor
  private promise: LeasePromise | undefined
  private grantExpiresMs = -Infinity
  /** Our last attempt failed (or our lease ended, or we just joined) at this time: do not ask
   *  before it + leaseMs, so the peers that failed together try again staggered by rank. */
  private backoffFromMs = -Infinity
  /** When this life started: a peer that never granted waits a lease before asking. */
  private readonly startedMs: number
  private highestEpoch: number

  // requester
  private role: LeaseRole
  private epoch = 0
  private nextRound = 1
  /** Rounds of the current epoch still young enough to matter: round → local send time. */
  private readonly rounds = new Map<number, number>()
  /** Per grantor, the send time of the latest round it granted (current epoch). */
  private readonly grantedAt = new Map<string, number>()
  /** Grantors that refused 'held' in the latest round. */
  private readonly heldBy = new Set<string>()
  private latestRound = 0
  private nextRoundAtMs = Infinity
  private leaseEndMs: number | undefined

  constructor (options: LeaseOptions, nowMs: number) {
    this.s = resolveOptions(options)
    assert(Number.isFinite(nowMs), 'nowMs is a finite number')
    this.clockMs = nowMs
    this.startedMs = nowMs
    this.homeSet = checkHomeSet(options.homeSet)
    this.selfIndex = this.homeSet.indexOf(this.s.selfId)
    this.role = this.selfIndex < 0 ? 'outside' : 'follower'
    const restored = options.restored
    if (restored !== undefined) {
      if (!isEpoch(restored.epoch) || !isPeerId(restored.holder)) throw new ConfigError('restored', 'must be { epoch: 1..EPOCH_MAX-1, holder: peer id } as persisted')
      this.promise = { epoch: restored.epoch, holder: restored.holder }
      this.grantExpiresMs = nowMs + this.s.leaseMs
    }
    this.highestEpoch = this.promise?.epoch ?? 0
    this.check()
  }

  handleLeaseRequest (from: string, epoch: number, round: number, nowMs: number): InputVerdict {
    const now = this.advance(nowMs)
    if (!isPeerId(from) || from === this.s.selfId || !isEpoch(epoch) || !isRound(round)) return 'invalid'
    const answer = this.decide(from, epoch, now)
    if (answer === 'grant') {
      this.outputs.push({ type: 'grant', to: from, epoch, round })
    } else {
      this.outputs.push({ type: 'refuse', to: from, epoch: this.highestEpoch, round, reason: answer })
      if (answer === 'stale-epoch') this.outputs.push({ type: 'fenced', from, epoch, highestEpoch: this.highestEpoch })
    }
    this.check()
    return 'accepted'
  }

  handleLeaseGrant (from: string, epoch: number, round: number, nowMs: number): InputVerdict {
    const now = this.advance(nowMs)
    if (!isPeerId(from) || from === this.s.selfId || !isEpoch(epoch) || !isRound(round)) return 'invalid'
    if ((this.role !== 'candidate' && this.role !== 'driver') || epoch !== this.epoch) return 'ignored'
    const sentMs = this.rounds.get(round)
    if (sentMs === undefined || !this.homeSet.includes(from)) return 'ignored'
    const before = this.grantedAt.get(from)
    if (before === undefined || sentMs > before) this.grantedAt.set(from, sentMs)
    this.evaluate(now)
    this.check()
    return 'accepted'
  }

  handleLeaseRefusal (from: string, epoch: number, round: number, reason: RefusalReason, nowMs: number): InputVerdict {
    const now = this.advance(nowMs)
    if (!isPeerId(from) || from === this.s.selfId || !(epoch === 0 || isEpoch(epoch)) || !isRound(round)) return 'invalid'
    if (reason !== 'stale-epoch' && reason !== 'held' && reason !== 'not-home') return 'invalid'
    if (epoch > this.highestEpoch) this.highestEpoch = epoch
    if ((this.role !== 'candidate' && this.role !== 'driver') || !this.rounds.has(round)) return 'ignored'
    if (reason === 'stale-epoch' || epoch > this.epoch) {
      this.outputs.push({ type: 'fenced', from, epoch: this.epoch, highestEpoch: epoch })
      // A driver keeps its lease until it runs out: the majority that granted it still refuses
      // everyone else until then. A candidate cannot win this epoch any more.
      if (this.role === 'candidate') this.stepDown(now)
    } else if (reason === 'held' && round === this.latestRound && this.homeSet.includes(from)) {
      this.heldBy.add(from)
      if (this.role === 'candidate' && this.heldBy.size > this.homeSet.length - majority(this.homeSet.length)) this.stepDown(now)
    }
    this.check()
    return 'accepted'
  }

  handleHomeSet (homeSet: readonly string[], nowMs: number): void {
    const now = this.advance(nowMs)
    this.homeSet = checkHomeSet(homeSet)
    this.selfIndex = this.homeSet.indexOf(this.s.selfId)
    for (const peer of [...this.grantedAt.keys()]) if (!this.homeSet.includes(peer)) this.grantedAt.delete(peer)
    if (this.selfIndex < 0) {
      if (this.role === 'driver') this.outputs.push({ type: 'lost-lease', epoch: this.epoch })
      if (this.role !== 'outside') this.stepDown(now)
      this.role = 'outside'
    } else if (this.role === 'outside') {
      this.role = 'follower'
      this.backoffFromMs = now // new to this run: watch a lease before asking for it
    } else if (this.role === 'driver') {
      const end = this.computeLeaseEnd()
      if (end === undefined || end <= now) this.lose(now)
      else this.leaseEndMs = Math.min(this.leaseEndMs as number, end)
    }
    this.check()
  }

  handleTimeout (nowMs: number): void {
    const now = this.advance(nowMs)
    if (this.role === 'driver' && now >= (this.leaseEndMs as number)) this.lose(now)
    if (this.role === 'follower' && now >= this.takeoverAtMs()) {
      this.role = 'candidate'
      this.epoch = this.highestEpoch + 1
      assert(this.epoch < EPOCH_MAX, 'epochs stay below EPOCH_MAX')
      this.rounds.clear()
      this.grantedAt.clear()
      this.sendRound(now)
    } else if ((this.role === 'candidate' || this.role === 'driver') && now >= this.nextRoundAtMs) {
      this.sendRound(now)
    }
    this.check()
    assert(this.nextTimeoutMs() > now, 'a timeout leaves no timer due')
  }

  poll (): LeaseOutput | undefined {
    return this.outputs.poll()
  }

  nextTimeoutMs (): number {
    switch (this.role) {
      case 'outside': return Infinity
      case 'follower': return this.takeoverAtMs()
      case 'candidate': return this.nextRoundAtMs
      case 'driver': return Math.min(this.nextRoundAtMs, this.leaseEndMs as number)
    }
  }

  holdsLease (nowMs: number): boolean {
    return this.role === 'driver' && Math.max(nowMs, this.clockMs) < (this.leaseEndMs as number)
  }

  snapshot (): LeaseSnapshot {
    return {
      role: this.role,
      epoch: this.epoch,
      highestEpoch: this.highestEpoch,
      promise: this.promise === undefined ? undefined : { ...this.promise },
      leaseEndMs: this.leaseEndMs
    }
  }

  /** The grantor's answer to a request (ours included); records and persists a new promise. */
  private decide (from: string, epoch: number, now: number): 'grant' | RefusalReason {
    if (!this.homeSet.includes(from) || this.selfIndex < 0) return 'not-home'
    if (epoch > this.highestEpoch) this.highestEpoch = epoch
    const p = this.promise
    if (p !== undefined && (epoch < p.epoch || (epoch === p.epoch && from !== p.holder))) return 'stale-epoch'
    if (p !== undefined && epoch === p.epoch) {
      this.grantExpiresMs = now + this.s.leaseMs
      return 'grant'
    }
    // A grant to ourselves protects only our own belief: once we are not the driver (a candidate
    // that has not won, a driver that lost, a restarted life) nobody relies on it.
    const released = p !== undefined && p.holder === this.s.selfId && this.role !== 'driver'
    if (p !== undefined && p.holder !== from && now < this.grantExpiresMs && !released) return 'held'
    this.promise = { epoch, holder: from }
    this.grantExpiresMs = now + this.s.leaseMs
    this.outputs.push({ type: 'persist', promise: { epoch, holder: from } })
    // Granting a higher epoch to another peer ends our own candidacy: our next self-grant would
    // be refused. (A driver keeps its lease until it runs out, as on a stale refusal.)
    if (from !== this.s.selfId && this.role === 'candidate' && epoch > this.epoch) this.stepDown(now)
    return 'grant'
  }

  private sendRound (now: number): void {
    const round = this.nextRound
    this.nextRound += 1
    this.latestRound = round
    this.heldBy.clear()
    for (const [r, sentMs] of this.rounds) if (sentMs + this.s.leaseMs <= now) this.rounds.delete(r)
    this.rounds.set(round, now)
    this.nextRoundAtMs = now + this.s.renewMs
    const self = this.decide(this.s.selfId, this.epoch, now)
    if (self === 'grant') {
      this.grantedAt.set(this.s.selfId, now)
    } else if (this.role === 'candidate') {
      // Our own grantor knows a higher epoch or a live lease: no point asking the others.
      this.stepDown(now)
      return
    }
    for (const peer of this.homeSet) {
      if (peer !== this.s.selfId) this.outputs.push({ type: 'request', to: peer, epoch: this.epoch, round })
    }
    this.evaluate(now)
  }

  /** Grants changed: win, or extend the lease. */
  private evaluate (now: number): void {
    const end = this.computeLeaseEnd()
    if (end === undefined || end <= now) return
    if (this.role === 'candidate') {
      this.role = 'driver'
      this.leaseEndMs = end
      this.outputs.push({ type: 'became-driver', epoch: this.epoch })
    } else if (this.role === 'driver' && end > (this.leaseEndMs as number)) {
      this.leaseEndMs = end
    }
  }

  private computeLeaseEnd (): number | undefined {
    const need = majority(this.homeSet.length)
    if (this.grantedAt.size < need) return undefined
    const times = [...this.grantedAt.values()].sort((a, b) => b - a)
    return times[need - 1] + this.s.leaseMs - this.s.clockDriftMaxMs
  }

  private lose (now: number): void {
    this.outputs.push({ type: 'lost-lease', epoch: this.epoch })
    this.stepDown(now)
  }

  /** Back to follower (requests of this epoch are forgotten; late answers are ignored). */
  private stepDown (now: number): void {
    this.role = this.selfIndex < 0 ? 'outside' : 'follower'
    this.epoch = 0
    this.rounds.clear()
    this.grantedAt.clear()
    this.heldBy.clear()
    this.nextRoundAtMs = Infinity
    this.leaseEndMs = undefined
    this.backoffFromMs = now
  }

  /** When a follower asks for the lease (see TAKEOVER). */
  private takeoverAtMs (): number {
    const s = this.s
    if (this.promise === undefined && this.highestEpoch === 0 && this.selfIndex === 0 && this.backoffFromMs === -Infinity) return this.startedMs
    const quietUntil = Math.max(this.grantExpiresMs, this.backoffFromMs + s.leaseMs, this.promise === undefined ? this.startedMs + s.leaseMs : -Infinity)
    const rank = this.selfIndex
    return quietUntil + s.graceMs + rank * s.staggerMs
  }

  private advance (nowMs: number): number {
    assert(Number.isFinite(nowMs), 'nowMs is a finite number')
    if (nowMs > this.clockMs) this.clockMs = nowMs
    return this.clockMs
  }

  private check (): void {
    assert(this.role !== 'driver' || this.leaseEndMs !== undefined, 'a driver has a lease end')
    assert((this.role === 'candidate' || this.role === 'driver') === (this.epoch > 0), 'only candidates and drivers have an epoch')
    assert(this.epoch <= this.highestEpoch, 'an epoch asked for is the highest seen')
    assert(this.promise === undefined || this.promise.epoch <= this.highestEpoch, 'the promise is at most the highest epoch seen')
    assert(this.grantedAt.size <= this.homeSet.length, 'one grant time per home-set peer')
    assert((this.selfIndex < 0) === (this.role === 'outside'), 'outside exactly when not in the home set')
  }
}

function majority (n: number): number {
  return Math.floor(n / 2) + 1
}

function isEpoch (value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1 && value < EPOCH_MAX
}

function isRound (value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1
}

function isPeerId (value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= PEER_ID_CHARS_MAX
}

function checkHomeSet (homeSet: unknown): string[] {
  if (!Array.isArray(homeSet) || homeSet.length < 1 || homeSet.length > HOME_SET_MAX) {
    throw new ConfigError('homeSet', `must be an array of 1..${HOME_SET_MAX} peer ids`, { hint: 'take the home set from rendezvousOwners(runId, alivePeers, R)' })
  }
  homeSet.forEach((peer, i) => {
    if (!isPeerId(peer)) throw new ConfigError(`homeSet[${i}]`, `must be a peer id of 1..${PEER_ID_CHARS_MAX} characters`)
  })
  if (new Set(homeSet).size !== homeSet.length) throw new ConfigError('homeSet', 'must not repeat a peer')
  return [...homeSet] as string[]
}

type DurationField = 'leaseMs' | 'renewMs' | 'graceMs' | 'staggerMs' | 'clockDriftMaxMs'

function resolveOptions (options: LeaseOptions): Settings {
  if (typeof options !== 'object' || options === null) throw new ConfigError('options', 'must be an object')
  if (!isPeerId(options.selfId)) throw new ConfigError('selfId', `must be a peer id of 1..${PEER_ID_CHARS_MAX} characters`)
  const duration = (field: DurationField, min: number): number => {
    const value = options[field] ?? LEASE_DEFAULTS[field]
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > DURATION_MS_LIMIT) {
      throw new ConfigError(field, `must be a whole number of ms in ${min}..${DURATION_MS_LIMIT}, got ${String(value)}`)
    }
    return value
  }
  const s: Settings = {
    selfId: options.selfId,
    leaseMs: duration('leaseMs', 1),
    renewMs: duration('renewMs', 1),
    graceMs: duration('graceMs', 0),
    staggerMs: duration('staggerMs', 0),
    clockDriftMaxMs: duration('clockDriftMaxMs', 0)
  }
  if (2 * s.renewMs >= s.leaseMs) {
    throw new ConfigError('renewMs', `must be < leaseMs / 2, so a lost renewal is retried before the lease ends (${s.renewMs} >= ${s.leaseMs} / 2)`)
  }
  if (s.clockDriftMaxMs + 2 * s.renewMs >= s.leaseMs) {
    throw new ConfigError('clockDriftMaxMs', `must be < leaseMs − 2·renewMs (${s.clockDriftMaxMs} >= ${s.leaseMs - 2 * s.renewMs}): the driver's usable lease must outlast a renewal and a retry`, { hint: 'lengthen leaseMs or renew more often' })
  }
  return s
}
