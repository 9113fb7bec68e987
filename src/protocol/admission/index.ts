/**
 * Connection admission: which connections a peer keeps, and which peers it refuses outright.
 *
 * Peer ids are free, so anyone can open connections from fresh identities until the connection
 * limit is reached and honest peers are refused. Admission keeps a table of open connections,
 * each *unproven* until its peer swaps a valid hello or is alive in membership, and decides whom
 * to close: connections that never prove themselves (hello deadline), that sit empty (idle
 * limit), that crowd one remote address, or — when the table is full — the worst one, so a new
 * connection can get in while half of the table stays reserved for proven peers. The state
 * machine and its theory of operation are in ./admission.ts.
 *
 * The blocklist (./blocklist.ts) holds peers whose score fell to the block threshold; the
 * connection gater refuses them at every stage.
 *
 * Sans-I/O (STYLE.md §4): the shell (src/net/admission-service.ts) feeds libp2p's connection
 * events and hello results with the current time, drains `poll()` and closes what it says, and
 * calls `handleTick` at `nextTimeoutMs()` (or sooner, to report stream activity).
 */
import { ADMISSION_DEFAULTS as DEFAULTS } from './constants.ts'
import { AdmissionMachine } from './admission.ts'
import { Blocklist } from './blocklist.ts'

export interface ConnectionInfo {
  /** libp2p's connection id: unique while the connection is open. */
  id: string
  peerId: string
  /** The remote IP address (no port), or undefined when the transport has none (relay, memory). */
  address: string | undefined
  /** The remote address is loopback (127.0.0.0/8, ::1). */
  loopback: boolean
}

export type CloseReason =
  /** Opened `helloDeadlineMs` ago and its peer has not proved itself. */
  | 'hello-deadline'
  /** No stream open for `idleMs`. */
  | 'idle'
  /** Its remote address holds more than `connectionsPerAddressMax` connections. */
  | 'address-full'
  /** Unproven connections fill their share of the table, or the whole table is full. */
  | 'full'

export interface CloseOutput { type: 'close', id: string, peerId: string, reason: CloseReason }

export interface AdmissionOptions {
  /** Default 100: connections kept open. */
  connectionsMax?: number
  /** Default 0.5: the share of `connectionsMax` that only proven peers with a clean record may use. */
  reservedShare?: number
  /** Default 20,000: a connection whose peer has not proved itself by then is closed. */
  helloDeadlineMs?: number
  /** Default 300,000: a connection with no stream open for this long is closed. */
  idleMs?: number
  /** Default 8: connections from one remote IP address. */
  connectionsPerAddressMax?: number
  /** Default false: loopback connections are exempt from `connectionsPerAddressMax`. */
  limitLoopback?: boolean
}

export interface AdmissionCounts {
  total: number
  /** Proven peers with a clean record: the ones the reserved share is for. */
  trusted: number
  /** Not yet proven, or proven with an offence on record. */
  untrusted: number
}

export interface Admission {
  /** A new connection is open. `proven`: its peer is already alive in membership; `score`: its
   *  stored score. May emit `close` for the new connection itself (refused) or for another
   *  (pruned to make room). A second handleOpen of an open id is a bug and throws. */
  handleOpen (connection: ConnectionInfo, peer: { proven: boolean, score: number }, nowMs: number): void
  /** The connection closed, for whatever reason. Unknown ids are ignored (closed twice, or
   *  closed by us and reported after). */
  handleClose (id: string): void
  /** The peer swapped a valid hello, or turned alive in membership: all its connections are proven. */
  handleProven (peerId: string): void
  /** The peer's score changed: below zero its connections lose their claim on the reserved share. */
  handleScore (peerId: string, score: number): void
  /** How many streams the connection has open now; any stream resets its idle clock. */
  handleStreams (id: string, streams: number, nowMs: number): void
  /** Close connections past their hello deadline or idle limit. */
  handleTick (nowMs: number): void
  /** Drain outputs in order. */
  poll (): CloseOutput | undefined
  /** Absolute ms time of the next deadline (undefined when nothing is open). */
  nextTimeoutMs (): number | undefined
  /** Whether an inbound connection from this address would be kept, asked before its handshake:
   *  false only if the address (or the whole table) is full with nothing there that may be pruned
   *  for it. */
  admits (address: string | undefined, loopback: boolean): boolean
  counts (): AdmissionCounts
}

export interface BlocklistOptions {
  /** Default 10,000. */
  entriesMax?: number
  /** Default 10 min. */
  blockMs?: number
}

export interface PeerBlocklist {
  /** A peer's score changed to `score`: at or below BLOCK_SCORE_MAX it is blocked for blockMs
   *  from now (again, if it already was). Returns whether this score blocked it. */
  handleScore (peerId: string, score: number, nowMs: number): boolean
  /** Blocked until a time after `nowMs`. Drops the entry if it has expired. */
  isBlocked (peerId: string, nowMs: number): boolean
  /** Entries held, expired or not. */
  size (): number
}

/** Defaults of the options (frozen; see ./constants.ts for why each). */
export const ADMISSION_OPTIONS_DEFAULTS: Required<AdmissionOptions> = Object.freeze({ ...DEFAULTS })

/** Validates the options (ConfigError naming the field) and returns an empty table. */
export function createAdmission (options: AdmissionOptions = {}): Admission {
  return new AdmissionMachine(options)
}

/** Validates the options (ConfigError naming the field) and returns an empty blocklist. */
export function createBlocklist (options: BlocklistOptions = {}): PeerBlocklist {
  return new Blocklist(options)
}

export {
  DURATION_MS_LIMIT, BLOCKED_PEERS_MAX, BLOCK_MS, BLOCK_SCORE_MAX, CONNECTIONS_MAX_LIMIT, CONNECTIONS_MAX_MIN,
  RESERVED_SHARE_MAX, RESERVED_SHARE_MIN, VIOLATION_SCORE
} from './constants.ts'
