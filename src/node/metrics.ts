/**
 * The peer's Prometheus metrics, served on `GET /metrics` (text exposition format). One prom-client
 * Registry per node, never prom-client's global one, so several peers in one process (tests, the
 * simulator's shells) never mix their numbers.
 *
 * The machines and services keep no metric library. What they count is read here at scrape time:
 * `scrape()` takes one snapshot of every source (capacity, membership counts, run stats, blob
 * totals, sandbox and RPC stats) and each metric's collect callback reads from it, so a scrape
 * asks each source once — its cost is O(peers + runs + protocols), whatever work the peer did.
 * The only per-event hook is the task service's `onTaskEnd`, which feeds the task counter and the
 * duration histograms (histograms cannot be rebuilt from totals).
 *
 * Naming follows Prometheus's conventions: `rhizome_` prefix, base units (seconds, bytes) in the
 * name, `_total` on counters, histograms for durations. libp2p's own metrics
 * (@libp2p/prometheus-metrics, `libp2p_*`) and the process's (prom-client's default metrics,
 * `process_*`, `nodejs_*`) go into the same registry.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { STATUS_BY_CODE } from '../api/errors.ts'
import type { PeerState } from '../api/types.ts'
import type { Capacity } from '../model/capacity.ts'
import type { RpcProtocolStats } from '../net/rpc.ts'
import type { TaskEnd } from '../net/task-service.ts'
import type { PoolStats } from '../sandbox/isolate-pool.ts'

/**
 * Buckets of the task duration histograms, in seconds. A remote no-op task costs about a
 * millisecond end to end and a task's default time limit is a minute, so the buckets span 0.5 ms
 * to 5 minutes, about ×2.5 apart: 17 buckets × 3 histograms keeps a scrape small, and
 * histogram_quantile over them is within a bucket's width of the truth.
 */
export const TASK_SECONDS_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]

/** What the metrics read: each called once per scrape, except `onTaskEnd`, subscribed once. */
export interface MetricSources {
  peerId: string
  version: string
  networkId: string
  /** Tell `listener` of every task this peer answered as a worker; returns the unsubscribe. */
  onTaskEnd: (listener: (end: TaskEnd) => void) => () => void
  capacity: () => Capacity
  queueLengthMax: number
  /** Peers in the membership view, by state. */
  peers: () => Record<PeerState, number>
  runs: () => { byStatus: Record<string, number>, driving: number, memoEntries: number }
  /** Undefined for a store without an index. */
  blobs: () => { objects: number, bytes: number } | undefined
  sandbox: () => PoolStats
  workflows: () => { runsOpen: number }
  rpc: () => RpcProtocolStats[]
}

export interface NodeMetrics {
  readonly registry: Registry
  /** The exposition text: every metric of this node, its sources read once. */
  scrape: () => Promise<string>
  readonly contentType: string
  /** Stop listening to the task service. */
  close: () => void
}

/** The node's registry, with the process's default metrics; libp2p's are added by passing it to the host. */
export function createMetricsRegistry (): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  return registry
}

interface Snapshot {
  capacity: Capacity
  peers: Record<PeerState, number>
  runs: ReturnType<MetricSources['runs']>
  blobs: ReturnType<MetricSources['blobs']>
  sandbox: PoolStats
  workflows: { runsOpen: number }
  rpc: RpcProtocolStats[]
}

function snapshotOf (s: MetricSources): Snapshot {
  return { capacity: s.capacity(), peers: s.peers(), runs: s.runs(), blobs: s.blobs(), sandbox: s.sandbox(), workflows: s.workflows(), rpc: s.rpc() }
}

/** Register the Rhizome metrics of one node in `registry`. */
export function registerNodeMetrics (registry: Registry, sources: MetricSources): NodeMetrics {
  const state: { snapshot?: Snapshot } = {}
  // Collect callbacks run only inside registry.metrics(), which scrape() calls right after taking
  // the snapshot; one called any other way takes its own.
  const snap = (): Snapshot => state.snapshot ?? snapshotOf(sources)
  const unsubscribe = registerTaskMetrics(registry, sources)
  registerGauges(registry, sources, snap)
  registerStatCounters(registry, snap)
  return {
    registry,
    contentType: registry.contentType,
    scrape: async () => {
      state.snapshot = snapshotOf(sources)
      try {
        return await registry.metrics()
      } finally {
        // A collect outside a scrape takes its own snapshot, never this one grown old.
        state.snapshot = undefined
      }
    },
    close: unsubscribe
  }
}

/** The error class of a failed task's code: which side failed, from its HTTP status (src/api/errors.ts). */
export function errorClassOf (code: string): string {
  const status = STATUS_BY_CODE[code]
  if (status === undefined || status === 500) return 'internal'
  if (status === 422) return 'function'
  if (status === 409) return 'cancelled'
  if (status === 502) return 'peer'
  if (status === 503) return 'busy'
  if (status === 504) return 'timeout'
  return 'request'
}

/** Tasks by outcome, and the durations their replies carry. */
function registerTaskMetrics (registry: Registry, sources: MetricSources): () => void {
  const registers = [registry]
  const tasks = new Counter({ name: 'rhizome_tasks_total', help: 'Tasks this peer answered as a worker, by outcome (ok, failed, cancelled); failed ones by error code and class', labelNames: ['outcome', 'code', 'class'], registers })
  const histogram = (name: string, help: string): Histogram => new Histogram({ name, help, buckets: [...TASK_SECONDS_BUCKETS], registers })
  const queue = histogram('rhizome_task_queue_seconds', 'Time a task waited for a slot on this peer')
  const fetch = histogram('rhizome_task_fetch_seconds', 'Time a task spent loading its function and inputs on this peer, before queueing')
  const run = histogram('rhizome_task_run_seconds', 'Time a task ran in the sandbox on this peer')
  for (const outcome of ['ok', 'cancelled']) tasks.inc({ outcome, code: '', class: '' }, 0)
  return sources.onTaskEnd((end) => {
    if (end.outcome === 'failed') {
      // Codes outside the known set (a newer peer's) are one label value, so the series stay bounded.
      const code = STATUS_BY_CODE[end.code] === undefined ? 'other' : end.code
      tasks.inc({ outcome: 'failed', code, class: errorClassOf(code) })
      return
    }
    tasks.inc({ outcome: end.outcome, code: '', class: '' })
    if (end.outcome !== 'ok') return
    queue.observe(end.timings.queueMs / 1000)
    fetch.observe(end.timings.fetchMs / 1000)
    run.observe(end.timings.runMs / 1000)
  })
}

function registerGauges (registry: Registry, sources: MetricSources, snap: () => Snapshot): void {
  const registers = [registry]
  const gauge = (name: string, help: string, read: (s: Snapshot) => number | undefined): void => {
    new Gauge({ name, help, registers, collect () { const v = read(snap()); if (v !== undefined) this.set(v) } })
  }
  const info = new Gauge({ name: 'rhizome_info', help: 'This peer: always 1, its facts as labels', labelNames: ['peer_id', 'version', 'network'], registers })
  info.set({ peer_id: sources.peerId, version: sources.version, network: sources.networkId }, 1)
  gauge('rhizome_slots_used', 'Task slots running a task now', s => s.capacity.slotsMax - s.capacity.slotsFree)
  gauge('rhizome_slots_max', 'Task slots: tasks this peer runs at once', s => s.capacity.slotsMax)
  gauge('rhizome_queue_length', 'Tasks waiting for a slot', s => s.capacity.queueLength)
  gauge('rhizome_queue_length_max', 'Tasks that may wait for a slot before new ones are refused', () => sources.queueLengthMax)
  gauge('rhizome_runs_driving', 'Workflow runs this peer drives now', s => s.runs.driving)
  gauge('rhizome_memo_entries', 'Memo entries (kept results) of the runs this peer drives now', s => s.runs.memoEntries)
  gauge('rhizome_blob_store_bytes', 'Bytes of the blobs this peer stores', s => s.blobs?.bytes)
  gauge('rhizome_blob_store_objects', 'Blobs this peer stores', s => s.blobs?.objects)
  gauge('rhizome_sandbox_isolates', 'Sandbox isolates alive (running a call or kept warm)', s => s.sandbox.isolatesAlive)
  gauge('rhizome_sandbox_isolates_idle', 'Sandbox isolates kept warm for the next call', s => s.sandbox.isolatesIdle)
  gauge('rhizome_workflow_runs_open', 'Workflow runs open in the workflow sandbox', s => s.workflows.runsOpen)
  labelled(registry, 'rhizome_peers', 'Peers in the membership view, by state', 'state', s => s.peers, snap)
  labelled(registry, 'rhizome_runs', 'Workflow runs this peer recorded, by status', 'status', s => s.runs.byStatus, snap)
}

function labelled (registry: Registry, name: string, help: string, label: string, read: (s: Snapshot) => Record<string, number>, snap: () => Snapshot): void {
  new Gauge({
    name, help, labelNames: [label], registers: [registry],
    collect () {
      this.reset()
      for (const [value, count] of Object.entries(read(snap()))) this.set({ [label]: value }, count)
    }
  })
}

/** Counters kept by the services as plain numbers, set from the snapshot. */
function registerStatCounters (registry: Registry, snap: () => Snapshot): void {
  const registers = [registry]
  const counter = (name: string, help: string, read: (s: Snapshot) => number): void => {
    new Counter({ name, help, registers, collect () { this.reset(); this.inc(read(snap())) } })
  }
  counter('rhizome_sandbox_cold_starts_total', 'Sandbox calls that had to create an isolate', s => s.sandbox.coldStarts)
  counter('rhizome_sandbox_warm_hits_total', 'Sandbox calls that found a warm isolate', s => s.sandbox.warmHits)
  const rpc = (name: string, help: string, sent: keyof RpcProtocolStats, served: keyof RpcProtocolStats): void => {
    new Counter({
      name, help, labelNames: ['protocol', 'direction'], registers,
      collect () {
        this.reset()
        for (const p of snap().rpc) {
          this.inc({ protocol: p.protocol, direction: 'sent' }, p[sent] as number)
          this.inc({ protocol: p.protocol, direction: 'served' }, p[served] as number)
        }
      }
    })
  }
  rpc('rhizome_rpc_requests_total', 'RPC requests by protocol: sent by this peer, or served here', 'requestsSent', 'requestsServed')
  rpc('rhizome_rpc_errors_total', 'RPC requests by protocol that ended in an error: sent (no answer, or an error answer) or served (answered with an error)', 'requestErrors', 'serveErrors')
}
