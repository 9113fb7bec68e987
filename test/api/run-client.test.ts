/**
 * The run methods of the API client against a real local HTTP server serving canned answers:
 * the requests they make, and how a run's event stream is read (split messages, the end at
 * run:finished, a stream cut short, Ctrl-C, a deadline that covers the answer but not the stream).
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { after, before, beforeEach, describe, test } from 'node:test'
import { RhizomeClient } from '../../src/api/client.ts'
import { encodeSse } from '../../src/api/events.ts'
import type { ProgressEvent } from '../../src/api/events.ts'
import type { RunReport } from '../../src/api/types.ts'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'

const TOKEN = 'B'.repeat(43)
const RUN = 'bafyreibmb3pfd2cqgkbe2msurdgpuznwnkgxn2n6d2wqnvrkfh6dqyahky'

interface Seen { method: string, path: string, authorization?: string, accept?: string, body: string }

const events: ProgressEvent[] = [
  { type: 'run:started', runId: RUN, workflow: 'bafyw', export: 'A', atMs: 1 },
  { type: 'run:task:scheduled', runId: RUN, taskId: 't1', fn: 'bafyf', export: 'B', atMs: 2 },
  { type: 'run:task:started', runId: RUN, taskId: 't1', peer: 'p1', attempt: 1, atMs: 3 },
  { type: 'run:task:done', runId: RUN, taskId: 't1', peer: 'p1', ms: 4, atMs: 7 },
  { type: 'run:finished', runId: RUN, status: 'finished', atMs: 8 }
]

function sse (list: ProgressEvent[]): string {
  return list.map((e, i) => encodeSse(i + 1, e)).join('')
}

describe('RhizomeClient: runs', () => {
  let server: Server
  let url: string
  let client: RhizomeClient
  const seen: Seen[] = []
  let handler: (req: IncomingMessage, res: ServerResponse) => void = () => {}
  /** Requests whose connection the client closed. */
  let closed = 0

  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        seen.push({ method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization, accept: req.headers.accept, body: Buffer.concat(chunks).toString() })
        handler(req, res)
      })
      res.on('close', () => { if (!res.writableFinished) closed++ })
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    assert.ok(address !== null && typeof address === 'object')
    url = `http://127.0.0.1:${address.port}`
    client = new RhizomeClient({ url, token: TOKEN })
  })
  beforeEach(() => { seen.length = 0; closed = 0 })
  after(async () => {
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => resolve()))
  })

  function json (status: number, body: unknown): (req: IncomingMessage, res: ServerResponse) => void {
    return (_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
  }

  async function waitFor (condition: () => boolean): Promise<void> {
    for (let i = 0; i < 200 && !condition(); i++) await new Promise(resolve => setTimeout(resolve, 10))
    assert.ok(condition(), 'timed out waiting')
  }

  test('startRun posts the request as JSON with the token, and answers the run id', async () => {
    handler = json(200, { runId: RUN })
    const started = await client.startRun({ workflow: 'bafyw', export: 'A', args: [5] })
    assert.deepEqual(started, { runId: RUN })
    assert.deepEqual(seen.map(s => [s.method, s.path, s.authorization]), [['POST', '/v1/runs', `Bearer ${TOKEN}`]])
    assert.deepEqual(JSON.parse(seen[0].body), { workflow: 'bafyw', export: 'A', args: [5] })
  })

  test('runs() reads { runs }, with limit and status in the query; bad ones are refused before any request', async () => {
    const row = { runId: RUN, workflow: 'bafyw', export: 'A', status: 'running', startedMs: 1, driver: 'p1' }
    handler = json(200, { runs: [row] })
    assert.deepEqual(await client.runs(), [row])
    assert.deepEqual(await client.runs({ limit: 5, status: 'running' }), [row])
    assert.deepEqual(seen.map(s => s.path), ['/v1/runs', '/v1/runs?limit=5&status=running'])
    await assert.rejects(client.runs({ limit: 0 }), { name: 'InvalidInputError' })
    await assert.rejects(client.runs({ status: 'done' as never }), { name: 'InvalidInputError' })
    assert.equal(seen.length, 2)
  })

  test('run(id) and cancelRun(id) name the run in the path; the peer\'s error comes back by name', async () => {
    const report: RunReport = { runId: RUN, workflow: 'bafyw', export: 'A', status: 'finished', startedMs: 1, finishedMs: 9, driver: 'p1', result: 14, tasks: [] }
    handler = json(200, report)
    assert.deepEqual(await client.run(RUN), report)
    handler = json(200, { runId: RUN, status: 'cancelled' })
    await client.cancelRun(RUN)
    assert.deepEqual(seen.map(s => [s.method, s.path]), [['GET', `/v1/runs/${RUN}`], ['POST', `/v1/runs/${RUN}/cancel`]])
    handler = json(404, { error: { name: 'NotFoundError', code: 'ERR_NOT_FOUND', message: 'no run x/y', retryable: false, hint: 'rhizome runs' } })
    await assert.rejects(client.run('x/y'), { name: 'NotFoundError', code: 'ERR_NOT_FOUND', hint: 'rhizome runs' })
    assert.equal(seen.at(-1)?.path, '/v1/runs/x%2Fy')
  })

  test('runEvents reads messages split anywhere, and ends after run:finished without waiting for the peer to close', async () => {
    const text = sse(events)
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' })
      // Cut in the middle of messages, and keep the stream open after run:finished.
      const cuts = [5, 37, 38, 120, 300]
      let at = 0
      for (const cut of cuts) { res.write(text.slice(at, cut)); at = cut }
      res.write(text.slice(at))
    }
    const got: ProgressEvent[] = []
    for await (const event of client.runEvents(RUN)) got.push(event)
    assert.deepEqual(got, events)
    assert.equal(seen[0].path, `/v1/runs/${RUN}/events`)
    assert.equal(seen[0].accept, 'text/event-stream')
    assert.equal(seen[0].authorization, `Bearer ${TOKEN}`)
    await waitFor(() => closed === 1)
  })

  test('a stream that ends before run:finished is ApiAnswerError with a hint to follow again', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.end(sse(events.slice(0, 2)))
    }
    const got: ProgressEvent[] = []
    await assert.rejects(async () => { for await (const event of client.runEvents(RUN)) got.push(event) }, (err: Error & { hint?: string }) => {
      assert.equal(err.name, 'ApiAnswerError')
      assert.match(err.hint ?? '', /run-status .* --wait/)
      return true
    })
    assert.equal(got.length, 2)
  })

  test('leaving the loop early closes the connection', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write(sse(events.slice(0, 3)))
    }
    for await (const event of client.runEvents(RUN)) {
      if (event.type === 'run:task:scheduled') break
    }
    await waitFor(() => closed === 1)
  })

  test('the caller\'s signal ends the stream with ApiAbortedError and closes the connection', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write(sse(events.slice(0, 1)))
    }
    const controller = new AbortController()
    await assert.rejects(async () => {
      for await (const event of client.runEvents(RUN, { signal: controller.signal })) {
        if (event.type === 'run:started') controller.abort()
      }
    }, { name: 'ApiAbortedError' })
    await waitFor(() => closed === 1)
  })

  test('timeoutMs bounds the answer, not the stream: a quiet stream past it is read to the end', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write(sse(events.slice(0, 1)))
      setTimeout(() => { res.end(sse(events).slice(sse(events.slice(0, 1)).length)) }, 300)
    }
    const got: ProgressEvent[] = []
    for await (const event of client.runEvents(RUN, { timeoutMs: 100 })) got.push(event)
    assert.equal(got.length, events.length)
    // No answer at all within it is ApiTimeoutError.
    handler = () => {}
    await assert.rejects(async () => { for await (const _ of client.runEvents(RUN, { timeoutMs: 100 })) break }, { name: 'ApiTimeoutError' })
  })

  test('an answer that is not an event stream, or a peer error, is reported as such', async () => {
    handler = json(200, { runId: RUN })
    await assert.rejects(async () => { for await (const _ of client.runEvents(RUN)) break }, { name: 'ApiAnswerError', message: /not an event stream/ })
    handler = json(404, { error: { name: 'NotFoundError', code: 'ERR_NOT_FOUND', message: 'no run', retryable: false } })
    await assert.rejects(async () => { for await (const _ of client.runEvents(RUN)) break }, { name: 'NotFoundError' })
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.end('data: [1,2]\n\n')
    }
    await assert.rejects(async () => { for await (const _ of client.runEvents(RUN)) break }, { name: 'ApiAnswerError', message: /not an object with a type/ })
  })

  test('no peer at the URL is ApiUnreachableError', async () => {
    const nobody = new RhizomeClient({ url: 'http://127.0.0.1:1', token: TOKEN })
    await assert.rejects(async () => { for await (const _ of nobody.runEvents(RUN)) break }, { name: 'ApiUnreachableError' })
    await assert.rejects(nobody.startRun({ workflow: 'w', export: 'A', args: [] }), { name: 'ApiUnreachableError' })
  })
})
