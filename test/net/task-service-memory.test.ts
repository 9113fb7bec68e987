/**
 * TaskService with stub components: a stub sandbox and a stub `loadFunction`, blobs in a Map, the
 * RPC layer over in-memory stream pairs. Caller and worker checks, the queue limit, deadlines, and
 * stop() aborting tasks in flight on both sides.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { TaskService } from '../../src/net/task-service.ts'
import { createLogger } from '../../src/node/logger.ts'
import { MemoryNet, deferred, waitFor } from '../helpers/memory-net.ts'
import type { LoadedFunction } from '../../src/net/function-service.ts'
import type { Capacity } from '../../src/net/slots.ts'
import type { TaskServiceComponents, TaskServiceInit } from '../../src/net/task-service.ts'
import type { MemoryPeer, Violation } from '../helpers/memory-net.ts'
import type { SandboxCall } from '../../src/sandbox/index.ts'
import type { FunctionManifest } from '../../src/functions/manifest.ts'

const log = createLogger('test', { level: 'silent' })

function memoryBlobs (): TaskServiceComponents['blobs'] & { map: Map<string, Uint8Array> } {
  const map = new Map<string, Uint8Array>()
  const put = async (bytes: Uint8Array, codec = 0x55): Promise<CID> => {
    const cid = CID.create(1, codec, await sha256.digest(bytes))
    map.set(cid.toString(), bytes)
    return cid
  }
  return {
    map,
    put,
    // In memory, a cached put is a put.
    putCached: put,
    async has (cid: CID | string) { return map.has(cid.toString()) },
    async get (cid: CID | string) {
      const bytes = map.get(cid.toString())
      if (bytes === undefined) throw new Error('not found')
      return bytes
    }
  }
}

const fn = CID.parse('bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
const loaded: LoadedFunction = {
  cid: fn,
  manifest: { name: 'stub', kind: 'js', exports: ['add', 'wait'], limits: {} } as unknown as FunctionManifest,
  code: new TextEncoder().encode('stub'),
  fetched: false
}

/** A sandbox that adds its two arguments, or, for `wait`, runs until its signal aborts. */
function stubSandbox (): TaskServiceComponents['sandbox'] & { runs: SandboxCall[], aborted: number, started: ReturnType<typeof deferred<void>> } {
  const sandbox = {
    runs: [] as SandboxCall[],
    aborted: 0,
    started: deferred(),
    async run (call: SandboxCall, options: { signal?: AbortSignal } = {}) {
      sandbox.runs.push(call)
      sandbox.started.resolve()
      if (call.exportName === 'wait') {
        await new Promise((_resolve, reject) => {
          options.signal?.addEventListener('abort', () => { sandbox.aborted++; reject(options.signal?.reason) }, { once: true })
        })
      }
      const value = (call.args[0] as number) + (call.args[1] as number)
      return { value, bytes: dagCbor.encode(value), runMs: 0, warm: false }
    }
  }
  return sandbox
}

interface Side { peer: MemoryPeer, tasks: TaskService, sandbox: ReturnType<typeof stubSandbox>, violations: Violation[], capacity: Capacity[], stop: () => Promise<void> }

async function side (net: MemoryNet, init: Partial<TaskServiceInit> = {}, overrides: Partial<TaskServiceComponents> = {}): Promise<Side> {
  const peer = await net.peer()
  const rpc = net.rpc(peer)
  const sandbox = stubSandbox()
  const violations: Violation[] = []
  const capacity: Capacity[] = []
  const tasks = new TaskService({
    rpc,
    sandbox,
    loadFunction: async () => loaded,
    blobs: memoryBlobs(),
    fetchBlob: async () => { throw new Error('no fetch in this test') },
    sign: async (bytes) => await peer.privateKey.sign(bytes),
    selfId: peer.peerId,
    dial: async () => {},
    onCapacity: (c) => { capacity.push(c) },
    onViolation: (remote, protocol, error) => { violations.push({ peer: remote.toString(), protocol, error }) },
    log,
    ...overrides
  }, { networkId: 'memory', slotsMax: 1, queueLengthMax: 1, ...init })
  await tasks.start()
  return { peer, tasks, sandbox, violations, capacity, stop: async () => { await tasks.stop(); await rpc.stop() } }
}

describe('TaskService with stub components', () => {
  test('a call runs on the worker, and the caller verifies the attestation and decodes the result', async () => {
    const net = new MemoryNet()
    const caller = await side(net)
    const worker = await side(net)
    try {
      const result = await caller.tasks.call(fn, 'add', [2, 3], worker.peer.peerId)
      assert.equal(result.value, 5)
      assert.equal(result.peer, worker.peer.peerId.toString())
      assert.equal(worker.sandbox.runs.length, 1)
      assert.equal(caller.sandbox.runs.length, 0)
      assert.deepEqual(worker.capacity.at(-1), { slotsFree: 1, slotsMax: 1, queueLength: 0 })
    } finally {
      await caller.stop()
      await worker.stop()
    }
  })

  test('a call to a connected peer does not dial it; one to a peer not connected does, first', async () => {
    const net = new MemoryNet()
    const dialled: string[] = []
    let connected = false
    const caller = await side(net, {}, {
      dial: async (peer) => { dialled.push(peer.toString()) },
      connected: () => connected
    })
    const worker = await side(net)
    try {
      assert.equal((await caller.tasks.call(fn, 'add', [1, 1], worker.peer.peerId)).value, 2)
      assert.deepEqual(dialled, [worker.peer.peerId.toString()])
      connected = true
      assert.equal((await caller.tasks.call(fn, 'add', [1, 2], worker.peer.peerId)).value, 3)
      assert.equal((await caller.tasks.call(fn, 'add', [1, 3], worker.peer.peerId)).value, 4)
      assert.equal(dialled.length, 1, 'connected: no dial per call')
    } finally {
      await caller.stop()
      await worker.stop()
    }
  })

  test('a deployed workflow is not a task: the worker refuses it with WorkflowNotCallableError, before the sandbox', async () => {
    const net = new MemoryNet()
    const workflow: LoadedFunction = { ...loaded, manifest: { ...loaded.manifest, kind: 'workflow', exports: ['add'] } }
    const caller = await side(net)
    const worker = await side(net, {}, { loadFunction: async () => workflow })
    try {
      await assert.rejects(caller.tasks.call(fn, 'add', [2, 3], worker.peer.peerId), { name: 'WorkflowNotCallableError', code: 'ERR_WORKFLOW_NOT_CALLABLE', retryable: false })
      assert.equal(worker.sandbox.runs.length, 0)
    } finally {
      await caller.stop()
      await worker.stop()
    }
  })

  test('a worker that signs with another key is reported, and the error is retryable', async () => {
    const net = new MemoryNet()
    const impostor = await generateKeyPair('Ed25519')
    const caller = await side(net)
    const worker = await side(net, {}, { sign: async (bytes) => await impostor.sign(bytes) })
    try {
      await assert.rejects(caller.tasks.call(fn, 'add', [1, 1], worker.peer.peerId), (err: Error & { retryable?: boolean }) => {
        assert.equal(err.name, 'AttestationInvalidError')
        assert.equal(err.retryable, true)
        return true
      })
      assert.equal(caller.violations.length, 1)
      assert.equal(caller.violations[0].peer, worker.peer.peerId.toString())
      assert.equal(caller.violations[0].protocol, caller.tasks.protocol)
    } finally {
      await caller.stop()
      await worker.stop()
    }
  })

  test('one task past the slots and the queue is refused with QueueFullError before its function loads', async () => {
    const net = new MemoryNet()
    let loads = 0
    const caller = await side(net)
    const other = await side(net)
    const worker = await side(net, { slotsMax: 1, queueLengthMax: 1 }, { loadFunction: async () => { loads++; return loaded } })
    try {
      const running = caller.tasks.call(fn, 'wait', [0, 0], worker.peer.peerId).catch((err: Error) => err)
      await worker.sandbox.started.promise
      const queued = caller.tasks.call(fn, 'wait', [0, 1], worker.peer.peerId).catch((err: Error) => err)
      await waitFor('the second task to queue', () => worker.tasks.capacity().queueLength === 1)
      // The same caller is past its stream's inflightMax (slots + queue) and hears so from the RPC layer;
      // another caller reaches the task service, which finds the queue full.
      await assert.rejects(caller.tasks.call(fn, 'wait', [0, 2], worker.peer.peerId), { name: 'PeerBusyError' })
      await assert.rejects(other.tasks.call(fn, 'wait', [0, 2], worker.peer.peerId), { name: 'QueueFullError' })
      assert.equal(loads, 2, 'the refused tasks loaded nothing')
      await worker.stop()
      assert.equal((await running as Error).name, 'AbortedError')
      assert.equal((await queued as Error).name, 'AbortedError')
    } finally {
      await caller.stop()
      await other.stop()
      await worker.stop()
    }
  })

  test('the worker\'s stop() aborts a running task: the sandbox sees its signal fire', async () => {
    const net = new MemoryNet()
    const caller = await side(net)
    const worker = await side(net)
    try {
      const pending = caller.tasks.call(fn, 'wait', [0, 0], worker.peer.peerId).catch((err: Error) => err)
      await worker.sandbox.started.promise
      await worker.stop()
      assert.equal(worker.sandbox.aborted, 1)
      const err = await pending as Error
      assert.equal(err.name, 'AbortedError', err.message)
    } finally {
      await caller.stop()
    }
  })

  test('the caller\'s stop() aborts its call in flight, and the cancel reaches the worker', async () => {
    const net = new MemoryNet()
    const caller = await side(net)
    const worker = await side(net)
    try {
      const pending = caller.tasks.call(fn, 'wait', [0, 0], worker.peer.peerId, { timeoutMs: 60_000 })
      await worker.sandbox.started.promise
      await caller.stop()
      await assert.rejects(pending, { name: 'AbortedError' })
      await waitFor('the worker to abort the task', () => worker.sandbox.aborted === 1)
      await assert.rejects(caller.tasks.call(fn, 'add', [1, 2], worker.peer.peerId), { name: 'AbortedError' })
    } finally {
      await worker.stop()
    }
  })

  test('a local task past its timeout fails with TimeoutError; stop() aborts one in flight', async () => {
    const net = new MemoryNet()
    const self = await side(net)
    try {
      await assert.rejects(self.tasks.call(fn, 'wait', [0, 0], self.peer.peerId, { timeoutMs: 30 }), { name: 'TimeoutError' })
      assert.equal(self.sandbox.aborted, 1)
      const pending = self.tasks.call(fn, 'wait', [0, 0], self.peer.peerId)
      await waitFor('the second run', () => self.sandbox.runs.length === 2)
      await self.tasks.stop()
      await assert.rejects(pending, { name: 'AbortedError' })
      assert.equal(self.sandbox.aborted, 2)
    } finally {
      await self.stop()
    }
  })

  test('a served task past the worker\'s serve deadline is ended there, whatever the caller allows', async () => {
    const net = new MemoryNet()
    const caller = await side(net)
    const worker = await side(net, { serveTimeoutMs: 30 })
    try {
      await assert.rejects(caller.tasks.call(fn, 'wait', [0, 0], worker.peer.peerId, { timeoutMs: 60_000 }), { name: 'TimeoutError' })
      assert.equal(worker.sandbox.aborted, 1)
    } finally {
      await caller.stop()
      await worker.stop()
    }
  })

  test('an unreachable worker is reported as such within the dial deadline', async () => {
    const net = new MemoryNet()
    const caller = await side(net, { dialTimeoutMs: 20 }, {
      dial: async (_peer, { signal }) => await new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))
    })
    const worker = await side(net)
    try {
      await assert.rejects(caller.tasks.call(fn, 'add', [1, 2], worker.peer.peerId), { name: 'PeerUnavailableError' })
    } finally {
      await caller.stop()
      await worker.stop()
    }
  })
})
