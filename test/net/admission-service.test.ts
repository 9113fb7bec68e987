// The remote address admission counts connections by: the IP, without port or transport.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { AdmissionService, remoteAddressOf } from '../../src/net/admission-service.ts'
import { createLogger } from '../../src/node/logger.ts'
import { createAdmission } from '../../src/protocol/admission/index.ts'
import type { AdmissionServiceComponents } from '../../src/net/admission-service.ts'

describe('remoteAddressOf', () => {
  it('takes the IP of TCP and WebSocket addresses, and knows loopback', () => {
    assert.deepEqual(remoteAddressOf(multiaddr('/ip4/198.51.100.7/tcp/4001')), { address: '198.51.100.7', loopback: false })
    assert.deepEqual(remoteAddressOf(multiaddr('/ip4/198.51.100.7/tcp/4002/ws')), { address: '198.51.100.7', loopback: false })
    assert.deepEqual(remoteAddressOf(multiaddr('/ip4/127.0.0.1/tcp/4001')), { address: '127.0.0.1', loopback: true })
    assert.deepEqual(remoteAddressOf(multiaddr('/ip4/127.8.9.10/tcp/4001')), { address: '127.8.9.10', loopback: true })
    assert.deepEqual(remoteAddressOf(multiaddr('/ip6/::1/tcp/4001')), { address: '::1', loopback: true })
    assert.deepEqual(remoteAddressOf(multiaddr('/ip6/2001:db8::1/tcp/4001')), { address: '2001:db8::1', loopback: false })
  })

  it('has no address for a transport without an IP', () => {
    assert.deepEqual(remoteAddressOf(multiaddr('/dns4/example.com/tcp/4001')), { address: undefined, loopback: false })
  })
})

describe('AdmissionService with stub components', () => {
  interface StubConnection { id: string, remotePeer: { toString: () => string }, remoteAddr: ReturnType<typeof multiaddr>, status: string, streams: unknown[], aborted: number, closeSignal?: AbortSignal, abort: (err: Error) => void, close: (options: { signal: AbortSignal }) => Promise<void> }

  function connection (id: string, peer: string, addr: string): StubConnection {
    const c: StubConnection = {
      id,
      remotePeer: { toString: () => peer },
      remoteAddr: multiaddr(addr),
      status: 'open',
      streams: [],
      aborted: 0,
      abort: () => { c.aborted++; c.status = 'closed' },
      // A graceful close that never finishes on its own: only its signal ends it.
      close: async ({ signal }) => {
        c.closeSignal = signal
        await new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))
      }
    }
    return c
  }

  function setup (connections: StubConnection[], proven: boolean) {
    let nowMs = 1_000_000
    const host = Object.assign(new EventTarget(), { getConnections: () => connections.filter(c => c.status === 'open') })
    const service = new AdmissionService({
      host: host as unknown as AdmissionServiceComponents['host'],
      admission: createAdmission({ idleMs: 1000, connectionsPerAddressMax: 1, limitLoopback: true }),
      log: createLogger('test', { level: 'silent' }),
      now: () => nowMs,
      isAlive: () => proven,
      scoreOf: () => 0
    })
    return { host, service, advance: (ms: number) => { nowMs += ms } }
  }

  it('a connection past connectionsPerAddressMax from one address is aborted at once', async () => {
    const first = connection('c1', 'peer-1', '/ip4/127.0.0.1/tcp/1')
    const second = connection('c2', 'peer-2', '/ip4/127.0.0.1/tcp/2')
    const open = [first]
    const { host, service } = setup(open, true)
    await service.start()
    try {
      open.push(second)
      host.dispatchEvent(new CustomEvent('connection:open', { detail: second }))
      assert.equal(first.aborted + second.aborted, 1)
    } finally {
      await service.stop()
    }
  })

  it('an idle connection is closed gracefully, and stop() cuts the close short', async () => {
    const idle = connection('c1', 'peer-1', '/ip4/127.0.0.1/tcp/1')
    const { service, advance } = setup([idle], true)
    await service.start()
    advance(2000)
    const deadline = Date.now() + 5000
    while (idle.closeSignal === undefined && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
    assert.ok(idle.closeSignal !== undefined, 'the sweep closed the idle connection')
    assert.equal(idle.closeSignal.aborted, false)
    await service.stop()
    assert.equal(idle.closeSignal.aborted, true)
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(idle.aborted, 1, 'a close cut short ends in abort')
  })
})
