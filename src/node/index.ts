/**
 * What the CLI may use of the peer's internals: booting one (`rhizome node start`). Everything
 * else the CLI does goes through the HTTP API.
 */
export { startNode, STOP_TIMEOUT_MS } from './node.ts'
export type { RhizomeNode, NodeStatus, PeerView } from './node.ts'
export { resolveConfig, resolveDataDir, defaultConfig } from './config.ts'
export type { NodeConfig } from './config.ts'
export { createLogger } from './logger.ts'
export { apiTokenPath, readApiToken } from './api-token.ts'
export { VERSION } from '../model/version.ts'
