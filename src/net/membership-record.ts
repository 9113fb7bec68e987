/**
 * What a peer keeps of its membership view across restarts: each transition as a peer event, and
 * the peer's latest entry (state, addresses, capacity) as its row (src/store/peer-repo.ts). On
 * the next start the rows give the peers worth redialing before gossip brings the rest.
 */
import type { Membership, MembershipEvent } from '../protocol/membership/index.ts'
import type { PeerRepo } from '../store/index.ts'

export interface MembershipRecordComponents {
  peers: Pick<PeerRepo, 'recordPeerEvent' | 'upsertPeer' | 'listPeers'>
  membership: Pick<Membership, 'get'>
}

/** Write one membership transition and the peer's entry as it stands after it. */
export function recordMembershipEvent ({ peers, membership }: MembershipRecordComponents, event: MembershipEvent): void {
  peers.recordPeerEvent(event.peerId, event.type, event.atMs)
  const entry = membership.get(event.peerId)
  if (entry === undefined) return
  peers.upsertPeer({
    peerId: entry.peerId,
    state: entry.state,
    addrs: entry.addrs,
    version: entry.version,
    incarnation: entry.incarnation,
    slotsFree: entry.capacity.slotsFree,
    slotsMax: entry.capacity.slotsMax,
    queueLength: entry.capacity.queueLength,
    lastSeenMs: entry.lastSeenMs
  })
}

/** Peers from the last run worth redialing: not gone, with an address, at most `max`. */
export function redialCandidates ({ peers }: Pick<MembershipRecordComponents, 'peers'>, max: number): Array<{ peerId: string, addrs: string[] }> {
  return peers.listPeers()
    .filter(p => p.state !== 'gone' && p.addrs.length > 0)
    .slice(0, max)
    .map(p => ({ peerId: p.peerId, addrs: p.addrs }))
}
