/**
 * The peer's identity key on disk: made once and kept, written so that a crash cannot leave a
 * key that stops every later start, and checked when loaded (damaged, truncated, mismatched halves).
 */
import { afterEach, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { IdentityError, loadOrCreateIdentity } from '../../src/node/identity.ts'

const identityModule = pathToFileURL(join(import.meta.dirname, '../../src/node/identity.ts')).href

/** Passes when the promise rejects with an IdentityError whose message matches and whose hint says how to recover. */
async function rejectsIdentity (promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof IdentityError, `expected an IdentityError, got ${String(err)}`)
    assert.equal(err.code, 'ERR_IDENTITY')
    assert.match(err.message, message)
    assert.match(err.hint ?? '', /restore identity\.key/)
    assert.match(err.hint ?? '', /remove it to start as a new peer \(with a new peer id\)/)
    return true
  })
}

describe('loadOrCreateIdentity', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'rhizome-identity-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  test('makes a key on first start, mode 0600, leaves nothing else behind, and loads the same key after', async () => {
    const first = await loadOrCreateIdentity(dir)
    assert.equal(first.created, true)
    assert.equal(first.privateKey.type, 'Ed25519')
    assert.deepEqual(await readdir(dir), ['identity.key'])
    assert.equal((await stat(join(dir, 'identity.key'))).mode & 0o777, 0o600)
    const second = await loadOrCreateIdentity(dir)
    assert.equal(second.created, false)
    assert.equal(peerIdFromPrivateKey(second.privateKey).toString(), peerIdFromPrivateKey(first.privateKey).toString())
  })

  test('a start killed while writing the key leaves no identity.key, so the next start succeeds', async () => {
    // Kill the process the moment it starts writing the key's bytes: the worst moment for a key
    // written in place, which is left as an empty identity.key that no later start can load.
    const child = join(dir, 'crash.mjs')
    await writeFile(child, `
      import { open } from 'node:fs/promises'
      const probe = await open(${JSON.stringify(child)}, 'r')
      const FileHandle = Object.getPrototypeOf(probe)
      await probe.close()
      FileHandle.writeFile = function () { process.kill(process.pid, 'SIGKILL') }
      const { loadOrCreateIdentity } = await import(${JSON.stringify(identityModule)})
      await loadOrCreateIdentity(process.argv[2])
    `)
    const dataDir = join(dir, 'data')
    await mkdir(dataDir)
    const signal = await new Promise<string | null>((resolve, reject) => {
      const proc = spawn(process.execPath, [child, dataDir], { stdio: 'ignore' })
      const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('the child did not exit within 30 s')) }, 30_000)
      proc.on('exit', (_code, sig) => { clearTimeout(timer); resolve(sig) })
    })
    assert.equal(signal, 'SIGKILL', 'the child was killed mid-write')
    assert.equal((await readdir(dataDir)).includes('identity.key'), false, 'no partial identity.key')

    const next = await loadOrCreateIdentity(dataDir)
    assert.equal(next.created, true)
    assert.deepEqual(await readdir(dataDir), ['identity.key'], 'the leftover temp file is gone')
    assert.equal((await loadOrCreateIdentity(dataDir)).created, false)
  })

  test('never replaces an existing key', async () => {
    const { privateKey } = await loadOrCreateIdentity(dir)
    const before = await readFile(join(dir, 'identity.key'))
    for (let i = 0; i < 3; i++) assert.equal((await loadOrCreateIdentity(dir)).created, false)
    assert.deepEqual(await readFile(join(dir, 'identity.key')), before)
    assert.deepEqual(privateKeyToProtobuf(privateKey), new Uint8Array(before))
  })

  test('refuses an empty key file, saying how to recover', async () => {
    await writeFile(join(dir, 'identity.key'), new Uint8Array(0))
    await rejectsIdentity(loadOrCreateIdentity(dir), /identity\.key is empty \(0 bytes\)/)
  })

  test('refuses garbage and a truncated key, saying how to recover', async () => {
    const { privateKey } = await loadOrCreateIdentity(dir)
    const good = privateKeyToProtobuf(privateKey)
    for (const bad of [new Uint8Array(68).fill(0x41), good.subarray(0, 40), good.subarray(0, good.byteLength - 1), good.subarray(0, 2)]) {
      await writeFile(join(dir, 'identity.key'), bad)
      await rejectsIdentity(loadOrCreateIdentity(dir), /does not hold a valid private key/)
    }
  })

  test('refuses a key file past 4 KiB', async () => {
    await writeFile(join(dir, 'identity.key'), new Uint8Array(4097))
    await rejectsIdentity(loadOrCreateIdentity(dir), /4097 bytes, too large to be a key/)
  })

  test('refuses a key whose public half does not match its private half', async () => {
    const { privateKey } = await loadOrCreateIdentity(dir)
    const bytes = privateKeyToProtobuf(privateKey)
    // Protobuf: 08 01 (type Ed25519) 12 40 (64 bytes of data): a 32-byte seed, then the public key.
    assert.deepEqual([...bytes.subarray(0, 4)], [0x08, 0x01, 0x12, 0x40])
    const flipped = bytes.slice()
    flipped[4 + 32 + 5] ^= 0x01
    await writeFile(join(dir, 'identity.key'), flipped)
    await rejectsIdentity(loadOrCreateIdentity(dir), /public key does not belong to its private key/)
    // The file is left as it was, for the operator to restore or remove.
    assert.deepEqual(new Uint8Array(await readFile(join(dir, 'identity.key'))), flipped)
  })
})
