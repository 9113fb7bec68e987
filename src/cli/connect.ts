/**
 * How a command reaches its peer: `--api URL`, or the `api.json` the peer wrote into its data
 * dir (`--data-dir`, RHIZOME_DATA_DIR, or ~/.rhizome). The token comes from `--api-token`, then
 * (with `--api`) RHIZOME_API_TOKEN, then DIR/api.token. The resolving is `connect` of src/api,
 * the same the SDK uses; here only the flags are checked, so a typo exits 2 naming the flag.
 */
import { connect } from '../api/connect.ts'
import { CliError, EXIT_USAGE } from './command.ts'
import type { RhizomeClient } from '../api/client.ts'
import type { CommandContext } from './command.ts'

export async function connectPeer (context: CommandContext): Promise<RhizomeClient> {
  const url = context.values.api as string | undefined
  const token = context.values['api-token'] as string | undefined
  if (token !== undefined && token.trim() === '') throw new CliError('ERR_USAGE', '--api-token is empty', { exitCode: EXIT_USAGE, hint: 'pass the contents of DIR/api.token from the peer\'s machine' })
  if (url !== undefined && !isHttpUrl(url)) throw new CliError('ERR_USAGE', `--api ${JSON.stringify(url)} is not an http:// URL`, { exitCode: EXIT_USAGE, hint: 'e.g. --api http://127.0.0.1:7070' })
  return await connect({ url, token: token?.trim(), dataDir: context.values['data-dir'] as string | undefined, env: context.env, signal: context.signal })
}

function isHttpUrl (text: string): boolean {
  try {
    return new URL(text).protocol === 'http:'
  } catch {
    return false
  }
}
