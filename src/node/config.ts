/**
 * Peer configuration: flags, then `RHIZOME_*` environment variables, then `DIR/config.json`, then
 * defaults — the first that sets a field wins. Every value is validated; a bad one is a
 * `ConfigError` naming the field, where it came from, and what is allowed (the CLI exits 2).
 */
import { statSync } from 'node:fs'
import { isIP } from 'node:net'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { resolveDataDir } from '../api/connect.ts'
import { ConfigError, RhizomeError } from '../model/errors.ts'
import { LOG_LEVELS } from '../model/log.ts'
import { ADMISSION_OPTIONS_DEFAULTS, CONNECTIONS_MAX_LIMIT, CONNECTIONS_MAX_MIN } from '../protocol/admission/index.ts'
import type { LogLevel } from '../model/log.ts'
import { VERIFICATION_MODES } from '../model/verification.ts'
import type { VerificationMode } from '../model/verification.ts'
import type { ParseArgsOptionsConfig } from 'node:util'
import { describeFileType, readRegularFileSync } from '../api/regular-file.ts'
import { FRAME_ARRIVAL_MS_ENV } from '../net/rpc.ts'
import { decodeOwnCertificate } from './certificate.ts'

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
  /** How results of functions without their own policy are verified (src/model/verification.ts). */
  verification: VerificationMode
  /** Path of this peer's membership certificate ('' : none, an open network). With one, the peer is
   *  permissioned: it talks only to peers holding a certificate of the same network. */
  certificate: string
}

/** A config file is a few hundred bytes; 64 KiB leaves room and stops a mistaken huge file. */
export const CONFIG_FILE_BYTES_MAX = 64 * 1024
/** Listen and bootstrap lists: enough for any real deployment, small enough to print. */
export const ADDRS_MAX = 32
const NETWORK_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/

type Kind = 'string' | 'int' | 'bool' | 'list'

interface Field {
  key: keyof NodeConfig
  /** The `node start` flag, as the user types it. */
  flag: string
  env: string
  /** Older or alternative names of the variable, still read (after `env`). */
  envAliases?: string[]
  kind: Kind
  help: string
  /** What the flag's value is called in help (default by kind: N, ADDR, VALUE). */
  arg?: string
  /** The default, in words, where it depends on the machine (so help and README are the same everywhere). */
  defaultText?: string
  /** What to do about a bad value, when more can be said than "fix it". */
  hint?: string
  min?: number
  max?: number
  check?: (value: never) => string | undefined
}

const FIELDS: Field[] = [
  { key: 'listen', flag: '--listen', env: 'RHIZOME_LISTEN', kind: 'list', help: 'multiaddrs to listen on, e.g. /ip4/0.0.0.0/tcp/4001', check: (v: string[]) => checkAddrs(v, false) },
  { key: 'bootstrap', flag: '--bootstrap', env: 'RHIZOME_BOOTSTRAP', kind: 'list', help: 'multiaddrs of peers to join through, each ending in /p2p/<peer id>', check: (v: string[]) => checkAddrs(v, true) },
  { key: 'apiHost', flag: '--api-host', env: 'RHIZOME_API_HOST', kind: 'string', arg: 'HOST', help: 'loopback address the local HTTP API binds to (127.0.0.1, ::1 or localhost)', check: checkApiHost, hint: 'leave it at 127.0.0.1 (the default); to reach the API from another machine, tunnel it, e.g. ssh -L 7070:127.0.0.1:7070 HOST with --api-port 7070' },
  { key: 'apiPort', flag: '--api-port', env: 'RHIZOME_API_PORT', kind: 'int', min: 0, max: 65535, help: 'port of the local HTTP API (0 picks a free one)' },
  { key: 'mdns', flag: '--mdns', env: 'RHIZOME_MDNS', kind: 'bool', help: 'discover peers on the LAN with mDNS' },
  { key: 'logLevel', flag: '--log-level', env: 'RHIZOME_LOG_LEVEL', kind: 'string', arg: 'LEVEL', help: `one of ${LOG_LEVELS.join(', ')}`, check: (v: string) => (LOG_LEVELS as readonly string[]).includes(v) ? undefined : `must be one of ${LOG_LEVELS.join(', ')}` },
  { key: 'networkId', flag: '--network-id', env: 'RHIZOME_NETWORK_ID', kind: 'string', arg: 'ID', help: 'peers only talk to peers with the same network id', check: (v: string) => NETWORK_ID.test(v) ? undefined : 'must be 1-64 characters of a-z, 0-9, ".", "_" or "-", starting with a letter or digit' },
  // The flag is --slots, so the variable is RHIZOME_SLOTS; RHIZOME_SLOTS_MAX (the field's name) is read too.
  { key: 'slotsMax', flag: '--slots', env: 'RHIZOME_SLOTS', envAliases: ['RHIZOME_SLOTS_MAX'], kind: 'int', min: 1, max: 1024, help: 'tasks this peer runs at once', defaultText: 'CPU cores, at most 64' },
  { key: 'announceIntervalMs', flag: '--announce-interval-ms', env: 'RHIZOME_ANNOUNCE_INTERVAL_MS', kind: 'int', min: 100, max: 600_000, help: 'how often the peer announces itself' },
  { key: 'suspectAfterMs', flag: '--suspect-after-ms', env: 'RHIZOME_SUSPECT_AFTER_MS', kind: 'int', min: 200, max: 3_600_000, help: 'silence after which a peer is suspect' },
  { key: 'goneAfterMs', flag: '--gone-after-ms', env: 'RHIZOME_GONE_AFTER_MS', kind: 'int', min: 300, max: 3_600_000, help: 'silence after which a peer is gone' },
  { key: 'connectionsMax', flag: '--connections-max', env: 'RHIZOME_CONNECTIONS_MAX', kind: 'int', min: CONNECTIONS_MAX_MIN, max: CONNECTIONS_MAX_LIMIT, help: 'connections kept open; half are reserved for peers that completed hello' },
  { key: 'connectionsPerAddressMax', flag: '--connections-per-address-max', env: 'RHIZOME_CONNECTIONS_PER_ADDRESS_MAX', kind: 'int', min: 1, max: CONNECTIONS_MAX_LIMIT, help: 'connections from one remote IP address (loopback is exempt unless --connections-limit-loopback)' },
  { key: 'connectionsLimitLoopback', flag: '--connections-limit-loopback', env: 'RHIZOME_CONNECTIONS_LIMIT_LOOPBACK', kind: 'bool', help: 'apply the per-address connection limit to loopback connections too' },
  { key: 'certificate', flag: '--certificate', env: 'RHIZOME_CERTIFICATE', kind: 'string', arg: 'FILE', defaultText: 'none', help: 'membership certificate of a permissioned network (`rhizome network admit`); the network id is the certificate\'s', hint: 'pass the file `rhizome network admit` wrote for this peer' },
  { key: 'verification', flag: '--verification', env: 'RHIZOME_VERIFICATION', kind: 'string', arg: 'MODE', help: 'trusted (every peer is yours: a result is taken from one peer) or open (anyone may join: results are replicated, 2 of 3 must agree); for functions deployed without their own policy', check: (v: string) => (VERIFICATION_MODES as readonly string[]).includes(v) ? undefined : `must be one of ${VERIFICATION_MODES.join(', ')}`, hint: 'use --verification open on a network anyone may join, trusted (the default) on your own machines' }
]

/** `--data-dir` is not a field of the table (it says where the table's config.json is), but is set the same ways. */
const DATA_DIR_HELP = 'identity, database, blobs, config.json, api.json and api.token'
const DATA_DIR_DEFAULT = '~/.rhizome'

/** Every RHIZOME_* variable Rhizome reads; any other one is probably a typo and gets a warning. */
export const KNOWN_ENV: readonly string[] = ['RHIZOME_DATA_DIR', ...FIELDS.flatMap(f => [f.env, ...(f.envAliases ?? [])])]

/** The `node start` flags, for `parseArgs`: one per field, plus `--data-dir`. */
export function configOptions (): ParseArgsOptionsConfig {
  const options: ParseArgsOptionsConfig = { 'data-dir': { type: 'string' } }
  for (const field of FIELDS) options[field.flag.slice(2)] = field.kind === 'bool' ? { type: 'boolean' } : { type: 'string', multiple: field.kind === 'list' }
  return options
}

/** Parsed `node start` flags, keyed as `resolveConfig` takes them. */
export function configFlags (values: Record<string, unknown>): ConfigInput['flags'] {
  const flags: ConfigInput['flags'] = { dataDir: values['data-dir'] }
  for (const field of FIELDS) flags[field.key] = values[field.flag.slice(2)]
  return flags
}

interface FieldDoc { flag: string, env: string[], key: string, defaultText: string, allowed: string, help: string }

/** What the help and the README say of each setting, `--data-dir` first. */
function fieldDocs (): FieldDoc[] {
  // Rendered from the table and the defaults, never written by hand, so the two cannot disagree.
  const defaults = defaultConfig(DATA_DIR_DEFAULT)
  const docs: FieldDoc[] = [{ flag: '--data-dir DIR', env: ['RHIZOME_DATA_DIR'], key: '', defaultText: DATA_DIR_DEFAULT, allowed: '', help: DATA_DIR_HELP }]
  for (const field of FIELDS) {
    const value = defaults[field.key]
    const defaultBool = field.kind === 'bool' && value === true
    const arg = field.arg ?? (field.kind === 'int' ? 'N' : field.kind === 'list' ? 'ADDR' : field.kind === 'bool' ? '' : 'VALUE')
    docs.push({
      flag: defaultBool ? `${field.flag}, --no-${field.flag.slice(2)}` : arg === '' ? field.flag : `${field.flag} ${arg}`,
      env: [field.env, ...(field.envAliases ?? [])],
      key: field.key,
      defaultText: field.defaultText ?? (Array.isArray(value) ? (value.length === 0 ? 'none' : value.join(', ')) : String(value)),
      allowed: field.kind === 'int' ? `${field.min}..${field.max}` : field.kind === 'bool' ? 'true, false' : field.kind === 'list' ? `up to ${ADDRS_MAX}: repeat the flag; comma-separated elsewhere` : '',
      help: field.help
    })
  }
  return docs
}

/** The options part of `rhizome node start --help`, from the field table. */
export function configHelp (): string {
  const docs = fieldDocs()
  const width = Math.max(...docs.map(d => d.flag.length))
  const lines: string[] = []
  for (const d of docs) {
    lines.push(`  ${d.flag.padEnd(width)}  ${d.help}`)
    const range = d.allowed !== '' && d.allowed !== 'true, false' ? ` (${d.allowed})` : ''
    lines.push(`  ${''.padEnd(width)}  default ${d.defaultText}${range}; ${d.env.join(' or ')}${d.key === '' ? '' : `; "${d.key}" in config.json`}`)
  }
  return [
    ...lines,
    '',
    'Each setting is taken from the first of: the flag, the RHIZOME_* variable, DIR/config.json',
    '(a JSON object of the keys above), the default.'
  ].join('\n')
}

/** The configuration table of README.md (between its config-table markers), from the field table. */
export function configTable (): string {
  // Markdown: a pipe ends a cell and <peer id> would be an HTML tag.
  const cell = (text: string): string => text === '' ? '—' : text.replaceAll('|', '\\|').replaceAll('<', '&lt;').replaceAll('>', '&gt;')
  const rows = fieldDocs().map(d => `| \`${d.flag}\` | ${d.env.map(e => `\`${e}\``).join(', ')} | ${d.key === '' ? '—' : `\`${d.key}\``} | ${cell(d.defaultText)} | ${cell(d.allowed)} | ${cell(d.help)} |`)
  return ['| flag | variable | config.json | default | allowed | what it sets |', '|---|---|---|---|---|---|', ...rows].join('\n') + '\n'
}

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
    connectionsLimitLoopback: ADMISSION_OPTIONS_DEFAULTS.limitLoopback,
    // Trusted by default: until permissioned networks exist, a peer cannot tell an open network
    // from a private devnet, and replicating every task three times on one's own machines would
    // triple the cost for nothing. Operators of networks anyone may join set open.
    verification: 'trusted',
    certificate: ''
  }
}

/** Where a peer keeps its state: client-side knowledge too, so it lives with the API's `connect`. */
export { resolveDataDir }

export interface ConfigInput {
  /** Values from command-line flags, keyed like NodeConfig; undefined means not given. */
  flags: Partial<Record<keyof NodeConfig, unknown>>
  env: NodeJS.ProcessEnv
  /** Told about settings that are ignored (an unknown RHIZOME_* variable). Default: nothing. */
  onWarning?: (message: string) => void
}

/** Where a field's value came from, named as the user wrote it: `--api-port`, `RHIZOME_API_PORT`, `apiPort`. */
interface Origin { source: 'flag' | 'env' | 'config.json' | 'default', name: string }

export function resolveConfig (input: ConfigInput): NodeConfig {
  const dataDir = resolveDataDir(input.flags.dataDir as string | undefined, input.env)
  warnUnknownEnv(input.env, input.onWarning)
  const dataDirLabel = input.flags.dataDir !== undefined ? '--data-dir' : input.env.RHIZOME_DATA_DIR !== undefined ? 'RHIZOME_DATA_DIR' : 'the data dir'
  const configPath = join(dataDir, 'config.json')
  const file = readConfigFile(dataDir, dataDirLabel)
  const config = defaultConfig(dataDir)
  const out = config as unknown as Record<string, unknown>
  const origins = new Map<keyof NodeConfig, Origin>()
  for (const field of FIELDS) {
    const envName = [field.env, ...(field.envAliases ?? [])].find(name => input.env[name] !== undefined && input.env[name] !== '')
    let raw: unknown
    let origin: Origin
    if (input.flags[field.key] !== undefined) {
      raw = input.flags[field.key]
      origin = { source: 'flag', name: field.flag }
    } else if (envName !== undefined) {
      raw = input.env[envName]
      origin = { source: 'env', name: envName }
    } else if (file.has(field.key)) {
      raw = file.get(field.key)
      origin = { source: 'config.json', name: field.key }
    } else {
      origins.set(field.key, { source: 'default', name: field.flag })
      continue
    }
    origins.set(field.key, origin)
    out[field.key] = coerce(field, raw, origin, configPath)
  }
  const name = (key: keyof NodeConfig): string => origins.get(key)?.name ?? key
  const where = (key: keyof NodeConfig): string => origins.get(key)?.source === 'config.json' ? ` (in ${configPath})` : ''
  if (config.suspectAfterMs <= config.announceIntervalMs) {
    throw new ConfigError(name('suspectAfterMs'), `must be longer than ${name('announceIntervalMs')} (${config.announceIntervalMs})${where('suspectAfterMs')}, or every peer turns suspect between announcements`, { hint: 'raise the suspect time or lower the announce interval' })
  }
  if (config.goneAfterMs <= config.suspectAfterMs) {
    throw new ConfigError(name('goneAfterMs'), `must be longer than ${name('suspectAfterMs')} (${config.suspectAfterMs})${where('goneAfterMs')}`, { hint: 'raise the gone time or lower the suspect time' })
  }
  if (config.certificate !== '') config.networkId = certificateNetwork(config, origins.get('networkId'))
  return config
}

/**
 * The network id of a permissioned peer is its certificate's: one the user also set must agree.
 * Only the network is read here; the peer checks the whole certificate when it starts.
 */
function certificateNetwork (config: NodeConfig, networkOrigin: Origin | undefined): string {
  const network = decodeOwnCertificate(config.certificate).network
  if (networkOrigin !== undefined && networkOrigin.source !== 'default' && config.networkId !== network) {
    throw new ConfigError(networkOrigin.name, `is ${config.networkId}, but the certificate ${config.certificate} is for network ${network}`, {
      hint: `leave out ${networkOrigin.name} (a permissioned peer takes the network id from its certificate), or use the certificate of network ${config.networkId}`
    })
  }
  return network
}

/**
 * A RHIZOME_* variable Rhizome does not read is almost always a misspelt one (RHIZOME_SLOT,
 * RHIZOME_APIPORT): it would be silently ignored, so say so. A warning, not a refusal: the
 * environment is shared with whatever else runs in it.
 */
function warnUnknownEnv (env: NodeJS.ProcessEnv, onWarning: ((message: string) => void) | undefined): void {
  if (onWarning === undefined) return
  for (const name of Object.keys(env).sort()) {
    // FRAME_ARRIVAL_MS_ENV is read by the RPC layer itself (a testing knob, not a setting).
    if (name.startsWith('RHIZOME_') && !KNOWN_ENV.includes(name) && name !== FRAME_ARRIVAL_MS_ENV) {
      onWarning(`${name} is not a Rhizome setting and is ignored; known variables: ${KNOWN_ENV.join(', ')}`)
    }
  }
}

function readConfigFile (dataDir: string, dataDirLabel: string): Map<string, unknown> {
  // A data dir that is a file would fail later in a less clear way (ENOTDIR on every path in it).
  let dirStats
  try {
    dirStats = statSync(dataDir)
  } catch {
    return new Map() // created on start
  }
  if (!dirStats.isDirectory()) {
    throw new ConfigError(dataDirLabel, `${dataDir} is ${dirStats.isFile() ? 'a regular file' : describeFileType(dirStats)}, not a directory`, { hint: 'pass a directory (it is created if missing), e.g. --data-dir ~/.rhizome' })
  }
  const path = join(dataDir, 'config.json')
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(readRegularFileSync(path, CONFIG_FILE_BYTES_MAX, 'config file'))
  } catch (err) {
    if (err instanceof RhizomeError && err.code === 'ERR_FILE' && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return new Map()
    if (err instanceof RhizomeError) throw new ConfigError('config.json', err.message, { hint: err.code === 'ERR_TOO_LARGE' ? err.hint : `make ${path} a regular file holding a JSON object, or remove it`, cause: err })
    throw new ConfigError('config.json', `${path} is not UTF-8 text`, { hint: 'save it as UTF-8 JSON', cause: err })
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new ConfigError('config.json', `${path} is not valid JSON: ${(err as Error).message}`, { hint: 'fix the JSON, e.g. {"apiPort": 7070}' })
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError('config.json', `${path} must hold a JSON object`, { hint: 'e.g. {"apiPort": 7070}' })
  // Own keys only, into a Map: "__proto__" or "toString" in the file are unknown fields, not
  // lookups that reach Object.prototype.
  const known = FIELDS.map(f => f.key as string)
  const fields = new Map<string, unknown>()
  for (const [key, value] of Object.entries(parsed)) {
    if (!known.includes(key)) throw new ConfigError(key, `unknown field in ${path}`, { hint: `known fields: ${known.join(', ')}` })
    fields.set(key, value)
  }
  return fields
}

function coerce (field: Field, raw: unknown, origin: Origin, configPath: string): unknown {
  const where = origin.source === 'config.json' ? ` (in ${configPath})` : ''
  const example = origin.source === 'flag' ? `${field.flag} VALUE` : origin.source === 'env' ? `${origin.name}=VALUE` : `"${field.key}": VALUE in config.json`
  const fail = (what: string): never => {
    throw new ConfigError(origin.name, `${what}${where}; ${field.help}`, { hint: field.hint ?? `fix ${example} (see \`rhizome node start --help\`)` })
  }
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

/**
 * The HTTP API has no authentication: whoever reaches it can deploy and run code and read blobs
 * as this peer. So it binds to a loopback address only, and there is no switch to open it; to
 * reach it from another machine, tunnel it (ssh -L) or put an authenticating proxy in front.
 */
function checkApiHost (host: string): string | undefined {
  if (!/^[0-9a-zA-Z.:[\]-]{1,64}$/.test(host)) return 'must be a host name or IP address'
  if (isLoopbackHost(host)) return undefined
  return `${JSON.stringify(host)} is not a loopback address: the HTTP API has no authentication, so it listens on this machine only`
}

export function isLoopbackHost (host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  if (bare === 'localhost') return true
  if (isIP(bare) === 4) return bare.startsWith('127.')
  if (isIP(bare) === 6) return bare === '::1' || bare === '0:0:0:0:0:0:0:1'
  return false
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
