// The membership state machine, fed inputs with a fake clock (plain numbers); outputs asserted.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  ADDRS_MAX, CAPACITY_VALUE_MAX, MEMBERSHIP_DEFAULTS, PEERS_MAX_LIMIT, createMembership
} from '../../src/protocol/membership/index.ts'
import type { Announcement, Membership, MembershipOptions, MembershipOutput } from '../../src/protocol/membership/index.ts'
import { createRandom } from '../../src/protocol/random.ts'

/** A valid base58btc peer id ending in `name` (letters of the base58 alphabet only). */
function pid (name: string): string {
  return `12D3KooW${name}`.padEnd(52, '1')
}

const SELF = pid('Me')
const A = pid('PeerA')
const B = pid('PeerB')
const C = pid('PeerC')
const D = pid('PeerD')
const NET = 'testnet'
const { suspectAfterMs, goneAfterMs, goneRetainMs, announceIntervalMs, announceMinIntervalMs } = MEMBERSHIP_DEFAULTS

function make (options: Partial<MembershipOptions> = {}): Membership {
  return createMembership({ selfId: SELF, networkId: NET, version: '0.1.0', incarnation: 1000, ...options })
}

function ann (peerId: string, incarnation: number, seq: number, extra: Partial<Announcement> = {}): Announcement {
  return {
    peerId,
    networkId: NET,
    incarnation,
    seq,
    version: '0.1.0',
    addrs: ['/ip4/127.0.0.1/tcp/4001'],
    capacity: { slotsFree: 2, slotsMax: 4, queueLength: 0 },
    ...extra
  }
}

function drain (m: Membership): MembershipOutput[] {
  const out: MembershipOutput[] = []
  for (let o = m.poll(); o !== undefined; o = m.poll()) out.push(o)
  return out
}

/** Membership events of the outputs, as short strings: "joined PeerA @0". */
function events (m: Membership): string[] {
  return drain(m).flatMap(o => o.type === 'announce' ? [] : [`${o.type.slice(5)} ${name(o.peerId)} @${o.atMs}`])
}

function name (peerId: string): string {
  return peerId.slice(8).replace(/1+$/, '')
}

describe('membership: own announcements', () => {
  it('announces on the first tick, then every announceIntervalMs, without bursting after a stall', () => {
    const m = make({ addrs: ['/ip4/10.0.0.1/tcp/4001'], capacity: { slotsFree: 3, slotsMax: 4, queueLength: 1 } })
    assert.equal(m.nextTimeoutMs(), 0, 'before any input: tick now')
    m.handleTick(100)
    assert.deepEqual(drain(m), [{
      type: 'announce',
      announcement: {
        peerId: SELF, networkId: NET, incarnation: 1000, seq: 1, version: '0.1.0',
        addrs: ['/ip4/10.0.0.1/tcp/4001'], capacity: { slotsFree: 3, slotsMax: 4, queueLength: 1 }
      }
    }])
    assert.equal(m.nextTimeoutMs(), 100 + announceIntervalMs)
    m.handleTick(100 + announceIntervalMs - 1)
    assert.deepEqual(drain(m), [], 'one ms early: nothing')
    m.handleTick(100 + announceIntervalMs)
    const second = drain(m)
    assert.equal(second.length, 1)
    assert.equal(second[0].type === 'announce' && second[0].announcement.seq, 2)
    // A stall of three intervals: one announce, and the cadence restarts from now.
    m.handleTick(100 + 4 * announceIntervalMs + 7)
    const third = drain(m)
    assert.equal(third.length, 1)
    assert.equal(third[0].type === 'announce' && third[0].announcement.seq, 3)
    assert.equal(m.nextTimeoutMs(), 100 + 5 * announceIntervalMs + 7)
  })

  it('keeps the cadence when a tick is a little late', () => {
    const m = make()
    m.handleTick(0)
    m.handleTick(announceIntervalMs + 30)
    drain(m)
    assert.equal(m.nextTimeoutMs(), 2 * announceIntervalMs)
  })

  it('uses the latest capacity and addresses in the next announce', () => {
    const m = make()
    m.handleTick(0)
    drain(m)
    m.handleCapacity({ slotsFree: 0, slotsMax: 8, queueLength: 5 })
    m.handleAddrs(['/ip4/10.0.0.2/tcp/1', '/ip6/::1/tcp/2'])
    m.handleTick(announceIntervalMs)
    const [out] = drain(m)
    assert.ok(out.type === 'announce')
    assert.deepEqual(out.announcement.capacity, { slotsFree: 0, slotsMax: 8, queueLength: 5 })
    assert.deepEqual(out.announcement.addrs, ['/ip4/10.0.0.2/tcp/1', '/ip6/::1/tcp/2'])
  })

  it('refuses capacity and addresses its peers would refuse, one unit past each limit', () => {
    const m = make()
    m.handleCapacity({ slotsFree: CAPACITY_VALUE_MAX, slotsMax: CAPACITY_VALUE_MAX, queueLength: CAPACITY_VALUE_MAX })
    assert.throws(() => m.handleCapacity({ slotsFree: 0, slotsMax: CAPACITY_VALUE_MAX + 1, queueLength: 0 }), { name: 'ConfigError', field: 'capacity.slotsMax' })
    assert.throws(() => m.handleCapacity({ slotsFree: 5, slotsMax: 4, queueLength: 0 }), { name: 'ConfigError', field: 'capacity.slotsFree' })
    assert.throws(() => m.handleCapacity({ slotsFree: -1, slotsMax: 4, queueLength: 0 }), { name: 'ConfigError', field: 'capacity.slotsFree' })
    const addrs = Array.from({ length: ADDRS_MAX }, (_, i) => `/ip4/10.0.0.${i}/tcp/4001`)
    m.handleAddrs(addrs)
    assert.throws(() => m.handleAddrs([...addrs, '/ip4/10.0.1.0/tcp/4001']), { name: 'ConfigError', field: 'addrs' })
    assert.throws(() => m.handleAddrs(['/ip4/10.0.0.1/tcp/1', 'has space']), { name: 'ConfigError', field: 'addrs[1]' })
    assert.throws(() => m.handleAddrs(['/' + 'x'.repeat(256)]), { name: 'ConfigError', field: 'addrs[0]' })
  })
})

describe('membership: a peer\'s life', () => {
  it('joins on its first announcement and shows in the view, sorted, without self', () => {
    const m = make()
    assert.equal(m.handleAnnouncement(ann(B, 50, 1), 0), 'accepted')
    assert.equal(m.handleAnnouncement(ann(A, 60, 1), 10), 'accepted')
    assert.deepEqual(events(m), ['joined PeerB @0', 'joined PeerA @10'])
    assert.deepEqual(m.view().map(e => name(e.peerId)), ['PeerA', 'PeerB'])
    assert.deepEqual(m.get(A), {
      peerId: A, state: 'alive', incarnation: 60, seq: 1, version: '0.1.0',
      addrs: ['/ip4/127.0.0.1/tcp/4001'], capacity: { slotsFree: 2, slotsMax: 4, queueLength: 0 },
      firstSeenMs: 10, lastSeenMs: 10, stateSinceMs: 10
    })
    assert.equal(m.stateOf(A), 'alive')
    assert.deepEqual(m.counts(), { alive: 2, suspect: 0, gone: 0 })
    assert.equal(m.get(SELF), undefined)
  })

  it('updates addresses, capacity and version from each accepted announcement', () => {
    const m = make()
    m.handleAnnouncement(ann(A, 1, 1), 0)
    m.handleAnnouncement(ann(A, 1, 2, { version: '0.2.0', addrs: ['/dns4/a.example/tcp/1'], capacity: { slotsFree: 0, slotsMax: 1, queueLength: 9 } }), 1000)
    const e = m.get(A)
    assert.ok(e !== undefined)
    assert.equal(e.version, '0.2.0')
    assert.deepEqual(e.addrs, ['/dns4/a.example/tcp/1'])
    assert.deepEqual(e.capacity, { slotsFree: 0, slotsMax: 1, queueLength: 9 })
    assert.equal(e.lastSeenMs, 1000)
    assert.equal(e.firstSeenMs, 0)
    assert.equal(e.stateSinceMs, 0, 'still the same life, alive since it joined')
  })

  it('goes suspect, gone and removed after silence, each exactly at its deadline', () => {
    const m = make()
    m.handleTick(0)
    m.handleAnnouncement(ann(A, 1, 1), 0)
    drain(m)
    const at = (t: number): string[] => { m.handleTick(t); return events(m) }
    assert.equal(at(suspectAfterMs - 1).length, 0)
    assert.deepEqual(at(suspectAfterMs), [`suspect PeerA @${suspectAfterMs}`])
    assert.equal(m.get(A)?.stateSinceMs, suspectAfterMs)
    assert.equal(at(goneAfterMs - 1).length, 0)
    assert.deepEqual(at(goneAfterMs), [`gone PeerA @${goneAfterMs}`])
    assert.equal(at(goneAfterMs + goneRetainMs - 1).length, 0)
    assert.deepEqual(at(goneAfterMs + goneRetainMs), [`removed PeerA @${goneAfterMs + goneRetainMs}`])
    assert.equal(m.get(A), undefined)
    assert.deepEqual(m.view(), [])
  })

  it('reports suspect then gone, in order, when one late tick passes both deadlines', () => {
    const m = make()
    m.handleAnnouncement(ann(A, 1, 1), 0)
    m.handleAnnouncement(ann(B, 1, 1), 3000)
    drain(m)
    m.handleTick(goneAfterMs + 100)
    assert.deepEqual(events(m), [
      `suspect PeerA @${goneAfterMs + 100}`, `suspect PeerB @${goneAfterMs + 100}`, `gone PeerA @${goneAfterMs + 100}`
    ])
    assert.equal(m.stateOf(B), 'suspect')
  })

  it('brings a suspect peer back alive', () => {
    const m = make()
    m.handleAnnouncement(ann(A, 1, 1), 0)
    m.handleTick(suspectAfterMs)
    drain(m)
    assert.equal(m.handleAnnouncement(ann(A, 1, 2), suspectAfterMs + 10), 'accepted')
    assert.deepEqual(events(m), [`alive PeerA @${suspectAfterMs + 10}`])
    assert.equal(m.get(A)?.stateSinceMs, suspectAfterMs + 10)
    assert.equal(m.get(A)?.firstSeenMs, 0)
  })

  it('brings a gone peer back alive, and a removed one back as joined', () => {
    const m = make()
    m.handleAnnouncement(ann(A, 1, 1), 0)
    m.handleTick(goneAfterMs)
    drain(m)
    assert.equal(m.stateOf(A), 'gone')
    assert.equal(m.handleAnnouncement(ann(A, 1, 2), goneAfterMs + 1), 'accepted')
    assert.deepEqual(events(m), [`alive PeerA @${goneAfterMs + 1}`])
    m.handleTick(goneAfterMs + 1 + goneAfterMs)
    const t = goneAfterMs + 1 + goneAfterMs + goneRetainMs
    m.handleTick(t)
    assert.deepEqual(events(m), [`suspect PeerA @${2 * goneAfterMs + 1}`, `gone PeerA @${2 * goneAfterMs + 1}`, `removed PeerA @${t}`])
    assert.equal(m.get(A), undefined)
    // Forgotten: even an old (incarnation, seq) is accepted now, as a new peer.
    assert.equal(m.handleAnnouncement(ann(A, 1, 1), t + 5), 'accepted')
    assert.deepEqual(events(m), [`joined PeerA @${t + 5}`])
    assert.equal(m.get(A)?.firstSeenMs, t + 5)
  })

  it('treats a new incarnation as a restart: seq starts over, peer:alive even if it was alive', () => {
    const m = make()
    m.handleAnnouncement(ann(A, 100, 40), 0)
    drain(m)
    assert.equal(m.handleAnnouncement(ann(A, 5000, 1), 1000), 'accepted')
    assert.deepEqual(events(m), ['alive PeerA @1000'])
    assert.equal(m.get(A)?.incarnation, 5000)
    assert.equal(m.get(A)?.seq, 1)
    assert.equal(m.get(A)?.stateSinceMs, 1000)
    // The old life's gossip, still in flight, is stale now.
    assert.equal(m.handleAnnouncement(ann(A, 100, 41), 2000), 'stale')
    assert.equal(m.get(A)?.incarnation, 5000)
  })

  it('a restarted peer that was gone comes back with one peer:alive', () => {
    const m = make()
    m.handleAnnouncement(ann(A, 100, 7), 0)
    m.handleTick(goneAfterMs)
    drain(m)
    assert.equal(m.handleAnnouncement(ann(A, 9000, 1), goneAfterMs + 1), 'accepted')
    assert.deepEqual(events(m), [`alive PeerA @${goneAfterMs + 1}`])
  })
})

describe('membership: announcements that are not accepted', () => {
  it('calls a duplicate or older (incarnation, seq) stale and changes nothing', () => {
    const m = make()
    m.handleAnnouncement(ann(A, 10, 5), 0)
    drain(m)
    const before = m.get(A)
    assert.equal(m.handleAnnouncement(ann(A, 10, 5), 1000), 'stale', 'duplicate')
    assert.equal(m.handleAnnouncement(ann(A, 10, 4), 1000), 'stale', 'older seq')
    assert.equal(m.handleAnnouncement(ann(A, 9, 99), 1000), 'stale', 'older incarnation, larger seq')
    assert.deepEqual(m.get(A), before)
    assert.deepEqual(events(m), [])
    assert.equal(m.handleAnnouncement(ann(A, 10, 6), 1000), 'accepted')
  })

  it('ignores its own announcements', () => {
    const m = make()
    assert.equal(m.handleAnnouncement(ann(SELF, 1, 1), 0), 'self')
    assert.equal(m.handleAnnouncement(ann(SELF, 99_999, 1), 0), 'self', 'even from another life')
    assert.deepEqual(m.view(), [])
    assert.deepEqual(drain(m), [])
  })

  it('refuses another network\'s announcements', () => {
    const m = make()
    assert.equal(m.handleAnnouncement(ann(A, 1, 1, { networkId: 'othernet' }), 0), 'foreign-network')
    assert.equal(m.get(A), undefined)
    assert.deepEqual(drain(m), [])
  })

  it('rate-limits a peer announcing faster than announceMinIntervalMs (one ms under the limit)', () => {
    const m = make()
    assert.equal(m.handleAnnouncement(ann(A, 1, 1), 1000), 'accepted')
    assert.equal(m.handleAnnouncement(ann(A, 1, 2), 1000 + announceMinIntervalMs - 1), 'rate-limited')
    assert.equal(m.get(A)?.seq, 1)
    assert.equal(m.handleAnnouncement(ann(A, 1, 3), 1000 + announceMinIntervalMs), 'accepted')
    assert.equal(m.get(A)?.seq, 3)
  })

  it('accepts at most one announcement per announceMinIntervalMs from a flooding peer', () => {
    const m = make()
    const verdicts: Record<string, number> = {}
    // 1,000 fresh announcements, one every 10 ms, for 10 s.
    for (let i = 0; i < 1000; i++) {
      const v = m.handleAnnouncement(ann(A, 1, i + 1), i * 10)
      verdicts[v] = (verdicts[v] ?? 0) + 1
    }
    assert.deepEqual(verdicts, { accepted: 10_000 / announceMinIntervalMs, 'rate-limited': 1000 - 10_000 / announceMinIntervalMs })
    assert.deepEqual(events(m), ['joined PeerA @0'])
  })

  it('refuses a new peer when the table is full of alive peers (one past peersMax)', () => {
    const m = make({ peersMax: 3 })
    for (const p of [A, B, C]) assert.equal(m.handleAnnouncement(ann(p, 1, 1), 0), 'accepted')
    assert.equal(m.handleAnnouncement(ann(D, 1, 1), 0), 'full')
    assert.equal(m.get(D), undefined)
    assert.deepEqual(m.view().map(e => name(e.peerId)), ['PeerA', 'PeerB', 'PeerC'])
    // Known peers still update.
    assert.equal(m.handleAnnouncement(ann(A, 1, 2), 1000), 'accepted')
  })

  it('evicts the oldest suspect entry to admit a new peer', () => {
    const m = make({ peersMax: 3 })
    m.handleAnnouncement(ann(A, 1, 1), 0)
    m.handleAnnouncement(ann(B, 1, 1), 100)
    m.handleAnnouncement(ann(C, 1, 1), 4000)
    m.handleTick(suspectAfterMs + 100) // A and B suspect, C alive
    drain(m)
    assert.equal(m.handleAnnouncement(ann(D, 1, 1), suspectAfterMs + 200), 'accepted')
    assert.deepEqual(events(m), [`removed PeerA @${suspectAfterMs + 200}`, `joined PeerD @${suspectAfterMs + 200}`])
    assert.equal(m.stateOf(B), 'suspect')
  })

  it('evicts the oldest gone entry before any suspect one', () => {
    const m = make({ peersMax: 3 })
    m.handleAnnouncement(ann(A, 1, 1), 0)
    m.handleAnnouncement(ann(B, 1, 1), 100)
    m.handleAnnouncement(ann(C, 1, 1), 6000)
    m.handleTick(goneAfterMs + 50) // A gone (due at 10000), B suspect (gone at 10100), C alive
    drain(m)
    assert.equal(m.stateOf(A), 'gone')
    assert.equal(m.stateOf(B), 'suspect')
    assert.equal(m.stateOf(C), 'alive')
    assert.equal(m.handleAnnouncement(ann(D, 1, 1), goneAfterMs + 60), 'accepted')
    assert.deepEqual(events(m), [`removed PeerA @${goneAfterMs + 60}`, `joined PeerD @${goneAfterMs + 60}`])
  })

  it('survives a flood of distinct peers: alive peers are never pushed out', () => {
    const peersMax = 8
    const m = make({ peersMax })
    const early = Array.from({ length: peersMax }, (_, i) => pid(`First${'ABCDEFGH'[i]}`))
    for (const p of early) assert.equal(m.handleAnnouncement(ann(p, 1, 1), 0), 'accepted')
    let full = 0
    for (let i = 0; i < 500; i++) {
      const stranger = pid(`Fake${i.toString().replace(/0/g, 'z')}x`)
      if (m.handleAnnouncement(ann(stranger, 1, 1), 100) === 'full') full++
    }
    assert.equal(full, 500)
    assert.deepEqual(m.view().map(e => e.peerId), [...early].sort())
  })
})

describe('membership: time', () => {
  it('nextTimeoutMs is the earliest of announce, suspect, gone and removal deadlines', () => {
    const m = make()
    m.handleTick(0)
    drain(m)
    assert.equal(m.nextTimeoutMs(), announceIntervalMs)
    m.handleAnnouncement(ann(A, 1, 1), 100)
    assert.equal(m.nextTimeoutMs(), announceIntervalMs, 'announce comes first')
    for (let t = announceIntervalMs; t < suspectAfterMs; t += announceIntervalMs) m.handleTick(t)
    drain(m)
    assert.equal(m.nextTimeoutMs(), 100 + suspectAfterMs, 'A\'s suspect deadline is before the next announce')
    m.handleTick(100 + suspectAfterMs)
    drain(m)
    assert.equal(m.nextTimeoutMs(), 3 * announceIntervalMs)
  })

  it('never has a timer due right after a tick, and always has one due at nextTimeoutMs (random inputs)', () => {
    const rng = createRandom(7)
    const m = make({ peersMax: 6, goneRetainMs: 20_000 })
    const peers = ['PeerA', 'PeerB', 'PeerC', 'PeerD', 'PeerE', 'PeerF', 'PeerG', 'PeerH'].map(pid)
    const seq = new Map<string, number>()
    let now = 0
    let ticks = 0
    for (let step = 0; step < 3000; step++) {
      if (rng.chance(0.3)) {
        const p = rng.pick(peers)
        const s = (seq.get(p) ?? 0) + 1
        seq.set(p, s)
        now += rng.int(0, 3000)
        m.handleAnnouncement(ann(p, 1, s), now)
        drain(m)
        continue
      }
      const next = m.nextTimeoutMs()
      if (next - 1 > now) {
        m.handleTick(next - 1)
        assert.deepEqual(drain(m), [], `a tick at ${next - 1}, before nextTimeoutMs ${next}, does nothing`)
      }
      now = Math.max(now, next)
      m.handleTick(now)
      ticks++
      assert.ok(drain(m).length > 0, `a tick at nextTimeoutMs (${now}) fires something`)
      assert.ok(m.nextTimeoutMs() > now, 'after a tick, nothing is due')
    }
    assert.ok(ticks > 1000)
  })

  it('holds its clock still when nowMs goes backwards', () => {
    const m = make()
    m.handleTick(10_000)
    m.handleAnnouncement(ann(A, 1, 1), 4000)
    assert.equal(m.get(A)?.lastSeenMs, 10_000)
    drain(m)
    assert.equal(m.nextTimeoutMs(), 10_000 + announceIntervalMs)
    m.handleTick(9000) // earlier than before: time stands still, nothing fires
    assert.deepEqual(drain(m), [])
  })

  it('reports a time in the past ("now") before the first tick', () => {
    const m = make()
    m.handleAnnouncement(ann(A, 1, 1), 5000)
    assert.equal(m.nextTimeoutMs(), 5000)
  })
})

describe('membership: options', () => {
  it('has documented defaults', () => {
    assert.deepEqual({ ...MEMBERSHIP_DEFAULTS }, {
      announceIntervalMs: 2000, suspectAfterMs: 5000, goneAfterMs: 10_000, goneRetainMs: 60_000, peersMax: 1024, announceMinIntervalMs: 500
    })
    assert.ok(Object.isFrozen(MEMBERSHIP_DEFAULTS))
  })

  const invalid: Array<[string, Partial<MembershipOptions>, string]> = [
    ['selfId empty', { selfId: '' }, 'selfId'],
    ['selfId not base58 (0, O, I, l)', { selfId: '12D3KooW0OIl' }, 'selfId'],
    ['selfId 129 chars', { selfId: '1'.repeat(129) }, 'selfId'],
    ['networkId empty', { networkId: '' }, 'networkId'],
    ['networkId 65 chars', { networkId: 'n'.repeat(65) }, 'networkId'],
    ['networkId not ASCII', { networkId: 'réseau' }, 'networkId'],
    ['version 33 chars', { version: 'v'.repeat(33) }, 'version'],
    ['incarnation negative', { incarnation: -1 }, 'incarnation'],
    ['incarnation fractional', { incarnation: 1.5 }, 'incarnation'],
    ['announceIntervalMs 0', { announceIntervalMs: 0 }, 'announceIntervalMs'],
    ['suspectAfterMs negative', { suspectAfterMs: -5 }, 'suspectAfterMs'],
    ['goneAfterMs Infinity', { goneAfterMs: Infinity }, 'goneAfterMs'],
    ['goneRetainMs NaN', { goneRetainMs: NaN }, 'goneRetainMs'],
    ['goneRetainMs past the timer limit', { goneRetainMs: 2 ** 31 }, 'goneRetainMs'],
    ['announceMinIntervalMs fractional', { announceMinIntervalMs: 0.5 }, 'announceMinIntervalMs'],
    ['peersMax 0', { peersMax: 0 }, 'peersMax'],
    ['peersMax past PEERS_MAX_LIMIT', { peersMax: PEERS_MAX_LIMIT + 1 }, 'peersMax'],
    ['suspectAfterMs = goneAfterMs', { suspectAfterMs: 10_000, goneAfterMs: 10_000 }, 'suspectAfterMs'],
    ['announceIntervalMs = suspectAfterMs', { announceIntervalMs: 5000 }, 'announceIntervalMs'],
    ['announceMinIntervalMs = announceIntervalMs', { announceMinIntervalMs: 2000 }, 'announceMinIntervalMs'],
    ['addrs 17 items', { addrs: Array.from({ length: 17 }, (_, i) => `/ip4/10.0.0.${i}/tcp/1`) }, 'addrs'],
    ['capacity out of range', { capacity: { slotsFree: 0, slotsMax: 0, queueLength: CAPACITY_VALUE_MAX + 1 } }, 'capacity.queueLength']
  ]
  for (const [what, options, field] of invalid) {
    it(`refuses ${what} with a ConfigError naming ${field}`, () => {
      assert.throws(() => make(options), (err: Error & { field?: string }) => {
        assert.equal(err.name, 'ConfigError')
        assert.equal(err.field, field)
        assert.match(err.message, new RegExp(`^${field.replace(/[.[\]]/g, '\\$&')}: `))
        return true
      })
    })
  }

  it('accepts the limits themselves', () => {
    make({
      selfId: '1'.repeat(128),
      networkId: 'n'.repeat(64),
      version: 'v'.repeat(32),
      incarnation: 0,
      announceMinIntervalMs: 1,
      announceIntervalMs: 2,
      suspectAfterMs: 3,
      goneAfterMs: 2 ** 31 - 1,
      goneRetainMs: 2 ** 31 - 1,
      peersMax: PEERS_MAX_LIMIT,
      addrs: Array.from({ length: ADDRS_MAX }, () => '/' + 'x'.repeat(255)),
      capacity: { slotsFree: CAPACITY_VALUE_MAX, slotsMax: CAPACITY_VALUE_MAX, queueLength: CAPACITY_VALUE_MAX }
    })
  })
})
