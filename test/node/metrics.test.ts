/**
 * The peer's Prometheus metrics (src/node/metrics.ts). Two peers run in this process (the
 * composition root `startNode`): each has its own registry, so the task one of them ran shows in
 * its scrape and not in the other's; the names, types and values after known work (an ok task, a
 * failing one) are those documented; `GET /metrics` needs the API token like every route. Over
 * counting sources, a scrape asks each source once, however many tasks the peer answered.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { Registry } from 'prom-client'
import { bundleFunctions } from '../../src/functions/bundle.ts'
import { createManifest, encodeManifest } from '../../src/functions/manifest.ts'
import { createLogger, defaultConfig, startNode } from '../../src/node/index.ts'
import { TASK_SECONDS_BUCKETS, errorClassOf, registerNodeMetrics } from '../../src/node/metrics.ts'
import { readApiToken } from '../helpers/peers.ts'
import type { MetricSources } from '../../src/node/metrics.ts'
import type { TaskEnd } from '../../src/net/task-service.ts'
import type { RhizomeNode } from '../../src/node/index.ts'

const FUNCTIONS = `
export function add (a: number, b: number): number { return a + b }
export function boom (): number { throw new Error('boom') }
`

/** The value of the sample `name{labels}` in exposition text (labels as written, in order). */
function sample (text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1))
  }
  return undefined
}

function typeOf (text: string, name: string): string | undefined {
  return new RegExp(`^# TYPE ${name} (\\w+)$`, 'm').exec(text)?.[1]
}

describe('metrics of real peers', { timeout: 120_000 }, () => {
  let root: string
  let a: RhizomeNode
  let b: RhizomeNode

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'rhizome-metrics-'))
    const config = (name: string): ReturnType<typeof defaultConfig> => ({ ...defaultConfig(join(root, name)), listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, networkId: 'metrics-test', apiPort: 0, slotsMax: 2 })
    a = await startNode(config('a'), createLogger('rhizome', { level: 'silent' }))
    b = await startNode(config('b'), createLogger('rhizome', { level: 'silent' }))
  })

  after(async () => {
    await a?.stop()
    await b?.stop()
    await rm(root, { recursive: true, force: true })
  })

  test('names, types and values after one ok task and one failed task, on the peer that ran them only', async () => {
    const file = join(root, 'fns.ts')
    await writeFile(file, FUNCTIONS)
    const bundle = await bundleFunctions(file)
    const manifest = encodeManifest(await createManifest({ name: 'fns', kind: 'js', code: bundle.code, exports: bundle.exports }))
    const fn = a.functions.resolve((await a.functions.deploy(manifest, bundle.code, 1)).cid)
    const self = a.peerId.toString()
    assert.equal((await a.call(fn, 'add', [2, 3], { on: self })).value, 5)
    await assert.rejects(a.call(fn, 'boom', [], { on: self }), { code: 'ERR_FUNCTION_THREW' })

    const text = await a.metrics.scrape()
    assert.equal(typeOf(text, 'rhizome_tasks_total'), 'counter')
    assert.equal(sample(text, 'rhizome_tasks_total{outcome="ok",code="",class=""}'), 1)
    assert.equal(sample(text, 'rhizome_tasks_total{outcome="failed",code="ERR_FUNCTION_THREW",class="function"}'), 1)
    assert.equal(sample(text, 'rhizome_tasks_total{outcome="cancelled",code="",class=""}'), 0)
    for (const name of ['rhizome_task_queue_seconds', 'rhizome_task_fetch_seconds', 'rhizome_task_run_seconds']) {
      assert.equal(typeOf(text, name), 'histogram', name)
      assert.equal(sample(text, `${name}_count`), 1, `${name}: the ok task's timings only`)
      assert.equal(sample(text, `${name}_bucket{le="+Inf"}`), 1)
      assert.equal(text.split('\n').filter(l => l.startsWith(`${name}_bucket{`)).length, TASK_SECONDS_BUCKETS.length + 1)
    }
    assert.equal(sample(text, 'rhizome_slots_max'), 2)
    assert.equal(sample(text, 'rhizome_slots_used'), 0)
    assert.equal(sample(text, 'rhizome_queue_length'), 0)
    assert.equal(sample(text, 'rhizome_queue_length_max'), 32)
    assert.equal(typeOf(text, 'rhizome_sandbox_cold_starts_total'), 'counter')
    assert.ok(sample(text, 'rhizome_sandbox_cold_starts_total')! >= 1, 'the first call of a function starts an isolate')
    assert.ok(sample(text, 'rhizome_blob_store_objects')! >= 3, 'manifest, code and the result are blobs')
    assert.ok(sample(text, 'rhizome_blob_store_bytes')! >= bundle.code.byteLength)
    assert.equal(sample(text, 'rhizome_peers{state="alive"}'), 0)
    assert.equal(sample(text, `rhizome_info{peer_id="${self}",version="${(await a.status()).version}",network="metrics-test"}`), 1)
    assert.match(text, /^libp2p_\w+ /m, 'libp2p\'s own metrics are in the node\'s registry')
    assert.match(text, /^process_cpu_user_seconds_total /m, 'and the process metrics')

    const other = await b.metrics.scrape()
    assert.equal(sample(other, 'rhizome_tasks_total{outcome="ok",code="",class=""}'), 0, 'the other peer in this process counts nothing of it')
    assert.equal(other.match(/^rhizome_tasks_total\{outcome="failed"/m), null)
    assert.equal(sample(other, 'rhizome_sandbox_cold_starts_total'), 0)
  })

  test('GET /metrics needs the API token, and answers the exposition format with it', async () => {
    const refused = await fetch(`${a.apiUrl()}/metrics`, { signal: AbortSignal.timeout(10_000) })
    assert.equal(refused.status, 401)
    await refused.body?.cancel()
    const token = await readApiToken(a.config.dataDir)
    const res = await fetch(`${a.apiUrl()}/metrics`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) })
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    assert.match(await res.text(), /^# TYPE rhizome_tasks_total counter$/m)
  })
})

describe('metrics over counting sources', () => {
  function countingSources (peers: number, runs: number): { sources: MetricSources, calls: Map<string, number>, end: (e: TaskEnd) => void } {
    const calls = new Map<string, number>()
    const count = <T>(name: string, value: () => T) => (): T => { calls.set(name, (calls.get(name) ?? 0) + 1); return value() }
    const listeners: Array<(e: TaskEnd) => void> = []
    const byStatus: Record<string, number> = {}
    for (let i = 0; i < runs; i++) byStatus[['running', 'finished', 'failed'][i % 3]] = (byStatus[['running', 'finished', 'failed'][i % 3]] ?? 0) + 1
    const sources: MetricSources = {
      peerId: 'p',
      version: 'v',
      networkId: 'n',
      onTaskEnd: (listener) => { listeners.push(listener); return () => { listeners.splice(listeners.indexOf(listener), 1) } },
      capacity: count('capacity', () => ({ slotsFree: 1, slotsMax: 4, queueLength: 7 })),
      queueLengthMax: 64,
      peers: count('peers', () => ({ alive: peers, suspect: 0, gone: 1 })),
      runs: count('runs', () => ({ byStatus, driving: 2, memoEntries: 9 })),
      blobs: count('blobs', () => ({ objects: 5, bytes: 5000 })),
      sandbox: count('sandbox', () => ({ warmHits: 10, coldStarts: 3, isolatesAlive: 2, isolatesIdle: 1, isolatesDisposed: 0, callsActive: 1 })),
      workflows: count('workflows', () => ({ runsOpen: 1 })),
      rpc: count('rpc', () => [{ protocol: '/rhizome/n/task/1.0.0', requestsSent: 6, requestErrors: 2, requestsServed: 4, serveErrors: 1 }])
    }
    return { sources, calls, end: (e) => { for (const l of listeners) l(e) } }
  }

  test('a scrape asks each source once, and its size does not grow with the tasks answered', async () => {
    const { sources, calls, end } = countingSources(3, 3)
    const metrics = registerNodeMetrics(new Registry(), sources)
    end({ outcome: 'ok', timings: { queueMs: 1, fetchMs: 0, runMs: 2 } })
    const first = await metrics.scrape()
    for (const name of ['capacity', 'peers', 'runs', 'blobs', 'sandbox', 'workflows', 'rpc']) assert.equal(calls.get(name), 1, name)
    for (let i = 0; i < 10_000; i++) end({ outcome: 'ok', timings: { queueMs: i % 50, fetchMs: 0, runMs: i % 700 } })
    end({ outcome: 'failed', code: 'ERR_SANDBOX_TIME_LIMIT' })
    end({ outcome: 'failed', code: 'ERR_NOT_A_CODE_ANYONE_KNOWS' })
    end({ outcome: 'cancelled' })
    calls.clear()
    const second = await metrics.scrape()
    for (const name of ['capacity', 'peers', 'runs', 'blobs', 'sandbox', 'workflows', 'rpc']) assert.equal(calls.get(name), 1, name)
    // Two new series (the failures' codes); nothing per task.
    assert.equal(second.split('\n').length, first.split('\n').length + 2)
    assert.equal(sample(second, 'rhizome_tasks_total{outcome="ok",code="",class=""}'), 10_001)
    assert.equal(sample(second, 'rhizome_tasks_total{outcome="failed",code="ERR_SANDBOX_TIME_LIMIT",class="function"}'), 1)
    assert.equal(sample(second, 'rhizome_tasks_total{outcome="failed",code="other",class="internal"}'), 1, 'unknown codes share one series')
    assert.equal(sample(second, 'rhizome_tasks_total{outcome="cancelled",code="",class=""}'), 1)
    assert.equal(sample(second, 'rhizome_task_run_seconds_count'), 10_001)
    // runMs = i % 700 for i < 10,000: 14 whole cycles of 501 values ≤ 500 ms, then 200 more, plus the first task.
    assert.equal(sample(second, 'rhizome_task_run_seconds_bucket{le="0.5"}'), 14 * 501 + 200 + 1)
    metrics.close()
  })

  test('gauges and counters read from the snapshot: slots, peers, runs, blobs, sandbox, RPC', async () => {
    const { sources } = countingSources(4, 5)
    const metrics = registerNodeMetrics(new Registry(), sources)
    const text = await metrics.scrape()
    assert.equal(sample(text, 'rhizome_slots_used'), 3)
    assert.equal(sample(text, 'rhizome_queue_length'), 7)
    assert.equal(sample(text, 'rhizome_peers{state="alive"}'), 4)
    assert.equal(sample(text, 'rhizome_peers{state="gone"}'), 1)
    assert.equal(sample(text, 'rhizome_runs{status="running"}'), 2)
    assert.equal(sample(text, 'rhizome_runs{status="failed"}'), 1)
    assert.equal(sample(text, 'rhizome_memo_entries'), 9)
    assert.equal(sample(text, 'rhizome_blob_store_bytes'), 5000)
    assert.equal(sample(text, 'rhizome_sandbox_isolates'), 2)
    assert.equal(sample(text, 'rhizome_sandbox_warm_hits_total'), 10)
    assert.equal(sample(text, 'rhizome_rpc_requests_total{protocol="/rhizome/n/task/1.0.0",direction="sent"}'), 6)
    assert.equal(sample(text, 'rhizome_rpc_errors_total{protocol="/rhizome/n/task/1.0.0",direction="served"}'), 1)
    assert.equal(typeOf(text, 'rhizome_rpc_errors_total'), 'counter')
    metrics.close()
  })

  test('error classes follow the HTTP status of the code', () => {
    assert.equal(errorClassOf('ERR_FUNCTION_THREW'), 'function')
    assert.equal(errorClassOf('ERR_TIMEOUT'), 'timeout')
    assert.equal(errorClassOf('ERR_PEER_BUSY'), 'busy')
    assert.equal(errorClassOf('ERR_INVALID_INPUT'), 'request')
    assert.equal(errorClassOf('ERR_INTERNAL'), 'internal')
  })
})
