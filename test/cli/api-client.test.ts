/** The CLI's API client against a real local HTTP server: tokens, deadlines, and what it blames. */
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { after, before, describe, test } from 'node:test'
import { ApiClient, CALL_ANSWER_MARGIN_MS, PEER_CALL_TIMEOUT_MS_DEFAULT, callWaitMs } from '../../src/cli/api-client.ts'
import { CALL_TIMEOUT_MS_DEFAULT } from '../../src/net/task-service.ts'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'

/** How long the slow route holds its answer: far past the client deadlines below. */
const SLOW_ANSWER_MS = 20_000

describe('ApiClient', () => {
  let server: Server
  let url: string
  const seen: Array<{ path: string, authorization?: string }> = []
  const timers = new Set<ReturnType<typeof setTimeout>>()

  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      seen.push({ path: req.url ?? '', authorization: req.headers.authorization })
      req.resume()
      if (req.url === '/slow') {
        const timer = setTimeout(() => { timers.delete(timer); res.end('{}') }, SLOW_ANSWER_MS)
        timers.add(timer)
        return
      }
      if (req.url === '/slow-body') {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.write('{"partial":')
        const timer = setTimeout(() => { timers.delete(timer); res.end('1}') }, SLOW_ANSWER_MS)
        timers.add(timer)
        return
      }
      if (req.url === '/busy') {
        res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' })
        res.end(JSON.stringify({ error: { name: 'QueueFullError', code: 'ERR_QUEUE_FULL', message: 'the peer is busy', retryable: true, hint: 'retry' } }))
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ ok: true }))
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    assert.ok(address !== null && typeof address === 'object')
    url = `http://127.0.0.1:${address.port}`
  })
  after(async () => {
    for (const timer of timers) clearTimeout(timer)
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => resolve()))
  })

  test('sends the token as a bearer token', async () => {
    const api = new ApiClient(url, { token: 'tok_en-123' })
    assert.deepEqual(await api.json('GET', '/ok'), { ok: true })
    assert.equal(seen.at(-1)?.authorization, 'Bearer tok_en-123')
    await new ApiClient(url).json('GET', '/ok')
    assert.equal(seen.at(-1)?.authorization, undefined)
  })

  test('a peer that does not answer within the request timeout: ERR_TIMEOUT naming the URL, not "no peer answers"', async () => {
    const api = new ApiClient(url, { token: 't' })
    for (const path of ['/slow', '/slow-body']) {
      await assert.rejects(api.json('POST', path, new Uint8Array([1]), { timeoutMs: 200 }), (err: Error & { code?: string }) => {
        assert.equal(err.name, 'CliError')
        assert.equal(err.code, 'ERR_TIMEOUT', `${path}: ${err.message}`)
        assert.ok(err.message.includes(`${url}`), err.message)
        assert.match(err.message, /did not answer .* in time \(waited 200 ms\)/)
        assert.doesNotMatch(err.message, /no Rhizome peer answers/)
        return true
      })
    }
  })

  test('nothing listening: ERR_NO_PEER naming the URL', async () => {
    const closed = createServer()
    await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as { port: number }).port
    await new Promise<void>(resolve => closed.close(() => resolve()))
    await assert.rejects(new ApiClient(`http://127.0.0.1:${port}`).json('GET', '/v1/status', undefined, { timeoutMs: 5000 }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_NO_PEER')
      assert.ok(err.message.includes(`http://127.0.0.1:${port}`))
      return true
    })
  })

  test('the peer\'s own failure comes through with its code and hint', async () => {
    await assert.rejects(new ApiClient(url).json('POST', '/busy'), { code: 'ERR_QUEUE_FULL', message: 'the peer is busy', hint: 'retry' })
  })

  test('Ctrl-C during a request is ERR_ABORTED, not a timeout', async () => {
    const controller = new AbortController()
    const pending = new ApiClient(url, { signal: controller.signal }).json('GET', '/slow', undefined, { timeoutMs: 10_000 })
    setTimeout(() => controller.abort(), 50)
    await assert.rejects(pending, { code: 'ERR_ABORTED' })
  })

  test('the CLI waits for a call longer than the peer does', () => {
    assert.equal(PEER_CALL_TIMEOUT_MS_DEFAULT, CALL_TIMEOUT_MS_DEFAULT, 'the CLI\'s copy of the peer\'s default call timeout is out of date')
    assert.ok(CALL_ANSWER_MARGIN_MS > 0)
    assert.equal(callWaitMs(undefined), CALL_TIMEOUT_MS_DEFAULT + CALL_ANSWER_MARGIN_MS)
    assert.equal(callWaitMs(500), 500 + CALL_ANSWER_MARGIN_MS)
    assert.equal(callWaitMs(3_600_000), 3_600_000 + CALL_ANSWER_MARGIN_MS)
    // Nonsense is the peer's to refuse (400); the CLI still waits a sane time for that answer.
    assert.equal(callWaitMs(Number.NaN), CALL_TIMEOUT_MS_DEFAULT + CALL_ANSWER_MARGIN_MS)
    assert.equal(callWaitMs(-5), CALL_TIMEOUT_MS_DEFAULT + CALL_ANSWER_MARGIN_MS)
  })
})
