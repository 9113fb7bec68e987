/**
 * Verification state machine — theory of operation.
 *
 * INPUTS. Tasks with their policy, where each replica was placed, each replica's attested answer
 * or failure, peers proven to lie, cancellations and timeouts. Every input carries `nowMs`;
 * randomness (spot-check draws) comes from the injected `Random`; a peer's standing from the
 * injected query. This file reads no clock and does no I/O.
 *
 * A TASK is `open` until its result is accepted or it fails, then `accepted` (kept for re-checks
 * for retainMs, at most retainMax of them), then forgotten:
 *
 *   submit [place 1] ─► open ─replica 1 placed on a trusted peer (replicas > 1)─► solo
 *                          └─replica 1 placed elsewhere [place 2..N]──────────► full
 *   open ─ a vote reaches the quorum (1 when solo) ─► [accepted (+ place a spot check)] ─► accepted
 *        ─ a non-retryable failure reaches it, or any failure with replicas 1 ─► [failed] (forgotten)
 *        ─ the quorum can no longer be reached within the replica limit ─► [failed ERR_QUORUM_NOT_REACHED]
 *   accepted ─ spot check drawn / late disagreeing answer on a single-peer result / a supporter
 *        proven to lie leaves fewer than the policy needs [reopened] ─► checking ─► [verdict] ─► accepted
 *
 * VOTES. An answered replica votes for its result CID; a non-retryable failure votes for
 * "failure:<code>" (running it again fails the same way, so agreeing failures end the task with
 * that failure). A retryable failure, an answer from a banned or proven-lying peer, and a replica
 * that landed on a peer already used by the task count for nothing and are replaced. Each peer
 * runs at most one replica of a task (`peers` holds every peer that ran or runs one, and is the
 * `avoid` of each new replica), so votes are from distinct peers.
 *
 * REPLICAS ON DEMAND. While no vote has the quorum, the task keeps
 *   live = max(replicas − usable answers, quorum − best vote) replicas queued or running
 * (placing more as others end), never issuing more than min(REPLICAS_MAX, replicas +
 * EXTRA_REPLICAS_MAX). When even every replica left could not lift the best vote to the quorum,
 * the task fails with ERR_QUORUM_NOT_REACHED and every answer. Replicas still running when the
 * result is accepted run on: their answers are compared (a disagreement against max(2, quorum)
 * agreeing answers is a proof; against fewer it opens a check — a result carried by fewer than a
 * quorum, e.g. by colluding liars after an undecided check, must not convict anyone).
 *
 * CHECKS. A check decides when some CID has max(CHECK_QUORUM_MIN, quorum) usable votes: confirmed
 * if it is the accepted CID, else disproven (the result is replaced). It keeps that many minus
 * the best vote replicas running (a spot check places one; a disagreement brings in a third
 * peer). If the replica limit is reached undecided, the verdict is 'undecided' and the accepted
 * result stands: nothing better is known, and a run must not wait forever. At every decision
 * each answer not yet observed is `observed` agreed or disagreed, and each disagreeing answer
 * yields a proof with the (≥ 2) agreeing answers as witnesses.
 *
 * WHY INPUTS ARE CHEAP. Tasks are in a Map by id; each peer has an index of the accepted tasks it
 * supports (handleLiar touches only those); accepted tasks wait for their retain deadline in a
 * Map in acceptance order, which is deadline order (every deadline is now + retainMs, and time
 * never runs back), so the next timeout is its first entry. Per-task work is over its replicas
 * (≤ REPLICAS_MAX).
 *
 * CLOCK. The largest `nowMs` seen is "now"; time never runs backwards.
 */
import { OutputQueue } from '../output-queue.ts'
import { ConfigError, assert } from '../../model/errors.ts'
import type { Random } from '../random.ts'
import {
  ADAPTIVE_SPOT_CHECK_RATE, CHECK_QUORUM_MIN, DURATION_MS_LIMIT, EXTRA_REPLICAS_MAX, LIARS_MAX, QUORUM_NOT_REACHED,
  REPLICAS_MAX, RETAIN_COUNT_LIMIT, VERIFIER_DEFAULTS
} from './constants.ts'
import type {
  Attested, PeerStanding, ReplicaFailure, VerificationPolicy, Verifier, VerifierCounts, VerifierOptions, VerifierOutput
} from './index.ts'

type ReplicaState = 'queued' | 'placed' | 'answered' | 'ended'

interface Replica {
  n: number
  state: ReplicaState
  peerId: string | undefined
  avoid: readonly string[]
  check: boolean
  attested: Attested | undefined
  /** The result CID, or "failure:<code>" for a non-retryable failure. */
  vote: string | undefined
  failure: ReplicaFailure | undefined
  observed: boolean
  proven: boolean
}

interface TaskRecord {
  taskId: string
  policy: VerificationPolicy
  /** Most replicas this task may issue. */
  limit: number
  mode: 'pending' | 'solo' | 'full'
  phase: 'open' | 'accepted'
  replicas: Replica[]
  live: number
  peers: Set<string>
  accepted: { resultCid: string, replica: number, solo: boolean } | undefined
  checking: boolean
  /** Peers whose index holds this task. */
  indexed: Set<string>
}

const FAILURE_VOTE = 'failure:'

export class VerifierMachine implements Verifier {
  private readonly random: Random
  private readonly standingOf: (peerId: string) => PeerStanding
  private readonly retainMax: number
  private readonly retainMs: number
  private clockMs: number | undefined

  private readonly tasks = new Map<string, TaskRecord>()
  private open = 0
  private checking = 0
  private replicasLive = 0
  /** Accepted tasks with no check open → when they are forgotten; in deadline order. */
  private readonly retained = new Map<string, number>()
  /** Peer → accepted tasks whose result it supports. */
  private readonly supports = new Map<string, Set<string>>()
  /** Proven liars, oldest first. */
  private readonly liars = new Set<string>()
  private readonly outputs: OutputQueue<VerifierOutput>

  constructor (options: VerifierOptions) {
    if (typeof options !== 'object' || options === null) throw new ConfigError('options', 'must be an object')
    const r = options.random as unknown as Record<string, unknown> | undefined
    if (typeof r !== 'object' || r === null || typeof r.chance !== 'function') throw new ConfigError('random', 'must be a Random (src/protocol/random.ts)')
    if (typeof options.standing !== 'function') throw new ConfigError('standing', 'must be a function (peerId) => standing')
    this.random = options.random
    this.standingOf = options.standing
    this.retainMax = bounded(options.retainMax, VERIFIER_DEFAULTS.retainMax, 'retainMax', 1, RETAIN_COUNT_LIMIT)
    this.retainMs = bounded(options.retainMs, VERIFIER_DEFAULTS.retainMs, 'retainMs', 1, DURATION_MS_LIMIT)
    // One input emits at most a few outputs per replica of each task it touches; handleLiar and
    // handleTimeout touch at most every retained task. More queued means the shell is not draining.
    this.outputs = new OutputQueue(4 * REPLICAS_MAX * (this.retainMax + 1024))
  }

  handleSubmit (taskId: string, policy: VerificationPolicy, nowMs: number): 'accepted' | 'duplicate' {
    this.advance(nowMs)
    assert(typeof taskId === 'string' && taskId.length > 0, 'a task has an id')
    assertPolicy(policy)
    if (this.tasks.has(taskId)) return 'duplicate'
    const task: TaskRecord = {
      taskId,
      policy: { replicas: policy.replicas, quorum: policy.quorum, spotCheckRate: policy.spotCheckRate },
      limit: Math.min(REPLICAS_MAX, policy.replicas + EXTRA_REPLICAS_MAX),
      mode: policy.replicas === 1 ? 'solo' : 'pending',
      phase: 'open',
      replicas: [],
      live: 0,
      peers: new Set(),
      accepted: undefined,
      checking: false,
      indexed: new Set()
    }
    this.tasks.set(taskId, task)
    this.open += 1
    this.place(task, false)
    return 'accepted'
  }

  handlePlaced (taskId: string, n: number, peerId: string, nowMs: number): void {
    this.advance(nowMs)
    const task = this.tasks.get(taskId)
    const replica = task?.replicas[n - 1]
    if (task === undefined || replica === undefined || (replica.state !== 'queued' && replica.state !== 'placed')) return
    assert(typeof peerId === 'string' && peerId.length > 0, 'a placement names its peer')
    assert(!replica.avoid.includes(peerId), 'a replica is never placed on a peer in its avoid set')
    if (replica.peerId === peerId) return
    if (task.peers.has(peerId) || this.excluded(peerId)) {
      // Another replica of this task ran there (its vote would count twice), or the peer is a
      // proven liar: not this replica.
      this.dropReplica(task, replica)
      this.afterChange(task)
      return
    }
    replica.peerId = peerId
    replica.state = 'placed'
    task.peers.add(peerId)
    if (task.phase !== 'open' || replica.check) return
    const trusted = this.standingOf(peerId) === 'trusted'
    if (task.mode === 'pending') task.mode = trusted ? 'solo' : 'full'
    else if (task.mode === 'solo' && task.policy.replicas > 1 && !trusted) task.mode = 'full'
    if (task.mode === 'full') this.decideOpen(task)
  }

  handleResult (taskId: string, n: number, attested: Attested, nowMs: number): 'accepted' | 'stale' {
    this.advance(nowMs)
    assert(typeof attested === 'object' && attested !== null && typeof attested.resultCid === 'string' && attested.resultCid.length > 0, 'an attestation names its result')
    assert(!attested.resultCid.startsWith(FAILURE_VOTE), 'a result CID is not a failure vote')
    const task = this.tasks.get(taskId)
    const replica = task?.replicas[n - 1]
    if (task === undefined || replica === undefined || replica.state !== 'placed' || replica.peerId !== attested.peerId) return 'stale'
    if (this.excluded(attested.peerId)) {
      this.endReplica(task, replica)
      this.afterChange(task)
      return 'accepted'
    }
    if (task.mode === 'solo' && task.phase === 'open' && task.policy.replicas > 1 && this.standingOf(attested.peerId) !== 'trusted') {
      // The peer lost its trust while it ran: its answer is one vote of N.
      task.mode = 'full'
    }
    this.endReplica(task, replica)
    replica.state = 'answered'
    replica.attested = { peerId: attested.peerId, resultCid: attested.resultCid, signature: attested.signature }
    replica.vote = attested.resultCid
    this.afterChange(task)
    return 'accepted'
  }

  handleFailed (taskId: string, n: number, failure: ReplicaFailure, nowMs: number): 'accepted' | 'stale' {
    this.advance(nowMs)
    assert(typeof failure === 'object' && failure !== null && typeof failure.code === 'string' && typeof failure.retryable === 'boolean', 'a failure is { retryable, code, message }')
    const task = this.tasks.get(taskId)
    const replica = task?.replicas[n - 1]
    if (task === undefined || replica === undefined || (replica.state !== 'queued' && replica.state !== 'placed')) return 'stale'
    if (replica.peerId !== undefined) this.emit({ type: 'observed', peerId: replica.peerId, kind: 'failed' })
    replica.observed = true
    this.endReplica(task, replica)
    if (task.phase === 'open' && task.policy.replicas === 1) {
      this.fail(task, { retryable: failure.retryable, code: failure.code, message: failure.message })
      return 'accepted'
    }
    if (task.phase === 'open' && !failure.retryable) {
      replica.state = 'answered'
      replica.vote = FAILURE_VOTE + failure.code
      replica.failure = { retryable: false, code: failure.code, message: failure.message }
    } else if (task.mode === 'solo') {
      task.mode = 'full'
    }
    this.afterChange(task)
    return 'accepted'
  }

  handleLiar (peerId: string, nowMs: number): void {
    this.advance(nowMs)
    assert(typeof peerId === 'string' && peerId.length > 0, 'a liar has an id')
    if (!this.liars.has(peerId)) {
      if (this.liars.size >= LIARS_MAX) this.liars.delete(this.liars.values().next().value as string)
      this.liars.add(peerId)
    }
    const taskIds = this.supports.get(peerId)
    if (taskIds === undefined) return
    this.supports.delete(peerId)
    for (const taskId of taskIds) {
      const task = this.tasks.get(taskId)
      if (task === undefined) continue
      task.indexed.delete(peerId)
      if (task.checking || task.accepted === undefined) continue
      const need = task.accepted.solo ? 1 : task.policy.quorum
      if (this.supporters(task, task.accepted.resultCid).length < need) this.startCheck(task, true)
    }
  }

  handleCancel (taskId: string, nowMs: number): void {
    this.advance(nowMs)
    const task = this.tasks.get(taskId)
    if (task !== undefined) this.forget(task)
  }

  handleTimeout (nowMs: number): void {
    const now = this.advance(nowMs)
    for (const [taskId, untilMs] of this.retained) {
      if (untilMs > now) break
      this.forget(this.tasks.get(taskId) as TaskRecord)
    }
  }

  nextTimeoutMs (): number | undefined {
    for (const untilMs of this.retained.values()) return untilMs
    return undefined
  }

  poll (): VerifierOutput | undefined {
    return this.outputs.poll()
  }

  counts (): VerifierCounts {
    return { open: this.open, retained: this.retained.size, checking: this.checking, replicasLive: this.replicasLive, liars: this.liars.size }
  }

  checkInvariants (): void {
    let open = 0
    let checking = 0
    let live = 0
    for (const task of this.tasks.values()) {
      assert(task.replicas.length <= task.limit && task.limit <= REPLICAS_MAX, 'replicas per task stay within the limit')
      const running = task.replicas.filter(r => r.state === 'queued' || r.state === 'placed').length
      assert(running === task.live, 'a task counts its live replicas exactly')
      live += running
      const used = task.replicas.filter(r => r.state !== 'queued' && r.peerId !== undefined && (r.state !== 'ended' || r.attested !== undefined)).map(r => r.peerId)
      assert(new Set(used).size === used.length, 'replicas of a task run on distinct peers')
      for (const r of task.replicas) assert(r.peerId === undefined || !r.avoid.includes(r.peerId), 'no replica runs on a peer it avoids')
      if (task.phase === 'open') {
        open += 1
        assert(task.accepted === undefined && !task.checking && !this.retained.has(task.taskId), 'an open task has no result yet')
      } else {
        assert(task.accepted !== undefined, 'an accepted task has its result')
        if (task.checking) checking += 1
        assert(this.retained.has(task.taskId) !== task.checking, 'an accepted task is retained exactly while no check is open')
      }
      for (const peerId of task.indexed) assert(this.supports.get(peerId)?.has(task.taskId) === true, 'the supporter index is exact')
    }
    assert(open === this.open && checking === this.checking && live === this.replicasLive, 'counts are exact')
    for (const [peerId, taskIds] of this.supports) {
      assert(taskIds.size > 0, 'no empty index entries')
      for (const taskId of taskIds) assert(this.tasks.get(taskId)?.indexed.has(peerId) === true, 'an index entry names a held task')
    }
    assert(this.retained.size <= this.retainMax && this.liars.size <= LIARS_MAX, 'retained tasks and liars stay within their limits')
  }

  // --- deciding ------------------------------------------------------------------------------

  private afterChange (task: TaskRecord): void {
    if (task.phase === 'open') this.decideOpen(task)
    else if (task.checking) this.decideCheck(task)
    else this.compareLate(task)
  }

  private decideOpen (task: TaskRecord): void {
    const quorum = task.mode === 'full' ? task.policy.quorum : 1
    const best = this.bestVote(task, true)
    if (best.length >= quorum && best.length > 0) {
      const first = best[0]
      if (first.failure !== undefined) this.fail(task, first.failure)
      else this.accept(task, best)
      return
    }
    const usable = this.usableCount(task)
    const wanted = task.mode === 'full' ? Math.max(task.policy.replicas - usable, quorum - best.length) : 1
    this.topUp(task, wanted, false)
    if (best.length + task.live + (task.limit - task.replicas.length) < quorum || task.live === 0) {
      this.fail(task, {
        retryable: false,
        code: QUORUM_NOT_REACHED,
        message: `no ${quorum} of ${task.replicas.length} replicas of task ${task.taskId} agreed (replica limit ${task.limit}); see the attestations`
      })
    }
  }

  private accept (task: TaskRecord, group: Replica[]): void {
    assert(task.phase === 'open' && task.accepted === undefined, 'a task is accepted once, and not after it failed')
    const resultCid = group[0].vote as string
    const solo = task.mode !== 'full'
    const peers = new Set(group.map(r => r.peerId))
    assert(peers.size === group.length && group.every(r => r.vote === resultCid && r.attested !== undefined), 'agreeing attestations are from distinct peers')
    assert(solo
      ? group.length >= 1 && (task.policy.replicas === 1 || this.standingOf(group[0].peerId as string) === 'trusted')
      : group.length >= task.policy.quorum, 'an accepted result meets its policy')
    task.phase = 'accepted'
    this.open -= 1
    task.accepted = { resultCid, replica: group[0].n, solo }
    this.index(task, group)
    const rate = task.policy.replicas === 1 ? task.policy.spotCheckRate : Math.max(task.policy.spotCheckRate, ADAPTIVE_SPOT_CHECK_RATE)
    const check = solo && rate > 0 && this.random.chance(rate)
    this.emit({ type: 'accepted', taskId: task.taskId, resultCid, replica: group[0].n, attestations: group.map(r => r.attested as Attested), solo, checking: check })
    // A result from one peer is no evidence for that peer: it is observed when a check decides
    // (or never). Counting it as an agreement would let a liar earn trust by lying unchecked.
    if (!solo) this.observeAndProve(task, resultCid, group)
    if (check) this.startCheck(task, false)
    else this.retain(task)
  }

  private fail (task: TaskRecord, error: ReplicaFailure): void {
    assert(task.phase === 'open', 'a task fails once, and not after it was accepted')
    const attestations = task.replicas.filter(r => r.attested !== undefined).map(r => r.attested as Attested)
    this.emit({ type: 'failed', taskId: task.taskId, error, attestations })
    this.forget(task)
  }

  private startCheck (task: TaskRecord, reopened: boolean): void {
    assert(task.phase === 'accepted' && !task.checking, 'one check at a time')
    task.checking = true
    this.checking += 1
    this.retained.delete(task.taskId)
    if (reopened) this.emit({ type: 'reopened', taskId: task.taskId })
    this.decideCheck(task)
  }

  private decideCheck (task: TaskRecord): void {
    const quorum = Math.max(CHECK_QUORUM_MIN, task.policy.quorum)
    const best = this.bestVote(task, false)
    if (best.length >= quorum) {
      this.closeCheck(task, best)
      return
    }
    this.topUp(task, quorum - best.length, true)
    if (best.length + task.live + (task.limit - task.replicas.length) < quorum || task.live === 0) this.closeCheck(task, undefined)
  }

  /** A check's end: `group` the deciding vote, undefined when undecided. */
  private closeCheck (task: TaskRecord, group: Replica[] | undefined): void {
    const accepted = task.accepted as NonNullable<TaskRecord['accepted']>
    task.checking = false
    this.checking -= 1
    if (group === undefined) {
      const supporters = this.supporters(task, accepted.resultCid)
      this.emit({ type: 'verdict', taskId: task.taskId, verdict: 'undecided', resultCid: accepted.resultCid, replica: accepted.replica, attestations: supporters.map(r => r.attested as Attested) })
      this.retain(task)
      return
    }
    const resultCid = group[0].vote as string
    const confirmed = resultCid === accepted.resultCid
    if (!confirmed) {
      task.accepted = { resultCid, replica: group[0].n, solo: false }
      this.unindex(task)
    }
    this.index(task, group)
    this.emit({ type: 'verdict', taskId: task.taskId, verdict: confirmed ? 'confirmed' : 'disproven', resultCid, replica: group[0].n, attestations: group.map(r => r.attested as Attested) })
    this.observeAndProve(task, resultCid, group)
    this.retain(task)
  }

  /** Answers that came after the decision: agreeing ones join the supporters; a disagreeing one
   *  is a lie when max(2, quorum) support the result, else it opens a check. */
  private compareLate (task: TaskRecord): void {
    const accepted = task.accepted as NonNullable<TaskRecord['accepted']>
    for (const r of task.replicas) {
      if (r.state !== 'answered' || r.observed || r.attested === undefined) continue
      if (r.vote === accepted.resultCid) {
        r.observed = true
        this.emit({ type: 'observed', peerId: r.attested.peerId, kind: 'agreed' })
        this.index(task, [r])
        continue
      }
      // A lie needs as many witnesses as a check would: with fewer (a single-peer result, or a
      // quorum thinned by a liar) the disagreement opens a check instead of convicting anyone.
      const supporters = this.supporters(task, accepted.resultCid)
      if (supporters.length >= Math.max(CHECK_QUORUM_MIN, task.policy.quorum)) {
        this.observeAndProve(task, accepted.resultCid, supporters)
      } else {
        this.startCheck(task, true)
        return
      }
    }
  }

  /** Each answer not yet observed is observed against `resultCid`; with ≥ 2 witnesses, each
   *  disagreeing answer not yet proven is a proof. */
  private observeAndProve (task: TaskRecord, resultCid: string, witnesses: Replica[]): void {
    for (const r of task.replicas) {
      if (r.state !== 'answered' || r.attested === undefined) continue
      if (!r.observed) {
        r.observed = true
        this.emit({ type: 'observed', peerId: r.attested.peerId, kind: r.vote === resultCid ? 'agreed' : 'disagreed' })
      }
      if (witnesses.length >= CHECK_QUORUM_MIN && r.vote !== resultCid && !r.proven) {
        r.proven = true
        const liar = r.attested
        this.emit({ type: 'proof', proof: { taskId: task.taskId, liar, witnesses: witnesses.map(w => w.attested as Attested).filter(w => w.peerId !== liar.peerId) } })
      }
    }
  }

  // --- votes -----------------------------------------------------------------------------------

  /** The largest vote among usable answers (earliest replica first on ties); [] when none. */
  private bestVote (task: TaskRecord, withFailures: boolean): Replica[] {
    const votes = new Map<string, Replica[]>()
    let best: Replica[] = []
    for (const r of task.replicas) {
      if (!this.usable(r) || (!withFailures && r.failure !== undefined)) continue
      const vote = r.vote as string
      let group = votes.get(vote)
      if (group === undefined) {
        group = []
        votes.set(vote, group)
      }
      group.push(r)
      if (group.length > best.length) best = group
    }
    return best
  }

  private usable (r: Replica): boolean {
    return r.state === 'answered' && r.vote !== undefined && r.peerId !== undefined && !this.excluded(r.peerId)
  }

  private usableCount (task: TaskRecord): number {
    let n = 0
    for (const r of task.replicas) if (this.usable(r)) n += 1
    return n
  }

  private supporters (task: TaskRecord, resultCid: string): Replica[] {
    return task.replicas.filter(r => this.usable(r) && r.vote === resultCid && r.attested !== undefined)
  }

  private excluded (peerId: string): boolean {
    return this.liars.has(peerId) || this.standingOf(peerId) === 'banned'
  }

  // --- replicas --------------------------------------------------------------------------------

  /** Keep `wanted` replicas live, within the task's replica limit. */
  private topUp (task: TaskRecord, wanted: number, check: boolean): void {
    while (task.live < wanted && task.replicas.length < task.limit) this.place(task, check)
  }

  private place (task: TaskRecord, check: boolean): void {
    const n = task.replicas.length + 1
    assert(n <= task.limit && task.limit <= REPLICAS_MAX, 'replicas per task stay within the limit')
    const avoid = [...task.peers]
    task.replicas.push({ n, state: 'queued', peerId: undefined, avoid, check, attested: undefined, vote: undefined, failure: undefined, observed: false, proven: false })
    task.live += 1
    this.replicasLive += 1
    this.emit({ type: 'place', taskId: task.taskId, replica: n, avoid, check })
  }

  private dropReplica (task: TaskRecord, replica: Replica): void {
    this.emit({ type: 'drop', taskId: task.taskId, replica: replica.n })
    this.endReplica(task, replica)
  }

  private endReplica (task: TaskRecord, replica: Replica): void {
    assert(replica.state === 'queued' || replica.state === 'placed', 'a replica ends once')
    replica.state = 'ended'
    task.live -= 1
    this.replicasLive -= 1
  }

  // --- keeping -----------------------------------------------------------------------------------

  private retain (task: TaskRecord): void {
    this.retained.delete(task.taskId)
    this.retained.set(task.taskId, (this.clockMs as number) + this.retainMs)
    while (this.retained.size > this.retainMax) {
      const oldest = this.retained.keys().next().value as string
      this.forget(this.tasks.get(oldest) as TaskRecord)
    }
  }

  private index (task: TaskRecord, group: Replica[]): void {
    for (const r of group) {
      const peerId = r.peerId as string
      let taskIds = this.supports.get(peerId)
      if (taskIds === undefined) {
        taskIds = new Set()
        this.supports.set(peerId, taskIds)
      }
      taskIds.add(task.taskId)
      task.indexed.add(peerId)
    }
  }

  private unindex (task: TaskRecord): void {
    for (const peerId of task.indexed) {
      const taskIds = this.supports.get(peerId)
      taskIds?.delete(task.taskId)
      if (taskIds?.size === 0) this.supports.delete(peerId)
    }
    task.indexed.clear()
  }

  /** Drop its live replicas and forget it (no accepted/failed/verdict follows). */
  private forget (task: TaskRecord): void {
    for (const r of task.replicas) if (r.state === 'queued' || r.state === 'placed') this.dropReplica(task, r)
    if (task.phase === 'open') this.open -= 1
    if (task.checking) this.checking -= 1
    this.retained.delete(task.taskId)
    this.unindex(task)
    this.tasks.delete(task.taskId)
  }

  private emit (output: VerifierOutput): void {
    this.outputs.push(output)
  }

  private advance (nowMs: number): number {
    assert(Number.isFinite(nowMs), 'nowMs is a finite number')
    if (this.clockMs === undefined || nowMs > this.clockMs) this.clockMs = nowMs
    return this.clockMs
  }
}

function assertPolicy (p: VerificationPolicy): void {
  assert(typeof p === 'object' && p !== null, 'a policy is an object')
  const { replicas, quorum, spotCheckRate } = p
  assert(Number.isSafeInteger(replicas) && replicas >= 1 && replicas <= REPLICAS_MAX, 'policy replicas are 1..REPLICAS_MAX')
  assert(replicas === 1 ? quorum === 1 : Number.isSafeInteger(quorum) && quorum >= 2 && quorum <= replicas, 'policy quorum: 1 for one replica, else 2..replicas')
  assert(typeof spotCheckRate === 'number' && spotCheckRate >= 0 && spotCheckRate <= 1, 'policy spotCheckRate is in 0..1')
}

function bounded (value: number | undefined, fallback: number, field: string, min: number, max: number): number {
  const v = value ?? fallback
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new ConfigError(field, `must be an integer in ${min}..${max}, got ${String(v)}`)
  }
  return v
}
