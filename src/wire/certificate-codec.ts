/**
 * Wire format of a permissioned network's credentials: membership certificates and revocations,
 * both signed by an admin key (the issuer), and the network id derived from the founding admin key.
 *
 *   certificate { network, peer, roles, notBefore, notAfter, serial, issuer, signature }
 *   revocation  { network, serial | peer, atMs, issuer, signature }
 *
 * Encodings are dag-cbor (map keys sorted, so deterministic); the signature covers the domain tag
 * and every other field (certificateSigningBytes / revocationSigningBytes), so a changed network,
 * role, date, serial or issuer no longer verifies. Decoders check the size, then the nesting, then
 * every field by name, and refuse unknown fields (they would not be signed). Signatures are checked
 * by the shell against the issuer key; the rules (which issuers, which times) are in
 * src/protocol/permission/.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { base32 } from 'multiformats/bases/base32'
import { base64url } from 'multiformats/bases/base64'
import { sha256 } from 'multiformats/hashes/sha2'
import { PEER_ID_CHARS_MAX, SIGNATURE_BYTES_MAX } from '../model/limits.ts'
import { ProtocolViolationError, TooLargeError } from '../model/errors.ts'
import { CERTIFICATE_VALIDITY_MS_MAX, ROLES } from '../protocol/permission/constants.ts'
import type { Certificate, Revocation, Role } from '../protocol/permission/index.ts'
import { nestingExceeds } from './membership-codec.ts'

export type { Certificate, Revocation, Role }

export const CERTIFICATE_DOMAIN = 'rhizome/certificate/1'
export const REVOCATION_DOMAIN = 'rhizome/revocation/1'
export const NETWORK_ID_DOMAIN = 'rhizome/network-id/1'
/** Network ids are 'rz-' and 26 base32 characters (128 bits of the hash): collisions between
 *  networks made by accident are out of reach (2^64 networks for an even chance). */
export const NETWORK_ID_PREFIX = 'rz-'
const NETWORK_ID = /^rz-[a-z2-7]{26}$/
/** Largest encoded certificate: ~300 bytes with three roles, a 52-char peer id, a 43-char issuer,
 *  a 64-byte signature; 2 KiB leaves room for longer peer ids and signatures and never more. */
export const CERTIFICATE_BYTES_MAX = 2 * 1024
/** Largest encoded revocation: ~250 bytes; same room. */
export const REVOCATION_BYTES_MAX = 2 * 1024
/** A certificate is a map holding a list: depth 2; 4 refuses anything built to recurse. */
const NESTING_DEPTH_MAX = 4
/** There are three roles; a list longer than that has a duplicate or an unknown one. */
export const ROLES_MAX = 3
/** A serial names a certificate within its network: a UUID (36) or 128 random bits in hex (32)
 *  fit; 64 is room, not a payload. Letters, digits, '-' and '_'. */
export const SERIAL_CHARS_MAX = 64
const SERIAL = /^[A-Za-z0-9_-]+$/
/** Ed25519 public keys are 32 raw bytes: 43 base64url characters, no padding. */
export const ISSUER_KEY_BYTES = 32
const ISSUER = /^[A-Za-z0-9_-]{43}$/
export { SIGNATURE_BYTES_MAX }

/** The network id of a network founded by this admin key: pure, so every peer derives the same. */
export async function networkIdOf (adminPublicKeyRaw: Uint8Array): Promise<string> {
  const domain = new TextEncoder().encode(NETWORK_ID_DOMAIN)
  const input = new Uint8Array(domain.byteLength + adminPublicKeyRaw.byteLength)
  input.set(domain)
  input.set(adminPublicKeyRaw, domain.byteLength)
  const digest = await sha256.digest(input)
  return NETWORK_ID_PREFIX + base32.baseEncode(digest.digest.subarray(0, 16))
}

export function isPermissionedNetworkId (value: unknown): value is string {
  return typeof value === 'string' && NETWORK_ID.test(value)
}

/** The issuer string of a raw Ed25519 public key (base64url, no padding). */
export function issuerOf (publicKeyRaw: Uint8Array): string {
  return base64url.baseEncode(publicKeyRaw)
}

/** The raw public key an issuer string names. */
export function issuerKey (issuer: string): Uint8Array {
  if (!ISSUER.test(issuer)) throw new ProtocolViolationError(`an issuer must be ${ISSUER_KEY_BYTES} bytes in base64url (43 characters)`)
  return base64url.baseDecode(issuer)
}

/** Roles sorted and unique: the one order that is signed and sent. */
export function canonicalRoles (roles: readonly Role[]): Role[] {
  return [...new Set(roles)].sort()
}

function certificateBody (cert: Certificate): Record<string, unknown> {
  return { network: cert.network, peer: cert.peer, roles: canonicalRoles(cert.roles), notBefore: cert.notBefore, notAfter: cert.notAfter, serial: cert.serial, issuer: cert.issuer }
}

function revocationBody (rev: Revocation): Record<string, unknown> {
  const body: Record<string, unknown> = { network: rev.network, atMs: rev.atMs, issuer: rev.issuer }
  if (rev.serial !== undefined) body.serial = rev.serial
  if (rev.peer !== undefined) body.peer = rev.peer
  return body
}

/** The exact bytes an admin signs for a certificate: every field but the signature, domain-tagged. */
export function certificateSigningBytes (cert: Omit<Certificate, 'signature'>): Uint8Array {
  return dagCbor.encode({ domain: CERTIFICATE_DOMAIN, ...certificateBody({ ...cert, signature: new Uint8Array(0) }) })
}

/** The exact bytes an admin signs for a revocation. */
export function revocationSigningBytes (rev: Omit<Revocation, 'signature'>): Uint8Array {
  return dagCbor.encode({ domain: REVOCATION_DOMAIN, ...revocationBody({ ...rev, signature: new Uint8Array(0) }) })
}

export function encodeCertificate (cert: Certificate): Uint8Array {
  return dagCbor.encode({ ...certificateBody(cert), signature: cert.signature })
}

export function encodeRevocation (rev: Revocation): Uint8Array {
  return dagCbor.encode({ ...revocationBody(rev), signature: rev.signature })
}

/** A certificate file (`--certificate FILE`): a certificate signed by the founding key is the
 *  certificate's own bytes; one signed by a delegated admin travels with the admin's certificate,
 *  `{ certificate, issuerCertificate }` (each the bytes above), so its holder can show — at start
 *  and in the credentials exchange — who the admin is. Two certificates and the envelope. */
export const CERTIFICATE_FILE_BYTES_MAX = 2 * CERTIFICATE_BYTES_MAX + 64

export interface CertificateFile { certificate: Certificate, issuerCertificate?: Certificate }

export function encodeCertificateFile (file: CertificateFile): Uint8Array {
  if (file.issuerCertificate === undefined) return encodeCertificate(file.certificate)
  return dagCbor.encode({ certificate: encodeCertificate(file.certificate), issuerCertificate: encodeCertificate(file.issuerCertificate) })
}

/** Decode a certificate file: a bare certificate, or a certificate with its issuing admin's. */
export function decodeCertificateFile (bytes: Uint8Array): CertificateFile {
  const { body, fail } = decodeMap(bytes, 'certificate file', CERTIFICATE_FILE_BYTES_MAX, [...CERTIFICATE_FIELDS, 'certificate', 'issuerCertificate'])
  if (!('issuerCertificate' in body)) return { certificate: decodeCertificate(bytes) }
  for (const key of Object.keys(body)) if (key !== 'certificate' && key !== 'issuerCertificate') throw fail(key, 'is not a field of a certificate with its issuer\'s')
  if (!(body.certificate instanceof Uint8Array)) throw fail('certificate', 'must be the certificate\'s bytes')
  if (!(body.issuerCertificate instanceof Uint8Array)) throw fail('issuerCertificate', 'must be the issuing admin\'s certificate\'s bytes')
  return { certificate: decodeCertificate(body.certificate), issuerCertificate: decodeCertificate(body.issuerCertificate) }
}

type Fail = (field: string, message: string) => ProtocolViolationError

function decodeMap (bytes: Uint8Array, what: string, bytesMax: number, fields: readonly string[]): { body: Record<string, unknown>, fail: Fail } {
  if (!(bytes instanceof Uint8Array)) throw new ProtocolViolationError(`a ${what} must be bytes`)
  if (bytes.byteLength > bytesMax) throw new TooLargeError(what, bytes.byteLength, bytesMax)
  if (nestingExceeds(bytes, NESTING_DEPTH_MAX)) throw new ProtocolViolationError(`a ${what} nests deeper than ${NESTING_DEPTH_MAX}`)
  let body: unknown
  try {
    body = dagCbor.decode(bytes)
  } catch (err) {
    throw new ProtocolViolationError(`a ${what} is not dag-cbor`, { cause: err })
  }
  const fail: Fail = (field, message) => new ProtocolViolationError(`${what}.${field}: ${message}`, { hint: `the ${what} is malformed; ask the network's admin for a new one` })
  if (typeof body !== 'object' || body === null || Array.isArray(body) || body instanceof Uint8Array) throw fail('(root)', 'must be a map')
  const map = body as Record<string, unknown>
  for (const key of Object.keys(map)) if (!fields.includes(key)) throw fail(key, 'is not a field of this format')
  return { body: map, fail }
}

const CERTIFICATE_FIELDS = ['network', 'peer', 'roles', 'notBefore', 'notAfter', 'serial', 'issuer', 'signature'] as const
const REVOCATION_FIELDS = ['network', 'serial', 'peer', 'atMs', 'issuer', 'signature'] as const

/** Decode and check a certificate's structure; throws TooLargeError or ProtocolViolationError naming the field. */
export function decodeCertificate (bytes: Uint8Array): Certificate {
  const { body, fail } = decodeMap(bytes, 'certificate', CERTIFICATE_BYTES_MAX, CERTIFICATE_FIELDS)
  const network = networkField(body.network, fail)
  const peer = peerField(body.peer, 'peer', fail)
  const roles = rolesField(body.roles, fail)
  const notBefore = timeField(body.notBefore, 'notBefore', fail)
  const notAfter = timeField(body.notAfter, 'notAfter', fail)
  if (notAfter <= notBefore) throw fail('notAfter', 'must be after notBefore')
  if (notAfter - notBefore > CERTIFICATE_VALIDITY_MS_MAX) throw fail('notAfter', `a certificate may be valid for at most ${CERTIFICATE_VALIDITY_MS_MAX} ms`)
  const serial = serialField(body.serial, fail)
  const issuer = issuerField(body.issuer, fail)
  const signature = signatureField(body.signature, fail)
  return { network, peer, roles, notBefore, notAfter, serial, issuer, signature }
}

/** Decode and check a revocation's structure; throws TooLargeError or ProtocolViolationError naming the field. */
export function decodeRevocation (bytes: Uint8Array): Revocation {
  const { body, fail } = decodeMap(bytes, 'revocation', REVOCATION_BYTES_MAX, REVOCATION_FIELDS)
  const network = networkField(body.network, fail)
  if ((body.serial === undefined) === (body.peer === undefined)) throw fail('serial', 'a revocation names a serial or a peer, exactly one')
  const rev: Revocation = { network, atMs: timeField(body.atMs, 'atMs', fail), issuer: issuerField(body.issuer, fail), signature: signatureField(body.signature, fail) }
  if (body.serial !== undefined) rev.serial = serialField(body.serial, fail)
  if (body.peer !== undefined) rev.peer = peerField(body.peer, 'peer', fail)
  return rev
}

function networkField (value: unknown, fail: Fail): string {
  if (!isPermissionedNetworkId(value)) throw fail('network', `must be a permissioned network id (${NETWORK_ID_PREFIX} and 26 base32 characters)`)
  return value
}

function peerField (value: unknown, field: string, fail: Fail): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > PEER_ID_CHARS_MAX || !/^[1-9A-HJ-NP-Za-km-z]+$/.test(value)) {
    throw fail(field, `must be a base58btc peer id of 1..${PEER_ID_CHARS_MAX} characters`)
  }
  return value
}

function rolesField (value: unknown, fail: Fail): Role[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > ROLES_MAX) throw fail('roles', `must be a list of 1..${ROLES_MAX} roles`)
  for (const role of value) if (!ROLES.includes(role as Role)) throw fail('roles', `must each be one of ${ROLES.join(', ')}`)
  const roles = value as Role[]
  const canonical = canonicalRoles(roles)
  if (canonical.length !== roles.length || canonical.some((r, i) => r !== roles[i])) throw fail('roles', 'must be sorted and unique')
  return roles
}

function timeField (value: unknown, field: string, fail: Fail): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw fail(field, 'must be a time in ms since the epoch (a non-negative integer)')
  return value
}

function serialField (value: unknown, fail: Fail): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > SERIAL_CHARS_MAX || !SERIAL.test(value)) {
    throw fail('serial', `must be 1..${SERIAL_CHARS_MAX} letters, digits, '-' or '_'`)
  }
  return value
}

function issuerField (value: unknown, fail: Fail): string {
  if (typeof value !== 'string' || !ISSUER.test(value)) throw fail('issuer', `must be a ${ISSUER_KEY_BYTES}-byte Ed25519 public key in base64url (43 characters)`)
  return value
}

function signatureField (value: unknown, fail: Fail): Uint8Array {
  if (!(value instanceof Uint8Array) || value.byteLength === 0 || value.byteLength > SIGNATURE_BYTES_MAX) throw fail('signature', `must be 1..${SIGNATURE_BYTES_MAX} bytes`)
  return value
}
