/**
 * Memo replica — one run's memo on one home-set peer. It has no timers: it only answers.
 *
 * STATE: the memo (a MemoSet) and the FENCE, the highest driver epoch it has seen (from a
 * driver's message or from the lease part, `handleEpoch`). Both are what the shell persists, and
 * what a restarted replica is built from.
 *
 * INPUTS, each from a driver, each carrying the driver's epoch:
 *  - a message from an epoch below the fence is refused (`refused` with the fence): that driver
 *    was deposed, and must learn it. This is what keeps a deposed driver from making anything
 *    durable once its successor has gathered: the gather raised the fence on a majority, and every
 *    majority shares a member with it.
 *  - a higher epoch raises the fence, persisted before anything is answered (a replica that
 *    forgot its fence in a crash could ack a deposed driver after promising the new one not to).
 *  - `append`: merge the entries (./memo-set.ts), `persist` what changed, THEN `ack` the ids it now
 *    holds exactly as sent. The shell completes the persist before it sends what follows in poll()
 *    — an ack is a promise that the entry survives this peer's crash.
 *  - `gather`: answer with the whole memo, sorted by id, in `memo-part`s of batchEntriesMax.
 *  - `probe`: answer with the digest; the driver compares.
 * Malformed messages (bad shapes, oversized batches, an entry stamped above its message's epoch)
 * are ignored and reported as 'malformed', never thrown: they come from the network.
 */
import { ConfigError, assert } from '../../model/errors.ts'
import { OutputQueue } from '../output-queue.ts'
import { MEMO_DEFAULTS } from './constants.ts'
import type { DriverMessage, MemoDigest, MemoEntry, MemoReplica, MemoReplicaOptions, MessageVerdict, ReplicaMessage, ReplicaOutput } from './index.ts'
import { chunks, digestProblem, entryProblem, MemoSet, sameEntry, validEpoch } from './memo-set.ts'

export interface ResolvedLimits {
  memoEntriesMax: number
  batchEntriesMax: number
  homeSetSizeMax: number
}

export function resolveLimits (options: { memoEntriesMax?: number, batchEntriesMax?: number, homeSetSizeMax?: number }): ResolvedLimits {
  const out = {
    memoEntriesMax: options.memoEntriesMax ?? MEMO_DEFAULTS.memoEntriesMax,
    batchEntriesMax: options.batchEntriesMax ?? MEMO_DEFAULTS.batchEntriesMax,
    homeSetSizeMax: options.homeSetSizeMax ?? MEMO_DEFAULTS.homeSetSizeMax
  }
  for (const [field, value] of Object.entries(out)) {
    if (!Number.isSafeInteger(value) || value < 1 || value > 1_000_000) throw new ConfigError(field, `must be a whole number in [1, 1000000], got ${String(value)}`)
  }
  return out
}

export class MemoReplicaMachine implements MemoReplica {
  private readonly limits: ResolvedLimits
  private readonly set: MemoSet
  private fence = 0
  private readonly outputs: OutputQueue<ReplicaOutput>

  constructor (options: MemoReplicaOptions) {
    this.limits = resolveLimits(options)
    this.set = new MemoSet(this.limits.memoEntriesMax)
    if (options.epoch !== undefined) {
      if (!validEpoch(options.epoch)) throw new ConfigError('epoch', `must be a whole number ≥ 0, got ${String(options.epoch)}`)
      this.fence = options.epoch
    }
    for (const entry of options.entries ?? []) {
      const problem = entryProblem(entry)
      if (problem !== undefined) throw new ConfigError('entries', problem, { hint: 'the stored memo is damaged' })
      this.set.merge(entry)
    }
    // One input emits at most: a persist, a conflict per entry of a batch, one ack or refusal, or
    // every part of the memo.
    this.outputs = new OutputQueue(Math.ceil(this.limits.memoEntriesMax / this.limits.batchEntriesMax) + this.limits.batchEntriesMax + 16)
  }

  handleMessage (from: string, message: DriverMessage, nowMs: number): MessageVerdict {
    if (typeof message !== 'object' || message === null) return 'malformed'
    switch (message.type) {
      case 'append': return this.handleAppend(from, message.epoch, message.entries, nowMs)
      case 'gather': return this.handleGather(from, message.epoch, message.nonce, nowMs)
      case 'probe': return this.handleProbe(from, message.epoch, message.digest, nowMs)
      default: return 'malformed'
    }
  }

  handleAppend (from: string, epoch: number, entries: MemoEntry[], _nowMs: number): MessageVerdict {
    if (!validEpoch(epoch) || !Array.isArray(entries) || entries.length > this.limits.batchEntriesMax) return 'malformed'
    for (const entry of entries) {
      if (entryProblem(entry) !== undefined || entry.epoch > epoch) return 'malformed'
    }
    if (!this.admit(from, epoch)) return 'refused'
    const changed: MemoEntry[] = []
    for (const entry of entries) {
      const result = this.set.merge(entry)
      if ('full' in result) continue
      if (result.conflict !== undefined) this.outputs.push({ type: 'conflict', id: entry.id, ...result.conflict })
      if (result.changed) changed.push(this.set.get(entry.id)!)
    }
    if (changed.length > 0) this.outputs.push({ type: 'persist', entries: changed.map(e => ({ ...e, value: { ...e.value } })), epoch: this.fence })
    const ids: string[] = []
    for (const entry of entries) {
      const held = this.set.get(entry.id)
      if (held !== undefined && sameEntry(held, entry) && !ids.includes(entry.id)) ids.push(entry.id)
    }
    this.send(from, { type: 'ack', epoch, ids })
    return 'accepted'
  }

  handleGather (from: string, epoch: number, nonce: number, _nowMs: number): MessageVerdict {
    if (!validEpoch(epoch) || !validEpoch(nonce)) return 'malformed'
    if (!this.admit(from, epoch)) return 'refused'
    const parts = chunks(this.set.sorted(), this.limits.batchEntriesMax)
    parts.forEach((entries, part) => this.send(from, { type: 'memo-part', epoch, nonce, part, parts: parts.length, entries }))
    return 'accepted'
  }

  handleProbe (from: string, epoch: number, digest: MemoDigest, _nowMs: number): MessageVerdict {
    if (!validEpoch(epoch) || digestProblem(digest) !== undefined) return 'malformed'
    if (!this.admit(from, epoch)) return 'refused'
    this.send(from, { type: 'probe-reply', epoch, digest: this.set.digest() })
    return 'accepted'
  }

  handleEpoch (epoch: number, _nowMs: number): void {
    assert(validEpoch(epoch), 'the lease gives whole-number epochs')
    if (epoch <= this.fence) return
    this.fence = epoch
    this.outputs.push({ type: 'persist', entries: [], epoch })
  }

  /** Fencing: refuse a stale epoch; a newer one raises the fence (persisted first). */
  private admit (from: string, epoch: number): boolean {
    if (epoch < this.fence) {
      this.send(from, { type: 'refused', epoch: this.fence })
      return false
    }
    if (epoch > this.fence) {
      this.fence = epoch
      this.outputs.push({ type: 'persist', entries: [], epoch })
    }
    return true
  }

  private send (to: string, message: ReplicaMessage): void {
    this.outputs.push({ type: 'send', to, message })
  }

  poll (): ReplicaOutput | undefined {
    return this.outputs.poll()
  }

  nextTimeoutMs (): number | undefined {
    return undefined
  }

  epoch (): number {
    return this.fence
  }

  memo (): MemoEntry[] {
    return this.set.sorted()
  }

  digest (): MemoDigest {
    return this.set.digest()
  }
}
