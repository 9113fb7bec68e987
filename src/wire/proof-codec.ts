/**
 * Wire format of a lie proof: what a peer gossips when a quorum has decided against a worker's
 * signed result, so that every peer that checks it can score the liar down without trusting the
 * peer that saw it ("gossip the proof, not an opinion").
 *
 *   { task: CID, liar: { peer, result: CID, signature }, witnesses: [{ peer, result: CID, signature }] }
 *
 * Each entry is an attestation (src/wire/task-codec.ts) of the same task: the liar's, and at least
 * PROOF_WITNESSES_MIN from distinct other peers that agree with each other and not with it. Only
 * the structure is checked here (size, then nesting, then every field, then the agreement rules);
 * the signatures are checked by the shell (src/net/trust-service.ts), each against the key its
 * peer id embeds, so a proof cannot name a peer that did not sign.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import { PEER_ID_CHARS_MAX, SIGNATURE_BYTES_MAX } from '../model/limits.ts'
import { ProtocolViolationError, TooLargeError } from '../model/errors.ts'
import { nestingExceeds } from './membership-codec.ts'
import { asCid, isRecord } from './rpc.ts'
import type { Attestation } from './task-codec.ts'

/** Witnesses a proof needs: two peers agreeing against a third is the least a quorum or a
 *  decided spot check (two of three) can show. */
export const PROOF_WITNESSES_MIN = 2
/** Witnesses a proof may carry: REPLICAS_MAX (16) replicas at most ran the task. */
export const PROOF_WITNESSES_MAX = 16
/** Largest encoded proof: 17 attestations of ~250 bytes (two CIDs, a peer id, a 64-byte
 *  signature) is under 5 KiB; 16 KiB leaves room for longer keys and never more. */
export const PROOF_BYTES_MAX = 16 * 1024
/** A proof is a map of lists of maps: depth 4; 8 refuses anything built to recurse. */
const PROOF_DEPTH_MAX = 8

export interface LieProof {
  task: CID
  liar: Attestation
  witnesses: Attestation[]
}

export function encodeProof (proof: LieProof): Uint8Array {
  const entry = (a: Attestation): Record<string, unknown> => ({ peer: a.peer, result: a.result, signature: a.signature })
  return dagCbor.encode({ task: proof.task, liar: entry(proof.liar), witnesses: proof.witnesses.map(entry) })
}

/** Decode and check a proof's structure; throws TooLargeError or ProtocolViolationError naming the field. */
export function decodeProof (bytes: Uint8Array): LieProof {
  if (bytes.byteLength > PROOF_BYTES_MAX) throw new TooLargeError('lie proof', bytes.byteLength, PROOF_BYTES_MAX)
  if (nestingExceeds(bytes, PROOF_DEPTH_MAX)) throw new ProtocolViolationError(`a lie proof nests deeper than ${PROOF_DEPTH_MAX}`)
  let body: unknown
  try {
    body = dagCbor.decode(bytes)
  } catch (err) {
    throw new ProtocolViolationError('a lie proof is not dag-cbor', { cause: err })
  }
  if (!isRecord(body)) throw new ProtocolViolationError('a lie proof must be a map')
  const task = asCid(body.task, 'proof task')
  const liar = attestation(body.liar, task, 'proof liar')
  if (!Array.isArray(body.witnesses)) throw new ProtocolViolationError('proof witnesses must be a list')
  if (body.witnesses.length < PROOF_WITNESSES_MIN || body.witnesses.length > PROOF_WITNESSES_MAX) {
    throw new ProtocolViolationError(`a lie proof needs ${PROOF_WITNESSES_MIN}..${PROOF_WITNESSES_MAX} witnesses, got ${body.witnesses.length}`)
  }
  const witnesses = body.witnesses.map((w, i) => attestation(w, task, `proof witnesses[${i}]`))
  const peers = new Set(witnesses.map(w => w.peer))
  if (peers.size !== witnesses.length) throw new ProtocolViolationError('the witnesses of a lie proof must be distinct peers')
  if (peers.has(liar.peer)) throw new ProtocolViolationError('the liar cannot witness against itself')
  const agreed = witnesses[0].result
  if (!witnesses.every(w => w.result.equals(agreed))) throw new ProtocolViolationError('the witnesses of a lie proof must agree on one result')
  if (liar.result.equals(agreed)) throw new ProtocolViolationError("the liar's result must differ from the witnesses'")
  return { task, liar, witnesses }
}

function attestation (value: unknown, task: CID, what: string): Attestation {
  if (!isRecord(value)) throw new ProtocolViolationError(`${what} must be a map`)
  if (typeof value.peer !== 'string' || value.peer.length === 0 || value.peer.length > PEER_ID_CHARS_MAX) throw new ProtocolViolationError(`${what} peer must be a peer id`)
  if (!(value.signature instanceof Uint8Array) || value.signature.byteLength > SIGNATURE_BYTES_MAX) throw new ProtocolViolationError(`${what} signature must be bytes`)
  return { task, result: asCid(value.result, `${what} result`), peer: value.peer, signature: value.signature }
}
