/**
 * This peer's own membership certificate (`--certificate FILE`): read once at start and checked
 * in full — structure, the issuer's signature, that the issuer may sign for the network it names,
 * that it names this peer, and that it is valid now. A peer that started with a certificate
 * others would refuse would sit in a network that answers it nothing; it is better told at once.
 *
 * The issuer is the founding key (the network id is networkIdOf it), or a delegated admin: a
 * member whose founder-signed certificate has role `admin`. A delegated certificate's file carries
 * that admin's certificate too (src/wire/certificate-codec.ts CertificateFile; `rhizome network
 * admit --as` writes it so), checked the same way: one file to copy, and every check done here.
 */
import { readRegularFileSync } from '../api/regular-file.ts'
import { Ed25519Verifier } from '../net/ed25519.ts'
import { certificateSignatureValid, issuerPeerId } from '../net/certificate-signatures.ts'
import { CLOCK_SKEW_MS } from '../protocol/permission/index.ts'
import { CERTIFICATE_FILE_BYTES_MAX, decodeCertificateFile, issuerKey, networkIdOf } from '../wire/certificate-codec.ts'
import type { Certificate, CertificateFile } from '../wire/certificate-codec.ts'
import { CertificateError } from './start-errors.ts'

/** The certificate file in `path`, decoded (not yet verified); CertificateError if unreadable or malformed. */
export function decodeOwnCertificateFile (path: string): CertificateFile {
  let bytes: Uint8Array
  try {
    bytes = readRegularFileSync(path, CERTIFICATE_FILE_BYTES_MAX, 'certificate')
  } catch (err) {
    throw new CertificateError(path, `cannot be read: ${(err as Error).message}`, { cause: err })
  }
  try {
    return decodeCertificateFile(bytes)
  } catch (err) {
    throw new CertificateError(path, `is not a Rhizome certificate: ${(err as Error).message}`, { cause: err })
  }
}

/** The certificate in `path`, decoded (not yet verified). */
export function decodeOwnCertificate (path: string): Certificate {
  return decodeOwnCertificateFile(path).certificate
}

/** A checked own certificate: the founding key, and the issuing admin's certificate when delegated. */
export interface OwnCertificate { certificate: Certificate, issuerCertificate?: Certificate, founder: string }

/** The certificate in `path`, checked for this peer at `nowMs`; CertificateError naming what is wrong. */
export async function loadOwnCertificate (path: string, selfId: string, nowMs: number): Promise<OwnCertificate> {
  const { certificate: cert, issuerCertificate } = decodeOwnCertificateFile(path)
  const verifier = new Ed25519Verifier()
  if (!certificateSignatureValid(verifier, cert)) throw new CertificateError(path, 'does not verify: its signature is not the issuer\'s over its fields (altered, or signed by another key)')
  if (cert.peer !== selfId) throw new CertificateError(path, `is for peer ${cert.peer}, and this peer is ${selfId}`)
  checkTime(path, cert, nowMs, '')
  if (issuerCertificate === undefined) {
    if (await networkIdOf(issuerKey(cert.issuer)) !== cert.network) {
      throw new CertificateError(path, `is signed by a key that did not found network ${cert.network} (a delegated admin's certificate must come with the admin's: \`rhizome network admit --as\` writes both)`)
    }
    return { certificate: cert, founder: cert.issuer }
  }
  const admin = issuerCertificate
  const what = `its issuing admin's certificate (peer ${admin.peer})`
  if (!certificateSignatureValid(verifier, admin)) throw new CertificateError(path, `holds ${what} that does not verify`)
  if (admin.network !== cert.network || await networkIdOf(issuerKey(admin.issuer)) !== cert.network) throw new CertificateError(path, `holds ${what}, not signed by the key that founded network ${cert.network}`)
  if (issuerPeerId(cert.issuer) !== admin.peer) throw new CertificateError(path, `is not signed by the peer of ${what}`)
  if (!admin.roles.includes('admin')) throw new CertificateError(path, `holds ${what}, which lacks role admin: that peer may not sign certificates`)
  if (admin.peer === selfId) throw new CertificateError(path, 'is signed by this peer itself: an admin cannot certify itself')
  checkTime(path, admin, nowMs, `${what} `)
  return { certificate: cert, issuerCertificate: admin, founder: admin.issuer }
}

function checkTime (path: string, cert: Certificate, nowMs: number, what: string): void {
  if (nowMs >= cert.notAfter) throw new CertificateError(path, `${what === '' ? '' : `holds ${what}that `}expired at ${new Date(cert.notAfter).toISOString()}`)
  if (cert.notBefore > nowMs + CLOCK_SKEW_MS) throw new CertificateError(path, `${what === '' ? '' : `holds ${what}that `}is not valid before ${new Date(cert.notBefore).toISOString()}`)
}
