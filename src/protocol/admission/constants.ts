/**
 * Defaults and bounds of connection admission and of the blocklist. Why each number:
 *
 * - `connectionsMax` 100: membership and gossip need a handful of connections per peer; 100 leaves
 *   room for task traffic without exhausting file descriptors on a small device.
 * - `reservedShare` 1/2: half of `connectionsMax` is kept for peers that proved themselves (swapped
 *   a valid hello, or are alive in membership, with no bad record). Connections that have not
 *   proved anything may use the other half. Identities are free, so a flood of fresh ones can
 *   always fill the unproven half — but never the half the peers we work with live in. A half
 *   (not a tenth) because a peer joining a network opens many connections at once, all unproven
 *   for the second or so their hello takes.
 * - `helloDeadlineMs` 20 s: an honest Rhizome peer swaps hellos right after identify, in well
 *   under a second. The bound is libp2p's identify timeout (5 s) plus the hello request's own
 *   timeout (10 s), with slack for a loaded machine. A connection that has shown nothing by then
 *   is not a Rhizome peer of this network (or is holding a slot on purpose) and is closed.
 * - `idleMs` 5 min: a connection with no stream open at all. A working peer always has gossip and
 *   protocol streams open, so an empty connection for minutes holds a slot for nothing.
 * - `connectionsPerAddressMax` 8: a home or office behind one NAT address may run a few Rhizome
 *   peers, each with one connection to us (two for a moment when both sides dial at once). More
 *   than 8 from one address is a flood, not a household; a larger site behind one address
 *   raises it.
 * - `limitLoopback` false: loopback connections come from this machine. A process here can
 *   exhaust the machine in easier ways than by connecting to us, and a local devnet (up to 16
 *   peers, each connected to each other one, plus test and CLI traffic) shares 127.0.0.1. Tests
 *   that exercise the per-address limit turn it on.
 * - blocklist 10,000 entries: an entry is a peer id and a time, about 100 bytes, so ≤ 1 MB. It
 *   takes five offences to be blocked, so filling it costs an attacker 50,000 offences; past the
 *   limit the entries closest to expiry are dropped first.
 */
export const ADMISSION_DEFAULTS = {
  connectionsMax: 100,
  reservedShare: 0.5,
  helloDeadlineMs: 20_000,
  idleMs: 5 * 60_000,
  connectionsPerAddressMax: 8,
  limitLoopback: false
} as const satisfies {
  connectionsMax: number
  reservedShare: number
  helloDeadlineMs: number
  idleMs: number
  connectionsPerAddressMax: number
  limitLoopback: boolean
}

/** The smallest `connectionsMax`: with 4, both the reserved and the unproven share hold at least
 *  one connection at any reserved share between 1/4 and 3/4. */
export const CONNECTIONS_MAX_MIN = 4

/** The largest `connectionsMax` (and `connectionsPerAddressMax`): each connection is a socket and
 *  a few buffers; ten thousand is beyond any peer Rhizome targets — a typo, not a configuration. */
export const CONNECTIONS_MAX_LIMIT = 10_000

/** Reserved share bounds: below 1/4 a flood crowds the proven peers; above 3/4 a joining peer's
 *  burst of fresh connections churns itself out. */
export const RESERVED_SHARE_MIN = 0.25
export const RESERVED_SHARE_MAX = 0.75

/** Time options may not exceed this: shared by every protocol, so defined in src/model/limits.ts. */
export { DURATION_MS_LIMIT } from '../../model/limits.ts'

/** Misbehaviour costs this much score per offence. */
export const VIOLATION_SCORE = -10

/** At or below this score a peer is blocked for `BLOCK_MS`: five offences. One bad message may be a
 *  bug; five is a pattern. */
export const BLOCK_SCORE_MAX = -50

/** Ten minutes: long enough to stop a flood, short enough to forgive a restarted, fixed peer. */
export const BLOCK_MS = 10 * 60_000

/** Entries the blocklist keeps (see above for why 10,000). */
export const BLOCKED_PEERS_MAX = 10_000
