/**
 * FunctionService with stub components: blobs and the function index in memory, a stub blob
 * fetch and a stub DHT, RPC over in-memory stream pairs. Loading, the per-requester fetch budget,
 * deadlines that score a caller that does not serve its code, deploys, and stop().
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { createManifest, encodeManifest } from '../../src/functions/manifest.ts'
import { CODE_FETCHES_PER_PEER_MAX, FunctionService } from '../../src/net/function-service.ts'
import { createLogger } from '../../src/node/logger.ts'
import { MemoryNet, deferred, waitFor } from '../helpers/memory-net.ts'
import type { FunctionServiceComponents, FunctionServiceInit } from '../../src/net/function-service.ts'
import type { FunctionRow } from '../../src/store/index.ts'
import type { MemoryPeer, Violation } from '../helpers/memory-net.ts'
import type { PeerId } from '@libp2p/interface'

const log = createLogger('test', { level: 'silent' })

function memoryBlobs (): FunctionServiceComponents['blobs'] & { map: Map<string, Uint8Array> } {
  const map = new Map<string, Uint8Array>()
  return {
    map,
    async put (bytes: Uint8Array, codec = 0x55) {
      const cid = CID.create(1, codec, await sha256.digest(bytes))
      map.set(cid.toString(), bytes)
      return cid
    },
    async has (cid: CID | string) { return map.has(cid.toString()) },
    async get (cid: CID | string) {
      const bytes = map.get(cid.toString())
      if (bytes === undefined) throw new Error('not found')
      return bytes
    }
  }
}

function memoryRepo (): FunctionServiceComponents['functions'] {
  const rows = new Map<string, FunctionRow>()
  return {
    add: (row) => { if (rows.has(row.cid)) return false; rows.set(row.cid, row); return true },
    get: (cid) => rows.get(cid),
    byName: (name) => [...rows.values()].reverse().find(r => r.name === name),
    list: () => [...rows.values()].reverse()
  }
}

/** A fetch that waits until its signal aborts: a peer that accepted the request and sends nothing. */
async function stalledFetch (_peer: PeerId, _cid: CID, { signal }: { signal: AbortSignal }): Promise<Uint8Array> {
  return await new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))
}

async function aFunction (): Promise<{ cid: CID, manifestBytes: Uint8Array, code: Uint8Array }> {
  const code = new TextEncoder().encode(`export function add (a, b) { return a + b } // ${Math.random()}`)
  const manifestBytes = encodeManifest(await createManifest({ name: 'adder', kind: 'js', code, exports: ['add'] }))
  const cid = CID.create(1, dagCbor.code, await sha256.digest(manifestBytes))
  return { cid, manifestBytes, code }
}

interface Side { peer: MemoryPeer, functions: FunctionService, blobs: ReturnType<typeof memoryBlobs>, violations: Violation[], provided: number, stop: () => Promise<void> }

async function side (net: MemoryNet, overrides: Partial<FunctionServiceComponents> = {}, init: Partial<FunctionServiceInit> = {}): Promise<Side> {
  const peer = await net.peer()
  const rpc = net.rpc(peer)
  const blobs = memoryBlobs()
  const violations: Violation[] = []
  const result: Side = { peer, blobs, violations, provided: 0, functions: undefined as unknown as FunctionService, stop: async () => {} }
  const functions = new FunctionService({
    rpc,
    blobs,
    fetchBlob: async () => { throw new Error('not found') },
    functions: memoryRepo(),
    contentRouting: {
      findProviders: async function * () {},
      provide: async () => { result.provided++ }
    },
    selfId: peer.peerId,
    alivePeers: () => [],
    log,
    onViolation: (remote, protocol, error) => { violations.push({ peer: remote.toString(), protocol, error }) },
    ...overrides
  }, { networkId: 'memory', ...init })
  await functions.start()
  result.functions = functions
  result.stop = async () => { await functions.stop(); await rpc.stop() }
  return result
}

describe('FunctionService with stub components', () => {
  test('a function the requester holds is fetched from it once, verified, indexed and cached', async () => {
    const net = new MemoryNet()
    const source = await net.peer()
    const f = await aFunction()
    const remote = new Map([[f.cid.toString(), f.manifestBytes], [(await createManifest({ name: 'adder', kind: 'js', code: f.code, exports: ['add'] })).code.toString(), f.code]])
    let fetches = 0
    const worker = await side(net, {
      fetchBlob: async (peer, cid) => {
        fetches++
        assert.equal(peer.toString(), source.peerId.toString())
        return remote.get(cid.toString()) ?? await Promise.reject(new Error('not found'))
      }
    })
    try {
      const loaded = await worker.functions.load(f.cid, { requester: source.peerId })
      assert.equal(loaded.fetched, true)
      assert.deepEqual(loaded.manifest.exports, ['add'])
      assert.equal(fetches, 2, 'the manifest, then the code')
      assert.equal(worker.functions.list()[0]?.cid, f.cid.toString())
      const again = await worker.functions.load(f.cid, { requester: source.peerId })
      assert.equal(again.fetched, false)
      assert.equal(fetches, 2)
      assert.equal(worker.functions.fetchesInflight(), 0)
    } finally {
      await worker.stop()
    }
  })

  test('a requester that does not serve its code within the source deadline is reported', async () => {
    const net = new MemoryNet()
    const requester = await net.peer()
    const worker = await side(net, { fetchBlob: stalledFetch }, { fetchSourceTimeoutMs: 30 })
    const f = await aFunction()
    try {
      await assert.rejects(worker.functions.load(f.cid, { requester: requester.peerId }), { name: 'FunctionNotFoundError' })
      assert.equal(worker.violations.length, 1)
      assert.equal(worker.violations[0].error.name, 'CodeNotServedError')
      assert.equal(worker.violations[0].protocol, worker.functions.protocol)
    } finally {
      await worker.stop()
    }
  })

  test('one fetch past a requester\'s budget is refused at once with PeerBusyError', async () => {
    const net = new MemoryNet()
    const requester = await net.peer()
    const worker = await side(net, { fetchBlob: stalledFetch })
    const loads = []
    try {
      for (let i = 0; i < CODE_FETCHES_PER_PEER_MAX; i++) loads.push(worker.functions.load((await aFunction()).cid, { requester: requester.peerId }).catch((err: Error) => err))
      await waitFor('the budget to be spent', () => worker.functions.fetchesInflight(requester.peerId) === CODE_FETCHES_PER_PEER_MAX)
      await assert.rejects(worker.functions.load((await aFunction()).cid, { requester: requester.peerId }), { name: 'PeerBusyError' })
    } finally {
      await worker.stop()
    }
    for (const err of await Promise.all(loads)) assert.equal((err as Error).name, 'AbortedError')
    assert.equal(worker.functions.fetchesInflight(), 0)
  })

  test('stop() aborts a load in flight: the fetch sees its signal fire, and nobody is blamed', async () => {
    const net = new MemoryNet()
    const requester = await net.peer()
    const fetchAborted = deferred()
    const fetchStarted = deferred()
    const worker = await side(net, {
      fetchBlob: async (_peer, _cid, { signal }) => await new Promise((_resolve, reject) => {
        fetchStarted.resolve()
        signal.addEventListener('abort', () => { fetchAborted.resolve(); reject(signal.reason) }, { once: true })
      })
    })
    const f = await aFunction()
    const pending = worker.functions.load(f.cid, { requester: requester.peerId })
    await fetchStarted.promise
    await worker.stop()
    await assert.rejects(pending, { name: 'AbortedError' })
    await fetchAborted.promise
    assert.equal(worker.violations.length, 0)
    await assert.rejects(worker.functions.load(f.cid), { name: 'AbortedError' })
  })

  test('an owner that does not pull the function within the replicate deadline is reported as not holding it', async () => {
    const net = new MemoryNet()
    const owner = await side(net, { fetchBlob: stalledFetch })
    const deployer = await side(net, { alivePeers: () => [owner.peer.peerId.toString()] }, { replicateTimeoutMs: 30 })
    try {
      const f = await aFunction()
      const result = await deployer.functions.deploy(f.manifestBytes, f.code, 2)
      const remote = result.replicas.find(r => r.peer === owner.peer.peerId.toString())
      assert.equal(remote?.ok, false)
      assert.match(remote?.error ?? '', /30 ms/)
    } finally {
      await deployer.stop()
      await owner.stop()
    }
  })

  test('deploy stores the function and asks the owners to replicate it; each pulls it from the deployer', async () => {
    const net = new MemoryNet()
    const deployerBlobs: { get?: (cid: CID) => Promise<Uint8Array> } = {}
    const owner = await side(net, { fetchBlob: async (_peer, cid) => await deployerBlobs.get!(cid) })
    const deployer = await side(net, { alivePeers: () => [owner.peer.peerId.toString()] })
    deployerBlobs.get = deployer.blobs.get
    try {
      const f = await aFunction()
      const result = await deployer.functions.deploy(f.manifestBytes, f.code, 2)
      assert.equal(result.cid, f.cid.toString())
      assert.deepEqual(result.replicas.map(r => r.ok), [true, true])
      assert.equal(owner.functions.list()[0]?.cid, f.cid.toString())
      assert.equal(owner.functions.list()[0]?.origin, 'replica')
      await waitFor('both to provide the id', () => owner.provided === 1 && deployer.provided === 1)
      await assert.rejects(deployer.functions.deploy(f.manifestBytes, f.code, 0), { name: 'InvalidInputError' })
    } finally {
      await deployer.stop()
      await owner.stop()
    }
  })
})
