/**
 * The shell around the membership state machine (src/protocol/membership): a thin loop that
 * feeds it announcements from gossip and from the hello protocol, calls handleTick when its
 * timer is due, and carries out what poll() returns (publish an announcement, report an event).
 *
 * Two ways in for an announcement:
 *  - gossip topic `rhizome/<networkId>/membership/1`: every peer publishes there every few
 *    seconds; gossipsub signs messages, and we accept one only if its author is the peer it
 *    describes;
 *  - `/rhizome/<networkId>/hello/1.0.0`: on each new connection both sides swap announcements at
 *    once, so a peer that just joined does not wait for the next gossip round.
 */
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { multiaddr } from '@multiformats/multiaddr'
import { ProtocolViolationError, RhizomeError } from '../model/errors.ts'
import { ANNOUNCEMENT_BYTES_MAX, decodeAnnouncement, encodeAnnouncement } from '../wire/membership-codec.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { ADDRS_MAX } from '../protocol/membership/index.ts'
import { Lifecycle } from './lifecycle.ts'
import { RPC_DIAL_TIMEOUT_MS } from './rpc.ts'
import type { Logger } from '../model/log.ts'
import type { Announcement, AnnouncementVerdict, Membership, MembershipEvent } from '../protocol/membership/index.ts'
import type { Host } from './host.ts'
import type { RpcService } from './rpc.ts'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export function membershipTopic (networkId: string): string {
  return `rhizome/${networkId}/membership/1`
}

export function helloProtocol (networkId: string): string {
  return `/rhizome/${networkId}/hello/1.0.0`
}

/** Hello carries one announcement each way; the frame limit adds room for the envelope. */
const HELLO_FRAME_BYTES_MAX = ANNOUNCEMENT_BYTES_MAX + 256
/** Timer floor: never spin faster than this even if the state machine asks for "now". */
const TICK_MS_MIN = 10
/** Timer ceiling: re-check at least this often, so a clock jump is noticed. */
const TICK_MS_MAX = 1000
/** Dials to newly seen peers running at once; more would queue in libp2p anyway. */
export const DIALS_INFLIGHT_MAX = 8
/** Peers redialed from the last known view on start; the rest arrive through gossip. */
export const REDIAL_PEERS_MAX = 8
/**
 * How long a hello may take: one small request on a fresh connection, a few round trips. Twice
 * identify's 5 s; admission's hello deadline (20 s, src/protocol/admission) leaves room for it.
 */
export const HELLO_TIMEOUT_MS = 10_000

export class NetworkMismatchError extends RhizomeError {
  constructor (ours: string, theirs: string) {
    super('ERR_NETWORK_MISMATCH', `peer belongs to network ${JSON.stringify(theirs)}, this peer to ${JSON.stringify(ours)}`, { hint: 'peers only talk within one network id; check --network-id on both peers' })
    this.name = 'NetworkMismatchError'
  }
}

/** What membership needs of libp2p: identify and address events, connections, dial and hang up. */
export type MembershipHost = Pick<Host, 'addEventListener' | 'removeEventListener' | 'getConnections' | 'getMultiaddrs' | 'dial' | 'hangUp'>

export interface MembershipServiceComponents {
  /** The state machine this service is the shell of. */
  membership: Membership
  host: MembershipHost
  pubsub: Pick<GossipSub, 'topicValidators' | 'subscribe' | 'unsubscribe' | 'publish'>
  rpc: Pick<RpcService, 'handle' | 'unhandle' | 'request'>
  log: Logger
  now: () => number
  /** A membership transition, to be recorded (src/net/membership-record.ts). */
  onEvent: (event: MembershipEvent) => void
  onViolation: (peerId: PeerId, protocol: string, err: Error) => void
  /** The peer is a Rhizome peer of this network: it swapped a valid hello, or turned alive (connection admission). */
  onProven?: (peerId: string) => void
  /** Peers from the last run, redialed on start (at most `redialPeersMax`). */
  knownPeers?: () => Array<{ peerId: string, addrs: string[] }>
}

export interface MembershipServiceInit {
  networkId: string
  /** Default HELLO_TIMEOUT_MS. */
  helloTimeoutMs?: number
  /** Default RPC_DIAL_TIMEOUT_MS. */
  dialTimeoutMs?: number
  /** Default REDIAL_PEERS_MAX. */
  redialPeersMax?: number
}

export class MembershipService {
  private readonly components: MembershipServiceComponents
  private readonly networkId: string
  private readonly helloTimeoutMs: number
  private readonly dialTimeoutMs: number
  private readonly redialPeersMax: number
  private readonly topic: string
  private readonly hello: string
  private readonly lifecycle = new Lifecycle('the membership service')
  private timer: ReturnType<typeof setTimeout> | undefined
  private lastAnnouncement: Announcement | undefined
  private dialsInflight = 0
  private stopped = false
  private readonly onIdentify: (evt: CustomEvent<{ peerId: PeerId, protocols: string[] }>) => void
  private readonly onSelfUpdate: () => void

  constructor (components: MembershipServiceComponents, init: MembershipServiceInit) {
    this.components = components
    this.networkId = init.networkId
    this.helloTimeoutMs = init.helloTimeoutMs ?? HELLO_TIMEOUT_MS
    this.dialTimeoutMs = init.dialTimeoutMs ?? RPC_DIAL_TIMEOUT_MS
    this.redialPeersMax = init.redialPeersMax ?? REDIAL_PEERS_MAX
    this.topic = membershipTopic(init.networkId)
    this.hello = helloProtocol(init.networkId)
    this.onIdentify = (evt) => {
      if (evt.detail.protocols.includes(this.hello)) this.sayHello(evt.detail.peerId)
    }
    this.onSelfUpdate = () => {
      if (this.stopped) return
      this.components.membership.handleAddrs(announcedAddrs(this.components.host.getMultiaddrs().map(a => a.toString())))
      this.drain()
    }
  }

  async start (): Promise<void> {
    const { host, pubsub, rpc } = this.components
    this.stopped = false
    this.lifecycle.start()
    pubsub.topicValidators.set(this.topic, (peer, message) => this.validateGossip(peer, message))
    pubsub.subscribe(this.topic)
    await rpc.handle({
      protocol: this.hello,
      frameBytesMax: HELLO_FRAME_BYTES_MAX,
      inflightMax: 2,
      handler: async (body, { peerId }) => {
        this.acceptHello(peerId, body)
        return this.lastAnnouncement === undefined ? null : encodeAnnouncement(this.lastAnnouncement)
      }
    })
    host.addEventListener('peer:identify', this.onIdentify)
    host.addEventListener('self:peer:update', this.onSelfUpdate)
    this.tick()
    for (const peer of this.components.knownPeers?.().slice(0, this.redialPeersMax) ?? []) this.dial(peer.peerId, peer.addrs)
  }

  /** Stop the timer and the listeners; abort hellos and dials in flight. */
  async stop (): Promise<void> {
    const { host, pubsub, rpc } = this.components
    this.stopped = true
    this.lifecycle.stop()
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    host.removeEventListener('peer:identify', this.onIdentify)
    host.removeEventListener('self:peer:update', this.onSelfUpdate)
    pubsub.topicValidators.delete(this.topic)
    pubsub.unsubscribe(this.topic)
    await rpc.unhandle(this.hello)
  }

  /** Feed the state machine and carry out its outputs; the one place the timer is re-armed. */
  private tick (): void {
    if (this.stopped) return
    this.components.membership.handleTick(this.components.now())
    this.drain()
  }

  private drain (): void {
    const { membership, log } = this.components
    for (let output = membership.poll(); output !== undefined; output = membership.poll()) {
      if (output.type === 'announce') {
        this.lastAnnouncement = output.announcement
        this.publish(output.announcement)
      } else {
        log.info(output.type, { peer: output.peerId })
        this.components.onEvent(output)
        if (output.type === 'peer:joined' || output.type === 'peer:alive') {
          this.components.onProven?.(output.peerId)
          this.connect(output.peerId)
        }
      }
    }
    if (this.timer !== undefined) clearTimeout(this.timer)
    if (this.stopped) return
    const waitMs = Math.min(TICK_MS_MAX, Math.max(TICK_MS_MIN, membership.nextTimeoutMs() - this.components.now()))
    this.timer = setTimeout(() => this.tick(), waitMs)
    this.timer.unref?.()
  }

  private publish (announcement: Announcement): void {
    this.components.pubsub.publish(this.topic, encodeAnnouncement(announcement)).catch((err: Error) => {
      this.components.log.debug('announce not published', { error: err.message })
    })
  }

  private validateGossip (peer: PeerId, message: Message): TopicValidatorResult {
    let announcement: Announcement
    try {
      if (message.type !== 'signed') throw new ProtocolViolationError('membership gossip must be signed by its author')
      announcement = decodeAnnouncement(message.data)
      if (announcement.peerId !== message.from.toString()) {
        throw new ProtocolViolationError(`announcement for ${announcement.peerId} was signed by ${message.from.toString()}`)
      }
    } catch (err) {
      this.components.onViolation(peer, this.topic, err as Error)
      return TopicValidatorResult.Reject
    }
    const verdict = this.deliver(announcement)
    if (verdict === 'foreign-network') {
      this.components.onViolation(peer, this.topic, new NetworkMismatchError(this.networkId, announcement.networkId))
      return TopicValidatorResult.Reject
    }
    return verdict === 'accepted' ? TopicValidatorResult.Accept : TopicValidatorResult.Ignore
  }

  private deliver (announcement: Announcement): AnnouncementVerdict {
    const verdict = this.components.membership.handleAnnouncement(announcement, this.components.now())
    this.drain()
    return verdict
  }

  private acceptHello (peerId: PeerId, body: unknown): void {
    if (body === null) return // the other side has not announced yet; gossip will bring it
    if (!(body instanceof Uint8Array)) throw new ProtocolViolationError('hello body must be an announcement in bytes')
    const announcement = decodeAnnouncement(body)
    if (announcement.peerId !== peerId.toString()) {
      throw new ProtocolViolationError(`hello from ${peerId.toString()} describes ${announcement.peerId}`)
    }
    if (announcement.networkId !== this.networkId) {
      // Not an attack, but nothing to talk about: close the connection.
      this.components.host.hangUp(peerId).catch(() => {})
      throw new NetworkMismatchError(this.networkId, announcement.networkId)
    }
    this.components.onProven?.(peerId.toString())
    this.deliver(announcement)
  }

  private sayHello (peerId: PeerId): void {
    if (this.stopped || this.lastAnnouncement === undefined) return
    const body = encodeAnnouncement(this.lastAnnouncement)
    const { log, host, rpc } = this.components
    const operation = this.lifecycle.operation({ timeoutMs: this.helloTimeoutMs })
    rpc.request(peerId, this.hello, body, { signal: operation.signal, timeoutMs: this.helloTimeoutMs }).then(reply => {
      try {
        this.acceptHello(peerId, reply)
      } catch (err) {
        if (err instanceof ProtocolViolationError) this.components.onViolation(peerId, this.hello, err)
        else log.info('hello refused', { peer: peerId.toString(), error: (err as Error).message })
      }
    }, (err: Error) => {
      log.debug('hello failed', { peer: peerId.toString(), error: err.message })
      if (err instanceof RhizomeError && err.code === 'ERR_NETWORK_MISMATCH') host.hangUp(peerId).catch(() => {})
    }).finally(() => { operation.release() })
  }

  /** Dial a newly seen peer directly, so the overlay is a mesh and not a star around bootstrap. */
  private connect (peerIdText: string): void {
    if (this.components.host.getConnections().some(c => c.remotePeer.toString() === peerIdText)) return
    const entry = this.components.membership.get(peerIdText)
    if (entry === undefined) return
    this.dial(peerIdText, entry.addrs)
  }

  /** At most DIALS_INFLIGHT_MAX at once, each within the dial deadline and not past stop(). */
  private dial (peerIdText: string, addrs: string[]): void {
    if (this.stopped || this.dialsInflight >= DIALS_INFLIGHT_MAX || addrs.length === 0) return
    let targets: Multiaddr[]
    try {
      peerIdFromString(peerIdText)
      targets = addrs.map(a => multiaddr(a.includes('/p2p/') ? a : `${a}/p2p/${peerIdText}`))
    } catch {
      return // a stored address that no longer parses: gossip will bring a fresh one
    }
    this.dialsInflight++
    const operation = this.lifecycle.operation({ timeoutMs: this.dialTimeoutMs })
    this.components.host.dial(targets, { signal: operation.signal }).catch((err: Error) => {
      this.components.log.debug('dial failed', { peer: peerIdText, error: err.message })
    }).finally(() => {
      operation.release()
      this.dialsInflight--
    })
  }
}

/**
 * The flood guard for a given announce interval: a peer announcing several times per interval is
 * flooding; a quarter interval allows for jitter.
 */
export function announceMinIntervalMs (announceIntervalMs: number): number {
  return Math.floor(announceIntervalMs / 4)
}

/** The addresses a peer announces: loopback last, and no more than an announcement may carry. */
export function announcedAddrs (addrs: string[]): string[] {
  const loopback = (a: string): boolean => a.startsWith('/ip4/127.') || a.startsWith('/ip6/::1/')
  return [...addrs.filter(a => !loopback(a)), ...addrs.filter(loopback)].slice(0, ADDRS_MAX)
}
