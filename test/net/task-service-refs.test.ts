/**
 * Results by reference, with stub components: a stub sandbox, stores in Maps, and the real
 * TaskService and BlobService over in-memory stream pairs. A call by reference moves no result
 * bytes (counted on the streams); inputs named by CID are fetched from the peers the caller names,
 * kept, decoded and passed in place of their links; every new limit is tried one past.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { BlobService } from '../../src/net/blob-service.ts'
import { INPUT_FETCHES_MAX, INPUT_FETCHES_PER_PEER_MAX, TASK_INPUT_BYTES_MAX, TaskService } from '../../src/net/task-service.ts'
import { createLogger } from '../../src/node/logger.ts'
import { INPUT_PEERS_MAX, TASK_INPUTS_MAX, taskId } from '../../src/wire/task-codec.ts'
import { MemoryNet, deferred, memoryBlobStore as memoryBlobs, waitFor } from '../helpers/memory-net.ts'
import type { LoadedFunction } from '../../src/net/function-service.ts'
import type { TaskServiceComponents } from '../../src/net/task-service.ts'
import type { MemoryPeer } from '../helpers/memory-net.ts'
import type { SandboxCall } from '../../src/sandbox/index.ts'
import type { FunctionManifest } from '../../src/functions/manifest.ts'

const log = createLogger('test', { level: 'silent' })
const RAW = 0x55


const fn = CID.parse('bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
const loaded: LoadedFunction = {
  cid: fn,
  manifest: { name: 'stub', kind: 'js', exports: ['make', 'size', 'kind', 'sizes'], limits: {} } as unknown as FunctionManifest,
  code: new TextEncoder().encode('stub'),
  fetched: false
}

/**
 * A sandbox with four exports: `make(n)` returns n bytes; `size(x)` the length of the bytes it
 * was given; `kind(x)` "cid" for a CID and typeof otherwise; `sizes(...xs)` the lengths of all.
 */
function stubSandbox (): TaskServiceComponents['sandbox'] & { runs: SandboxCall[] } {
  const sandbox = {
    runs: [] as SandboxCall[],
    async run (call: SandboxCall) {
      sandbox.runs.push(call)
      const [x] = call.args
      const value = call.exportName === 'make'
        ? new Uint8Array(x as number).fill(7)
        : call.exportName === 'size'
          ? (x as Uint8Array).byteLength
          : call.exportName === 'sizes'
            ? call.args.map(a => (a as Uint8Array).byteLength)
            : x instanceof CID ? 'cid' : typeof x
      return { value, bytes: dagCbor.encode(value), runMs: 0, warm: false }
    }
  }
  return sandbox
}

interface Side { peer: MemoryPeer, tasks: TaskService, blobs: ReturnType<typeof memoryBlobs>, sandbox: ReturnType<typeof stubSandbox>, stop: () => Promise<void> }

async function side (net: MemoryNet, overrides: Partial<TaskServiceComponents> = {}): Promise<Side> {
  const peer = await net.peer()
  const rpc = net.rpc(peer)
  const sandbox = stubSandbox()
  const blobs = memoryBlobs()
  const blobService = new BlobService({ rpc, blobs }, { networkId: 'memory' })
  await blobService.start()
  const tasks = new TaskService({
    rpc,
    sandbox,
    loadFunction: async () => loaded,
    blobs,
    fetchBlob: async (from, cid, options) => await blobService.fetch(from, cid, options),
    sign: async (bytes) => await peer.privateKey.sign(bytes),
    selfId: peer.peerId,
    dial: async () => {},
    onCapacity: () => {},
    onViolation: () => {},
    log,
    ...overrides
  }, { networkId: 'memory', slotsMax: 1, queueLengthMax: 4 })
  await tasks.start()
  return { peer, tasks, blobs, sandbox, stop: async () => { await tasks.stop(); await blobService.stop(); await rpc.stop() } }
}

async function sides (count: number): Promise<{ net: MemoryNet, peers: Side[], stop: () => Promise<void> }> {
  const net = new MemoryNet()
  const peers: Side[] = []
  for (let i = 0; i < count; i++) peers.push(await side(net))
  return { net, peers, stop: async () => { for (const p of peers) await p.stop() } }
}

/** A dag-cbor value of `n` bytes, stored on `holder`; its CID. */
async function storeValue (holder: Side, n: number, fill = 1): Promise<CID> {
  return await holder.blobs.put(dagCbor.encode(new Uint8Array(n).fill(fill)), dagCbor.code)
}

describe('TaskService: results by reference', () => {
  test('a call by reference moves no result bytes, small or large; a plain call moves them', async () => {
    const { peers: [caller, worker], stop } = await sides(2)
    try {
      for (const n of [100_000, 2 * 1024 * 1024]) {
        const before = caller.peer.bytesReceived
        const readsBefore = worker.blobs.rangeReads
        const result = await caller.tasks.call(fn, 'make', [n], worker.peer.peerId, { ref: true })
        const received = caller.peer.bytesReceived - before
        assert.ok(received < 2048, `the caller received ${received} bytes for a ${n}-byte result by reference`)
        assert.equal(worker.blobs.rangeReads, readsBefore, 'nobody fetched the result')
        assert.equal('value' in result, false)
        const expected = CID.create(1, dagCbor.code, await sha256.digest(dagCbor.encode(new Uint8Array(n).fill(7))))
        assert.equal(result.resultCid, expected.toString())
        assert.equal(result.taskId, (await taskId(fn, 'make', [n])).toString())
        assert.equal(await worker.blobs.has(expected), true, 'the worker keeps the result')
        assert.equal(await caller.blobs.has(expected), false, 'the caller does not')
      }
      // The same counter sees a plain call's result arrive, inline or fetched.
      for (const n of [100_000, 2 * 1024 * 1024]) {
        const before = caller.peer.bytesReceived
        const result = await caller.tasks.call(fn, 'make', [n], worker.peer.peerId)
        assert.ok(caller.peer.bytesReceived - before > n, `a plain call of ${n} bytes moved ${caller.peer.bytesReceived - before}`)
        assert.equal((result.value as Uint8Array).byteLength, n)
      }
    } finally {
      await stop()
    }
  })

  test('a call by reference still checks the attestation: a forged signature is AttestationInvalidError', async () => {
    const net = new MemoryNet()
    const impostor = await generateKeyPair('Ed25519')
    const caller = await side(net)
    const worker = await side(net, { sign: async (bytes) => await impostor.sign(bytes) })
    try {
      await assert.rejects(caller.tasks.call(fn, 'make', [10], worker.peer.peerId, { ref: true }), { name: 'AttestationInvalidError' })
    } finally {
      await caller.stop()
      await worker.stop()
    }
  })

  test('a call by reference to this peer runs here and returns the CID only', async () => {
    const { peers: [self], stop } = await sides(1)
    try {
      const result = await self.tasks.call(fn, 'make', [10], self.peer.peerId, { ref: true })
      assert.equal('value' in result, false)
      assert.equal(await self.blobs.has(result.resultCid), true)
    } finally {
      await stop()
    }
  })
})

describe('TaskService: inputs by CID', () => {
  test('a hinted peer serves the input; the worker decodes it, passes the value, and keeps the blob', async () => {
    const { peers: [caller, worker, holder], stop } = await sides(3)
    try {
      const input = await storeValue(holder, 300_000)
      const inputs = [{ cid: input.toString(), peers: [holder.peer.peerId.toString()] }]
      const result = await caller.tasks.call(fn, 'size', [input], worker.peer.peerId, { inputs })
      assert.equal(result.value, 300_000)
      // The task id names the input by its CID, links in place.
      assert.equal(result.taskId, (await taskId(fn, 'size', [input])).toString())
      assert.equal(await worker.blobs.has(input), true, 'the worker keeps what it fetched')
      assert.equal(caller.peer.bytesReceived < 4096, true, 'the input never passed through the caller')
      // The next task that needs it there finds it local: no more reads on the holder.
      const reads = holder.blobs.rangeReads
      assert.equal((await caller.tasks.call(fn, 'size', [input], worker.peer.peerId, { inputs })).value, 300_000)
      assert.equal(holder.blobs.rangeReads, reads)
    } finally {
      await stop()
    }
  })

  test('the first hinted peer does not hold it, the second serves it', async () => {
    const { peers: [caller, worker, empty, holder], stop } = await sides(4)
    try {
      const input = await storeValue(holder, 1000)
      const result = await caller.tasks.call(fn, 'size', [input], worker.peer.peerId, {
        inputs: [{ cid: input.toString(), peers: [empty.peer.peerId.toString(), holder.peer.peerId.toString()] }]
      })
      assert.equal(result.value, 1000)
      assert.equal(empty.blobs.rangeReads, 1, 'the first hint was asked')
    } finally {
      await stop()
    }
  })

  test('no hinted peer serves it: InputUnavailableError, retryable, naming the CID and the peers tried', async () => {
    const { peers: [caller, worker, a, b], stop } = await sides(4)
    try {
      const input = CID.create(1, dagCbor.code, await sha256.digest(dagCbor.encode('held by nobody')))
      const tried = [a.peer.peerId.toString(), b.peer.peerId.toString()]
      await assert.rejects(caller.tasks.call(fn, 'size', [input], worker.peer.peerId, { inputs: [{ cid: input.toString(), peers: tried }] }), (err: Error & { retryable?: boolean }) => {
        assert.equal(err.name, 'InputUnavailableError')
        assert.equal(err.retryable, true)
        assert.match(err.message, new RegExp(input.toString()))
        for (const peer of tried) assert.match(err.message, new RegExp(peer))
        return true
      })
      assert.equal(worker.sandbox.runs.length, 0)
      assert.equal(worker.tasks.inputFetchesInflight(), 0, 'the budget is given back')
    } finally {
      await stop()
    }
  })

  test('a link not listed in inputs reaches the function as a CID, and nothing is fetched', async () => {
    const { peers: [caller, worker, holder], stop } = await sides(3)
    try {
      const listed = await storeValue(holder, 10)
      const unlisted = await storeValue(holder, 20)
      const result = await caller.tasks.call(fn, 'kind', [unlisted, listed], worker.peer.peerId, {
        inputs: [{ cid: listed.toString(), peers: [holder.peer.peerId.toString()] }]
      })
      assert.equal(result.value, 'cid')
      assert.equal(await worker.blobs.has(unlisted), false)
      assert.equal(worker.sandbox.runs[0].args[0] instanceof CID, true)
      assert.equal(worker.sandbox.runs[0].args[1] instanceof Uint8Array, true)
    } finally {
      await stop()
    }
  })

  test('a raw blob is passed as its bytes; a held input is not fetched; several inputs resolve together', async () => {
    const { peers: [caller, worker, holder], stop } = await sides(3)
    try {
      const raw = await holder.blobs.put(new Uint8Array(5000).fill(3), RAW)
      const local = await storeValue(worker, 70)
      const other = await storeValue(holder, 80)
      const peers = [holder.peer.peerId.toString()]
      const result = await caller.tasks.call(fn, 'sizes', [raw, local, other], worker.peer.peerId, {
        inputs: [raw, local, other].map(cid => ({ cid: cid.toString(), peers }))
      })
      assert.deepEqual(result.value, [5000, 70, 80])
      assert.equal(holder.blobs.rangeReads, 2, 'only the two inputs the worker lacked were fetched')
    } finally {
      await stop()
    }
  })

  test('an input that is no dag-cbor value, or of another codec, is InvalidInputError', async () => {
    const { peers: [caller, worker, holder], stop } = await sides(3)
    try {
      const garbage = await holder.blobs.put(new Uint8Array([0xff, 0xff, 0xff]), dagCbor.code)
      const peers = [holder.peer.peerId.toString()]
      await assert.rejects(caller.tasks.call(fn, 'size', [garbage], worker.peer.peerId, { inputs: [{ cid: garbage.toString(), peers }] }), { name: 'InvalidInputError' })
      const dagPb = CID.create(1, 0x70, (await sha256.digest(new Uint8Array([1]))))
      await assert.rejects(caller.tasks.call(fn, 'size', [dagPb], worker.peer.peerId, { inputs: [{ cid: dagPb.toString(), peers }] }), { name: 'InvalidInputError', message: /codec 0x70/ })
      assert.equal(worker.sandbox.runs.length, 0)
    } finally {
      await stop()
    }
  })

  test('fetching inputs holds no slot: another task runs meanwhile, and cancelling gives the budget back', async () => {
    const { peers: [caller, worker, holder], stop } = await sides(3)
    try {
      const input = await storeValue(holder, 100)
      const gate = deferred()
      holder.blobs.gate = gate.promise
      const controller = new AbortController()
      const stalled = caller.tasks.call(fn, 'size', [input], worker.peer.peerId, {
        signal: controller.signal, inputs: [{ cid: input.toString(), peers: [holder.peer.peerId.toString()] }]
      }).catch((err: Error) => err)
      await waitFor('the input fetch to start', () => holder.blobs.rangeReads === 1)
      assert.equal(worker.tasks.capacity().slotsFree, 1)
      assert.equal(worker.tasks.inputFetchesInflight(caller.peer.peerId), 1)
      assert.equal((await caller.tasks.call(fn, 'make', [3], worker.peer.peerId)).value instanceof Uint8Array, true)
      controller.abort()
      assert.equal((await stalled as Error).name, 'AbortedError')
      await waitFor('the worker to give the budget back', () => worker.tasks.inputFetchesInflight() === 0)
      gate.resolve()
    } finally {
      await stop()
    }
  })
})

describe('TaskService: limits of inputs', () => {
  test(`one input past TASK_INPUTS_MAX (${TASK_INPUTS_MAX}) or one peer past INPUT_PEERS_MAX (${INPUT_PEERS_MAX}) is refused before anything is sent`, async () => {
    const { peers: [caller, worker], stop } = await sides(2)
    try {
      const cids = await Promise.all(Array.from({ length: TASK_INPUTS_MAX + 1 }, async (_, i) => CID.create(1, RAW, await sha256.digest(new Uint8Array([i])))))
      const peer = caller.peer.peerId.toString()
      const sent = worker.peer.bytesReceived
      await assert.rejects(caller.tasks.call(fn, 'kind', cids, worker.peer.peerId, { inputs: cids.map(c => ({ cid: c.toString(), peers: [peer] })) }), { name: 'InvalidInputError', message: new RegExp(`at most ${TASK_INPUTS_MAX}`) })
      const peers = Array.from({ length: INPUT_PEERS_MAX + 1 }, () => peer)
      await assert.rejects(caller.tasks.call(fn, 'kind', [cids[0]], worker.peer.peerId, { inputs: [{ cid: cids[0].toString(), peers }] }), { name: 'InvalidInputError', message: new RegExp(`at most ${INPUT_PEERS_MAX}`) })
      assert.equal(worker.peer.bytesReceived, sent)
      // At the limits, the call goes through (links not at the top level of a held blob stay CIDs).
      const atMax = await caller.tasks.call(fn, 'kind', [1], worker.peer.peerId, { inputs: cids.slice(0, TASK_INPUTS_MAX).map(c => ({ cid: c.toString(), peers: peers.slice(0, INPUT_PEERS_MAX) })) })
      assert.equal(atMax.value, 'number')
    } finally {
      await stop()
    }
  })

  test(`one input fetch past INPUT_FETCHES_PER_PEER_MAX (${INPUT_FETCHES_PER_PEER_MAX}) per caller, or INPUT_FETCHES_MAX (${INPUT_FETCHES_MAX}) in all, is PeerBusyError at once`, async () => {
    const { peers: [c1, c2, c3, worker, holder], stop } = await sides(5)
    try {
      const gate = deferred()
      holder.blobs.gate = gate.promise
      const hint = [holder.peer.peerId.toString()]
      // A task of `caller` with `n` inputs the worker lacks, as an outcome (value or error).
      const many = async (caller: Side, n: number, base: number): Promise<{ outcome: Promise<unknown> }> => {
        const cids = await Promise.all(Array.from({ length: n }, async (_, i) => await storeValue(holder, 10, base + i)))
        const call = caller.tasks.call(fn, 'sizes', cids, worker.peer.peerId, { inputs: cids.map(c => ({ cid: c.toString(), peers: hint })) })
        return { outcome: call.then(r => r.value, (err: Error) => err) }
      }
      const first = await many(c1, INPUT_FETCHES_PER_PEER_MAX, 0)
      await waitFor('the first caller\'s fetches', () => worker.tasks.inputFetchesInflight(c1.peer.peerId) === INPUT_FETCHES_PER_PEER_MAX)
      assert.equal(((await (await many(c1, 1, 100)).outcome) as Error).name, 'PeerBusyError')
      const second = await many(c2, INPUT_FETCHES_MAX - INPUT_FETCHES_PER_PEER_MAX, 200)
      await waitFor('all fetches', () => worker.tasks.inputFetchesInflight() === INPUT_FETCHES_MAX)
      assert.equal(((await (await many(c3, 1, 300)).outcome) as Error).name, 'PeerBusyError')
      gate.resolve()
      assert.deepEqual(await first.outcome, Array(INPUT_FETCHES_PER_PEER_MAX).fill(10))
      assert.deepEqual(await second.outcome, Array(INPUT_FETCHES_MAX - INPUT_FETCHES_PER_PEER_MAX).fill(10))
      assert.equal(worker.tasks.inputFetchesInflight(), 0)
    } finally {
      await stop()
    }
  })

  test(`inputs together one byte past TASK_INPUT_BYTES_MAX (${TASK_INPUT_BYTES_MAX}) are TooLargeError; at it they run`, async () => {
    const { peers: [caller, worker], stop } = await sides(2)
    try {
      const half = TASK_INPUT_BYTES_MAX / 2
      const a = await worker.blobs.put(new Uint8Array(half).fill(1), RAW)
      const b = await worker.blobs.put(new Uint8Array(half).fill(2), RAW)
      const over = await worker.blobs.put(new Uint8Array(half + 1).fill(3), RAW)
      const self = [worker.peer.peerId.toString()]
      const at = await caller.tasks.call(fn, 'sizes', [a, b], worker.peer.peerId, { inputs: [a, b].map(c => ({ cid: c.toString(), peers: self })) })
      assert.deepEqual(at.value, [half, half])
      await assert.rejects(caller.tasks.call(fn, 'sizes', [a, over], worker.peer.peerId, { inputs: [a, over].map(c => ({ cid: c.toString(), peers: self })) }), { name: 'TooLargeError' })
    } finally {
      await stop()
    }
  })
})
