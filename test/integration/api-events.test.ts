/**
 * Progress events over Server-Sent Events from a real peer: the peer-wide stream
 * (`GET /v1/events`) sees other peers join and calls run; a call made with
 * `Accept: text/event-stream` streams its own attempts and ends with its result or its error.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { SseDecoder } from '../../src/api/events.ts'
import { TestNetwork, runCli, waitFor } from '../helpers/peers.ts'
import type { CallStreamEvent, ProgressEvent } from '../../src/api/events.ts'
import type { TestPeer } from '../helpers/peers.ts'

const MATH = fileURLToPath(new URL('../fixtures/deploy/math.ts', import.meta.url))

/** Read an event stream in the background until `signal` aborts or the peer ends it. */
function collect (res: Response, into: unknown[]): Promise<void> {
  const decoder = new SseDecoder()
  return (async () => {
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) into.push(...decoder.push(chunk))
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err
    }
  })()
}

describe('progress events over Server-Sent Events', { timeout: 120_000 }, () => {
  let net: TestNetwork
  let a: TestPeer
  let fn: string
  const events: ProgressEvent[] = []
  const stop = new AbortController()
  let reading: Promise<void>

  before(async () => {
    net = await TestNetwork.create()
    a = await net.addPeer()
    const res = await fetch(`${a.apiUrl}/v1/events`, { headers: a.authorized(), signal: stop.signal })
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/)
    reading = collect(res, events)
    await net.addPeer(['--bootstrap', a.tcpAddr])
    const deployed = await runCli(['deploy', MATH, '--replicas', '1', '--json', '--data-dir', a.dataDir])
    assert.equal(deployed.code, 0, deployed.stderr)
    fn = (JSON.parse(deployed.stdout) as { cid: string }).cid
  })
  after(async () => {
    stop.abort()
    await reading?.catch(() => {})
    await net?.close()
  })

  test('the peer-wide stream shows another peer joining', async () => {
    const b = net.peers[1]
    await waitFor('a peer:state event for the second peer', () => {
      return events.some(e => e.type === 'peer:state' && e.peer === b.peerId && e.state === 'joined')
    }, 30_000)
  })

  test('a streamed call reports its attempt and ends with its result; the peer-wide stream saw it too', async () => {
    const res = await fetch(`${a.apiUrl}/v1/call`, {
      method: 'POST',
      headers: a.authorized({ accept: 'text/event-stream', 'content-type': 'application/json' }),
      body: JSON.stringify({ fn, export: 'double', args: [21], on: a.peerId }),
      signal: AbortSignal.timeout(60_000)
    })
    assert.equal(res.status, 200)
    const got: CallStreamEvent[] = []
    await collect(res, got)
    const types = got.map(e => e.type)
    assert.deepEqual(types, ['call:started', 'call:attempt', 'call:done', 'result'])
    const last = got.at(-1) as Extract<CallStreamEvent, { type: 'result' }>
    assert.equal(last.result.value, 42)
    assert.equal(last.result.peer, a.peerId)
    const callId = (got[0] as Extract<ProgressEvent, { type: 'call:started' }>).callId
    await waitFor('the call on the peer-wide stream', () => events.some(e => e.type === 'call:done' && e.callId === callId))
  })

  test('a streamed call that fails ends with an error event, not an HTTP error', async () => {
    const res = await fetch(`${a.apiUrl}/v1/call`, {
      method: 'POST',
      headers: a.authorized({ accept: 'text/event-stream' }),
      body: JSON.stringify({ fn, export: 'noSuchExport', args: [], on: a.peerId }),
      signal: AbortSignal.timeout(60_000)
    })
    assert.equal(res.status, 200)
    const got: CallStreamEvent[] = []
    await collect(res, got)
    const last = got.at(-1)
    assert.equal(last?.type, 'error')
    assert.match((last as Extract<CallStreamEvent, { type: 'error' }>).error.message, /noSuchExport/)
    assert.ok(got.some(e => e.type === 'call:failed'))
  })

  test('the event stream needs the API token', async () => {
    const res = await fetch(`${a.apiUrl}/v1/events`, { signal: AbortSignal.timeout(10_000) })
    assert.equal(res.status, 401)
    await res.body?.cancel()
  })
})
