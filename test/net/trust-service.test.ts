/**
 * The trust service (src/net/trust-service.ts) with the real reputation machine, real Ed25519
 * keys and a stub pubsub that hands its validator the messages: a gossiped lie proof counts only
 * if every attestation in it is signed by the peer it names; a valid one bans the liar, is kept,
 * passed on and told to listeners once; a forged one is a protocol violation by its sender.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import type { PrivateKey, PeerId } from '@libp2p/interface'
import { TrustService, proofTopic } from '../../src/net/trust-service.ts'
import { createLogger } from '../../src/node/logger.ts'
import { createReputation } from '../../src/protocol/reputation/index.ts'
import { encodeProof } from '../../src/wire/proof-codec.ts'
import type { LieProof } from '../../src/wire/proof-codec.ts'
import { attestationSigningBytes } from '../../src/wire/task-codec.ts'
import type { Attestation } from '../../src/wire/task-codec.ts'

const log = createLogger('test', { level: 'silent' })

async function cid (text: string): Promise<CID> {
  return CID.create(1, dagCbor.code, await sha256.digest(new TextEncoder().encode(text)))
}

async function attest (key: PrivateKey, task: CID, result: CID): Promise<Attestation> {
  const peer = peerIdFromPrivateKey(key).toString()
  return { task, result, peer, signature: await key.sign(attestationSigningBytes(task, result, peer)) }
}

async function harness (): Promise<{ trust: TrustService, validate: (from: PeerId, data: Uint8Array) => TopicValidatorResult, published: Uint8Array[], violations: string[], saved: string[], liars: string[], now: { ms: number } }> {
  let validator: ((from: PeerId, message: any) => TopicValidatorResult) | undefined
  const published: Uint8Array[] = []
  const violations: string[] = []
  const saved: string[] = []
  const liars: string[] = []
  const now = { ms: 1_000_000 }
  const trust = new TrustService({
    reputation: createReputation(),
    pubsub: {
      topicValidators: { set: (_t: string, v: any) => { validator = v }, delete: () => true } as any,
      subscribe: () => {},
      unsubscribe: () => {},
      publish: async (_topic: string, data: Uint8Array) => { published.push(data); return { recipients: [] } }
    } as any,
    saveRecord: () => {},
    saveProof: (proof) => { saved.push(proof.liar.peer) },
    now: () => now.ms,
    log,
    onViolation: (peer, _protocol, err) => { violations.push(`${peer.toString()}: ${err.message}`) }
  }, { networkId: 'test' })
  trust.start()
  trust.onLiar((peer) => { liars.push(peer) })
  assert.equal(proofTopic('test'), 'rhizome/test/proofs/1')
  return { trust, validate: (from, data) => validator!(from, { type: 'signed', data, topic: proofTopic('test') }), published, violations, saved, liars, now }
}

async function scene (): Promise<{ proof: LieProof, liar: string, relay: PeerId }> {
  const [liarKey, a, b, relayKey] = await Promise.all([1, 2, 3, 4].map(async () => await generateKeyPair('Ed25519')))
  const task = await cid('task')
  const right = await cid('right')
  const proof: LieProof = { task, liar: await attest(liarKey, task, await cid('wrong')), witnesses: [await attest(a, task, right), await attest(b, task, right)] }
  return { proof, liar: proof.liar.peer, relay: peerIdFromPrivateKey(relayKey) }
}

describe('TrustService', () => {
  test('a valid gossiped proof bans the liar, is kept and passed on once; a repeat is ignored', async () => {
    const h = await harness()
    const { proof, liar, relay } = await scene()
    assert.equal(h.trust.standing(liar), 'unknown')
    assert.equal(h.validate(relay, encodeProof(proof)), TopicValidatorResult.Accept)
    assert.equal(h.trust.standing(liar), 'banned')
    assert.deepEqual(h.saved, [liar])
    assert.deepEqual(h.liars, [liar])
    assert.equal(h.validate(relay, encodeProof(proof)), TopicValidatorResult.Ignore, 'a proof already counted is not passed on again')
    assert.deepEqual(h.liars, [liar])
    assert.deepEqual(h.violations, [])
    h.trust.stop()
  })

  test('a proof with a forged signature, or naming a peer that did not sign, is refused and its sender reported', async () => {
    const h = await harness()
    const { proof, liar, relay } = await scene()
    const forged = { ...proof, liar: { ...proof.liar, signature: new Uint8Array(64) } }
    assert.equal(h.validate(relay, encodeProof(forged)), TopicValidatorResult.Reject)
    // An honest peer's real signature, relabelled as if another peer had said it.
    const other = await scene()
    const relabelled = { ...proof, witnesses: [proof.witnesses[0], { ...proof.witnesses[1], peer: other.liar }] }
    assert.equal(h.validate(relay, encodeProof(relabelled)), TopicValidatorResult.Reject)
    assert.equal(h.validate(relay, new Uint8Array([1, 2, 3])), TopicValidatorResult.Reject)
    assert.equal(h.violations.length, 3)
    assert.ok(h.violations.every(v => v.startsWith(relay.toString())))
    assert.equal(h.trust.standing(liar), 'unknown', 'nothing forged counts against anyone')
    assert.deepEqual(h.liars, [])
    h.trust.stop()
  })

  test('a lie proven here is counted, kept and published; observations move the score', async () => {
    const h = await harness()
    const { proof, liar } = await scene()
    h.trust.prove(proof)
    assert.equal(h.published.length, 1)
    assert.equal(h.trust.standing(liar), 'banned')
    assert.equal(h.trust.counters.proofsMade, 1)
    h.trust.prove(proof)
    assert.equal(h.published.length, 1, 'once')
    const peer = proof.witnesses[0].peer
    const before = h.trust.score(peer)
    for (let i = 0; i < 12; i++) h.trust.observe(peer, 'agreed')
    assert.ok(h.trust.score(peer) > before)
    assert.equal(h.trust.standing(peer), 'trusted')
    h.trust.stop()
  })
})
