/**
 * How a command reaches its peer: `--api URL`, or the `api.json` the peer wrote into its data
 * dir (`--data-dir`, RHIZOME_DATA_DIR, or ~/.rhizome). Every request carries the peer's API
 * token: from `DIR/api.token`, or with `--api` from `--api-token` / RHIZOME_API_TOKEN.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { apiTokenPath, readApiToken, resolveDataDir } from '../node/index.ts'
import { CliError, EXIT_INTERRUPTED, EXIT_USAGE } from './command.ts'
import type { FailureData } from '../model/errors.ts'
import type { CommandContext } from './command.ts'

/**
 * How long a request may take unless the command says otherwise. The local API answers in
 * milliseconds; a blob fetch from another peer (60 s on the peer) or a deploy to replicas may
 * take longer. Commands whose work has its own deadline (`call`) pass a longer one.
 */
export const API_TIMEOUT_MS = 120_000
/**
 * The peer's default deadline for a call: a copy of CALL_TIMEOUT_MS_DEFAULT in
 * src/net/task-service.ts, which the CLI may not import (it talks to the peer only through the
 * API). test/cli/api-client.test.ts keeps the two equal.
 */
export const PEER_CALL_TIMEOUT_MS_DEFAULT = 120_000
/**
 * How much longer than the call's deadline the CLI waits. The peer answers 504 at the deadline;
 * ten seconds covers sending that answer from a loaded peer, so the CLI hears the peer's own
 * error (which names the unreachable or slow worker) instead of timing out in a race with it.
 */
export const CALL_ANSWER_MARGIN_MS = 10_000

/** How long the CLI waits for POST /v1/call with this timeoutMs (the peer's default if none). */
export function callWaitMs (timeoutMs: number | undefined): number {
  const deadlineMs = timeoutMs !== undefined && Number.isSafeInteger(timeoutMs) && timeoutMs > 0 ? timeoutMs : PEER_CALL_TIMEOUT_MS_DEFAULT
  return deadlineMs + CALL_ANSWER_MARGIN_MS
}
/** Largest JSON answer the CLI reads (a peer table of thousands of peers fits). */
const API_JSON_BYTES_MAX = 32 * 1024 * 1024

export interface ApiClientOptions {
  /** Ctrl-C: aborts a request in flight; the peer then cancels what it was doing for it. */
  signal?: AbortSignal
  /** Sent as `Authorization: Bearer TOKEN`. */
  token?: string
}

export interface ApiRequestOptions {
  /** Give up on the peer after this long (default `API_TIMEOUT_MS`). */
  timeoutMs?: number
}

export class ApiClient {
  readonly url: string
  private readonly signal: AbortSignal | undefined
  private readonly token: string | undefined

  constructor (url: string, options: ApiClientOptions = {}) {
    this.url = url.replace(/\/+$/, '')
    this.signal = options.signal
    this.token = options.token
  }

  async json<T> (method: string, path: string, body?: Uint8Array, options: ApiRequestOptions = {}): Promise<T> {
    return await this.request(method, path, body, options, async (res) => {
      const text = await res.text()
      if (text.length > API_JSON_BYTES_MAX) throw new CliError('ERR_API', `the peer's answer is larger than ${API_JSON_BYTES_MAX} bytes`)
      return JSON.parse(text) as T
    })
  }

  async bytes (path: string, options: ApiRequestOptions = {}): Promise<Uint8Array> {
    return await this.request('GET', path, undefined, options, async (res) => new Uint8Array(await res.arrayBuffer()))
  }

  /** One request, its answer read by `read`, under one deadline that covers the body too. */
  private async request<T> (method: string, path: string, body: Uint8Array | undefined, options: ApiRequestOptions, read: (res: Response) => Promise<T>): Promise<T> {
    const timeoutMs = options.timeoutMs ?? API_TIMEOUT_MS
    const timeout = AbortSignal.timeout(timeoutMs)
    const signal = this.signal === undefined ? timeout : AbortSignal.any([timeout, this.signal])
    const headers: Record<string, string> = {}
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`
    let res: Response
    try {
      res = await fetch(this.url + path, { method, headers, body: body as BodyInit | undefined, signal })
    } catch (err) {
      throw this.failure(err, timeout, timeoutMs, method, path, false)
    }
    if (!res.ok) {
      let failure: FailureData | undefined
      try {
        failure = ((await res.json()) as { error?: FailureData }).error
      } catch {}
      throw new CliError(failure?.code ?? 'ERR_API', failure?.message ?? `the peer answered HTTP ${res.status}`, { hint: failure?.hint })
    }
    try {
      return await read(res)
    } catch (err) {
      if (err instanceof CliError) throw err
      throw this.failure(err, timeout, timeoutMs, method, path, true)
    }
  }

  private failure (err: unknown, timeout: AbortSignal, timeoutMs: number, method: string, path: string, answered: boolean): CliError {
    if (this.signal?.aborted === true) return new CliError('ERR_ABORTED', 'cancelled', { exitCode: EXIT_INTERRUPTED, hint: 'the peer was told to stop the work for this request' })
    if (timeout.aborted) {
      // The peer is there (it took the connection) but slow: not "no peer answers".
      return new CliError('ERR_TIMEOUT', `the peer at ${this.url} did not answer ${method} ${path} in time (waited ${timeoutMs} ms)`, {
        hint: 'the peer is running but did not finish; see its log, and `rhizome status` for its load',
        cause: err
      })
    }
    if (answered) return new CliError('ERR_API', `the answer from ${this.url} to ${method} ${path} was cut off: ${(err as Error).message}`, { hint: 'the peer may have stopped; see its log', cause: err })
    return new CliError('ERR_NO_PEER', `no Rhizome peer answers at ${this.url}`, {
      hint: 'is the peer running? start one with `rhizome node start`, or pass the right --data-dir / --api',
      cause: err
    })
  }
}

export async function connectApi (context: CommandContext): Promise<ApiClient> {
  const explicit = context.values.api as string | undefined
  const tokenFlag = context.values['api-token'] as string | undefined
  if (tokenFlag !== undefined && tokenFlag.trim() === '') throw new CliError('ERR_USAGE', '--api-token is empty', { exitCode: EXIT_USAGE, hint: 'pass the contents of DIR/api.token from the peer\'s machine' })
  if (explicit !== undefined) {
    try {
      const parsed = new URL(explicit)
      if (parsed.protocol !== 'http:') throw new Error('not http')
    } catch {
      throw new CliError('ERR_USAGE', `--api ${JSON.stringify(explicit)} is not an http:// URL`, { exitCode: EXIT_USAGE, hint: 'e.g. --api http://127.0.0.1:7070' })
    }
    // With --api the data dir may be elsewhere: the token comes with the URL, or from --data-dir.
    let token = tokenFlag ?? nonEmpty(context.env.RHIZOME_API_TOKEN)
    if (token === undefined && context.values['data-dir'] !== undefined) token = await tokenOf(dataDirOf(context))
    return new ApiClient(explicit, { signal: context.signal, token })
  }
  return await apiForDataDir(dataDirOf(context), context.signal, tokenFlag)
}

/** A client for the peer that runs from `dataDir`: its URL from api.json, its token from api.token unless given. */
export async function apiForDataDir (dataDir: string, signal?: AbortSignal, token?: string): Promise<ApiClient> {
  let info: { url?: unknown }
  try {
    info = JSON.parse(await readFile(join(dataDir, 'api.json'), 'utf8')) as { url?: unknown }
  } catch {
    throw new CliError('ERR_NO_PEER', `no Rhizome peer is running from ${dataDir}`, {
      hint: `start one with \`rhizome node start --data-dir ${dataDir}\`, or pass --data-dir / --api to reach another`
    })
  }
  if (typeof info.url !== 'string') throw new CliError('ERR_NO_PEER', `${join(dataDir, 'api.json')} is damaged`, { hint: 'restart the peer' })
  return new ApiClient(info.url, { signal, token: token ?? await tokenOf(dataDir) })
}

function dataDirOf (context: CommandContext): string {
  try {
    return resolveDataDir(context.values['data-dir'] as string | undefined, context.env)
  } catch (err) {
    throw new CliError('ERR_CONFIG', (err as Error).message, { exitCode: EXIT_USAGE })
  }
}

async function tokenOf (dataDir: string): Promise<string> {
  const token = await readApiToken(dataDir)
  if (token === undefined) {
    throw new CliError('ERR_UNAUTHORIZED', `there is no API token at ${apiTokenPath(dataDir)}`, {
      hint: 'a peer writes it on start: start (or restart) the peer from this data dir, or pass --api URL with --api-token'
    })
  }
  return token
}

function nonEmpty (text: string | undefined): string | undefined {
  return text === undefined || text.trim() === '' ? undefined : text.trim()
}
