import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { PeerBudget, Slots } from '../../src/net/slots.ts'
import type { Capacity } from '../../src/net/slots.ts'

describe('Slots', () => {
  test('slotsMax run, queueLengthMax wait, one more is refused with the retryable QueueFullError', async () => {
    const reports: Capacity[] = []
    const slots = new Slots({ slotsMax: 2, queueLengthMax: 2, onChange: c => reports.push(c) })
    const signal = new AbortController().signal
    const r1 = await slots.acquire(signal)
    await slots.acquire(signal)
    assert.deepEqual(slots.capacity(), { slotsFree: 0, slotsMax: 2, queueLength: 0 })
    let thirdRan = false
    const third = slots.acquire(signal).then(release => { thirdRan = true; return release })
    const fourth = slots.acquire(signal)
    assert.equal(slots.capacity().queueLength, 2)
    await assert.rejects(slots.acquire(signal), (err: Error & { retryable?: boolean }) => err.name === 'QueueFullError' && err.retryable === true)
    r1()
    r1() // twice is harmless
    const r3 = await third
    assert.equal(thirdRan, true)
    assert.deepEqual(slots.capacity(), { slotsFree: 0, slotsMax: 2, queueLength: 1 })
    r3()
    ;(await fourth)()
    assert.deepEqual(reports.at(-1), { slotsFree: 1, slotsMax: 2, queueLength: 0 })
  })

  test('a queued task that is cancelled leaves the queue; an aborted signal never gets a slot', async () => {
    const slots = new Slots({ slotsMax: 1, queueLengthMax: 4 })
    const release = await slots.acquire(new AbortController().signal)
    const controller = new AbortController()
    const waiting = slots.acquire(controller.signal)
    assert.equal(slots.capacity().queueLength, 1)
    controller.abort()
    await assert.rejects(waiting, { name: 'AbortedError' })
    assert.equal(slots.capacity().queueLength, 0)
    await assert.rejects(slots.acquire(controller.signal), { name: 'AbortedError' })
    release()
    assert.equal(slots.capacity().slotsFree, 1)
  })

  test('a queue of zero refuses as soon as the slots are taken', async () => {
    const slots = new Slots({ slotsMax: 1, queueLengthMax: 0 })
    await slots.acquire(new AbortController().signal)
    await assert.rejects(slots.acquire(new AbortController().signal), { name: 'QueueFullError' })
  })

  test('checkRoom refuses exactly when acquire would', async () => {
    const slots = new Slots({ slotsMax: 1, queueLengthMax: 1 })
    const signal = new AbortController().signal
    slots.checkRoom()
    const release = await slots.acquire(signal)
    slots.checkRoom() // the queue has room
    const queued = slots.acquire(signal)
    assert.throws(() => slots.checkRoom(), { name: 'QueueFullError' })
    release()
    ;(await queued)()
    slots.checkRoom()
  })
})

describe('PeerBudget', () => {
  const busy = (err: unknown): boolean => (err as { code: string, retryable: boolean }).code === 'ERR_PEER_BUSY' && (err as { retryable: boolean }).retryable

  test('perPeerMax per peer; one more for that peer is refused at once, while other peers still get theirs', () => {
    const budget = new PeerBudget({ perPeerMax: 2, totalMax: 5, what: 'code fetches' })
    const a1 = budget.tryAcquire('a')
    budget.tryAcquire('a')
    assert.throws(() => budget.tryAcquire('a'), (err: Error) => busy(err) && /2 code fetches already running for peer a/.test(err.message))
    budget.tryAcquire('b')
    assert.equal(budget.held('a'), 2)
    assert.equal(budget.held(), 3)
    a1()
    a1() // twice is harmless
    assert.equal(budget.held('a'), 1)
    budget.tryAcquire('a')
  })

  test('totalMax over all peers; one more is refused until a unit comes back', () => {
    const budget = new PeerBudget({ perPeerMax: 2, totalMax: 3, what: 'code fetches' })
    const releases = [budget.tryAcquire('a'), budget.tryAcquire('b'), budget.tryAcquire('c')]
    assert.throws(() => budget.tryAcquire('d'), (err: Error) => busy(err) && /limit for all peers/.test(err.message))
    releases[1]()
    budget.tryAcquire('d')
    for (const release of releases) release()
    assert.equal(budget.held(), 1)
    assert.equal(budget.held('a'), 0)
  })
})
