/** The API token file: made once with mode 0600, never replaced, refused when damaged. */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { API_TOKEN_BYTES, apiTokenPath, loadOrCreateApiToken, newApiToken, readApiToken } from '../../src/node/api-token.ts'

describe('API token file', () => {
  let root: string
  let n = 0
  const freshDir = async (): Promise<string> => await mkdtemp(join(root, `dir-${n++}-`))
  before(async () => { root = await mkdtemp(join(tmpdir(), 'rhizome-token-')) })
  after(async () => { await rm(root, { recursive: true, force: true }) })

  test('first start makes a 32-byte base64url token with mode 0600 and leaves no temp file', async () => {
    const dir = await freshDir()
    assert.equal(await readApiToken(dir), undefined)
    const { token, created } = await loadOrCreateApiToken(dir)
    assert.equal(created, true)
    assert.match(token, /^[A-Za-z0-9_-]+$/)
    assert.equal(Buffer.from(token, 'base64url').byteLength, API_TOKEN_BYTES)
    assert.equal((await stat(apiTokenPath(dir))).mode & 0o777, 0o600)
    assert.deepEqual(await readdir(dir), ['api.token'])
    assert.equal(await readApiToken(dir), token)
  })

  test('a second start keeps the token and the file', async () => {
    const dir = await freshDir()
    const first = await loadOrCreateApiToken(dir)
    const before = await stat(apiTokenPath(dir))
    const second = await loadOrCreateApiToken(dir)
    assert.deepEqual(second, { token: first.token, created: false })
    const afterInfo = await stat(apiTokenPath(dir))
    assert.equal(afterInfo.ino, before.ino)
    assert.equal(afterInfo.mtimeMs, before.mtimeMs)
  })

  test('two data dirs get different tokens', async () => {
    assert.notEqual((await loadOrCreateApiToken(await freshDir())).token, (await loadOrCreateApiToken(await freshDir())).token)
  })

  test('a token file others can read is tightened to 0600', async () => {
    const dir = await freshDir()
    const { token } = await loadOrCreateApiToken(dir)
    await chmod(apiTokenPath(dir), 0o644)
    assert.equal((await loadOrCreateApiToken(dir)).token, token)
    assert.equal((await stat(apiTokenPath(dir))).mode & 0o777, 0o600)
  })

  test('a leftover temp file from a crash does not stop the first start', async () => {
    const dir = await freshDir()
    await writeFile(`${apiTokenPath(dir)}.${process.pid}.tmp`, 'half written')
    const { created } = await loadOrCreateApiToken(dir)
    assert.equal(created, true)
    assert.deepEqual(await readdir(dir), ['api.token'])
  })

  test('a damaged or oversized token file is refused with ApiTokenError, not replaced', async () => {
    // 1,025 bytes is one past API_TOKEN_FILE_BYTES_MAX.
    for (const text of ['not a token\n', 'A'.repeat(42), 'A'.repeat(44), 'A'.repeat(1025)]) {
      const dir = await freshDir()
      await writeFile(apiTokenPath(dir), text, { mode: 0o600 })
      await assert.rejects(loadOrCreateApiToken(dir), { name: 'ApiTokenError', code: 'ERR_API_TOKEN' })
      await assert.rejects(readApiToken(dir), (err: Error & { hint?: string }) => err.name === 'ApiTokenError' && /remove/.test(err.hint ?? ''))
    }
    // 43 characters and a newline is a token.
    const dir = await freshDir()
    await writeFile(apiTokenPath(dir), 'B'.repeat(43) + '\n', { mode: 0o600 })
    assert.equal(await readApiToken(dir), 'B'.repeat(43))
  })

  test('a token file of exactly 1,024 bytes is read; one byte more is refused as too large', async () => {
    // A valid token padded with newlines, so only the size differs.
    const token = 'C'.repeat(43)
    const dir = await freshDir()
    await writeFile(apiTokenPath(dir), token + '\n'.repeat(1024 - 43), { mode: 0o600 })
    assert.equal(await readApiToken(dir), token)
    await writeFile(apiTokenPath(dir), token + '\n'.repeat(1024 - 43 + 1), { mode: 0o600 })
    await assert.rejects(readApiToken(dir), (err: Error & { hint?: string }) => err.name === 'ApiTokenError' && /more than 1024 bytes/.test(err.message) && /remove/.test(err.hint ?? ''))
  })

  // readApiToken used stat + readFile: a FIFO at DIR/api.token blocked the read, the peer's start
  // and even the process's exit, until a writer came.
  test('a FIFO or a directory in place of the token file is refused at once with ApiTokenError', { timeout: 10_000 }, async () => {
    const fifoDir = await freshDir()
    execFileSync('mkfifo', [apiTokenPath(fifoDir)])
    await assert.rejects(readApiToken(fifoDir), (err: Error & { hint?: string }) => err.name === 'ApiTokenError' && /named pipe/.test(err.message) && /remove/.test(err.hint ?? ''))
    await assert.rejects(loadOrCreateApiToken(fifoDir), { name: 'ApiTokenError' })
    const folderDir = await freshDir()
    await mkdir(apiTokenPath(folderDir))
    await assert.rejects(readApiToken(folderDir), (err: Error) => err.name === 'ApiTokenError' && /directory/.test(err.message))
  })
})

describe('newApiToken', () => {
  // Regression: a token starting with '-' made `--api-token TOKEN` an ambiguous option (1 run in 64 failed).
  test('never starts with a dash: such a draw is drawn again', () => {
    const draws = [Buffer.alloc(API_TOKEN_BYTES, 0xf8), Buffer.alloc(API_TOKEN_BYTES, 0xf8), Buffer.alloc(API_TOKEN_BYTES, 7)]
    assert.equal(draws[0].toString('base64url')[0], '-', 'the first draws start with a dash')
    let calls = 0
    const token = newApiToken(() => draws[calls++])
    assert.equal(calls, 3)
    assert.equal(token, draws[2].toString('base64url'))
    assert.match(token, /^[A-Za-z0-9_][A-Za-z0-9_-]{42}$/)
  })
})
