/**
 * Certificates for tests of permissioned networks: an admin key (which founds the network),
 * certificates and revocations signed as the formats say (src/wire/certificate-codec.ts), and a
 * peer's id made before it starts (its data dir identity), so it can be certified first.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { loadOrCreateIdentity } from '../../src/node/identity.ts'
import {
  certificateSigningBytes, encodeCertificate, encodeRevocation, issuerOf, networkIdOf, revocationSigningBytes
} from '../../src/wire/certificate-codec.ts'
import type { Certificate, Revocation, Role } from '../../src/wire/certificate-codec.ts'

export interface Admin { key: PrivateKey, issuer: string, networkId: string }

export const DAY_MS = 24 * 60 * 60_000

export async function createAdmin (): Promise<Admin> {
  const key = await generateKeyPair('Ed25519')
  return { key, issuer: issuerOf(key.publicKey.raw), networkId: await networkIdOf(key.publicKey.raw) }
}

let serials = 0

/** A signed certificate; `fields` override the defaults (valid from a minute ago for a day). */
export async function certify (admin: Admin, peer: string, roles: Role[], fields: Partial<Omit<Certificate, 'signature'>> = {}): Promise<Certificate> {
  const now = Date.now()
  const unsigned: Omit<Certificate, 'signature'> = {
    network: admin.networkId, peer, roles: [...roles].sort(), notBefore: now - 60_000, notAfter: now + DAY_MS,
    serial: `s${process.pid}-${++serials}`, issuer: admin.issuer, ...fields
  }
  return { ...unsigned, signature: await admin.key.sign(certificateSigningBytes(unsigned)) }
}

export async function revoke (admin: Admin, target: { peer: string } | { serial: string }, atMs = Date.now()): Promise<Uint8Array> {
  const unsigned: Omit<Revocation, 'signature'> = { network: admin.networkId, atMs, issuer: admin.issuer, ...target }
  return encodeRevocation({ ...unsigned, signature: await admin.key.sign(revocationSigningBytes(unsigned)) })
}

/** Make (or read) the identity in `dataDir` and return its peer id, before the peer first starts. */
export async function peerIdOf (dataDir: string): Promise<string> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const { privateKey } = await loadOrCreateIdentity(dataDir)
  return peerIdFromPrivateKey(privateKey).toString()
}

/** Write a certificate's bytes (or any bytes) to `dir/name` and return the path. */
export async function writeCertificate (dir: string, name: string, cert: Certificate | Uint8Array): Promise<string> {
  const path = join(dir, name)
  await writeFile(path, cert instanceof Uint8Array ? cert : encodeCertificate(cert))
  return path
}
