import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { PROGRESS_LISTENERS_MAX, ProgressBus, TooManyListenersError } from '../../src/node/progress.ts'
import type { ProgressEvent } from '../../src/api/events.ts'

const event: ProgressEvent = { type: 'peer:state', peer: 'p', state: 'alive', atMs: 1 }

describe('ProgressBus', () => {
  test('delivers to every listener until it unsubscribes', () => {
    const bus = new ProgressBus()
    const got: string[] = []
    const stopA = bus.subscribe(() => got.push('a'))
    bus.subscribe(() => got.push('b'))
    bus.emit(event)
    stopA()
    bus.emit(event)
    assert.deepEqual(got, ['a', 'b', 'b'])
  })

  test('a listener that throws is dropped; the emitter and the others carry on', () => {
    const bus = new ProgressBus()
    let calls = 0
    bus.subscribe(() => { throw new Error('broken client') })
    bus.subscribe(() => { calls++ })
    bus.emit(event)
    bus.emit(event)
    assert.equal(calls, 2)
    assert.equal(bus.size, 1)
  })

  test('one listener past PROGRESS_LISTENERS_MAX is refused as busy', () => {
    const bus = new ProgressBus()
    const stops = Array.from({ length: PROGRESS_LISTENERS_MAX }, () => bus.subscribe(() => {}))
    assert.throws(() => bus.subscribe(() => {}), (err: Error) => err instanceof TooManyListenersError && (err as TooManyListenersError).retryable)
    stops[0]()
    bus.subscribe(() => {})
  })
})
