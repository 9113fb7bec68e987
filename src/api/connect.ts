/**
 * Find a running peer. A peer writes its API URL to `DIR/api.json` and its token to
 * `DIR/api.token` (mode 0600) when it starts; whoever can read the data dir may use the API.
 * Or the caller names the URL and brings the token itself (from another machine, through a
 * tunnel). This is client-side knowledge: the CLI's peer commands and the SDK need nothing else
 * to reach a peer, and never load the peer's own code.
 */
import { readFile, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { ConfigError, RhizomeError } from '../model/errors.ts'
import { RhizomeClient } from './client.ts'

/** api.json is a line of JSON; api.token a line of base64url. Anything larger is not ours. */
const API_FILE_BYTES_MAX = 4096
/** A path longer than this is a mistake (PATH_MAX is 4096; 1024 leaves room for files inside). */
const DATA_DIR_CHARS_MAX = 1024

export const API_INFO_FILE = 'api.json'
export const API_TOKEN_FILE = 'api.token'

export class PeerNotRunningError extends RhizomeError {
  constructor (dataDir: string, options: { cause?: unknown } = {}) {
    super('ERR_NO_PEER', `no Rhizome peer is running from ${dataDir}`, {
      retryable: true,
      hint: `start one with \`rhizome node start --data-dir ${dataDir}\`, or pass --data-dir / --api to reach another`,
      cause: options.cause
    })
    this.name = 'PeerNotRunningError'
  }
}

/** The data dir holds no API token: the peer never started from it (or the file was removed). */
export class ApiTokenMissingError extends RhizomeError {
  constructor (dataDir: string) {
    super('ERR_UNAUTHORIZED', `there is no API token at ${join(dataDir, API_TOKEN_FILE)}`, {
      hint: 'a peer writes it on start: start (or restart) the peer from this data dir, or pass --api URL with --api-token'
    })
    this.name = 'ApiTokenMissingError'
  }
}

/**
 * The data dir a client (or a peer) uses: `flag` (`--data-dir`), then RHIZOME_DATA_DIR, then
 * ~/.rhizome; relative paths resolve against the working directory.
 */
export function resolveDataDir (flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const label = flag !== undefined ? '--data-dir' : env.RHIZOME_DATA_DIR !== undefined ? 'RHIZOME_DATA_DIR' : 'the data dir'
  const value = flag ?? env.RHIZOME_DATA_DIR ?? join(homedir(), '.rhizome')
  if (value.length === 0 || value.length > DATA_DIR_CHARS_MAX) throw new ConfigError(label, `must be a non-empty path of at most ${DATA_DIR_CHARS_MAX} characters`)
  return resolve(value)
}

export interface ConnectOptions {
  /**
   * The peer's data dir (absolute or relative to the working directory). Default:
   * RHIZOME_DATA_DIR, then ~/.rhizome. Not read for the URL when `url` is given, but still for
   * the token if it is given and no token is.
   */
  dataDir?: string
  /** The API's base URL, e.g. http://127.0.0.1:7070: reach a peer without reading its api.json. */
  url?: string
  /**
   * The API token. Default: with `url`, RHIZOME_API_TOKEN, then `dataDir`'s api.token if a
   * `dataDir` was given; without `url`, the data dir's api.token.
   */
  token?: string
  /** Where RHIZOME_DATA_DIR and RHIZOME_API_TOKEN are read (default `process.env`). */
  env?: NodeJS.ProcessEnv
  signal?: AbortSignal
}

/** A client for a running peer, with its token (see `ConnectOptions` for where each comes from). */
export async function connect (options: ConnectOptions = {}): Promise<RhizomeClient> {
  const env = options.env ?? process.env
  if (options.url !== undefined) {
    let url: URL | undefined
    try {
      url = new URL(options.url)
    } catch {}
    if (url?.protocol !== 'http:') throw new ConfigError('url', `${JSON.stringify(options.url)} is not an http:// URL`, { hint: 'e.g. http://127.0.0.1:7070 (the peer writes its URL to DIR/api.json)' })
    // With a URL the data dir may be elsewhere: the token comes with the URL, or from a named data dir.
    let token = options.token ?? nonEmpty(env.RHIZOME_API_TOKEN)
    if (token === undefined && options.dataDir !== undefined) token = await requireToken(resolveDataDir(options.dataDir, env))
    return new RhizomeClient({ url: options.url, token, signal: options.signal })
  }
  const dataDir = resolveDataDir(options.dataDir, env)
  let info: { url?: unknown }
  try {
    info = JSON.parse(await readSmall(join(dataDir, API_INFO_FILE))) as { url?: unknown }
  } catch (err) {
    throw new PeerNotRunningError(dataDir, { cause: err })
  }
  if (typeof info !== 'object' || info === null || typeof info.url !== 'string') {
    throw new RhizomeError('ERR_NO_PEER', `${join(dataDir, API_INFO_FILE)} is damaged`, { hint: 'restart the peer; it writes the file anew' })
  }
  return new RhizomeClient({ url: info.url, token: options.token ?? await requireToken(dataDir), signal: options.signal })
}

/** The API token kept in the data dir, if the peer has made one. */
export async function readToken (dataDir: string): Promise<string | undefined> {
  let text: string
  try {
    text = await readSmall(join(dataDir, API_TOKEN_FILE))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new RhizomeError('ERR_API_TOKEN', `cannot read the API token in ${join(dataDir, API_TOKEN_FILE)}: ${(err as Error).message}`, {
      hint: 'run the command as the user that runs the peer, or pass --api-token'
    })
  }
  return nonEmpty(text)
}

async function requireToken (dataDir: string): Promise<string> {
  const token = await readToken(dataDir)
  if (token === undefined) throw new ApiTokenMissingError(dataDir)
  return token
}

/** Read a small file whole; refused (not read) past API_FILE_BYTES_MAX, and if it is not a regular file. */
async function readSmall (path: string): Promise<string> {
  const info = await stat(path)
  if (!info.isFile()) throw new Error(`${path} is not a regular file`)
  if (info.size > API_FILE_BYTES_MAX) throw new Error(`${path} is larger than ${API_FILE_BYTES_MAX} bytes`)
  const bytes = await readFile(path)
  if (bytes.byteLength > API_FILE_BYTES_MAX) throw new Error(`${path} is larger than ${API_FILE_BYTES_MAX} bytes`)
  return bytes.toString('utf8')
}

function nonEmpty (text: string | undefined): string | undefined {
  return text === undefined || text.trim() === '' ? undefined : text.trim()
}
