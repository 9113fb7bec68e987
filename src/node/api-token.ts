/**
 * The bearer token of the local HTTP API: 32 random bytes, base64url, made on first start and
 * kept in `DIR/api.token` (mode 0600). A loopback port is open to every local user and every
 * local process; this file, readable only by the user who runs the peer, is what confines the
 * API to that user. The CLI reads it through `--data-dir`; scripts send
 * `Authorization: Bearer $(cat DIR/api.token)`.
 *
 * The file is written once (temp file, fsync, link into place, fsync the directory) and never
 * overwritten, so a script that read it keeps working across restarts. Remove it to make a new one.
 */
import { randomBytes } from 'node:crypto'
import { chmod, link, open, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { RhizomeError, TooLargeError } from '../model/errors.ts'
import { FileNotReadableError, readRegularFile } from '../api/regular-file.ts'

/** 256 bits: far beyond guessing through a local socket, at any request rate. */
export const API_TOKEN_BYTES = 32
/** The token is 43 characters and a newline; anything past 1 KiB is not a token file. */
const API_TOKEN_FILE_BYTES_MAX = 1024
/** base64url of 32 bytes, without padding. */
const API_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/

export const API_TOKEN_FILE = 'api.token'

export class ApiTokenError extends RhizomeError {
  constructor (message: string, hint: string, cause?: unknown) {
    super('ERR_API_TOKEN', message, { hint, cause })
    this.name = 'ApiTokenError'
  }
}

export function apiTokenPath (dataDir: string): string {
  return join(dataDir, API_TOKEN_FILE)
}

/**
 * Read the token of the peer that runs from `dataDir`; undefined if it has none yet. Read as a
 * regular file of at most API_TOKEN_FILE_BYTES_MAX bytes: a FIFO in its place would block a plain
 * read (and the process's exit) until a writer came.
 */
export async function readApiToken (dataDir: string): Promise<string | undefined> {
  const path = apiTokenPath(dataDir)
  let bytes: Uint8Array
  try {
    bytes = await readRegularFile(path, API_TOKEN_FILE_BYTES_MAX, 'API token file')
  } catch (err) {
    if (err instanceof FileNotReadableError && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return undefined
    if (err instanceof TooLargeError) throw new ApiTokenError(`${path} is more than ${API_TOKEN_FILE_BYTES_MAX} bytes, too large to be an API token`, `remove ${path}; the peer makes a new token on its next start`, err)
    if (err instanceof FileNotReadableError && /not a regular file/.test(err.reason)) throw new ApiTokenError(`${path} is not an API token file: ${err.reason}`, `remove ${path}; the peer makes a new token on its next start`, err)
    const code = err instanceof FileNotReadableError ? err.reason : (err as NodeJS.ErrnoException).code ?? (err as Error).message
    throw new ApiTokenError(`cannot read ${path}: ${code}`, 'run the command as the user who runs the peer', err)
  }
  const token = new TextDecoder().decode(bytes).trim()
  if (!API_TOKEN_PATTERN.test(token)) throw new ApiTokenError(`${path} does not hold an API token`, `remove ${path}; the peer makes a new token on its next start`)
  return token
}

/** The peer's token: the one in `dataDir` if there is one, else a new one written there. */
export async function loadOrCreateApiToken (dataDir: string): Promise<{ token: string, created: boolean }> {
  const path = apiTokenPath(dataDir)
  const existing = await readApiToken(dataDir)
  if (existing !== undefined) {
    // Tighten a token file someone loosened: other users must not read it.
    if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o600)
    return { token: existing, created: false }
  }
  const token = newApiToken()
  const temp = `${path}.${process.pid}.tmp`
  // The data dir is locked to this peer, so a temp file here is a leftover of a crash: drop it,
  // and create ours with 'wx' so it is born 0600 rather than chmod-ed after the fact.
  await unlink(temp).catch(() => {})
  const handle = await open(temp, 'wx', 0o600)
  try {
    await handle.writeFile(token + '\n')
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    // link, unlike rename, fails if the name exists: a token once written is never replaced.
    await link(temp, path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  } finally {
    await unlink(temp).catch(() => {})
  }
  const dir = await open(dataDir, 'r')
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
  const stored = await readApiToken(dataDir)
  if (stored === undefined) throw new Error(`assertion failed: ${path} vanished right after it was written`)
  return { token: stored, created: stored === token }
}

/**
 * A new token: API_TOKEN_BYTES random bytes in base64url, drawn again while the first character is
 * '-' (1 in 64). A token is typed or pasted after `--api-token`, and an argument that starts with
 * a dash reads as an option: `rhizome status --api-token -Xy…` is refused as ambiguous. Giving up
 * those tokens costs under 0.03 bits of 256.
 */
export function newApiToken (random: (bytes: number) => Buffer = randomBytes): string {
  for (;;) {
    const token = random(API_TOKEN_BYTES).toString('base64url')
    if (!token.startsWith('-')) return token
  }
}
