/**
 * Connection exhaustion: identities are free, so anyone can open connections from fresh peer ids
 * and hold them idle until a peer's connection limit is reached. A real Rhizome peer (a child
 * process, started with a low `--connections-max` so the flood stays small) is flooded with idle
 * libp2p connections from fresh identities made in this process; an honest peer must still
 * join — connect, swap hellos, and show as alive in `rhizome peers` — and the flood connections
 * must be pruned.
 *
 * Each flood identity is a minimal libp2p host (TCP, Noise, Yamux; no services, no listener): it
 * completes the handshake and then does nothing, which is exactly what a slot-holding attacker
 * does. libp2p refuses more than 5 inbound connections per second from one address
 * (inboundConnectionThreshold), so a refused dial is retried; all dials are bounded in time.
 */
import assert from 'node:assert/strict'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { after, describe, test } from 'node:test'
import { ADMISSION_OPTIONS_DEFAULTS } from '../../src/protocol/admission/index.ts'
import { TestNetwork, runCli, waitFor } from '../helpers/peers.ts'
import type { Libp2p } from '@libp2p/interface'
import type { TestPeer } from '../helpers/peers.ts'

/** The target's connection limit: low, so a flood past it takes seconds, not minutes. */
const CONNECTIONS_MAX = 20
/** Untrusted connections may use the unreserved part of the table. */
const UNTRUSTED_MAX = CONNECTIONS_MAX - Math.floor(CONNECTIONS_MAX * ADMISSION_OPTIONS_DEFAULTS.reservedShare)

interface Flood {
  hosts: Libp2p[]
  opened: number
  closed: number
  /** Flood connections open right now. */
  open: () => number
  stop: () => Promise<void>
}

/** `count` fresh identities, each holding one idle connection to `target` (if it is let in). */
async function flood (target: TestPeer, count: number): Promise<Flood> {
  const result: Flood = {
    hosts: [],
    opened: 0,
    closed: 0,
    open: () => result.hosts.reduce((n, h) => n + h.getConnections().length, 0),
    stop: async () => { await Promise.all(result.hosts.map(async h => await Promise.resolve(h.stop()).catch(() => {}))) }
  }
  const addr = multiaddr(target.tcpAddr)
  const deadline = Date.now() + 25_000
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count && Date.now() < deadline) {
      next++
      const host = await createLibp2p({
        privateKey: await generateKeyPair('Ed25519'),
        transports: [tcp()],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()]
      })
      result.hosts.push(host)
      host.addEventListener('connection:open', () => { result.opened++ })
      host.addEventListener('connection:close', () => { result.closed++ })
      // Refused dials (the per-address rate limit, or a full table) are retried until the deadline.
      while (Date.now() < deadline) {
        try {
          await host.dial(addr, { signal: AbortSignal.timeout(5000) })
          break
        } catch {
          await new Promise(resolve => setTimeout(resolve, 250))
        }
      }
    }
  }
  await Promise.all([worker(), worker(), worker()])
  return result
}

async function joinsAndIsAlive (target: TestPeer, honest: TestPeer): Promise<void> {
  await waitFor('the honest peer to be alive in the target\'s view', async () =>
    (await target.peers()).some(p => p.peerId === honest.peerId && p.state === 'alive'), 20_000)
  await waitFor('the target to be alive in the honest peer\'s view', async () =>
    (await honest.peers()).some(p => p.peerId === target.peerId && p.state === 'alive'), 20_000)
  const listed = await runCli(['peers', '--json', '--data-dir', target.dataDir])
  assert.equal(listed.code, 0, listed.stderr)
  const entry = (JSON.parse(listed.stdout) as Array<{ peerId: string, state: string, connected: boolean }>).find(p => p.peerId === honest.peerId)
  assert.equal(entry?.state, 'alive', '`rhizome peers` shows the honest peer alive')
  assert.equal(entry?.connected, true, '`rhizome peers` shows the honest peer connected')
}

describe('a flood of idle connections from fresh identities does not lock honest peers out', { timeout: 120_000 }, () => {
  const cleanups: Array<() => Promise<void>> = []
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {})
  })

  test('more idle connections than the limit: an honest peer still joins, and the flood is pruned', async () => {
    const net = await TestNetwork.create()
    cleanups.push(async () => { await net.close() })
    const target = await net.addPeer(['--connections-max', String(CONNECTIONS_MAX)])
    const attack = await flood(target, CONNECTIONS_MAX + 10)
    cleanups.push(attack.stop)
    assert.ok(attack.opened >= CONNECTIONS_MAX, `the flood opened ${attack.opened} connections, at least the limit of ${CONNECTIONS_MAX}`)

    // Let the per-address rate limit (5 connections a second) forget the flood before the honest dial.
    await new Promise(resolve => setTimeout(resolve, 1500))
    const honest = await net.addPeer(['--bootstrap', target.tcpAddr])
    await joinsAndIsAlive(target, honest)
    await waitFor(`at most ${UNTRUSTED_MAX} (the untrusted share) flood connections to stay open`, () => attack.open() <= UNTRUSTED_MAX, 5000, 50)

    // The rest never send a hello: each is closed at its hello deadline.
    await waitFor('every flood connection to be closed', () => attack.open() === 0, ADMISSION_OPTIONS_DEFAULTS.helloDeadlineMs + 15_000, 250)
    assert.equal(attack.closed, attack.opened, 'every flood connection that opened was closed by the target')
    const view = await target.peers()
    assert.equal(view.find(p => p.peerId === honest.peerId)?.state, 'alive', 'the honest peer is still alive after the pruning')
    const status = await target.api<{ connections: number }>('/v1/status')
    assert.ok(status.connections >= 1 && status.connections <= 2, `the target keeps only the honest peer's connections (${status.connections})`)
  })

  test('the per-address limit (applied to loopback by option) keeps one address from filling the table', async () => {
    const perAddressMax = 4
    const net = await TestNetwork.create()
    cleanups.push(async () => { await net.close() })
    const target = await net.addPeer([
      '--connections-max', String(CONNECTIONS_MAX), '--connections-per-address-max', String(perAddressMax), '--connections-limit-loopback'
    ])
    const attack = await flood(target, 3 * perAddressMax)
    cleanups.push(attack.stop)
    assert.ok(attack.opened >= 2 * perAddressMax, `the flood opened ${attack.opened} connections`)
    // The last close may still be on its way to this side.
    await waitFor(`at most ${perAddressMax} flood connections from 127.0.0.1 to stay open`, () => attack.open() <= perAddressMax, 5000, 50)
    assert.ok(attack.closed >= attack.opened - perAddressMax, `${attack.closed} of ${attack.opened} flood connections were closed`)

    await new Promise(resolve => setTimeout(resolve, 1500))
    const honest = await net.addPeer(['--bootstrap', target.tcpAddr])
    await joinsAndIsAlive(target, honest)
    assert.ok(attack.open() < perAddressMax, 'the honest peer took the place of a flood connection from the same address')
  })
})
