/**
 * What the CLI may use of the peer's internals: its configuration (to validate `node start`
 * flags) and booting one. Importing this file is cheap: the peer itself (libp2p, SQLite, the
 * sandbox) is loaded only when `startNode` is called. Everything else the CLI does goes through
 * the HTTP API (src/api).
 */
import type { Logger } from '../model/log.ts'
import type { NodeConfig } from './config.ts'
import type { RhizomeNode } from './node.ts'

export type { RhizomeNode, NodeStatus, PeerView } from './node.ts'
export { resolveConfig, resolveDataDir, defaultConfig, configFlags, configHelp, configOptions } from './config.ts'
export type { NodeConfig } from './config.ts'
export { createLogger } from './logger.ts'
export { apiTokenPath, readApiToken } from './api-token.ts'
export { VERSION } from '../model/version.ts'

/** Start a peer: loads the peer's code on first use, then `node.ts`'s `startNode`. */
export async function startNode (config: NodeConfig, log: Logger): Promise<RhizomeNode> {
  const { startNode: start } = await import('./node.ts')
  return await start(config, log)
}
