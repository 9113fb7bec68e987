/**
 * The local HTTP API against the requests a web page or another local user can make: a foreign
 * Origin (any page the user visits may POST to 127.0.0.1), a foreign Host (DNS rebinding), no
 * token or the wrong one. Each is refused before anything runs or is stored; the CLI, which
 * reads the token from the data dir, keeps working.
 */
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { TestNetwork, readApiToken, runCli } from '../helpers/peers.ts'
import type { TestPeer } from '../helpers/peers.ts'
import type { IncomingHttpHeaders } from 'node:http'

const MATH = fileURLToPath(new URL('../fixtures/deploy/math.ts', import.meta.url))

interface RawAnswer { status: number, headers: IncomingHttpHeaders, body: { error?: { code: string, message: string, hint?: string } } & Record<string, unknown> }

/** A request with exactly these headers (fetch may not set Host; node:http may). */
async function raw (url: string, options: { method?: string, path: string, headers?: Record<string, string>, body?: Uint8Array | string }): Promise<RawAnswer> {
  const { hostname, port } = new URL(url)
  return await new Promise<RawAnswer>((resolve, reject) => {
    const req = request({ hostname, port, method: options.method ?? 'GET', path: options.path, headers: options.headers, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString()
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text === '' ? {} : JSON.parse(text) })
      })
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer to ${options.path} within 30 s`)))
    req.on('error', reject)
    req.end(options.body)
  })
}

describe('the local HTTP API refuses foreign origins, foreign hosts and missing tokens', { timeout: 180_000 }, () => {
  let net: TestNetwork
  let peer: TestPeer
  let port: string
  let mathId: string

  const blobCount = async (): Promise<number> => (await peer.api<{ blobs: { count: number } }>('/v1/status')).blobs.count
  const auth = (): Record<string, string> => peer.authorized()

  before(async () => {
    net = await TestNetwork.create()
    peer = await net.addPeer()
    port = new URL(peer.apiUrl).port
    const deployed = await runCli(['deploy', MATH, '--replicas', '1', '--json', '--data-dir', peer.dataDir], { timeoutMs: 60_000 })
    assert.equal(deployed.code, 0, deployed.stderr)
    mathId = (JSON.parse(deployed.stdout) as { cid: string }).cid
  })
  after(async () => { await net?.close() })

  test('the token file is 32 random bytes in base64url, mode 0600', async () => {
    const info = await stat(join(peer.dataDir, 'api.token'))
    assert.equal(info.mode & 0o777, 0o600)
    assert.match(peer.apiToken, /^[A-Za-z0-9_-]{43}$/)
    assert.equal(Buffer.from(peer.apiToken, 'base64url').byteLength, 32)
  })

  test('a POST from a foreign Origin is refused with 403 and stores nothing', async () => {
    const before = await blobCount()
    for (const origin of ['http://evil.example', 'null', `http://127.0.0.1.evil.example:${port}`, `https://127.0.0.1:${port}`]) {
      const res = await raw(peer.apiUrl, { method: 'POST', path: '/v1/blobs', headers: { ...auth(), origin }, body: `from ${origin}` })
      assert.equal(res.status, 403, origin)
      assert.equal(res.body.error?.code, 'ERR_FORBIDDEN_ORIGIN', origin)
      assert.equal(res.headers['access-control-allow-origin'], undefined)
    }
    assert.equal(await blobCount(), before)
    // The API's own origin is its own: allowed, and stored.
    const own = await raw(peer.apiUrl, { method: 'POST', path: '/v1/blobs', headers: { ...auth(), origin: `http://localhost:${port}` }, body: 'from the API\'s own origin' })
    assert.equal(own.status, 200, JSON.stringify(own.body))
    assert.equal(await blobCount(), before + 1)
  })

  test('a call from a foreign Origin is refused with 403 and runs nothing; without the Origin it runs', async () => {
    // A fresh argument: had the task run, its result would be a new blob.
    const x = 1_000_000 + Math.floor(Math.random() * 1_000_000)
    const body = JSON.stringify({ fn: mathId, export: 'double', args: [x] })
    const before = await blobCount()
    const refused = await raw(peer.apiUrl, { method: 'POST', path: '/v1/call', headers: { ...auth(), origin: 'http://evil.example', 'content-type': 'text/plain' }, body })
    assert.equal(refused.status, 403)
    assert.equal(refused.body.error?.code, 'ERR_FORBIDDEN_ORIGIN')
    assert.equal(await blobCount(), before)
    const ran = await raw(peer.apiUrl, { method: 'POST', path: '/v1/call', headers: auth(), body })
    assert.equal(ran.status, 200, JSON.stringify(ran.body))
    assert.equal(ran.body.value, 2 * x)
    assert.equal(await blobCount(), before + 1)
  })

  test('a foreign Host is refused with 403 (DNS rebinding); loopback names with the API port are served', async () => {
    for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1:${Number(port) === 65535 ? 65534 : Number(port) + 1}`, `localhost.evil.example:${port}`]) {
      const res = await raw(peer.apiUrl, { path: '/v1/status', headers: { ...auth(), host } })
      assert.equal(res.status, 403, host)
      assert.equal(res.body.error?.code, 'ERR_FORBIDDEN_HOST', host)
      const post = await raw(peer.apiUrl, { method: 'POST', path: '/v1/blobs', headers: { ...auth(), host }, body: `for ${host}` })
      assert.equal(post.status, 403, host)
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`]) {
      const res = await raw(peer.apiUrl, { path: '/v1/status', headers: { ...auth(), host } })
      assert.equal(res.status, 200, host)
    }
  })

  test('CORS preflights get no CORS headers', async () => {
    const preflight = await raw(peer.apiUrl, {
      method: 'OPTIONS',
      path: '/v1/call',
      headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' }
    })
    assert.equal(preflight.status, 403)
    const plain = await raw(peer.apiUrl, { method: 'OPTIONS', path: '/v1/call', headers: auth() })
    assert.equal(plain.status, 405)
    assert.equal(plain.body.error?.code, 'ERR_METHOD_NOT_ALLOWED')
    for (const res of [preflight, plain]) {
      assert.deepEqual(Object.keys(res.headers).filter(h => h.startsWith('access-control-')), [])
    }
  })

  test('no token or a wrong token gets 401 with a hint naming the token file; the right token works', async () => {
    const before = await blobCount()
    const wrong = [undefined, '', 'Bearer', `Bearer ${'A'.repeat(43)}`, `Bearer ${peer.apiToken}x`, `Bearer ${peer.apiToken.slice(1)}`, `Basic ${peer.apiToken}`, peer.apiToken]
    for (const authorization of wrong) {
      const headers: Record<string, string> = authorization === undefined ? {} : { authorization }
      for (const [method, path] of [['POST', '/v1/blobs'], ['POST', '/v1/call'], ['POST', '/v1/functions'], ['GET', '/v1/status'], ['GET', '/v1/peers']]) {
        const res = await raw(peer.apiUrl, { method, path, headers, body: method === 'POST' ? 'unauthorized bytes' : undefined })
        assert.equal(res.status, 401, `${method} ${path} with ${String(authorization)}`)
        assert.equal(res.body.error?.code, 'ERR_UNAUTHORIZED')
        assert.ok(res.body.error?.hint?.includes(join(peer.dataDir, 'api.token')), res.body.error?.hint)
        assert.match(String(res.headers['www-authenticate']), /^Bearer/)
      }
    }
    assert.equal(await blobCount(), before)
    const ok = await raw(peer.apiUrl, { method: 'POST', path: '/v1/blobs', headers: auth(), body: 'authorized bytes' })
    assert.equal(ok.status, 200, JSON.stringify(ok.body))
    assert.equal(await blobCount(), before + 1)
  })

  test('the CLI reaches the peer through --data-dir, and through --api with --api-token or RHIZOME_API_TOKEN', async () => {
    const file = join(net.root, 'cli-blob.txt')
    await writeFile(file, 'bytes put by the CLI')
    const put = await runCli(['blob', 'put', file, '--json', '--data-dir', peer.dataDir])
    assert.equal(put.code, 0, put.stderr)
    const called = await runCli(['call', mathId, 'double', '21', '--json', '--data-dir', peer.dataDir], { timeoutMs: 60_000 })
    assert.equal(called.code, 0, called.stderr)
    assert.equal((JSON.parse(called.stdout) as { value: number }).value, 42)

    const noToken = await runCli(['status', '--api', peer.apiUrl], { env: { RHIZOME_API_TOKEN: '' } })
    assert.equal(noToken.code, 1)
    assert.match(noToken.stderr, /ERR_UNAUTHORIZED/)
    assert.match(noToken.stderr, /api\.token/)
    const byFlag = await runCli(['status', '--api', peer.apiUrl, '--api-token', peer.apiToken, '--json'])
    assert.equal(byFlag.code, 0, byFlag.stderr)
    const byEnv = await runCli(['status', '--api', peer.apiUrl, '--json'], { env: { RHIZOME_API_TOKEN: peer.apiToken } })
    assert.equal(byEnv.code, 0, byEnv.stderr)
  })

  test('a call that outlasts its timeoutMs gets 504 from the peer, and the CLI reports the peer\'s error', async () => {
    const res = await raw(peer.apiUrl, { method: 'POST', path: '/v1/call', headers: auth(), body: JSON.stringify({ fn: mathId, export: 'spin', args: [4000], timeoutMs: 300 }) })
    assert.equal(res.status, 504, JSON.stringify(res.body))
    assert.equal(res.body.error?.code, 'ERR_TIMEOUT')
    assert.match(res.body.error?.message ?? '', /did not finish within 300 ms/)

    const cli = await runCli(['call', mathId, 'spin', '4000', '--timeout-ms', '300', '--data-dir', peer.dataDir], { timeoutMs: 60_000 })
    assert.equal(cli.code, 1)
    assert.match(cli.stderr, /did not finish within 300 ms \(ERR_TIMEOUT\)/)
    assert.doesNotMatch(cli.stderr, /no Rhizome peer answers/)

    // A peer that is not in the network: the caller's peer answers (502 or 504), the CLI says so.
    const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const unreachable = await runCli(['call', mathId, 'double', '1', '--on', stranger, '--timeout-ms', '1500', '--data-dir', peer.dataDir], { timeoutMs: 60_000 })
    assert.equal(unreachable.code, 1)
    assert.match(unreachable.stderr, /ERR_PEER_UNAVAILABLE|ERR_TIMEOUT/)
    assert.doesNotMatch(unreachable.stderr, /no Rhizome peer answers/)
  })

  test('the token survives a restart unchanged, still mode 0600, and still works', async () => {
    const token = peer.apiToken
    const before = await stat(join(peer.dataDir, 'api.token'))
    await peer.stop()
    await peer.start()
    assert.equal(await readApiToken(peer.dataDir), token)
    const afterInfo = await stat(join(peer.dataDir, 'api.token'))
    assert.equal(afterInfo.mode & 0o777, 0o600)
    assert.equal(afterInfo.ino, before.ino)
    assert.equal(afterInfo.mtimeMs, before.mtimeMs)
    const status = await raw(peer.apiUrl, { path: '/v1/status', headers: { authorization: `Bearer ${token}` } })
    assert.equal(status.status, 200)
  })
})
