// Property: for any order of deliveries, losses, duplicates, time steps and crash-restarts among
// three home-set peers, at most one peer believes it holds the lease at any time, no grantor
// grants one epoch to two drivers or anything it has not persisted, and epochs of new drivers only
// grow. Messages to a restarted peer are still delivered to its new life (a real network may).
// fast-check prints the seed and path that replay a failure.
import '../helpers/property.ts'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { createLease } from '../../src/protocol/lease/index.ts'
import type { Lease, LeasePromise, RefusalReason } from '../../src/protocol/lease/index.ts'

const HOME = ['A', 'B', 'C']

interface Message { from: string, to: string, kind: 'request' | 'grant' | 'refuse', epoch: number, round: number, reason?: RefusalReason }

type Command =
  | { type: 'deliver', pick: number }
  | { type: 'duplicate', pick: number }
  | { type: 'drop', pick: number }
  | { type: 'advance', ms: number }
  | { type: 'restart', peer: number }

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ type: fc.constant('deliver' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('duplicate' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('drop' as const), pick: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ type: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 400 }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('restart' as const), peer: fc.integer({ min: 0, max: 2 }) }) }
)

class World {
  nowMs = 0
  readonly machines: Lease[]
  readonly stored: Array<LeasePromise | undefined> = [undefined, undefined, undefined]
  readonly inFlight: Message[] = []
  readonly granted = HOME.map(() => new Map<number, string>())
  lastDriverEpoch = 0
  drivers = 0

  constructor () {
    this.machines = HOME.map(id => createLease({ selfId: id, homeSet: HOME }, 0))
    this.fire()
  }

  run (c: Command): void {
    switch (c.type) {
      case 'deliver': case 'duplicate': case 'drop': {
        if (this.inFlight.length === 0) return
        const i = c.pick % this.inFlight.length
        const m = this.inFlight[i]
        if (c.type === 'duplicate') { this.inFlight.push({ ...m }); return }
        this.inFlight.splice(i, 1)
        if (c.type === 'drop') return
        const to = HOME.indexOf(m.to)
        const machine = this.machines[to]
        if (m.kind === 'request') machine.handleLeaseRequest(m.from, m.epoch, m.round, this.nowMs)
        else if (m.kind === 'grant') machine.handleLeaseGrant(m.from, m.epoch, m.round, this.nowMs)
        else machine.handleLeaseRefusal(m.from, m.epoch, m.round, m.reason!, this.nowMs)
        this.drain(to)
        this.fire()
        return
      }
      case 'advance':
        this.nowMs += c.ms
        this.fire()
        return
      case 'restart':
        this.machines[c.peer] = createLease({ selfId: HOME[c.peer], homeSet: HOME, restored: this.stored[c.peer] }, this.nowMs)
        this.fire()
    }
  }

  /** Every timer due now, in peer order, until none is. */
  private fire (): void {
    for (let again = true; again;) {
      again = false
      this.machines.forEach((m, i) => {
        if (m.nextTimeoutMs() <= this.nowMs) {
          m.handleTimeout(this.nowMs)
          this.drain(i)
          again = true
        }
      })
    }
  }

  private drain (i: number): void {
    const self = HOME[i]
    for (let out = this.machines[i].poll(); out !== undefined; out = this.machines[i].poll()) {
      switch (out.type) {
        case 'persist':
          assert.ok(this.stored[i] === undefined || out.promise.epoch > this.stored[i]!.epoch, 'persisted epochs grow')
          this.stored[i] = { ...out.promise }
          break
        case 'request':
          this.inFlight.push({ from: self, to: out.to, kind: 'request', epoch: out.epoch, round: out.round })
          break
        case 'grant': {
          const p = this.stored[i]
          assert.ok(p !== undefined && p.epoch === out.epoch && p.holder === out.to, 'a grant is persisted before it is sent')
          const earlier = this.granted[i].get(out.epoch)
          assert.ok(earlier === undefined || earlier === out.to, `${self} granted epoch ${out.epoch} to ${earlier} and ${out.to}`)
          this.granted[i].set(out.epoch, out.to)
          this.inFlight.push({ from: self, to: out.to, kind: 'grant', epoch: out.epoch, round: out.round })
          break
        }
        case 'refuse':
          this.inFlight.push({ from: self, to: out.to, kind: 'refuse', epoch: out.epoch, round: out.round, reason: out.reason })
          break
        case 'became-driver':
          assert.ok(out.epoch > this.lastDriverEpoch, `driver of epoch ${out.epoch} after epoch ${this.lastDriverEpoch}`)
          this.lastDriverEpoch = out.epoch
          this.drivers += 1
          break
      }
    }
  }

  checkOneHolder (): void {
    const holders = HOME.filter((_, i) => this.machines[i].holdsLease(this.nowMs))
    assert.ok(holders.length <= 1, `at ${this.nowMs} ms ${holders.join(' and ')} both hold the lease`)
  }
}

describe('lease property', () => {
  it('never two holders, one driver per epoch, whatever the message order, loss and restarts', () => {
    let drivers = 0
    fc.assert(fc.property(fc.array(command, { minLength: 20, maxLength: 300 }), (commands) => {
      const world = new World()
      for (const c of commands) {
        world.run(c)
        world.checkOneHolder()
      }
      drivers += world.drivers
    }), { numRuns: 2000 })
    assert.ok(drivers > 150, `the runs elected drivers (${drivers})`)
  })
})
