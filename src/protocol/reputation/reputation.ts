/**
 * Reputation state machine — theory of operation.
 *
 * A RECORD per peer counts what the verification machine observed of its answers (agreed,
 * disagreed, failed) and its proven lies. Its score is the Beta-posterior mean of ./constants.ts;
 * its standing follows from the score, the counts and a running ban. Every change is `persist`ed.
 *
 * PROOFS. A proof (signatures already checked by the shell) counts once per (taskId, liar) while
 * remembered: the liar's `lies` grows, and it is banned for banMs(lies) from now (a running ban is
 * only ever lengthened) — [banned]. When the ban runs out, handleTimeout lifts it — [unbanned];
 * the record keeps its lies, so the peer comes back `doubtful`, never trusted again.
 *
 * BOUNDS. At most recordsMax records. Records not banned sit in a Map in order of last update
 * (re-inserted on each update), so the least recently updated is its first entry and eviction is
 * O(1) — [evicted]. A banned record is never evicted (forgetting it would lift the ban); if every
 * record is banned, an observation of a new peer is not recorded. Running bans wait in a binary
 * heap by end time (entries whose ban changed are skipped), so the next timeout is its top.
 *
 * CLOCK. The largest `nowMs` seen is "now"; time never runs backwards.
 */
import { OutputQueue } from '../output-queue.ts'
import { ConfigError, assert } from '../../model/errors.ts'
import {
  DOUBTFUL_SCORE_BELOW, PROOFS_REMEMBERED_MAX, RECORDS_COUNT_LIMIT, REPUTATION_DEFAULTS, TRUSTED_AGREEMENTS_MIN, TRUSTED_SCORE_MIN,
  banMs, scoreOf
} from './constants.ts'
import type { Observation, ProofOfLie, Reputation, ReputationCounts, ReputationOptions, ReputationOutput, ReputationRecord } from './index.ts'
import type { PeerStanding } from '../verify/index.ts'

interface Ban { peerId: string, untilMs: number }

export class ReputationMachine implements Reputation {
  private readonly recordsMax: number
  private clockMs = 0
  private readonly byPeer = new Map<string, ReputationRecord>()
  /** Records not banned, least recently updated first. */
  private readonly lru = new Map<string, ReputationRecord>()
  private readonly bans: Ban[] = []
  private banned = 0
  private readonly proofs = new Set<string>()
  private readonly outputs: OutputQueue<ReputationOutput>

  constructor (options: ReputationOptions) {
    if (typeof options !== 'object' || options === null) throw new ConfigError('options', 'must be an object')
    const max = options.recordsMax ?? REPUTATION_DEFAULTS.recordsMax
    if (!Number.isSafeInteger(max) || max < 1 || max > RECORDS_COUNT_LIMIT) {
      throw new ConfigError('recordsMax', `must be an integer in 1..${RECORDS_COUNT_LIMIT}, got ${String(max)}`)
    }
    this.recordsMax = max
    const stored = [...(options.records ?? [])]
    for (const r of stored) {
      if (!validRecord(r)) throw new ConfigError('records', `a stored reputation record is malformed: ${JSON.stringify(r?.peerId ?? r)}`)
    }
    // The most recently updated first, so the cut keeps those; then load oldest first (LRU order).
    stored.sort((a, b) => b.updatedMs - a.updatedMs)
    const kept = stored.slice(0, max).reverse()
    for (const r of kept) {
      const record = { ...r }
      if (this.byPeer.has(record.peerId)) continue
      this.byPeer.set(record.peerId, record)
      if (record.bannedUntilMs > 0) {
        this.banned += 1
        this.pushBan({ peerId: record.peerId, untilMs: record.bannedUntilMs })
      } else {
        this.lru.set(record.peerId, record)
      }
    }
    // Per input: a persist, a ban and an eviction; handleTimeout lifts at most every ban (two each).
    this.outputs = new OutputQueue(2 * max + 1024)
  }

  handleObserved (peerId: string, kind: Observation, nowMs: number): void {
    const now = this.advance(nowMs)
    assert(typeof peerId === 'string' && peerId.length > 0, 'an observation names its peer')
    assert(kind === 'agreed' || kind === 'disagreed' || kind === 'failed', 'an observation is agreed, disagreed or failed')
    const record = this.recordOf(peerId, now)
    if (record === undefined) return
    if (kind === 'agreed') record.agreements += 1
    else if (kind === 'disagreed') record.disagreements += 1
    else record.failures += 1
    this.touch(record, now)
  }

  handleProof (proof: ProofOfLie, nowMs: number): 'accepted' | 'duplicate' | 'invalid' {
    const now = this.advance(nowMs)
    if (!validProof(proof)) return 'invalid'
    const key = `${proof.taskId}\n${proof.liar}`
    if (this.proofs.has(key)) return 'duplicate'
    if (this.proofs.size >= PROOFS_REMEMBERED_MAX) this.proofs.delete(this.proofs.values().next().value as string)
    this.proofs.add(key)
    const record = this.recordOf(proof.liar, now)
    if (record === undefined) return 'accepted'
    record.lies += 1
    const untilMs = Math.max(record.bannedUntilMs, now + banMs(record.lies))
    if (record.bannedUntilMs === 0) {
      this.banned += 1
      this.lru.delete(record.peerId)
    }
    record.bannedUntilMs = untilMs
    this.pushBan({ peerId: record.peerId, untilMs })
    this.touch(record, now)
    this.emit({ type: 'banned', peerId: record.peerId, untilMs })
    return 'accepted'
  }

  standing (peerId: string, nowMs?: number): PeerStanding {
    const now = nowMs ?? this.clockMs
    const record = this.byPeer.get(peerId)
    if (record === undefined) return 'unknown'
    if (record.bannedUntilMs > now) return 'banned'
    const score = scoreOf(record)
    if (record.lies > 0 || score < DOUBTFUL_SCORE_BELOW) return 'doubtful'
    if (record.agreements >= TRUSTED_AGREEMENTS_MIN && score >= TRUSTED_SCORE_MIN) return 'trusted'
    return 'unknown'
  }

  score (peerId: string): number {
    const record = this.byPeer.get(peerId)
    return record === undefined ? scoreOf({ agreements: 0, disagreements: 0, failures: 0 }) : scoreOf(record)
  }

  handleTimeout (nowMs: number): void {
    const now = this.advance(nowMs)
    for (let top = this.bans[0]; top !== undefined && top.untilMs <= now; top = this.bans[0]) {
      this.popBan()
      const record = this.byPeer.get(top.peerId)
      if (record === undefined || record.bannedUntilMs !== top.untilMs) continue
      record.bannedUntilMs = 0
      this.banned -= 1
      this.touch(record, now)
      this.emit({ type: 'unbanned', peerId: record.peerId })
    }
    this.dropStaleBans()
  }

  nextTimeoutMs (): number | undefined {
    this.dropStaleBans()
    return this.bans[0]?.untilMs
  }

  poll (): ReputationOutput | undefined {
    return this.outputs.poll()
  }

  records (): ReputationRecord[] {
    return [...this.byPeer.values()].map(r => ({ ...r }))
  }

  counts (): ReputationCounts {
    return { records: this.byPeer.size, banned: this.banned, proofsRemembered: this.proofs.size }
  }

  checkInvariants (): void {
    let banned = 0
    for (const r of this.byPeer.values()) {
      assert(validRecord(r), 'records are well-formed')
      if (r.bannedUntilMs > 0) {
        banned += 1
        assert(!this.lru.has(r.peerId), 'a banned record is not evictable')
        assert(this.bans.some(b => b.peerId === r.peerId && b.untilMs === r.bannedUntilMs), 'a running ban waits in the heap')
      } else {
        assert(this.lru.get(r.peerId) === r, 'a record not banned is in the eviction order')
      }
    }
    assert(banned === this.banned && this.lru.size + banned === this.byPeer.size, 'counts are exact')
    assert(this.byPeer.size <= this.recordsMax && this.proofs.size <= PROOFS_REMEMBERED_MAX, 'records and proofs stay within their limits')
    for (let i = 1; i < this.bans.length; i++) assert(this.bans[(i - 1) >> 1].untilMs <= this.bans[i].untilMs, 'the ban heap is ordered')
  }

  // --- records ---------------------------------------------------------------------------------

  /** The peer's record, made (evicting the least recently updated) if new; undefined if every record is banned. */
  private recordOf (peerId: string, now: number): ReputationRecord | undefined {
    const known = this.byPeer.get(peerId)
    if (known !== undefined) return known
    if (this.byPeer.size >= this.recordsMax) {
      const oldest = this.lru.keys().next().value
      if (oldest === undefined) return undefined
      this.lru.delete(oldest)
      this.byPeer.delete(oldest)
      this.emit({ type: 'evicted', peerId: oldest })
    }
    const record: ReputationRecord = { peerId, agreements: 0, disagreements: 0, failures: 0, lies: 0, bannedUntilMs: 0, updatedMs: now }
    this.byPeer.set(peerId, record)
    this.lru.set(peerId, record)
    return record
  }

  private touch (record: ReputationRecord, now: number): void {
    record.updatedMs = now
    if (record.bannedUntilMs === 0) {
      this.lru.delete(record.peerId)
      this.lru.set(record.peerId, record)
    }
    this.emit({ type: 'persist', record: { ...record } })
  }

  // --- the ban heap ------------------------------------------------------------------------------

  private pushBan (ban: Ban): void {
    const heap = this.bans
    heap.push(ban)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent].untilMs <= ban.untilMs) break
      heap[i] = heap[parent]
      i = parent
    }
    heap[i] = ban
  }

  private popBan (): void {
    const heap = this.bans
    const last = heap.pop()
    if (heap.length === 0 || last === undefined) return
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      if (left >= heap.length) break
      const right = left + 1
      const child = right < heap.length && heap[right].untilMs < heap[left].untilMs ? right : left
      if (heap[child].untilMs >= last.untilMs) break
      heap[i] = heap[child]
      i = child
    }
    heap[i] = last
  }

  /** Entries whose ban was lengthened or whose record is gone are skipped at the top. */
  private dropStaleBans (): void {
    for (let top = this.bans[0]; top !== undefined && this.byPeer.get(top.peerId)?.bannedUntilMs !== top.untilMs; top = this.bans[0]) this.popBan()
  }

  private emit (output: ReputationOutput): void {
    this.outputs.push(output)
  }

  private advance (nowMs: number): number {
    assert(Number.isFinite(nowMs), 'nowMs is a finite number')
    if (nowMs > this.clockMs) this.clockMs = nowMs
    return this.clockMs
  }
}

function isCount (v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

function validRecord (r: ReputationRecord | undefined): boolean {
  return typeof r === 'object' && r !== null && typeof r.peerId === 'string' && r.peerId.length > 0 &&
    isCount(r.agreements) && isCount(r.disagreements) && isCount(r.failures) && isCount(r.lies) &&
    isCount(r.bannedUntilMs) && typeof r.updatedMs === 'number' && Number.isFinite(r.updatedMs)
}

function validProof (p: ProofOfLie): boolean {
  if (typeof p !== 'object' || p === null || typeof p.taskId !== 'string' || p.taskId.length === 0) return false
  if (typeof p.liar !== 'string' || p.liar.length === 0 || !Array.isArray(p.witnesses)) return false
  const witnesses = new Set(p.witnesses.filter(w => typeof w === 'string' && w.length > 0 && w !== p.liar))
  return witnesses.size >= 2
}
