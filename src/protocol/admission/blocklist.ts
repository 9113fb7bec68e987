/**
 * The blocklist: peers whose score fell to BLOCK_SCORE_MAX, each refused until a time.
 *
 * Peer ids are free, so the list must not grow with every identity an attacker burns: it holds
 * at most `entriesMax` entries. Every block lasts the same `blockMs` and the clock never runs
 * backwards here (the largest `nowMs` seen is used), so insertion order (Map order; a re-block
 * moves the entry to the back) is also expiry order. Adding an entry therefore first drops
 * expired entries from the front, then — if still over the limit — the entries closest to expiry.
 * A lookup of an expired entry deletes it.
 */
import { ConfigError, assert } from '../../model/errors.ts'
import { DURATION_MS_LIMIT, BLOCKED_PEERS_MAX, BLOCK_MS, BLOCK_SCORE_MAX } from './constants.ts'
import type { BlocklistOptions, PeerBlocklist } from './index.ts'

export class Blocklist implements PeerBlocklist {
  private readonly entriesMax: number
  private readonly blockMs: number
  /** Peer id → blocked until (ms), in expiry order. */
  private readonly until = new Map<string, number>()
  private clockMs = 0

  constructor (options: BlocklistOptions) {
    this.entriesMax = options.entriesMax ?? BLOCKED_PEERS_MAX
    this.blockMs = options.blockMs ?? BLOCK_MS
    if (!Number.isSafeInteger(this.entriesMax) || this.entriesMax < 1) throw new ConfigError('entriesMax', `must be a positive integer, got ${String(this.entriesMax)}`)
    if (!Number.isSafeInteger(this.blockMs) || this.blockMs < 1 || this.blockMs > DURATION_MS_LIMIT) {
      throw new ConfigError('blockMs', `must be an integer between 1 and ${DURATION_MS_LIMIT}, got ${String(this.blockMs)}`)
    }
  }

  handleScore (peerId: string, score: number, nowMs: number): boolean {
    const now = this.clock(nowMs)
    if (score > BLOCK_SCORE_MAX) return false
    this.until.delete(peerId)
    this.until.set(peerId, now + this.blockMs)
    for (const [oldest, untilMs] of this.until) {
      if (untilMs > now && this.until.size <= this.entriesMax) break
      this.until.delete(oldest)
    }
    return true
  }

  isBlocked (peerId: string, nowMs: number): boolean {
    const now = this.clock(nowMs)
    const untilMs = this.until.get(peerId)
    if (untilMs === undefined) return false
    if (untilMs > now) return true
    this.until.delete(peerId)
    return false
  }

  size (): number {
    return this.until.size
  }

  private clock (nowMs: number): number {
    assert(Number.isFinite(nowMs), 'nowMs must be a finite number')
    if (nowMs > this.clockMs) this.clockMs = nowMs
    return this.clockMs
  }
}
