/**
 * The dashboard's entry point, bundled by the peer (src/node/dashboard.ts) and served at
 * /dashboard/app.js. Signs in with the token from the address's fragment if there is one, reads
 * this peer's status, and starts the page; if that fails, the page says why and what to do.
 */
import { ApiFailure, api, signIn } from './api.ts'
import { Dashboard } from './app.ts'
import { h, notice, replace } from './dom.ts'
import type { NodeStatus } from '../api/types.ts'

async function boot (root: HTMLElement): Promise<void> {
  try {
    await signIn()
    const self = await api<NodeStatus>('status')
    new Dashboard(root, self).start()
  } catch (err) {
    const failure = err instanceof ApiFailure ? err : undefined
    replace(root,
      h('header', {}, h('h1', {}, 'Rhizome')),
      notice('error', failure?.message ?? `the dashboard could not start: ${String(err)}`, failure?.hint ?? 'reload the page; if it persists, see the peer\'s log'))
  }
}

const root = document.getElementById('app')
if (root !== null) void boot(root)
