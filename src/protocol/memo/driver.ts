/**
 * Memo driver — the driver side of memo replication, theory of operation.
 *
 * WHAT IT IS FOR. A durable run must survive the loss of the peer that drives it: its memo (every
 * accepted result, timer firing and signal the code has seen) lives on the run's home set of R
 * peers, and another peer can take the run over by reading it back. The rule that makes this
 * safe: an entry the code depends on is persisted by a MAJORITY of the home set before the code
 * sees it (`durable`). Any later driver reads a majority (`gather`), and two majorities share a
 * peer, so it finds every entry any earlier code depended on.
 *
 * STATES:
 *
 *   gathering ──a majority answered──► ready ──a replica says a newer epoch──► fenced
 *      └──────────────────────── a newer epoch ──────────────────────────────────┘
 *
 * A new run starts `ready` with an empty memo. A takeover (`gather: true`) starts `gathering`:
 * it asks every home-set peer for its whole memo, merges the answers by the rule of
 * ./memo-set.ts, and once a majority answered in full it RE-STAMPS every entry with its own epoch,
 * says `gathered`, and pushes the memo back out. Re-stamping is what lets the merge rule prefer
 * the higher epoch: the new driver vouches for all it found, and anything of a lower epoch it did
 * not find was never durable. `fenced` is final: a replica answered `refused` with a higher epoch
 * (the replicas of a gather promise, by raising their fence, to refuse older drivers), so another
 * driver owns the run; this one stops sending and ignores every input.
 *
 * PER REPLICA the driver keeps one of three activities, and one timer (`nextAtMs`):
 *  - PULL: a `gather` was sent (takeover, a new home-set member, or a digest mismatch) and its
 *    `memo-part`s are being collected; resent with backoff until every part has come back. When
 *    complete, entries the driver lacks are adopted (re-stamped, pushed to everyone); the replica's
 *    entries equal to the driver's count as its acks; and whatever the replica lacks or holds
 *    differently becomes its pending set. This compare is linear in the memo, and is the repair
 *    of a replica that is new, restored from an old disk, or had been given up on.
 *  - PUSH: `pending` ids go out in `append` batches of at most batchEntriesMax, ONE batch in
 *    flight per replica; entries that arrive meanwhile wait and leave together in the next batch
 *    (batching falls out of the window: a fast replica gets one entry per message, a slow one
 *    many). An unanswered batch is resent after resendMs, doubling to resendMaxMs; after
 *    attemptsMax sends the driver gives the replica up (drops its pending) and only probes it.
 *  - IDLE: a `probe` with the memo's digest every probeIntervalMs; a reply with another digest
 *    starts a pull — and so does a matching one while some entry is not durable yet (its acks may
 *    have been lost until the replica was given up: the pull's compare counts what it holds). A
 *    reply while pushing is ignored (the push is the repair in progress).
 *
 * DURABLE. An `ack` lists the ids the replica now holds exactly as sent (persisted before the ack
 * left, ./replica.ts). `durable { id }` goes out once, when the acks from current home-set members
 * reach a majority of the current home set. The driver's own peer, if in the home set, is just
 * another replica: the shell loops its messages back to the local replica.
 *
 * HOME-SET CHANGES (`handleHomeSet`): a removed peer's state and acks stop counting; an added one
 * is pulled (see PULL) and then gets what it lacks. The majority is always of the current set.
 *
 * CONFLICTS. A local entry for an id already in the memo with another value (nondeterministic
 * code) is not replicated: `conflict`, and the memo's value stands. A pulled entry that differs
 * from the memo's: `conflict`, the memo's value stands and is pushed over it.
 *
 * INPUT TRUST. Replica messages come from the network: wrong shapes, oversized parts, unknown
 * senders, answers to another epoch or another pull are 'malformed' or 'ignored', never thrown.
 * Local misuse (an entry while gathering, a malformed local entry) fails an assertion.
 *
 * CLOCK. The largest `nowMs` seen is "now"; time never runs backwards.
 */
import { ConfigError, assert } from '../../model/errors.ts'
import { OutputQueue } from '../output-queue.ts'
import { MEMO_DEFAULTS, MEMO_STRING_CHARS_MAX } from './constants.ts'
import type {
  DriverMessage, DriverOutput, MemoDriver, MemoDriverOptions, MemoDriverState, MemoEntry, MemoValue, MessageVerdict, ReplicaMessage
} from './index.ts'
import { copyEntry, copyValue, digestProblem, entryProblem, MemoFullError, MemoSet, sameDigest, sameEntry, sameValue, validEpoch } from './memo-set.ts'
import { resolveLimits } from './replica.ts'
import type { ResolvedLimits } from './replica.ts'

interface Pull {
  nonce: number
  parts: Array<MemoEntry[] | undefined>
  total: number | undefined
  received: number
}

interface PeerState {
  /** Ids this replica still needs, in the order they were added. */
  pending: Set<string>
  /** Ids of the append in flight. */
  batch: string[] | undefined
  pull: Pull | undefined
  /** While gathering: the replica's memo, once its pull completed. */
  pulled: MemoEntry[] | undefined
  /** Sends of the current batch or pull. */
  attempts: number
  nextAtMs: number
}

interface Settings extends ResolvedLimits {
  resendMs: number
  resendMaxMs: number
  attemptsMax: number
  probeIntervalMs: number
}

function checkHomeSet (peers: unknown, sizeMax: number): string[] {
  if (!Array.isArray(peers) || peers.length < 1 || peers.length > sizeMax) {
    throw new ConfigError('homeSet', `must list 1..${sizeMax} peers`, { hint: 'the home set is R peers chosen by rendezvous hashing (R is 3 by default)' })
  }
  const seen = new Set<string>()
  for (const peer of peers) {
    if (typeof peer !== 'string' || peer.length < 1 || peer.length > MEMO_STRING_CHARS_MAX || seen.has(peer)) {
      throw new ConfigError('homeSet', 'must list distinct peer ids')
    }
    seen.add(peer)
  }
  return [...peers] as string[]
}

export class MemoDriverMachine implements MemoDriver {
  private readonly s: Settings
  private readonly self: string
  private readonly epoch: number
  private current: MemoDriverState
  private clockMs = -Infinity
  private homeSet: string[]
  private readonly peers = new Map<string, PeerState>()
  private readonly set: MemoSet
  private readonly acks = new Map<string, Set<string>>()
  private readonly durable = new Set<string>()
  private nonce = 0
  private readonly outputs: OutputQueue<DriverOutput>

  constructor (options: MemoDriverOptions) {
    const limits = resolveLimits(options)
    const timing = {
      resendMs: options.resendMs ?? MEMO_DEFAULTS.resendMs,
      resendMaxMs: options.resendMaxMs ?? MEMO_DEFAULTS.resendMaxMs,
      attemptsMax: options.attemptsMax ?? MEMO_DEFAULTS.attemptsMax,
      probeIntervalMs: options.probeIntervalMs ?? MEMO_DEFAULTS.probeIntervalMs
    }
    for (const [field, value] of Object.entries(timing)) {
      if (!Number.isSafeInteger(value) || value < 1 || value > 2_147_483_647) throw new ConfigError(field, `must be a whole number ≥ 1, got ${String(value)}`)
    }
    if (timing.resendMaxMs < timing.resendMs) throw new ConfigError('resendMaxMs', 'must be at least resendMs')
    this.s = { ...limits, ...timing }
    if (typeof options.self !== 'string' || options.self.length < 1) throw new ConfigError('self', 'must be this peer\'s id')
    if (!validEpoch(options.epoch) || options.epoch < 1) throw new ConfigError('epoch', `must be a whole number ≥ 1, got ${String(options.epoch)}`)
    this.self = options.self
    this.epoch = options.epoch
    this.homeSet = checkHomeSet(options.homeSet, limits.homeSetSizeMax)
    this.set = new MemoSet(limits.memoEntriesMax)
    this.current = options.gather === true ? 'gathering' : 'ready'
    for (const peer of this.homeSet) this.addPeer(peer)
    // One input emits at most: a conflict and a durable per entry (a pull), a message per peer.
    this.outputs = new OutputQueue(3 * limits.memoEntriesMax + 4 * limits.homeSetSizeMax + 16)
  }

  // --- inputs ----------------------------------------------------------------------------------

  handleLocalEntry (entry: { id: string, value: MemoValue }, nowMs: number): void {
    this.handleLocalEntries([entry], nowMs)
  }

  handleLocalEntries (entries: ReadonlyArray<{ id: string, value: MemoValue }>, nowMs: number): void {
    const now = this.advance(nowMs)
    if (this.current === 'fenced') return
    assert(this.current === 'ready', 'local entries come after the gather')
    let added = false
    try {
      for (const entry of entries) added = this.addLocal(entry) || added
    } finally {
      // Those added before a MemoFullError go out all the same.
      if (added) {
        for (const peer of this.homeSet) {
          const p = this.peers.get(peer)!
          if (p.batch === undefined && p.pull === undefined && p.pending.size > 0) this.sendBatch(peer, p, now)
        }
      }
    }
  }

  /** Merge one local entry and mark it pending for every replica; false if it was not new. */
  private addLocal (entry: { id: string, value: MemoValue }): boolean {
    const stamped: MemoEntry = { id: entry.id, epoch: this.epoch, value: entry.value === undefined ? entry.value : copyValue(entry.value) }
    assert(entryProblem(stamped) === undefined, `a local entry is well formed: ${entryProblem(stamped) ?? ''}`)
    const held = this.set.get(entry.id)
    if (held !== undefined) {
      if (!sameValue(held, stamped)) this.outputs.push({ type: 'conflict', id: entry.id, kept: copyEntry(held), dropped: stamped })
      return false
    }
    if (this.set.size >= this.s.memoEntriesMax) throw new MemoFullError(this.s.memoEntriesMax)
    this.set.merge(stamped)
    for (const peer of this.homeSet) this.peers.get(peer)!.pending.add(entry.id)
    return true
  }

  handleHomeSet (peers: string[], nowMs: number): void {
    const now = this.advance(nowMs)
    if (this.current === 'fenced') return
    const next = checkHomeSet(peers, this.s.homeSetSizeMax)
    for (const peer of this.homeSet) if (!next.includes(peer)) this.peers.delete(peer)
    const added = next.filter(peer => !this.peers.has(peer))
    this.homeSet = next
    for (const peer of added) {
      const p = this.addPeer(peer)
      this.startPull(peer, p, now)
    }
    if (this.current === 'gathering') this.maybeFinishGather(now)
    else for (const e of this.set.values()) this.checkDurable(e.id)
  }

  handleMessage (from: string, message: ReplicaMessage, nowMs: number): MessageVerdict {
    const now = this.advance(nowMs)
    if (this.current === 'fenced') return 'ignored'
    if (typeof message !== 'object' || message === null || !validEpoch(message.epoch)) return 'malformed'
    if (message.type === 'refused') {
      if (message.epoch <= this.epoch) return 'ignored'
      this.current = 'fenced'
      this.outputs.push({ type: 'fenced', epoch: message.epoch })
      return 'accepted'
    }
    const p = this.peers.get(from)
    if (p === undefined || message.epoch !== this.epoch) return 'ignored'
    switch (message.type) {
      case 'ack': return this.onAck(from, p, message.ids, now)
      case 'memo-part': return this.onPart(from, p, message, now)
      case 'probe-reply': {
        if (digestProblem(message.digest) !== undefined) return 'malformed'
        if (p.pull !== undefined || p.batch !== undefined || p.pending.size > 0 || this.current !== 'ready') return 'ignored'
        // A matching digest says the replica holds what we hold, but acks lost until we gave it up
        // were never counted: while anything is short of durable, pull, and the compare counts them.
        if (!sameDigest(message.digest, this.set.digest()) || this.durable.size < this.set.size) this.startPull(from, p, now)
        return 'accepted'
      }
      default: return 'malformed'
    }
  }

  handleTimeout (nowMs: number): void {
    const now = this.advance(nowMs)
    if (this.current === 'fenced') return
    for (const peer of this.homeSet) {
      const p = this.peers.get(peer)!
      if (p.nextAtMs <= now) this.act(peer, p, now)
    }
  }

  // --- outputs and queries ---------------------------------------------------------------------

  poll (): DriverOutput | undefined {
    return this.outputs.poll()
  }

  nextTimeoutMs (): number | undefined {
    if (this.current === 'fenced') return undefined
    let next = Infinity
    for (const p of this.peers.values()) next = Math.min(next, p.nextAtMs)
    return next === Infinity ? undefined : next
  }

  state (): MemoDriverState {
    return this.current
  }

  memo (): MemoEntry[] {
    return this.set.sorted()
  }

  isDurable (id: string): boolean {
    return this.durable.has(id)
  }

  // --- per replica -----------------------------------------------------------------------------

  private addPeer (peer: string): PeerState {
    // Due at once: a takeover pulls, a new run probes (a cheap check that the replica is empty).
    const p: PeerState = { pending: new Set(), batch: undefined, pull: undefined, pulled: undefined, attempts: 0, nextAtMs: 0 }
    this.peers.set(peer, p)
    if (this.current === 'gathering') p.pull = { nonce: -1, parts: [], total: undefined, received: 0 }
    return p
  }

  private act (peer: string, p: PeerState, now: number): void {
    if (p.pull !== undefined) {
      this.sendPull(peer, p, now)
    } else if (p.batch !== undefined) {
      if (p.attempts >= this.s.attemptsMax) {
        // Give the replica up: the run goes on with the others; a probe will repair this one.
        p.batch = undefined
        p.pending.clear()
        p.attempts = 0
        p.nextAtMs = now + this.s.probeIntervalMs
        return
      }
      this.sendAppend(peer, p, now)
    } else if (p.pending.size > 0) {
      this.sendBatch(peer, p, now)
    } else {
      this.send(peer, { type: 'probe', epoch: this.epoch, digest: this.set.digest() })
      p.nextAtMs = now + this.s.probeIntervalMs
    }
  }

  private backoffMs (attempts: number): number {
    return Math.min(this.s.resendMs * 2 ** Math.min(attempts - 1, 30), this.s.resendMaxMs)
  }

  private sendBatch (peer: string, p: PeerState, now: number): void {
    const ids: string[] = []
    for (const id of p.pending) {
      if (ids.length >= this.s.batchEntriesMax) break
      ids.push(id)
    }
    p.batch = ids
    p.attempts = 0
    this.sendAppend(peer, p, now)
  }

  private sendAppend (peer: string, p: PeerState, now: number): void {
    assert(p.batch !== undefined, 'an append has a batch')
    p.attempts += 1
    p.nextAtMs = now + this.backoffMs(p.attempts)
    this.send(peer, { type: 'append', epoch: this.epoch, entries: p.batch.map(id => copyEntry(this.set.get(id)!)) })
  }

  private startPull (peer: string, p: PeerState, now: number): void {
    p.pull = { nonce: -1, parts: [], total: undefined, received: 0 }
    p.batch = undefined
    p.attempts = 0
    this.sendPull(peer, p, now)
  }

  /** (Re)send the gather of a pull, under a fresh nonce: parts of an earlier ask are ignored. Pulls
   *  are never given up (a takeover cannot go on without a majority), only slowed to resendMaxMs. */
  private sendPull (peer: string, p: PeerState, now: number): void {
    assert(p.pull !== undefined, 'a pull is under way')
    this.nonce += 1
    p.pull = { nonce: this.nonce, parts: [], total: undefined, received: 0 }
    p.attempts += 1
    p.nextAtMs = now + this.backoffMs(p.attempts)
    this.send(peer, { type: 'gather', epoch: this.epoch, nonce: this.nonce })
  }

  private onAck (from: string, p: PeerState, ids: unknown, now: number): MessageVerdict {
    if (!Array.isArray(ids) || ids.length > this.s.batchEntriesMax || !ids.every(id => typeof id === 'string')) return 'malformed'
    if (p.batch === undefined) return 'ignored'
    const batch = new Set(p.batch)
    let used = false
    for (const id of ids as string[]) {
      if (!batch.delete(id)) continue
      used = true
      p.pending.delete(id)
      this.ack(id, from)
    }
    if (!used) return 'ignored'
    if (batch.size > 0) {
      p.batch = [...batch]
      return 'accepted'
    }
    p.batch = undefined
    p.attempts = 0
    if (p.pending.size > 0) this.sendBatch(from, p, now)
    else p.nextAtMs = now + this.s.probeIntervalMs
    return 'accepted'
  }

  private onPart (from: string, p: PeerState, m: Extract<ReplicaMessage, { type: 'memo-part' }>, now: number): MessageVerdict {
    const partsMax = Math.ceil(this.s.memoEntriesMax / this.s.batchEntriesMax)
    if (!Number.isSafeInteger(m.parts) || m.parts < 1 || m.parts > partsMax || !Number.isSafeInteger(m.part) || m.part < 0 || m.part >= m.parts) return 'malformed'
    if (!Array.isArray(m.entries) || m.entries.length > this.s.batchEntriesMax) return 'malformed'
    for (const e of m.entries) if (entryProblem(e) !== undefined || e.epoch > this.epoch) return 'malformed'
    const pull = p.pull
    if (pull === undefined || m.nonce !== pull.nonce) return 'ignored'
    if (pull.total === undefined) pull.total = m.parts
    if (m.parts !== pull.total) return 'malformed'
    if (pull.parts[m.part] !== undefined) return 'ignored'
    pull.parts[m.part] = m.entries.map(copyEntry)
    pull.received += 1
    if (pull.received === pull.total) this.pullDone(from, p, pull.parts.flatMap(part => part ?? []), now)
    return 'accepted'
  }

  private pullDone (peer: string, p: PeerState, entries: MemoEntry[], now: number): void {
    p.pull = undefined
    p.attempts = 0
    if (this.current === 'gathering') {
      for (const e of entries) this.mergeReported(e)
      p.pulled = entries
      p.nextAtMs = Infinity // nothing to do until the gather finishes
      this.maybeFinishGather(now)
      return
    }
    for (const e of entries) {
      const held = this.set.get(e.id)
      if (held === undefined) this.adopt(e, now)
      else if (!sameValue(held, e)) this.outputs.push({ type: 'conflict', id: e.id, kept: copyEntry(held), dropped: copyEntry(e) })
    }
    this.compareWith(peer, p, entries, now)
  }

  /** Merge during the gather (by the rule), reporting conflicts. */
  private mergeReported (e: MemoEntry): void {
    const result = this.set.merge(e)
    if ('full' in result) return
    if (result.conflict !== undefined) this.outputs.push({ type: 'conflict', id: e.id, ...result.conflict })
  }

  /** A pulled entry the driver lacks: vouch for it (own epoch) and push it to every replica. */
  private adopt (e: MemoEntry, now: number): void {
    if (this.set.size >= this.s.memoEntriesMax) return // the replica holds more than a run may: keep to the limit
    this.set.merge({ id: e.id, epoch: this.epoch, value: copyValue(e.value) })
    for (const peer of this.homeSet) {
      const q = this.peers.get(peer)!
      q.pending.add(e.id)
      if (q.batch === undefined && q.pull === undefined && q.pulled === undefined) this.sendBatch(peer, q, now)
    }
  }

  /** After a pull: what the replica holds as the driver does counts as acked; the rest is pending. */
  private compareWith (peer: string, p: PeerState, entries: MemoEntry[], now: number): void {
    const theirs = new Map<string, MemoEntry>()
    for (const e of entries) theirs.set(e.id, e)
    for (const e of this.set.sorted()) {
      const t = theirs.get(e.id)
      if (t !== undefined && sameEntry(t, e)) {
        p.pending.delete(e.id)
        this.ack(e.id, peer)
      } else {
        p.pending.add(e.id)
      }
    }
    p.pulled = undefined
    if (p.pending.size > 0) this.sendBatch(peer, p, now)
    else p.nextAtMs = now + this.s.probeIntervalMs
  }

  private maybeFinishGather (now: number): void {
    let answered = 0
    for (const peer of this.homeSet) if (this.peers.get(peer)!.pulled !== undefined) answered += 1
    if (answered < this.majority()) return
    this.current = 'ready'
    for (const e of this.set.sorted()) this.set.merge({ ...e, epoch: this.epoch })
    this.outputs.push({ type: 'gathered', entries: this.set.sorted() })
    for (const peer of this.homeSet) {
      const p = this.peers.get(peer)!
      if (p.pulled !== undefined) this.compareWith(peer, p, p.pulled, now)
    }
  }

  private ack (id: string, peer: string): void {
    let by = this.acks.get(id)
    if (by === undefined) {
      by = new Set()
      this.acks.set(id, by)
    }
    by.add(peer)
    this.checkDurable(id)
  }

  private checkDurable (id: string): void {
    if (this.durable.has(id)) return
    const by = this.acks.get(id)
    if (by === undefined) return
    let n = 0
    for (const peer of this.homeSet) if (by.has(peer)) n += 1
    if (n < this.majority()) return
    this.durable.add(id)
    this.acks.delete(id)
    this.outputs.push({ type: 'durable', id })
  }

  private majority (): number {
    return Math.floor(this.homeSet.length / 2) + 1
  }

  private send (to: string, message: DriverMessage): void {
    this.outputs.push({ type: 'send', to, message })
  }

  private advance (nowMs: number): number {
    assert(Number.isFinite(nowMs), 'time is a finite number of ms')
    if (nowMs > this.clockMs) this.clockMs = nowMs
    return this.clockMs
  }
}
