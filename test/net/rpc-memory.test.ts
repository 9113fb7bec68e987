/**
 * RpcService over in-memory stream pairs (test/helpers/memory-net.ts): no sockets, no libp2p
 * node, only the three functions the service asks for. The limits and the lifecycle.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { MemoryNet, deferred, waitFor } from '../helpers/memory-net.ts'
import type { Violation } from '../helpers/memory-net.ts'

const slow = (held: Array<() => void>, inflightMax: number) => ({
  protocol: '/rhizome/memory/slow/1.0.0',
  frameBytesMax: 1024,
  inflightMax,
  handler: async (body: unknown) => await new Promise(resolve => held.push(() => resolve(body)))
})

describe('RpcService over in-memory streams', () => {
  test('one request past inflightMax on a stream is answered at once with a retryable PeerBusyError', async () => {
    const net = new MemoryNet()
    const [a, b] = [await net.peer(), await net.peer()]
    const held: Array<() => void> = []
    const spec = slow(held, 2)
    const rpcA = net.rpc(a)
    const rpcB = net.rpc(b)
    await rpcA.handle(spec)
    await rpcB.handle(spec)
    try {
      const first = rpcA.request(b.peerId, spec.protocol, 1)
      const second = rpcA.request(b.peerId, spec.protocol, 2)
      await waitFor('both requests to be running', () => held.length === spec.inflightMax)
      await assert.rejects(rpcA.request(b.peerId, spec.protocol, 3), (err: Error & { retryable?: boolean }) => {
        assert.equal(err.name, 'PeerBusyError')
        assert.equal(err.retryable, true)
        return true
      })
      assert.equal(held.length, spec.inflightMax, 'the refused request never reached the handler')
      assert.equal(a.dialed.length, 1, 'all three shared one stream')
      for (const release of held) release()
      assert.deepEqual([await first, await second], [1, 2])
    } finally {
      await rpcA.stop()
      await rpcB.stop()
    }
  })

  test('stop() aborts a request in flight with AbortedError, and refuses new ones', async () => {
    const net = new MemoryNet()
    const [a, b] = [await net.peer(), await net.peer()]
    const held: Array<() => void> = []
    const spec = slow(held, 4)
    const rpcA = net.rpc(a)
    const rpcB = net.rpc(b)
    await rpcA.handle(spec)
    await rpcB.handle(spec)
    try {
      const pending = rpcA.request(b.peerId, spec.protocol, 'late', { timeoutMs: 60_000 })
      await waitFor('the request to be running', () => held.length === 1)
      await rpcA.stop()
      await assert.rejects(pending, { name: 'AbortedError' })
      await assert.rejects(rpcA.request(b.peerId, spec.protocol, 'after'), { name: 'AbortedError' })
    } finally {
      for (const release of held) release()
      await rpcB.stop()
    }
  })

  test('stop() aborts the handlers it is running: their signal fires', async () => {
    const net = new MemoryNet()
    const [a, b] = [await net.peer(), await net.peer()]
    const aborted = deferred()
    const started = deferred()
    const rpcA = net.rpc(a)
    const rpcB = net.rpc(b)
    const spec = {
      protocol: '/rhizome/memory/wait/1.0.0',
      frameBytesMax: 1024,
      inflightMax: 1,
      handler: async (_body: unknown, { signal }: { signal: AbortSignal }) => await new Promise((_resolve, reject) => {
        signal.addEventListener('abort', () => { aborted.resolve(); reject(new Error('aborted')) }, { once: true })
        started.resolve()
      })
    }
    await rpcA.handle(spec)
    await rpcB.handle(spec)
    const pending = rpcA.request(b.peerId, spec.protocol, null, { timeoutMs: 60_000 }).catch((err: Error) => err)
    await started.promise
    await rpcB.stop()
    await aborted.promise
    await rpcA.stop()
    assert.equal((await pending as Error).name, 'AbortedError')
  })

  test('stop() aborts a dial still opening the shared stream', async () => {
    const net = new MemoryNet()
    const [a, b] = [await net.peer(), await net.peer()]
    a.stallDials = true
    const rpcA = net.rpc(a)
    const spec = slow([], 1)
    await rpcA.handle(spec)
    const pending = rpcA.request(b.peerId, spec.protocol, 1, { timeoutMs: 60_000 })
    await new Promise(resolve => setTimeout(resolve, 10))
    await rpcA.stop()
    await assert.rejects(pending, { name: 'AbortedError' })
  })

  test('a request past its timeout fails with TimeoutError and sends a cancel to the server', async () => {
    const net = new MemoryNet()
    const [a, b] = [await net.peer(), await net.peer()]
    const cancelled = deferred()
    const rpcA = net.rpc(a)
    const rpcB = net.rpc(b)
    const spec = {
      protocol: '/rhizome/memory/cancel/1.0.0',
      frameBytesMax: 1024,
      inflightMax: 1,
      handler: async (_body: unknown, { signal }: { signal: AbortSignal }) => await new Promise((_resolve, reject) => {
        signal.addEventListener('abort', () => { cancelled.resolve(); reject(new Error('cancelled')) }, { once: true })
      })
    }
    await rpcA.handle(spec)
    await rpcB.handle(spec)
    try {
      await assert.rejects(rpcA.request(b.peerId, spec.protocol, null, { timeoutMs: 50 }), { name: 'TimeoutError' })
      await cancelled.promise
    } finally {
      await rpcA.stop()
      await rpcB.stop()
    }
  })

  test('a frame that breaks the envelope is a violation reported with the caller\'s id', async () => {
    const net = new MemoryNet()
    const [a, b] = [await net.peer(), await net.peer()]
    const violations: Violation[] = []
    const rpcB = net.rpc(b, violations)
    const spec = slow([], 1)
    await rpcB.handle(spec)
    try {
      const stream = await a.libp2p.dialProtocol(b.peerId, spec.protocol)
      stream.send(Uint8Array.from([3, 0xff, 0xff, 0xff]))
      await waitFor('the violation', () => violations.length === 1)
      assert.equal(violations[0].peer, a.peerId.toString())
      assert.equal(violations[0].protocol, spec.protocol)
    } finally {
      await rpcB.stop()
    }
  })
})
