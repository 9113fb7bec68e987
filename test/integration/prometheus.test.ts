/**
 * A real Prometheus scrapes three real peers during a run. Prometheus (the system binary, as
 * scripts/system-deps.ts installs it) is started on 127.0.0.1 with a temporary config — the
 * example docs/prometheus.yml pointed at these peers: each peer's `/metrics` every second, with the
 * peer's API token as the bearer credentials file — and its own temporary storage. After the run,
 * a PromQL query over Prometheus's HTTP API (polled until the last scrape is in, within a bounded
 * time) gives the number of tasks the peers answered, which is the number of tasks the run's
 * report lists. Every query of docs/grafana-dashboard.json is then valid PromQL to this Prometheus.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFile, mkdir, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { findSystemBinary, SYSTEM_PACKAGES } from '../../scripts/system-deps.ts'
import { createManifest, encodeManifest } from '../../src/functions/index.ts'
import { TestNetwork, runCli, runEvents, waitFor } from '../helpers/peers.ts'
import type { ChildProcess } from 'node:child_process'
import type { RunReport } from '../../src/api/types.ts'
import type { TestPeer } from '../helpers/peers.ts'

const FNS = fileURLToPath(new URL('../fixtures/runs/fns.ts', import.meta.url))
const FLOW = fileURLToPath(new URL('../fixtures/runs/flow.template.js', import.meta.url))
/** Tasks of the fan-out run: enough to spread over the three peers. */
const FAN_OUT = 24

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  assert.ok(address !== null && typeof address === 'object')
  await new Promise<void>(resolve => server.close(() => resolve()))
  return address.port
}

const EXAMPLE_CONFIG = fileURLToPath(new URL('../../docs/prometheus.yml', import.meta.url))
const DASHBOARD = fileURLToPath(new URL('../../docs/grafana-dashboard.json', import.meta.url))

/** docs/prometheus.yml itself, pointed at these peers (their API ports and token files) and scraping every second. */
async function scrapeConfig (peers: TestPeer[]): Promise<string> {
  let text = await readFile(EXAMPLE_CONFIG, 'utf8')
  for (const [i, peer] of peers.entries()) {
    const target = `'127.0.0.1:${7071 + i}'`
    const token = `../.rhizome/peer-${i + 1}/api.token`
    assert.ok(text.includes(target) && text.includes(token), `docs/prometheus.yml names ${target} and ${token}`)
    text = text.replace(target, `'${new URL(peer.apiUrl).host}'`).replace(token, join(peer.dataDir, 'api.token'))
  }
  assert.match(text, /scrape_interval: 5s/)
  return text.replace(/(scrape|evaluation)_interval: 5s/g, '$1_interval: 1s')
}

interface PromResult { metric: Record<string, string>, value: [number, string] }

describe('a real Prometheus scraping three peers during a run', { timeout: 240_000 }, () => {
  let net: TestNetwork
  let peers: TestPeer[]
  let prometheus: ChildProcess | undefined
  let promUrl = ''
  let promLog = ''

  async function query (promql: string): Promise<PromResult[]> {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(promql)}`, { signal: AbortSignal.timeout(10_000) })
    const body = await res.json() as { status: string, data: { result: PromResult[] }, error?: string }
    assert.equal(body.status, 'success', body.error)
    return body.data.result
  }

  before(async () => {
    const binary = findSystemBinary('prometheus')
    const pkg = SYSTEM_PACKAGES.find(p => p.binaries.includes('prometheus'))!.package
    assert.ok(binary !== undefined, `prometheus is not installed; install it with: apt-get update && apt-get install -y ${pkg} (npm test's pretest does, as root)`)
    net = await TestNetwork.create()
    const first = await net.addPeer(['--slots', '2'])
    const rest = await Promise.all([1, 2].map(async () => await net.addPeer(['--bootstrap', first.tcpAddr, '--slots', '2'])))
    peers = [first, ...rest]
    await waitFor('all peers to see each other', async () => {
      for (const p of peers) if ((await p.peers()).filter(x => x.state === 'alive').length < peers.length - 1) return false
      return true
    }, 60_000, 200)

    const dir = join(net.root, 'prometheus')
    await mkdir(join(dir, 'data'), { recursive: true })
    await writeFile(join(dir, 'prometheus.yml'), await scrapeConfig(peers))
    const port = await freePort()
    promUrl = `http://127.0.0.1:${port}`
    // Its own process group, so cleanup ends it and anything it started.
    prometheus = spawn(binary, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    prometheus.stdout?.on('data', (c: Buffer) => { promLog = (promLog + c.toString()).slice(-4000) })
    prometheus.stderr?.on('data', (c: Buffer) => { promLog = (promLog + c.toString()).slice(-4000) })
    await waitFor('Prometheus to be ready', async () => {
      if (prometheus?.exitCode !== null) throw new Error(`prometheus exited: ${promLog}`)
      return await fetch(`${promUrl}/-/ready`, { signal: AbortSignal.timeout(2_000) }).then(r => r.ok, () => false)
    }, 30_000, 200)
    await waitFor('Prometheus to scrape all three peers', async () => {
      const up = await query('up')
      return up.length === 3 && up.every(r => r.value[1] === '1')
    }, 30_000, 250)
  })

  after(async () => {
    if (prometheus?.pid !== undefined && prometheus.exitCode === null) {
      const exited = new Promise(resolve => prometheus?.once('exit', resolve))
      try { process.kill(-prometheus.pid, 'SIGKILL') } catch {}
      await exited
    }
    await net?.close()
  })

  test('after a run, PromQL over the scraped peers counts the tasks the run\'s report lists', async () => {
    const driver = peers[0]
    const deployed = await runCli(['deploy', FNS, '--replicas', '3', '--json', '--data-dir', driver.dataDir])
    assert.equal(deployed.code, 0, deployed.stderr)
    const fnId = (JSON.parse(deployed.stdout) as { cid: string }).cid
    const code = new TextEncoder().encode((await readFile(FLOW, 'utf8')).replaceAll('FNS', fnId))
    const manifest = encodeManifest(await createManifest({ name: 'flow', kind: 'js', code, exports: ['fanOut'] }))
    const res = await fetch(`${driver.apiUrl}/v1/functions`, { method: 'POST', headers: driver.authorized(), body: dagCbor.encode({ manifest, code, replicas: 1 }) as BodyInit, signal: AbortSignal.timeout(60_000) })
    assert.equal(res.status, 200, await res.clone().text())
    const workflow = (await res.json() as { cid: string }).cid

    const { runId } = await driver.api<{ runId: string }>('/v1/runs', { method: 'POST', body: JSON.stringify({ workflow, export: 'fanOut', args: [FAN_OUT] }) })
    const events = await runEvents(driver, runId, 120_000)
    assert.equal(events.at(-1)?.type, 'run:finished')
    const report = await driver.api<RunReport>(`/v1/runs/${runId}`)
    assert.equal(report.status, 'finished', JSON.stringify(report.error))
    assert.equal(report.tasks.length, FAN_OUT)
    const ranOn = new Set(report.tasks.map(t => t.peer))

    // Scrapes run every second: poll until the count the peers give reaches the report's, within a bound.
    let seen = -1
    try {
      await waitFor('Prometheus to hold the run\'s tasks', async () => {
        const result = await query('sum(rhizome_tasks_total{outcome="ok"})')
        seen = result.length === 0 ? 0 : Number(result[0].value[1])
        return seen >= report.tasks.length
      }, 30_000, 250)
    } catch (err) {
      assert.fail(`Prometheus counts ${seen} tasks, the report ${report.tasks.length}: ${(err as Error).message}`)
    }
    assert.equal(seen, report.tasks.length)
    const byPeer = await query('sum by (peer_id) (rhizome_tasks_total{outcome="ok"} * on (instance) group_left (peer_id) rhizome_info)')
    assert.deepEqual(new Set(byPeer.filter(r => Number(r.value[1]) > 0).map(r => r.metric.peer_id)), ranOn, 'each peer that ran a task counts it')
    assert.deepEqual((await query('sum(rhizome_tasks_total{outcome!="ok"})')).map(r => Number(r.value[1])), [0])
    const finished = await waitFor('the driver\'s finished run to be scraped', async () => {
      const result = await query(`rhizome_runs{status="finished"} * on (instance) group_left (peer_id) rhizome_info{peer_id="${driver.peerId}"}`)
      return result.length === 1 && result[0].value[1] === '1' ? result : undefined
    }, 30_000, 250)
    assert.equal(finished.length, 1)
    assert.equal((await query(`sum(rhizome_task_run_seconds_count)`))[0]?.value[1], String(report.tasks.length), 'one run-time observation per task')
  })

  test('every query of the Grafana dashboard is valid PromQL, and its task panel has data', async () => {
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: Array<{ title: string, targets: Array<{ expr: string }> }> }
    assert.ok(dashboard.panels.length >= 6)
    for (const panel of dashboard.panels) {
      for (const target of panel.targets) {
        const expr = target.expr.replaceAll('$__rate_interval', '1m').replaceAll('$peer', '.*')
        await query(expr).catch((err: Error) => { assert.fail(`${panel.title}: ${expr}: ${err.message}`) })
      }
    }
    const tasks = dashboard.panels.find(p => p.title.startsWith('Tasks/s'))
    assert.ok(tasks !== undefined)
    assert.ok((await query(tasks.targets[0].expr.replaceAll('$__rate_interval', '1m').replaceAll('$peer', '.*'))).length > 0)
  })
})
