/**
 * The API client (what the CLI and the SDK use) against a real local HTTP server: tokens and
 * where they come from, deadlines that cover the body too, and what each failure blames.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, beforeEach, describe, test } from 'node:test'
import { CALL_ANSWER_MARGIN_MS, RhizomeClient, callWaitMs } from '../../src/api/client.ts'
import { connect, readToken, resolveDataDir } from '../../src/api/connect.ts'
import { CALL_TIMEOUT_MS_DEFAULT, CALL_TIMEOUT_MS_MAX } from '../../src/api/limits.ts'
import { CALL_TIMEOUT_MS_DEFAULT as PEER_CALL_TIMEOUT_MS_DEFAULT } from '../../src/net/task-service.ts'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'

/** How long the slow modes hold their answer: far past the client deadlines below. */
const SLOW_ANSWER_MS = 20_000
/** A valid-looking token (43 base64url characters, as a peer makes). */
const TOKEN = 'A'.repeat(43)

type Mode = 'ok' | 'slow' | 'slow-body' | 'busy' | 'cut'

describe('RhizomeClient and connect', () => {
  let server: Server
  let url: string
  let mode: Mode = 'ok'
  let root: string
  const seen: Array<{ method: string, path: string, authorization?: string }> = []
  const timers = new Set<ReturnType<typeof setTimeout>>()

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'rhizome-api-client-'))
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      seen.push({ method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization })
      req.resume()
      if (mode === 'slow') {
        const timer = setTimeout(() => { timers.delete(timer); res.end('{}') }, SLOW_ANSWER_MS)
        timers.add(timer)
        return
      }
      if (mode === 'slow-body') {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.write('{"partial":')
        const timer = setTimeout(() => { timers.delete(timer); res.end('1}') }, SLOW_ANSWER_MS)
        timers.add(timer)
        return
      }
      if (mode === 'cut') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' })
        res.write('{"peerId":', () => res.socket?.destroy())
        return
      }
      if (mode === 'busy') {
        res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' })
        res.end(JSON.stringify({ error: { name: 'QueueFullError', code: 'ERR_QUEUE_FULL', message: 'the peer is busy', retryable: true, hint: 'retry' } }))
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ peerId: 'p', peers: [] }))
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    assert.ok(address !== null && typeof address === 'object')
    url = `http://127.0.0.1:${address.port}`
  })
  beforeEach(() => { mode = 'ok' })
  after(async () => {
    for (const timer of timers) clearTimeout(timer)
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => resolve()))
    await rm(root, { recursive: true, force: true })
  })

  /** A data dir as a running peer leaves it: api.json with our URL, and api.token unless token is null. */
  async function dataDir (name: string, token: string | null = TOKEN): Promise<string> {
    const dir = join(root, name)
    await rm(dir, { recursive: true, force: true })
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'api.json'), JSON.stringify({ url, peerId: 'p' }))
    if (token !== null) await writeFile(join(dir, 'api.token'), token + '\n')
    return dir
  }

  test('sends the token as a bearer token, and none when it has none', async () => {
    await new RhizomeClient({ url, token: 'tok_en-123' }).status()
    assert.equal(seen.at(-1)?.authorization, 'Bearer tok_en-123')
    await new RhizomeClient({ url }).status()
    assert.equal(seen.at(-1)?.authorization, undefined)
  })

  test('a peer that does not answer in time: ERR_API_TIMEOUT naming the URL and the request, not "no peer answers"', async () => {
    const api = new RhizomeClient({ url, token: 't' })
    for (const slow of ['slow', 'slow-body'] as const) {
      mode = slow
      await assert.rejects(api.putBlob(new Uint8Array([1]), { timeoutMs: 200 }), (err: Error & { code?: string, hint?: string }) => {
        assert.equal(err.name, 'ApiTimeoutError', `${slow}: ${err.name}: ${err.message}`)
        assert.equal(err.code, 'ERR_API_TIMEOUT')
        assert.ok(err.message.includes(url), err.message)
        assert.match(err.message, /did not answer POST \/v1\/blobs in time \(waited 200 ms\)/)
        assert.doesNotMatch(err.message, /no Rhizome peer answers/)
        assert.match(err.hint ?? '', /peer is running/)
        return true
      })
    }
  })

  test('an answer cut off half-way is ERR_API saying so, not a raw fetch error', async () => {
    mode = 'cut'
    await assert.rejects(new RhizomeClient({ url }).status({ timeoutMs: 5000 }), (err: Error & { code?: string, hint?: string }) => {
      assert.equal(err.code, 'ERR_API', err.message)
      assert.match(err.message, /the answer from .* to GET \/v1\/status was cut off/)
      assert.match(err.hint ?? '', /may have stopped/)
      return true
    })
  })

  test('nothing listening: ERR_NO_PEER naming the URL', async () => {
    const closed = createServer()
    await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as { port: number }).port
    await new Promise<void>(resolve => closed.close(() => resolve()))
    await assert.rejects(new RhizomeClient({ url: `http://127.0.0.1:${port}` }).status({ timeoutMs: 5000 }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_NO_PEER')
      assert.ok(err.message.includes(`http://127.0.0.1:${port}`))
      return true
    })
  })

  test('the peer\'s own failure comes through with its name, code and hint', async () => {
    mode = 'busy'
    await assert.rejects(new RhizomeClient({ url }).putBlob(new Uint8Array(1)), { name: 'QueueFullError', code: 'ERR_QUEUE_FULL', message: 'the peer is busy', hint: 'retry' })
  })

  test('Ctrl-C during a request is ERR_ABORTED, not a timeout', async () => {
    mode = 'slow'
    const controller = new AbortController()
    const pending = new RhizomeClient({ url, signal: controller.signal }).status({ timeoutMs: 10_000 })
    setTimeout(() => controller.abort(), 50)
    await assert.rejects(pending, { name: 'ApiAbortedError', code: 'ERR_ABORTED' })
  })

  test('a call waits longer than the peer does; the peer and clients share one default', async () => {
    assert.equal(PEER_CALL_TIMEOUT_MS_DEFAULT, CALL_TIMEOUT_MS_DEFAULT)
    assert.ok(CALL_ANSWER_MARGIN_MS > 0)
    assert.equal(callWaitMs(undefined), CALL_TIMEOUT_MS_DEFAULT + CALL_ANSWER_MARGIN_MS)
    assert.equal(callWaitMs(500), 500 + CALL_ANSWER_MARGIN_MS)
    assert.equal(callWaitMs(CALL_TIMEOUT_MS_MAX), CALL_TIMEOUT_MS_MAX + CALL_ANSWER_MARGIN_MS)
    // Nonsense is the peer's to refuse (400); the client still waits a sane time for that answer.
    assert.equal(callWaitMs(Number.NaN), CALL_TIMEOUT_MS_DEFAULT + CALL_ANSWER_MARGIN_MS)
    assert.equal(callWaitMs(-5), CALL_TIMEOUT_MS_DEFAULT + CALL_ANSWER_MARGIN_MS)
    // An explicit request timeout still wins over the call's own wait.
    mode = 'slow'
    await assert.rejects(new RhizomeClient({ url }).call({ fn: 'f', export: 'e', args: [], timeoutMs: 60_000 }, { timeoutMs: 200 }), /did not answer POST \/v1\/call in time \(waited 200 ms\)/)
  })

  describe('connect: where the URL and the token come from', () => {
    test('from the data dir: api.json\'s URL and api.token\'s token', async () => {
      const dir = await dataDir('plain')
      const api = await connect({ dataDir: dir, env: {} })
      assert.equal(api.url, url)
      await api.status()
      assert.equal(seen.at(-1)?.authorization, `Bearer ${TOKEN}`)
    })

    test('the data dir defaults to RHIZOME_DATA_DIR; a given token wins over the file', async () => {
      const dir = await dataDir('from-env')
      await (await connect({ env: { RHIZOME_DATA_DIR: dir }, token: 'given' })).status()
      assert.equal(seen.at(-1)?.authorization, 'Bearer given')
    })

    test('with a URL: the given token, then RHIZOME_API_TOKEN, then the named data dir\'s api.token, else none', async () => {
      const dir = await dataDir('for-token', 'from-file')
      await (await connect({ url, token: 'flag', env: { RHIZOME_API_TOKEN: 'env' }, dataDir: dir })).status()
      assert.equal(seen.at(-1)?.authorization, 'Bearer flag')
      await (await connect({ url, env: { RHIZOME_API_TOKEN: 'env' }, dataDir: dir })).status()
      assert.equal(seen.at(-1)?.authorization, 'Bearer env')
      await (await connect({ url, env: { RHIZOME_API_TOKEN: '  ' }, dataDir: dir })).status()
      assert.equal(seen.at(-1)?.authorization, 'Bearer from-file')
      // RHIZOME_DATA_DIR alone is not a reason to read a token for some other URL.
      await (await connect({ url, env: { RHIZOME_DATA_DIR: dir } })).status()
      assert.equal(seen.at(-1)?.authorization, undefined)
    })

    test('no peer in the data dir: ERR_NO_PEER naming the dir, with a hint to start one', async () => {
      const dir = join(root, 'empty')
      await assert.rejects(connect({ dataDir: dir, env: {} }), (err: Error & { code?: string, hint?: string }) => {
        assert.equal(err.code, 'ERR_NO_PEER')
        assert.ok(err.message.includes(dir))
        assert.match(err.hint ?? '', /rhizome node start --data-dir/)
        return true
      })
    })

    test('a peer but no token: ERR_UNAUTHORIZED naming the file, before any request', async () => {
      const dir = await dataDir('no-token', null)
      const before = seen.length
      await assert.rejects(connect({ dataDir: dir, env: {} }), (err: Error & { code?: string, hint?: string }) => {
        assert.equal(err.code, 'ERR_UNAUTHORIZED')
        assert.ok(err.message.includes(join(dir, 'api.token')), err.message)
        assert.match(err.hint ?? '', /--api-token/)
        return true
      })
      assert.equal(seen.length, before)
    })

    test('a URL that is not http:// is refused as config', async () => {
      await assert.rejects(connect({ url: 'ftp://x', env: {} }), { code: 'ERR_CONFIG' })
      await assert.rejects(connect({ url: 'not a url', env: {} }), { code: 'ERR_CONFIG' })
    })

    test('a token file one byte past the limit is not read', async () => {
      const dir = await dataDir('big-token', null)
      await writeFile(join(dir, 'api.token'), 'x'.repeat(4096))
      assert.equal(await readToken(dir), 'x'.repeat(4096))
      await writeFile(join(dir, 'api.token'), 'x'.repeat(4097))
      await assert.rejects(readToken(dir), { code: 'ERR_API_TOKEN' })
    })

    test('resolveDataDir: flag, then RHIZOME_DATA_DIR, then ~/.rhizome; an empty path is refused', () => {
      assert.equal(resolveDataDir('/a', { RHIZOME_DATA_DIR: '/b' }), '/a')
      assert.equal(resolveDataDir(undefined, { RHIZOME_DATA_DIR: '/b' }), '/b')
      assert.match(resolveDataDir(undefined, {}), /\.rhizome$/)
      assert.throws(() => resolveDataDir('', {}), { code: 'ERR_CONFIG' })
    })
  })
})
