import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHomeRun, RESULT_ENTRY_ID } from '../../../src/protocol/home/index.ts'
import type { HomeOutput, HomeRun, HomeMessage, HomeRunOptions } from '../../../src/protocol/home/index.ts'

/** Three home-set peers on a lossless in-order network with one clock; `down` peers neither send nor receive. */
class Cluster {
  readonly peers = ['pa', 'pb', 'pc']
  readonly machines = new Map<string, HomeRun>()
  readonly outputs = new Map<string, HomeOutput[]>()
  /** Dead: no timers, no messages. */
  readonly down = new Set<string>()
  /** Partitioned: timers run, messages to and from it are lost. */
  readonly cut = new Set<string>()
  /** Messages this returns true for are lost. */
  drop: (from: string, to: string, message: HomeMessage) => boolean = () => false
  private readonly queue: Array<{ from: string, to: string, message: HomeMessage }> = []
  now = 1000

  constructor (options: Partial<HomeRunOptions> = {}) {
    for (const p of this.peers) {
      this.outputs.set(p, [])
      this.machines.set(p, createHomeRun({ selfId: p, runId: 'run-1', homeSet: this.peers, ...options }, this.now))
      this.drain(p)
    }
  }

  drain (peer: string): void {
    const m = this.machines.get(peer)!
    for (let o = m.poll(); o !== undefined; o = m.poll()) {
      this.outputs.get(peer)!.push(o)
      if (o.type === 'send' && !this.down.has(peer)) this.queue.push({ from: peer, to: o.to, message: o.message })
      if (o.type === 'add-member' && !this.machines.has(o.peer)) {
        // The shell sends the newcomer the run's spec; it starts a machine with the new home set.
        this.peers.push(o.peer)
        this.outputs.set(o.peer, [])
        this.machines.set(o.peer, createHomeRun({ selfId: o.peer, runId: 'run-1', homeSet: o.homeSet }, this.now))
        this.drain(o.peer)
      }
    }
  }

  deliverAll (): void {
    for (let i = 0; i < 10_000 && this.queue.length > 0; i++) {
      const { from, to, message } = this.queue.shift()!
      if (this.down.has(to) || this.down.has(from) || this.cut.has(to) || this.cut.has(from) || this.drop(from, to, message)) continue
      this.machines.get(to)!.handleMessage(from, message, this.now)
      this.drain(to)
    }
  }

  /** Advance time in 10 ms steps, firing timers and delivering messages. */
  run (ms: number): void {
    for (const end = this.now + ms; this.now < end;) {
      this.now += 10
      for (const p of this.peers) {
        if (this.down.has(p)) continue
        const m = this.machines.get(p)!
        if (m.nextTimeoutMs() <= this.now) { m.handleTimeout(this.now); this.drain(p) }
      }
      this.deliverAll()
    }
  }

  of (peer: string, type: HomeOutput['type']): HomeOutput[] {
    return this.outputs.get(peer)!.filter(o => o.type === type)
  }

  driver (): string | undefined {
    return this.peers.find(p => !this.down.has(p) && !this.cut.has(p) && this.machines.get(p)!.role() === 'driving')
  }
}

const value = (n: number) => ({ cid: `bafy-result-${n}`, peer: 'worker' })

test('a new run is driven by one peer; an entry is delivered only once a majority persisted it', () => {
  const c = new Cluster()
  c.run(100)
  const d = c.driver()
  assert.ok(d !== undefined, 'someone drives within a round trip')
  assert.deepEqual((c.of(d, 'drive')[0] as { memo: unknown[] }).memo, [])
  assert.equal(c.machines.get(d)!.handleLocalEntry({ id: 'task-1', value: value(1) }, c.now), true)
  c.drain(d)
  assert.equal(c.of(d, 'deliver').length, 0, 'not delivered before the replicas answered')
  c.deliverAll()
  assert.deepEqual(c.of(d, 'deliver').map(o => (o as { id: string }).id), ['task-1'])
  const holders = c.peers.filter(p => c.machines.get(p)!.memo().some(e => e.id === 'task-1'))
  assert.ok(holders.length >= 2)
})

test('entries handed over together cost one persist on each peer and one append and one ack per other peer', () => {
  const c = new Cluster()
  c.run(100)
  const d = c.driver()!
  const m = c.machines.get(d)!
  for (const p of c.peers) c.outputs.set(p, [])
  assert.equal(m.takesEntries(), true)
  assert.equal(m.handleLocalEntries([1, 2, 3, 4].map(n => ({ id: `task-${n}`, value: value(n) })), c.now), true)
  c.drain(d)
  c.deliverAll()
  assert.deepEqual(c.of(d, 'deliver').map(o => (o as { id: string }).id), ['task-1', 'task-2', 'task-3', 'task-4'])
  for (const p of c.peers) assert.equal(c.of(p, 'persist-memo').length, 1, `${p} persists the four in one write`)
  const memoSends = c.peers.flatMap(p => c.outputs.get(p)!).filter(o => o.type === 'send' && (o.message.type === 'append' || o.message.type === 'ack'))
  assert.equal(memoSends.length, 4, 'one append to and one ack from each other peer')
  // A replay asking again for durable entries: delivered at once, nothing sent.
  c.outputs.set(d, [])
  m.handleLocalEntries([{ id: 'task-2', value: value(2) }], c.now)
  c.drain(d)
  assert.deepEqual(c.of(d, 'deliver').map(o => (o as { id: string }).id), ['task-2'])
  assert.equal(c.of(d, 'send').length, 0)
  // A peer that does not drive takes none.
  const other = c.peers.find(p => p !== d)!
  assert.equal(c.machines.get(other)!.takesEntries(), false)
  assert.equal(c.machines.get(other)!.handleLocalEntries([{ id: 'x', value: value(9) }], c.now), false)
})

test('the driver dies: another peer takes over with a higher epoch and the memo, then the outcome settles everyone', () => {
  const c = new Cluster()
  c.run(100)
  const first = c.driver()!
  c.machines.get(first)!.handleLocalEntry({ id: 'task-1', value: value(1) }, c.now)
  c.drain(first)
  c.deliverAll()
  c.down.add(first)
  c.run(3000)
  const second = c.driver()
  assert.ok(second !== undefined && second !== first, 'a live peer took over')
  const drive = c.of(second, 'drive').at(-1) as { epoch: number, memo: Array<{ id: string }> }
  assert.ok(drive.epoch > 1)
  assert.deepEqual(drive.memo.map(e => e.id), ['task-1'], 'the new driver starts from the memo')
  c.machines.get(second)!.handleLocalEntry({ id: RESULT_ENTRY_ID, value: value(99) }, c.now)
  c.drain(second)
  c.run(100)
  assert.deepEqual(c.of(second, 'deliver').map(o => (o as { id: string }).id), [RESULT_ENTRY_ID])
  const live = c.peers.filter(p => p !== first)
  for (const p of live) assert.equal(c.machines.get(p)!.role(), 'settled')
  // The old driver comes back: it learns the outcome instead of driving again.
  c.down.delete(first)
  c.run(5000)
  assert.equal(c.machines.get(first)!.role(), 'settled')
  assert.equal(c.of(first, 'drive').length, 1, 'the old driver never drove again')
  for (const p of c.peers) assert.ok(c.machines.get(p)!.nextTimeoutMs() === Infinity || c.machines.get(p)!.role() === 'settled')
})

test('a stale driver is fenced: its entries are never delivered after a newer epoch took over', () => {
  const c = new Cluster()
  c.run(100)
  const first = c.driver()!
  // Cut the driver off (partition): it keeps its machine but nothing it sends arrives.
  c.cut.add(first)
  c.run(3000)
  const second = c.driver()!
  assert.notEqual(second, first)
  // The old driver's lease ran out while partitioned: it stopped itself, and refuses new entries.
  assert.ok(c.of(first, 'stop').length >= 1)
  assert.notEqual(c.machines.get(first)!.role(), 'driving')
  assert.equal(c.machines.get(first)!.handleLocalEntry({ id: 'late', value: value(7) }, c.now), false)
  c.cut.delete(first)
  c.run(500)
  assert.equal(c.of(first, 'deliver').filter(o => (o as { id: string }).id === 'late').length, 0)
})

test('a minority peer that asked for the lease with ever higher epochs while cut off does not stall the driver the majority keeps', () => {
  const c = new Cluster()
  c.run(100)
  const driver = c.driver()!
  const loner = c.peers.find(p => p !== driver)!
  // Alone, the loner's lease times out and it asks again and again, each time with a higher
  // epoch that nobody grants. The driver keeps renewing with the third peer.
  c.cut.add(loner)
  c.run(5000)
  assert.equal(c.driver(), driver, 'the majority side keeps its driver')
  c.cut.delete(loner)
  c.run(2000)
  // The loner refuses the driver's renewals as stale (it has seen its own higher epoch), but the
  // driver's lease is renewed by the majority: it must still be able to make entries durable.
  const d = c.driver()
  assert.ok(d !== undefined, 'someone drives after the heal')
  assert.equal(c.machines.get(d)!.handleLocalEntry({ id: 'task-after-heal', value: value(5) }, c.now), true)
  c.drain(d)
  c.run(2000)
  assert.deepEqual(c.of(d, 'deliver').map(o => (o as { id: string }).id).filter(id => id === 'task-after-heal'), ['task-after-heal'])
})

test('an entry a replica persisted, whose acks were all lost until the driver gave the replica up, still becomes durable', () => {
  const c = new Cluster({ memo: { resendMs: 100, resendMaxMs: 200, attemptsMax: 3, probeIntervalMs: 500 } })
  c.run(100)
  const d = c.driver()!
  const [holder, other] = c.peers.filter(p => p !== d)
  // The third replica is away: the entry needs the holder's ack for a majority.
  c.cut.add(other)
  // Everything the holder's replica says is lost (its lease grants still arrive: the driver keeps its lease).
  c.drop = (from, _to, m) => from === holder && !m.type.startsWith('lease')
  assert.equal(c.machines.get(d)!.handleLocalEntry({ id: 'task-acks-lost', value: value(3) }, c.now), true)
  c.drain(d)
  c.run(1000)
  assert.ok(c.machines.get(holder)!.memo().some(e => e.id === 'task-acks-lost'), 'the holder persisted it')
  assert.equal(c.of(d, 'deliver').length, 0, 'no answer came back')
  // The network is fine again; the holder's probe replies now say it holds exactly the driver's memo.
  c.drop = () => false
  c.run(3000)
  assert.equal(c.driver(), d)
  assert.deepEqual(c.of(d, 'deliver').map(o => (o as { id: string }).id), ['task-acks-lost'])
})

test('a home-set peer gone for good is replaced by the driver; the newcomer gets the memo and the run survives the driver too', () => {
  const c = new Cluster()
  c.run(100)
  const first = c.driver()!
  const d = c.machines.get(first)!
  for (let i = 0; i < 5; i++) d.handleLocalEntry({ id: `task-${i}`, value: value(i) }, c.now)
  c.drain(first)
  c.run(100)
  const lost = c.peers.find(p => p !== first)!
  c.down.add(lost)
  c.run(200)
  // Only the driver repairs; a follower asked to does nothing.
  const follower = c.peers.find(p => p !== first && p !== lost)!
  assert.equal(c.machines.get(follower)!.handlePeersGone([lost], ['pd'], c.now), false)
  assert.equal(d.handlePeersGone([lost], ['pd', 'pe'], c.now), true)
  c.drain(first)
  const next = d.homeSet()
  assert.ok(!next.includes(lost) && next.length === 3, `the gone peer was replaced: ${next.join(',')}`)
  const added = next.find(p => p !== first && p !== follower)!
  c.run(500)
  assert.deepEqual(c.machines.get(follower)!.homeSet(), next, 'the follower took the new home set')
  assert.deepEqual(c.machines.get(added)!.memo().map(e => e.id), ['task-0', 'task-1', 'task-2', 'task-3', 'task-4'], 'the newcomer copied the memo')
  assert.ok(c.of(follower, 'persist-home-set').length === 1)
  // Now the driver dies too: the follower and the newcomer are a majority of the new set.
  c.down.add(first)
  c.run(3000)
  const second = c.driver()
  assert.ok(second !== undefined && second !== first && second !== lost, 'a peer of the new set took over')
  const drive = c.of(second, 'drive').at(-1) as { memo: Array<{ id: string }> }
  assert.equal(drive.memo.length, 5, 'from the whole memo')
})

test('a home-set change from a peer that does not hold the lease is refused', () => {
  const c = new Cluster()
  c.run(100)
  const driver = c.driver()!
  const other = c.peers.find(p => p !== driver)!
  const third = c.peers.find(p => p !== driver && p !== other)!
  const m = c.machines.get(third)!
  const epoch = (c.of(driver, 'drive')[0] as { epoch: number }).epoch
  assert.equal(m.handleMessage(other, { type: 'home-set', epoch, homeSet: [other, third, 'px'] }, c.now), 'refused')
  assert.deepEqual(m.homeSet(), c.peers.slice(0, 3))
})
