/**
 * The hostile function suite (test/fixtures/functions/hostile.ts), run on a real peer over the
 * network: each fixture is deployed to the worker and called from another peer. Each must end
 * in its named error (or its safe value), and after each one the worker must still be up and
 * serve a normal task correctly.
 */
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import { after, before, describe, test } from 'node:test'
import { createManifest, encodeManifest } from '../../src/functions/manifest.ts'
import { toJson } from '../../src/api/dag-json.ts'
import { DEFAULT_LIMITS } from '../../src/sandbox/index.ts'
import type { SandboxLimits } from '../../src/sandbox/index.ts'
import { HOSTILE_FIXTURES, NORMAL_FUNCTION } from '../fixtures/functions/hostile.ts'
import { TestNetwork, waitFor } from '../helpers/peers.ts'
import type { TestPeer } from '../helpers/peers.ts'

interface Failure { name: string, code: string, message: string, retryable: boolean }

describe('hostile functions on a real peer', { timeout: 300_000 }, () => {
  let net: TestNetwork
  let worker: TestPeer
  let caller: TestPeer
  let normalId: string

  async function deploy (name: string, kind: 'js' | 'wasm', code: Uint8Array, exports: string[], limits: Partial<SandboxLimits> = {}): Promise<string> {
    const manifest = encodeManifest(await createManifest({ name, kind, code, exports, limits: { ...DEFAULT_LIMITS, ...limits } }))
    const res = await fetch(`${worker.apiUrl}/v1/functions`, { method: 'POST', headers: worker.authorized(), body: dagCbor.encode({ manifest, code, replicas: 1 }) as BodyInit, signal: AbortSignal.timeout(30_000) })
    const body = await res.json() as { cid: string, error?: Failure }
    assert.equal(res.status, 200, JSON.stringify(body))
    return body.cid
  }

  async function call (fn: string, exportName: string, args: unknown[]): Promise<{ value?: unknown, error?: Failure }> {
    const res = await fetch(`${caller.apiUrl}/v1/call`, {
      method: 'POST',
      headers: caller.authorized(),
      body: JSON.stringify({ fn, export: exportName, args, on: worker.peerId }),
      signal: AbortSignal.timeout(60_000)
    })
    return await res.json() as { value?: unknown, error?: Failure }
  }

  before(async () => {
    net = await TestNetwork.create()
    worker = await net.addPeer(['--slots', '2'])
    caller = await net.addPeer(['--bootstrap', worker.tcpAddr])
    await waitFor('the caller to see the worker', async () => (await caller.peers()).some(p => p.peerId === worker.peerId && p.state === 'alive'))
    normalId = await deploy('normal', 'js', new TextEncoder().encode(NORMAL_FUNCTION.source), [NORMAL_FUNCTION.exportName])
  })
  after(async () => { await net?.close() })

  test(`${HOSTILE_FIXTURES.length} hostile functions each get their named error, and the worker keeps serving`, async () => {
    assert.ok(HOSTILE_FIXTURES.length >= 25)
    for (const [i, fixture] of HOSTILE_FIXTURES.entries()) {
      const code = fixture.kind === 'wasm' ? fixture.wasm! : new TextEncoder().encode(fixture.source!)
      const exports = [...new Set([fixture.exportName, ...(fixture.followUp === undefined ? [] : [fixture.followUp.exportName])])]
      const fn = await deploy(`hostile-${i}`, fixture.kind, code, exports, fixture.limits)
      const answer = await call(fn, fixture.exportName, fixture.args)
      if (fixture.expectedError !== undefined) {
        assert.equal(answer.error?.name, fixture.expectedError, `${fixture.name}: ${JSON.stringify(answer)}`)
        assert.equal(typeof answer.error?.retryable, 'boolean', fixture.name)
      } else {
        assert.deepEqual(answer.value, toJson(fixture.expectedValue), `${fixture.name}: ${JSON.stringify(answer)}`)
      }
      if (fixture.followUp !== undefined) {
        const next = await call(fn, fixture.followUp.exportName, fixture.followUp.args)
        assert.deepEqual(next.value, toJson(fixture.followUp.expectedValue), `${fixture.name} (follow-up): ${JSON.stringify(next)}`)
      }
      const normal = await call(normalId, NORMAL_FUNCTION.exportName, NORMAL_FUNCTION.args)
      assert.deepEqual(normal.value, NORMAL_FUNCTION.expectedValue, `after ${fixture.name} the worker still serves: ${JSON.stringify(normal)}`)
    }
    const status = await worker.api<{ peerId: string }>('/v1/status')
    assert.equal(status.peerId, worker.peerId)
  })
})
