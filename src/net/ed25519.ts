/**
 * Ed25519 signing and verification on the task path, with the keys kept as OpenSSL key objects.
 *
 * libp2p's key classes turn the raw key bytes into a key object (a JWK import) on every sign and
 * every verify. Profiled on a peer answering no-op tasks, those imports cost more than the
 * signatures: ~0.45 ms of main-thread CPU per task between the worker's signature and the
 * caller's check, of which ~0.1 ms is the curve arithmetic itself. Here our own private key is
 * imported once, and the public keys of the peers whose attestations we check are imported once
 * each and kept in a bounded cache. The signatures are the same bytes (Ed25519 is deterministic),
 * so peers on either code path verify each other's attestations.
 */
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { Buffer } from 'node:buffer'
import { BoundedCache } from '../model/bounded-cache.ts'
import type { PrivateKey } from '@libp2p/interface'

/**
 * Public keys kept imported, by peer id: a key object is ~200 bytes, and a peer checks attestations
 * of the peers it sends tasks to — at most its membership view, which is bounded far below this.
 */
export const VERIFY_KEYS_CACHED_MAX = 1024

const ED25519_SEED_BYTES = 32
const ED25519_PUBLIC_BYTES = 32

/** A signer for this peer's own key: the key is imported once. */
export function ed25519Signer (privateKey: PrivateKey): (bytes: Uint8Array) => Uint8Array {
  if (privateKey.type !== 'Ed25519') throw new TypeError(`attestations are signed with Ed25519 keys, not ${privateKey.type}`)
  const raw = privateKey.raw
  const key = createPrivateKey({
    format: 'jwk',
    key: {
      kty: 'OKP',
      crv: 'Ed25519',
      d: base64url(raw.subarray(0, ED25519_SEED_BYTES)),
      x: base64url(privateKey.publicKey.raw)
    }
  })
  return (bytes) => sign(null, bytes, key)
}

/** Checks Ed25519 signatures by peer; each peer's public key is imported once (VERIFY_KEYS_CACHED_MAX). */
export class Ed25519Verifier {
  private readonly keys = new BoundedCache<string, KeyObject>({ entriesMax: VERIFY_KEYS_CACHED_MAX })

  /** Whether `signature` over `bytes` verifies against `publicKey` (raw 32 bytes), known as `peer`. */
  verify (peer: string, publicKey: Uint8Array, bytes: Uint8Array, signature: Uint8Array): boolean {
    if (publicKey.byteLength !== ED25519_PUBLIC_BYTES) return false
    try {
      let key = this.keys.get(peer)
      if (key === undefined) {
        key = createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: base64url(publicKey) } })
        this.keys.set(peer, key)
      }
      return verify(null, bytes, key, signature)
    } catch {
      // A key OpenSSL refuses, or a signature of the wrong length or shape: not a valid signature.
      return false
    }
  }
}

function base64url (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')
}
