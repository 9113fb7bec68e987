/**
 * The shell around the reputation machine (src/protocol/reputation): what this peer knows of how
 * far other peers' results can be trusted, and the lie proofs that change it.
 *
 *  - It feeds the machine what verification observed (`observe`: a result agreed with the quorum,
 *    disagreed, or a replica failed) and the lie proofs it learns: its own (`prove`, from the
 *    verification machine's `proof` output) and those gossiped on `rhizome/<networkId>/proofs/1`.
 *  - Every proof is checked before it counts: its structure (src/wire/proof-codec.ts) and every
 *    signature in it, each against the key its peer id embeds. A proof that fails is a protocol
 *    violation by the peer that relayed it. A valid new proof is passed on (gossipsub's validator
 *    accepts it), stored, bans the liar for the documented time, and is told to `onLiar`
 *    listeners (the scheduler re-checks what the liar gave). So a lie seen by one peer is held
 *    against the liar by every peer that hears the proof, and none has to take the teller's word.
 *  - It persists each record the machine changes (`persist` outputs) and fires ban expiries.
 *
 * Time here is wall-clock ms (bans outlive restarts, so they are stored as dates).
 */
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import type { Logger } from '../model/log.ts'
import { ProtocolViolationError } from '../model/errors.ts'
import type { PeerStanding, Reputation, ReputationRecord } from '../protocol/reputation/index.ts'
import { decodeProof, encodeProof } from '../wire/proof-codec.ts'
import type { LieProof } from '../wire/proof-codec.ts'
import { attestationSigningBytes } from '../wire/task-codec.ts'
import type { Attestation } from '../wire/task-codec.ts'
import { Ed25519Verifier } from './ed25519.ts'
import { Lifecycle } from './lifecycle.ts'

export function proofTopic (networkId: string): string {
  return `rhizome/${networkId}/proofs/1`
}

/** Timer floor, as in the other services. */
const TICK_MS_MIN = 1

export interface TrustServiceComponents {
  reputation: Reputation
  pubsub: Pick<GossipSub, 'topicValidators' | 'subscribe' | 'unsubscribe' | 'publish'>
  /** Persist a changed record, and a proof once (src/store/verify-repo.ts). */
  saveRecord: (record: ReputationRecord) => void
  saveProof: (proof: LieProof, bytes: Uint8Array, receivedMs: number) => void
  /** Wall-clock ms. */
  now: () => number
  log: Logger
  onViolation: (peerId: PeerId, protocol: string, err: Error) => void
}

export interface TrustServiceInit {
  networkId: string
}

export type ObservedKind = 'agreed' | 'disagreed' | 'failed'

export class TrustService {
  private readonly c: TrustServiceComponents
  private readonly topic: string
  private readonly verifier = new Ed25519Verifier()
  private readonly lifecycle = new Lifecycle('the trust service')
  private readonly liarListeners = new Set<(peerId: string) => void>()
  private timer: ReturnType<typeof setTimeout> | undefined
  /** Proofs published by this peer, counted (status, tests). */
  readonly counters = { proofsMade: 0, proofsHeard: 0, proofsRefused: 0 }

  constructor (components: TrustServiceComponents, init: TrustServiceInit) {
    this.c = components
    this.topic = proofTopic(init.networkId)
  }

  start (): void {
    this.lifecycle.start()
    this.c.pubsub.topicValidators.set(this.topic, (peer, message) => this.validate(peer, message))
    this.c.pubsub.subscribe(this.topic)
    this.drain()
  }

  stop (): void {
    this.lifecycle.stop()
    this.c.pubsub.topicValidators.delete(this.topic)
    this.c.pubsub.unsubscribe(this.topic)
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }

  standing (peerId: string): PeerStanding {
    return this.c.reputation.standing(peerId, this.c.now())
  }

  score (peerId: string): number {
    return this.c.reputation.score(peerId)
  }

  observe (peerId: string, kind: ObservedKind): void {
    this.c.reputation.handleObserved(peerId, kind, this.c.now())
    this.drain()
  }

  /** Listen for peers proven to lie (here or by gossip); returns the unsubscribe. */
  onLiar (listener: (peerId: string) => void): () => void {
    this.liarListeners.add(listener)
    return () => { this.liarListeners.delete(listener) }
  }

  /** A lie this peer's verification proved: count it, keep it, and tell the network. */
  prove (proof: LieProof): void {
    const bytes = encodeProof(proof)
    if (!this.accept(proof, bytes)) return
    this.counters.proofsMade += 1
    if (!this.lifecycle.started) return
    this.c.pubsub.publish(this.topic, bytes).catch((err: Error) => {
      // No peer subscribed yet (a one-peer network): the proof still counts here.
      this.c.log.debug('lie proof not published', { error: err.message })
    })
  }

  /** Feed a checked proof to the machine; true if it was new. */
  private accept (proof: LieProof, bytes: Uint8Array): boolean {
    const now = this.c.now()
    const verdict = this.c.reputation.handleProof({ taskId: proof.task.toString(), liar: proof.liar.peer, witnesses: proof.witnesses.map(w => w.peer) }, now)
    if (verdict !== 'accepted') return false
    this.c.saveProof(proof, bytes, now)
    this.c.log.warn('peer proven to lie', { peer: proof.liar.peer, task: proof.task.toString(), result: proof.liar.result.toString(), agreed: proof.witnesses[0].result.toString(), witnesses: proof.witnesses.map(w => w.peer) })
    this.drain()
    for (const listener of this.liarListeners) listener(proof.liar.peer)
    return true
  }

  private validate (from: PeerId, message: Message): TopicValidatorResult {
    if (!this.lifecycle.started) return TopicValidatorResult.Ignore
    let proof: LieProof
    try {
      proof = decodeProof(message.data)
      for (const a of [proof.liar, ...proof.witnesses]) {
        if (!this.signed(a)) throw new ProtocolViolationError(`the attestation of ${a.peer} in a lie proof does not verify`)
      }
    } catch (err) {
      this.counters.proofsRefused += 1
      this.c.onViolation(from, this.topic, err as Error)
      return TopicValidatorResult.Reject
    }
    this.counters.proofsHeard += 1
    return this.accept(proof, message.data) ? TopicValidatorResult.Accept : TopicValidatorResult.Ignore
  }

  /** The attestation is signed by the peer it names, with the key that peer's id embeds. */
  private signed (a: Attestation): boolean {
    let key
    try {
      key = peerIdFromString(a.peer).publicKey
    } catch {
      return false
    }
    if (key?.type !== 'Ed25519') return false
    return this.verifier.verify(a.peer, key.raw, attestationSigningBytes(a.task, a.result, a.peer), a.signature)
  }

  private drain (): void {
    const r = this.c.reputation
    for (let out = r.poll(); out !== undefined; out = r.poll()) {
      if (out.type === 'persist') this.c.saveRecord(out.record)
      else if (out.type === 'banned') this.c.log.warn('peer gets no work until its ban ends', { peer: out.peerId, until: new Date(out.untilMs).toISOString() })
      else if (out.type === 'unbanned') this.c.log.info('ban over', { peer: out.peerId })
      // 'evicted': the record left the machine's bounded table; storage prunes its own (VerifyRepo.prune).
    }
    this.arm()
  }

  private arm (): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    if (!this.lifecycle.started) return
    const next = this.c.reputation.nextTimeoutMs()
    if (next === undefined) return
    // setTimeout takes at most 2^31-1 ms; a ban of days re-arms on the way.
    const delay = Math.min(2 ** 31 - 1, Math.max(TICK_MS_MIN, next - this.c.now()))
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.c.reputation.handleTimeout(this.c.now())
      this.drain()
    }, delay)
    this.timer.unref?.()
  }
}
