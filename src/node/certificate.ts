/**
 * This peer's own membership certificate (`--certificate FILE`): read once at start and checked
 * in full — structure, the admin's signature, that the admin key founded the network it names,
 * that it names this peer, and that it is valid now. A peer that started with a certificate
 * others would refuse would sit in a network that answers it nothing; it is better told at once.
 */
import { readRegularFileSync } from '../api/regular-file.ts'
import { Ed25519Verifier } from '../net/ed25519.ts'
import { certificateSignatureValid } from '../net/certificate-signatures.ts'
import { CLOCK_SKEW_MS } from '../protocol/permission/index.ts'
import { CERTIFICATE_BYTES_MAX, decodeCertificate, issuerKey, networkIdOf } from '../wire/certificate-codec.ts'
import type { Certificate } from '../wire/certificate-codec.ts'
import { CertificateError } from './start-errors.ts'

/** The certificate in `path`, decoded (not yet verified); CertificateError if unreadable or malformed. */
export function decodeOwnCertificate (path: string): Certificate {
  let bytes: Uint8Array
  try {
    bytes = readRegularFileSync(path, CERTIFICATE_BYTES_MAX, 'certificate')
  } catch (err) {
    throw new CertificateError(path, `cannot be read: ${(err as Error).message}`, { cause: err })
  }
  try {
    return decodeCertificate(bytes)
  } catch (err) {
    throw new CertificateError(path, `is not a Rhizome certificate: ${(err as Error).message}`, { cause: err })
  }
}

/** The certificate in `path`, checked for this peer at `nowMs`; CertificateError naming what is wrong. */
export async function loadOwnCertificate (path: string, selfId: string, nowMs: number): Promise<Certificate> {
  const cert = decodeOwnCertificate(path)
  if (!certificateSignatureValid(new Ed25519Verifier(), cert)) throw new CertificateError(path, 'does not verify: its signature is not the issuer\'s over its fields (altered, or signed by another key)')
  if (await networkIdOf(issuerKey(cert.issuer)) !== cert.network) throw new CertificateError(path, `is signed by a key that did not found network ${cert.network}`)
  if (cert.peer !== selfId) throw new CertificateError(path, `is for peer ${cert.peer}, and this peer is ${selfId}`)
  if (nowMs >= cert.notAfter) throw new CertificateError(path, `expired at ${new Date(cert.notAfter).toISOString()}`)
  if (cert.notBefore > nowMs + CLOCK_SKEW_MS) throw new CertificateError(path, `is not valid before ${new Date(cert.notBefore).toISOString()}`)
  return cert
}
