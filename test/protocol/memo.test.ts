// Memo replication: the driver makes entries durable on a majority of the home set, retries and
// gives up within bounds, gathers after a takeover, repairs new members; replicas fence stale
// epochs, persist before acking, and merge by a rule that makes order and duplicates irrelevant.
import '../helpers/property.ts'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  createMemoDriver, createMemoReplica, MEMO_OPTIONS_DEFAULTS, MemoFullError, MemoSet
} from '../../src/protocol/memo/index.ts'
import type {
  DriverMessage, DriverOutput, MemoDriver, MemoDriverOptions, MemoEntry, MemoReplica, ReplicaMessage, ReplicaOutput
} from '../../src/protocol/memo/index.ts'

const PEERS = ['pA', 'pB', 'pC']
const v = (cid: string, peer = 'w1'): { cid: string, peer: string } => ({ cid, peer })

/** A driver and its replicas wired by hand: messages are queued and delivered only when asked. */
class Rig {
  readonly replicas = new Map<string, MemoReplica>()
  /** What each replica persisted (entries by id, and the fence). */
  readonly disk = new Map<string, { entries: Map<string, MemoEntry>, epoch: number }>()
  readonly toReplicas: Array<{ from: string, to: string, message: DriverMessage }> = []
  readonly toDriver: Array<{ from: string, message: ReplicaMessage }> = []
  readonly events: DriverOutput[] = []
  readonly replicaEvents: ReplicaOutput[] = []
  driver: MemoDriver
  now = 0

  constructor (options: Partial<MemoDriverOptions> = {}, peers = PEERS) {
    for (const p of peers) this.addReplica(p)
    this.driver = createMemoDriver({ self: 'd', epoch: 1, homeSet: peers, resendMs: 100, resendMaxMs: 400, attemptsMax: 3, probeIntervalMs: 1000, ...options })
  }

  addReplica (p: string): void {
    const stored = this.disk.get(p)
    this.replicas.set(p, createMemoReplica({ entries: stored === undefined ? [] : [...stored.entries.values()], epoch: stored?.epoch ?? 0 }))
    if (stored === undefined) this.disk.set(p, { entries: new Map(), epoch: 0 })
  }

  drainDriver (): void {
    for (let out = this.driver.poll(); out !== undefined; out = this.driver.poll()) {
      if (out.type === 'send') this.toReplicas.push({ from: 'd', to: out.to, message: out.message })
      else this.events.push(out)
    }
  }

  drainReplica (p: string): void {
    const r = this.replicas.get(p)!
    for (let out = r.poll(); out !== undefined; out = r.poll()) {
      if (out.type === 'persist') {
        const disk = this.disk.get(p)!
        for (const e of out.entries) disk.entries.set(e.id, e)
        disk.epoch = out.epoch
      } else if (out.type === 'send') this.toDriver.push({ from: p, message: out.message })
      else this.replicaEvents.push(out)
    }
  }

  local (id: string, cid: string): void {
    this.driver.handleLocalEntry({ id, value: v(cid) }, this.now)
    this.drainDriver()
  }

  tick (ms: number): void {
    this.now += ms
    this.driver.handleTimeout(this.now)
    this.drainDriver()
  }

  /** Deliver everything queued, both ways, until quiet; `drop` loses messages to/from peers. */
  settle (drop: (peer: string) => boolean = () => false, rounds = 100): void {
    for (let i = 0; i < rounds && (this.toReplicas.length > 0 || this.toDriver.length > 0); i++) {
      for (const m of this.toReplicas.splice(0)) {
        if (drop(m.to) || !this.replicas.has(m.to)) continue
        this.replicas.get(m.to)!.handleMessage(m.from, m.message, this.now)
        this.drainReplica(m.to)
      }
      for (const m of this.toDriver.splice(0)) {
        if (drop(m.from)) continue
        this.driver.handleMessage(m.from, m.message, this.now)
        this.drainDriver()
      }
    }
  }

  durable (): string[] {
    return this.events.filter(e => e.type === 'durable').map(e => (e as { id: string }).id)
  }
}

describe('memo driver: durability', () => {
  it('is durable once a majority acked, not before; the append was persisted before its ack', () => {
    const rig = new Rig()
    rig.tick(0) // first probes
    rig.settle()
    rig.local('t1', 'c1')
    assert.equal(rig.toReplicas.filter(m => m.message.type === 'append').length, 3)
    rig.settle(p => p !== 'pA') // only pA answers
    assert.deepEqual(rig.durable(), [])
    assert.ok(rig.disk.get('pA')!.entries.has('t1'))
    rig.tick(100)
    rig.settle(p => p === 'pC') // pB answers the resend: a majority
    assert.deepEqual(rig.durable(), ['t1'])
    assert.equal(rig.driver.isDurable('t1'), true)
  })

  it('counts its own peer when it is in the home set (its messages loop back to the local replica)', () => {
    const rig = new Rig({ self: 'pA' })
    rig.local('t1', 'c1')
    rig.settle(p => p === 'pC')
    assert.deepEqual(rig.durable(), ['t1'])
  })

  it('batches entries that arrive while a batch is in flight, up to batchEntriesMax', () => {
    const rig = new Rig({ batchEntriesMax: 4 })
    rig.local('t0', 'c0')
    for (let i = 1; i <= 9; i++) rig.local(`t${i}`, `c${i}`)
    const sizes: number[] = []
    const replica = rig.replicas.get('pA')!
    const real = replica.handleMessage.bind(replica)
    replica.handleMessage = (from, message, nowMs) => {
      if (message.type === 'append') sizes.push(message.entries.length)
      return real(from, message, nowMs)
    }
    assert.equal(rig.toReplicas.filter(m => m.message.type === 'append').length, 3) // one in flight per replica
    rig.settle() // ack → the nine that waited go as 4, 4, 1 (one past a full batch spills into a third)
    assert.equal(rig.durable().length, 10)
    assert.deepEqual(sizes, [1, 4, 4, 1])
  })

  it('sends entries handed over together in one append per replica (one commit, one ack), up to batchEntriesMax', () => {
    const rig = new Rig({ batchEntriesMax: 4 })
    rig.driver.handleLocalEntries(Array.from({ length: 6 }, (_, i) => ({ id: `t${i}`, value: v(`c${i}`) })), rig.now)
    rig.drainDriver()
    const appends = rig.toReplicas.filter(m => m.message.type === 'append')
    assert.equal(appends.length, 3, 'one append per replica')
    for (const m of appends) assert.equal((m.message as { entries: unknown[] }).entries.length, 4, 'as many entries as a batch holds')
    rig.settle()
    assert.equal(rig.durable().length, 6, 'the rest follow the ack')
    assert.equal(rig.driver.isDurable('t5'), true)
    // Entries the memo holds already (a replay) add nothing: no append goes out.
    rig.driver.handleLocalEntries([{ id: 't0', value: v('c0') }], rig.now)
    rig.drainDriver()
    assert.equal(rig.toReplicas.length, 0)
  })

  it('still sends what it added when a batch runs past memoEntriesMax', () => {
    const rig = new Rig({ memoEntriesMax: 2 })
    assert.throws(() => { rig.driver.handleLocalEntries([{ id: 'a', value: v('ca') }, { id: 'b', value: v('cb') }, { id: 'c', value: v('cc') }], rig.now) }, MemoFullError)
    rig.drainDriver()
    rig.settle()
    assert.deepEqual(rig.durable().sort(), ['a', 'b'])
  })

  it('resends with doubling backoff, then gives a silent replica up after attemptsMax sends, and repairs it by probe later', () => {
    const rig = new Rig()
    rig.local('t1', 'c1')
    rig.settle(p => p === 'pC') // pC is silent
    const sendsToC = (): number => rig.toReplicas.filter(m => m.to === 'pC').length
    let sent = 1
    const times: number[] = []
    for (let t = 0; t < 3000; t += 10) {
      rig.tick(10)
      const n = sendsToC()
      if (n > 0) {
        times.push(rig.now)
        sent += n
        rig.toReplicas.length = 0
      }
      if (sent === 3) break
    }
    assert.deepEqual(times, [100, 300]) // 100 ms, then 200 ms later
    rig.tick(400) // attemptsMax (3) sends went unanswered: given up, no send now
    assert.equal(sendsToC(), 0)
    rig.tick(1000) // a probe instead
    assert.deepEqual(rig.toReplicas.map(m => m.message.type), ['probe', 'probe', 'probe'])
    rig.settle() // pC answers now: digest mismatch → pull → push
    assert.ok(rig.disk.get('pC')!.entries.has('t1'))
    assert.deepEqual(rig.replicas.get('pC')!.memo(), rig.driver.memo())
  })

  it('refuses a local entry past memoEntriesMax with MemoFullError', () => {
    const rig = new Rig({ memoEntriesMax: 3 })
    for (let i = 0; i < 3; i++) rig.local(`t${i}`, `c${i}`)
    assert.throws(() => rig.local('t3', 'c3'), (err: Error) => err instanceof MemoFullError && err.name === 'MemoFullError')
  })

  it('keeps the memo\'s value when a local entry conflicts, and says so', () => {
    const rig = new Rig()
    rig.local('t1', 'c1')
    rig.local('t1', 'c1') // same: nothing
    rig.local('t1', 'c2')
    const conflicts = rig.events.filter(e => e.type === 'conflict')
    assert.equal(conflicts.length, 1)
    assert.deepEqual(rig.driver.memo().map(e => e.value.cid), ['c1'])
  })

  it('validates its options', () => {
    assert.throws(() => createMemoDriver({ self: 'd', epoch: 0, homeSet: PEERS }), /epoch/)
    assert.throws(() => createMemoDriver({ self: 'd', epoch: 1, homeSet: [] }), /homeSet/)
    assert.throws(() => createMemoDriver({ self: 'd', epoch: 1, homeSet: ['a', 'a'] }), /distinct/)
    const sizeMax = MEMO_OPTIONS_DEFAULTS.homeSetSizeMax
    createMemoDriver({ self: 'd', epoch: 1, homeSet: Array.from({ length: sizeMax }, (_, i) => `p${i}`) })
    assert.throws(() => createMemoDriver({ self: 'd', epoch: 1, homeSet: Array.from({ length: sizeMax + 1 }, (_, i) => `p${i}`) }), /homeSet/)
  })
})

describe('memo replica: fencing and input', () => {
  it('refuses an append from a stale epoch, and the stale driver learns it is fenced', () => {
    const rig = new Rig()
    for (const r of rig.replicas.values()) r.handleEpoch(2, 0)
    rig.local('t1', 'c1')
    rig.settle()
    assert.deepEqual(rig.durable(), [])
    assert.equal(rig.driver.state(), 'fenced')
    assert.deepEqual(rig.events.filter(e => e.type === 'fenced'), [{ type: 'fenced', epoch: 2 }])
    assert.equal(rig.disk.get('pA')!.entries.size, 0)
    assert.equal(rig.disk.get('pA')!.epoch, 2) // the fence itself was persisted
    assert.equal(rig.driver.nextTimeoutMs(), undefined)
  })

  it('a gather raises the fence (persisted): the deposed driver cannot make anything durable after it', () => {
    const old = new Rig()
    old.local('t1', 'c1')
    old.settle()
    const takeover = createMemoDriver({ self: 'd2', epoch: 2, homeSet: PEERS, gather: true })
    takeover.handleTimeout(0)
    for (let out = takeover.poll(); out !== undefined; out = takeover.poll()) {
      if (out.type === 'send' && out.to !== 'pC') old.replicas.get(out.to)!.handleMessage('d2', out.message, 0)
    }
    old.local('t2', 'c2')
    old.settle()
    assert.deepEqual(old.durable(), ['t1'])
    assert.equal(old.driver.state(), 'fenced')
  })

  it('ignores malformed messages and oversized batches, one past batchEntriesMax', () => {
    const r = createMemoReplica({ batchEntriesMax: 2 })
    const e = (id: string): MemoEntry => ({ id, epoch: 1, value: v('c') })
    assert.equal(r.handleAppend('d', 1, [e('a'), e('b')], 0), 'accepted')
    assert.equal(r.handleAppend('d', 1, [e('a'), e('b'), e('c')], 0), 'malformed')
    assert.equal(r.handleAppend('d', 1, [{ id: 'x'.repeat(129), epoch: 1, value: v('c') }], 0), 'malformed')
    assert.equal(r.handleAppend('d', 1, [{ id: 'x'.repeat(128), epoch: 1, value: v('c') }], 0), 'accepted')
    assert.equal(r.handleAppend('d', 1, [{ id: 'y', epoch: 2, value: v('c') }], 0), 'malformed') // stamped above its message
    assert.equal(r.handleMessage('d', { type: 'nope' } as unknown as DriverMessage, 0), 'malformed')
    assert.equal(r.handleProbe('d', 1, { count: -1, hashA: 0, hashB: 0 }, 0), 'malformed')
    assert.equal(r.memo().length, 3)
  })

  it('stores at most memoEntriesMax entries; the one past it is not acked', () => {
    const r = createMemoReplica({ memoEntriesMax: 2 })
    r.handleAppend('d', 1, ['a', 'b', 'c'].map(id => ({ id, epoch: 1, value: v('c') })), 0)
    const outs: ReplicaOutput[] = []
    for (let o = r.poll(); o !== undefined; o = r.poll()) outs.push(o)
    // The fence (0 → 1) and the entries are persisted before the ack.
    assert.deepEqual(outs.map(o => o.type), ['persist', 'persist', 'send'])
    assert.deepEqual(outs.flatMap(o => o.type === 'persist' ? o.entries.map(e => e.id) : []), ['a', 'b'])
    const ack = outs[2]
    assert.ok(ack.type === 'send' && ack.message.type === 'ack')
    assert.deepEqual(ack.message.ids, ['a', 'b'])
  })

  it('answers a gather in memo-parts of batchEntriesMax (chunking)', () => {
    const r = createMemoReplica({ batchEntriesMax: 3 })
    r.handleAppend('d', 1, ['a', 'b', 'c'].map(id => ({ id, epoch: 1, value: v('c') })), 0)
    r.handleAppend('d', 1, ['d'].map(id => ({ id, epoch: 1, value: v('c') })), 0)
    while (r.poll() !== undefined);
    r.handleGather('d2', 2, 7, 0)
    const parts = []
    for (let o = r.poll(); o !== undefined; o = r.poll()) if (o.type === 'send' && o.message.type === 'memo-part') parts.push(o.message)
    assert.deepEqual(parts.map(p => [p.part, p.parts, p.entries.length]), [[0, 2, 3], [1, 2, 1]])
  })
})

describe('memo takeover and repair', () => {
  it('a new driver gathers from a majority, merges by union, and re-replicates at its epoch', () => {
    const rig = new Rig()
    rig.local('t1', 'c1')
    rig.settle()
    rig.local('t2', 'c2')
    rig.settle(p => p !== 'pA') // t2 only on pA: not durable
    assert.deepEqual(rig.durable(), ['t1'])
    const next = new Rig({ self: 'd2', epoch: 2, gather: true })
    // Same replicas (same disks).
    for (const p of PEERS) next.replicas.set(p, rig.replicas.get(p)!)
    for (const p of PEERS) next.disk.set(p, rig.disk.get(p)!)
    assert.equal(next.driver.state(), 'gathering')
    assert.throws(() => next.local('t9', 'c9'), /after the gather/)
    next.tick(0)
    next.settle(p => p === 'pA') // pA is unreachable: pB and pC are a majority
    const gathered = next.events.find(e => e.type === 'gathered')
    assert.ok(gathered?.type === 'gathered')
    assert.deepEqual(gathered.entries.map(e => [e.id, e.epoch]), [['t1', 2]])
    assert.deepEqual(next.durable(), ['t1'])
    // The new driver writes another value for t2: it wins over pA's epoch-1 copy everywhere.
    next.local('t2', 'c2-new')
    next.settle()
    next.tick(1000) // probes; pA's digest differs → pull → conflict → push over it
    next.settle()
    for (const p of PEERS) assert.deepEqual(next.replicas.get(p)!.memo(), next.driver.memo(), p)
    assert.equal(next.driver.memo().find(e => e.id === 't2')!.value.cid, 'c2-new')
    assert.ok(next.replicaEvents.some(e => e.type === 'conflict' && e.id === 't2') || next.events.some(e => e.type === 'conflict' && e.id === 't2'))
  })

  it('a replica that restarts from its disk keeps what it acked', () => {
    const rig = new Rig()
    rig.local('t1', 'c1')
    rig.settle()
    rig.addReplica('pB') // restart: built from what it persisted
    assert.deepEqual(rig.replicas.get('pB')!.memo().map(e => e.id), ['t1'])
  })

  it('repairs a new home-set member: it is pulled, compared, and sent what it lacks, in batches', () => {
    const rig = new Rig({ batchEntriesMax: 2 })
    for (let i = 0; i < 5; i++) rig.local(`t${i}`, `c${i}`)
    rig.settle()
    rig.addReplica('pD')
    rig.driver.handleHomeSet(['pA', 'pB', 'pD'], rig.now)
    rig.drainDriver()
    assert.deepEqual(rig.toReplicas.map(m => [m.to, m.message.type]), [['pD', 'gather']])
    rig.settle()
    assert.deepEqual(rig.replicas.get('pD')!.memo(), rig.driver.memo())
    const appendsToD = rig.toReplicas.length // drained by settle; count from disk writes instead
    assert.equal(appendsToD, 0)
    assert.equal(rig.disk.get('pD')!.entries.size, 5)
  })

  it('a home-set change can make entries durable (a smaller majority) or not (acks of removed peers do not count)', () => {
    const rig = new Rig({}, ['pA', 'pB', 'pC', 'pD'])
    rig.local('t1', 'c1')
    rig.settle(p => p === 'pC' || p === 'pD') // 2 of 4: not a majority
    assert.deepEqual(rig.durable(), [])
    rig.driver.handleHomeSet(['pA', 'pB', 'pC'], rig.now)
    rig.drainDriver()
    assert.deepEqual(rig.durable(), ['t1'])
  })
})

describe('memo merge', () => {
  const arbEntry = fc.record({
    id: fc.constantFrom('a', 'b', 'c', 'd'),
    epoch: fc.integer({ min: 1, max: 3 }),
    value: fc.record({ cid: fc.constantFrom('x', 'y', 'z'), peer: fc.constantFrom('p', 'q') })
  })

  it('is idempotent and commutative: any order, any duplicates, the same set and digest', () => {
    fc.assert(fc.property(fc.array(arbEntry, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 60 }), (entries, picks) => {
      const a = new MemoSet(100)
      for (const e of entries) a.merge(e)
      // Another replica: a shuffled order with duplicates (via picks) and then everything again.
      const b = new MemoSet(100)
      for (const i of picks) if (entries.length > 0) b.merge(entries[i % entries.length])
      for (const e of [...entries].reverse()) b.merge(e)
      for (const e of entries) b.merge(e)
      assert.deepEqual(b.sorted(), a.sorted())
      assert.deepEqual(b.digest(), a.digest())
    }), { numRuns: 300 })
  })

  it('replicas fed random delivery orders and duplicates of the same appends converge', () => {
    fc.assert(fc.property(fc.array(fc.array(arbEntry, { maxLength: 4 }), { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { minLength: 1, maxLength: 40 }), (batches, order) => {
      const replicas = [createMemoReplica(), createMemoReplica(), createMemoReplica()]
      replicas.forEach((r, k) => {
        // Each replica gets every batch at least once, in its own order, some twice.
        const seq = order.map(i => (i + k) % batches.length).concat(batches.map((_, i) => i))
        for (const i of seq) r.handleAppend('d', 3, batches[i], 0)
        while (r.poll() !== undefined);
      })
      assert.deepEqual(replicas[1].memo(), replicas[0].memo())
      assert.deepEqual(replicas[2].memo(), replicas[0].memo())
      assert.deepEqual(replicas[1].digest(), replicas[0].digest())
    }), { numRuns: 200 })
  })

  it('keeps the higher epoch, then the lower cid, and reports the conflict', () => {
    const m = new MemoSet(10)
    m.merge({ id: 'a', epoch: 1, value: v('y') })
    const r1 = m.merge({ id: 'a', epoch: 1, value: v('x') })
    assert.ok(r1.changed && 'conflict' in r1 && r1.conflict !== undefined)
    assert.equal(m.get('a')!.value.cid, 'x')
    const r2 = m.merge({ id: 'a', epoch: 2, value: v('z') })
    assert.ok(r2.changed)
    const r3 = m.merge({ id: 'a', epoch: 1, value: v('a') })
    assert.equal(r3.changed, false)
    assert.equal(m.get('a')!.value.cid, 'z')
  })
})
