/**
 * The permission machine: who may do what in a permissioned network. The network's admin keys
 * (issuers) sign membership certificates (peer, roles, validity window, serial) and revocations;
 * this machine, given those already decoded (src/wire/certificate-codec.ts) and whether their
 * signatures verified, keeps the newest valid certificate per member and the revocation set, and
 * answers `allows(peer, action, now)`. An open network (`mode: 'open'`) allows everything, so the
 * shell has one code path. Rules and limits in ./constants.ts; the machine in ./permission.ts.
 *
 * Sans-I/O (STYLE.md §4): the shell loads the stored certificates and revocations at creation,
 * feeds inputs, drains `poll()` after every call — writes each `persist-*`, deletes each
 * `forget-*`, closes the connections of a `revoked` or `expired` peer and reschedules its tasks —
 * and calls `handleTimeout` at `nextTimeoutMs()`. Signatures are checked by the shell (crypto is
 * I/O here): it passes `signatureValid`.
 */
import { PermissionMachine } from './permission.ts'
import type { CertificateRefusal, RevocationRefusal } from './constants.ts'

export type Role = 'worker' | 'client' | 'admin'
export type Action = 'membership' | 'gossip' | 'task' | 'function' | 'blob' | 'run'

/** A membership certificate, signed by `issuer` over certificateSigningBytes. */
export interface Certificate {
  /** The network id (networkIdOf the founding admin key). */
  network: string
  /** The member's peer id. */
  peer: string
  /** Sorted, unique, non-empty. */
  roles: Role[]
  notBefore: number
  notAfter: number
  serial: string
  /** The signing admin's raw Ed25519 public key, base64url without padding. */
  issuer: string
  signature: Uint8Array
}

/** A revocation, signed by `issuer` over revocationSigningBytes; names a serial or a peer, not both. */
export interface Revocation {
  network: string
  serial?: string
  peer?: string
  atMs: number
  issuer: string
  signature: Uint8Array
}

export type PermissionOutput =
  | { type: 'persist-certificate', certificate: Certificate }
  /** The member's certificate was dropped (expired, revoked or replaced): delete it from storage. */
  | { type: 'forget-certificate', peerId: string, serial: string }
  | { type: 'persist-revocation', revocation: Revocation }
  /** Dropped to make room once it could match nothing unexpired: delete it from storage. */
  | { type: 'forget-revocation', revocation: Revocation }
  /** A peer that held a certificate now revoked: close its connections, reschedule its tasks. */
  | { type: 'revoked', peerId: string }
  /** A peer whose certificate ran out: likewise. */
  | { type: 'expired', peerId: string }

export interface PermissionOptionsOpen { mode: 'open' }
export interface PermissionOptionsClosed {
  mode: 'permissioned'
  networkId: string
  /** The founding admin public keys (same encoding as Certificate.issuer). */
  issuers: readonly string[]
  /** The peer id whose key an issuer string is, or undefined if it is not a peer key. Pure; the
   *  shell derives it from the raw key (src/net/certificate-signatures.ts). Without it only the
   *  founding keys sign; with it, so do delegated admins (see ./permission.ts DELEGATION). */
  issuerPeerId?: (issuer: string) => string | undefined
  /** Stored certificates (signatures checked when they were admitted). */
  certificates?: readonly Certificate[]
  revocations?: readonly Revocation[]
  /** Default CERTIFICATES_MAX. */
  certificatesMax?: number
  /** Default REVOCATIONS_MAX. */
  revocationsMax?: number
}
export type PermissionOptions = PermissionOptionsOpen | PermissionOptionsClosed

export interface PermissionCounts { members: number, revocations: number }

export interface Permission {
  readonly mode: 'open' | 'permissioned'
  handleCertificate (cert: Certificate, signatureValid: boolean, nowMs: number): 'admitted' | CertificateRefusal
  handleRevocation (rev: Revocation, signatureValid: boolean, nowMs: number): 'accepted' | 'duplicate' | RevocationRefusal
  /** Open: always true. Permissioned: the peer holds a certificate valid at nowMs whose roles allow the action. */
  allows (peerId: string, action: Action, nowMs: number): boolean
  /** The roles of the peer's held certificate; undefined if it holds none (open mode: undefined). */
  role (peerId: string): readonly Role[] | undefined
  /** The delegated admin that signed the peer's held certificate; undefined when a founding key did (or none is held). */
  issuedBy (peerId: string): string | undefined
  /** Drops certificates whose notAfter ≤ nowMs — [expired]. */
  handleTimeout (nowMs: number): void
  /** The earliest notAfter held; undefined when none (or open). */
  nextTimeoutMs (): number | undefined
  poll (): PermissionOutput | undefined
  /** Copies of the held certificates (O(members): for status and tests). */
  certificates (): Certificate[]
  revocations (): Revocation[]
  counts (): PermissionCounts
  checkInvariants (): void
}

/** Validates the options (ConfigError naming the field) and returns the machine. */
export function createPermission (options: PermissionOptions): Permission {
  return new PermissionMachine(options)
}

export type { CertificateRefusal, RevocationRefusal } from './constants.ts'
export {
  ACTIONS, ACTIONS_BY_ROLE, CERTIFICATES_MAX, CERTIFICATE_VALIDITY_MS_MAX, CLOCK_SKEW_MS, DELEGATED_REVOCATIONS_MAX, REVOCATIONS_MAX, ROLES
} from './constants.ts'
