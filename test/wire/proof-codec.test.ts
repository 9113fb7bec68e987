// Lie proofs on the wire: a valid one round-trips; every structural flaw is refused by name,
// one past each limit, before any signature is looked at.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { PROOF_BYTES_MAX, PROOF_WITNESSES_MAX, PROOF_WITNESSES_MIN, decodeProof, encodeProof } from '../../src/wire/proof-codec.ts'
import type { LieProof } from '../../src/wire/proof-codec.ts'

async function cid (text: string): Promise<CID> {
  return CID.create(1, dagCbor.code, await sha256.digest(new TextEncoder().encode(text)))
}

async function proof (witnesses = 2): Promise<LieProof> {
  const task = await cid('task')
  const right = await cid('right')
  return {
    task,
    liar: { task, result: await cid('wrong'), peer: 'liar', signature: new Uint8Array(64).fill(1) },
    witnesses: Array.from({ length: witnesses }, (_, i) => ({ task, result: right, peer: `honest${i}`, signature: new Uint8Array(64).fill(2 + i) }))
  }
}

function raw (p: LieProof, edit: (body: Record<string, any>) => void): Uint8Array {
  const body = dagCbor.decode(encodeProof(p)) as Record<string, any>
  edit(body)
  return dagCbor.encode(body)
}

describe('lie proof codec', () => {
  it('round-trips a proof', async () => {
    const p = await proof()
    const back = decodeProof(encodeProof(p))
    assert.ok(back.task.equals(p.task))
    assert.equal(back.liar.peer, 'liar')
    assert.ok(back.liar.task.equals(p.task), 'every attestation is of the proof\'s task')
    assert.deepEqual(back.witnesses.map(w => w.peer), ['honest0', 'honest1'])
  })

  it(`needs at least ${PROOF_WITNESSES_MIN} witnesses`, async () => {
    const one = encodeProof(await proof(PROOF_WITNESSES_MIN - 1))
    assert.throws(() => decodeProof(one), /needs 2\.\.16 witnesses, got 1/)
    assert.equal(decodeProof(encodeProof(await proof(PROOF_WITNESSES_MIN))).witnesses.length, PROOF_WITNESSES_MIN)
  })

  it('refuses one witness past the most, and accepts the most', async () => {
    const tooMany = encodeProof(await proof(PROOF_WITNESSES_MAX + 1))
    assert.throws(() => decodeProof(tooMany), /got 17/)
    assert.equal(decodeProof(encodeProof(await proof(PROOF_WITNESSES_MAX))).witnesses.length, PROOF_WITNESSES_MAX)
  })

  it('refuses witnesses that repeat a peer, include the liar, disagree, or agree with the liar', async () => {
    const p = await proof(3)
    assert.throws(() => decodeProof(raw(p, b => { b.witnesses[1].peer = 'honest0' })), { name: 'ProtocolViolationError', message: /distinct/ })
    assert.throws(() => decodeProof(raw(p, b => { b.witnesses[2].peer = 'liar' })), { message: /cannot witness against itself/ })
    const other = await cid('other')
    assert.throws(() => decodeProof(raw(p, b => { b.witnesses[2].result = other })), { message: /agree on one result/ })
    assert.throws(() => decodeProof(raw(p, b => { b.liar.result = b.witnesses[0].result })), { message: /must differ/ })
  })

  it('refuses wrong types, and bytes past the size and nesting limits before decoding', async () => {
    const p = await proof()
    assert.throws(() => decodeProof(raw(p, b => { b.liar.signature = 'sig' })), { message: /signature must be bytes/ })
    assert.throws(() => decodeProof(raw(p, b => { b.task = 'task' })), { name: 'ProtocolViolationError' })
    assert.throws(() => decodeProof(raw(p, b => { b.witnesses = {} })), { message: /must be a list/ })
    assert.throws(() => decodeProof(new Uint8Array(PROOF_BYTES_MAX + 1)), { name: 'TooLargeError' })
    let deep: unknown = 1
    for (let i = 0; i < 20; i++) deep = [deep]
    assert.throws(() => decodeProof(dagCbor.encode({ task: deep })), { message: /nests deeper/ })
    assert.throws(() => decodeProof(new Uint8Array([0xff, 0x00])), { message: /not dag-cbor/ })
  })
})
