/**
 * What a peer remembers about other peers: the last known membership view (so a restarted peer
 * can redial the peers it knew), a bounded history of membership transitions and misbehaviour
 * reports (for SQL over a peer's history), and each peer's reputation score.
 *
 * Time comes in as arguments (`lastSeenMs`, `atMs`), never from a clock read here, so the
 * protocol layer decides what "now" is.
 */
import { InvalidInputError, NotFoundError } from '../model/errors.ts'
import type { Database } from './database.ts'

/**
 * Rows kept in `peer_events`; the oldest are deleted as new ones arrive. A row is about 150
 * bytes, so 100k rows cap the table near 15 MB — days of churn on a network of hundreds of peers.
 */
export const peerEventsMaxDefault = 100_000
/**
 * Rows kept in `peers`; the least recently seen are deleted beyond it. A Kademlia routing table
 * holds at most k=20 peers in each of 256 buckets (about 5k), so 10k covers every peer worth
 * redialling after a restart while keeping an open network's churn from growing the table forever.
 */
export const peersMaxDefault = 10_000
/**
 * Addresses stored per peer. libp2p peers typically announce a handful (TCP and WebSockets on
 * IPv4 and IPv6, a few relay circuits); 64 leaves room while bounding what a peer can make us store.
 */
export const peerAddrsMax = 64
/** Characters kept of an event's `detail`; longer text is cut. Enough for an error message and its context. */
export const peerEventDetailCharsMax = 1_024
/**
 * Scores are clamped to ±1,000,000 so that any sequence of adjustments stays far inside the safe
 * integer range. What a score means is the placement policy's business, not the store's.
 */
export const peerScoreMax = 1_000_000
export const peerScoreMin = -peerScoreMax

export interface PeerRepoOptions {
  /** Default `peerEventsMaxDefault`. */
  peerEventsMax?: number
  /** Default `peersMaxDefault`. */
  peersMax?: number
}

/** What membership knows about a peer. Optional fields are unknown until the peer gossips them. */
export interface PeerUpsert {
  peerId: string
  /** Membership state, e.g. alive, suspect, dead, left. */
  state: string
  /** Multiaddr strings. At most `peerAddrsMax`. */
  addrs: string[]
  version?: string
  incarnation?: number
  slotsFree?: number
  slotsMax?: number
  queueLength?: number
  /** When this peer was last heard from. Also its first-seen time if it is new. */
  lastSeenMs: number
}

export interface PeerRow {
  peerId: string
  state: string
  addrs: string[]
  version?: string
  incarnation?: number
  slotsFree?: number
  slotsMax?: number
  queueLength?: number
  firstSeenMs: number
  lastSeenMs: number
  score: number
}

export interface PeerEvent {
  id: number
  peerId: string
  type: string
  atMs: number
  detail?: string
}

export interface PeerRepo {
  /** Insert or update a peer. Keeps its score and first-seen time. */
  upsertPeer(peer: PeerUpsert): void
  /** Peers, most recently seen first. */
  listPeers(options?: { limit?: number }): PeerRow[]
  getPeer(peerId: string): PeerRow | undefined
  /** Append to the history; prunes the oldest rows beyond `peerEventsMax`. Returns the event id. */
  recordPeerEvent(peerId: string, type: string, atMs: number, detail?: string): number
  /** Add `delta` to a known peer's score (clamped to the score bounds) and return the new score. */
  adjustScore(peerId: string, delta: number): number
  /** The newest `limit` events, newest first, optionally for one peer. */
  recentPeerEvents(limit: number, options?: { peerId?: string }): PeerEvent[]
}

interface PeerSqlRow {
  peer_id: string
  state: string
  addrs: string
  version: string | null
  incarnation: number | null
  slots_free: number | null
  slots_max: number | null
  queue_length: number | null
  first_seen_ms: number
  last_seen_ms: number
  score: number
}

interface PeerEventSqlRow {
  id: number
  peer_id: string
  type: string
  at_ms: number
  detail: string | null
}

export function createPeerRepo (db: Database, options: PeerRepoOptions = {}): PeerRepo {
  const peerEventsMax = checkCount('peerEventsMax', options.peerEventsMax ?? peerEventsMaxDefault)
  const peersMax = checkCount('peersMax', options.peersMax ?? peersMaxDefault)
  const sql = prepareStatements(db.sqlite)

  return {
    upsertPeer (peer) {
      checkPeerUpsert(peer)
      db.transaction(() => {
        const isNew = sql.selectPeerExists.get(peer.peerId) === undefined
        sql.upsert.run({
          peerId: peer.peerId,
          state: peer.state,
          addrs: JSON.stringify(peer.addrs),
          version: peer.version ?? null,
          incarnation: peer.incarnation ?? null,
          slotsFree: peer.slotsFree ?? null,
          slotsMax: peer.slotsMax ?? null,
          queueLength: peer.queueLength ?? null,
          lastSeenMs: peer.lastSeenMs
        })
        // Only an insert can push the table past its limit; updates skip the count.
        if (isNew) sql.prunePeers.run(peersMax)
      })
    },

    listPeers ({ limit = peersMax } = {}) {
      checkLimit('limit', limit, peersMax)
      return (sql.selectPeers.all(limit) as unknown as PeerSqlRow[]).map(peerFromSql)
    },

    getPeer (peerId) {
      const row = sql.selectPeer.get(peerId) as unknown as PeerSqlRow | undefined
      return row === undefined ? undefined : peerFromSql(row)
    },

    recordPeerEvent (peerId, type, atMs, detail) {
      checkNonEmpty('peerId', peerId)
      checkNonEmpty('type', type)
      checkMs('atMs', atMs)
      const detailKept = detail === undefined || detail.length <= peerEventDetailCharsMax
        ? detail
        : detail.slice(0, peerEventDetailCharsMax - 1) + '…'
      return db.transaction(() => {
        const { lastInsertRowid } = sql.insertEvent.run(peerId, type, atMs, detailKept ?? null)
        const id = Number(lastInsertRowid)
        sql.pruneEvents.run(id - peerEventsMax)
        return id
      })
    },

    adjustScore (peerId, delta) {
      if (!Number.isSafeInteger(delta)) throw new InvalidInputError(`score delta must be an integer, got ${delta}`)
      return db.transaction(() => {
        const row = sql.selectScore.get(peerId) as { score: number } | undefined
        if (row === undefined) {
          throw new NotFoundError(`peer ${peerId} is not known, so its score cannot be adjusted`, {
            hint: 'record the peer with upsertPeer before scoring it'
          })
        }
        const score = Math.min(peerScoreMax, Math.max(peerScoreMin, row.score + delta))
        sql.updateScore.run(score, peerId)
        return score
      })
    },

    recentPeerEvents (limit, { peerId } = {}) {
      checkLimit('limit', limit, peerEventsMax)
      const rows = peerId === undefined ? sql.selectEvents.all(limit) : sql.selectPeerEvents.all(peerId, limit)
      return (rows as unknown as PeerEventSqlRow[]).map(eventFromSql)
    }
  }
}

/** The repo's statements, prepared once per database. */
function prepareStatements (sqlite: Database['sqlite']) {
  return {
    selectPeerExists: sqlite.prepare('SELECT 1 FROM peers WHERE peer_id = ?'),
    upsert: sqlite.prepare(`
      INSERT INTO peers (peer_id, state, addrs, version, incarnation, slots_free, slots_max, queue_length, first_seen_ms, last_seen_ms)
      VALUES (:peerId, :state, :addrs, :version, :incarnation, :slotsFree, :slotsMax, :queueLength, :lastSeenMs, :lastSeenMs)
      ON CONFLICT (peer_id) DO UPDATE SET
        state = excluded.state, addrs = excluded.addrs, version = excluded.version,
        incarnation = excluded.incarnation, slots_free = excluded.slots_free, slots_max = excluded.slots_max,
        queue_length = excluded.queue_length, last_seen_ms = excluded.last_seen_ms`),
    prunePeers: sqlite.prepare(`
      DELETE FROM peers WHERE peer_id IN (
        SELECT peer_id FROM peers ORDER BY last_seen_ms ASC, peer_id ASC
        LIMIT max(0, (SELECT count(*) FROM peers) - ?))`),
    selectPeers: sqlite.prepare('SELECT * FROM peers ORDER BY last_seen_ms DESC, peer_id ASC LIMIT ?'),
    selectPeer: sqlite.prepare('SELECT * FROM peers WHERE peer_id = ?'),
    insertEvent: sqlite.prepare('INSERT INTO peer_events (peer_id, type, at_ms, detail) VALUES (?, ?, ?, ?)'),
    // Ids only grow (rowid is max + 1 and only the oldest rows are ever deleted), so the newest
    // `peerEventsMax` rows are those with id > max(id) - peerEventsMax.
    pruneEvents: sqlite.prepare('DELETE FROM peer_events WHERE id <= ?'),
    selectEvents: sqlite.prepare('SELECT * FROM peer_events ORDER BY id DESC LIMIT ?'),
    selectPeerEvents: sqlite.prepare('SELECT * FROM peer_events WHERE peer_id = ? ORDER BY id DESC LIMIT ?'),
    selectScore: sqlite.prepare('SELECT score FROM peers WHERE peer_id = ?'),
    updateScore: sqlite.prepare('UPDATE peers SET score = ? WHERE peer_id = ?')
  }
}

function peerFromSql (row: PeerSqlRow): PeerRow {
  const peer: PeerRow = {
    peerId: row.peer_id,
    state: row.state,
    addrs: JSON.parse(row.addrs) as string[],
    firstSeenMs: row.first_seen_ms,
    lastSeenMs: row.last_seen_ms,
    score: row.score
  }
  if (row.version !== null) peer.version = row.version
  if (row.incarnation !== null) peer.incarnation = row.incarnation
  if (row.slots_free !== null) peer.slotsFree = row.slots_free
  if (row.slots_max !== null) peer.slotsMax = row.slots_max
  if (row.queue_length !== null) peer.queueLength = row.queue_length
  return peer
}

function eventFromSql (row: PeerEventSqlRow): PeerEvent {
  const event: PeerEvent = { id: row.id, peerId: row.peer_id, type: row.type, atMs: row.at_ms }
  if (row.detail !== null) event.detail = row.detail
  return event
}

function checkPeerUpsert (peer: PeerUpsert): void {
  checkNonEmpty('peerId', peer.peerId)
  checkNonEmpty('state', peer.state)
  if (!Array.isArray(peer.addrs) || !peer.addrs.every(addr => typeof addr === 'string')) {
    throw new InvalidInputError(`addrs of peer ${peer.peerId} must be an array of multiaddr strings`)
  }
  if (peer.addrs.length > peerAddrsMax) {
    throw new InvalidInputError(`peer ${peer.peerId} has ${peer.addrs.length} addresses, more than the limit of ${peerAddrsMax}`, {
      hint: 'keep the most useful addresses (direct before relayed) and drop the rest'
    })
  }
  checkMs('lastSeenMs', peer.lastSeenMs)
  for (const field of ['incarnation', 'slotsFree', 'slotsMax', 'queueLength'] as const) {
    const value = peer[field]
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
      throw new InvalidInputError(`${field} of peer ${peer.peerId} must be a non-negative integer, got ${value}`)
    }
  }
}

function checkNonEmpty (field: string, value: string): void {
  if (typeof value !== 'string' || value.length === 0) throw new InvalidInputError(`${field} must be a non-empty string`)
}

function checkMs (field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidInputError(`${field} must be a non-negative integer of milliseconds, got ${value}`)
}

function checkCount (field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new InvalidInputError(`${field} must be a positive integer, got ${value}`)
  return value
}

function checkLimit (field: string, value: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new InvalidInputError(`${field} must be an integer from 0 to ${max}, got ${value}`)
  }
}
