/**
 * An event stream to a client whose socket is backed up: with a backlog (a run's stream) up to
 * `backlogMax` events wait and are written once it drains, one past is counted and reported as
 * `events:dropped`; without one (the peer-wide stream) every event is counted. The last event is
 * always written, after those waiting. Real HTTP on 127.0.0.1.
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { test } from 'node:test'
import { SseDecoder } from '../../src/api/events.ts'
import { EventStream } from '../../src/node/http-api.ts'
import type { AddressInfo } from 'node:net'
import type { ProgressEvent } from '../../src/api/events.ts'

/** Larger than a socket's high-water mark (16 KiB): writing it backs the stream up at once. */
const BIG: ProgressEvent = { type: 'run:task:failed', runId: 'r', taskId: 'big', error: { name: 'E', code: 'ERR_X', message: 'x'.repeat(64 * 1024), retryable: false }, atMs: 0 }
const small = (i: number): ProgressEvent => ({ type: 'run:task:scheduled', runId: 'r', taskId: `t${i}`, fn: 'f', export: 'e', atMs: i })
const LAST: ProgressEvent = { type: 'run:finished', runId: 'r', status: 'finished', atMs: 1 }

/** Serve one stream: write BIG, then `count` small events at once, then (after the drain, or at once) the last. */
async function streamed (backlogMax: number | undefined, count: number, endAtOnce: boolean): Promise<Array<{ type: string, taskId?: string, count?: number }>> {
  const server = createServer((_req, res) => {
    const stream = new EventStream(res, backlogMax === undefined ? {} : { backlogMax })
    stream.send(BIG)
    for (let i = 0; i < count; i++) stream.send(small(i))
    if (endAtOnce) stream.end(LAST)
    else res.once('drain', () => { setImmediate(() => { stream.end(LAST) }) })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { signal: AbortSignal.timeout(10_000) })
    const decoder = new SseDecoder()
    const events: Array<{ type: string, taskId?: string, count?: number }> = []
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) events.push(...decoder.push(chunk) as Array<{ type: string }>)
    return events
  } finally {
    server.close()
  }
}

const shape = (events: Array<{ type: string, taskId?: string, count?: number }>): string[] =>
  events.map(e => e.type === 'events:dropped' ? `dropped ${e.count}` : e.taskId ?? e.type)

test('a backed-up stream holds back up to backlogMax events and writes them when it drains', async () => {
  assert.deepEqual(shape(await streamed(3, 3, false)), ['big', 't0', 't1', 't2', 'run:finished'])
})

test('one past backlogMax is counted and reported as events:dropped after those held back', async () => {
  assert.deepEqual(shape(await streamed(3, 4, false)), ['big', 't0', 't1', 't2', 'dropped 1', 'run:finished'])
})

test('without a backlog every event written while backed up is counted', async () => {
  assert.deepEqual(shape(await streamed(undefined, 4, false)), ['big', 'dropped 4', 'run:finished'])
})

test('the last event is written at once, after the events held back and the count of those dropped', async () => {
  assert.deepEqual(shape(await streamed(2, 3, true)), ['big', 't0', 't1', 'dropped 1', 'run:finished'])
})
