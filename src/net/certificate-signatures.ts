/**
 * Admin signatures on certificates and revocations: Ed25519 over the codec's signing bytes,
 * against the issuer key the record names. Whether that issuer may sign for the network is the
 * permission machine's rule, not checked here.
 */
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { RhizomeError } from '../model/errors.ts'
import { certificateSigningBytes, issuerKey, revocationSigningBytes } from '../wire/certificate-codec.ts'
import type { Certificate, Revocation } from '../wire/certificate-codec.ts'
import type { Ed25519Verifier } from './ed25519.ts'

function keyOf (issuer: string): Uint8Array | undefined {
  try {
    return issuerKey(issuer)
  } catch (err) {
    if (err instanceof RhizomeError) return undefined
    throw err
  }
}

/** Whether the certificate's signature is its issuer's over its other fields. */
export function certificateSignatureValid (verifier: Ed25519Verifier, cert: Certificate): boolean {
  const key = keyOf(cert.issuer)
  return key !== undefined && verifier.verify(cert.issuer, key, certificateSigningBytes(cert), cert.signature)
}

/** Whether the revocation's signature is its issuer's over its other fields. */
export function revocationSignatureValid (verifier: Ed25519Verifier, rev: Revocation): boolean {
  const key = keyOf(rev.issuer)
  return key !== undefined && verifier.verify(rev.issuer, key, revocationSigningBytes(rev), rev.signature)
}

/** The peer id whose Ed25519 key an issuer string is (every peer id names its key), or undefined
 *  if it is not a key: how the permission machine finds the member a delegated admin's signature
 *  comes from (its `issuerPeerId` option). */
export function issuerPeerId (issuer: string): string | undefined {
  const key = keyOf(issuer)
  if (key === undefined) return undefined
  try {
    return peerIdFromPublicKey(publicKeyFromRaw(key)).toString()
  } catch {
    return undefined
  }
}
