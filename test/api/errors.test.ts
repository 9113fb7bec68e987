/** Every error code a peer can produce has an HTTP status of its own kind. */
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, test } from 'node:test'
import { RETRY_AFTER_SECONDS, STATUS_BY_CODE, httpStatusOf } from '../../src/api/errors.ts'

const SRC = fileURLToPath(new URL('../../src/', import.meta.url))

/** Codes only clients make, about themselves (bad flags, no peer to talk to): never an API answer. */
const CLIENT_DIRS = new Set(['cli', 'api', 'sdk', 'dashboard'])

async function codesIn (dir: string): Promise<Map<string, string>> {
  const found = new Map<string, string>()
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue
    const path = join(entry.parentPath, entry.name)
    if (CLIENT_DIRS.has(relative(SRC, path).split('/')[0])) continue
    for (const match of (await readFile(path, 'utf8')).matchAll(/'(ERR_[A-Z0-9_]+)'/g)) found.set(match[1], relative(SRC, path))
  }
  return found
}

describe('HTTP statuses of error codes', () => {
  test('every error code in src/ (outside the CLI) has an explicit status, and the map names no other code', async () => {
    const codes = await codesIn(SRC)
    assert.ok(codes.size > 30, `found only ${codes.size} codes: is the scan broken?`)
    const missing = [...codes].filter(([code]) => STATUS_BY_CODE[code] === undefined).map(([code, file]) => `${code} (${file})`)
    assert.deepEqual(missing, [], 'add these codes to STATUS_BY_CODE in src/api/errors.ts')
    const stale = Object.keys(STATUS_BY_CODE).filter(code => !codes.has(code))
    assert.deepEqual(stale, [], 'these codes are no longer defined in src/')
  })

  test('statuses follow the kind of failure', () => {
    const expected: Record<string, number> = {
      ERR_INVALID_INPUT: 400,
      ERR_UNAUTHORIZED: 401,
      ERR_FORBIDDEN_ORIGIN: 403,
      ERR_FORBIDDEN_HOST: 403,
      ERR_NOT_FOUND: 404,
      ERR_FUNCTION_NOT_FOUND: 404,
      ERR_TOO_LARGE: 413,
      ERR_FUNCTION_THREW: 422,
      ERR_SANDBOX_TIME_LIMIT: 422,
      ERR_INTERNAL: 500,
      ERR_BLOB_CORRUPT: 500,
      ERR_PEER_UNAVAILABLE: 502,
      ERR_INPUT_UNAVAILABLE: 502,
      ERR_ATTESTATION_INVALID: 502,
      ERR_PROTOCOL_VIOLATION: 502,
      ERR_PEER_BUSY: 503,
      ERR_QUEUE_FULL: 503,
      ERR_TIMEOUT: 504
    }
    for (const [code, status] of Object.entries(expected)) assert.equal(httpStatusOf(code), status, code)
    assert.equal(httpStatusOf('ERR_SOMETHING_NEW'), 500)
    assert.ok(Number.isInteger(RETRY_AFTER_SECONDS) && RETRY_AFTER_SECONDS >= 1)
  })
})
