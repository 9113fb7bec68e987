/**
 * How a command reaches its peer: `--api URL`, or the `api.json` the peer wrote into its data
 * dir (`--data-dir`, RHIZOME_DATA_DIR, or ~/.rhizome).
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { resolveDataDir } from '../node/index.ts'
import { CliError, EXIT_INTERRUPTED, EXIT_USAGE } from './command.ts'
import type { FailureData } from '../model/errors.ts'
import type { CommandContext } from './command.ts'

/** The local API answers in milliseconds; a blob fetch from another peer may take longer. */
const API_TIMEOUT_MS = 120_000
/** Largest JSON answer the CLI reads (a peer table of thousands of peers fits). */
const API_JSON_BYTES_MAX = 32 * 1024 * 1024

export class ApiClient {
  readonly url: string
  private readonly signal: AbortSignal | undefined
  /** `signal` (Ctrl-C) aborts a request in flight; the peer then cancels what it was doing for it. */
  constructor (url: string, signal?: AbortSignal) {
    this.url = url.replace(/\/+$/, '')
    this.signal = signal
  }

  async json<T> (method: string, path: string, body?: Uint8Array): Promise<T> {
    const res = await this.send(method, path, body)
    const text = await res.text()
    if (text.length > API_JSON_BYTES_MAX) throw new CliError('ERR_API', `the peer's answer is larger than ${API_JSON_BYTES_MAX} bytes`)
    return JSON.parse(text) as T
  }

  async bytes (path: string): Promise<Uint8Array> {
    const res = await this.send('GET', path)
    return new Uint8Array(await res.arrayBuffer())
  }

  private async send (method: string, path: string, body?: Uint8Array): Promise<Response> {
    let res: Response
    try {
      const signals = [AbortSignal.timeout(API_TIMEOUT_MS)]
      if (this.signal !== undefined) signals.push(this.signal)
      res = await fetch(this.url + path, { method, body: body as BodyInit | undefined, signal: AbortSignal.any(signals) })
    } catch (err) {
      if (this.signal?.aborted === true) throw new CliError('ERR_ABORTED', 'cancelled', { exitCode: EXIT_INTERRUPTED, hint: 'the peer was told to stop the work for this request' })
      throw new CliError('ERR_NO_PEER', `no Rhizome peer answers at ${this.url}`, {
        hint: 'is the peer running? start one with `rhizome node start`, or pass the right --data-dir / --api',
        cause: err
      })
    }
    if (!res.ok) {
      let failure: FailureData | undefined
      try {
        failure = ((await res.json()) as { error?: FailureData }).error
      } catch {}
      throw new CliError(failure?.code ?? 'ERR_API', failure?.message ?? `the peer answered HTTP ${res.status}`, { hint: failure?.hint })
    }
    return res
  }
}

export async function connectApi (context: CommandContext): Promise<ApiClient> {
  const explicit = context.values.api as string | undefined
  if (explicit !== undefined) {
    try {
      const parsed = new URL(explicit)
      if (parsed.protocol !== 'http:') throw new Error('not http')
    } catch {
      throw new CliError('ERR_USAGE', `--api ${JSON.stringify(explicit)} is not an http:// URL`, { exitCode: EXIT_USAGE, hint: 'e.g. --api http://127.0.0.1:7070' })
    }
    return new ApiClient(explicit, context.signal)
  }
  let dataDir: string
  try {
    dataDir = resolveDataDir(context.values['data-dir'] as string | undefined, context.env)
  } catch (err) {
    throw new CliError('ERR_CONFIG', (err as Error).message, { exitCode: EXIT_USAGE })
  }
  let info: { url?: unknown }
  try {
    info = JSON.parse(await readFile(join(dataDir, 'api.json'), 'utf8')) as { url?: unknown }
  } catch {
    throw new CliError('ERR_NO_PEER', `no Rhizome peer is running from ${dataDir}`, {
      hint: `start one with \`rhizome node start --data-dir ${dataDir}\`, or pass --data-dir / --api to reach another`
    })
  }
  if (typeof info.url !== 'string') throw new CliError('ERR_NO_PEER', `${join(dataDir, 'api.json')} is damaged`, { hint: 'restart the peer' })
  return new ApiClient(info.url, context.signal)
}
