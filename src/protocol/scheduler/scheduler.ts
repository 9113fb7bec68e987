/**
 * Scheduler state machine — theory of operation.
 *
 * INPUTS. Tasks submitted by the run service, the live view of peers (membership), peers lost,
 * the outcome of each dispatched copy, cancellations and timeouts. Every input carries `nowMs`;
 * randomness comes from the injected `Random`. This file reads no clock and does no I/O.
 *
 * A TASK moves through these states (outputs in brackets):
 *
 *   submit ─► waiting ─a peer has room [dispatch]─► running ─first success [cancel others, done ok]─► (gone)
 *                ▲                                    │ ├─ non-retryable failure [cancel others, done failed]
 *                │                                    │ ├─ retryable failure or attempt timeout, no copy left:
 *                │                                    │ │     attemptsMax reached [done attempts], else ─► backoff
 *                │                                    │ └─ its peer lost, no copy left:
 *                │                                    │       lossesMax reached [done lost], else ─► waiting (at once)
 *                └──────── backoff over ──────────────┘
 *   handleCancel in any state: [cancel every copy, done cancelled].
 *
 * A task has at most two copies running: its primary and, if the primary straggles, one
 * speculative copy on another peer. The first success wins; a failure of one copy while the other
 * runs only counts (the task ends or retries when no copy is left). Outcomes are matched to a
 * copy by (task, peer, attempt): anything else — a duplicate, a late answer from a cancelled or
 * timed-out copy — is 'stale' and changes nothing. So each task ends in exactly one `done`.
 *
 * WAITING is two FIFOs: tasks placed again (retries, lost peers) go before fresh ones — they were
 * submitted earlier. Whenever capacity may have freed (any input), waiting tasks are dispatched in
 * order while some peer has room. A waiting task never has a copy running, so any peer with room
 * can take it: the head never blocks the queue.
 *
 * PLACEMENT. A peer's limit is slotsMax + queueShare (0 for a peer with no slots); it has room
 * while our copies on it are fewer. Peers with room are kept in an array, so sampling is O(1):
 * all of them while they are at most SCAN_ALL_PEERS_MAX, else `candidatesSampled` distinct random ones, avoiding peers the task already failed on (unless no
 * other has room), plus the peers holding its inputs if they have room. Each is scored:
 *   free = slotsMax − max(our copies there, its advertised busy = slotsMax − slotsFree + queueLength)
 *   score = free + localityBonus × (share of its inputs it holds) + warmBonus × (function loaded)
 * and the best wins (ties: the first sampled, which is random). The advertisement counts other
 * drivers' work but is stale; our own count is exact but only ours: the larger is the better guess.
 *
 * STRAGGLERS. A finished copy's runtime (dispatch to success) joins a window of the last
 * `runtimeSamplesMax`. Once `stragglerSamplesMin` are in, a primary copy running longer than
 * max(stragglerMinMs, stragglerFactor × median) gets one speculative copy on another peer — but
 * only when nothing is waiting (speculation uses idle capacity, never capacity a waiting task
 * could use: Hadoop's rule). A straggler due when its own peer is the only one with room loses its
 * chance. A task is speculated at most once.
 *
 * WHY INPUTS ARE CHEAP. Running copies are kept in a Map in dispatch order, which is also
 * attempt-deadline order (every copy has the same attemptTimeoutMs and time never runs back), so
 * the earliest deadline is the first entry; likewise the speculation candidates. Backoffs have
 * different lengths and sit in a binary heap. Waiting queues and the heap are cleaned lazily (an
 * entry whose task moved on is skipped). So `nextTimeoutMs()` is the minimum of three numbers.
 *
 * AVOID AND GROUPS. A task may name peers it must never run on (`avoid`) and a group: while any
 * task of a group is held, a peer running a copy of one of them, or that gave one its result,
 * takes no copy of another — replicas of one verified task land on distinct peers even when they
 * are placed at once. A waiting task that no peer with room may take is *parked* (so it does not
 * block the queue behind it) and tried again, before the queues, whenever something could have
 * changed; one that every live peer is excluded from for UNPLACEABLE_AFTER_MS ends 'unplaceable'.
 * Each input re-tries every parked task: O(parked × (peers with room ≤ SCAN_ALL_PEERS_MAX when
 * few, else a sample)). A task parks only while its group holds every peer with room, so the set
 * is the replicated tasks waiting behind their own siblings — small unless a network of a handful
 * of peers is saturated with replicated work (`npm run bench verify` runs that case: replicas 3 on
 * four peers).
 *
 * CLOCK. As in membership: the largest `nowMs` seen is "now"; time never runs backwards.
 */
import { OutputQueue } from '../output-queue.ts'
import { ConfigError, assert } from '../../model/errors.ts'
import type { Random } from '../random.ts'
import {
  ATTEMPTS_LIMIT, CANDIDATES_SAMPLED_LIMIT, DURATION_MS_LIMIT, FACTOR_LIMIT, LOCALITY_INPUTS_MAX, SCHEDULER_COUNT_LIMIT,
  AVOID_PEERS_MAX, SAME_RANGE_PENALTY, SCAN_ALL_PEERS_MAX, SCHEDULER_DEFAULTS, UNPLACEABLE_AFTER_MS, UNREACHABLE_COOLDOWN_MS
} from './constants.ts'
import type {
  CancelVerdict, CopyOutcome, DoneReason, OutcomeVerdict, PeerCandidate, Scheduler, SchedulerCounts, SchedulerOptions,
  SchedulerOutput, SchedulerPeer, SchedulerTask, SubmitVerdict
} from './index.ts'

type Settings = Required<Omit<SchedulerOptions, 'random'>>

interface PeerRecord {
  peerId: string
  slotsMax: number
  slotsFree: number
  queueLength: number
  holds: Set<string> | undefined
  warm: Set<string> | undefined
  reputation: number
  range: string | undefined
  /** In the latest view. */
  live: boolean
  limit: number
  copies: Set<Copy>
  /** Index in `withRoom`, or -1. */
  roomIndex: number
}

interface Copy {
  key: number
  task: TaskRecord
  peer: PeerRecord
  attempt: number
  sinceMs: number
  speculative: boolean
}

type TaskState = 'waiting' | 'parked' | 'backoff' | 'running' | 'done'

/** Tasks that must run on distinct peers (SchedulerTask.group), while any of them is held. */
interface GroupRecord {
  key: string
  held: number
  /** Peer id → copies of the group's tasks running there. */
  running: Map<string, number>
  /** Peers that gave one of the group's tasks its result. */
  answered: Set<string>
}

interface TaskRecord {
  taskId: string
  fn: string
  inputs: Array<{ cid: string, peer: string }>
  state: TaskState
  copies: Copy[]
  dispatches: number
  failures: number
  losses: number
  failedOn: Set<string>
  avoid: Set<string> | undefined
  group: GroupRecord | undefined
  /** While parked and every live peer is excluded: since when (else undefined). */
  hopelessSinceMs: number | undefined
  speculated: boolean
  /** Bumped on every enqueue: a queue or heap entry with another token is stale. */
  token: number
}

interface Queued { task: TaskRecord, token: number }
interface Timed extends Queued { atMs: number }

/** A FIFO with O(1) push and shift (an array and a head index, compacted as it drains). */
class Fifo<T> {
  private items: T[] = []
  private head = 0
  get size (): number { return this.items.length - this.head }
  push (item: T): void { this.items.push(item) }
  peek (): T | undefined { return this.head < this.items.length ? this.items[this.head] : undefined }
  shift (): T | undefined {
    if (this.head === this.items.length) return undefined
    const item = this.items[this.head]
    this.head += 1
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }
}

/** A binary min-heap of backoffs by `atMs` (ties in push order do not matter: each is due). */
class TimedHeap {
  private readonly heap: Timed[] = []
  get size (): number { return this.heap.length }
  peek (): Timed | undefined { return this.heap[0] }
  push (item: Timed): void {
    const heap = this.heap
    heap.push(item)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent].atMs <= item.atMs) break
      heap[i] = heap[parent]
      i = parent
    }
    heap[i] = item
  }

  pop (): Timed | undefined {
    const heap = this.heap
    const top = heap[0]
    const last = heap.pop()
    if (heap.length === 0 || last === undefined) return top
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      if (left >= heap.length) break
      const right = left + 1
      const child = right < heap.length && heap[right].atMs < heap[left].atMs ? right : left
      if (heap[child].atMs >= last.atMs) break
      heap[i] = heap[child]
      i = child
    }
    heap[i] = last
    return top
  }
}

export class SchedulerMachine implements Scheduler {
  private readonly s: Settings
  private readonly random: Random
  private clockMs: number | undefined

  private readonly tasks = new Map<string, TaskRecord>()
  private readonly peerMap = new Map<string, PeerRecord>()
  /** Peers whose dial failed → when they may be placed on again (UNREACHABLE_COOLDOWN_MS); at most peersMax. */
  private readonly unreachable = new Map<string, number>()
  private readonly withRoom: PeerRecord[] = []

  private readonly urgent = new Fifo<Queued>()
  private readonly fresh = new Fifo<Queued>()
  private waiting = 0
  /** Waiting tasks no peer with room may take (avoid, group), in the order they were parked. */
  private readonly parked = new Set<TaskRecord>()
  private readonly groups = new Map<string, GroupRecord>()
  private liveCount = 0
  private readonly backoffs = new TimedHeap()
  private backingOff = 0

  /** Every running copy, in dispatch (= deadline) order. */
  private readonly running = new Map<number, Copy>()
  /** Primary copies of tasks not yet speculated, in dispatch order. */
  private readonly stragglers = new Map<number, Copy>()
  private speculative = 0
  private nextCopyKey = 0

  private readonly runtimes: number[] = []
  private runtimesNext = 0
  private medianCache: number | undefined

  private readonly outputs: OutputQueue<SchedulerOutput>

  constructor (options: SchedulerOptions) {
    this.s = resolveOptions(options)
    this.random = options.random
    // One input emits at most: per held task two cancels, a dispatch and a done. More queued means
    // the shell is not draining poll(): a bug.
    this.outputs = new OutputQueue(4 * this.s.pendingMax + 1024)
  }

  handleSubmit (task: SchedulerTask, nowMs: number): SubmitVerdict {
    const now = this.advance(nowMs)
    checkTask(task)
    assert(!this.tasks.has(task.taskId), 'a task id is held once (the shell joins duplicate submissions)')
    if (this.tasks.size >= this.s.pendingMax) return 'queue-full'
    const record: TaskRecord = {
      taskId: task.taskId,
      fn: task.fn,
      inputs: task.inputs.slice(0, LOCALITY_INPUTS_MAX).map(i => ({ cid: i.cid, peer: i.peer })),
      state: 'waiting',
      copies: [],
      dispatches: 0,
      failures: 0,
      losses: 0,
      failedOn: new Set(),
      avoid: task.avoid === undefined || task.avoid.length === 0 ? undefined : new Set(task.avoid),
      group: task.group === undefined ? undefined : this.joinGroup(task.group),
      hopelessSinceMs: undefined,
      speculated: false,
      token: 0
    }
    this.tasks.set(task.taskId, record)
    this.enqueue(record, this.fresh)
    this.pump(now)
    this.check()
    return 'accepted'
  }

  handlePeers (candidates: readonly PeerCandidate[], nowMs: number): void {
    const now = this.advance(nowMs)
    assert(Array.isArray(candidates), 'candidates is an array')
    const seen = new Set<string>()
    for (const [peerId, untilMs] of this.unreachable) if (untilMs <= now) this.unreachable.delete(peerId)
    for (const candidate of candidates.length > this.s.peersMax ? candidates.slice(0, this.s.peersMax) : candidates) {
      checkCandidate(candidate)
      // Set aside after a failed dial: the view may list a dead peer for seconds yet.
      if (this.unreachable.has(candidate.peerId)) continue
      seen.add(candidate.peerId)
      let peer = this.peerMap.get(candidate.peerId)
      if (peer === undefined) {
        peer = { peerId: candidate.peerId, slotsMax: 0, slotsFree: 0, queueLength: 0, holds: undefined, warm: undefined, reputation: 0.5, range: undefined, live: true, limit: 0, copies: new Set(), roomIndex: -1 }
        this.peerMap.set(peer.peerId, peer)
      }
      peer.live = true
      peer.slotsMax = candidate.slotsMax
      peer.slotsFree = candidate.slotsFree
      peer.queueLength = candidate.queueLength
      peer.holds = candidate.holds === undefined || candidate.holds.length === 0 ? undefined : new Set(candidate.holds)
      peer.warm = candidate.warm === undefined || candidate.warm.length === 0 ? undefined : new Set(candidate.warm)
      peer.reputation = candidate.reputation ?? 0.5
      peer.range = candidate.range
      peer.limit = candidate.slotsMax === 0 ? 0 : candidate.slotsMax + this.s.queueShare
      this.updateRoom(peer)
    }
    for (const peer of this.peerMap.values()) {
      if (seen.has(peer.peerId)) continue
      peer.live = false
      this.updateRoom(peer)
      if (peer.copies.size === 0) this.peerMap.delete(peer.peerId)
    }
    this.liveCount = seen.size
    this.pump(now)
    this.check()
  }

  handlePeerGone (peerId: string, nowMs: number): void {
    const now = this.advance(nowMs)
    if (this.dropPeer(peerId, now)) {
      this.pump(now)
      this.check()
    }
  }

  /** The peer's copies are placed again (losses, not failures) and it leaves the view. False if unknown. */
  private dropPeer (peerId: string, now: number): boolean {
    const peer = this.peerMap.get(peerId)
    if (peer === undefined) return false
    if (peer.live) this.liveCount -= 1
    peer.live = false
    this.updateRoom(peer)
    for (const copy of [...peer.copies].sort((a, b) => a.key - b.key)) {
      this.emit({ type: 'cancel', taskId: copy.task.taskId, peerId, attempt: copy.attempt })
      this.endCopy(copy)
      this.afterCopyEnded(copy.task, 'loss', peerId, now)
    }
    this.peerMap.delete(peerId)
    return true
  }

  handleOutcome (taskId: string, peerId: string, outcome: CopyOutcome, nowMs: number, attempt?: number): OutcomeVerdict {
    const now = this.advance(nowMs)
    assert(typeof outcome === 'object' && outcome !== null && typeof outcome.ok === 'boolean', 'an outcome is { ok }')
    const task = this.tasks.get(taskId)
    const copy = task?.copies.find(c => c.peer.peerId === peerId && (attempt === undefined || c.attempt === attempt))
    if (task === undefined || copy === undefined) return 'stale'
    if (outcome.ok) {
      this.sampleRuntime(now - copy.sinceMs)
      this.finish(task, { ok: true, peerId }, copy)
    } else if (outcome.unreachable === true) {
      // The peer, not the task: set it aside and place everything it held again.
      if (this.unreachable.size < this.s.peersMax) this.unreachable.set(peerId, now + UNREACHABLE_COOLDOWN_MS)
      this.dropPeer(peerId, now)
    } else if (!outcome.retryable) {
      this.finish(task, { ok: false, reason: 'failed', peerId }, copy)
    } else {
      task.failures += 1
      task.failedOn.add(peerId)
      this.endCopy(copy)
      this.afterCopyEnded(task, 'failure', peerId, now)
    }
    this.pump(now)
    this.check()
    return 'accepted'
  }

  handleCancel (taskId: string, nowMs: number): CancelVerdict {
    const now = this.advance(nowMs)
    const task = this.tasks.get(taskId)
    if (task === undefined) return 'unknown'
    this.finish(task, { ok: false, reason: 'cancelled' }, undefined)
    this.pump(now)
    this.check()
    return 'cancelled'
  }

  handleTimeout (nowMs: number): void {
    const now = this.advance(nowMs)
    const timeoutMs = this.s.attemptTimeoutMs
    for (let copy = firstValue(this.running); copy !== undefined && now >= copy.sinceMs + timeoutMs; copy = firstValue(this.running)) {
      const task = copy.task
      task.failures += 1
      task.failedOn.add(copy.peer.peerId)
      this.emit({ type: 'cancel', taskId: task.taskId, peerId: copy.peer.peerId, attempt: copy.attempt })
      this.endCopy(copy)
      this.afterCopyEnded(task, 'failure', copy.peer.peerId, now)
    }
    this.pump(now)
    this.check()
    const next = this.nextTimeoutMs()
    assert(next === undefined || next > now, 'a timeout leaves no deadline due')
  }

  poll (): SchedulerOutput | undefined {
    return this.outputs.poll()
  }

  nextTimeoutMs (): number | undefined {
    let next: number | undefined
    const copy = firstValue(this.running)
    if (copy !== undefined) next = copy.sinceMs + this.s.attemptTimeoutMs
    const backoff = this.backoffs.peek()
    if (backoff !== undefined && (next === undefined || backoff.atMs < next)) next = backoff.atMs
    const straggler = this.canSpeculate() ? firstValue(this.stragglers) : undefined
    if (straggler !== undefined) {
      const due = straggler.sinceMs + this.stragglerAfterMs()
      if (next === undefined || due < next) next = due
    }
    for (const task of this.parked) {
      if (task.hopelessSinceMs === undefined) continue
      const due = task.hopelessSinceMs + UNPLACEABLE_AFTER_MS
      if (next === undefined || due < next) next = due
    }
    return next
  }

  counts (): SchedulerCounts {
    return {
      pending: this.tasks.size,
      waiting: this.waiting,
      parked: this.parked.size,
      backoff: this.backingOff,
      running: this.running.size,
      speculative: this.speculative,
      peersWithRoom: this.withRoom.length,
      runtimeSamples: this.runtimes.length
    }
  }

  peers (): SchedulerPeer[] {
    return [...this.peerMap.values()]
      .map(p => ({ peerId: p.peerId, live: p.live, inFlight: p.copies.size, limit: p.limit }))
      .sort((a, b) => a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
  }

  checkInvariants (): void {
    let waiting = 0
    let parked = 0
    let backoff = 0
    let copies = 0
    let speculative = 0
    for (const task of this.tasks.values()) {
      assert(task.state !== 'done', 'a done task is not held')
      if (task.state === 'waiting') waiting += 1
      if (task.state === 'backoff') backoff += 1
      if (task.state === 'parked') parked += 1
      assert((task.state === 'parked') === this.parked.has(task), 'a task is parked exactly when it is in the parked set')
      for (const copy of task.copies) assert(!this.excluded(task, copy.peer, copy), 'no copy runs on a peer its task avoids or its group holds')
      assert((task.state === 'running') === (task.copies.length > 0), 'a task runs exactly when it has copies')
      assert(task.copies.length <= 2, 'at most two copies of a task run')
      assert(new Set(task.copies.map(c => c.peer)).size === task.copies.length, 'copies of a task run on different peers')
      for (const copy of task.copies) {
        assert(this.running.get(copy.key) === copy && copy.peer.copies.has(copy), 'a copy is indexed by key and by peer')
        if (copy.speculative) speculative += 1
      }
      copies += task.copies.length
      assert(task.failures <= this.s.attemptsMax && task.losses <= this.s.lossesMax, 'failures and losses stay within their limits')
    }
    assert(waiting === this.waiting && backoff === this.backingOff && parked === this.parked.size, 'waiting, parked and backoff counts are exact')
    let held = 0
    for (const group of this.groups.values()) {
      assert(group.held > 0, 'a group is kept only while a task of it is held')
      held += group.held
    }
    assert(held === [...this.tasks.values()].filter(t => t.group !== undefined).length, 'group counts are exact')
    assert(this.liveCount === [...this.peerMap.values()].filter(p => p.live).length, 'the live count is exact')
    assert(copies === this.running.size && speculative === this.speculative, 'running counts are exact')
    for (const copy of this.stragglers.values()) assert(!copy.task.speculated && this.running.get(copy.key) === copy, 'straggler candidates are running primaries')
    for (const peer of this.peerMap.values()) {
      assert(peer.copies.size <= peer.limit || !peer.live || peer.roomIndex === -1, 'a peer over its limit has no room')
      assert((peer.roomIndex >= 0) === this.hasRoom(peer), 'a peer is in withRoom exactly when it has room')
      assert(peer.live || peer.copies.size > 0, 'a peer out of the view is kept only while copies run on it')
    }
    this.withRoom.forEach((peer, i) => assert(peer.roomIndex === i && this.peerMap.get(peer.peerId) === peer, 'withRoom indexes are exact'))
    this.check()
  }

  // --- moving tasks ----------------------------------------------------------------------

  private enqueue (task: TaskRecord, queue: Fifo<Queued>): void {
    task.state = 'waiting'
    task.token += 1
    queue.push({ task, token: task.token })
    this.waiting += 1
  }

  /** Dispatch what can be dispatched: due backoffs, waiting tasks while a peer has room, then stragglers. */
  private pump (now: number): void {
    for (let top = this.backoffs.peek(); top !== undefined && top.atMs <= now; top = this.backoffs.peek()) {
      this.backoffs.pop()
      if (!this.isCurrent(top, 'backoff')) continue
      this.backingOff -= 1
      this.enqueue(top.task, this.urgent)
    }
    this.unpark(now)
    while (this.waiting > 0 && this.withRoom.length > 0) {
      const entry = this.urgent.shift() ?? this.fresh.shift()
      assert(entry !== undefined, 'a waiting task is in a queue')
      if (!this.isCurrent(entry, 'waiting')) continue
      this.waiting -= 1
      const peer = this.choose(entry.task, undefined)
      if (peer === undefined) this.park(entry.task, now)
      else this.dispatch(entry.task, peer, now, false)
    }
    this.dropStaleQueueHeads()
    this.speculate(now)
  }

  /** Lazily dropped entries must not pile up at the heads while nothing is waiting. */
  private dropStaleQueueHeads (): void {
    for (const queue of [this.urgent, this.fresh]) {
      for (let head = queue.peek(); head !== undefined && !this.isCurrent(head, 'waiting'); head = queue.peek()) queue.shift()
    }
    for (let top = this.backoffs.peek(); top !== undefined && !this.isCurrent(top, 'backoff'); top = this.backoffs.peek()) this.backoffs.pop()
  }

  /** Parked tasks first (they waited longest): place those some peer with room may now take; end
   *  those every live peer has been excluded from for UNPLACEABLE_AFTER_MS. */
  private unpark (now: number): void {
    for (const task of [...this.parked]) {
      if (this.withRoom.length > 0) {
        const peer = this.choose(task, undefined)
        if (peer !== undefined) {
          this.parked.delete(task)
          this.dispatch(task, peer, now, false)
          continue
        }
      }
      this.updateHopeless(task, now)
      if (task.hopelessSinceMs !== undefined && now >= task.hopelessSinceMs + UNPLACEABLE_AFTER_MS) {
        this.finish(task, { ok: false, reason: 'unplaceable' }, undefined)
      }
    }
  }

  private park (task: TaskRecord, now: number): void {
    task.state = 'parked'
    task.token += 1
    task.hopelessSinceMs = undefined
    this.parked.add(task)
    this.updateHopeless(task, now)
  }

  /** Hopeless: every live peer is excluded for it (not merely busy). */
  private updateHopeless (task: TaskRecord, now: number): void {
    let excludedLive = 0
    const counted = new Set<string>()
    const count = (peerId: string): void => {
      if (counted.has(peerId)) return
      counted.add(peerId)
      if (this.peerMap.get(peerId)?.live === true) excludedLive += 1
    }
    if (task.avoid !== undefined) for (const peerId of task.avoid) count(peerId)
    if (task.group !== undefined) {
      for (const peerId of task.group.running.keys()) count(peerId)
      for (const peerId of task.group.answered) count(peerId)
    }
    const hopeless = excludedLive >= this.liveCount
    if (!hopeless) task.hopelessSinceMs = undefined
    else if (task.hopelessSinceMs === undefined) task.hopelessSinceMs = now
  }

  /** Never place `task` on `peer`: it avoids it, or its group runs or ran there (`own`: a copy of
   *  the task itself, which does not count against it). */
  private excluded (task: TaskRecord, peer: PeerRecord, own?: Copy): boolean {
    if (task.avoid?.has(peer.peerId) === true) return true
    const group = task.group
    if (group === undefined) return false
    if (group.answered.has(peer.peerId)) return true
    const running = group.running.get(peer.peerId) ?? 0
    return running > (own !== undefined && own.peer === peer ? 1 : 0)
  }

  private joinGroup (key: string): GroupRecord {
    let group = this.groups.get(key)
    if (group === undefined) {
      group = { key, held: 0, running: new Map(), answered: new Set() }
      this.groups.set(key, group)
    }
    group.held += 1
    return group
  }

  private isCurrent (entry: Queued, state: TaskState): boolean {
    return entry.task.state === state && entry.task.token === entry.token && this.tasks.get(entry.task.taskId) === entry.task
  }

  private canSpeculate (): boolean {
    return this.waiting === 0 && this.withRoom.length > 0 && this.runtimes.length >= this.s.stragglerSamplesMin
  }

  private speculate (now: number): void {
    if (!this.canSpeculate()) return
    const afterMs = this.stragglerAfterMs()
    for (let copy = firstValue(this.stragglers); copy !== undefined && now >= copy.sinceMs + afterMs && this.withRoom.length > 0; copy = firstValue(this.stragglers)) {
      this.stragglers.delete(copy.key)
      const task = copy.task
      task.speculated = true
      const peer = this.choose(task, copy.peer)
      if (peer !== undefined) this.dispatch(task, peer, now, true)
    }
  }

  private dispatch (task: TaskRecord, peer: PeerRecord, now: number, speculative: boolean): void {
    assert(peer.live && peer.copies.size < peer.limit, 'a copy goes only to a peer with room')
    assert(!task.copies.some(c => c.peer === peer), 'two copies of a task never run on one peer')
    assert(!this.excluded(task, peer), 'a copy never goes to a peer its task avoids or its group holds')
    if (task.group !== undefined) task.group.running.set(peer.peerId, (task.group.running.get(peer.peerId) ?? 0) + 1)
    task.dispatches += 1
    // Every copy ends in a success, a failure, a loss or a cancel; each of those is bounded.
    assert(task.dispatches <= this.s.attemptsMax + this.s.lossesMax + 1, 'dispatches are bounded by attempts, losses and one speculation')
    const copy: Copy = { key: this.nextCopyKey++, task, peer, attempt: task.dispatches, sinceMs: now, speculative }
    task.state = 'running'
    task.copies.push(copy)
    peer.copies.add(copy)
    this.running.set(copy.key, copy)
    if (speculative) this.speculative += 1
    else if (!task.speculated && task.copies.length === 1) this.stragglers.set(copy.key, copy)
    this.updateRoom(peer)
    this.emit({ type: 'dispatch', taskId: task.taskId, peerId: peer.peerId, attempt: copy.attempt, speculative })
  }

  /** Forget a copy (its output, if any, was emitted by the caller). */
  private endCopy (copy: Copy): void {
    const { task, peer } = copy
    const at = task.copies.indexOf(copy)
    assert(at >= 0, 'a copy ends once')
    task.copies.splice(at, 1)
    peer.copies.delete(copy)
    const group = task.group
    if (group !== undefined) {
      const left = (group.running.get(peer.peerId) ?? 0) - 1
      if (left > 0) group.running.set(peer.peerId, left)
      else group.running.delete(peer.peerId)
    }
    this.running.delete(copy.key)
    this.stragglers.delete(copy.key)
    if (copy.speculative) this.speculative -= 1
    this.updateRoom(peer)
    if (!peer.live && peer.copies.size === 0) this.peerMap.delete(peer.peerId)
  }

  /** A copy failed or its peer was lost. If another copy runs, it carries on; else retry or end. */
  private afterCopyEnded (task: TaskRecord, how: 'failure' | 'loss', peerId: string, now: number): void {
    if (task.copies.length > 0) return
    if (how === 'loss') {
      task.losses += 1
      if (task.losses >= this.s.lossesMax) this.finish(task, { ok: false, reason: 'lost', peerId }, undefined)
      else this.enqueue(task, this.urgent)
      return
    }
    if (task.failures >= this.s.attemptsMax) {
      this.finish(task, { ok: false, reason: 'attempts', peerId }, undefined)
      return
    }
    task.state = 'backoff'
    task.token += 1
    this.backingOff += 1
    this.backoffs.push({ task, token: task.token, atMs: now + this.backoffMs(task.failures) })
  }

  /** End a task: cancel its copies (but `winner`), then `done`. */
  private finish (task: TaskRecord, end: { ok: true, peerId: string } | { ok: false, reason: DoneReason, peerId?: string }, winner: Copy | undefined): void {
    if (end.ok && winner !== undefined) task.group?.answered.add(winner.peer.peerId)
    for (const copy of [...task.copies]) {
      if (copy !== winner) this.emit({ type: 'cancel', taskId: task.taskId, peerId: copy.peer.peerId, attempt: copy.attempt })
      this.endCopy(copy)
    }
    if (task.state === 'parked') this.parked.delete(task)
    const group = task.group
    if (group !== undefined) {
      group.held -= 1
      if (group.held === 0) this.groups.delete(group.key)
    }
    if (task.state === 'waiting') this.waiting -= 1
    if (task.state === 'backoff') this.backingOff -= 1
    task.state = 'done'
    this.tasks.delete(task.taskId)
    const attempts = task.dispatches
    if (end.ok) this.emit({ type: 'done', taskId: task.taskId, ok: true, peerId: end.peerId, attempts })
    else if (end.peerId === undefined) this.emit({ type: 'done', taskId: task.taskId, ok: false, reason: end.reason, attempts })
    else this.emit({ type: 'done', taskId: task.taskId, ok: false, reason: end.reason, peerId: end.peerId, attempts })
  }

  /** Equal jitter: half of the doubled delay fixed, half drawn. */
  private backoffMs (failures: number): number {
    const full = Math.min(this.s.retryMaxMs, this.s.retryBaseMs * 2 ** Math.min(30, failures - 1))
    const half = Math.floor(full / 2)
    return full - half + this.random.int(0, half)
  }

  // --- placement -------------------------------------------------------------------------

  private hasRoom (peer: PeerRecord): boolean {
    return peer.live && peer.copies.size < peer.limit
  }

  private updateRoom (peer: PeerRecord): void {
    const room = this.hasRoom(peer)
    if (room && peer.roomIndex === -1) {
      peer.roomIndex = this.withRoom.length
      this.withRoom.push(peer)
    } else if (!room && peer.roomIndex !== -1) {
      const last = this.withRoom.pop() as PeerRecord
      if (last !== peer) {
        this.withRoom[peer.roomIndex] = last
        last.roomIndex = peer.roomIndex
      }
      peer.roomIndex = -1
    }
  }

  /** The best of a sample of peers with room, other than `busy` (the peer running the other copy). */
  private choose (task: TaskRecord, busy: PeerRecord | undefined): PeerRecord | undefined {
    const room = this.withRoom
    const usable = (p: PeerRecord): boolean => p !== busy && !this.excluded(task, p)
    const fresh = (p: PeerRecord): boolean => usable(p) && !task.failedOn.has(p.peerId)
    // With few peers with room, score them all: sampling exists to keep placement O(1) on big
    // networks, and on a small one two samples of three peers put two of three simultaneous
    // tasks on one peer a third of the time while another sits idle.
    const want = room.length <= SCAN_ALL_PEERS_MAX ? room.length : Math.min(this.s.candidatesSampled, room.length)
    let sample: PeerRecord[] = []
    if (room.length <= 2 * want) {
      // Few peers with room: take a random `want` of those the task has not failed on.
      sample = room.filter(fresh)
      for (let i = 0; i < Math.min(want, sample.length); i++) {
        const j = this.random.int(i, sample.length - 1)
        const swap = sample[i]
        sample[i] = sample[j]
        sample[j] = swap
      }
      sample.length = Math.min(want, sample.length)
    } else {
      // Random distinct draws, avoiding peers the task failed on; a bounded number of tries.
      for (let tries = 0; sample.length < want && tries < 4 * want + 4; tries++) {
        const peer = room[this.random.int(0, room.length - 1)]
        if (fresh(peer) && !sample.includes(peer)) sample.push(peer)
      }
    }
    if (sample.length === 0) {
      // Unlucky draws, or most peers with room already failed this task: look at all of them.
      const pool = room.filter(fresh)
      const fallback = pool.length > 0 ? pool : room.filter(usable)
      if (fallback.length === 0) return undefined
      sample.push(fallback[this.random.int(0, fallback.length - 1)])
    }
    for (const input of task.inputs) {
      const holder = this.peerMap.get(input.peer)
      if (holder !== undefined && holder.roomIndex >= 0 && fresh(holder) && !sample.includes(holder)) sample.push(holder)
    }
    let best = sample[0]
    let bestScore = this.score(best, task)
    for (let i = 1; i < sample.length; i++) {
      const score = this.score(sample[i], task)
      if (score > bestScore) {
        best = sample[i]
        bestScore = score
      }
    }
    return best
  }

  private score (peer: PeerRecord, task: TaskRecord): number {
    const advertisedBusy = peer.slotsMax - peer.slotsFree + peer.queueLength
    let score = peer.slotsMax - Math.max(peer.copies.size, advertisedBusy)
    if (task.inputs.length > 0) {
      let held = 0
      for (const input of task.inputs) if (input.peer === peer.peerId || peer.holds?.has(input.cid) === true) held += 1
      score += this.s.localityBonus * held / task.inputs.length
    }
    if (peer.warm?.has(task.fn) === true) score += this.s.warmBonus
    if (task.group !== undefined && peer.range !== undefined && this.rangeUsed(task.group, peer.range)) score -= SAME_RANGE_PENALTY
    return score + this.s.reputationBonus * peer.reputation
  }

  /** Some peer the group runs or ran on is in `range` (O(group's peers) ≤ its replicas). */
  private rangeUsed (group: GroupRecord, range: string): boolean {
    for (const peerId of group.running.keys()) if (this.peerMap.get(peerId)?.range === range) return true
    for (const peerId of group.answered) if (this.peerMap.get(peerId)?.range === range) return true
    return false
  }

  // --- runtimes ----------------------------------------------------------------------------

  private sampleRuntime (ms: number): void {
    if (this.runtimes.length < this.s.runtimeSamplesMax) this.runtimes.push(ms)
    else this.runtimes[this.runtimesNext] = ms
    this.runtimesNext = (this.runtimesNext + 1) % this.s.runtimeSamplesMax
    this.medianCache = undefined
  }

  private stragglerAfterMs (): number {
    if (this.medianCache === undefined) {
      const sorted = [...this.runtimes].sort((a, b) => a - b)
      const mid = sorted.length >> 1
      this.medianCache = sorted.length === 0 ? 0 : sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }
    return Math.max(this.s.stragglerMinMs, Math.ceil(this.s.stragglerFactor * this.medianCache))
  }

  // --- plumbing ----------------------------------------------------------------------------

  private emit (output: SchedulerOutput): void {
    this.outputs.push(output)
  }

  private advance (nowMs: number): number {
    assert(Number.isFinite(nowMs), 'nowMs is a finite number')
    if (this.clockMs === undefined || nowMs > this.clockMs) this.clockMs = nowMs
    return this.clockMs
  }

  /** The cheap invariants, after every input. */
  private check (): void {
    assert(this.tasks.size <= this.s.pendingMax, 'tasks held stay within pendingMax')
    assert(this.waiting >= 0 && this.backingOff >= 0 && this.waiting + this.backingOff <= this.tasks.size, 'waiting and backoff counts are sane')
    assert(this.waiting === 0 || this.withRoom.length === 0, 'nothing waits while a peer has room')
    assert(this.running.size <= 2 * this.tasks.size, 'at most two copies per task run')
  }
}

function firstValue<V> (map: Map<number, V>): V | undefined {
  for (const value of map.values()) return value
  return undefined
}

function isId (value: unknown): value is string {
  return typeof value === 'string' && value.length > 0
}

function isCount (value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

function checkTask (task: SchedulerTask): void {
  assert(typeof task === 'object' && task !== null && isId(task.taskId) && isId(task.fn), 'a task names itself and its function')
  assert(Array.isArray(task.inputs) && task.inputs.every(i => typeof i === 'object' && i !== null && isId(i.cid) && typeof i.peer === 'string'), 'task inputs are { cid, peer }')
  assert(task.avoid === undefined || (Array.isArray(task.avoid) && task.avoid.length <= AVOID_PEERS_MAX && task.avoid.every(isId)), 'avoid is at most AVOID_PEERS_MAX peer ids')
  assert(task.group === undefined || isId(task.group), 'a group is a non-empty id')
}

function checkCandidate (c: PeerCandidate): void {
  assert(typeof c === 'object' && c !== null && isId(c.peerId), 'a candidate names its peer')
  assert(isCount(c.slotsMax) && isCount(c.slotsFree) && isCount(c.queueLength), 'candidate capacity is counts')
  assert(c.holds === undefined || Array.isArray(c.holds), 'holds is an array of CIDs')
  assert(c.warm === undefined || Array.isArray(c.warm), 'warm is an array of function ids')
  assert(c.reputation === undefined || (typeof c.reputation === 'number' && c.reputation >= 0 && c.reputation <= 1), 'reputation is in 0..1')
  assert(c.range === undefined || (typeof c.range === 'string' && c.range.length <= 64), 'a range is a short string')
}

function resolveOptions (options: SchedulerOptions): Settings {
  if (typeof options !== 'object' || options === null) throw new ConfigError('options', 'must be an object')
  const r = options.random as unknown as Record<string, unknown> | undefined
  if (typeof r !== 'object' || r === null || typeof r.int !== 'function') throw new ConfigError('random', 'must be a Random (src/protocol/random.ts)')
  const settings: Settings = {
    pendingMax: bounded(options, 'pendingMax', 1, SCHEDULER_COUNT_LIMIT),
    candidatesSampled: bounded(options, 'candidatesSampled', 1, CANDIDATES_SAMPLED_LIMIT),
    queueShare: bounded(options, 'queueShare', 0, SCHEDULER_COUNT_LIMIT),
    localityBonus: bounded(options, 'localityBonus', 0, FACTOR_LIMIT),
    warmBonus: bounded(options, 'warmBonus', 0, FACTOR_LIMIT),
    attemptsMax: bounded(options, 'attemptsMax', 1, ATTEMPTS_LIMIT),
    lossesMax: bounded(options, 'lossesMax', 1, ATTEMPTS_LIMIT),
    retryBaseMs: bounded(options, 'retryBaseMs', 1, DURATION_MS_LIMIT),
    retryMaxMs: bounded(options, 'retryMaxMs', 1, DURATION_MS_LIMIT),
    attemptTimeoutMs: bounded(options, 'attemptTimeoutMs', 1, DURATION_MS_LIMIT),
    stragglerMinMs: bounded(options, 'stragglerMinMs', 1, DURATION_MS_LIMIT),
    stragglerFactor: bounded(options, 'stragglerFactor', 1, FACTOR_LIMIT),
    stragglerSamplesMin: bounded(options, 'stragglerSamplesMin', 1, SCHEDULER_COUNT_LIMIT),
    runtimeSamplesMax: bounded(options, 'runtimeSamplesMax', 1, SCHEDULER_COUNT_LIMIT),
    peersMax: bounded(options, 'peersMax', 1, SCHEDULER_COUNT_LIMIT),
    reputationBonus: bounded(options, 'reputationBonus', 0, FACTOR_LIMIT)
  }
  if (settings.retryBaseMs > settings.retryMaxMs) {
    throw new ConfigError('retryBaseMs', `must be <= retryMaxMs (${settings.retryBaseMs} > ${settings.retryMaxMs})`)
  }
  if (settings.stragglerSamplesMin > settings.runtimeSamplesMax) {
    throw new ConfigError('stragglerSamplesMin', `must be <= runtimeSamplesMax, or no median is ever trusted (${settings.stragglerSamplesMin} > ${settings.runtimeSamplesMax})`)
  }
  return settings
}

type Field = keyof Settings

function bounded (options: SchedulerOptions, field: Field, min: number, max: number): number {
  const value = options[field] ?? SCHEDULER_DEFAULTS[field]
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(field, `must be an integer in ${min}..${max}, got ${String(value)}`)
  }
  return value
}
