import { spawn } from 'node:child_process'
import { EXIT_OK, dataDirOption, jsonOption } from '../command.ts'
import { connectPeer } from '../connect.ts'
import type { Command } from '../command.ts'

export const dashboard: Command = {
  usage: `rhizome dashboard [--open] [--data-dir DIR | --api URL] [--json]

  Prints the address of the peer's dashboard: the network, its runs and their tasks, live in a
  browser. The address carries the API token after '#', which the browser never sends; the page
  keeps it in the tab's session storage and removes it from the address bar. Treat the address
  like the token: whoever has it may use the peer's API.

  --open  also open the dashboard in the default browser (xdg-open, open or start). The browser
          gets an address with a single-use sign-in code instead of the token (a command line
          is readable by every local user); the code expires after a minute.`,
  options: { ...dataDirOption, ...jsonOption, open: { type: 'boolean' } },
  positionals: [0, 0],
  async run (context) {
    const client = await connectPeer(context)
    // Ask the peer first: an address of a peer that is not running would open an error page.
    await client.status()
    const url = client.dashboardUrl()
    // The printed address keeps the token (the user's own terminal; a code would be used up by
    // the browser opened here). The opener's command line gets a code: other users can read it.
    const opened = context.values.open === true ? openInBrowser(await client.dashboardSignInUrl()) : undefined
    if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify({ url, ...(opened === undefined ? {} : { opened }) }) + '\n' }
    const note = opened === false ? 'could not start a browser here: open the address above in one\n' : ''
    return { exitCode: EXIT_OK, stdout: `${url}\n${note}` }
  }
}

/** Starts the platform's opener, detached; false if there is none to start. */
function openInBrowser (url: string): boolean {
  const [command, args] = process.platform === 'darwin'
    ? ['open', [url]]
    : process.platform === 'win32' ? ['cmd', ['/c', 'start', '""', url]] : ['xdg-open', [url]]
  try {
    const child = spawn(command, args, { detached: true, stdio: 'ignore' })
    child.on('error', () => {}) // no opener installed: the address is printed anyway
    child.unref()
    return child.pid !== undefined
  } catch {
    return false
  }
}
