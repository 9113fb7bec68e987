/**
 * The dashboard's way to its peer: the same routes as every client (src/api/routes.ts), from
 * the page's own origin, authorized by the session cookie the browser sends along. Failures
 * become `ApiFailure`s with the peer's own message and hint, for the page to show.
 */
import { routePath } from '../api/routes.ts'
import type { RouteName } from '../api/routes.ts'
import type { FailureData } from '../api/types.ts'

/** A request the page makes waits this long: the API answers in milliseconds when the peer is up. */
export const API_TIMEOUT_MS = 15_000

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

/** The hint the page shows when it has no session: how to get one. */
export const SIGN_IN_HINT = 'open the dashboard with `rhizome dashboard --open` (or the address `rhizome dashboard` prints): ' +
  'the address carries the peer\'s API token, which this page trades for a session'

export async function api<T> (name: RouteName, params: Record<string, string> = {}, init: { query?: string, method?: 'GET' | 'POST', headers?: Record<string, string> } = {}): Promise<T> {
  let res: Response
  try {
    res = await fetch(routePath(name, params) + (init.query ?? ''), {
      method: init.method ?? 'GET',
      headers: { accept: 'application/json', ...init.headers },
      credentials: 'same-origin',
      signal: AbortSignal.timeout(API_TIMEOUT_MS)
    })
  } catch (err) {
    throw new ApiFailure(0, {
      code: 'ERR_PEER_UNREACHABLE',
      message: `the peer did not answer (${(err as Error).message})`,
      hint: 'is it still running? `rhizome status` on its machine says; the page retries on its own'
    })
  }
  const body = await res.json().catch(() => undefined) as { error?: FailureData } | undefined
  if (!res.ok) {
    const error = body?.error ?? { code: `HTTP_${res.status}`, message: `the peer answered HTTP ${res.status}` }
    throw new ApiFailure(res.status, res.status === 401 ? { ...error, hint: SIGN_IN_HINT } : error)
  }
  return body as T
}

/** Trade the token from the address's fragment for a session cookie, and drop it from the address bar. */
export async function signIn (): Promise<void> {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash)
  if (match === null) return
  history.replaceState(null, '', location.pathname + location.search)
  await api('dashboardSession', {}, { method: 'POST', headers: { authorization: `Bearer ${decodeURIComponent(match[1])}` } })
}
