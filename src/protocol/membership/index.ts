/**
 * Membership: which peers of the network exist, and which are alive.
 *
 * Every peer periodically announces itself (id, incarnation, addresses, capacity) on gossip; each
 * peer keeps a table of the announcements it has heard and moves silent peers through
 * alive → suspect → gone → removed. This is the contract; the state machine is in
 * ./membership.ts (read its theory of operation), the wire format in src/wire/membership-codec.ts.
 *
 * Sans-I/O (STYLE.md §4): the shell feeds inputs (`handle*`, with the current time), drains
 * `poll()` after every call, publishes each `announce` output on gossip, and calls `handleTick`
 * at `nextTimeoutMs()`.
 */
import type { Capacity } from '../../model/capacity.ts'
import { MEMBERSHIP_DEFAULTS as DEFAULTS } from './constants.ts'
import { MembershipMachine } from './membership.ts'

export type { Capacity }

export interface Announcement {
  /** Peer id string (base58btc, e.g. 12D3Koo…); the shell checks it equals the authenticated gossip author. */
  peerId: string
  networkId: string
  /** Ms timestamp of the peer's (re)start: a larger incarnation is a newer life of the same peer.
   *  The shell must keep it increasing across restarts (e.g. max(now, last incarnation + 1)). */
  incarnation: number
  /** Strictly increasing within one incarnation. */
  seq: number
  /** Rhizome version string. */
  version: string
  /** Multiaddr strings the peer listens on. */
  addrs: string[]
  capacity: Capacity
}

export type PeerState = 'alive' | 'suspect' | 'gone'

export interface PeerEntry {
  peerId: string
  state: PeerState
  incarnation: number
  seq: number
  version: string
  addrs: string[]
  capacity: Capacity
  /** When this entry was created (the peer joined, or joined again after removal). */
  firstSeenMs: number
  /** When the last accepted announcement arrived. */
  lastSeenMs: number
  /** When the entry entered its current state (or, while alive, when its current life was first heard). */
  stateSinceMs: number
}

export type MembershipEvent =
  /** First time seen (or seen again after removal). */
  | { type: 'peer:joined', peerId: string, atMs: number }
  /** Back to alive from suspect/gone, or alive with a new incarnation (the peer restarted: work it
   *  held in its previous life is lost). */
  | { type: 'peer:alive', peerId: string, atMs: number }
  | { type: 'peer:suspect', peerId: string, atMs: number }
  | { type: 'peer:gone', peerId: string, atMs: number }
  /** Forgotten (gone for goneRetainMs, or evicted to make room). */
  | { type: 'peer:removed', peerId: string, atMs: number }

export type MembershipOutput = MembershipEvent | { type: 'announce', announcement: Announcement }

export type AnnouncementVerdict = 'accepted' | 'stale' | 'self' | 'foreign-network' | 'rate-limited' | 'full'

export interface MembershipOptions {
  selfId: string
  networkId: string
  version: string
  incarnation: number
  addrs?: string[]
  capacity?: Capacity
  /** Default 2000. */
  announceIntervalMs?: number
  /** Default 5000: silence before suspect. */
  suspectAfterMs?: number
  /** Default 10000: silence before gone. */
  goneAfterMs?: number
  /** Default 60000: how long a gone entry is kept before removal. */
  goneRetainMs?: number
  /** Default 1024: entries kept. A new peer evicts the oldest gone entry, else the oldest suspect,
   *  else it is refused ('full'); alive peers are never evicted. */
  peersMax?: number
  /** Default 500: announcements from one peer arriving faster than this are dropped as
   *  'rate-limited' (flood guard). */
  announceMinIntervalMs?: number
}

export interface Membership {
  /** An announcement that the codec decoded and validated and the shell authenticated. */
  handleAnnouncement (announcement: Announcement, nowMs: number): AnnouncementVerdict
  /** Used in the next announce. Throws ConfigError if out of the wire limits. */
  handleCapacity (capacity: Capacity): void
  /** Used in the next announce. Throws ConfigError if out of the wire limits (at most ADDRS_MAX). */
  handleAddrs (addrs: string[]): void
  /** Fire due timers: own announce, suspect/gone/removal transitions. */
  handleTick (nowMs: number): void
  /** Drain outputs in order. */
  poll (): MembershipOutput | undefined
  /** Absolute ms time at which handleTick should next be called. Before the first handleTick it is
   *  the latest time seen (0 if none), meaning "now". A time in the past means "now". */
  nextTimeoutMs (): number
  /** Sorted by peerId, never includes self. Copies: mutating them changes nothing. */
  view (): PeerEntry[]
  /** A copy of one entry. */
  get (peerId: string): PeerEntry | undefined
  /** The state of one peer without copying its entry (undefined if not in the table). */
  stateOf (peerId: string): PeerState | undefined
  /** How many entries are in each state. */
  counts (): Record<PeerState, number>
}

/** Defaults of the optional timing and size options (frozen; see ./constants.ts for why each). */
export const MEMBERSHIP_DEFAULTS: Required<Omit<MembershipOptions, 'selfId' | 'networkId' | 'version' | 'incarnation' | 'addrs' | 'capacity'>> = Object.freeze({ ...DEFAULTS })

/** Validates the options (ConfigError naming the field) and returns a fresh state machine. */
export function createMembership (options: MembershipOptions): Membership {
  return new MembershipMachine(options)
}

export {
  ADDRS_MAX, ADDR_CHARS_MAX, CAPACITY_VALUE_MAX, NETWORK_ID_CHARS_MAX, PEER_ID_CHARS_MAX, VERSION_CHARS_MAX,
  isAddrString, isCapacityValue, isCounter, isNetworkIdString, isPeerIdString, isVersionString
} from './limits.ts'
export { PEERS_MAX_LIMIT, DURATION_MS_LIMIT } from './constants.ts'
