/**
 * Running recorded workflow graphs (bench/workloads/graph.ts) on real peers through the HTTP API:
 * deploy the generated function module with the CLI (as a user would), deploy a generated
 * workflow bundle as `rhizome run` writes it, start a run, follow it to its end and read its
 * report. Shared by test/integration/wfinstances.test.ts and bench/workflows.bench.ts.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { createManifest, encodeManifest } from '../../src/functions/index.ts'
import { functionModuleSource } from '../../bench/workloads/graph.ts'
import { followRunEvents, runCli } from './peers.ts'
import type { RunReport } from '../../src/api/types.ts'
import type { TestPeer } from './peers.ts'

/** Longest a deploy may take (a bundle, a manifest, replication to the other peers). */
const DEPLOY_TIMEOUT_MS = 60_000

export * from '../../bench/workloads/graph.ts'

/** Deploy the `task` function module (with `rhizome deploy`, replicated to `replicas` peers); its id. */
export async function deployTaskFunction (peer: TestPeer, iterationsPerMs: number, replicas: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rhizome-workload-'))
  try {
    const file = join(dir, 'graph-task.js')
    await writeFile(file, functionModuleSource(iterationsPerMs))
    // The default sandbox limits hold: the longest recorded task, at 1 s → 1 ms, burns under 3 s.
    const deployed = await runCli(['deploy', file, '--replicas', String(replicas), '--json', '--data-dir', peer.dataDir], { timeoutMs: DEPLOY_TIMEOUT_MS })
    if (deployed.code !== 0) throw new Error(`rhizome deploy failed (${String(deployed.code)}): ${deployed.stderr}`)
    return (JSON.parse(deployed.stdout) as { cid: string }).cid
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Deploy a workflow bundle's source (the way `rhizome run` does); its workflow id. */
export async function deployWorkflow (peer: TestPeer, name: string, source: string, exports: string[]): Promise<string> {
  const code = new TextEncoder().encode(source)
  const manifest = encodeManifest(await createManifest({ name, kind: 'js', code, exports }))
  const res = await fetch(`${peer.apiUrl}/v1/functions`, {
    method: 'POST',
    headers: peer.authorized(),
    body: dagCbor.encode({ manifest, code, replicas: 1 }) as BodyInit,
    signal: AbortSignal.timeout(DEPLOY_TIMEOUT_MS)
  })
  if (res.status !== 200) throw new Error(`deploying the workflow ${name}: HTTP ${res.status} ${await res.text()}`)
  return (await res.json() as { cid: string }).cid
}

export async function startRun (peer: TestPeer, workflow: string, exportName: string, args: unknown[]): Promise<string> {
  return (await peer.api<{ runId: string }>('/v1/runs', { method: 'POST', body: JSON.stringify({ workflow, export: exportName, args }) })).runId
}

/**
 * Follow a run's event stream until it ends (`run:finished`), or until `timeoutMs`; then its
 * report. Events are counted, not kept: a run of thousands of tasks sends tens of thousands.
 */
export async function runToEnd (peer: TestPeer, runId: string, timeoutMs: number): Promise<{ report: RunReport, events: Map<string, number> }> {
  const events = new Map<string, number>()
  await followRunEvents(peer, runId, timeoutMs, (event) => { events.set(event.type, (events.get(event.type) ?? 0) + 1) })
  const report = await peer.api<RunReport>(`/v1/runs/${runId}`)
  return { report, events }
}
