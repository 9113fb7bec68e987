import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { EventStreamError, SseDecoder, encodeSse } from '../../src/api/events.ts'
import type { ProgressEvent } from '../../src/api/events.ts'

const events: ProgressEvent[] = [
  { type: 'call:started', callId: 'a-1', fn: 'bafy', export: 'double', atMs: 1 },
  { type: 'call:attempt', callId: 'a-1', attempt: 1, peer: '12D3KooW', atMs: 2 },
  { type: 'call:retry', callId: 'a-1', attempt: 1, peer: '12D3KooW', error: { name: 'E', code: 'ERR_X', message: 'line one\nline two', retryable: true }, atMs: 3 },
  { type: 'peer:state', peer: 'p', state: 'alive', atMs: 4 }
]

describe('Server-Sent Events', () => {
  test('every event round-trips, at every split of the byte stream', () => {
    const bytes = new TextEncoder().encode(events.map((e, i) => encodeSse(i + 1, e)).join(''))
    for (let cut = 0; cut <= bytes.byteLength; cut++) {
      const decoder = new SseDecoder()
      const got = [...decoder.push(bytes.subarray(0, cut)), ...decoder.push(bytes.subarray(cut))]
      assert.deepEqual(got, events, `split at ${cut}`)
    }
  })

  test('one byte at a time, with CRLF line ends and comments', () => {
    const text = ': keep-alive\r\n' + events.map((e, i) => encodeSse(i + 1, e).replaceAll('\n', '\r\n')).join('')
    const decoder = new SseDecoder()
    const got: unknown[] = []
    for (const byte of new TextEncoder().encode(text)) got.push(...decoder.push(Uint8Array.of(byte)))
    assert.deepEqual(got, events)
  })

  test('multi-byte characters split across chunks survive', () => {
    const event: ProgressEvent = { type: 'deploy:started', fn: 'f', name: 'ünïcødé ✓', asked: 3, atMs: 5 }
    const bytes = new TextEncoder().encode(encodeSse(1, event))
    for (let cut = 0; cut <= bytes.byteLength; cut++) {
      const decoder = new SseDecoder()
      assert.deepEqual([...decoder.push(bytes.subarray(0, cut)), ...decoder.push(bytes.subarray(cut))], [event])
    }
  })

  test('an event one character past the limit is refused, one at the limit passes', () => {
    const data = JSON.stringify({ type: 'x', pad: 'y'.repeat(100) })
    const limit = data.length
    const ok = new SseDecoder(limit)
    assert.deepEqual(ok.push(new TextEncoder().encode(`data: ${data}\n\n`)), [JSON.parse(data)])
    const tooLong = new SseDecoder(limit - 1)
    assert.throws(() => tooLong.push(new TextEncoder().encode(`data: ${data}\n\n`)), EventStreamError)
    // An endless line with no newline is refused as it grows, not buffered without end.
    const endless = new SseDecoder(1000)
    assert.throws(() => { for (let i = 0; i < 100; i++) endless.push(new TextEncoder().encode('data: ' + 'z'.repeat(50))) }, EventStreamError)
  })

  test('data that is not JSON is a named error', () => {
    assert.throws(() => new SseDecoder().push(new TextEncoder().encode('data: {nope\n\n')), (err: Error) => err.name === 'EventStreamError')
  })
})
