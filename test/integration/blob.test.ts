/** Blobs through the CLI on real peers: byte-identical round trip, CID as multiformats computes it, corruption refused, fetch from another peer verified. */
import assert from 'node:assert/strict'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { TestNetwork, runCli, waitFor } from '../helpers/peers.ts'
import type { TestPeer } from '../helpers/peers.ts'

async function findBlobFile (dataDir: string, cid: string): Promise<string> {
  for (const shard of await readdir(join(dataDir, 'blobs'))) {
    const names = await readdir(join(dataDir, 'blobs', shard)).catch(() => [] as string[])
    if (names.includes(cid)) return join(dataDir, 'blobs', shard, cid)
  }
  throw new Error(`no file for ${cid}`)
}

describe('blobs on real peers', { timeout: 120_000 }, () => {
  let net: TestNetwork
  let a: TestPeer
  let b: TestPeer
  const bytes = new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => (i * 31 + (i >> 11)) & 0xff)

  before(async () => {
    net = await TestNetwork.create()
    a = await net.addPeer()
    b = await net.addPeer(['--bootstrap', a.tcpAddr])
    await waitFor('b to see a', async () => (await b.peers()).some(p => p.peerId === a.peerId && p.state === 'alive'))
  })
  after(async () => { await net?.close() })

  let cid: string

  test('put then get is byte-identical, and the CID is the one multiformats computes', async () => {
    const file = join(net.root, 'input.bin')
    await writeFile(file, bytes)
    const put = await runCli(['blob', 'put', file, '--data-dir', a.dataDir])
    assert.equal(put.code, 0, put.stderr)
    cid = put.stdout.trim()
    const expected = CID.create(1, raw.code, await sha256.digest(bytes)).toString()
    assert.equal(cid, expected)

    const out = join(net.root, 'output.bin')
    const get = await runCli(['blob', 'get', cid, '--out', out, '--data-dir', a.dataDir])
    assert.equal(get.code, 0, get.stderr)
    assert.deepEqual(new Uint8Array(await readFile(out)), bytes)
  })

  test('another peer fetches the blob in chunks, verifies it and serves it', async () => {
    const out = join(net.root, 'fetched.bin')
    const get = await runCli(['blob', 'get', cid, '--from', a.peerId, '--out', out, '--data-dir', b.dataDir])
    assert.equal(get.code, 0, get.stderr)
    assert.deepEqual(new Uint8Array(await readFile(out)), bytes)
  })

  test('a blob altered on disk is refused with a named error and never served', async () => {
    const path = await findBlobFile(a.dataDir, cid)
    const damaged = new Uint8Array(await readFile(path))
    damaged[1000] ^= 0xff
    await writeFile(path, damaged)
    const get = await runCli(['blob', 'get', cid, '--data-dir', a.dataDir])
    assert.equal(get.code, 1)
    assert.match(get.stderr, /blob .* is corrupt on disk/)
    assert.match(get.stderr, /ERR_BLOB_CORRUPT/)
    assert.equal(get.stdout, '')
    // Nor does it reach other peers: a fetch from `a` now fails instead of carrying bad bytes.
    const fresh = await net.addPeer(['--bootstrap', a.tcpAddr])
    const fetch = await runCli(['blob', 'get', cid, '--from', a.peerId, '--data-dir', fresh.dataDir])
    assert.equal(fetch.code, 1)
    assert.match(fetch.stderr, /ERR_BLOB_CORRUPT|ERR_NOT_FOUND/)
  })

  test('bad CIDs and missing blobs get named errors', async () => {
    const bad = await runCli(['blob', 'get', 'not-a-cid!', '--data-dir', a.dataDir])
    assert.equal(bad.code, 2)
    const missing = await runCli(['blob', 'get', CID.create(1, raw.code, await sha256.digest(new Uint8Array([1]))).toString(), '--data-dir', a.dataDir])
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /ERR_NOT_FOUND/)
  })
})
