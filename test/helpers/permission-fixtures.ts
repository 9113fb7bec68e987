/**
 * Certificates and revocations for unit tests of the permission machine with delegated admins.
 * Signatures are not checked by the machine (the shell passes `signatureValid`), so these carry a
 * placeholder byte; each peer's key as an issuer string is its one-letter name repeated, and
 * `machine()` maps those keys back to peers as the shell does with real keys.
 */
import { createPermission } from '../../src/protocol/permission/index.ts'
import type { Certificate, Permission, PermissionOptionsClosed, Revocation, Role } from '../../src/protocol/permission/index.ts'

export const NET = 'rz-aaaaaaaaaaaaaaaaaaaaaaaaaa'
export const FOUNDER = 'F'.repeat(43)
export const DAY = 86_400_000

/** A peer's key as an issuer string. */
export const keyOf = (peer: string): string => peer.repeat(43)

/** A founder-signed certificate (fields overridden by `over`). */
export function cert (peer: string, roles: Role[], over: Partial<Certificate> = {}): Certificate {
  return { network: NET, peer, roles, notBefore: 0, notAfter: 10 * DAY, serial: `s-${peer}`, issuer: FOUNDER, signature: new Uint8Array([1]), ...over }
}

/** A certificate signed by member `by` with its peer key. */
export function signed (by: string, peer: string, roles: Role[], over: Partial<Certificate> = {}): Certificate {
  return cert(peer, roles, { issuer: keyOf(by), serial: `s-${by}-${peer}`, ...over })
}

export function rev (target: { serial: string } | { peer: string }, atMs: number, issuer = FOUNDER): Revocation {
  return { network: NET, ...target, atMs, issuer, signature: new Uint8Array([2]) }
}

/** A permissioned machine founded by FOUNDER that knows the keys of `peers` (one-letter names). */
export function machine (peers: string[], over: Partial<Omit<PermissionOptionsClosed, 'mode'>> = {}): Permission {
  const byKey = new Map(peers.map(p => [keyOf(p), p]))
  return createPermission({ mode: 'permissioned', networkId: NET, issuers: [FOUNDER], issuerPeerId: (issuer) => byKey.get(issuer), ...over })
}
