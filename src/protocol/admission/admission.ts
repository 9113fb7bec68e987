/**
 * Connection admission state machine — theory of operation.
 *
 * INPUTS. libp2p's connection events (open, close) and stream counts, hello and membership
 * results (a peer proved itself), score changes, and ticks. Every input that needs a time carries
 * `nowMs`, the caller's clock; this file never reads a clock.
 *
 * A CONNECTION is either
 *   - trusted: its peer proved itself — swapped a valid hello with us, or is alive in membership
 *     (signed gossip from that peer id; the connection is authenticated to the same id) — and
 *     has no offence on record (score ≥ 0); or
 *   - untrusted: not proven yet, or proven with an offence on record (score < 0).
 * Proof and score belong to the peer, so they apply to all its connections at once. A connection
 * is born untrusted unless its peer is already alive in membership.
 *
 * WHAT GETS CLOSED, and why (each a `close` output with its reason):
 *   - hello-deadline: still unproven `helloDeadlineMs` after it opened. An honest peer proves
 *     itself in about a second; one that does not is not a Rhizome peer of this network, or is
 *     holding a slot on purpose.
 *   - idle: no stream open for `idleMs` (trusted or not): it holds a slot for nothing.
 *   - address-full: an address that is limited (not loopback, unless `limitLoopback`) holds more
 *     than `connectionsPerAddressMax` connections. The worst untrusted connection of that address
 *     goes; if all of them are trusted, the new one does.
 *   - full: untrusted connections may use only `connectionsMax - reserved` slots, where reserved
 *     = floor(connectionsMax × reservedShare); past that the worst untrusted one goes. And when
 *     the whole table is past `connectionsMax`, the worst untrusted one goes, else (all trusted)
 *     the new one. A trusted connection is never closed to make room.
 * "Worst" is the lowest score, then the oldest (it has had the longest to prove itself and has
 * not). A new connection is the newest, so among equals an older one goes first: a flood of fresh
 * identities churns through the untrusted share, and an honest newcomer gets in and has
 * (untrusted share ÷ flood rate) to swap its hello — while the reserved share stays untouched.
 *
 * The table never holds more than `connectionsMax` connections after an input returns: a close
 * decision removes the record at once (the shell's later `handleClose` for it is ignored).
 *
 * COST. handleOpen scans the table once or twice for the worst candidate, and handleTick and
 * nextTimeoutMs scan it once: O(connectionsMax) ≤ 10,000 per call, and a call happens per
 * connection opened (which libp2p rate-limits per address) or per tick (about once a second).
 *
 * CLOCK. The machine keeps the largest `nowMs` it has seen, so time never runs backwards inside.
 */
import { ConfigError, assert } from '../../model/errors.ts'
import {
  ADMISSION_DEFAULTS, DURATION_MS_LIMIT, CONNECTIONS_MAX_LIMIT, CONNECTIONS_MAX_MIN, RESERVED_SHARE_MAX, RESERVED_SHARE_MIN
} from './constants.ts'
import type { Admission, AdmissionCounts, AdmissionOptions, CloseOutput, CloseReason, ConnectionInfo } from './index.ts'

interface ConnectionRecord {
  id: string
  peer: PeerRecord
  /** Undefined when the address is exempt from the per-address limit (or has none). */
  limitedAddress: string | undefined
  openedMs: number
  lastActiveMs: number
}

interface PeerRecord {
  peerId: string
  proven: boolean
  score: number
  connections: Set<ConnectionRecord>
}

interface Settings {
  connectionsMax: number
  untrustedMax: number
  helloDeadlineMs: number
  idleMs: number
  connectionsPerAddressMax: number
  limitLoopback: boolean
}

function trusted (peer: PeerRecord): boolean {
  return peer.proven && peer.score >= 0
}

function validate (options: AdmissionOptions): Settings {
  const o = { ...ADMISSION_DEFAULTS, ...options }
  const integer = (field: keyof AdmissionOptions, value: number, min: number, max: number): void => {
    if (!Number.isSafeInteger(value) || value < min || value > max) throw new ConfigError(field, `must be an integer between ${min} and ${max}, got ${String(value)}`)
  }
  integer('connectionsMax', o.connectionsMax, CONNECTIONS_MAX_MIN, CONNECTIONS_MAX_LIMIT)
  integer('connectionsPerAddressMax', o.connectionsPerAddressMax, 1, CONNECTIONS_MAX_LIMIT)
  integer('helloDeadlineMs', o.helloDeadlineMs, 1, DURATION_MS_LIMIT)
  integer('idleMs', o.idleMs, 1, DURATION_MS_LIMIT)
  if (typeof o.reservedShare !== 'number' || !(o.reservedShare >= RESERVED_SHARE_MIN && o.reservedShare <= RESERVED_SHARE_MAX)) {
    throw new ConfigError('reservedShare', `must be a number between ${RESERVED_SHARE_MIN} and ${RESERVED_SHARE_MAX}, got ${String(o.reservedShare)}`)
  }
  if (typeof o.limitLoopback !== 'boolean') throw new ConfigError('limitLoopback', 'must be true or false')
  const reserved = Math.floor(o.connectionsMax * o.reservedShare)
  return {
    connectionsMax: o.connectionsMax,
    untrustedMax: o.connectionsMax - reserved,
    helloDeadlineMs: o.helloDeadlineMs,
    idleMs: o.idleMs,
    connectionsPerAddressMax: o.connectionsPerAddressMax,
    limitLoopback: o.limitLoopback
  }
}

export class AdmissionMachine implements Admission {
  private readonly settings: Settings
  /** Open connections in the order they opened (Map order), so a scan meets the oldest first. */
  private readonly connections = new Map<string, ConnectionRecord>()
  private readonly peers = new Map<string, PeerRecord>()
  /** Connections per limited address; an address with none has no entry. */
  private readonly byAddress = new Map<string, number>()
  private trustedCount = 0
  private readonly outputs: CloseOutput[] = []
  private clockMs = 0

  constructor (options: AdmissionOptions) {
    this.settings = validate(options)
  }

  handleOpen (connection: ConnectionInfo, peerState: { proven: boolean, score: number }, nowMs: number): void {
    assert(!this.connections.has(connection.id), `connection ${connection.id} opened twice`)
    assert(Number.isFinite(peerState.score), 'score must be a finite number')
    const now = this.clock(nowMs)
    let peer = this.peers.get(connection.peerId)
    if (peer === undefined) {
      peer = { peerId: connection.peerId, proven: false, score: 0, connections: new Set() }
      this.peers.set(connection.peerId, peer)
    }
    // Proof sticks to the peer; the score is the stored one, which is the newest.
    this.setPeerState(peer, peer.proven || peerState.proven, peerState.score)
    const limitedAddress = connection.address !== undefined && (this.settings.limitLoopback || !connection.loopback) ? connection.address : undefined
    const record: ConnectionRecord = { id: connection.id, peer, limitedAddress, openedMs: now, lastActiveMs: now }
    this.connections.set(record.id, record)
    peer.connections.add(record)
    if (trusted(peer)) this.trustedCount++
    if (limitedAddress !== undefined) this.byAddress.set(limitedAddress, (this.byAddress.get(limitedAddress) ?? 0) + 1)

    if (limitedAddress !== undefined && this.byAddress.get(limitedAddress)! > this.settings.connectionsPerAddressMax) {
      this.close(this.worstUntrusted(limitedAddress) ?? record, 'address-full')
    }
    if (this.connections.has(record.id) && !trusted(peer) && this.untrustedCount() > this.settings.untrustedMax) {
      this.close(this.worstUntrusted(undefined) ?? record, 'full')
    }
    if (this.connections.has(record.id) && this.connections.size > this.settings.connectionsMax) {
      this.close(this.worstUntrusted(undefined) ?? record, 'full')
    }
    assert(this.connections.size <= this.settings.connectionsMax, 'the table holds at most connectionsMax connections')
  }

  handleClose (id: string): void {
    const record = this.connections.get(id)
    if (record !== undefined) this.remove(record)
  }

  handleProven (peerId: string): void {
    const peer = this.peers.get(peerId)
    if (peer !== undefined) this.setPeerState(peer, true, peer.score)
  }

  handleScore (peerId: string, score: number): void {
    assert(Number.isFinite(score), 'score must be a finite number')
    const peer = this.peers.get(peerId)
    if (peer !== undefined) this.setPeerState(peer, peer.proven, score)
  }

  handleStreams (id: string, streams: number, nowMs: number): void {
    const now = this.clock(nowMs)
    const record = this.connections.get(id)
    if (record !== undefined && streams > 0) record.lastActiveMs = now
  }

  handleTick (nowMs: number): void {
    const now = this.clock(nowMs)
    for (const record of [...this.connections.values()]) {
      if (!record.peer.proven && now >= record.openedMs + this.settings.helloDeadlineMs) this.close(record, 'hello-deadline')
      else if (now >= record.lastActiveMs + this.settings.idleMs) this.close(record, 'idle')
    }
  }

  poll (): CloseOutput | undefined {
    return this.outputs.shift()
  }

  nextTimeoutMs (): number | undefined {
    let next: number | undefined
    for (const record of this.connections.values()) {
      const idleAt = record.lastActiveMs + this.settings.idleMs
      const due = record.peer.proven ? idleAt : Math.min(idleAt, record.openedMs + this.settings.helloDeadlineMs)
      if (next === undefined || due < next) next = due
    }
    return next
  }

  admits (address: string | undefined, loopback: boolean): boolean {
    const limited = address !== undefined && (this.settings.limitLoopback || !loopback)
    if (limited && (this.byAddress.get(address) ?? 0) >= this.settings.connectionsPerAddressMax && this.worstUntrusted(address) === undefined) return false
    if (this.connections.size >= this.settings.connectionsMax && this.worstUntrusted(undefined) === undefined) return false
    return true
  }

  counts (): AdmissionCounts {
    return { total: this.connections.size, trusted: this.trustedCount, untrusted: this.untrustedCount() }
  }

  private untrustedCount (): number {
    return this.connections.size - this.trustedCount
  }

  /** Lowest score, then oldest, among untrusted connections (of one address, if given). */
  private worstUntrusted (address: string | undefined): ConnectionRecord | undefined {
    let worst: ConnectionRecord | undefined
    for (const record of this.connections.values()) {
      if (trusted(record.peer)) continue
      if (address !== undefined && record.limitedAddress !== address) continue
      // Map order is open order, so the first of equal scores is the oldest.
      if (worst === undefined || record.peer.score < worst.peer.score) worst = record
    }
    return worst
  }

  private close (record: ConnectionRecord, reason: CloseReason): void {
    this.remove(record)
    this.outputs.push({ type: 'close', id: record.id, peerId: record.peer.peerId, reason })
    // Each input closes at most a table's worth; more means the shell is not draining poll().
    assert(this.outputs.length <= 2 * this.settings.connectionsMax + 16, 'the shell must drain poll() after every input')
  }

  private remove (record: ConnectionRecord): void {
    const { peer } = record
    this.connections.delete(record.id)
    peer.connections.delete(record)
    if (trusted(peer)) this.trustedCount--
    if (record.limitedAddress !== undefined) {
      const left = this.byAddress.get(record.limitedAddress)! - 1
      if (left === 0) this.byAddress.delete(record.limitedAddress)
      else this.byAddress.set(record.limitedAddress, left)
    }
    if (peer.connections.size === 0) this.peers.delete(peer.peerId)
  }

  private setPeerState (peer: PeerRecord, proven: boolean, score: number): void {
    const before = trusted(peer)
    peer.proven = proven
    peer.score = score
    const after = trusted(peer)
    if (before !== after) this.trustedCount += (after ? 1 : -1) * peer.connections.size
  }

  private clock (nowMs: number): number {
    assert(Number.isFinite(nowMs), 'nowMs must be a finite number')
    if (nowMs > this.clockMs) this.clockMs = nowMs
    return this.clockMs
  }
}
