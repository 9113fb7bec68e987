// The simulator's event queue: by time, then insertion order; never into the past.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { EventQueue } from '../../src/sim/event-queue.ts'
import { createRandom } from '../../src/protocol/random.ts'

describe('sim event queue', () => {
  it('pops by time, then in insertion order', () => {
    const q = new EventQueue<string>()
    q.push(5, 'c')
    q.push(1, 'a')
    q.push(5, 'd')
    q.push(3, 'b')
    q.push(1, 'a2')
    const out: string[] = []
    for (let e = q.pop(); e !== undefined; e = q.pop()) out.push(`${e.timeMs}:${e.item}`)
    assert.deepEqual(out, ['1:a', '1:a2', '3:b', '5:c', '5:d'])
    assert.equal(q.size, 0)
  })

  it('puts items pushed at the current time, while it drains, after those already there', () => {
    const q = new EventQueue<string>()
    q.push(1, 'x')
    q.push(1, 'y')
    const first = q.pop()
    assert.equal(first?.item, 'x')
    q.push(1, 'z')
    assert.equal(q.pop()?.item, 'y')
    assert.equal(q.pop()?.item, 'z')
    q.push(1, 'w') // bucket was emptied; a fresh one at the same time
    assert.equal(q.pop()?.item, 'w')
  })

  it('matches a sort by (time, insertion) on random input', () => {
    const rng = createRandom(11)
    const q = new EventQueue<number>()
    const all: Array<[number, number]> = []
    for (let i = 0; i < 5000; i++) {
      const t = rng.int(0, 300)
      q.push(t, i)
      all.push([t, i])
    }
    all.sort((a, b) => a[0] - b[0] || a[1] - b[1])
    const out: Array<[number, number]> = []
    for (let e = q.pop(); e !== undefined; e = q.pop()) out.push([e.timeMs, e.item])
    assert.deepEqual(out, all)
  })

  it('refuses an event in the past', () => {
    const q = new EventQueue<string>()
    q.push(10, 'a')
    q.pop()
    assert.throws(() => q.push(9, 'b'), /not scheduled in the past/)
    assert.throws(() => q.push(NaN, 'c'), /finite/)
  })
})
