// The simulator's generic pieces on their own: the network (point-to-point, broadcast, delay,
// loss, duplication, partitions, deliveries to a dead life), the host loop (timers from
// nextTimeoutMs, clock skew, crash and restart), storage across a crash, and fault plans.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  createRandom, drawFaultPlan, drawStartPlan, faultPlanProblem, scheduleFaults, SimHosts, SimNetwork, simPeerIds, SimStorage, SimWorld
} from '../../src/sim/index.ts'
import type { MachineAdapter, SimNode } from '../../src/sim/index.ts'

/** A machine that records what it is given and asks for a timeout every `everyMs` of its clock. */
interface Recorder { received: Array<{ from: number, message: string, nowMs: number }>, timeouts: number[], nextMs: number, everyMs: number }

function recorderHosts (world: SimWorld, nodes: number, options: { everyMs?: number, skewsMs?: number[] } = {}): SimHosts<Recorder, string, never> {
  const adapter: MachineAdapter<Recorder, string, never> = {
    start: (node) => ({ received: [], timeouts: [], nextMs: options.everyMs === undefined ? Infinity : world.nowMs + node.skewMs + options.everyMs, everyMs: options.everyMs ?? 0 }),
    handleMessage: (r, _node, from, message, nowMs) => { r.received.push({ from, message, nowMs }) },
    handleTimeout: (r, _node, nowMs) => { r.timeouts.push(nowMs); r.nextMs = r.everyMs > 0 ? nowMs + r.everyMs : Infinity },
    poll: () => undefined,
    nextTimeoutMs: (r) => r.nextMs,
    output: () => {}
  }
  return new SimHosts(world, simPeerIds(createRandom(1), nodes), options.skewsMs ?? Array<number>(nodes).fill(0), adapter)
}

function runAll (world: SimWorld, endMs = 1_000_000): void {
  world.run({ endMs, checkTimesMs: [], check: () => {}, simEventsMax: 1_000_000 })
}

describe('simulated network', () => {
  function setup (nodes: number, rates = { lossRate: 0, duplicateRate: 0 }) {
    const world = new SimWorld()
    const hosts = recorderHosts(world, nodes)
    for (let i = 0; i < nodes; i++) hosts.start(i)
    const net = new SimNetwork<string>(world, hosts.nodes, createRandom(7), { delayMinMs: 1, delayMaxMs: 50, ...rates }, (to, from, m) => hosts.deliver(to, from, m))
    const got = (i: number): Recorder => hosts.nodes[i].machine as Recorder
    return { world, hosts, net, got }
  }

  it('delivers point-to-point messages after a delay in [min, max], reordered', () => {
    const { world, net, got } = setup(2)
    for (let i = 0; i < 200; i++) net.send(0, 1, String(i))
    runAll(world)
    const received = got(1).received
    assert.equal(received.length, 200)
    assert.ok(received.every(r => r.from === 0 && r.nowMs >= 1 && r.nowMs <= 50))
    assert.notDeepEqual(received.map(r => r.message), Array.from({ length: 200 }, (_, i) => String(i)))
    assert.deepEqual(net.stats, { published: 0, sent: 200, delivered: 200, lost: 0, partitioned: 0, duplicated: 0, droppedAtDownPeer: 0, unreachable: 0 })
  })

  it('broadcasts to every other running node, not to itself or a down one', () => {
    const { world, hosts, net, got } = setup(4)
    hosts.crash(3, undefined)
    net.broadcast(1, 'hello')
    runAll(world)
    assert.deepEqual([0, 1, 2].map(i => got(i).received.length), [1, 0, 1])
    assert.equal(net.stats.delivered, 2)
  })

  it('a send to a down node is unreachable and draws nothing from the seed', () => {
    const { world, hosts, net } = setup(3)
    hosts.crash(2, undefined)
    const before = net.stats.sent
    net.send(0, 2, 'x')
    assert.equal(net.stats.unreachable, 1)
    assert.equal(net.stats.sent, before + 1)
    assert.equal(world.queue.size, 0)
  })

  it('drops a message in flight to a node that crashed and restarted before it arrived', () => {
    const { world, hosts, net, got } = setup(2)
    net.send(0, 1, 'to the old life')
    hosts.crash(1, 0) // restarts at once: a new life
    runAll(world)
    assert.deepEqual(got(1).received, [])
    assert.equal(net.stats.droppedAtDownPeer, 1)
  })

  it('loses and duplicates only in the fault window', () => {
    const { world, net, got } = setup(2, { lossRate: 0.5, duplicateRate: 0.5 })
    for (let i = 0; i < 100; i++) net.send(0, 1, 'calm')
    net.setFaultsActive(true)
    for (let i = 0; i < 1000; i++) net.send(0, 1, 'storm')
    net.setFaultsActive(false)
    runAll(world)
    const calm = got(1).received.filter(r => r.message === 'calm').length
    const storm = got(1).received.filter(r => r.message === 'storm').length
    assert.equal(calm, 100)
    assert.ok(net.stats.lost > 400 && net.stats.lost < 600, `lost ${net.stats.lost}`)
    assert.equal(storm, 1000 - net.stats.lost + net.stats.duplicated)
    assert.ok(net.stats.duplicated > 150, `duplicated ${net.stats.duplicated}`)
  })

  it('partitions drop messages between sides, not within one, until healed', () => {
    const { world, net, got } = setup(4)
    net.partition(0, [0, 0, 1, 1])
    net.send(0, 1, 'same side')
    net.send(0, 2, 'across')
    net.broadcast(3, 'from side 1')
    assert.equal(net.stats.partitioned, 3) // 0→2, 3→0, 3→1
    net.heal(0)
    net.send(0, 2, 'healed')
    runAll(world)
    assert.deepEqual(got(1).received.map(r => r.message), ['same side'])
    assert.deepEqual(got(2).received.map(r => r.message).sort(), ['from side 1', 'healed'])
  })
})

describe('simulated hosts and storage', () => {
  it('arms one timer from nextTimeoutMs, in the node\'s own clock', () => {
    const world = new SimWorld()
    const hosts = recorderHosts(world, 2, { everyMs: 100, skewsMs: [0, 1000] })
    hosts.scheduleStarts([0, 50])
    runAll(world, 1000)
    assert.deepEqual((hosts.nodes[0].machine as Recorder).timeouts.slice(0, 3), [100, 200, 300])
    // Node 1 started at sim 50, local 1050: its timeouts are at local 1150, 1250 … (sim 150, 250 …).
    assert.deepEqual((hosts.nodes[1].machine as Recorder).timeouts.slice(0, 2), [1150, 1250])
  })

  it('a clock step re-arms the timer in the new time, and the machine\'s clock never runs back', () => {
    const world = new SimWorld()
    const hosts = recorderHosts(world, 1, { everyMs: 100 })
    hosts.start(0)
    let peekedMs = 0
    world.at(150, () => { hosts.stepClock(0, -80); peekedMs = hosts.peekLocalMs(hosts.nodes[0]) })
    runAll(world, 400)
    const node = hosts.nodes[0]
    // 100 at sim 100; after the step at 150 (local 70) the next (local 200) is at sim 280, then 300 at 380.
    assert.deepEqual((node.machine as Recorder).timeouts, [100, 200, 300])
    assert.equal(peekedMs, 100) // local 70, but the machine was already shown 100
    assert.equal(world.nowMs, 380)
  })

  it('feeds a scenario\'s own input with the local time, then re-arms the timer', () => {
    const world = new SimWorld()
    const hosts = recorderHosts(world, 1, { skewsMs: [500] })
    hosts.start(0)
    world.at(20, () => hosts.feed(0, (r, nowMs) => { r.received.push({ from: -1, message: 'input', nowMs }); r.nextMs = nowMs + 5 }))
    runAll(world)
    const r = hosts.nodes[0].machine as Recorder
    assert.deepEqual(r.received, [{ from: -1, message: 'input', nowMs: 520 }])
    assert.deepEqual(r.timeouts, [525])
  })

  it('no timer while nextTimeoutMs() is Infinity', () => {
    const world = new SimWorld()
    const hosts = recorderHosts(world, 1)
    hosts.start(0)
    runAll(world)
    assert.equal(world.simEvents, 0)
  })

  it('reports a machine whose timeout is not in the future, and keeps time moving', () => {
    const world = new SimWorld()
    const adapter: MachineAdapter<null, never, never> = {
      start: () => null, handleMessage: () => {}, handleTimeout: () => {}, poll: () => undefined, nextTimeoutMs: () => 0, output: () => {}
    }
    const hosts = new SimHosts(world, simPeerIds(createRandom(1), 1), [0], adapter)
    hosts.start(0)
    runAll(world, 5)
    assert.equal(world.violationCount, 6) // at 0, 1, 2, 3, 4, 5
    assert.match(world.violations[0], /not in the future/)
  })

  it('a crash loses the machine and its timer, keeps storage; a restart reads it back', () => {
    const world = new SimWorld(100)
    const lives: Array<{ life: number, seen: number | undefined }> = []
    const adapter: MachineAdapter<{ count: number }, never, never> = {
      start: (node: SimNode<{ count: number }>) => {
        const seen = node.storage.getNumber('count')
        lives.push({ life: node.life, seen })
        node.storage.putNumber('count', (seen ?? 0) + 10)
        return { count: 0 }
      },
      handleMessage: () => {},
      handleTimeout: (m) => { m.count += 1 },
      poll: () => undefined,
      nextTimeoutMs: (m) => m.count < 3 ? world.nowMs + 1 : Infinity,
      output: () => {}
    }
    const hosts = new SimHosts(world, simPeerIds(createRandom(1), 1), [0], adapter)
    hosts.start(0)
    world.at(1, () => hosts.crash(0, 5))
    runAll(world)
    assert.deepEqual(lives, [{ life: 1, seen: undefined }, { life: 3, seen: 10 }])
    assert.equal(hosts.nodes[0].storage.getNumber('count'), 20)
    assert.equal((hosts.nodes[0].machine as { count: number }).count, 3) // the new life counted afresh
    assert.deepEqual(world.trace.keptLines.filter(l => !/^\d+ clock/.test(l)), ['0 start 0', '1 crash 0', '5 start 0'])
  })

  it('storage copies bytes in and out', () => {
    const storage = new SimStorage()
    const value = new Uint8Array([1, 2, 3])
    storage.put('k', value)
    value[0] = 9
    const read = storage.get('k') as Uint8Array
    assert.deepEqual([...read], [1, 2, 3])
    read[1] = 9
    assert.deepEqual([...(storage.get('k') as Uint8Array)], [1, 2, 3])
    assert.equal(storage.writes, 1)
    assert.equal(storage.bytesWritten, 3)
    assert.throws(() => storage.putNumber('n', 0.5), /safe integers/)
  })
})

describe('fault plans', () => {
  it('draws within the window and passes its own checks', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rng = createRandom(seed)
      const shape = { nodes: 10 }
      const starts = drawStartPlan(rng, shape)
      const plan = drawFaultPlan(rng, shape, starts)
      assert.equal(faultPlanProblem({ ...starts, ...plan }, 10), undefined)
      assert.ok(plan.faultsEndMs > Math.max(...starts.startTimesMs))
    }
  })

  it('refuses a plan that faults after T', () => {
    const rng = createRandom(1)
    const starts = drawStartPlan(rng, { nodes: 3 })
    const plan = drawFaultPlan(rng, { nodes: 3 }, starts)
    assert.match(faultPlanProblem({ ...starts, ...plan, crashes: [{ atMs: plan.faultsEndMs, node: 0 }] }, 3) ?? '', /before faultsEndMs/)
    assert.match(faultPlanProblem({ ...starts, ...plan, crashes: [{ atMs: 0, node: 3 }] }, 3) ?? '', /unknown node 3/)
    assert.match(faultPlanProblem({ ...starts, ...plan, partitions: [{ atMs: 0, untilMs: plan.faultsEndMs + 1, sideOf: [0, 1, 0] }] }, 3) ?? '', /heal by faultsEndMs/)
  })

  it('schedules the window: partitions heal and loss stops at T', () => {
    const world = new SimWorld(100)
    const hosts = recorderHosts(world, 2)
    const net = new SimNetwork<string>(world, hosts.nodes, createRandom(2), { delayMinMs: 1, delayMaxMs: 1, lossRate: 1, duplicateRate: 0 }, (to, from, m) => hosts.deliver(to, from, m))
    hosts.scheduleStarts([0, 0])
    const plan = { faultsStartMs: 10, faultsEndMs: 100, lossRate: 1, duplicateRate: 0, crashes: [], skewSteps: [], partitions: [{ atMs: 20, untilMs: 100, sideOf: [0, 1] }] }
    scheduleFaults(world, plan, { hosts, network: net })
    for (const t of [5, 15, 50, 100, 150]) world.at(t, () => net.send(0, 1, String(t)))
    runAll(world)
    assert.deepEqual((hosts.nodes[1].machine as Recorder).received.map(r => r.message), ['5', '100', '150'])
    assert.deepEqual({ lost: net.stats.lost, partitioned: net.stats.partitioned }, { lost: 1, partitioned: 1 })
    assert.deepEqual(world.trace.keptLines.filter(l => !/start/.test(l)), ['20 partition 0', '100 heal 0', '100 faults-end'])
  })
})
