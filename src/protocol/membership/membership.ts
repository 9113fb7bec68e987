/**
 * Membership state machine — theory of operation.
 *
 * INPUTS. Announcements heard on gossip (already decoded, validated and authenticated by the
 * shell), ticks, and changes of our own addresses and capacity. Every input carries `nowMs`, the
 * caller's clock; this file never reads a clock and never draws a random number.
 *
 * OUR OWN ANNOUNCE. The first tick emits an `announce` output at once, then one every
 * `announceIntervalMs`. Each carries our incarnation (the time of our start, given by the shell)
 * and a `seq` that grows by one per announce, so (incarnation, seq) orders everything a peer ever
 * said: lexicographically, a later life beats any seq of an earlier one.
 *
 * A PEER'S ENTRY moves through these states (the event each move emits in brackets):
 *
 *   (none) ─accepted [joined]─► alive ─silent suspectAfterMs [suspect]─► suspect ─silent goneAfterMs [gone]─► gone
 *                                 ▲                                         │                                  │
 *                                 └────────────── accepted [alive] ─────────┴──────────────────────────────────┘
 *   gone for goneRetainMs, or evicted to make room (gone or suspect) ─[removed]─► (none)
 *
 * An accepted announcement with a new incarnation also emits [alive] when the peer was already
 * alive: it restarted, and whatever it held in its previous life is lost.
 *
 * "Silent" is measured from `lastSeenMs`, the arrival of the last *accepted* announcement, so
 * suspect and gone deadlines are `lastSeenMs + suspectAfterMs` and `lastSeenMs + goneAfterMs`;
 * removal is `stateSinceMs + goneRetainMs` of the gone state. Suspicion exists so that one or two
 * lost announcements do not make the scheduler give up on a peer (SWIM, DSN 2002); gone entries
 * are retained so a peer returning from an outage is `peer:alive` (the same peer, back) and so
 * late gossip cannot resurrect it as new.
 *
 * AN ANNOUNCEMENT is judged in this order: our own id → 'self'; another network id →
 * 'foreign-network'; (incarnation, seq) not newer than the entry's → 'stale' (duplicates and
 * reordered gossip end here); arriving less than `announceMinIntervalMs` after the last accepted
 * one of the same peer → 'rate-limited' (a flooding peer costs at most one update per that
 * interval);
 * a new peer with the table at `peersMax` → evict the oldest gone entry, else the oldest suspect
 * one, else 'full' (alive peers are never evicted: a flood of fresh ids cannot push out the peers
 * we work with); otherwise 'accepted', and the peer is alive.
 *
 * WHY EVERY OPERATION IS O(1). Each state keeps its entries in a list (intrusive, doubly linked,
 * so moving an entry is a few pointer writes) in insertion order, and that order is also
 * deadline order:
 *  - alive: an entry is (re)inserted at the back whenever an announcement is accepted, with
 *    lastSeenMs = now, and now never decreases (see CLOCK) — so the front has the smallest
 *    lastSeenMs, i.e. the earliest suspect deadline;
 *  - suspect: entries arrive from the front of alive in lastSeenMs order — the front has the
 *    earliest gone deadline;
 *  - gone: entries arrive with stateSinceMs = now — the front has the earliest removal deadline,
 *    and is also "the oldest gone entry" that eviction wants (likewise the oldest suspect).
 * So a tick pops expired entries from the fronts and stops at the first that is not due, and
 * `nextTimeoutMs()` is the minimum of four numbers. This matters in the simulator, which calls
 * it after every one of millions of deliveries.
 *
 * CLOCK. `nowMs` is the caller's wall clock and may step backwards (NTP). The machine keeps the
 * largest time it has seen and uses that instead of a smaller one: time stands still rather
 * than running backwards, which keeps the orderings above true. A clock that steps forward makes
 * deadlines fire early; that is the caller's to avoid (use a monotonic clock).
 */
import { OutputQueue } from '../output-queue.ts'
import { ConfigError, assert } from '../../model/errors.ts'
import { DURATION_MS_LIMIT, MEMBERSHIP_DEFAULTS, PEERS_MAX_LIMIT } from './constants.ts'
import {
  ADDRS_MAX, ADDR_CHARS_MAX, CAPACITY_VALUE_MAX, NETWORK_ID_CHARS_MAX, PEER_ID_CHARS_MAX, VERSION_CHARS_MAX,
  isAddrString, isCapacityValue, isCounter, isNetworkIdString, isPeerIdString, isVersionString
} from './limits.ts'
import type {
  Announcement, AnnouncementVerdict, Capacity, Membership, MembershipOptions, MembershipOutput, PeerEntry, PeerState
} from './index.ts'

/** An entry plus its links in the list of its state. Never handed out: view() and get() copy. */
interface PeerRecord extends PeerEntry {
  prev: PeerRecord | undefined
  next: PeerRecord | undefined
}

/** A FIFO of records with O(1) removal from anywhere (see WHY EVERY OPERATION IS O(1)). */
class RecordList {
  head: PeerRecord | undefined
  tail: PeerRecord | undefined
  size = 0

  push (record: PeerRecord): void {
    record.prev = this.tail
    record.next = undefined
    if (this.tail === undefined) this.head = record
    else this.tail.next = record
    this.tail = record
    this.size += 1
  }

  remove (record: PeerRecord): void {
    if (record.prev === undefined) this.head = record.next
    else record.prev.next = record.next
    if (record.next === undefined) this.tail = record.prev
    else record.next.prev = record.prev
    record.prev = undefined
    record.next = undefined
    this.size -= 1
  }
}

interface Settings {
  selfId: string
  networkId: string
  version: string
  incarnation: number
  announceIntervalMs: number
  suspectAfterMs: number
  goneAfterMs: number
  goneRetainMs: number
  peersMax: number
  announceMinIntervalMs: number
}

/** The outputs of one call are bounded (a late tick may move every entry twice, plus one
 *  announce); if they pile up past this, the shell is not draining `poll()` — a bug, so crash
 *  rather than grow without bound. */
function outputQueueLengthMax (peersMax: number): number {
  return 16 * peersMax + 1024
}

export class MembershipMachine implements Membership {
  private readonly settings: Settings
  private addrs: string[]
  private capacity: Capacity
  private seq = 0
  /** Undefined until the first tick, which announces at once. */
  private nextAnnounceMs: number | undefined
  /** The largest `nowMs` seen (see CLOCK). */
  private clockMs: number | undefined

  private readonly peers = new Map<string, PeerRecord>()
  private readonly byState: Record<PeerState, RecordList> = {
    alive: new RecordList(),
    suspect: new RecordList(),
    gone: new RecordList()
  }

  /** Ids of `peers` in code-unit order (what view() returns); undefined when stale. */
  private sortedIds: string[] | undefined

  private readonly outputs: OutputQueue<MembershipOutput>

  constructor (options: MembershipOptions) {
    this.settings = resolveOptions(options)
    this.addrs = options.addrs === undefined ? [] : checkAddrs(options.addrs, 'addrs')
    this.capacity = options.capacity === undefined
      ? { slotsFree: 0, slotsMax: 0, queueLength: 0 }
      : checkCapacity(options.capacity, 'capacity')
    this.outputs = new OutputQueue(outputQueueLengthMax(this.settings.peersMax))
  }

  handleAnnouncement (announcement: Announcement, nowMs: number): AnnouncementVerdict {
    const now = this.advance(nowMs)
    const s = this.settings
    if (announcement.peerId === s.selfId) return 'self'
    if (announcement.networkId !== s.networkId) return 'foreign-network'
    // The codec guarantees these; the ordering below is meaningless without them.
    assert(isCounter(announcement.incarnation) && isCounter(announcement.seq), 'announcement incarnation and seq are non-negative safe integers')

    const entry = this.peers.get(announcement.peerId)
    if (entry === undefined) return this.admit(announcement, now)

    if (!isNewer(announcement, entry)) return 'stale'
    if (now - entry.lastSeenMs < s.announceMinIntervalMs) return 'rate-limited'

    const restarted = announcement.incarnation > entry.incarnation
    const wasAlive = entry.state === 'alive'
    this.byState[entry.state].remove(entry)
    absorb(entry, announcement)
    entry.lastSeenMs = now
    entry.state = 'alive'
    this.byState.alive.push(entry)
    if (!wasAlive || restarted) {
      entry.stateSinceMs = now
      this.emit({ type: 'peer:alive', peerId: entry.peerId, atMs: now })
    }
    this.checkSizes()
    return 'accepted'
  }

  handleCapacity (capacity: Capacity): void {
    this.capacity = checkCapacity(capacity, 'capacity')
  }

  handleAddrs (addrs: string[]): void {
    this.addrs = checkAddrs(addrs, 'addrs')
  }

  handleTick (nowMs: number): void {
    const now = this.advance(nowMs)
    const s = this.settings
    if (this.nextAnnounceMs === undefined || now >= this.nextAnnounceMs) {
      this.announce()
      // Keep the cadence when ticks are on time; after a stall, skip the missed announces
      // instead of bursting them.
      const next = this.nextAnnounceMs === undefined ? now + s.announceIntervalMs : this.nextAnnounceMs + s.announceIntervalMs
      this.nextAnnounceMs = next > now ? next : now + s.announceIntervalMs
    }
    const { alive, suspect, gone } = this.byState
    for (let entry = alive.head; entry !== undefined && now >= entry.lastSeenMs + s.suspectAfterMs; entry = alive.head) {
      this.move(entry, 'suspect', now)
    }
    for (let entry = suspect.head; entry !== undefined && now >= entry.lastSeenMs + s.goneAfterMs; entry = suspect.head) {
      this.move(entry, 'gone', now)
    }
    for (let entry = gone.head; entry !== undefined && now >= entry.stateSinceMs + s.goneRetainMs; entry = gone.head) {
      this.remove(entry, now)
    }
    this.checkSizes()
    assert(this.nextTimeoutMs() > now, 'a tick leaves no timer due')
  }

  poll (): MembershipOutput | undefined {
    return this.outputs.poll()
  }

  nextTimeoutMs (): number {
    if (this.nextAnnounceMs === undefined) return this.clockMs ?? 0
    const s = this.settings
    let next = this.nextAnnounceMs
    const alive = this.byState.alive.head
    if (alive !== undefined) next = Math.min(next, alive.lastSeenMs + s.suspectAfterMs)
    const suspect = this.byState.suspect.head
    if (suspect !== undefined) next = Math.min(next, suspect.lastSeenMs + s.goneAfterMs)
    const gone = this.byState.gone.head
    if (gone !== undefined) next = Math.min(next, gone.stateSinceMs + s.goneRetainMs)
    return next
  }

  view (): PeerEntry[] {
    // The set of ids changes far less often than view() is called (dashboards poll it, the
    // simulator samples it), so keep them sorted until an entry is added or removed.
    this.sortedIds ??= Array.from(this.peers.keys()).sort()
    return this.sortedIds.map(peerId => copyEntry(this.peers.get(peerId) as PeerRecord))
  }

  get (peerId: string): PeerEntry | undefined {
    const entry = this.peers.get(peerId)
    return entry === undefined ? undefined : copyEntry(entry)
  }

  stateOf (peerId: string): PeerState | undefined {
    return this.peers.get(peerId)?.state
  }

  counts (): Record<PeerState, number> {
    return { alive: this.byState.alive.size, suspect: this.byState.suspect.size, gone: this.byState.gone.size }
  }

  /** A peer not in the table: make room if we must and may, then add it alive. */
  private admit (announcement: Announcement, now: number): AnnouncementVerdict {
    if (this.peers.size >= this.settings.peersMax) {
      const victim = this.byState.gone.head ?? this.byState.suspect.head
      if (victim === undefined) return 'full'
      this.remove(victim, now)
    }
    const entry: PeerRecord = {
      peerId: announcement.peerId,
      state: 'alive',
      incarnation: announcement.incarnation,
      seq: announcement.seq,
      version: announcement.version,
      addrs: [...announcement.addrs],
      capacity: { ...announcement.capacity },
      firstSeenMs: now,
      lastSeenMs: now,
      stateSinceMs: now,
      prev: undefined,
      next: undefined
    }
    this.peers.set(entry.peerId, entry)
    this.sortedIds = undefined
    this.byState.alive.push(entry)
    this.emit({ type: 'peer:joined', peerId: entry.peerId, atMs: now })
    this.checkSizes()
    return 'accepted'
  }

  private move (entry: PeerRecord, state: 'suspect' | 'gone', now: number): void {
    this.byState[entry.state].remove(entry)
    entry.state = state
    entry.stateSinceMs = now
    this.byState[state].push(entry)
    this.emit({ type: state === 'suspect' ? 'peer:suspect' : 'peer:gone', peerId: entry.peerId, atMs: now })
  }

  private remove (entry: PeerRecord, now: number): void {
    assert(entry.state !== 'alive', 'alive peers are never removed')
    this.byState[entry.state].remove(entry)
    this.peers.delete(entry.peerId)
    this.sortedIds = undefined
    this.emit({ type: 'peer:removed', peerId: entry.peerId, atMs: now })
  }

  private announce (): void {
    const s = this.settings
    this.seq += 1
    assert(Number.isSafeInteger(this.seq), 'seq stays a safe integer')
    this.emit({
      type: 'announce',
      announcement: {
        peerId: s.selfId,
        networkId: s.networkId,
        incarnation: s.incarnation,
        seq: this.seq,
        version: s.version,
        addrs: [...this.addrs],
        capacity: { ...this.capacity }
      }
    })
  }

  private emit (output: MembershipOutput): void {
    this.outputs.push(output)
  }

  private advance (nowMs: number): number {
    assert(Number.isFinite(nowMs), 'nowMs is a finite number')
    if (this.clockMs === undefined || nowMs > this.clockMs) this.clockMs = nowMs
    return this.clockMs
  }

  private checkSizes (): void {
    const { alive, suspect, gone } = this.byState
    assert(alive.size + suspect.size + gone.size === this.peers.size, 'every entry is in exactly one state list')
    assert(this.peers.size <= this.settings.peersMax, 'the table holds at most peersMax entries')
  }
}

/** Lexicographic (incarnation, seq): a new incarnation resets seq. */
function isNewer (announcement: Announcement, entry: PeerEntry): boolean {
  if (announcement.incarnation !== entry.incarnation) return announcement.incarnation > entry.incarnation
  return announcement.seq > entry.seq
}

/** Copy what an accepted announcement says into the entry, reusing arrays that did not change
 *  (a thousand peers × a thousand entries is a lot of garbage otherwise). */
function absorb (entry: PeerEntry, announcement: Announcement): void {
  entry.incarnation = announcement.incarnation
  entry.seq = announcement.seq
  entry.version = announcement.version
  if (!sameStrings(entry.addrs, announcement.addrs)) entry.addrs = [...announcement.addrs]
  entry.capacity.slotsFree = announcement.capacity.slotsFree
  entry.capacity.slotsMax = announcement.capacity.slotsMax
  entry.capacity.queueLength = announcement.capacity.queueLength
}

function sameStrings (a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

function copyEntry (r: PeerRecord): PeerEntry {
  return {
    peerId: r.peerId,
    state: r.state,
    incarnation: r.incarnation,
    seq: r.seq,
    version: r.version,
    addrs: [...r.addrs],
    capacity: { ...r.capacity },
    firstSeenMs: r.firstSeenMs,
    lastSeenMs: r.lastSeenMs,
    stateSinceMs: r.stateSinceMs
  }
}

function resolveOptions (options: MembershipOptions): Settings {
  if (typeof options !== 'object' || options === null) throw new ConfigError('options', 'must be an object')
  if (!isPeerIdString(options.selfId)) {
    throw new ConfigError('selfId', `must be a base58btc peer id string of 1..${PEER_ID_CHARS_MAX} characters`)
  }
  if (!isNetworkIdString(options.networkId)) {
    throw new ConfigError('networkId', `must be 1..${NETWORK_ID_CHARS_MAX} printable ASCII characters`)
  }
  if (!isVersionString(options.version)) {
    throw new ConfigError('version', `must be 1..${VERSION_CHARS_MAX} printable ASCII characters`)
  }
  if (!isCounter(options.incarnation)) {
    throw new ConfigError('incarnation', 'must be a non-negative safe integer (the ms time of this start)')
  }
  const settings: Settings = {
    selfId: options.selfId,
    networkId: options.networkId,
    version: options.version,
    incarnation: options.incarnation,
    announceIntervalMs: duration(options, 'announceIntervalMs'),
    suspectAfterMs: duration(options, 'suspectAfterMs'),
    goneAfterMs: duration(options, 'goneAfterMs'),
    goneRetainMs: duration(options, 'goneRetainMs'),
    announceMinIntervalMs: duration(options, 'announceMinIntervalMs'),
    peersMax: options.peersMax ?? MEMBERSHIP_DEFAULTS.peersMax
  }
  if (!Number.isSafeInteger(settings.peersMax) || settings.peersMax < 1 || settings.peersMax > PEERS_MAX_LIMIT) {
    throw new ConfigError('peersMax', `must be an integer in 1..${PEERS_MAX_LIMIT}, got ${String(options.peersMax)}`)
  }
  if (settings.suspectAfterMs >= settings.goneAfterMs) {
    throw new ConfigError('suspectAfterMs', `must be < goneAfterMs (${settings.suspectAfterMs} >= ${settings.goneAfterMs})`)
  }
  if (settings.announceIntervalMs >= settings.suspectAfterMs) {
    throw new ConfigError('announceIntervalMs', `must be < suspectAfterMs, or every peer is suspected between two announcements (${settings.announceIntervalMs} >= ${settings.suspectAfterMs})`)
  }
  if (settings.announceMinIntervalMs >= settings.announceIntervalMs) {
    throw new ConfigError('announceMinIntervalMs', `must be < announceIntervalMs, or honest peers are rate-limited (${settings.announceMinIntervalMs} >= ${settings.announceIntervalMs})`)
  }
  return settings
}

type DurationField = 'announceIntervalMs' | 'suspectAfterMs' | 'goneAfterMs' | 'goneRetainMs' | 'announceMinIntervalMs'

function duration (options: MembershipOptions, field: DurationField): number {
  const value = options[field] ?? MEMBERSHIP_DEFAULTS[field]
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0 || value > DURATION_MS_LIMIT) {
    throw new ConfigError(field, `must be a whole number of ms in 1..${DURATION_MS_LIMIT}, got ${String(value)}`)
  }
  return value
}

function checkAddrs (addrs: unknown, field: string): string[] {
  if (!Array.isArray(addrs)) throw new ConfigError(field, 'must be an array of multiaddr strings')
  if (addrs.length > ADDRS_MAX) {
    throw new ConfigError(field, `at most ${ADDRS_MAX} addresses are announced, got ${addrs.length}`, { hint: 'choose the addresses peers can reach (public before private), e.g. addrs.slice(0, ADDRS_MAX)' })
  }
  addrs.forEach((addr, i) => {
    if (!isAddrString(addr)) throw new ConfigError(`${field}[${i}]`, `must be 1..${ADDR_CHARS_MAX} visible ASCII characters`)
  })
  return [...addrs]
}

function checkCapacity (capacity: unknown, field: string): Capacity {
  if (typeof capacity !== 'object' || capacity === null) throw new ConfigError(field, 'must be { slotsFree, slotsMax, queueLength }')
  const { slotsFree, slotsMax, queueLength } = capacity as Record<string, unknown>
  for (const [name, value] of [['slotsFree', slotsFree], ['slotsMax', slotsMax], ['queueLength', queueLength]] as const) {
    if (!isCapacityValue(value)) throw new ConfigError(`${field}.${name}`, `must be an integer in 0..${CAPACITY_VALUE_MAX}, got ${String(value)}`)
  }
  const checked = { slotsFree, slotsMax, queueLength } as Capacity
  if (checked.slotsFree > checked.slotsMax) throw new ConfigError(`${field}.slotsFree`, `must be <= slotsMax (${checked.slotsFree} > ${checked.slotsMax})`)
  return checked
}
