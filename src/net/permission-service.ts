/**
 * The shell of the permission machine (src/protocol/permission/): a permissioned peer's gate.
 * It moves bytes and keeps time; every decision is the machine's or ../protocol/permission/requests.ts's.
 *
 * - Credentials, protocol `/rhizome/<net>/credentials/1.0.0` over the RPC layer: the dialling side
 *   of every new connection sends its certificate and the revocations it holds (the newest
 *   CREDENTIALS_REVOCATIONS_MAX: a peer that was offline learns them), and gets the other side's
 *   back. A certificate signed by a delegated admin goes with the admin's own certificate
 *   (`issuer`), handed to the machine first, so a peer that never met the admin can check it. Each certificate is decoded, must name the peer that sent it, its admin signature is
 *   checked (Ed25519), and the machine decides. A peer that sends none, an invalid one, or none
 *   within CREDENTIALS_DEADLINE_MS is logged (warn, with the reason), counted in `refused`, hung
 *   up on, and refused at the connection gater for REFUSED_PEER_MS.
 * - Every RPC request is checked before its handler (`authorize`): a request that arrives while
 *   its peer's credentials are still on their way waits for them (at most the deadline).
 * - Gossip: every topic's validator is wrapped so messages from non-members are rejected
 *   (`gatedPubsub`), and gossipsub's application score keeps non-members below its
 *   publish threshold (nothing is published to them) and refused peers below its graylist.
 * - Revocations: gossiped on `rhizome/<net>/revocations/1` and accepted from the local API; the
 *   machine's `revoked`/`expired` outputs close the peer's connections, refuse it at the gater,
 *   and tell the scheduler it is lost (`onLost`), so its tasks in flight are placed elsewhere.
 * - Expiry: handleTimeout at the machine's nextTimeoutMs.
 */
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { peerIdFromString } from '@libp2p/peer-id'
import { ProtocolViolationError, RhizomeError } from '../model/errors.ts'
import type { RhizomeErrorOptions } from '../model/errors.ts'
import type { Logger } from '../model/log.ts'
import { CREDENTIALS_PROTOCOL_NAME, protocolName, requestRefusal } from '../protocol/permission/requests.ts'
import type { Action, Certificate, Permission } from '../protocol/permission/index.ts'
import { revocationKey } from '../store/permission-repo.ts'
import type { PermissionRepo } from '../store/permission-repo.ts'
import {
  CERTIFICATE_BYTES_MAX, REVOCATION_BYTES_MAX, decodeCertificate, decodeRevocation, encodeCertificate, encodeRevocation
} from '../wire/certificate-codec.ts'
import { certificateSignatureValid, revocationSignatureValid } from './certificate-signatures.ts'
import { Ed25519Verifier } from './ed25519.ts'
import { Lifecycle } from './lifecycle.ts'
import type { RpcService } from './rpc.ts'
import type { GossipSub, Message, TopicValidatorFn } from '@libp2p/gossipsub'
import type { Connection, Libp2p, PeerId } from '@libp2p/interface'
import type { MemberView, NetworkStatus, RevocationResult } from '../api/types.ts'

export function credentialsProtocol (networkId: string): string {
  return `/rhizome/${networkId}/credentials/1.0.0`
}

export function revocationTopic (networkId: string): string {
  return `rhizome/${networkId}/revocations/1`
}

/** How long a new connection's peer has to show a valid certificate: the exchange is one round
 *  trip on a fresh connection (a few ms on a LAN); 5 s leaves room for a slow link and a busy peer,
 *  and is all an outsider gets before it is refused. */
export const CREDENTIALS_DEADLINE_MS = 5_000
/** How long a refused peer is refused at the connection gater before it may try again: long
 *  enough that an outsider redialling costs us a handshake a minute, short enough that a peer
 *  re-admitted with a new certificate gets back in without a restart. */
export const REFUSED_PEER_MS = 60_000
/** Peers remembered as refused at once: an outsider can make up peer ids, so the table is bounded
 *  (the oldest goes first); 10,000 entries are ~1 MB. */
export const REFUSED_PEERS_MAX = 10_000
/** Revocations sent with a certificate in the credentials exchange, newest first: a peer that
 *  was offline learns the recent ones at once, the rest by gossip; 256 × ~250 bytes is ~64 KiB. */
export const CREDENTIALS_REVOCATIONS_MAX = 256
/** Largest credentials frame: a certificate, its issuing admin's, and the revocations, each at its
 *  own limit, with room for the envelope. */
export const CREDENTIALS_FRAME_BYTES_MAX = 2 * CERTIFICATE_BYTES_MAX + CREDENTIALS_REVOCATIONS_MAX * REVOCATION_BYTES_MAX + 4096
/** A refused peer is hung up on this long after its refusal is answered, so the named error
 *  reaches it first (the answer goes out at the end of the current turn). */
const REFUSAL_HANGUP_DELAY_MS = 100
/** Gossipsub application scores (src/net/host.ts thresholds: publish −50, graylist −80). A peer
 *  whose credentials are on their way is read (its subscriptions must not be lost) but not
 *  published to; a refused one is not read either. Members score 0: gossipsub's own scoring
 *  decides among them as in an open network. */
export const GOSSIP_SCORE_PENDING = -60
export const GOSSIP_SCORE_REFUSED = -1000

/** A peer without a valid certificate asked for something a permissioned network serves only to members. */
export class NotAMemberError extends RhizomeError {
  constructor (message: string, options: RhizomeErrorOptions = {}) {
    super('ERR_NOT_A_MEMBER', message, {
      hint: 'this network is permissioned: ask its admin for a certificate (`rhizome network admit <peer id>`) and start the peer with --certificate FILE',
      ...options
    })
    this.name = 'NotAMemberError'
  }
}

/** A member asked for something its roles (or this peer's) do not allow. */
export class RoleRefusedError extends RhizomeError {
  constructor (message: string, options: RhizomeErrorOptions = {}) {
    super('ERR_ROLE_REFUSED', message, {
      hint: 'roles are set by the certificate: a worker runs tasks, a client or admin starts runs; ask the admin for a certificate with the role needed',
      ...options
    })
    this.name = 'RoleRefusedError'
  }
}

/** A revocation submitted to this peer was refused (bad signature, another network, obsolete, ...). */
export class RevocationRefusedError extends RhizomeError {
  constructor (reason: string, options: RhizomeErrorOptions = {}) {
    super('ERR_REVOCATION_REFUSED', `the revocation was refused: ${reason}`, {
      hint: 'make it with `rhizome network revoke` on the admin\'s machine, with the admin key that founded this network (or `--as DATA_DIR` of a member whose founder-signed certificate has role admin)',
      ...options
    })
    this.name = 'RevocationRefusedError'
  }
}

export type PermissionHost = Pick<Libp2p, 'addEventListener' | 'removeEventListener' | 'hangUp' | 'getConnections'> & { peerId: PeerId }
export type PermissionPubsub = Pick<GossipSub, 'topicValidators' | 'subscribe' | 'unsubscribe' | 'publish'> & { score?: { scoreCache: Map<string, unknown> } }

export interface PermissionServiceComponents {
  permission: Permission
  repo: PermissionRepo
  rpc: Pick<RpcService, 'handle' | 'unhandle' | 'request'>
  host: PermissionHost
  pubsub: PermissionPubsub
  /** This peer's own certificate (already checked, and held by `permission`). */
  own: Certificate
  /** The certificate of the delegated admin that signed `own` (held too); none when the founding key did. */
  ownIssuer?: Certificate
  log: Logger
  now: () => number
  /** A peer lost its membership (revoked or expired): its tasks in flight go elsewhere. */
  onLost: (peerId: string) => void
  /** Default REFUSED_PEERS_MAX (lowered by tests to see the oldest go). */
  refusedPeersMax?: number
}

interface Pending { done: Promise<void>, resolve: () => void, timer: ReturnType<typeof setTimeout> }

interface CredentialsBody { certificate: Uint8Array, revocations: Uint8Array[], issuer?: Uint8Array }

export class PermissionService {
  private readonly c: PermissionServiceComponents
  readonly networkId: string
  private readonly protocol: string
  private readonly topic: string
  private readonly self: string
  /** The founding key: it signed our own certificate, or our admin's (storage keys, revocationKey). */
  private readonly founder: string
  private readonly verifier = new Ed25519Verifier()
  private readonly lifecycle = new Lifecycle('the permission service')
  /** Peers whose credentials are awaited, with the deadline's timer. */
  private readonly pending = new Map<string, Pending>()
  /** Refused peers → refused until (ms); insertion order is age (REFUSED_PEERS_MAX). */
  private readonly refusedUntil = new Map<string, number>()
  private readonly hangUps = new Set<ReturnType<typeof setTimeout>>()
  /** Refusals since start, by reason. */
  readonly refused: Record<string, number> = {}
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor (components: PermissionServiceComponents) {
    this.c = components
    this.networkId = components.own.network
    this.protocol = credentialsProtocol(this.networkId)
    this.topic = revocationTopic(this.networkId)
    this.self = components.host.peerId.toString()
    this.founder = (components.ownIssuer ?? components.own).issuer
  }

  private readonly onOpen = (event: CustomEvent<Connection>): void => { this.opened(event.detail) }

  async start (): Promise<void> {
    this.lifecycle.start()
    await this.c.rpc.handle({
      protocol: this.protocol,
      frameBytesMax: CREDENTIALS_FRAME_BYTES_MAX,
      // One exchange per connection; a few at once covers connections opened both ways.
      inflightMax: 4,
      handler: async (body, { peerId }) => await this.serveCredentials(body, peerId)
    })
    this.c.pubsub.topicValidators.set(this.topic, (peer, message) => this.validateRevocation(peer, message))
    this.c.pubsub.subscribe(this.topic)
    this.c.host.addEventListener('connection:open', this.onOpen)
    // Connections opened before start (none, when started before the other services) get the same.
    for (const connection of this.c.host.getConnections()) this.opened(connection)
    this.drain()
  }

  async stop (): Promise<void> {
    this.lifecycle.stop()
    this.c.host.removeEventListener('connection:open', this.onOpen)
    this.c.pubsub.topicValidators.delete(this.topic)
    this.c.pubsub.unsubscribe(this.topic)
    await this.c.rpc.unhandle(this.protocol)
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    for (const p of this.pending.values()) { clearTimeout(p.timer); p.resolve() }
    this.pending.clear()
    for (const t of this.hangUps) clearTimeout(t)
    this.hangUps.clear()
  }

  /** Whether `peerId` (this peer included) may do `action` now. */
  allows (peerId: string, action: Action): boolean {
    return this.c.permission.allows(peerId, action, this.c.now())
  }

  /** The connection gater's question: is this peer refused for now? */
  refuses (peerId: string): boolean {
    const until = this.refusedUntil.get(peerId)
    if (until === undefined) return false
    if (until > this.c.now()) return true
    this.refusedUntil.delete(peerId)
    return false
  }

  /** Gossipsub's application score of a peer (see GOSSIP_SCORE_*). */
  gossipScore (peerId: string): number {
    if (this.allows(peerId, 'gossip')) return 0
    return this.refuses(peerId) ? GOSSIP_SCORE_REFUSED : GOSSIP_SCORE_PENDING
  }

  /** The RPC layer's gate (RpcServiceComponents.authorize). */
  authorize (peerId: PeerId, protocol: string): RhizomeError | undefined | Promise<RhizomeError | undefined> {
    const peer = peerId.toString()
    const refusal = this.refusalOf(peer, protocol)
    if (refusal === undefined || refusal.code !== 'ERR_NOT_A_MEMBER') return this.logged(refusal, peer, protocol)
    const pending = this.pending.get(peer)
    if (pending === undefined) return this.logged(refusal, peer, protocol)
    // Its credentials may be on their way on another stream of the same connection: wait for them.
    return pending.done.then(() => this.logged(this.refusalOf(peer, protocol), peer, protocol))
  }

  /** The RPC layer's gate on requests this peer sends: none to a non-member but credentials, and
   *  tasks only to peers allowed them. Waits for credentials on their way, like `authorize`. */
  authorizeOutbound (peerId: PeerId, protocol: string): RhizomeError | undefined | Promise<RhizomeError | undefined> {
    const peer = peerId.toString()
    const refusal = this.outboundRefusalOf(peer, protocol)
    const pending = this.pending.get(peer)
    if (refusal === undefined || pending === undefined) return refusal
    return pending.done.then(() => this.outboundRefusalOf(peer, protocol))
  }

  private outboundRefusalOf (peer: string, protocol: string): RhizomeError | undefined {
    const name = protocolName(protocol)
    if (name === CREDENTIALS_PROTOCOL_NAME) return undefined
    if (!this.allows(peer, 'membership')) return new NotAMemberError(`peer ${peer} holds no valid certificate of network ${this.networkId}: this peer sends it nothing`, { retryable: true, hint: 'the task or request goes to a member instead' })
    if (name === 'task' && !this.allows(peer, 'task')) return new RoleRefusedError(`peer ${peer} is not allowed tasks in network ${this.networkId}`, { retryable: true })
    return undefined
  }

  private refusalOf (peer: string, protocol: string): RhizomeError | undefined {
    const now = this.c.now()
    const refusal = requestRefusal(protocol, (who, action) => this.c.permission.allows(who === 'self' ? this.self : peer, action, now))
    if (refusal === undefined) return undefined
    if (refusal.type === 'not-a-member') return new NotAMemberError(`peer ${peer} holds no valid certificate of network ${this.networkId}; ${protocol} is served to members only`)
    const subject = refusal.who === 'self' ? `this peer (${this.self}) is not` : `peer ${peer} is not`
    return new RoleRefusedError(`${subject} allowed ${refusal.needs.join(' or ')} in network ${this.networkId}; ${protocol} needs it`)
  }

  private logged (refusal: RhizomeError | undefined, peer: string, protocol: string): RhizomeError | undefined {
    if (refusal === undefined) return undefined
    this.count(refusal.code === 'ERR_NOT_A_MEMBER' ? 'not-a-member' : 'role-refused')
    this.c.log.warn('request refused', { peer, protocol, code: refusal.code, reason: refusal.message })
    return refusal
  }

  private count (reason: string): void {
    this.refused[reason] = (this.refused[reason] ?? 0) + 1
  }

  // --- credentials -------------------------------------------------------------------------------

  private opened (connection: Connection): void {
    if (!this.lifecycle.started) return
    const peer = connection.remotePeer.toString()
    if (this.refuses(peer)) {
      this.hangUp(peer, 0)
      return
    }
    if (!this.allows(peer, 'membership')) this.await(peer)
    if (connection.direction === 'outbound') this.exchange(connection.remotePeer).catch(() => {})
  }

  /** Wait for `peer`'s certificate until the deadline; then refuse it if it showed none. */
  private await (peer: string): void {
    if (this.pending.has(peer)) return
    let resolve!: () => void
    const done = new Promise<void>(resolve_ => { resolve = resolve_ })
    const timer = setTimeout(() => {
      this.settle(peer)
      // Refused only if it is still connected without one: a peer whose connection dropped before
      // its exchange finished may come back and show its certificate then.
      const connected = this.c.host.getConnections(peerIdFromString(peer)).some(c => c.status === 'open')
      if (connected && !this.allows(peer, 'membership') && !this.refuses(peer)) this.refuse(peer, 'no-certificate', `no certificate within ${CREDENTIALS_DEADLINE_MS} ms`)
    }, CREDENTIALS_DEADLINE_MS)
    this.pending.set(peer, { done, resolve, timer })
  }

  private settle (peer: string): void {
    const pending = this.pending.get(peer)
    if (pending === undefined) return
    this.pending.delete(peer)
    clearTimeout(pending.timer)
    pending.resolve()
  }

  /** What this peer sends in every exchange, made again only when the revocations it holds change. */
  private sent: CredentialsBody | undefined

  private body (): CredentialsBody {
    if (this.sent !== undefined) return this.sent
    const revocations = this.c.permission.revocations().sort((a, b) => b.atMs - a.atMs).slice(0, CREDENTIALS_REVOCATIONS_MAX)
    const body: CredentialsBody = { certificate: encodeCertificate(this.c.own), revocations: revocations.map(encodeRevocation) }
    if (this.c.ownIssuer !== undefined) body.issuer = encodeCertificate(this.c.ownIssuer)
    this.sent = body
    return body
  }

  /** The dialling side: send ours, check theirs. */
  private async exchange (remote: PeerId): Promise<void> {
    const peer = remote.toString()
    let answer: unknown
    try {
      answer = await this.c.rpc.request(remote, this.protocol, this.body(), { timeoutMs: CREDENTIALS_DEADLINE_MS })
    } catch (err) {
      if (!this.lifecycle.started) return
      if (err instanceof RhizomeError && (err.code === 'ERR_NOT_A_MEMBER' || err.code === 'ERR_ROLE_REFUSED')) {
        this.c.log.warn('refused by a peer of the network: this peer\'s certificate was not accepted there', { peer, code: err.code, reason: err.message })
        return
      }
      // A dropped connection or a lost race is no offence: the deadline decides (see `await`).
      this.c.log.debug('credentials exchange failed', { peer, error: (err as Error).message })
      return
    }
    let body: CredentialsBody
    try {
      body = credentialsBody(answer)
    } catch (err) {
      this.refuse(peer, 'malformed', (err as Error).message)
      return
    }
    this.applyIssuerCertificate(peer, body.issuer)
    // Revocations are taken only from a peer just admitted: an outsider (a fresh peer id costs
    // nothing) must not get up to CREDENTIALS_REVOCATIONS_MAX signature checks per connection.
    if (this.applyCertificate(peer, body.certificate) === undefined) this.applyRevocations(body.revocations)
  }

  /** The answering side: check theirs, send ours (or the refusal). */
  private async serveCredentials (raw: unknown, remote: PeerId): Promise<CredentialsBody> {
    const peer = remote.toString()
    const body = credentialsBody(raw)
    this.applyIssuerCertificate(peer, body.issuer)
    const refusal = this.applyCertificate(peer, body.certificate)
    if (refusal !== undefined) throw new NotAMemberError(`peer ${peer} was refused by network ${this.networkId}: ${refusal}`)
    this.applyRevocations(body.revocations)
    return this.body()
  }

  /** Check and hand a peer's certificate to the machine; the refusal's reason, if refused. */
  private applyCertificate (peer: string, bytes: Uint8Array): string | undefined {
    let reason: string
    let detail: string
    try {
      const cert = decodeCertificate(bytes)
      if (cert.peer !== peer) {
        reason = 'wrong-peer'
        detail = `the certificate names peer ${cert.peer}`
      } else {
        const result = this.c.permission.handleCertificate(cert, certificateSignatureValid(this.verifier, cert), this.c.now())
        this.drain()
        reason = result
        detail = result
      }
    } catch (err) {
      if (!(err instanceof RhizomeError)) throw err
      reason = 'malformed'
      detail = err.message
    }
    // A member that sends an older or lesser certificate keeps the one it holds.
    if (reason === 'admitted' || this.allows(peer, 'membership')) {
      this.admitted(peer)
      return undefined
    }
    this.refuse(peer, reason, detail)
    return reason
  }

  /** The delegated admin's certificate a peer sent with its own: to the machine first. Its refusal
   *  is not the sender's: the sender's own certificate is then refused `unknown-issuer` if it must be. */
  private applyIssuerCertificate (peer: string, bytes: Uint8Array | undefined): void {
    if (bytes === undefined) return
    try {
      const cert = decodeCertificate(bytes)
      const result = this.c.permission.handleCertificate(cert, certificateSignatureValid(this.verifier, cert), this.c.now())
      this.drain()
      if (result !== 'admitted') this.c.log.debug('issuing admin\'s certificate not admitted', { peer, admin: cert.peer, reason: result })
    } catch (err) {
      if (!(err instanceof RhizomeError)) throw err
      this.count('bad-issuer-certificate')
    }
  }

  private admitted (peer: string): void {
    this.refusedUntil.delete(peer)
    // Gossipsub caches scores for a heartbeat: a new member is scored afresh at once.
    this.c.pubsub.score?.scoreCache.delete(peer)
    this.settle(peer)
  }

  /** Refuse a peer: log, count, hang up, and refuse it at the gater for REFUSED_PEER_MS. */
  private refuse (peer: string, reason: string, detail: string): void {
    if (peer === this.self || !this.lifecycle.started) return
    this.count(reason)
    this.c.log.warn('peer refused: no valid certificate of this network', { peer, reason, detail })
    this.deny(peer)
    this.settle(peer)
    this.hangUp(peer, REFUSAL_HANGUP_DELAY_MS)
  }

  private deny (peer: string): void {
    this.refusedUntil.delete(peer)
    if (this.refusedUntil.size >= (this.c.refusedPeersMax ?? REFUSED_PEERS_MAX)) {
      const oldest = this.refusedUntil.keys().next().value
      if (oldest !== undefined) this.refusedUntil.delete(oldest)
    }
    this.refusedUntil.set(peer, this.c.now() + REFUSED_PEER_MS)
    this.c.pubsub.score?.scoreCache.delete(peer)
  }

  private hangUp (peer: string, delayMs: number): void {
    const timer = setTimeout(() => {
      this.hangUps.delete(timer)
      this.c.host.hangUp(peerIdFromString(peer)).catch(() => {})
    }, delayMs)
    this.hangUps.add(timer)
  }

  // --- revocations -------------------------------------------------------------------------------

  /** Decode, check and hand a revocation to the machine; the machine's answer. */
  private handleRevocation (bytes: Uint8Array): ReturnType<Permission['handleRevocation']> {
    const rev = decodeRevocation(bytes)
    const result = this.c.permission.handleRevocation(rev, revocationSignatureValid(this.verifier, rev), this.c.now())
    this.drain()
    return result
  }

  /** Revocations that came with a peer's credentials: new ones are gossiped on. */
  private applyRevocations (list: Uint8Array[]): void {
    for (const bytes of list) {
      let result
      try {
        result = this.handleRevocation(bytes)
      } catch (err) {
        if (!(err instanceof RhizomeError)) throw err
        this.count('bad-revocation')
        continue
      }
      if (result === 'accepted') this.publish(bytes)
      else if (result !== 'duplicate') this.count(`revocation-${result}`)
    }
  }

  /** `POST /v1/network/revocations`: enforce it here and gossip it. */
  async submitRevocation (bytes: Uint8Array): Promise<RevocationResult['result']> {
    let result
    try {
      result = this.handleRevocation(bytes)
    } catch (err) {
      if (err instanceof RhizomeError) throw new RevocationRefusedError(err.message, { cause: err })
      throw err
    }
    if (result !== 'accepted' && result !== 'duplicate') throw new RevocationRefusedError(result)
    // A duplicate is published too: whoever submits it wants the network to have it, and
    // gossipsub drops copies a peer has already seen.
    this.publish(bytes)
    return result
  }

  private publish (bytes: Uint8Array): void {
    if (!this.lifecycle.started) return
    this.c.pubsub.publish(this.topic, bytes).catch((err: Error) => {
      this.c.log.debug('revocation not published', { error: err.message })
    })
  }

  private validateRevocation (from: PeerId, message: Message): TopicValidatorResult {
    if (!this.lifecycle.started) return TopicValidatorResult.Ignore
    let result
    try {
      result = this.handleRevocation(message.data)
    } catch (err) {
      if (!(err instanceof RhizomeError)) throw err
      this.count('bad-revocation')
      this.c.log.warn('revocation refused', { from: from.toString(), reason: err.message })
      return TopicValidatorResult.Reject
    }
    if (result === 'accepted') return TopicValidatorResult.Accept
    if (result === 'duplicate' || result === 'obsolete') return TopicValidatorResult.Ignore
    this.count(`revocation-${result}`)
    // A delegated admin this peer has not met (its certificate not yet held), or a clock a little
    // apart: the relaying member did nothing wrong, so it is not penalised for it.
    if (result === 'unknown-issuer' || result === 'not-yet-valid') return TopicValidatorResult.Ignore
    this.c.log.warn('revocation refused', { from: from.toString(), reason: result })
    return TopicValidatorResult.Reject
  }

  // --- the machine's outputs and timer -----------------------------------------------------------

  private drain (): void {
    const p = this.c.permission
    for (let out = p.poll(); out !== undefined; out = p.poll()) {
      switch (out.type) {
        case 'persist-certificate':
          this.c.repo.putCertificate({ peerId: out.certificate.peer, serial: out.certificate.serial, bytes: encodeCertificate(out.certificate), notAfter: out.certificate.notAfter })
          break
        case 'forget-certificate':
          this.c.repo.deleteCertificate(out.peerId, out.serial)
          break
        case 'persist-revocation':
          this.sent = undefined
          this.c.repo.putRevocation({ key: revocationKey(out.revocation, this.founder), bytes: encodeRevocation(out.revocation), atMs: out.revocation.atMs })
          break
        case 'forget-revocation':
          this.sent = undefined
          this.c.repo.deleteRevocation(revocationKey(out.revocation, this.founder))
          break
        case 'revoked':
        case 'expired':
          this.cut(out.peerId, out.type)
          break
      }
    }
    this.arm()
  }

  /** A member lost its certificate: no more talk with it, and its tasks go elsewhere. */
  private cut (peer: string, why: 'revoked' | 'expired'): void {
    if (peer === this.self) {
      this.c.log.error(`this peer's own certificate is ${why}: the network's members will refuse it`, { peer })
      return
    }
    this.c.log.warn(`member ${why}: its connections are closed and its tasks placed elsewhere`, { peer })
    this.deny(peer)
    this.settle(peer)
    this.hangUp(peer, 0)
    this.c.onLost(peer)
  }

  private arm (): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    if (!this.lifecycle.started) return
    const next = this.c.permission.nextTimeoutMs()
    if (next === undefined) return
    // setTimeout takes at most 2^31-1 ms; a certificate valid for a year re-arms on the way.
    const delay = Math.min(2 ** 31 - 1, Math.max(0, next - this.c.now()))
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.c.permission.handleTimeout(this.c.now())
      this.drain()
    }, delay)
    this.timer.unref?.()
  }

  // --- status ------------------------------------------------------------------------------------

  status (): NetworkStatus {
    const connected = new Set(this.c.host.getConnections().filter(c => c.status === 'open').map(c => c.remotePeer.toString()))
    const view = (cert: Certificate): MemberView => ({
      peerId: cert.peer, roles: [...cert.roles], serial: cert.serial, notBefore: cert.notBefore, notAfter: cert.notAfter, issuer: cert.issuer, connected: connected.has(cert.peer),
      ...issuedBy(cert.peer)
    })
    const issuedBy = (peer: string): { issuedBy?: string } => {
      const admin = this.c.permission.issuedBy(peer)
      return admin === undefined ? {} : { issuedBy: admin }
    }
    const members = this.c.permission.certificates().map(view).sort((a, b) => a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
    const self = members.find(m => m.peerId === this.self)
    return {
      mode: 'permissioned',
      networkId: this.networkId,
      ...(self !== undefined ? { self } : {}),
      members,
      revocations: this.c.permission.revocations().map(r => ({ ...(r.serial !== undefined ? { serial: r.serial } : {}), ...(r.peer !== undefined ? { peer: r.peer } : {}), atMs: r.atMs, issuer: r.issuer })),
      refused: { ...this.refused }
    }
  }
}

/** A credentials request or answer: a certificate's bytes and up to CREDENTIALS_REVOCATIONS_MAX revocations'. */
function credentialsBody (raw: unknown): CredentialsBody {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ProtocolViolationError('credentials must be a map')
  const { certificate, revocations, issuer } = raw as Record<string, unknown>
  if (!(certificate instanceof Uint8Array)) throw new ProtocolViolationError('credentials.certificate must be bytes')
  if (issuer !== undefined && !(issuer instanceof Uint8Array)) throw new ProtocolViolationError('credentials.issuer must be bytes (the issuing admin\'s certificate)')
  if (!Array.isArray(revocations) || revocations.length > CREDENTIALS_REVOCATIONS_MAX || !revocations.every(r => r instanceof Uint8Array)) {
    throw new ProtocolViolationError(`credentials.revocations must be a list of at most ${CREDENTIALS_REVOCATIONS_MAX} byte strings`)
  }
  for (const key of Object.keys(raw)) if (key !== 'certificate' && key !== 'revocations' && key !== 'issuer') throw new ProtocolViolationError(`credentials.${key} is not a field`)
  return { certificate, revocations: revocations as Uint8Array[], ...(issuer !== undefined ? { issuer } : {}) }
}

/**
 * The gossipsub a permissioned peer's services see: each topic validator they set is wrapped so a
 * message from a peer not allowed 'gossip' is rejected before the service reads it.
 */
export function gatedPubsub (pubsub: PermissionPubsub, admits: (peerId: string) => boolean): Pick<GossipSub, 'topicValidators' | 'subscribe' | 'unsubscribe' | 'publish'> {
  return {
    topicValidators: new GatedValidators(pubsub.topicValidators, admits),
    subscribe: (topic) => { pubsub.subscribe(topic) },
    unsubscribe: (topic) => { pubsub.unsubscribe(topic) },
    publish: async (topic, data) => await pubsub.publish(topic, data)
  }
}

class GatedValidators extends Map<string, TopicValidatorFn> {
  private readonly inner: Map<string, TopicValidatorFn>
  private readonly admits: (peerId: string) => boolean

  constructor (inner: Map<string, TopicValidatorFn>, admits: (peerId: string) => boolean) {
    super()
    this.inner = inner
    this.admits = admits
  }

  override set (topic: string, validator: TopicValidatorFn): this {
    super.set(topic, validator)
    // The peer that sent it must be a member. Its author need not be one this peer has met: the
    // first member it reached checked its author this same way, so a message enters the network
    // only through a member, and members relay what their validators accepted.
    this.inner.set(topic, async (peer, message) => {
      if (!this.admits(peer.toString())) return TopicValidatorResult.Reject
      return await validator(peer, message)
    })
    return this
  }

  override delete (topic: string): boolean {
    super.delete(topic)
    return this.inner.delete(topic)
  }
}
