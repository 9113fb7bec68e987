/** The command line refuses bad input with exit code 2 and says what is wrong. */
import assert from 'node:assert/strict'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { TestNetwork, runCli } from '../helpers/peers.ts'

describe('rhizome CLI', { timeout: 120_000 }, () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'rhizome-cli-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  test('no arguments prints help and exits 2', async () => {
    const r = await runCli([])
    assert.equal(r.code, 2)
    assert.match(r.stdout, /Usage: rhizome <command>/)
    assert.match(r.stdout, /node start/)
  })

  test('an unknown command prints help and exits 2', async () => {
    const r = await runCli(['frobnicate'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /unknown command: frobnicate/)
    assert.match(r.stderr, /Commands:/)
  })

  test('an unknown flag prints the usage and exits 2', async () => {
    const r = await runCli(['status', '--bogus'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /Unknown option '--bogus'/)
    assert.match(r.stderr, /Usage: rhizome status/)
  })

  test('a stray argument exits 2', async () => {
    const r = await runCli(['peers', 'extra'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /unexpected argument "extra"/)
  })

  const badValues: Array<[string, string[], RegExp]> = [
    ['port out of range', ['--api-port', '70000'], /--api-port: must be between 0 and 65535, got 70000/],
    ['port not a number', ['--api-port', 'eighty'], /--api-port: must be an integer/],
    ['bad multiaddr', ['--listen', 'not-an-addr'], /--listen: "not-an-addr" is not a valid multiaddr/],
    ['bootstrap without peer id', ['--bootstrap', '/ip4/127.0.0.1/tcp/4001'], /--bootstrap: .* has no \/p2p\/<peer id> part/],
    ['bad log level', ['--log-level', 'loud'], /--log-level: must be one of debug, info, warn, error, silent/],
    ['bad network id', ['--network-id', 'Has Spaces'], /--network-id: must be 1-64 characters/],
    ['zero slots', ['--slots', '0'], /--slots: must be between 1 and 1024, got 0/],
    ['suspect not after announce', ['--announce-interval-ms', '5000', '--suspect-after-ms', '4000'], /--suspect-after-ms: must be longer than --announce-interval-ms/]
  ]
  for (const [name, flags, message] of badValues) {
    test(`node start with a bad value (${name}) exits 2 naming the field`, async () => {
      const r = await runCli(['node', 'start', '--data-dir', join(dir, 'bad'), '--no-mdns', ...flags])
      assert.equal(r.code, 2, r.stderr)
      assert.match(r.stderr, message)
    })
  }

  test('a bad value in the environment names the variable', async () => {
    const r = await runCli(['node', 'start', '--data-dir', join(dir, 'env')], { env: { RHIZOME_API_PORT: '-1' } })
    assert.equal(r.code, 2)
    assert.match(r.stderr, /RHIZOME_API_PORT: must be between 0 and 65535, got -1/)
  })

  test('config.json: a bad value, an unknown field and broken JSON each exit 2', async () => {
    const cases: Array<[string, RegExp]> = [
      ['{"mdns": "maybe"}', /mdns: must be true or false, got "maybe" \(in .*config\.json\)/],
      ['{"colour": "blue"}', /colour: unknown field in .*config.json/],
      ['{not json', /config.json: .* is not valid JSON/]
    ]
    for (const [i, [text, message]] of cases.entries()) {
      const dataDir = join(dir, `file-${i}`)
      await rm(dataDir, { recursive: true, force: true })
      await import('node:fs/promises').then(async fs => await fs.mkdir(dataDir, { recursive: true }))
      await writeFile(join(dataDir, 'config.json'), text)
      const r = await runCli(['node', 'start', '--data-dir', dataDir])
      assert.equal(r.code, 2, r.stderr)
      assert.match(r.stderr, message)
    }
  })

  test('devnet refuses one peer past its limit; call refuses one argument past its limit', async () => {
    const devnet = await runCli(['devnet', '--peers', '17', '--dir', join(dir, 'devnet')])
    assert.equal(devnet.code, 2)
    assert.match(devnet.stderr, /--peers must be an integer from 1 to 16/)
    const args = Array.from({ length: 65 }, (_, i) => String(i))
    const call = await runCli(['call', 'fn', 'export', ...args, '--data-dir', join(dir, 'nobody')])
    assert.equal(call.code, 2)
    assert.match(call.stderr, /expected 2 to 66 argument\(s\), got 67/)
    const fits = await runCli(['call', 'fn', 'export', ...args.slice(1), '--data-dir', join(dir, 'nobody')])
    assert.equal(fits.code, 1, 'with 66 arguments the command line is accepted and only the missing peer fails')
    assert.match(fits.stderr, /no Rhizome peer is running/)
  })

  test('a command with no peer to talk to fails with a hint', async () => {
    const r = await runCli(['peers', '--data-dir', join(dir, 'nobody')])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /no Rhizome peer is running from/)
    assert.match(r.stderr, /hint:/)
  })

  test('identity: created 0600 on first start, the same peer id after a restart; a second peer on the same dir is refused', async () => {
    const net = await TestNetwork.create()
    try {
      const peer = await net.addPeer()
      const mode = (await stat(join(peer.dataDir, 'identity.key'))).mode & 0o777
      assert.equal(mode, 0o600)
      assert.match(peer.stdout, new RegExp(`Rhizome peer ${peer.peerId}`))
      assert.match(peer.stdout, /\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3Koo/)
      const second = await runCli(['node', 'start', '--data-dir', peer.dataDir, ...net.peerArgs()])
      assert.equal(second.code, 1)
      assert.match(second.stderr, /another Rhizome peer \(pid \d+\) is running from/)
      const id = peer.peerId
      assert.equal(await peer.stop('SIGTERM'), 0)
      await peer.start()
      assert.equal(peer.peerId, id)
      const status = await runCli(['status', '--json', '--data-dir', peer.dataDir])
      assert.equal(status.code, 0, status.stderr)
      assert.equal((JSON.parse(status.stdout) as { peerId: string }).peerId, id)
    } finally {
      await net.close()
    }
  })
})
