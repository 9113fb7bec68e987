/**
 * Results by reference across real peers. Peer A runs in this process (the composition root
 * `startNode`, as bench/task.bench.ts does) so the test can call its task service directly; B and
 * C are `rhizome node start` child processes. A asks B for an 8 MiB value by reference, then asks
 * C for its size with the reference as an input hinted at B: C fetches the blob from B, and the
 * 8 MiB never reach A.
 *
 * What counts as "bytes A received": every TCP socket this process opens or accepts is caught
 * through node:diagnostics_channel (`net.client.socket`, `net.server.socket`), and A's bytes
 * received over a step are the growth of their `bytesRead` — the kernel's count of what arrived,
 * below libp2p's framing, encryption and multiplexing, so nothing that reaches A can hide from it.
 * It counts a little more than the call (membership gossip runs meanwhile), never less; a plain
 * call of the same task, whose 8 MiB result does come to A, shows the counter sees it.
 */
import assert from 'node:assert/strict'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { bundleFunctions } from '../../src/functions/bundle.ts'
import { createManifest, encodeManifest } from '../../src/functions/manifest.ts'
import { createLogger, defaultConfig, startNode } from '../../src/node/index.ts'
import { DEFAULT_LIMITS } from '../../src/sandbox/index.ts'
import { TestNetwork, waitFor } from '../helpers/peers.ts'
import type { Socket } from 'node:net'
import type { RhizomeNode } from '../../src/node/index.ts'
import type { TestPeer } from '../helpers/peers.ts'

const MIB = 1024 * 1024
const BIG_BYTES = 8 * MIB
/** Far below the value: the reply (an attestation, ~300 bytes) and background gossip fit many times over. */
const RECEIVED_BYTES_BOUND = 512 * 1024

const FUNCTIONS = `
export function makeBig (n: number): Uint8Array { return new Uint8Array(n).fill(7) }
export function size (bytes: Uint8Array): number { return bytes.length }
`

/** Every TCP socket of this process, and the bytes that arrived on them so far. */
const sockets = new Set<Socket>()
const track = (message: unknown): void => { sockets.add((message as { socket: Socket }).socket) }
function bytesReceived (): number {
  let total = 0
  for (const socket of sockets) total += socket.bytesRead
  return total
}

describe('results by reference on real peers', { timeout: 240_000 }, () => {
  let net: TestNetwork
  let a: RhizomeNode | undefined
  let b: TestPeer
  let c: TestPeer
  let fn: CID

  before(async () => {
    subscribe('net.client.socket', track)
    subscribe('net.server.socket', track)
    net = await TestNetwork.create()
    a = await startNode({
      ...defaultConfig(join(net.root, 'a')),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      mdns: false,
      networkId: net.networkId,
      slotsMax: 1,
      announceIntervalMs: 500,
      suspectAfterMs: 2000,
      goneAfterMs: 4000
    }, createLogger('rhizome', { level: 'silent' }))
    const bootstrap = a.addrs().find(x => x.includes('/tcp/'))
    assert.ok(bootstrap !== undefined)
    b = await net.addPeer(['--bootstrap', bootstrap, '--slots', '4'])
    c = await net.addPeer(['--bootstrap', bootstrap, '--slots', '4'])
    await waitFor('the three peers to see each other', async () => {
      if (a?.peers().filter(p => p.state === 'alive').length !== 2) return false
      for (const p of [b, c]) if ((await p.peers()).filter(x => x.state === 'alive').length < 2) return false
      return true
    }, 60_000, 200)
    const file = join(net.root, 'big.ts')
    await writeFile(file, FUNCTIONS)
    const bundle = await bundleFunctions(file)
    const limits = { ...DEFAULT_LIMITS, outputBytesMax: 16 * MIB, timeMs: 60_000 }
    const manifest = encodeManifest(await createManifest({ name: 'big', kind: 'js', code: bundle.code, exports: bundle.exports, limits }))
    fn = a.functions.resolve((await a.functions.deploy(manifest, bundle.code, 1)).cid)
  })

  after(async () => {
    await a?.stop()
    await net?.close()
    unsubscribe('net.client.socket', track)
    unsubscribe('net.server.socket', track)
  })

  test('A gets an 8 MiB result from B by reference, C sizes it by fetching from B, and A never receives it', async (t) => {
    assert.ok(a !== undefined)
    const peerB = peerIdFromString(b.peerId)
    const peerC = peerIdFromString(c.peerId)

    const beforeRef = bytesReceived()
    const ref = await a.tasks.call(fn, 'makeBig', [BIG_BYTES], peerB, { ref: true, timeoutMs: 120_000 })
    const refReceived = bytesReceived() - beforeRef
    assert.equal('value' in ref, false)
    assert.equal(ref.peer, b.peerId)
    assert.equal(await a.blobs.has(ref.resultCid), false, 'A does not hold the result')
    assert.ok(refReceived < RECEIVED_BYTES_BOUND, `A received ${refReceived} bytes during the call by reference`)

    const beforeSize = bytesReceived()
    const sized = await a.tasks.call(fn, 'size', [CID.parse(ref.resultCid)], peerC, {
      inputs: [{ cid: ref.resultCid, peers: [b.peerId] }],
      timeoutMs: 120_000
    })
    const sizeReceived = bytesReceived() - beforeSize
    assert.equal(sized.value, BIG_BYTES)
    assert.ok(sizeReceived < RECEIVED_BYTES_BOUND, `A received ${sizeReceived} bytes while C sized the input`)
    assert.equal(await a.blobs.has(ref.resultCid), false, 'A still does not hold it')

    // C fetched it from B (its log says so, naming both), and keeps it: its own API serves it.
    const fetched = await waitFor('C to log the input fetch', () => (c.stdout + c.stderr).split('\n').find(line => line.includes('task input fetched') && line.includes(ref.resultCid)))
    assert.ok(fetched.includes(b.peerId), fetched)
    const held = await fetch(`${c.apiUrl}/v1/blobs/${ref.resultCid}`, { headers: c.authorized(), signal: AbortSignal.timeout(30_000) })
    assert.equal(held.status, 200)
    assert.ok((await held.arrayBuffer()).byteLength > BIG_BYTES)

    // The counter sees a result that does travel: the same task, called plainly, brings 8 MiB to A.
    const beforePlain = bytesReceived()
    const plain = await a.tasks.call(fn, 'makeBig', [BIG_BYTES], peerB, { timeoutMs: 120_000 })
    const plainReceived = bytesReceived() - beforePlain
    assert.equal(plain.resultCid, ref.resultCid)
    assert.equal((plain.value as Uint8Array).byteLength, BIG_BYTES)
    assert.ok(plainReceived > BIG_BYTES, `A received only ${plainReceived} bytes for a plain 8 MiB result`)
    t.diagnostic(`bytes A received: by reference ${refReceived}, while C sized it ${sizeReceived}, plain call ${plainReceived}`)
  })

  test('in a workflow driven by A, an 8 MiB result passed by reference to the next task never passes through A', async (t) => {
    assert.ok(a !== undefined)
    // A drives; placement sends the tasks to B or C (A has one slot, they have four: more room).
    const code = new TextEncoder().encode([
      "import { workflow, remote } from 'rhizome:workflow'",
      `const makeBig = remote('${fn.toString()}', 'makeBig')`,
      `const size = remote('${fn.toString()}', 'size')`,
      'export const big = workflow(async (n) => await size(await makeBig.ref(n)))',
      ''
    ].join('\n'))
    const manifest = encodeManifest(await createManifest({ name: 'big-flow', kind: 'workflow', code, exports: ['big'] }))
    const workflow = a.functions.resolve((await a.functions.deploy(manifest, code, 1)).cid)
    const before = bytesReceived()
    const { runId } = await a.runs.startRun(workflow, 'big', [BIG_BYTES])
    await a.runs.settled(runId)
    const received = bytesReceived() - before
    const report = a.runs.report(runId)
    assert.equal(report.status, 'finished', JSON.stringify(report.error))
    assert.equal(report.result, BIG_BYTES)
    const made = report.tasks.find(task => task.export === 'makeBig')
    assert.ok(made?.peer !== undefined && made.peer !== a.peerId.toString(), `makeBig ran on another peer (${made?.peer})`)
    assert.ok(received < RECEIVED_BYTES_BOUND, `A received ${received} bytes while driving the run`)
    t.diagnostic(`bytes the driver received over the whole run: ${received} (the intermediate result: ${BIG_BYTES})`)
  })
})
