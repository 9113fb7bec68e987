/**
 * The dashboard's way to its peer: the same routes as every client (src/api/routes.ts), from
 * the page's own origin, with the API token as `Authorization: Bearer` like any client. The
 * token lives in this tab's sessionStorage (per origin, port included; per tab; sent nowhere by
 * the browser on its own), never in a cookie: browsers send a cookie of 127.0.0.1 to every port
 * of 127.0.0.1, where any local process may be listening. Failures become `ApiFailure`s with the
 * peer's own message and hint, for the page to show.
 */
import { EVENT_STREAM_TYPE, SseDecoder } from '../api/events.ts'
import { routePath } from '../api/routes.ts'
import type { RouteName } from '../api/routes.ts'
import type { FailureData } from '../api/types.ts'

/** A request the page makes waits this long: the API answers in milliseconds when the peer is up. */
export const API_TIMEOUT_MS = 15_000

/** Where the tab keeps the token: sessionStorage is per origin, port included, so each peer's page has its own. */
const TOKEN_KEY = 'rhizome-api-token'

export class ApiFailure extends Error {
  readonly code: string
  readonly hint: string | undefined
  readonly status: number

  constructor (status: number, data: Pick<FailureData, 'code' | 'message' | 'hint'>) {
    super(data.message)
    this.name = 'ApiFailure'
    this.status = status
    this.code = data.code
    this.hint = data.hint
  }
}

/** The hint the page shows when it has no token: how to get one. */
export const SIGN_IN_HINT = 'open the dashboard with `rhizome dashboard --open` (or the address `rhizome dashboard` prints): ' +
  'the address carries a sign-in code or the peer\'s API token, which this tab keeps until it is closed'

function authorization (): Record<string, string> {
  const token = sessionStorage.getItem(TOKEN_KEY)
  return token === null ? {} : { authorization: `Bearer ${token}` }
}

export async function api<T> (name: RouteName, params: Record<string, string> = {}, init: { query?: string, method?: 'GET' | 'POST', body?: string } = {}): Promise<T> {
  const res = await send(routePath(name, params) + (init.query ?? ''), {
    method: init.method ?? 'GET',
    headers: { accept: 'application/json', ...(init.body === undefined ? {} : { 'content-type': 'application/json' }), ...authorization() },
    body: init.body,
    signal: AbortSignal.timeout(API_TIMEOUT_MS)
  })
  const body = await res.json().catch(() => undefined) as { error?: FailureData } | undefined
  if (!res.ok) throw failure(res.status, body?.error)
  return body as T
}

/** `fetch` without cookies; a network failure becomes an ApiFailure that says the peer is away. */
async function send (path: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(path, { ...init, credentials: 'omit' })
  } catch (err) {
    throw new ApiFailure(0, {
      code: 'ERR_PEER_UNREACHABLE',
      message: `the peer did not answer (${(err as Error).message})`,
      hint: 'is it still running? `rhizome status` on its machine says; the page retries on its own'
    })
  }
}

function failure (status: number, error: FailureData | undefined): ApiFailure {
  const data = error ?? { code: `HTTP_${status}`, message: `the peer answered HTTP ${status}` }
  return new ApiFailure(status, status === 401 ? { ...data, hint: SIGN_IN_HINT } : data)
}

/**
 * Take the token, or a sign-in code to trade for it, from the address's fragment into this
 * tab's sessionStorage, and drop it from the address bar (and so from the history) first.
 */
export async function signIn (): Promise<void> {
  const params = new URLSearchParams(location.hash.slice(1))
  const token = params.get('token')
  const code = params.get('code')
  if (token === null && code === null) return
  history.replaceState(null, '', location.pathname + location.search)
  if (token !== null) sessionStorage.setItem(TOKEN_KEY, token)
  else if (code !== null) sessionStorage.setItem(TOKEN_KEY, (await api<{ token: string }>('dashboardSignIn', {}, { method: 'POST', body: JSON.stringify({ code }) })).token)
}

/**
 * Follow an event stream of the API with `fetch`, which can send the token (EventSource cannot
 * send headers): each event to `onEvent` until the stream ends (resolves) or fails (throws an
 * ApiFailure), or `signal` aborts it (resolves). `onOpen` runs once the peer accepted it.
 */
export async function followEvents (name: RouteName, params: Record<string, string>, handlers: { onOpen?: () => void, onEvent: (event: unknown) => void }, signal = new AbortController().signal): Promise<void> {
  let res: Response
  try {
    res = await send(routePath(name, params), { headers: { accept: EVENT_STREAM_TYPE, ...authorization() }, signal })
  } catch (err) {
    if (signal.aborted) return
    throw err
  }
  if (!res.ok || res.body === null) throw failure(res.status, (await res.json().catch(() => undefined) as { error?: FailureData } | undefined)?.error)
  handlers.onOpen?.()
  const reader = res.body.getReader()
  const decoder = new SseDecoder()
  try {
    for (;;) {
      const chunk = await reader.read()
      if (chunk.done) return
      for (const event of decoder.push(chunk.value)) handlers.onEvent(event)
    }
  } catch (err) {
    if (signal.aborted) return
    throw new ApiFailure(0, { code: 'ERR_EVENT_STREAM', message: `the event stream was cut off (${(err as Error).message})`, hint: 'the page follows it again on its own' })
  } finally {
    await reader.cancel().catch(() => {})
  }
}
