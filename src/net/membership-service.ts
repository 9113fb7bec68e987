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
import type { Logger } from '../model/log.ts'
import type { Announcement, AnnouncementVerdict, Membership, MembershipEvent } from '../protocol/membership/index.ts'
import type { Host } from './host.ts'
import type { RpcService } from './rpc.ts'
import type { Message } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'

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

export class NetworkMismatchError extends RhizomeError {
  constructor (ours: string, theirs: string) {
    super('ERR_NETWORK_MISMATCH', `peer belongs to network ${JSON.stringify(theirs)}, this peer to ${JSON.stringify(ours)}`, { hint: 'peers only talk within one network id; check --network-id on both peers' })
    this.name = 'NetworkMismatchError'
  }
}

export interface MembershipServiceInit {
  host: Host
  rpc: RpcService
  membership: Membership
  networkId: string
  log: Logger
  now: () => number
  onEvent: (event: MembershipEvent) => void
  onViolation: (peerId: PeerId, protocol: string, err: Error) => void
  /** The peer swapped a valid hello with us: a Rhizome peer of this network (connection admission). */
  onProven?: (peerId: PeerId) => void
}

export class MembershipService {
  private readonly init: MembershipServiceInit
  private readonly topic: string
  private readonly hello: string
  private timer: ReturnType<typeof setTimeout> | undefined
  private lastAnnouncement: Announcement | undefined
  private dialsInflight = 0
  private stopped = false
  private readonly onIdentify: (evt: CustomEvent<{ peerId: PeerId, protocols: string[] }>) => void

  constructor (init: MembershipServiceInit) {
    this.init = init
    this.topic = membershipTopic(init.networkId)
    this.hello = helloProtocol(init.networkId)
    this.onIdentify = (evt) => {
      if (evt.detail.protocols.includes(this.hello)) this.sayHello(evt.detail.peerId)
    }
  }

  async start (): Promise<void> {
    const { host, rpc } = this.init
    host.services.pubsub.topicValidators.set(this.topic, (peer, message) => this.validateGossip(peer, message))
    host.services.pubsub.subscribe(this.topic)
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
    this.tick()
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.init.host.removeEventListener('peer:identify', this.onIdentify)
    this.init.host.services.pubsub.topicValidators.delete(this.topic)
  }

  /** The announcement this peer last published (its own view of itself). */
  self (): Announcement | undefined {
    return this.lastAnnouncement
  }

  /** Feed the state machine and carry out its outputs; the one place the timer is re-armed. */
  private tick (): void {
    if (this.stopped) return
    this.init.membership.handleTick(this.init.now())
    this.drain()
  }

  private drain (): void {
    const { membership, log } = this.init
    for (let output = membership.poll(); output !== undefined; output = membership.poll()) {
      if (output.type === 'announce') {
        this.lastAnnouncement = output.announcement
        this.publish(output.announcement)
      } else {
        log.info(output.type, { peer: output.peerId })
        this.init.onEvent(output)
        if (output.type === 'peer:joined' || output.type === 'peer:alive') this.connect(output.peerId)
      }
    }
    if (this.timer !== undefined) clearTimeout(this.timer)
    const waitMs = Math.min(TICK_MS_MAX, Math.max(TICK_MS_MIN, membership.nextTimeoutMs() - this.init.now()))
    this.timer = setTimeout(() => this.tick(), waitMs)
    this.timer.unref?.()
  }

  private publish (announcement: Announcement): void {
    this.init.host.services.pubsub.publish(this.topic, encodeAnnouncement(announcement)).catch((err: Error) => {
      this.init.log.debug('announce not published', { error: err.message })
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
      this.init.onViolation(peer, this.topic, err as Error)
      return TopicValidatorResult.Reject
    }
    const verdict = this.deliver(announcement)
    if (verdict === 'foreign-network') {
      this.init.onViolation(peer, this.topic, new NetworkMismatchError(this.init.networkId, announcement.networkId))
      return TopicValidatorResult.Reject
    }
    return verdict === 'accepted' ? TopicValidatorResult.Accept : TopicValidatorResult.Ignore
  }

  private deliver (announcement: Announcement): AnnouncementVerdict {
    const verdict = this.init.membership.handleAnnouncement(announcement, this.init.now())
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
    if (announcement.networkId !== this.init.networkId) {
      // Not an attack, but nothing to talk about: close the connection.
      this.init.host.hangUp(peerId).catch(() => {})
      throw new NetworkMismatchError(this.init.networkId, announcement.networkId)
    }
    this.init.onProven?.(peerId)
    this.deliver(announcement)
  }

  private sayHello (peerId: PeerId): void {
    if (this.stopped || this.lastAnnouncement === undefined) return
    const body = encodeAnnouncement(this.lastAnnouncement)
    this.init.rpc.request(peerId, this.hello, body, { timeoutMs: 10_000 }).then(reply => {
      try {
        this.acceptHello(peerId, reply)
      } catch (err) {
        if (err instanceof ProtocolViolationError) this.init.onViolation(peerId, this.hello, err)
        else this.init.log.info('hello refused', { peer: peerId.toString(), error: (err as Error).message })
      }
    }, (err: Error) => {
      this.init.log.debug('hello failed', { peer: peerId.toString(), error: err.message })
      if (err instanceof RhizomeError && err.code === 'ERR_NETWORK_MISMATCH') this.init.host.hangUp(peerId).catch(() => {})
    })
  }

  /** Dial a newly seen peer directly, so the overlay is a mesh and not a star around bootstrap. */
  private connect (peerIdText: string): void {
    const { host, membership } = this.init
    if (this.dialsInflight >= DIALS_INFLIGHT_MAX) return
    if (host.getConnections().some(c => c.remotePeer.toString() === peerIdText)) return
    const entry = membership.get(peerIdText)
    if (entry === undefined || entry.addrs.length === 0) return
    this.dialsInflight++
    Promise.resolve().then(async () => {
      const addrs = entry.addrs.map(a => multiaddr(a.includes('/p2p/') ? a : `${a}/p2p/${peerIdText}`))
      await host.dial(addrs, { signal: AbortSignal.timeout(10_000) })
    }).catch((err: Error) => {
      this.init.log.debug('dial failed', { peer: peerIdText, error: err.message })
    }).finally(() => { this.dialsInflight-- })
  }
}
