/**
 * Peer configuration: flags, then `RHIZOME_*` environment variables, then `DIR/config.json`, then
 * defaults — the first that sets a field wins. Every value is validated; a bad one is a
 * `ConfigError` naming the field, where it came from, and what is allowed (the CLI exits 2).
 */
import { readFileSync, statSync } from 'node:fs'
import { availableParallelism, homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { ConfigError } from '../model/errors.ts'
import { LOG_LEVELS } from '../model/log.ts'
import { ADMISSION_OPTIONS_DEFAULTS, CONNECTIONS_MAX_LIMIT, CONNECTIONS_MAX_MIN } from '../protocol/admission/index.ts'
import type { LogLevel } from '../model/log.ts'

export interface NodeConfig {
  dataDir: string
  listen: string[]
  bootstrap: string[]
  apiHost: string
  apiPort: number
  mdns: boolean
  logLevel: LogLevel
  networkId: string
  slotsMax: number
  announceIntervalMs: number
  suspectAfterMs: number
  goneAfterMs: number
  connectionsMax: number
  connectionsPerAddressMax: number
  connectionsLimitLoopback: boolean
}

/** A config file is a few hundred bytes; 64 KiB leaves room and stops a mistaken huge file. */
export const CONFIG_FILE_BYTES_MAX = 64 * 1024
/** Listen and bootstrap lists: enough for any real deployment, small enough to print. */
export const ADDRS_MAX = 32
const NETWORK_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/

type Source = 'flag' | 'env' | 'config.json' | 'default'
type Kind = 'string' | 'int' | 'bool' | 'list'

interface Field {
  key: keyof NodeConfig
  env: string
  kind: Kind
  help: string
  min?: number
  max?: number
  check?: (value: never) => string | undefined
}

const FIELDS: Field[] = [
  { key: 'listen', env: 'RHIZOME_LISTEN', kind: 'list', help: 'multiaddrs to listen on, e.g. /ip4/0.0.0.0/tcp/4001', check: (v: string[]) => checkAddrs(v, false) },
  { key: 'bootstrap', env: 'RHIZOME_BOOTSTRAP', kind: 'list', help: 'multiaddrs of peers to join through, each ending in /p2p/<peer id>', check: (v: string[]) => checkAddrs(v, true) },
  { key: 'apiHost', env: 'RHIZOME_API_HOST', kind: 'string', help: 'address the local HTTP API binds to', check: (v: string) => /^[0-9a-zA-Z.:[\]-]{1,64}$/.test(v) ? undefined : 'must be a host name or IP address' },
  { key: 'apiPort', env: 'RHIZOME_API_PORT', kind: 'int', min: 0, max: 65535, help: 'port of the local HTTP API (0 picks a free one)' },
  { key: 'mdns', env: 'RHIZOME_MDNS', kind: 'bool', help: 'discover peers on the LAN with mDNS' },
  { key: 'logLevel', env: 'RHIZOME_LOG_LEVEL', kind: 'string', help: `one of ${LOG_LEVELS.join(', ')}`, check: (v: string) => (LOG_LEVELS as readonly string[]).includes(v) ? undefined : `must be one of ${LOG_LEVELS.join(', ')}` },
  { key: 'networkId', env: 'RHIZOME_NETWORK_ID', kind: 'string', help: 'peers only talk to peers with the same network id', check: (v: string) => NETWORK_ID.test(v) ? undefined : 'must be 1-64 characters of a-z, 0-9, ".", "_" or "-", starting with a letter or digit' },
  { key: 'slotsMax', env: 'RHIZOME_SLOTS_MAX', kind: 'int', min: 1, max: 1024, help: 'tasks this peer runs at once' },
  { key: 'announceIntervalMs', env: 'RHIZOME_ANNOUNCE_INTERVAL_MS', kind: 'int', min: 100, max: 600_000, help: 'how often the peer announces itself' },
  { key: 'suspectAfterMs', env: 'RHIZOME_SUSPECT_AFTER_MS', kind: 'int', min: 200, max: 3_600_000, help: 'silence after which a peer is suspect' },
  { key: 'goneAfterMs', env: 'RHIZOME_GONE_AFTER_MS', kind: 'int', min: 300, max: 3_600_000, help: 'silence after which a peer is gone' },
  { key: 'connectionsMax', env: 'RHIZOME_CONNECTIONS_MAX', kind: 'int', min: CONNECTIONS_MAX_MIN, max: CONNECTIONS_MAX_LIMIT, help: 'connections kept open; half are reserved for peers that completed hello' },
  { key: 'connectionsPerAddressMax', env: 'RHIZOME_CONNECTIONS_PER_ADDRESS_MAX', kind: 'int', min: 1, max: CONNECTIONS_MAX_LIMIT, help: 'connections from one remote IP address (loopback is exempt unless connectionsLimitLoopback)' },
  { key: 'connectionsLimitLoopback', env: 'RHIZOME_CONNECTIONS_LIMIT_LOOPBACK', kind: 'bool', help: 'apply connectionsPerAddressMax to loopback connections too' }
]

export function defaultConfig (dataDir: string): NodeConfig {
  return {
    dataDir,
    listen: ['/ip4/0.0.0.0/tcp/0', '/ip4/0.0.0.0/tcp/0/ws'],
    bootstrap: [],
    apiHost: '127.0.0.1',
    apiPort: 0,
    mdns: true,
    logLevel: 'info',
    networkId: 'rhizome',
    slotsMax: Math.min(availableParallelism(), 64),
    announceIntervalMs: 2000,
    suspectAfterMs: 5000,
    goneAfterMs: 10000,
    connectionsMax: ADMISSION_OPTIONS_DEFAULTS.connectionsMax,
    connectionsPerAddressMax: ADMISSION_OPTIONS_DEFAULTS.connectionsPerAddressMax,
    connectionsLimitLoopback: ADMISSION_OPTIONS_DEFAULTS.limitLoopback
  }
}

/** Where a command finds its peer: `--data-dir`, then RHIZOME_DATA_DIR, then ~/.rhizome. */
export function resolveDataDir (flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const value = flag ?? env.RHIZOME_DATA_DIR ?? join(homedir(), '.rhizome')
  if (value.length === 0 || value.length > 1024) throw new ConfigError('dataDir', 'must be a non-empty path of at most 1024 characters')
  return resolve(value)
}

export interface ConfigInput {
  /** Values from command-line flags, keyed like NodeConfig; undefined means not given. */
  flags: Partial<Record<keyof NodeConfig, unknown>>
  env: NodeJS.ProcessEnv
}

export function resolveConfig (input: ConfigInput): NodeConfig {
  const dataDir = resolveDataDir(input.flags.dataDir as string | undefined, input.env)
  const file = readConfigFile(dataDir)
  const config = defaultConfig(dataDir)
  const out = config as unknown as Record<string, unknown>
  for (const field of FIELDS) {
    let raw: unknown
    let source: Source = 'default'
    if (input.flags[field.key] !== undefined) { raw = input.flags[field.key]; source = 'flag' } else if (input.env[field.env] !== undefined && input.env[field.env] !== '') { raw = input.env[field.env]; source = 'env' } else if (file[field.key] !== undefined) { raw = file[field.key]; source = 'config.json' }
    if (source === 'default') continue
    out[field.key] = coerce(field, raw, source)
  }
  if (config.suspectAfterMs <= config.announceIntervalMs) {
    throw new ConfigError('suspectAfterMs', `must be longer than announceIntervalMs (${config.announceIntervalMs}), or every peer turns suspect between announcements`)
  }
  if (config.goneAfterMs <= config.suspectAfterMs) {
    throw new ConfigError('goneAfterMs', `must be longer than suspectAfterMs (${config.suspectAfterMs})`)
  }
  return config
}

function readConfigFile (dataDir: string): Record<string, unknown> {
  const path = join(dataDir, 'config.json')
  let size: number
  try {
    size = statSync(path).size
  } catch {
    return {}
  }
  if (size > CONFIG_FILE_BYTES_MAX) throw new ConfigError('config.json', `${path} is ${size} bytes; the limit is ${CONFIG_FILE_BYTES_MAX}`)
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new ConfigError('config.json', `${path} is not valid JSON: ${(err as Error).message}`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError('config.json', `${path} must hold a JSON object`)
  const known = new Set(FIELDS.map(f => f.key as string))
  for (const key of Object.keys(parsed)) {
    if (!known.has(key)) throw new ConfigError(key, `unknown field in ${path}; known fields: ${[...known].join(', ')}`)
  }
  return parsed as Record<string, unknown>
}

function coerce (field: Field, raw: unknown, source: Source): unknown {
  const where = source === 'env' ? ` (from ${field.env})` : source === 'config.json' ? ' (from config.json)' : ''
  const fail = (what: string): never => { throw new ConfigError(field.key, `${what}${where}; ${field.help}`) }
  let value: unknown
  switch (field.kind) {
    case 'string':
      if (typeof raw !== 'string') fail('must be a string')
      value = raw
      break
    case 'int': {
      const n = typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw
      if (typeof n !== 'number' || !Number.isSafeInteger(n)) fail(`must be an integer, got ${JSON.stringify(raw)}`)
      if ((n as number) < field.min! || (n as number) > field.max!) fail(`must be between ${field.min} and ${field.max}, got ${String(n)}`)
      value = n
      break
    }
    case 'bool':
      if (typeof raw === 'boolean') value = raw
      else if (raw === 'true' || raw === '1') value = true
      else if (raw === 'false' || raw === '0') value = false
      else fail(`must be true or false, got ${JSON.stringify(raw)}`)
      break
    case 'list': {
      const list = typeof raw === 'string' ? raw.split(',').map(s => s.trim()).filter(s => s !== '') : raw
      if (!Array.isArray(list) || !list.every(s => typeof s === 'string')) fail('must be a list of strings')
      if ((list as string[]).length > ADDRS_MAX) fail(`has ${(list as string[]).length} entries; at most ${ADDRS_MAX} are allowed`)
      value = list
      break
    }
  }
  const problem = field.check?.(value as never)
  if (problem !== undefined) fail(problem)
  return value
}

function checkAddrs (addrs: string[], needPeerId: boolean): string | undefined {
  for (const addr of addrs) {
    if (addr.length > 256) return `${addr.slice(0, 40)}… is longer than 256 characters`
    try {
      const ma = multiaddr(addr)
      const p2p = ma.getComponents().find(c => c.name === 'p2p')
      if (needPeerId && p2p === undefined) return `${addr} has no /p2p/<peer id> part`
      if (p2p !== undefined) {
        try {
          peerIdFromString(p2p.value ?? '')
        } catch {
          return `${addr}: ${JSON.stringify(p2p.value)} is not a peer id`
        }
      }
    } catch (err) {
      return `${JSON.stringify(addr)} is not a valid multiaddr (${(err as Error).message})`
    }
  }
  return undefined
}
