/**
 * The route table of a peer's HTTP API: the one place a route is defined. The server
 * (src/node/http-api.ts) implements exactly these, keyed by name; clients build their requests
 * from them. `write: true` routes change the peer's state (or spend its resources) and need the
 * API token.
 */
import { assert } from '../model/errors.ts'

export interface Route {
  method: 'GET' | 'POST'
  /** Path pattern; `:name` segments are parameters. */
  path: string
  write: boolean
  summary: string
  /**
   * Served without the API token: the dashboard's page and code, which hold no data, and its
   * sign-in, which takes a single-use code instead (src/node/dashboard.ts).
   */
  public?: boolean
}

export const ROUTES = {
  status: { method: 'GET', path: '/v1/status', write: false, summary: 'this peer: id, version, network, addrs, uptime, peer and blob counts' },
  peers: { method: 'GET', path: '/v1/peers', write: false, summary: 'the membership view, with a connected flag' },
  functions: { method: 'GET', path: '/v1/functions', write: false, summary: 'the functions this peer holds' },
  deploy: { method: 'POST', path: '/v1/functions', write: true, summary: 'deploy: body is dag-cbor { manifest, code, replicas }' },
  call: { method: 'POST', path: '/v1/call', write: true, summary: 'run one task: JSON { fn, export, args, on?, timeoutMs? }; with Accept: text/event-stream, its progress then its result as events' },
  blobPut: { method: 'POST', path: '/v1/blobs', write: true, summary: 'store the body as a blob' },
  blobGet: { method: 'GET', path: '/v1/blobs/:cid', write: false, summary: 'the blob\'s bytes, verified on the way out' },
  blobFetch: { method: 'POST', path: '/v1/blobs/:cid/fetch', write: true, summary: 'fetch a blob from ?from=PEER, verify and store it' },
  events: { method: 'GET', path: '/v1/events', write: false, summary: 'every progress event of this peer, as Server-Sent Events (src/api/events.ts)' },
  runStart: { method: 'POST', path: '/v1/runs', write: true, summary: 'start a workflow run: JSON { workflow, export, args } → { runId }' },
  runList: { method: 'GET', path: '/v1/runs', write: false, summary: 'the runs this peer drives, newest first (?limit=N&status=S)' },
  runGet: { method: 'GET', path: '/v1/runs/:id', write: false, summary: 'a run: status, result or error, its tasks (which peer ran what) and critical path' },
  runEvents: { method: 'GET', path: '/v1/runs/:id/events', write: false, summary: 'a run\'s progress as Server-Sent Events: what happened so far, then live, ending with run:finished' },
  runCancel: { method: 'POST', path: '/v1/runs/:id/cancel', write: true, summary: 'cancel a run: its tasks in flight are cancelled on their workers' },
  taskAttestations: { method: 'GET', path: '/v1/tasks/:id/attestations', write: false, summary: 'the signed answers behind a verified task: who computed it, who agreed, who disagreed' },
  reputation: { method: 'GET', path: '/v1/reputation', write: false, summary: 'this peer\'s record of each other peer: agreements, disagreements, failures, lies, score, ban' },
  network: { method: 'GET', path: '/v1/network', write: false, summary: 'the network: open or permissioned; members (roles, expiry, connected), revocations, refusals' },
  revocationSubmit: { method: 'POST', path: '/v1/network/revocations', write: true, summary: 'enforce and gossip a signed revocation: body is its bytes (`rhizome network revoke`)' },
  metrics: { method: 'GET', path: '/metrics', write: false, summary: 'this peer\'s Prometheus metrics, in the text exposition format (src/node/metrics.ts)' },
  sql: { method: 'POST', path: '/v1/sql', write: true, summary: 'one read-only SQL query over the views of this peer\'s history: JSON { sql, maxRows?, timeoutMs? } → { columns, rows }' },
  logs: { method: 'GET', path: '/v1/logs', write: false, summary: 'this peer\'s recent log records (?level=&ns=&since=&limit=); with Accept: text/event-stream, then live' },
  dashboard: { method: 'GET', path: '/dashboard', write: false, public: true, summary: 'the dashboard: the network, runs and their tasks, live (`rhizome dashboard` opens it)' },
  dashboardAsset: { method: 'GET', path: '/dashboard/:asset', write: false, public: true, summary: 'the dashboard\'s script, style sheet and icon, built into the peer' },
  dashboardCode: { method: 'POST', path: '/v1/dashboard/codes', write: true, summary: 'a single-use code that signs the dashboard in, valid for a minute (`rhizome dashboard --open` opens the page with it)' },
  dashboardSignIn: { method: 'POST', path: '/dashboard/sign-in', write: true, public: true, summary: 'the dashboard trades a sign-in code, once, for the API token: JSON { code } → { token }' },
  runSignal: { method: 'POST', path: '/v1/runs/:id/signals', write: true, summary: 'send a run a signal: JSON { name, value }; recorded in its memo, then delivered to the code\'s signal(name)' }
} as const satisfies Record<string, Route>

export type RouteName = keyof typeof ROUTES

/** Fill a route's `:name` parameters (URI-encoded). */
export function routePath (name: RouteName, params: Record<string, string> = {}): string {
  return ROUTES[name].path.replace(/:([a-z]+)/g, (_, key: string) => {
    const value = params[key]
    assert(value !== undefined, `route ${name} needs parameter ${key}`)
    return encodeURIComponent(value)
  })
}

/** Match a request path against a route pattern; the parameters if it matches. */
export function matchRoute (route: Route, method: string, pathname: string): Record<string, string> | undefined {
  if (route.method !== method) return undefined
  const want = route.path.split('/')
  const got = pathname.split('/')
  if (want.length !== got.length) return undefined
  const params: Record<string, string> = {}
  for (let i = 0; i < want.length; i++) {
    if (want[i].startsWith(':')) {
      if (got[i] === '') return undefined
      try {
        params[want[i].slice(1)] = decodeURIComponent(got[i])
      } catch {
        return undefined
      }
    } else if (want[i] !== got[i]) {
      return undefined
    }
  }
  return params
}
