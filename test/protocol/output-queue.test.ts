import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { OutputQueue } from '../../src/protocol/output-queue.ts'

describe('OutputQueue', () => {
  test('outputs come out in the order pushed, and the queue is empty once drained', () => {
    const q = new OutputQueue<number>(8)
    for (const n of [1, 2, 3]) q.push(n)
    assert.equal(q.length, 3)
    assert.deepEqual([q.poll(), q.poll()], [1, 2])
    q.push(4)
    assert.deepEqual([q.poll(), q.poll(), q.poll()], [3, 4, undefined])
    assert.equal(q.length, 0)
  })

  test('one output past lengthMax undrained is a broken invariant (the shell stopped draining)', () => {
    const q = new OutputQueue<number>(3)
    for (const n of [1, 2, 3]) q.push(n)
    assert.throws(() => q.push(4), /assertion failed: the shell drains poll\(\) after every call/)
    q.poll()
    q.push(4)
    assert.throws(() => new OutputQueue(0), /assertion failed/)
  })
})
