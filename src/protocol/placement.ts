/**
 * Placement helpers that every peer computes the same way from the same inputs, and the placement
 * of one-off calls (`rhizome call`, `POST /v1/tasks`: TaskPlacement, one task at a time). The tasks
 * of workflow runs are placed by the scheduler (src/protocol/scheduler/), which does for many tasks
 * at once what TaskPlacement does for one — sampling, retries elsewhere — plus capacity limits per
 * peer, backoff, locality, lost peers and stragglers; `schedulerCandidates` below feeds it.
 *
 * Rendezvous (highest-random-weight) hashing: each candidate peer gets a weight hash(key, peer);
 * the `n` highest weights own the key. Every peer that knows the same candidates picks the same
 * owners, without asking anyone, and when a peer leaves only the keys it owned move
 * (Thaler & Ravishankar, "Using name-based mappings to increase hit rates", 1998).
 */
import { assert } from '../model/errors.ts'
import type { PeerEntry } from './membership/index.ts'
import type { PeerCandidate } from './scheduler/index.ts'

/** cyrb53: a fast, well-mixed 53-bit string hash (public domain). Not cryptographic: placement
 * only needs spread, and the inputs (CIDs, peer ids) are already hashes. */
export function hash53 (text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed
  let h2 = 0x41c6ce57 ^ seed
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i)
    h1 = Math.imul(h1 ^ ch, 2654435761)
    h2 = Math.imul(h2 ^ ch, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  return 4294967296 * (2097151 & h2) + (h1 >>> 0)
}

/** The `n` owners of `key` among `peers`, best first. Ties (astronomically rare) break by id. */
export function rendezvousOwners (key: string, peers: readonly string[], n: number): string[] {
  return [...new Set(peers)]
    .map(peer => ({ peer, weight: hash53(`${key}\n${peer}`) }))
    .sort((a, b) => b.weight - a.weight || (a.peer < b.peer ? -1 : 1))
    .slice(0, Math.max(0, n))
    .map(entry => entry.peer)
}

export interface PlacementCandidate {
  peerId: string
  slotsFree: number
  queueLength: number
}

/**
 * Pick a worker: sample `sampleSize` candidates at random and take the least loaded (most free
 * slots, then shortest queue) — "the power of two choices" (Mitzenmacher, 2001): nearly as good
 * as asking everyone, and it does not send every caller to the same peer at once.
 * `random` returns floats in [0, 1). Returns undefined when there are no candidates.
 */
export function choosePeer (candidates: readonly PlacementCandidate[], random: () => number, sampleSize = 2): PlacementCandidate | undefined {
  if (candidates.length === 0) return undefined
  const pool = [...candidates]
  const sample: PlacementCandidate[] = []
  while (sample.length < sampleSize && pool.length > 0) {
    const at = Math.floor(random() * pool.length)
    sample.push(pool.splice(at, 1)[0])
  }
  const load = (c: PlacementCandidate): number => c.queueLength - c.slotsFree
  return sample.reduce((best, c) => load(c) < load(best) ? c : best)
}

/**
 * The caller's side of running one task: which peer to try next, and whether a failure is worth
 * another try. Each attempt goes to a peer not tried before (a peer that just failed is the
 * likeliest to fail again), chosen by `choosePeer`; a failure is retried elsewhere only if it is
 * retryable, the caller has not cancelled, and fewer than `attemptsMax` attempts were made. The
 * shell feeds it candidates and outcomes and does the I/O.
 */
export class PlacementAttempts {
  readonly attemptsMax: number
  private readonly tried = new Set<string>()

  constructor (attemptsMax: number) {
    assert(Number.isSafeInteger(attemptsMax) && attemptsMax >= 1, 'attemptsMax must be a positive integer')
    this.attemptsMax = attemptsMax
  }

  /** Attempts made so far. */
  get attempts (): number {
    return this.tried.size
  }

  /** The peer for the next attempt, or undefined when attempts are spent or every candidate was tried. */
  next (candidates: readonly PlacementCandidate[], random: () => number): PlacementCandidate | undefined {
    if (this.tried.size >= this.attemptsMax) return undefined
    const chosen = choosePeer(candidates.filter(c => !this.tried.has(c.peerId)), random)
    if (chosen !== undefined) this.tried.add(chosen.peerId)
    return chosen
  }

  /** Whether the failure of the last attempt should be retried on another peer. */
  shouldRetry (failure: { retryable: boolean }, cancelled: boolean): boolean {
    return failure.retryable && !cancelled && this.tried.size < this.attemptsMax
  }
}

/** The candidates for one task: this peer with its own capacity, and every peer alive in its view. */
export function placementCandidates (self: PlacementCandidate, view: ReadonlyArray<Pick<PeerEntry, 'peerId' | 'state' | 'capacity'>>): PlacementCandidate[] {
  return [self, ...view
    .filter(p => p.state === 'alive' && p.peerId !== self.peerId)
    .map(p => ({ peerId: p.peerId, slotsFree: p.capacity.slotsFree, queueLength: p.capacity.queueLength }))]
}

export type TaskPlacementOutput =
  /** Run the task on `peerId`; `attempt` counts from 1. Answer with handleSuccess or handleFailure. */
  | { type: 'attempt', peerId: string, attempt: number }
  /** Stop: `failed` after a failure not worth retrying (or the last allowed), `no-peer` when no
   *  untried candidate was left. The shell reports the last failure, or that no peer was available. */
  | { type: 'give-up', reason: 'failed' | 'no-peer', attempts: number }

/**
 * Placing one task, sans-I/O (STYLE.md §4): the loop of "choose a peer, run it there, and on a
 * retryable failure choose another" with the running taken out.
 *
 * Theory of operation. States: `idle` → `attempting` (an attempt output is waiting for its
 * outcome) → `done`. `handleStart(candidates)` chooses the first peer; `handleFailure(failure,
 * cancelled, candidates)` either chooses another untried peer (PlacementAttempts decides whether a
 * retry is allowed) or gives up; `handleSuccess()` ends it. Each input queues at most one output,
 * drained with `poll()`. Candidates come in with each choice, so a retry sees the view as it is
 * then; randomness comes in through the constructor, so a simulator can replay the choices.
 */
export class TaskPlacement {
  private readonly attempts: PlacementAttempts
  private readonly random: () => number
  private state: 'idle' | 'attempting' | 'done' = 'idle'
  private output: TaskPlacementOutput | undefined

  constructor (options: { attemptsMax: number, random: () => number }) {
    this.attempts = new PlacementAttempts(options.attemptsMax)
    this.random = options.random
  }

  handleStart (candidates: readonly PlacementCandidate[]): void {
    if (this.state !== 'idle') throw new Error('assertion failed: a placement starts once')
    this.choose(candidates)
  }

  /** The last attempt failed; `cancelled` if the caller gave up (never retried). */
  handleFailure (failure: { retryable: boolean }, cancelled: boolean, candidates: readonly PlacementCandidate[]): void {
    if (this.state !== 'attempting') throw new Error('assertion failed: a failure answers an attempt')
    if (!this.attempts.shouldRetry(failure, cancelled)) {
      this.finish('failed')
      return
    }
    this.choose(candidates)
  }

  handleSuccess (): void {
    if (this.state !== 'attempting') throw new Error('assertion failed: a success answers an attempt')
    this.state = 'done'
  }

  poll (): TaskPlacementOutput | undefined {
    const output = this.output
    this.output = undefined
    return output
  }

  private choose (candidates: readonly PlacementCandidate[]): void {
    const chosen = this.attempts.next(candidates, this.random)
    if (chosen === undefined) {
      this.finish('no-peer')
      return
    }
    this.state = 'attempting'
    this.output = { type: 'attempt', peerId: chosen.peerId, attempt: this.attempts.attempts }
  }

  private finish (reason: 'failed' | 'no-peer'): void {
    this.state = 'done'
    this.output = { type: 'give-up', reason, attempts: this.attempts.attempts }
  }
}

/** The scheduler's live view: this peer with its own capacity, and every peer alive in its view,
 *  with each one's slotsMax (the scheduler keeps each peer within it, plus a small queue share). */
export function schedulerCandidates (self: { peerId: string, slotsFree: number, slotsMax: number, queueLength: number, addrs?: string[] }, view: ReadonlyArray<Pick<PeerEntry, 'peerId' | 'state' | 'capacity'> & { addrs?: string[] }>): PeerCandidate[] {
  const withRange = (c: PeerCandidate, addrs: string[] | undefined): PeerCandidate => {
    const range = addrs === undefined ? undefined : addressRange(addrs)
    return range === undefined ? c : { ...c, range }
  }
  return [withRange({ peerId: self.peerId, slotsFree: self.slotsFree, slotsMax: self.slotsMax, queueLength: self.queueLength }, self.addrs), ...view
    .filter(p => p.state === 'alive' && p.peerId !== self.peerId)
    .map(p => withRange({ peerId: p.peerId, slotsFree: p.capacity.slotsFree, slotsMax: p.capacity.slotsMax, queueLength: p.capacity.queueLength }, p.addrs))]
}

/**
 * The address range a peer's first IP address falls in — IPv4 /24 (`ip4:10.1.2`), IPv6 /48
 * (`ip6:2001:db8:1`) — the granularity at which one operator usually holds addresses, so replicas
 * of a verified task on peers of different ranges are less likely to share an owner. Undefined
 * when no address is IP (a relay or DNS address: nothing to compare).
 */
export function addressRange (addrs: readonly string[]): string | undefined {
  for (const addr of addrs) {
    const parts = addr.split('/')
    if (parts[1] === 'ip4' && parts[2] !== undefined) {
      const octets = parts[2].split('.')
      if (octets.length === 4) return `ip4:${octets.slice(0, 3).join('.')}`
    } else if (parts[1] === 'ip6' && parts[2] !== undefined) {
      const groups = parts[2].split(':').filter(g => g !== '')
      if (groups.length >= 3) return `ip6:${groups.slice(0, 3).join(':').toLowerCase()}`
    }
  }
  return undefined
}
