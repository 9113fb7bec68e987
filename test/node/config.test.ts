import { afterEach, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { ADDRS_MAX, CONFIG_FILE_BYTES_MAX, KNOWN_ENV, defaultConfig, resolveConfig, resolveDataDir } from '../../src/node/config.ts'
import { ConfigError } from '../../src/model/errors.ts'
import { LOG_LEVELS } from '../../src/model/log.ts'
import { CONNECTIONS_MAX_LIMIT, CONNECTIONS_MAX_MIN } from '../../src/protocol/admission/index.ts'
import type { NodeConfig } from '../../src/node/config.ts'

const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
const tcp = (port: number): string => `/ip4/127.0.0.1/tcp/${port}`
const withPeer = (port: number): string => `${tcp(port)}/p2p/${peerId}`

type Flags = Partial<Record<keyof NodeConfig, unknown>>

/** The flag of each field, as `node start` takes it: errors name it when the value came from a flag. */
const FLAG: Record<string, string> = {
  listen: '--listen', bootstrap: '--bootstrap', apiHost: '--api-host', apiPort: '--api-port', mdns: '--mdns', logLevel: '--log-level', networkId: '--network-id',
  slotsMax: '--slots', announceIntervalMs: '--announce-interval-ms', suspectAfterMs: '--suspect-after-ms', goneAfterMs: '--gone-after-ms',
  connectionsMax: '--connections-max', connectionsPerAddressMax: '--connections-per-address-max', connectionsLimitLoopback: '--connections-limit-loopback',
  verification: '--verification'
}

/** Passes when `fn` throws a ConfigError naming `field` as the user wrote it (flag, variable or file key). */
function throwsConfigError (fn: () => unknown, field: string, messageIncludes?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`)
    assert.equal(err.name, 'ConfigError')
    assert.equal(err.field, field)
    if (messageIncludes !== undefined) assert.ok(err.message.includes(messageIncludes), `${JSON.stringify(err.message)} mentions ${messageIncludes}`)
    return true
  })
}

describe('resolveConfig', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'rhizome-config-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  async function writeConfigFile (content: unknown): Promise<void> {
    await writeFile(join(dir, 'config.json'), typeof content === 'string' ? content : JSON.stringify(content))
  }
  function configWith (flags: Flags = {}, env: NodeJS.ProcessEnv = {}): NodeConfig {
    return resolveConfig({ flags: { dataDir: dir, ...flags }, env })
  }

  test('with nothing set, every field has its default', () => {
    assert.deepEqual(configWith(), defaultConfig(dir))
    const defaults = defaultConfig(dir)
    assert.ok(defaults.slotsMax >= 1 && defaults.slotsMax <= 64)
    assert.ok(defaults.announceIntervalMs < defaults.suspectAfterMs && defaults.suspectAfterMs < defaults.goneAfterMs)
  })

  describe('precedence: flag > env > config.json > default, for every field', () => {
    interface Layered { key: keyof NodeConfig, env: string, file: unknown, envValue: string, flag: unknown, expected: [unknown, unknown, unknown] }
    const fields: Layered[] = [
      { key: 'listen', env: 'RHIZOME_LISTEN', file: [tcp(1)], envValue: tcp(2), flag: [tcp(3)], expected: [[tcp(1)], [tcp(2)], [tcp(3)]] },
      { key: 'bootstrap', env: 'RHIZOME_BOOTSTRAP', file: [withPeer(1)], envValue: withPeer(2), flag: [withPeer(3)], expected: [[withPeer(1)], [withPeer(2)], [withPeer(3)]] },
      { key: 'apiHost', env: 'RHIZOME_API_HOST', file: '127.0.0.2', envValue: '127.0.0.3', flag: '127.0.0.4', expected: ['127.0.0.2', '127.0.0.3', '127.0.0.4'] },
      { key: 'apiPort', env: 'RHIZOME_API_PORT', file: 1111, envValue: '2222', flag: '3333', expected: [1111, 2222, 3333] },
      { key: 'mdns', env: 'RHIZOME_MDNS', file: false, envValue: 'true', flag: false, expected: [false, true, false] },
      { key: 'logLevel', env: 'RHIZOME_LOG_LEVEL', file: 'debug', envValue: 'warn', flag: 'error', expected: ['debug', 'warn', 'error'] },
      { key: 'networkId', env: 'RHIZOME_NETWORK_ID', file: 'file-net', envValue: 'env-net', flag: 'flag-net', expected: ['file-net', 'env-net', 'flag-net'] },
      { key: 'slotsMax', env: 'RHIZOME_SLOTS', file: 3, envValue: '4', flag: '5', expected: [3, 4, 5] },
      { key: 'announceIntervalMs', env: 'RHIZOME_ANNOUNCE_INTERVAL_MS', file: 1000, envValue: '1100', flag: '1200', expected: [1000, 1100, 1200] },
      { key: 'suspectAfterMs', env: 'RHIZOME_SUSPECT_AFTER_MS', file: 6000, envValue: '7000', flag: '8000', expected: [6000, 7000, 8000] },
      { key: 'goneAfterMs', env: 'RHIZOME_GONE_AFTER_MS', file: 20000, envValue: '21000', flag: '22000', expected: [20000, 21000, 22000] },
      { key: 'connectionsMax', env: 'RHIZOME_CONNECTIONS_MAX', file: 50, envValue: '60', flag: '70', expected: [50, 60, 70] },
      { key: 'connectionsPerAddressMax', env: 'RHIZOME_CONNECTIONS_PER_ADDRESS_MAX', file: 4, envValue: '5', flag: '6', expected: [4, 5, 6] },
      { key: 'connectionsLimitLoopback', env: 'RHIZOME_CONNECTIONS_LIMIT_LOOPBACK', file: true, envValue: 'false', flag: true, expected: [true, false, true] },
      { key: 'verification', env: 'RHIZOME_VERIFICATION', file: 'open', envValue: 'trusted', flag: 'open', expected: ['open', 'trusted', 'open'] }
    ]
    for (const f of fields) {
      test(f.key, async () => {
        const fallback = defaultConfig(dir)[f.key]
        assert.notDeepEqual(f.expected[0], fallback, 'the config.json value differs from the default')
        assert.deepEqual(configWith()[f.key], fallback)
        await writeConfigFile({ [f.key]: f.file })
        assert.deepEqual(configWith()[f.key], f.expected[0], 'config.json beats the default')
        assert.deepEqual(configWith({}, { [f.env]: f.envValue })[f.key], f.expected[1], 'env beats config.json')
        assert.deepEqual(configWith({ [f.key]: f.flag }, { [f.env]: f.envValue })[f.key], f.expected[2], 'a flag beats env')
        assert.deepEqual(configWith({}, { [f.env]: '' })[f.key], f.expected[0], 'an empty env variable counts as unset')
      })
    }

    test('dataDir: flag, then RHIZOME_DATA_DIR, then ~/.rhizome; relative paths become absolute', async () => {
      const other = join(dir, 'other')
      assert.equal(resolveConfig({ flags: { dataDir: dir }, env: { RHIZOME_DATA_DIR: other } }).dataDir, dir)
      assert.equal(resolveConfig({ flags: {}, env: { RHIZOME_DATA_DIR: other } }).dataDir, other)
      assert.equal(resolveDataDir(undefined, {}), join(homedir(), '.rhizome'))
      assert.equal(resolveDataDir('relative/dir', {}), resolve('relative/dir'))
    })
  })

  describe('integer fields: one past min and max is refused, from every source', () => {
    interface Range { key: keyof NodeConfig, env: string, ok: number[], bad: number[], with?: Flags }
    const ranges: Range[] = [
      { key: 'apiPort', env: 'RHIZOME_API_PORT', ok: [0, 65535], bad: [-1, 65536] },
      { key: 'slotsMax', env: 'RHIZOME_SLOTS', ok: [1, 1024], bad: [0, 1025] },
      { key: 'connectionsMax', env: 'RHIZOME_CONNECTIONS_MAX', ok: [CONNECTIONS_MAX_MIN, CONNECTIONS_MAX_LIMIT], bad: [CONNECTIONS_MAX_MIN - 1, CONNECTIONS_MAX_LIMIT + 1] },
      { key: 'connectionsPerAddressMax', env: 'RHIZOME_CONNECTIONS_PER_ADDRESS_MAX', ok: [1, CONNECTIONS_MAX_LIMIT], bad: [0, CONNECTIONS_MAX_LIMIT + 1] },
      // The timing fields must also keep announce < suspect < gone, so the others make room.
      { key: 'announceIntervalMs', env: 'RHIZOME_ANNOUNCE_INTERVAL_MS', ok: [100, 600_000], bad: [99, 600_001], with: { suspectAfterMs: 600_002, goneAfterMs: 600_003 } },
      { key: 'suspectAfterMs', env: 'RHIZOME_SUSPECT_AFTER_MS', ok: [200, 3_599_999], bad: [199, 3_600_001], with: { announceIntervalMs: 100, goneAfterMs: 3_600_000 } },
      { key: 'goneAfterMs', env: 'RHIZOME_GONE_AFTER_MS', ok: [300, 3_600_000], bad: [299, 3_600_001], with: { announceIntervalMs: 100, suspectAfterMs: 200 } }
    ]
    for (const r of ranges) {
      test(r.key, async () => {
        for (const value of r.ok) {
          assert.equal(configWith({ ...r.with, [r.key]: String(value) })[r.key], value, `flag ${value}`)
          assert.equal(configWith(r.with, { [r.env]: String(value) })[r.key], value, `env ${value}`)
        }
        for (const value of r.bad) {
          throwsConfigError(() => configWith({ ...r.with, [r.key]: String(value) }), FLAG[r.key], String(value))
          throwsConfigError(() => configWith(r.with, { [r.env]: String(value) }), r.env, r.env)
        }
        for (const value of r.ok) {
          await writeConfigFile({ [r.key]: value })
          assert.equal(configWith(r.with)[r.key], value, `config.json ${value}`)
        }
        for (const value of r.bad) {
          await writeConfigFile({ [r.key]: value })
          throwsConfigError(() => configWith(r.with), r.key, 'config.json')
        }
      })
    }

    test('suspectAfterMs at its max of 3600000 leaves goneAfterMs no room', () => {
      throwsConfigError(() => configWith({ announceIntervalMs: '100', suspectAfterMs: '3600000', goneAfterMs: '3600000' }), '--gone-after-ms')
    })

    test('not an integer', async () => {
      for (const raw of ['12abc', '1.5', '', 'one', '1e3', '0x10', '99999999999999999999']) {
        throwsConfigError(() => configWith({ apiPort: raw }), '--api-port')
      }
      assert.equal(configWith({}, { RHIZOME_API_PORT: ' 7 ' }).apiPort, 7, 'spaces around a number are fine')
      for (const value of [1.5, true, null, [1], { port: 1 }]) {
        await writeConfigFile({ apiPort: value })
        throwsConfigError(() => configWith(), 'apiPort', 'config.json')
      }
    })
  })

  describe('timing fields keep announce < suspect < gone', () => {
    test('suspectAfterMs must be longer than announceIntervalMs', () => {
      assert.equal(configWith({ announceIntervalMs: '1000', suspectAfterMs: '1001' }).suspectAfterMs, 1001)
      throwsConfigError(() => configWith({ announceIntervalMs: '1000', suspectAfterMs: '1000' }), '--suspect-after-ms')
    })
    test('goneAfterMs must be longer than suspectAfterMs', () => {
      assert.equal(configWith({ suspectAfterMs: '6000', goneAfterMs: '6001' }).goneAfterMs, 6001)
      throwsConfigError(() => configWith({ suspectAfterMs: '6000', goneAfterMs: '6000' }), '--gone-after-ms')
    })
  })

  describe('boolean and string fields', () => {
    test('mdns accepts true/false/1/0 and nothing else', async () => {
      for (const [raw, value] of [['true', true], ['1', true], ['false', false], ['0', false]] as const) {
        assert.equal(configWith({}, { RHIZOME_MDNS: raw }).mdns, value, raw)
      }
      assert.equal(configWith({ mdns: false }).mdns, false)
      for (const raw of ['yes', 'no', 'TRUE', '2']) throwsConfigError(() => configWith({}, { RHIZOME_MDNS: raw }), 'RHIZOME_MDNS', 'RHIZOME_MDNS')
      await writeConfigFile({ mdns: 1 })
      throwsConfigError(() => configWith(), 'mdns')
    })

    test('logLevel is one of the log levels', async () => {
      for (const level of LOG_LEVELS) assert.equal(configWith({ logLevel: level }).logLevel, level)
      for (const raw of ['verbose', 'INFO', '']) throwsConfigError(() => configWith({ logLevel: raw }), '--log-level')
      await writeConfigFile({ logLevel: 20 })
      throwsConfigError(() => configWith(), 'logLevel', 'must be a string')
    })

    test('verification: trusted (the default) or open; anything else is refused with a hint', async () => {
      assert.equal(defaultConfig(dir).verification, 'trusted')
      for (const mode of ['trusted', 'open']) assert.equal(configWith({ verification: mode }).verification, mode)
      for (const raw of ['Open', 'public', '', 'trusted ']) throwsConfigError(() => configWith({ verification: raw }), '--verification', 'must be one of trusted, open')
      throwsConfigError(() => configWith({}, { RHIZOME_VERIFICATION: 'closed' }), 'RHIZOME_VERIFICATION')
      await writeConfigFile({ verification: true })
      throwsConfigError(() => configWith(), 'verification', 'must be a string')
      assert.throws(() => configWith({ verification: 'x' }), { hint: /--verification open on a network anyone may join/ })
    })

    test('networkId: 1-64 characters of a-z 0-9 . _ -, starting with a letter or digit', () => {
      for (const id of ['a', '0', 'a'.repeat(64), 'my-net_1.2']) assert.equal(configWith({ networkId: id }).networkId, id)
      for (const id of ['', 'a'.repeat(65), 'Rhizome', '-net', '.net', 'my net', 'net/1']) {
        throwsConfigError(() => configWith({ networkId: id }), '--network-id')
      }
    })

    test('apiHost: loopback only (the API has no authentication)', () => {
      for (const host of ['localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]']) assert.equal(configWith({ apiHost: host }).apiHost, host)
      for (const host of ['', 'a'.repeat(65), 'two words', 'host/path', '8.8.8.8', '0.0.0.0', '10.0.0.1', '::', '[::]', 'example.com', '128.0.0.1']) {
        throwsConfigError(() => configWith({ apiHost: host }), '--api-host')
      }
      throwsConfigError(() => configWith({}, { RHIZOME_API_HOST: '0.0.0.0' }), 'RHIZOME_API_HOST', 'not a loopback address')
    })
  })

  describe('address lists', () => {
    test('env lists are comma-separated; spaces and empty items are dropped', () => {
      const config = configWith({}, { RHIZOME_LISTEN: ` ${tcp(1)}, ${tcp(2)},,${tcp(3)}/ws, `, RHIZOME_BOOTSTRAP: `${withPeer(4)},${withPeer(5)}` })
      assert.deepEqual(config.listen, [tcp(1), tcp(2), `${tcp(3)}/ws`])
      assert.deepEqual(config.bootstrap, [withPeer(4), withPeer(5)])
    })

    test('config.json takes a list, or a comma-separated string', async () => {
      await writeConfigFile({ listen: [tcp(1), tcp(2)], bootstrap: `${withPeer(3)},${withPeer(4)}` })
      const config = configWith()
      assert.deepEqual(config.listen, [tcp(1), tcp(2)])
      assert.deepEqual(config.bootstrap, [withPeer(3), withPeer(4)])
    })

    test('a list that is not strings is refused', async () => {
      await writeConfigFile({ listen: [tcp(1), 4001] })
      throwsConfigError(() => configWith(), 'listen', 'config.json')
      await writeConfigFile({ listen: { addr: tcp(1) } })
      throwsConfigError(() => configWith(), 'listen')
    })

    test(`ADDRS_MAX (${ADDRS_MAX}) entries pass, one more is refused, from every source`, async () => {
      const list = (n: number): string[] => Array.from({ length: n }, (_, i) => tcp(4000 + i))
      assert.equal(configWith({ listen: list(ADDRS_MAX) }).listen.length, ADDRS_MAX)
      throwsConfigError(() => configWith({ listen: list(ADDRS_MAX + 1) }), '--listen', `at most ${ADDRS_MAX}`)
      assert.equal(configWith({}, { RHIZOME_LISTEN: list(ADDRS_MAX).join(',') }).listen.length, ADDRS_MAX)
      throwsConfigError(() => configWith({}, { RHIZOME_LISTEN: list(ADDRS_MAX + 1).join(',') }), 'RHIZOME_LISTEN', 'RHIZOME_LISTEN')
      const peers = (n: number): string[] => Array.from({ length: n }, (_, i) => withPeer(4000 + i))
      assert.equal(configWith({ bootstrap: peers(ADDRS_MAX) }).bootstrap.length, ADDRS_MAX)
      throwsConfigError(() => configWith({ bootstrap: peers(ADDRS_MAX + 1) }), '--bootstrap')
      await writeConfigFile({ bootstrap: peers(ADDRS_MAX + 1) })
      throwsConfigError(() => configWith(), 'bootstrap', 'config.json')
    })

    test('an address of 256 characters passes, 257 is refused', () => {
      const addr = (chars: number): string => `/dns4/${'a'.repeat(chars - '/dns4//tcp/1'.length)}/tcp/1`
      assert.equal(addr(256).length, 256)
      assert.deepEqual(configWith({ listen: [addr(256)] }).listen, [addr(256)])
      throwsConfigError(() => configWith({ listen: [addr(257)] }), '--listen', 'longer than 256')
    })

    test('a bootstrap address without /p2p/<peer id> is refused', () => {
      assert.deepEqual(configWith({ bootstrap: [withPeer(4001)] }).bootstrap, [withPeer(4001)])
      throwsConfigError(() => configWith({ bootstrap: [tcp(4001)] }), '--bootstrap', '/p2p/')
      throwsConfigError(() => configWith({}, { RHIZOME_BOOTSTRAP: `${withPeer(4001)},${tcp(4002)}` }), 'RHIZOME_BOOTSTRAP', 'RHIZOME_BOOTSTRAP')
    })

    test('a string that is not a multiaddr is refused', () => {
      for (const addr of ['127.0.0.1:4001', '/ip4/999.0.0.1/tcp/1', '/ip4/127.0.0.1/tcp/99999', '/ip4/127.0.0.1/tcp/not-a-port', '/nonsense/1']) {
        throwsConfigError(() => configWith({ listen: [addr] }), '--listen', 'not a valid multiaddr')
      }
    })

    // Regression: the multiaddr parser takes any text after /p2p/, and `node start` used to crash
    // inside libp2p's bootstrap module with a stack trace instead of exiting 2 with a ConfigError.
    test('a bootstrap address whose /p2p/ part is not a peer id is refused', () => {
      throwsConfigError(() => configWith({ bootstrap: [`${tcp(4001)}/p2p/not-a-peer-id`] }), '--bootstrap')
    })
  })

  describe('config.json', () => {
    test(`a file of exactly CONFIG_FILE_BYTES_MAX (${CONFIG_FILE_BYTES_MAX}) bytes is read; one byte more is refused`, async () => {
      const json = JSON.stringify({ apiPort: 4242 })
      await writeConfigFile(json + ' '.repeat(CONFIG_FILE_BYTES_MAX - json.length))
      assert.equal(configWith().apiPort, 4242)
      await writeConfigFile(json + ' '.repeat(CONFIG_FILE_BYTES_MAX - json.length + 1))
      throwsConfigError(() => configWith(), 'config.json', String(CONFIG_FILE_BYTES_MAX))
    })

    test('an unknown field is refused, naming it', async () => {
      await writeConfigFile({ apiPort: 1, apiport: 2 })
      throwsConfigError(() => configWith(), 'apiport', 'unknown field')
      await writeConfigFile({ dataDir: dir })
      throwsConfigError(() => configWith(), 'dataDir', 'unknown field')
    })

    test('a file that is not a JSON object is refused', async () => {
      for (const content of ['{"apiPort": 1', '[]', 'null', '42', '"text"', '']) {
        await writeConfigFile(content)
        throwsConfigError(() => configWith(), 'config.json')
      }
    })

    test('a flag still overrides a value the file gets wrong', async () => {
      await writeConfigFile({ apiPort: 'not a port' })
      assert.equal(configWith({ apiPort: '5' }).apiPort, 5)
    })
  })

  describe('names and sources', () => {
    test('RHIZOME_SLOTS (matching --slots) sets slotsMax; RHIZOME_SLOTS_MAX is read as an alias, after it', () => {
      assert.equal(configWith({}, { RHIZOME_SLOTS: '7' }).slotsMax, 7)
      assert.equal(configWith({}, { RHIZOME_SLOTS_MAX: '6' }).slotsMax, 6)
      assert.equal(configWith({}, { RHIZOME_SLOTS: '7', RHIZOME_SLOTS_MAX: '6' }).slotsMax, 7)
      throwsConfigError(() => configWith({}, { RHIZOME_SLOTS: '0' }), 'RHIZOME_SLOTS', 'between 1 and 1024')
      throwsConfigError(() => configWith({}, { RHIZOME_SLOTS_MAX: 'x' }), 'RHIZOME_SLOTS_MAX')
      assert.ok(KNOWN_ENV.includes('RHIZOME_SLOTS') && KNOWN_ENV.includes('RHIZOME_SLOTS_MAX'))
    })

    test('an unknown RHIZOME_* variable is warned about, naming it and the known ones; others are not', () => {
      const warnings: string[] = []
      resolveConfig({ flags: { dataDir: dir }, env: { RHIZOME_SLOT: '4', RHIZOME_API_PORT: '0', HOME: '/x', RHIZOMEX: '1', RHIZOME_FRAME_ARRIVAL_MS: '5000' }, onWarning: w => warnings.push(w) })
      assert.equal(warnings.length, 1)
      assert.match(warnings[0], /^RHIZOME_SLOT is not a Rhizome setting and is ignored; known variables: .*RHIZOME_SLOTS\b/)
    })

    test('a message names the value where the user wrote it: flag, variable, or file key with the file', async () => {
      assert.throws(() => configWith({ apiPort: '70000' }), { message: /^--api-port: must be between 0 and 65535, got 70000/ })
      assert.throws(() => configWith({}, { RHIZOME_API_PORT: '70000' }), { message: /^RHIZOME_API_PORT: must be between/ })
      assert.throws(() => configWith({ announceIntervalMs: '5000' }, { RHIZOME_SUSPECT_AFTER_MS: '4000' }), { message: /^RHIZOME_SUSPECT_AFTER_MS: must be longer than --announce-interval-ms \(5000\)/ })
      await writeConfigFile({ apiPort: 70000 })
      assert.throws(() => configWith(), (err: Error) => err.message.startsWith('apiPort: must be between') && err.message.includes(join(dir, 'config.json')))
    })

    test('every error has a hint', async () => {
      for (const fn of [() => configWith({ apiPort: 'x' }), () => configWith({}, { RHIZOME_MDNS: 'maybe' }), () => configWith({ apiHost: '8.8.8.8' }), () => configWith({ suspectAfterMs: '6000', goneAfterMs: '6000' })]) {
        assert.throws(fn, (err: unknown) => err instanceof ConfigError && typeof err.hint === 'string' && err.hint.length > 0)
      }
      await writeConfigFile('{')
      assert.throws(() => configWith(), (err: unknown) => err instanceof ConfigError && err.hint !== undefined)
    })
  })

  describe('config.json that is not a regular file', () => {
    test('a FIFO is refused at once instead of blocking the start', () => {
      execFileSync('mkfifo', [join(dir, 'config.json')])
      throwsConfigError(() => configWith(), 'config.json', 'named pipe')
    })

    test('a directory is refused', async () => {
      await mkdir(join(dir, 'config.json'))
      throwsConfigError(() => configWith(), 'config.json', 'directory')
    })

    test('"__proto__" and "toString" are unknown fields, not lookups on Object.prototype', async () => {
      await writeConfigFile('{"__proto__": {"apiPort": 1}}')
      throwsConfigError(() => configWith(), '__proto__', 'unknown field')
      await writeConfigFile('{"toString": 1}')
      throwsConfigError(() => configWith(), 'toString', 'unknown field')
    })

    test('a data dir that is a regular file is refused, naming the flag', async () => {
      const file = join(dir, 'plain')
      await writeFile(file, 'x')
      throwsConfigError(() => resolveConfig({ flags: { dataDir: file }, env: {} }), '--data-dir', 'not a directory')
      throwsConfigError(() => resolveConfig({ flags: {}, env: { RHIZOME_DATA_DIR: file } }), 'RHIZOME_DATA_DIR', 'not a directory')
    })
  })

  describe('resolveDataDir', () => {
    test('a path of 1024 characters passes, 1025 and the empty path are refused', () => {
      const path = (chars: number): string => '/' + 'd'.repeat(chars - 1)
      assert.equal(resolveDataDir(path(1024), {}), path(1024))
      throwsConfigError(() => resolveDataDir(path(1025), {}), '--data-dir')
      throwsConfigError(() => resolveDataDir('', {}), '--data-dir')
      throwsConfigError(() => resolveDataDir(undefined, { RHIZOME_DATA_DIR: path(1025) }), 'RHIZOME_DATA_DIR')
    })
  })
})

describe('--certificate: a permissioned peer', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'rhizome-config-cert-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  test('takes the network id from its certificate; a --network-id that agrees is fine, one that differs is a ConfigError', async () => {
    const { certify, createAdmin, writeCertificate } = await import('../helpers/certificates.ts')
    const admin = await createAdmin()
    const path = await writeCertificate(dir, 'peer.cert', await certify(admin, peerId, ['worker']))
    assert.equal(resolveConfig({ flags: { dataDir: dir, certificate: path }, env: {} }).networkId, admin.networkId)
    assert.equal(resolveConfig({ flags: { dataDir: dir, certificate: path, networkId: admin.networkId }, env: {} }).networkId, admin.networkId)
    assert.equal(resolveConfig({ flags: { dataDir: dir }, env: { RHIZOME_CERTIFICATE: path } }).networkId, admin.networkId)
    throwsConfigError(() => resolveConfig({ flags: { dataDir: dir, certificate: path, networkId: 'other' }, env: {} }), '--network-id', admin.networkId)
    throwsConfigError(() => resolveConfig({ flags: { dataDir: dir, certificate: path }, env: { RHIZOME_NETWORK_ID: 'other' } }), 'RHIZOME_NETWORK_ID')
    assert.equal(defaultConfig(dir).certificate, '', 'without one the peer is open, as before')
  })

  test('an unreadable or malformed certificate is a CertificateError naming the file, with a hint', async () => {
    const missing = join(dir, 'missing.cert')
    const junk = join(dir, 'junk.cert')
    await writeFile(junk, 'not a certificate')
    for (const path of [missing, junk]) {
      assert.throws(() => resolveConfig({ flags: { dataDir: dir, certificate: path }, env: {} }), (err: Error & { code?: string, hint?: string }) => {
        assert.equal(err.code, 'ERR_CERTIFICATE')
        assert.ok(err.message.includes(path))
        assert.match(err.hint ?? '', /rhizome network admit/)
        return true
      })
    }
  })
})
