// Attestation signatures through imported OpenSSL keys: the same bytes libp2p's keys produce and accept.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair, publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Ed25519Verifier, VERIFY_KEYS_CACHED_MAX, ed25519Signer } from '../../src/net/ed25519.ts'

const message = new TextEncoder().encode('rhizome/attestation/1 task result peer')

describe('ed25519Signer and Ed25519Verifier', () => {
  it('sign exactly as libp2p does, and each side accepts the other\'s signatures', async () => {
    const key = await generateKeyPair('Ed25519')
    const signer = ed25519Signer(key)
    const ours = signer(message)
    assert.deepEqual(new Uint8Array(ours), new Uint8Array(await key.sign(message)), 'Ed25519 is deterministic: the same signature')
    assert.equal(await key.publicKey.verify(message, ours), true)
    const verifier = new Ed25519Verifier()
    const peer = peerIdFromPrivateKey(key).toString()
    assert.equal(verifier.verify(peer, key.publicKey.raw, message, await key.sign(message)), true)
  })

  it('refuse a signature over other bytes, by another key, of the wrong length, or a key of the wrong length', async () => {
    const key = await generateKeyPair('Ed25519')
    const other = await generateKeyPair('Ed25519')
    const signature = ed25519Signer(key)(message)
    const verifier = new Ed25519Verifier()
    const peer = peerIdFromPrivateKey(key).toString()
    assert.equal(verifier.verify(peer, key.publicKey.raw, new TextEncoder().encode('something else'), signature), false)
    assert.equal(verifier.verify(peer, key.publicKey.raw, message, ed25519Signer(other)(message)), false)
    assert.equal(verifier.verify(peer, key.publicKey.raw, message, signature.subarray(0, 63)), false)
    assert.equal(verifier.verify(peer, key.publicKey.raw, message, new Uint8Array(0)), false)
    assert.equal(verifier.verify('not-cached', key.publicKey.raw.subarray(0, 31), message, signature), false)
    assert.equal(verifier.verify(peer, key.publicKey.raw, message, signature), true, 'and still accept the right one')
  })

  it(`keep at most ${VERIFY_KEYS_CACHED_MAX} imported keys, and verify right after eviction`, async () => {
    const key = await generateKeyPair('Ed25519')
    const signature = ed25519Signer(key)(message)
    const verifier = new Ed25519Verifier()
    const raw = publicKeyFromRaw(key.publicKey.raw).raw
    assert.equal(verifier.verify('first', raw, message, signature), true)
    const keys = (verifier as unknown as { keys: { size: number } }).keys
    for (let i = 0; i < VERIFY_KEYS_CACHED_MAX + 10; i++) verifier.verify(`peer-${i}`, raw, message, signature)
    assert.equal(keys.size, VERIFY_KEYS_CACHED_MAX)
    assert.equal(verifier.verify('first', raw, message, signature), true)
  })

  it('refuse a key that is not Ed25519', async () => {
    const key = await generateKeyPair('secp256k1')
    assert.throws(() => ed25519Signer(key), /Ed25519/)
  })
})
