// The run lease machine, one input at a time: grants and refusals, fencing, one driver per epoch,
// renewal and expiry, takeover order and stagger, restarts from the persisted promise, the clock
// bound, and its options one past their limits.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createLease, EPOCH_MAX, HOME_SET_MAX, LEASE_TIMING_DEFAULTS } from '../../src/protocol/lease/index.ts'
import type { Lease, LeaseOptions, LeaseOutput } from '../../src/protocol/lease/index.ts'
import { ConfigError } from '../../src/model/errors.ts'

const HOME = ['A', 'B', 'C']
const { leaseMs, renewMs, graceMs, staggerMs, clockDriftMaxMs } = LEASE_TIMING_DEFAULTS

function lease (selfId: string, nowMs = 0, extra: Partial<LeaseOptions> = {}): Lease {
  return createLease({ selfId, homeSet: HOME, ...extra }, nowMs)
}

function drain (m: Lease): LeaseOutput[] {
  const out: LeaseOutput[] = []
  for (let o = m.poll(); o !== undefined; o = m.poll()) out.push(o)
  return out
}

function requests (out: LeaseOutput[]): Array<Extract<LeaseOutput, { type: 'request' }>> {
  return out.filter((o): o is Extract<LeaseOutput, { type: 'request' }> => o.type === 'request')
}

/** A started as the first driver of a fresh run, with B's grant: returns A's round-1 requests. */
function startDriver (at = 0): { a: Lease, round: number } {
  const a = lease('A', at)
  assert.equal(a.nextTimeoutMs(), at, 'the first peer of a fresh run asks at once')
  a.handleTimeout(at)
  const out = drain(a)
  assert.deepEqual(out[0], { type: 'persist', promise: { epoch: 1, holder: 'A' } }, 'the self-grant is persisted before any request')
  const reqs = requests(out)
  assert.deepEqual(reqs.map(r => r.to), ['B', 'C'])
  assert.equal(a.snapshot().role, 'candidate')
  a.handleLeaseGrant('B', 1, reqs[0].round, at + 5)
  assert.deepEqual(drain(a), [{ type: 'became-driver', epoch: 1 }])
  return { a, round: reqs[0].round }
}

describe('lease: grantor', () => {
  it('grants a fresh epoch, persisting it before the grant', () => {
    const b = lease('B')
    assert.equal(b.handleLeaseRequest('A', 1, 1, 10), 'accepted')
    assert.deepEqual(drain(b), [
      { type: 'persist', promise: { epoch: 1, holder: 'A' } },
      { type: 'grant', to: 'A', epoch: 1, round: 1 }
    ])
  })

  it('renews the holder without writing again', () => {
    const b = lease('B')
    b.handleLeaseRequest('A', 1, 1, 10)
    drain(b)
    b.handleLeaseRequest('A', 1, 2, 200)
    assert.deepEqual(drain(b), [{ type: 'grant', to: 'A', epoch: 1, round: 2 }])
  })

  it('grants one driver per epoch: a second asker of the same epoch is fenced, even after expiry', () => {
    const b = lease('B')
    b.handleLeaseRequest('A', 1, 1, 10)
    drain(b)
    b.handleLeaseRequest('C', 1, 1, 10 + 10 * leaseMs)
    assert.deepEqual(drain(b), [
      { type: 'refuse', to: 'C', epoch: 1, round: 1, reason: 'stale-epoch' },
      { type: 'fenced', from: 'C', epoch: 1, highestEpoch: 1 }
    ])
  })

  it('refuses a lower epoch with the highest seen (fencing)', () => {
    const b = lease('B')
    b.handleLeaseRequest('C', 5, 1, 10)
    drain(b)
    b.handleLeaseRequest('A', 4, 9, 20)
    assert.deepEqual(drain(b), [
      { type: 'refuse', to: 'A', epoch: 5, round: 9, reason: 'stale-epoch' },
      { type: 'fenced', from: 'A', epoch: 4, highestEpoch: 5 }
    ])
  })

  it('refuses a higher epoch while the grant to another holder runs, and grants it the ms it expires', () => {
    const b = lease('B')
    b.handleLeaseRequest('A', 1, 1, 100)
    drain(b)
    b.handleLeaseRequest('C', 2, 1, 100 + leaseMs - 1)
    assert.deepEqual(drain(b), [{ type: 'refuse', to: 'C', epoch: 2, round: 1, reason: 'held' }])
    b.handleLeaseRequest('C', 2, 2, 100 + leaseMs)
    assert.deepEqual(drain(b), [
      { type: 'persist', promise: { epoch: 2, holder: 'C' } },
      { type: 'grant', to: 'C', epoch: 2, round: 2 }
    ])
    // and the old holder is fenced from now on
    b.handleLeaseRequest('A', 1, 7, 100 + leaseMs + 1)
    assert.equal(drain(b)[0].type, 'refuse')
  })

  it('refuses peers outside the home set and ignores malformed input', () => {
    const b = lease('B')
    b.handleLeaseRequest('Z', 1, 1, 10)
    assert.deepEqual(drain(b), [{ type: 'refuse', to: 'Z', epoch: 0, round: 1, reason: 'not-home' }])
    assert.equal(b.handleLeaseRequest('A', 0, 1, 10), 'invalid')
    assert.equal(b.handleLeaseRequest('A', EPOCH_MAX, 1, 10), 'invalid')
    assert.equal(b.handleLeaseRequest('A', 1.5, 1, 10), 'invalid')
    assert.equal(b.handleLeaseRequest('A', 1, 0, 10), 'invalid')
    assert.equal(b.handleLeaseRequest('B', 1, 1, 10), 'invalid', 'its own id over the network')
    assert.equal(b.handleLeaseRefusal('A', 1, 1, 'nonsense' as 'held', 10), 'invalid')
    assert.deepEqual(drain(b), [])
  })

  it('after a restart, honours the persisted holder for a whole lease, and never grants that epoch to another', () => {
    const b = lease('B', 5000, { restored: { epoch: 3, holder: 'A' } })
    b.handleLeaseRequest('C', 4, 1, 5000 + leaseMs - 1)
    assert.equal(drain(b)[0].type, 'refuse')
    b.handleLeaseRequest('C', 3, 2, 5000 + leaseMs)
    assert.deepEqual(drain(b)[0], { type: 'refuse', to: 'C', epoch: 4, round: 2, reason: 'stale-epoch' })
    b.handleLeaseRequest('A', 3, 3, 5000 + leaseMs)
    assert.deepEqual(drain(b), [{ type: 'grant', to: 'A', epoch: 3, round: 3 }])
  })
})

describe('lease: driver', () => {
  it('wins with a majority, counting itself', () => {
    const { a } = startDriver()
    assert.equal(a.snapshot().role, 'driver')
    assert.equal(a.snapshot().leaseEndMs, leaseMs - clockDriftMaxMs, 'counted from when the request was SENT, less the drift bound')
    assert.ok(a.holdsLease(leaseMs - clockDriftMaxMs - 1))
    assert.ok(!a.holdsLease(leaseMs - clockDriftMaxMs))
  })

  it('a grant arriving after the lease it would give has run out does not make a driver', () => {
    const a = lease('A')
    a.handleTimeout(0)
    const [r] = requests(drain(a))
    a.handleLeaseGrant('B', 1, r.round, leaseMs - clockDriftMaxMs)
    assert.deepEqual(drain(a).filter(o => o.type === 'became-driver'), [])
    assert.equal(a.snapshot().role, 'candidate')
  })

  it('renews every renewMs; each renewal extends the lease from its own send time', () => {
    const { a } = startDriver()
    assert.equal(a.nextTimeoutMs(), renewMs)
    a.handleTimeout(renewMs)
    const reqs = requests(drain(a))
    assert.equal(reqs.length, 2)
    assert.ok(reqs.every(r => r.epoch === 1))
    a.handleLeaseGrant('C', 1, reqs[1].round, renewMs + 30)
    assert.equal(a.snapshot().leaseEndMs, renewMs + leaseMs - clockDriftMaxMs)
  })

  it('a late duplicate of an old grant is credited with its own round, not the latest', () => {
    const { a, round } = startDriver()
    a.handleTimeout(renewMs)
    drain(a)
    a.handleLeaseGrant('B', 1, round, renewMs + 10) // the round-1 grant again
    assert.equal(a.snapshot().leaseEndMs, leaseMs - clockDriftMaxMs, 'not extended')
  })

  it('loses the lease when renewals miss a majority until it ends, and says so once', () => {
    const { a } = startDriver()
    const end = leaseMs - clockDriftMaxMs
    let lost = 0
    for (let t = renewMs; t <= end; t = Math.min(a.nextTimeoutMs(), end)) {
      a.handleTimeout(t)
      lost += drain(a).filter(o => o.type === 'lost-lease').length
      if (t === end) break
    }
    assert.equal(lost, 1)
    assert.equal(a.snapshot().role, 'follower')
    assert.ok(!a.holdsLease(end))
  })

  it('a stale-epoch refusal fences the driver but its majority lease stands until it ends', () => {
    const { a } = startDriver()
    a.handleTimeout(renewMs)
    const reqs = requests(drain(a))
    a.handleLeaseRefusal('C', 2, reqs[1].round, 'stale-epoch', renewMs + 5)
    assert.deepEqual(drain(a), [{ type: 'fenced', from: 'C', epoch: 1, highestEpoch: 2 }])
    assert.ok(a.holdsLease(renewMs + 5))
    assert.equal(a.snapshot().highestEpoch, 2)
  })

  it('a candidate gives up on a stale refusal, and on held refusals from all but a minority', () => {
    const a = lease('A')
    a.handleTimeout(0)
    let reqs = requests(drain(a))
    a.handleLeaseRefusal('B', 7, reqs[0].round, 'stale-epoch', 5)
    assert.equal(a.snapshot().role, 'follower')
    assert.equal(a.snapshot().highestEpoch, 7)

    const c = createLease({ selfId: 'A', homeSet: ['A', 'B', 'C', 'D', 'E'] }, 0)
    c.handleTimeout(0)
    reqs = requests(drain(c))
    c.handleLeaseRefusal('B', 0, reqs[0].round, 'held', 5)
    c.handleLeaseRefusal('C', 0, reqs[0].round, 'held', 6)
    assert.equal(c.snapshot().role, 'candidate', 'two of five held: a majority is still possible')
    c.handleLeaseRefusal('D', 0, reqs[0].round, 'held', 7)
    assert.equal(c.snapshot().role, 'follower', 'three of five held: no majority left')
    assert.ok(c.nextTimeoutMs() >= 7 + leaseMs + graceMs, 'waits out the lease it ran into')
  })
})

describe('lease: takeover', () => {
  /** B and C have granted A epoch 1 at time 0. */
  function grantedFollowers (): { b: Lease, c: Lease } {
    const b = lease('B')
    const c = lease('C')
    b.handleLeaseRequest('A', 1, 1, 0)
    c.handleLeaseRequest('A', 1, 1, 0)
    drain(b)
    drain(c)
    return { b, c }
  }

  it('the best peer in rendezvous order asks first; each later one waits one stagger more', () => {
    const { b, c } = grantedFollowers()
    const first = leaseMs + graceMs + staggerMs
    assert.equal(b.nextTimeoutMs(), first)
    assert.equal(c.nextTimeoutMs(), first + staggerMs)
    b.handleTimeout(first)
    const out = drain(b)
    assert.deepEqual(out[0], { type: 'persist', promise: { epoch: 2, holder: 'B' } })
    assert.deepEqual(requests(out).map(r => [r.to, r.epoch]), [['A', 2], ['C', 2]])
    // C grants B before its own stagger runs out, and that grant resets its watch.
    c.handleLeaseRequest('B', 2, requests(out)[1].round, first + 10)
    assert.equal(drain(c).find(o => o.type === 'grant')?.epoch, 2)
    b.handleLeaseGrant('C', 2, requests(out)[1].round, first + 20)
    assert.deepEqual(drain(b), [{ type: 'became-driver', epoch: 2 }])
    assert.equal(c.nextTimeoutMs(), first + 10 + leaseMs + graceMs + 2 * staggerMs)
  })

  it('two candidates of the same epoch both step down, and retry staggered by rank', () => {
    const { b, c } = grantedFollowers()
    b.handleTimeout(2000)
    c.handleTimeout(2000)
    const rb = requests(drain(b)).find(r => r.to === 'C')!
    const rc = requests(drain(c)).find(r => r.to === 'B')!
    assert.equal(rb.epoch, rc.epoch)
    c.handleLeaseRequest('B', rb.epoch, rb.round, 2010)
    b.handleLeaseRequest('C', rc.epoch, rc.round, 2010)
    const refusalToB = drain(c).find(o => o.type === 'refuse')!
    const refusalToC = drain(b).find(o => o.type === 'refuse')!
    assert.equal(refusalToB.type === 'refuse' && refusalToB.reason, 'stale-epoch')
    b.handleLeaseRefusal('C', refusalToB.epoch, rb.round, 'stale-epoch', 2020)
    c.handleLeaseRefusal('B', refusalToC.epoch, rc.round, 'stale-epoch', 2020)
    assert.equal(b.snapshot().role, 'follower')
    assert.equal(c.snapshot().role, 'follower')
    assert.equal(c.nextTimeoutMs() - b.nextTimeoutMs(), staggerMs)
  })

  it('a candidate that has not won releases its self-grant to a higher epoch and steps down', () => {
    const { c } = grantedFollowers()
    c.handleTimeout(2000)
    drain(c)
    assert.equal(c.snapshot().role, 'candidate')
    c.handleLeaseRequest('B', 3, 1, 2010)
    const out = drain(c)
    assert.deepEqual(out.map(o => o.type), ['persist', 'grant'])
    assert.equal(c.snapshot().role, 'follower')
  })

  it('a renewal seen before the watch runs out defers the takeover', () => {
    const { b } = grantedFollowers()
    b.handleLeaseRequest('A', 1, 2, 500)
    drain(b)
    b.handleTimeout(leaseMs + graceMs + staggerMs)
    assert.deepEqual(drain(b), [])
    assert.equal(b.nextTimeoutMs(), 500 + leaseMs + graceMs + staggerMs)
  })

  it('a takeover asks for one more than the highest epoch seen anywhere', () => {
    const { b } = grantedFollowers()
    b.handleLeaseRequest('C', 9, 1, 10) // refused 'held', but epoch 9 exists
    drain(b)
    b.handleTimeout(leaseMs + graceMs + staggerMs)
    assert.equal(requests(drain(b))[0].epoch, 10)
  })

  it('peers that never saw a grant wait a lease (plus rank) before asking; the first peer starts a fresh run at once', () => {
    assert.equal(lease('A', 100).nextTimeoutMs(), 100)
    assert.equal(lease('B', 100).nextTimeoutMs(), 100 + leaseMs + graceMs + 1 * staggerMs)
    assert.equal(lease('C', 100).nextTimeoutMs(), 100 + leaseMs + graceMs + 2 * staggerMs)
  })

  it('leaving the home set ends a lease at once; rejoining watches a lease first', () => {
    const { a } = startDriver()
    a.handleHomeSet(['B', 'C', 'D'], 50)
    assert.deepEqual(drain(a), [{ type: 'lost-lease', epoch: 1 }])
    assert.equal(a.snapshot().role, 'outside')
    assert.equal(a.nextTimeoutMs(), Infinity)
    a.handleHomeSet(['A', 'B', 'C'], 60)
    assert.ok(a.nextTimeoutMs() >= 60 + leaseMs)
  })
})

describe('lease: the clock bound', () => {
  it('within the bound, the driver stops believing before any grantor stops honouring', () => {
    // A sends at its 0; B grants at real time 0 + delay, then B's clock jumps forward and A's
    // back, by clockDriftMaxMs in all: A's lease (real time) still ends no later than B's grant.
    const stepBack = clockDriftMaxMs / 2
    const stepAhead = clockDriftMaxMs - stepBack
    const { a } = startDriver(0) // B granted at real 5 (see startDriver)
    const driverEndReal = (a.snapshot().leaseEndMs as number) + stepBack
    const grantEndReal = 5 + leaseMs - stepAhead
    assert.ok(driverEndReal <= grantEndReal, `${driverEndReal} <= ${grantEndReal}`)
  })
})

describe('lease: options', () => {
  it('refuses options one past their limits, with the field named', () => {
    const bad: Array<[Partial<LeaseOptions>, string]> = [
      [{ renewMs: 300 }, 'renewMs'], // = leaseMs / 2
      [{ clockDriftMaxMs: leaseMs - 2 * renewMs }, 'clockDriftMaxMs'],
      [{ leaseMs: 0 }, 'leaseMs'],
      [{ graceMs: -1 }, 'graceMs'],
      [{ homeSet: Array.from({ length: HOME_SET_MAX + 1 }, (_, i) => `P${i}`) }, 'homeSet'],
      [{ homeSet: ['A', 'A'] }, 'homeSet'],
      [{ homeSet: [] }, 'homeSet'],
      [{ restored: { epoch: 0, holder: 'A' } }, 'restored']
    ]
    for (const [extra, field] of bad) {
      assert.throws(() => lease('A', 0, extra), (err: unknown) => err instanceof ConfigError && err.field === field, field)
    }
    const most = Array.from({ length: HOME_SET_MAX }, (_, i) => `P${i}`)
    assert.doesNotThrow(() => createLease({ selfId: 'P0', homeSet: most }, 0))
    assert.doesNotThrow(() => lease('A', 0, { renewMs: 249, clockDriftMaxMs: 100 }))
  })
})
