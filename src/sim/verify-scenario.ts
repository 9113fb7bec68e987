/**
 * Verified results on a simulated network: one driving peer runs the real verification machine
 * (src/protocol/verify) and the real reputation machine (src/protocol/reputation); N worker
 * peers run the replicas. Some workers are Byzantine: after answering honestly for a while (to
 * earn trust) each lies at a drawn rate — with a value of its own, or, in colluding seeds, all
 * liars with the same wrong value. Task messages and answers travel over the simulated network
 * with delay, and with loss and duplication during the fault window.
 *
 * Placement is a small stand-in for the scheduler (whose `avoid`/`group` fields are added
 * elsewhere): a replica goes to a random worker that is not in its `avoid` set, not banned and
 * not running another replica of the same task; a replica unanswered after ATTEMPT_TIMEOUT_MS is
 * tried on another worker, and after ATTEMPTS_MAX tries it failed (retryably) — as the scheduler
 * does per replica. With no worker eligible it fails at once (no peer to run it).
 *
 * Policies are drawn per task. With liars that collude, every policy's quorum exceeds the number
 * of liars (and single-replica policies appear only with one liar), so that no quorum and no
 * check can be carried by liars alone; liars that do not collude never agree with each other.
 *
 * Invariants, checked on every output and at every sample:
 *  - every accepted result meets its policy: ≥ quorum agreeing attestations from distinct peers,
 *    or one answer for replicas 1 or from a peer trusted at that moment;
 *  - each task gets exactly one accepted-or-failed, and every verdict follows an open check;
 *  - no wrong result is accepted from more than one peer (a quorum); a confirmed verdict confirms
 *    a correct result and a disproven one replaces a wrong result with the correct one;
 *  - every proven liar really lied in that task (its attested value is wrong), so no honest peer
 *    is ever proven a liar, and every witness answered correctly;
 *  - a proven liar gets no new replica after its proof (while banned);
 *  - no replica is placed on a peer of its avoid set; both machines' own invariants hold;
 *  - liveness: after the last submission every task ends and every check closes within the run.
 */
import { createReputation } from '../protocol/reputation/index.ts'
import type { Reputation } from '../protocol/reputation/index.ts'
import { createRandom } from '../protocol/random.ts'
import type { Random } from '../protocol/random.ts'
import { createVerifier } from '../protocol/verify/index.ts'
import type { Attested, VerificationPolicy, Verifier, VerifierOptions, VerifierOutput } from '../protocol/verify/index.ts'
import { SimNetwork } from './network.ts'
import type { NetworkStats } from './network.ts'
import { checkTimes, SimWorld } from './world.ts'

/** A replica unanswered this long (ms) is tried on another worker: five times the slowest round trip the seeds draw. */
const ATTEMPT_TIMEOUT_MS = 2000
/** Tries per replica, as the scheduler's attemptsMax. */
const ATTEMPTS_MAX = 3
/** Tasks whose function fails (non-retryably, on every honest worker). */
const FAILING_TASK_RATE = 0.05
/** Honest workers fail retryably (a crash, a timeout) this often. */
const HONEST_FLAKE_RATE = 0.03
const FAILING_CODE = 'ERR_FUNCTION_THREW'
const DRIVER = 0

export interface VerifyScenario {
  seed: number
  /** Nodes 1..workers run replicas; node 0 drives. */
  workers: number
  /** Workers 1..liars are Byzantine. */
  liars: number
  collude: boolean
  lieRate: number
  /** Answers a liar gives honestly before it starts lying (to earn trust). */
  honestFirst: number
  tasks: Array<{ taskId: string, atMs: number, policy: VerificationPolicy, fails: boolean }>
  delayMinMs: number
  delayMaxMs: number
  runMsMin: number
  runMsMax: number
  lossRate: number
  duplicateRate: number
  faultsEndMs: number
  endMs: number
  checkEveryMs: number
  traceLinesKept: number
}

export interface VerifyHooks {
  /** Replace the verifier (tests wrap the real one to show the invariants catch a broken one). */
  verifier?: (options: VerifierOptions) => Verifier
}

export interface VerifyCounts {
  accepted: number
  acceptedSolo: number
  failed: number
  quorumNotReached: number
  placed: number
  retried: number
  spotChecks: number
  reopened: number
  confirmed: number
  disproven: number
  undecided: number
  proofs: number
  bans: number
  lies: number
  wrongSoloAccepted: number
  wrongAtEnd: number
}

export interface VerifyScenarioResult {
  seed: number
  ok: boolean
  violations: string[]
  violationCount: number
  workers: number
  liars: number
  collude: boolean
  tasks: number
  counts: VerifyCounts
  messages: NetworkStats
  simEvents: number
  traceHash: string
  trace: readonly string[]
}

const POLICIES: readonly VerificationPolicy[] = [
  { replicas: 1, quorum: 1, spotCheckRate: 0.3 },
  { replicas: 1, quorum: 1, spotCheckRate: 0 },
  { replicas: 2, quorum: 2, spotCheckRate: 0 },
  { replicas: 3, quorum: 2, spotCheckRate: 0.05 },
  { replicas: 3, quorum: 3, spotCheckRate: 0 },
  { replicas: 4, quorum: 3, spotCheckRate: 0.2 },
  { replicas: 5, quorum: 4, spotCheckRate: 0 }
]

export function verifyScenarioFromSeed (seed: number): VerifyScenario {
  const rng = createRandom(seed)
  const workers = rng.int(5, 12)
  const collude = rng.chance(0.4)
  const liars = collude ? rng.int(1, 2) : rng.int(0, Math.floor((workers - 1) / 2))
  const usable = POLICIES.filter(p => !collude || (p.quorum > liars && (p.replicas > 1 || liars <= 1)))
  const taskCount = rng.int(40, 150)
  const submitEndMs = rng.int(5_000, 20_000)
  const tasks = []
  for (let i = 0; i < taskCount; i++) {
    tasks.push({ taskId: `task${i}`, atMs: rng.int(0, submitEndMs), policy: rng.pick(usable), fails: rng.chance(FAILING_TASK_RATE) })
  }
  const faults = rng.chance(0.7)
  return {
    seed,
    workers,
    liars,
    collude,
    lieRate: liars === 0 ? 0 : 0.2 + 0.8 * rng.float(),
    honestFirst: rng.int(0, 25),
    tasks,
    delayMinMs: rng.int(1, 20),
    delayMaxMs: rng.int(20, 200),
    runMsMin: 5,
    runMsMax: rng.int(10, 300),
    lossRate: faults ? 0.02 + 0.1 * rng.float() : 0,
    duplicateRate: faults ? 0.05 * rng.float() : 0,
    faultsEndMs: faults ? submitEndMs : 0,
    endMs: submitEndMs + 120_000,
    checkEveryMs: 500,
    traceLinesKept: 0
  }
}

type Message =
  | { type: 'run', taskId: string, replica: number, attempt: number }
  | { type: 'answer', taskId: string, replica: number, attempt: number, resultCid: string | undefined, failure: { retryable: boolean, code: string } | undefined }

interface ReplicaJob { taskId: string, replica: number, avoid: readonly string[], attempt: number, peer: number | undefined, tried: Set<number>, sinceMs: number }

interface TaskView {
  taskId: string
  policy: VerificationPolicy
  fails: boolean
  outcome: 'accepted' | 'failed' | undefined
  resultCid: string | undefined
  checkOpen: boolean
  /** Worker peers that ran or run a replica (outside the verifier's view). */
  running: Set<number>
}

export const correctCid = (taskId: string): string => `ok:${taskId}`
const peerName = (node: number): string => `w${node}`
const nodeOf = (peerId: string): number => Number(peerId.slice(1))

class VerifySim {
  readonly world: SimWorld
  readonly counts: VerifyCounts = {
    accepted: 0, acceptedSolo: 0, failed: 0, quorumNotReached: 0, placed: 0, retried: 0, spotChecks: 0, reopened: 0, confirmed: 0, disproven: 0, undecided: 0, proofs: 0, bans: 0, lies: 0, wrongSoloAccepted: 0, wrongAtEnd: 0
  }

  private readonly s: VerifyScenario
  private readonly placeRng: Random
  private readonly workRng: Random
  readonly net: SimNetwork<Message>
  readonly verifier: Verifier
  readonly reputation: Reputation
  private readonly tasks = new Map<string, TaskView>()
  private readonly jobs = new Map<string, ReplicaJob>()
  /** Answers each liar gave. */
  private readonly answered = new Map<number, number>()
  /** Proven liars → when their proof was seen. */
  private readonly proven = new Map<string, number>()
  private submitted = 0
  /** Tasks whose function fails (what the workers know of the function). */
  private readonly failing: Set<string>

  constructor (s: VerifyScenario, hooks: VerifyHooks) {
    this.s = s
    this.failing = new Set(s.tasks.filter(t => t.fails).map(t => t.taskId))
    this.world = new SimWorld(s.traceLinesKept)
    const rng = createRandom(s.seed ^ 0x5eed_0e1f)
    this.placeRng = rng.fork()
    this.workRng = rng.fork()
    const endpoints = Array.from({ length: s.workers + 1 }, () => ({ up: true, life: 0 }))
    this.net = new SimNetwork<Message>(this.world, endpoints, rng.fork(), {
      delayMinMs: s.delayMinMs, delayMaxMs: Math.max(s.delayMinMs, s.delayMaxMs), lossRate: s.lossRate, duplicateRate: s.duplicateRate
    }, (to, from, message) => { this.deliver(to, from, message) })
    this.reputation = createReputation()
    const options: VerifierOptions = { random: rng.fork(), standing: p => this.reputation.standing(p, this.world.nowMs) }
    this.verifier = (hooks.verifier ?? createVerifier)(options)
  }

  start (): void {
    if (this.s.faultsEndMs > 0) {
      this.net.setFaultsActive(true)
      this.world.at(this.s.faultsEndMs, () => { this.net.setFaultsActive(false) })
    }
    for (const t of this.s.tasks) {
      this.world.at(t.atMs, () => {
        this.tasks.set(t.taskId, { taskId: t.taskId, policy: t.policy, fails: t.fails, outcome: undefined, resultCid: undefined, checkOpen: false, running: new Set() })
        this.submitted += 1
        this.verifier.handleSubmit(t.taskId, t.policy, this.world.nowMs)
        this.pump()
      })
    }
    this.world.at(100, () => { this.tick() })
  }

  /** Timeouts of replicas, the machines' timers; stops once everything has ended. */
  private tick (): void {
    const now = this.world.nowMs
    for (const job of [...this.jobs.values()]) {
      if (job.peer === undefined || now - job.sinceMs < ATTEMPT_TIMEOUT_MS) continue
      this.tasks.get(job.taskId)?.running.delete(job.peer)
      this.retryOrFail(job, { retryable: true, code: 'ERR_TIMEOUT' })
    }
    const due = (at: number | undefined): boolean => at !== undefined && at <= now
    if (due(this.reputation.nextTimeoutMs())) this.reputation.handleTimeout(now)
    if (due(this.verifier.nextTimeoutMs())) this.verifier.handleTimeout(now)
    this.pump()
    if (!this.finished()) this.world.at(now + 100, () => { this.tick() })
  }

  finished (): boolean {
    if (this.submitted < this.s.tasks.length || this.jobs.size > 0) return false
    for (const t of this.tasks.values()) if (t.outcome === undefined || t.checkOpen) return false
    return true
  }

  // --- the driving peer's shell ------------------------------------------------------------------

  /** Drain both machines: a ban re-checks what the liar gave. */
  private pump (): void {
    for (;;) {
      const out = this.verifier.poll()
      if (out !== undefined) {
        this.onVerifier(out)
        continue
      }
      const rep = this.reputation.poll()
      if (rep === undefined) return
      if (rep.type === 'banned') {
        this.counts.bans += 1
        this.world.trace.add(`${this.world.nowMs} banned ${rep.peerId} until ${rep.untilMs}`)
        this.verifier.handleLiar(rep.peerId, this.world.nowMs)
      }
    }
  }

  private onVerifier (out: VerifierOutput): void {
    const now = this.world.nowMs
    this.world.trace.add(`${now} ${out.type} ${'taskId' in out ? out.taskId : ''} ${'replica' in out ? out.replica : ''}`)
    switch (out.type) {
      case 'place': {
        const job: ReplicaJob = { taskId: out.taskId, replica: out.replica, avoid: out.avoid, attempt: 0, peer: undefined, tried: new Set(), sinceMs: now }
        this.jobs.set(`${out.taskId}#${out.replica}`, job)
        this.tryPlace(job)
        break
      }
      case 'drop': {
        const job = this.jobs.get(`${out.taskId}#${out.replica}`)
        if (job?.peer !== undefined) this.tasks.get(out.taskId)?.running.delete(job.peer)
        this.jobs.delete(`${out.taskId}#${out.replica}`)
        break
      }
      case 'accepted': this.onAccepted(out); break
      case 'failed': this.onFailed(out); break
      case 'reopened': this.onReopened(out.taskId); break
      case 'verdict': this.onVerdict(out); break
      case 'proof': this.onProof(out.proof); break
      case 'observed': this.reputation.handleObserved(out.peerId, out.kind, now); break
    }
  }

  private tryPlace (job: ReplicaJob): void {
    const task = this.tasks.get(job.taskId)
    const eligible: number[] = []
    for (let n = 1; n <= this.s.workers; n++) {
      const name = peerName(n)
      if (job.avoid.includes(name) || job.tried.has(n) || task?.running.has(n) === true) continue
      if (this.reputation.standing(name, this.world.nowMs) === 'banned') continue
      eligible.push(n)
    }
    if (task === undefined || eligible.length === 0) {
      this.jobs.delete(`${job.taskId}#${job.replica}`)
      this.verifier.handleFailed(job.taskId, job.replica, { retryable: true, code: 'ERR_PEER_UNAVAILABLE', message: 'no eligible peer' }, this.world.nowMs)
      return
    }
    const n = this.placeRng.pick(eligible)
    const name = peerName(n)
    const provenAt = this.proven.get(name)
    if (provenAt !== undefined) this.world.violate(`${name}, proven a liar at ${provenAt}, got replica ${job.taskId}#${job.replica}`)
    if (job.avoid.includes(name)) this.world.violate(`replica ${job.taskId}#${job.replica} placed on ${name} of its avoid set`)
    job.peer = n
    job.attempt += 1
    job.tried.add(n)
    job.sinceMs = this.world.nowMs
    task.running.add(n)
    this.counts.placed += 1
    if (job.attempt > 1) this.counts.retried += 1
    this.verifier.handlePlaced(job.taskId, job.replica, name, this.world.nowMs)
    this.net.send(DRIVER, n, { type: 'run', taskId: job.taskId, replica: job.replica, attempt: job.attempt })
  }

  private retryOrFail (job: ReplicaJob, failure: { retryable: boolean, code: string }): void {
    job.peer = undefined
    if (failure.retryable && job.attempt < ATTEMPTS_MAX) {
      this.tryPlace(job)
      return
    }
    this.jobs.delete(`${job.taskId}#${job.replica}`)
    this.verifier.handleFailed(job.taskId, job.replica, { retryable: failure.retryable, code: failure.code, message: failure.code }, this.world.nowMs)
  }

  private deliver (to: number, from: number, message: Message): void {
    if (to !== DRIVER) {
      if (message.type === 'run') this.work(to, message)
      return
    }
    if (message.type !== 'answer') return
    const job = this.jobs.get(`${message.taskId}#${message.replica}`)
    const current = job !== undefined && job.peer === from && job.attempt === message.attempt
    if (current) {
      // A result ends the job; a failure is retried on another worker or ends it (retryOrFail).
      if (message.resultCid !== undefined) this.jobs.delete(`${message.taskId}#${message.replica}`)
      this.tasks.get(message.taskId)?.running.delete(from)
    }
    if (message.resultCid !== undefined) {
      const attested: Attested = { peerId: peerName(from), resultCid: message.resultCid, signature: new Uint8Array(0) }
      const verdict = this.verifier.handleResult(message.taskId, message.replica, attested, this.world.nowMs)
      if (verdict === 'accepted' && !current) this.world.violate(`an answer from ${peerName(from)} to a replica not running there was accepted (${message.taskId}#${message.replica})`)
    } else if (current && message.failure !== undefined) {
      this.retryOrFail(job, message.failure)
    }
    this.pump()
  }

  // --- workers -------------------------------------------------------------------------------------

  private work (node: number, m: Extract<Message, { type: 'run' }>): void {
    const s = this.s
    const fails = this.failing.has(m.taskId)
    let answer: Message = { type: 'answer', taskId: m.taskId, replica: m.replica, attempt: m.attempt, resultCid: correctCid(m.taskId), failure: undefined }
    if (node <= s.liars) {
      const given = (this.answered.get(node) ?? 0) + 1
      this.answered.set(node, given)
      if (given > s.honestFirst && this.workRng.chance(s.lieRate)) {
        this.counts.lies += 1
        const wrong = s.collude ? `bad:${m.taskId}` : `bad:${m.taskId}:${node}:${m.attempt}`
        answer = { ...answer, resultCid: wrong }
      } else if (fails) {
        answer = { ...answer, resultCid: undefined, failure: { retryable: false, code: FAILING_CODE } }
      }
    } else if (fails) {
      answer = { ...answer, resultCid: undefined, failure: { retryable: false, code: FAILING_CODE } }
    } else if (this.workRng.chance(HONEST_FLAKE_RATE)) {
      answer = { ...answer, resultCid: undefined, failure: { retryable: true, code: 'ERR_TIMEOUT' } }
    }
    const runMs = this.workRng.int(s.runMsMin, Math.max(s.runMsMin, s.runMsMax))
    this.world.at(this.world.nowMs + runMs, () => { this.net.send(node, DRIVER, answer) })
  }

  // --- invariants ----------------------------------------------------------------------------------

  private isLiar (peerId: string): boolean {
    const n = nodeOf(peerId)
    return n >= 1 && n <= this.s.liars
  }

  /** The correct result of a task; undefined when its function fails. */
  private correct (task: TaskView): string | undefined {
    return task.fails ? undefined : correctCid(task.taskId)
  }

  private onAccepted (out: Extract<VerifierOutput, { type: 'accepted' }>): void {
    const task = this.tasks.get(out.taskId)
    if (task === undefined) return this.world.violate(`accepted ${out.taskId}, never submitted`)
    if (task.outcome !== undefined) this.world.violate(`${out.taskId} accepted after it was ${task.outcome}`)
    task.outcome = 'accepted'
    task.resultCid = out.resultCid
    this.counts.accepted += 1
    const peers = new Set(out.attestations.map(a => a.peerId))
    if (peers.size !== out.attestations.length || out.attestations.some(a => a.resultCid !== out.resultCid)) {
      this.world.violate(`${out.taskId} accepted on attestations that are not distinct agreeing peers`)
    }
    if (out.solo) {
      this.counts.acceptedSolo += 1
      const peer = out.attestations[0]?.peerId
      if (out.attestations.length < 1 || (task.policy.replicas > 1 && this.reputation.standing(peer, this.world.nowMs) !== 'trusted')) {
        this.world.violate(`${out.taskId} accepted solo from ${peer}, neither replicas 1 nor a trusted peer`)
      }
    } else if (out.attestations.length < task.policy.quorum) {
      this.world.violate(`${out.taskId} accepted on ${out.attestations.length} attestations, quorum ${task.policy.quorum}`)
    }
    if (out.resultCid !== this.correct(task)) {
      if (!out.solo) this.world.violate(`a wrong result of ${out.taskId} was accepted by a quorum of ${out.attestations.length}`)
      else if (!this.isLiar(out.attestations[0].peerId)) this.world.violate(`an honest peer's answer to ${out.taskId} was wrong?`)
      else this.counts.wrongSoloAccepted += 1
    }
    if (out.checking) {
      this.counts.spotChecks += 1
      task.checkOpen = true
    }
  }

  private onFailed (out: Extract<VerifierOutput, { type: 'failed' }>): void {
    const task = this.tasks.get(out.taskId)
    if (task === undefined) return this.world.violate(`failed ${out.taskId}, never submitted`)
    if (task.outcome !== undefined) this.world.violate(`${out.taskId} failed after it was ${task.outcome}`)
    task.outcome = 'failed'
    this.counts.failed += 1
    if (out.error.code === 'ERR_QUORUM_NOT_REACHED') this.counts.quorumNotReached += 1
    if (out.error.code === FAILING_CODE && !task.fails) this.world.violate(`${out.taskId} failed with ${FAILING_CODE} but its function does not fail`)
  }

  private onReopened (taskId: string): void {
    const task = this.tasks.get(taskId)
    if (task?.outcome !== 'accepted' || task.checkOpen) return this.world.violate(`${taskId} reopened but not accepted, or already checking`)
    task.checkOpen = true
    this.counts.reopened += 1
  }

  private onVerdict (out: Extract<VerifierOutput, { type: 'verdict' }>): void {
    const task = this.tasks.get(out.taskId)
    if (task === undefined || !task.checkOpen) return this.world.violate(`a verdict on ${out.taskId} without an open check`)
    task.checkOpen = false
    const correct = this.correct(task)
    if (out.verdict === 'confirmed') {
      this.counts.confirmed += 1
      if (task.resultCid !== correct) this.world.violate(`a wrong result of ${out.taskId} was confirmed`)
    } else if (out.verdict === 'disproven') {
      this.counts.disproven += 1
      if (task.resultCid === correct || out.resultCid !== correct) this.world.violate(`${out.taskId}: ${String(task.resultCid)} disproven in favour of ${out.resultCid} (correct ${String(correct)})`)
      task.resultCid = out.resultCid
    } else {
      this.counts.undecided += 1
    }
  }

  private onProof (proof: { taskId: string, liar: Attested, witnesses: Attested[] }): void {
    this.counts.proofs += 1
    const task = this.tasks.get(proof.taskId)
    const correct = task === undefined ? undefined : this.correct(task)
    if (proof.liar.resultCid === correct || !this.isLiar(proof.liar.peerId)) {
      this.world.violate(`${proof.liar.peerId} proven a liar on ${proof.taskId}, but it answered ${proof.liar.resultCid} (correct ${String(correct)})`)
    }
    const witnesses = new Set(proof.witnesses.map(w => w.peerId))
    if (witnesses.size < 2 || witnesses.has(proof.liar.peerId) || proof.witnesses.some(w => w.resultCid !== correct)) {
      this.world.violate(`a proof against ${proof.liar.peerId} on ${proof.taskId} has bad witnesses`)
    }
    if (!this.proven.has(proof.liar.peerId)) this.proven.set(proof.liar.peerId, this.world.nowMs)
    this.reputation.handleProof({ taskId: proof.taskId, liar: proof.liar.peerId, witnesses: proof.witnesses.map(w => w.peerId) }, this.world.nowMs)
  }

  /** At every sample: both machines' own invariants. */
  sample (): void {
    this.verifier.checkInvariants()
    this.reputation.checkInvariants()
  }

  /** At the end: every task ended, every check closed; count results still wrong. */
  end (): void {
    for (const task of this.tasks.values()) {
      if (task.outcome === undefined) this.world.violate(`${task.taskId} never ended`)
      if (task.checkOpen) this.world.violate(`${task.taskId}: a check never closed`)
      if (task.outcome === 'accepted' && task.resultCid !== this.correct(task)) this.counts.wrongAtEnd += 1
    }
    if (this.submitted < this.s.tasks.length) this.world.violate(`only ${this.submitted} of ${this.s.tasks.length} tasks were submitted`)
  }
}

export function runVerifyScenario (input: VerifyScenario | { seed: number, traceLinesKept?: number }, hooks: VerifyHooks = {}): VerifyScenarioResult {
  const s: VerifyScenario = 'tasks' in input ? input : { ...verifyScenarioFromSeed(input.seed), traceLinesKept: input.traceLinesKept ?? 0 }
  const sim = new VerifySim(s, hooks)
  sim.start()
  sim.world.run({
    endMs: s.endMs,
    checkTimesMs: checkTimes(s.endMs, s.checkEveryMs),
    check: () => { if (sim.world.violationCount === 0) sim.sample() },
    simEventsMax: 2_000_000
  })
  if (sim.world.violationCount === 0) sim.end()
  const w = sim.world
  return {
    seed: s.seed,
    ok: w.violationCount === 0,
    violations: w.violations,
    violationCount: w.violationCount,
    workers: s.workers,
    liars: s.liars,
    collude: s.collude,
    tasks: s.tasks.length,
    counts: sim.counts,
    messages: sim.net.stats,
    simEvents: w.simEvents,
    traceHash: w.trace.digest(),
    trace: w.trace.keptLines
  }
}

export const verifyScenarioEntry = {
  name: 'verify',
  description: 'verified results: quorums, spot checks, re-checks and bans against honest and Byzantine workers; no quorum accepts a wrong result, no honest peer is proven a liar',
  runSeed (seed: number, options: { traceLinesKept?: number } = {}) {
    const r = runVerifyScenario({ seed, traceLinesKept: options.traceLinesKept ?? 0 })
    const c = r.counts
    return {
      scenario: 'verify',
      seed,
      ok: r.ok,
      violations: r.violations,
      violationCount: r.violationCount,
      summary: `${r.workers} workers (${r.liars} Byzantine${r.collude ? ', colluding' : ''}), ${r.tasks} tasks: ${c.accepted} accepted (${c.acceptedSolo} solo), ${c.failed} failed, ${c.lies} lies, ${c.proofs} proofs, ${c.disproven} disproven, ${c.wrongAtEnd} wrong at the end`,
      details: [`counts ${JSON.stringify(c)}`, `messages ${JSON.stringify(r.messages)}`],
      traceHash: r.traceHash,
      simEvents: r.simEvents,
      trace: r.trace
    }
  }
}
