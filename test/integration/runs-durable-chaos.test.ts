/**
 * Durable runs under churn, on real peers: the run of runs-durable.test.ts (two dependent layers
 * of 150 tasks, here of ~50 ms) while a chaos loop kills a peer with SIGKILL every 2 s and restarts it
 * on the same data dir, so it comes back with its identity and its home-set state. One peer is
 * down at a time, and the next is killed only once the restarted one is back in the network: at
 * most one of the run's home set of 3 is ever down, a minority. Peers are picked at random (the
 * seed is printed and RHIZOME_CHAOS_SEED replays it), each round of five kills taking each peer
 * once; the first round takes the run's home set first, so each of its peers (the driver too)
 * is killed and restarted while the run runs. The run completes with the value the workflow
 * computes without faults, and every peer of its home set ends with that same result.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { TestNetwork, runCli, waitFor } from '../helpers/peers.ts'
import { durableNetwork } from '../helpers/durable.ts'
import type { RunReport } from '../../src/api/types.ts'
import type { TestPeer } from '../helpers/peers.ts'

const PEERS = 5
/** The run's home set: the peer that opens it and two more (HOME_SET_SIZE_DEFAULT). */
const HOME_SET = 3
/**
 * Tasks per layer: 2 × 150 = 300 tasks of ~100 ms. Long enough that the run outlasts several kills
 * on 2 cores (~15 s of CPU at the least): with tasks of 20 ms, and later of 50 ms, once tasks got cheaper, the run
 * could end after a single kill and the churn this test is about would not happen.
 */
const WIDTH = 150
const TASK_MS = 100
/** A kill every 2 s (or as soon as the last one is back, if that takes longer): several takeovers while the run lasts. */
const CHAOS_INTERVAL_MS = 2_000
/** Bound on the whole run under churn; a run that does not finish within it fails the test. */
const RUN_TIMEOUT_MS = 150_000
/** Bound on a restarted peer seeing every other peer alive again. */
const REJOIN_TIMEOUT_MS = 20_000

/** What the workflow `layers` computes, evaluated here with `work(x) = 2x`: the fault-free value. */
function faultFree (n: number): number {
  const work = (x: number): number => 2 * x
  const first = Array.from({ length: n }, (_, i) => work(i))
  const second = first.map((a, i) => work(a + first[(i + 1) % n]))
  return second.reduce((s, x) => s + x, 0)
}

/** A small seeded generator (mulberry32), so a failing schedule of kills can be replayed. */
function seeded (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/** The report of `runId` on `peer`, or undefined where the peer is down or does not know the run. */
async function reportOn (peer: TestPeer, runId: string): Promise<RunReport | undefined> {
  try {
    const res = await fetch(`${peer.apiUrl}/v1/runs/${runId}`, { headers: peer.authorized(), signal: AbortSignal.timeout(5_000) })
    if (res.status !== 200) { await res.arrayBuffer(); return undefined }
    return await res.json() as RunReport
  } catch {
    return undefined // killed, or restarting
  }
}

function ended (report: RunReport | undefined): boolean {
  return report !== undefined && report.status !== 'running' && report.status !== 'created'
}

/** "task done" lines of a peer's log: one per task it executed. */
function tasksDone (log: string): string[] {
  return log.split('\n').filter(line => line.includes('"msg":"task done"')).map(line => (JSON.parse(line) as { task: string }).task)
}

interface Kill { peer: string, inHomeSet: boolean, atMs: number }

/**
 * Kill a peer every CHAOS_INTERVAL_MS and restart it on its data dir, until `stop()` says so.
 * A peer's log is kept across its restarts in `logs` (a restart starts its capture afresh).
 */
class Chaos {
  readonly kills: Kill[] = []
  readonly logs = new Map<TestPeer, string>()
  private stopped = false
  private readonly done: Promise<void>
  private readonly peers: TestPeer[]
  private readonly homeSet: Set<TestPeer>
  private readonly random: () => number

  constructor (peers: TestPeer[], homeSet: Set<TestPeer>, random: () => number) {
    this.peers = peers
    this.homeSet = homeSet
    this.random = random
    this.done = this.loop()
  }

  async stop (): Promise<void> {
    this.stopped = true
    await this.done
  }

  private async loop (): Promise<void> {
    // The first round takes the home set first, in random order (the driver among them), then
    // the others; later rounds are wholly random.
    let order = [...this.shuffled().filter(p => this.homeSet.has(p)), ...this.shuffled().filter(p => !this.homeSet.has(p))]
    let nextKillMs = Date.now() + CHAOS_INTERVAL_MS
    while (!this.stopped) {
      await sleep(Math.max(0, nextKillMs - Date.now()))
      if (this.stopped) break
      nextKillMs = Date.now() + CHAOS_INTERVAL_MS
      if (order.length === 0) order = this.shuffled()
      await this.killAndRestart(order.shift()!)
    }
  }

  /** The peers in a random order. */
  private shuffled (): TestPeer[] {
    const order = [...this.peers]
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1))
      ;[order[i], order[j]] = [order[j], order[i]]
    }
    return order
  }

  private async killAndRestart (victim: TestPeer): Promise<void> {
    await victim.stop('SIGKILL')
    this.kills.push({ peer: victim.peerId, inHomeSet: this.homeSet.has(victim), atMs: Date.now() })
    this.logs.set(victim, (this.logs.get(victim) ?? '') + victim.stdout + victim.stderr)
    // Its old listen ports are gone: it joins again through a peer that is up now.
    const through = this.peers.find(p => p !== victim)!
    const at = victim.args.indexOf('--bootstrap')
    if (at === -1) victim.args.push('--bootstrap', through.tcpAddr)
    else victim.args[at + 1] = through.tcpAddr
    const id = victim.peerId
    await victim.start()
    assert.equal(victim.peerId, id, 'a peer restarted on its data dir keeps its id')
    // Back in the network: it sees every other peer alive (the next kill waits for that).
    await waitFor(`restarted peer ${id} to see the others`, async () => {
      return (await victim.peers()).filter(x => x.state === 'alive').length >= this.peers.length - 1
    }, REJOIN_TIMEOUT_MS, 100)
  }
}

describe('a durable run while peers are killed and restarted', { timeout: 240_000 }, () => {
  let net: TestNetwork
  let peers: TestPeer[]
  let workflow: string

  before(async () => {
    ({ net, peers, workflow } = await durableNetwork(PEERS, 4))
  })
  after(async () => { await net?.close() })

  /** The peers that keep `runId` (each names itself in the run's home set): once all of its home set do. */
  async function homeSetOf (runId: string): Promise<Set<TestPeer>> {
    return await waitFor(`the ${HOME_SET} peers of run ${runId}'s home set to know it`, async () => {
      const known = new Set<TestPeer>()
      for (const peer of peers) if ((await reportOn(peer, runId))?.homeSet?.includes(peer.peerId) === true) known.add(peer)
      assert.ok(known.size <= HOME_SET, `only the home set knows the run: ${known.size} peers do`)
      return known.size === HOME_SET ? known : undefined
    }, 10_000, 50)
  }

  test(`${2 * WIDTH} tasks while a peer is killed and restarted every ${CHAOS_INTERVAL_MS} ms: the run completes with the fault-free result`, async (t) => {
    const expected = faultFree(WIDTH)
    const seed = Number(process.env.RHIZOME_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 32))
    t.diagnostic(`chaos seed ${seed} (RHIZOME_CHAOS_SEED=${seed} replays the order of kills)`)
    const opener = peers[0]
    const { runId } = await opener.api<{ runId: string }>('/v1/runs', { method: 'POST', body: JSON.stringify({ workflow, export: 'layers', args: [WIDTH, TASK_MS] }) })
    const home = await homeSetOf(runId)
    const chaos = new Chaos(peers, home, seeded(seed))
    let finished: RunReport | undefined
    try {
      await waitFor(`run ${runId} to end under churn`, async () => {
        for (const peer of home) {
          const report = await reportOn(peer, runId)
          if (ended(report)) { finished = report; return true }
        }
        return false
      }, RUN_TIMEOUT_MS, 250)
    } finally {
      await chaos.stop()
    }
    t.diagnostic(`kills during the run: ${chaos.kills.length} (${chaos.kills.filter(k => k.inHomeSet).length} of home-set peers)`)
    assert.ok(finished !== undefined)
    assert.equal(finished.status, 'finished', JSON.stringify(finished.error))
    assert.equal(finished.result, expected)
    // The churn was real: peers of the run's home set were killed and restarted while the run ran
    // (the first kills take the home set; how many fit in the run depends on the machine's speed).
    const homeKills = new Set(chaos.kills.filter(k => k.inHomeSet).map(k => k.peer))
    assert.ok(homeKills.size >= 2, `at least 2 home-set peers were killed while the run ran: ${JSON.stringify(chaos.kills)}`)

    // Every peer of the home set, restarted ones included, ends the run with the same result.
    for (const peer of home) {
      const waited = await runCli(['run-status', runId, '--wait', '--json', '--data-dir', peer.dataDir], { timeoutMs: 30_000 })
      assert.equal(waited.code, 0, `run-status --wait on ${peer.peerId}: ${waited.stderr}`)
      const report = JSON.parse(waited.stdout) as RunReport
      assert.equal(report.status, 'finished', `${peer.peerId}: ${JSON.stringify(report.error)}`)
      assert.equal(report.result, expected, `${peer.peerId} has the run's result`)
    }
    // Every distinct task of the run was executed somewhere (the wrap-around pair of the second
    // layer, 149 + 0, asks for the same task as pair 74: one id fewer).
    const executed = peers.flatMap(p => tasksDone((chaos.logs.get(p) ?? '') + p.stdout + p.stderr))
    const distinct = new Set(executed)
    t.diagnostic(`tasks executed: ${distinct.size} distinct, ${executed.length - distinct.size} executions again`)
    assert.equal(distinct.size, 2 * WIDTH - 1, 'every distinct task of the run was executed')
  })
})
