// Pinned membership runs: literal trace digests and numbers, captured from the simulator before
// it was split into network, nodes, faults and storage. A change to the simulator that moves
// one random draw, one event or one trace line changes a digest here, so a refactor that keeps
// these green provably replays every seed as before. Change a value only with a reason that
// says which draw or event moved and why.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runEchoScenario, runMembershipScenario } from '../../src/sim/index.ts'
import type { ScenarioShape } from '../../src/sim/index.ts'

interface Pinned {
  why: string
  input: { seed: number } & ScenarioShape
  traceHash: string
  numbers: {
    nodes: number
    liveAtEnd: number
    faultsEndMs: number
    boundMs: number
    endMs: number
    convergedAtMs: number
    messages: { published: number, delivered: number, lost: number, partitioned: number, duplicated: number, droppedAtDownPeer: number }
    verdicts: { accepted: number, stale: number, self: number, 'foreign-network': number, 'rate-limited': number, full: number }
    membershipEvents: number
    simEvents: number
  }
}

const PINNED: Pinned[] = [
  {
    why: 'a typical seed: partitions, loss, duplication, no crash',
    input: { seed: 3 },
    traceHash: 'c08dd22d27e79bce',
    numbers: {
      nodes: 28, liveAtEnd: 28, faultsEndMs: 28163, boundMs: 12769, endMs: 52943, convergedAtMs: 28200,
      messages: { published: 1153, delivered: 28932, lost: 331, partitioned: 1156, duplicated: 21, droppedAtDownPeer: 0 },
      verdicts: { accepted: 28911, stale: 21, self: 0, 'foreign-network': 0, 'rate-limited': 0, full: 0 },
      membershipEvents: 784, simEvents: 30177
    }
  },
  {
    why: 'crash-heavy: 10 crashes, 6 of them restart, two partitions',
    input: { seed: 49 },
    traceHash: '44268791cac201da',
    numbers: {
      nodes: 30, liveAtEnd: 26, faultsEndMs: 26338, boundMs: 12795, endMs: 51133, convergedAtMs: 30100,
      messages: { published: 680, delivered: 15460, lost: 168, partitioned: 1489, duplicated: 486, droppedAtDownPeer: 1 },
      verdicts: { accepted: 14974, stale: 486, self: 0, 'foreign-network': 0, 'rate-limited': 0, full: 0 },
      membershipEvents: 1983, simEvents: 17103
    }
  },
  {
    why: 'crash-heavy with 26 clock steps',
    input: { seed: 80 },
    traceHash: '9136ed1bfa245786',
    numbers: {
      nodes: 30, liveAtEnd: 24, faultsEndMs: 26504, boundMs: 12628, endMs: 51132, convergedAtMs: 34600,
      messages: { published: 644, delivered: 15488, lost: 479, partitioned: 0, duplicated: 773, droppedAtDownPeer: 2 },
      verdicts: { accepted: 14715, stale: 773, self: 0, 'foreign-network': 0, 'rate-limited': 0, full: 0 },
      membershipEvents: 1413, simEvents: 16708
    }
  },
  {
    why: 'partition-heavy: two partitions, 30% loss, duplicates, rate-limited verdicts',
    input: { seed: 56 },
    traceHash: '2d928283668d9d08',
    numbers: {
      nodes: 30, liveAtEnd: 28, faultsEndMs: 33714, boundMs: 9429, endMs: 51796, convergedAtMs: 34000,
      messages: { published: 4702, delivered: 98901, lost: 20835, partitioned: 7213, duplicated: 3995, droppedAtDownPeer: 15 },
      verdicts: { accepted: 94828, stale: 3986, self: 0, 'foreign-network': 0, 'rate-limited': 87, full: 0 },
      membershipEvents: 3569, simEvents: 105584
    }
  },
  {
    why: '100 peers with faults (13 stay down)',
    input: { seed: 7, nodes: 100 },
    traceHash: 'f49ed041bcadc70b',
    numbers: {
      nodes: 100, liveAtEnd: 87, faultsEndMs: 13771, boundMs: 12110, endMs: 37881, convergedAtMs: 22200,
      messages: { published: 1691, delivered: 139472, lost: 4529, partitioned: 0, duplicated: 518, droppedAtDownPeer: 26 },
      verdicts: { accepted: 138954, stale: 518, self: 0, 'foreign-network': 0, 'rate-limited': 0, full: 0 },
      membershipEvents: 13465, simEvents: 144140
    }
  },
  {
    why: 'no random faults, explicit crashes: one restarts, one stays down',
    input: { seed: 9, nodes: 12, faults: false, startWindowMs: 1000, crashes: [{ atMs: 6000, node: 4, restartAtMs: 9000 }, { atMs: 7000, node: 5 }] },
    traceHash: '96a9117b6f1ecf95',
    numbers: {
      nodes: 12, liveAtEnd: 11, faultsEndMs: 9001, boundMs: 15900, endMs: 40751, convergedAtMs: 20400,
      messages: { published: 234, delivered: 2300, lost: 0, partitioned: 0, duplicated: 0, droppedAtDownPeer: 0 },
      verdicts: { accepted: 2300, stale: 0, self: 0, 'foreign-network': 0, 'rate-limited': 0, full: 0 },
      membershipEvents: 182, simEvents: 2582
    }
  }
]

describe('membership simulator, pinned runs', () => {
  for (const pinned of PINNED) {
    it(`seed ${pinned.input.seed} (${pinned.why}) replays its pinned trace`, () => {
      const r = runMembershipScenario(pinned.input)
      assert.deepEqual(r.violations, [])
      assert.ok(r.ok)
      assert.equal(r.traceHash, pinned.traceHash)
      assert.deepEqual({
        nodes: r.nodes,
        liveAtEnd: r.liveAtEnd,
        faultsEndMs: r.faultsEndMs,
        boundMs: r.boundMs,
        endMs: r.endMs,
        convergedAtMs: r.convergedAtMs,
        messages: r.messages,
        verdicts: r.verdicts,
        membershipEvents: r.membershipEvents,
        simEvents: r.simEvents
      }, pinned.numbers)
    })
  }
})

// The echo scenario, pinned from its first version: point-to-point sends, storage, restarts.
const ECHO_PINNED = [
  {
    why: '9 peers, 3 crashes (2 restart), partitions, unreachable peers',
    seed: 37,
    traceHash: 'f22f66af7ae9f81a',
    numbers: {
      liveAtEnd: 8, faultsEndMs: 24219, endMs: 33489, slowestAfterTMs: 84, storageWrites: 289, simEvents: 1241,
      pings: { sent: 289, resent: 160, completed: 218, gaveUp: 70, afterT: 77 },
      messages: { published: 0, sent: 683, delivered: 481, lost: 7, partitioned: 140, duplicated: 29, droppedAtDownPeer: 0, unreachable: 84 }
    }
  },
  {
    why: '3 peers, loss and duplication',
    seed: 5,
    traceHash: '282bc9feee05f8fb',
    numbers: {
      liveAtEnd: 3, faultsEndMs: 26586, endMs: 30636, slowestAfterTMs: 99, storageWrites: 210, simEvents: 936,
      pings: { sent: 210, resent: 54, completed: 204, gaveUp: 6, afterT: 30 },
      messages: { published: 0, sent: 505, delivered: 460, lost: 55, partitioned: 0, duplicated: 19, droppedAtDownPeer: 0, unreachable: 9 }
    }
  }
]

describe('echo simulator, pinned runs', () => {
  for (const pinned of ECHO_PINNED) {
    it(`seed ${pinned.seed} (${pinned.why}) replays its pinned trace`, () => {
      const r = runEchoScenario({ seed: pinned.seed })
      assert.deepEqual(r.violations, [])
      assert.equal(r.traceHash, pinned.traceHash)
      assert.deepEqual({
        liveAtEnd: r.liveAtEnd,
        faultsEndMs: r.faultsEndMs,
        endMs: r.endMs,
        slowestAfterTMs: r.slowestAfterTMs,
        storageWrites: r.storageWrites,
        simEvents: r.simEvents,
        pings: r.pings,
        messages: r.messages
      }, pinned.numbers)
    })
  }
})
