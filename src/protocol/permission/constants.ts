/**
 * The permission machine's rules and limits. Why each:
 *
 * ROLES. `worker` runs tasks; `client` starts runs and is never given a task; `admin` starts runs
 * too (an operator at the admin's machine). Every role may exchange membership, gossip, functions
 * and blobs: a client needs the function code and blobs of its own runs, and a worker those of its
 * tasks. `ACTIONS_BY_ROLE` is the whole table.
 *
 * DELEGATED ADMINS. The founding key (the network id is networkIdOf it) signs certificates; a member
 * whose founder-signed certificate has role `admin` may sign certificates and revocations too, with
 * its peer key. Depth 1 only: a certificate signed by a delegated admin never makes its holder an
 * issuer, role `admin` or not. A chain would make "who is cut off when this key is revoked" a walk
 * of unknown depth, and every level could mint issuers that fill the revocation set; with one level
 * a revoked admin cuts off exactly the certificates it signed, found in one step.
 *
 * LIMITS.
 * - `CERTIFICATES_MAX` 10,000 members: ten times membership's table of 1,024 peers. Only admin keys
 *   can mint certificates, so an outsider cannot fill it; past it a new member is refused `full`
 *   (evicting a valid member would cut it off without a revocation).
 * - `REVOCATIONS_MAX` 10,000: one per member ever revoked, over the longest certificate's life.
 *   A revocation matches only certificates with notBefore ≤ its atMs (see ./permission.ts), and no
 *   certificate lives longer than CERTIFICATE_VALIDITY_MS_MAX (src/wire/certificate-codec.ts), so
 *   from atMs + CERTIFICATE_VALIDITY_MS_MAX on it can match nothing not already expired: then it
 *   may be dropped to make room (the oldest first); a delegated admin's may be dropped for the
 *   founder's sooner (./permission.ts BOUNDING REVOCATIONS).
 * - `DELEGATED_REVOCATIONS_MAX` 1,000 per delegated admin (below).
 * - `CLOCK_SKEW_MS` 60 s: a certificate fresh from an admin whose clock runs a little ahead is
 *   accepted; expiry is never stretched (an expired certificate is treated like a revoked one).
 */
import type { Action, Role } from './index.ts'

export const CERTIFICATES_MAX = 10_000
export const REVOCATIONS_MAX = 10_000
/** Revocations held per delegated admin: a tenth of REVOCATIONS_MAX, so one admin (or one stolen
 *  admin key) cannot crowd out the others' revocations: ten admins at their cap fill the set, and
 *  the founder's still evict theirs (./permission.ts SCOPE). A thousand members revoked by one admin
 *  within a certificate's life is far past any real need. One more is refused `full`. */
export const DELEGATED_REVOCATIONS_MAX = 1_000
export const CLOCK_SKEW_MS = 60_000
/** Longest life of a certificate (notAfter − notBefore): a year and a day; renew yearly. The
 *  revocation set's bound rests on it (REVOCATIONS_MAX above). */
export const CERTIFICATE_VALIDITY_MS_MAX = 366 * 24 * 60 * 60_000

export const ROLES: readonly Role[] = Object.freeze(['admin', 'client', 'worker'])
export const ACTIONS: readonly Action[] = Object.freeze(['membership', 'gossip', 'task', 'function', 'blob', 'run'])

const SHARED: readonly Action[] = ['membership', 'gossip', 'function', 'blob']
export const ACTIONS_BY_ROLE: Readonly<Record<Role, readonly Action[]>> = Object.freeze({
  worker: [...SHARED, 'task'],
  client: [...SHARED, 'run'],
  admin: [...SHARED, 'run']
})

/** Why a certificate is refused. `full`: CERTIFICATES_MAX members already hold one.
 *  `serial-in-use`: another member holds a certificate with this serial (serials are unique per
 *  network; a clash is an admin's mistake, and revoking one serial must not cut off two peers). */
export type CertificateRefusal = 'bad-signature' | 'wrong-network' | 'unknown-issuer' | 'not-yet-valid' | 'expired' | 'revoked' | 'full' | 'serial-in-use'
/** Why a revocation is refused. `not-yet-valid`: a delegated admin's revocation dated past now +
 *  CLOCK_SKEW_MS (dated far ahead it would bar the peer's re-admission for as long: a delegated
 *  key may take rights away now, not for years to come). `obsolete`: every certificate it could match has expired (it
 *  would be dropped at once); `full`: REVOCATIONS_MAX revocations still matter (none may be
 *  displaced: see ./permission.ts BOUNDING REVOCATIONS), or the delegated admin that signed it
 *  already holds DELEGATED_REVOCATIONS_MAX. */
export type RevocationRefusal = 'bad-signature' | 'wrong-network' | 'unknown-issuer' | 'obsolete' | 'full' | 'not-yet-valid'
