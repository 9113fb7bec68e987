/**
 * The placement shell (src/net/task-placement.ts) with a stub `call`: it runs what TaskPlacement
 * asks for and reports the right error when attempts run out.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { InvalidInputError, PeerUnavailableError } from '../../src/model/errors.ts'
import { CALL_ATTEMPTS_MAX, callPlaced } from '../../src/net/task-placement.ts'
import { createLogger } from '../../src/node/logger.ts'
import type { TaskPlacementComponents } from '../../src/net/task-placement.ts'

const log = createLogger('test', { level: 'silent' })
const fn = CID.parse('bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')

async function peerIds (n: number): Promise<string[]> {
  return await Promise.all(Array.from({ length: n }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
}

function components (ids: string[], outcome: (peer: string, attempt: number) => Error | undefined): TaskPlacementComponents & { tried: string[] } {
  const tried: string[] = []
  return {
    tried,
    log,
    random: () => 0,
    candidates: () => ids.map(peerId => ({ peerId, slotsFree: 1, queueLength: 0 })),
    call: async (_fn, _export, _args, peer) => {
      tried.push(peer.toString())
      const err = outcome(peer.toString(), tried.length)
      if (err !== undefined) throw err
      return { taskId: 't', resultCid: 'r', value: 42, peer: peer.toString(), signature: new Uint8Array(64), timings: { queueMs: 0, fetchMs: 0, runMs: 0, totalMs: 0 } }
    }
  }
}

describe('callPlaced', () => {
  test('a retryable failure is tried on another peer; the answer carries the attempt count', async () => {
    const ids = await peerIds(4)
    const c = components(ids, (_peer, attempt) => attempt === 1 ? new PeerUnavailableError('gone') : undefined)
    const result = await callPlaced(c, fn, 'run', [])
    assert.equal(result.attempts, 2)
    assert.equal(new Set(c.tried).size, 2)
  })

  test('after CALL_ATTEMPTS_MAX retryable failures the caller sees the last one', async () => {
    const ids = await peerIds(CALL_ATTEMPTS_MAX + 2)
    const c = components(ids, (_peer, attempt) => new PeerUnavailableError(`failure ${attempt}`))
    await assert.rejects(callPlaced(c, fn, 'run', []), { message: `failure ${CALL_ATTEMPTS_MAX}` })
    assert.equal(c.tried.length, CALL_ATTEMPTS_MAX)
  })

  test('a failure that is not retryable is not tried again', async () => {
    const c = components(await peerIds(3), () => new InvalidInputError('no such export'))
    await assert.rejects(callPlaced(c, fn, 'run', []), { name: 'InvalidInputError' })
    assert.equal(c.tried.length, 1)
  })

  test('no candidates: PeerUnavailableError', async () => {
    await assert.rejects(callPlaced(components([], () => undefined), fn, 'run', []), { name: 'PeerUnavailableError' })
  })

  test('`on` runs on that peer only, and a malformed id is refused with a hint', async () => {
    const [target, other] = await peerIds(2)
    const c = components([other], () => undefined)
    const result = await callPlaced(c, fn, 'run', [], { on: target })
    assert.deepEqual(c.tried, [target])
    assert.equal(result.attempts, 1)
    await assert.rejects(callPlaced(c, fn, 'run', [], { on: 'nope' }), { name: 'InvalidInputError' })
  })
})
