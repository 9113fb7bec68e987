/**
 * Find a running peer from its data dir: the peer writes its API URL to `DIR/api.json` and its
 * token to `DIR/api.token` (mode 0600) when it starts; whoever can read the data dir may use
 * the API.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { RhizomeError } from '../model/errors.ts'
import { RhizomeClient } from './client.ts'

/** api.json is a line of JSON; api.token a line of base64url. Anything larger is not ours. */
const API_FILE_BYTES_MAX = 4096

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

export interface ConnectOptions {
  /** The peer's data dir (absolute or relative to the working directory). */
  dataDir: string
  signal?: AbortSignal
}

/** A client for the peer running from `dataDir`, with its token. */
export async function connect (options: ConnectOptions): Promise<RhizomeClient> {
  const { dataDir } = options
  let info: { url?: unknown }
  try {
    const text = await readSmall(join(dataDir, API_INFO_FILE))
    info = JSON.parse(text) as { url?: unknown }
  } catch (err) {
    throw new PeerNotRunningError(dataDir, { cause: err })
  }
  if (typeof info !== 'object' || info === null || typeof info.url !== 'string') {
    throw new RhizomeError('ERR_NO_PEER', `${join(dataDir, API_INFO_FILE)} is damaged`, { hint: 'restart the peer; it writes the file anew' })
  }
  return new RhizomeClient({ url: info.url, token: await readToken(dataDir), signal: options.signal })
}

/** The API token kept in the data dir, if the peer has made one. */
export async function readToken (dataDir: string): Promise<string | undefined> {
  try {
    return (await readSmall(join(dataDir, API_TOKEN_FILE))).trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new RhizomeError('ERR_API_TOKEN', `cannot read the API token in ${join(dataDir, API_TOKEN_FILE)}: ${(err as Error).message}`, {
      hint: 'run the command as the user that runs the peer, or pass --api-token'
    })
  }
}

async function readSmall (path: string): Promise<string> {
  const bytes = await readFile(path)
  if (bytes.byteLength > API_FILE_BYTES_MAX) throw new Error(`${path} is larger than ${API_FILE_BYTES_MAX} bytes`)
  return bytes.toString('utf8')
}
