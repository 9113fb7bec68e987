/**
 * Which membership events mean a peer lost the work it held, for `Scheduler.handlePeerGone`:
 *  - `peer:gone` (silent past goneAfterMs) and `peer:removed`;
 *  - `peer:alive` with a new incarnation: the peer restarted, and whatever it ran in its previous
 *    life is lost — even if it came back so fast that it was never suspected.
 * A `peer:alive` that only ends a suspicion (same incarnation) loses nothing: the copies it runs
 * go on. Membership does not say which kind of `peer:alive` it is, so this remembers the
 * incarnation of each peer it has seen (one number per entry of membership's bounded table).
 */
import type { MembershipEvent } from '../membership/index.ts'

export class PeerLossTracker {
  private readonly incarnations = new Map<string, number>()
  private readonly incarnationOf: (peerId: string) => number | undefined

  /** `incarnationOf`: the peer's current incarnation in membership (`membership.get(id)?.incarnation`). */
  constructor (incarnationOf: (peerId: string) => number | undefined) {
    this.incarnationOf = incarnationOf
  }

  /** True if the event means the peer's work is lost. */
  handleEvent (event: MembershipEvent): boolean {
    const { peerId } = event
    switch (event.type) {
      case 'peer:gone':
        return true
      case 'peer:removed':
        this.incarnations.delete(peerId)
        return true
      case 'peer:joined':
      case 'peer:alive': {
        const incarnation = this.incarnationOf(peerId)
        const before = this.incarnations.get(peerId)
        if (incarnation !== undefined) this.incarnations.set(peerId, incarnation)
        return event.type === 'peer:alive' && before !== undefined && incarnation !== undefined && incarnation !== before
      }
      case 'peer:suspect':
        return false
    }
  }
}
