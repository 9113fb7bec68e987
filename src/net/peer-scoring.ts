/**
 * What happens to a peer that breaks a protocol (docs/ARCHITECTURE.md): the offence is written
 * down with its protocol and reason, the peer's score drops by `VIOLATION_SCORE`, connection
 * admission hears the new score (an offender loses its claim on the reserved half of the
 * connection table), the blocklist blocks it for `BLOCK_MS` once the score reaches
 * `BLOCK_SCORE_MAX`, and its connections are closed. The numbers are the admission protocol's
 * (src/protocol/admission/constants.ts); this is the shell that applies them.
 *
 * Every service reports offences through the one `handleViolation`, so the policy is in one place.
 */
import { BLOCK_MS, VIOLATION_SCORE } from '../protocol/admission/index.ts'
import type { Logger } from '../model/log.ts'
import type { PeerBlocklist } from '../protocol/admission/index.ts'
import type { PeerRepo } from '../store/index.ts'
import type { PeerId } from '@libp2p/interface'

export interface PeerScoringComponents {
  peers: Pick<PeerRepo, 'getPeer' | 'upsertPeer' | 'adjustScore' | 'recordPeerEvent'>
  blocklist: Pick<PeerBlocklist, 'handleScore'>
  /** The peer's score changed (connection admission, AdmissionService.handleScore). */
  onScore: (peerId: string, score: number) => void
  /** Close every connection to the peer. */
  hangUp: (peer: PeerId) => Promise<void>
  log: Logger
  now: () => number
}

export class PeerScoring {
  private readonly components: PeerScoringComponents

  constructor (components: PeerScoringComponents) {
    this.components = components
  }

  /** `remote` broke `protocol` with `err`: record, score, maybe block, and disconnect it. */
  handleViolation (remote: PeerId, protocol: string, err: Error): void {
    const { peers, blocklist, log, now } = this.components
    const id = remote.toString()
    const atMs = now()
    // A peer may offend before membership ever heard of it: it needs a row to hold its score.
    if (peers.getPeer(id) === undefined) peers.upsertPeer({ peerId: id, state: 'unknown', addrs: [], lastSeenMs: atMs })
    const score = peers.adjustScore(id, VIOLATION_SCORE)
    peers.recordPeerEvent(id, 'violation', atMs, `${protocol}: ${err.message}`)
    log.warn('peer broke protocol; disconnecting', { peer: id, protocol, error: err.message, score })
    this.components.onScore(id, score)
    if (blocklist.handleScore(id, score, atMs)) log.warn('peer blocked', { peer: id, forMs: BLOCK_MS })
    this.components.hangUp(remote).catch(() => {})
  }
}
