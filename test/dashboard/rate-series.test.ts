import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { CHART_SECONDS, IN_FLIGHT_TRACKED_MAX, RateSeries } from '../../src/dashboard/rate-series.ts'

const RUN = 'bafyrun'

describe('the numbers behind the dashboard\'s charts', () => {
  test('tasks finished per second and tasks running, from run and call events', () => {
    const rates = new RateSeries()
    rates.apply({ type: 'run:task:started', runId: RUN, taskId: 'a', peer: 'p', attempt: 1, atMs: 10_000 })
    rates.apply({ type: 'run:task:started', runId: RUN, taskId: 'b', peer: 'p', attempt: 1, atMs: 10_100 })
    rates.apply({ type: 'call:attempt', callId: 'c1', attempt: 1, peer: 'p', atMs: 10_200 })
    rates.apply({ type: 'run:task:started', runId: RUN, taskId: 'a', peer: 'q', attempt: 2, atMs: 10_300 }) // a retry: still one task
    assert.equal(rates.tasksRunning, 3)
    rates.apply({ type: 'run:task:done', runId: RUN, taskId: 'a', peer: 'q', ms: 1, atMs: 11_000 })
    rates.apply({ type: 'call:done', callId: 'c1', peer: 'p', attempts: 1, totalMs: 900, atMs: 11_100 })
    rates.apply({ type: 'run:task:failed', runId: RUN, taskId: 'b', error: { name: 'E', code: 'ERR_X', message: 'x', retryable: false }, atMs: 12_500 })
    const s = rates.series(13_000)
    assert.equal(s.seconds.length, CHART_SECONDS)
    assert.equal(s.seconds.at(-1), 13)
    assert.deepEqual(s.finished.slice(-4), [0, 2, 1, 0])
    assert.deepEqual(s.running.slice(-4), [3, 3, 1, 0], 'the most running at once in each second')
    assert.equal(rates.tasksRunning, 0)
  })

  test(`history older than CHART_SECONDS (${CHART_SECONDS}) is dropped`, () => {
    const rates = new RateSeries()
    rates.apply({ type: 'call:done', callId: 'old', peer: 'p', attempts: 1, totalMs: 1, atMs: 0 })
    rates.apply({ type: 'call:done', callId: 'new', peer: 'p', attempts: 1, totalMs: 1, atMs: CHART_SECONDS * 1000 })
    const s = rates.series(CHART_SECONDS * 1000)
    assert.equal(s.finished.reduce((a, b) => a + b, 0), 1)
  })

  test(`at most IN_FLIGHT_TRACKED_MAX (${IN_FLIGHT_TRACKED_MAX}) tasks are tracked; one more forgets the oldest`, () => {
    const rates = new RateSeries()
    for (let i = 0; i < IN_FLIGHT_TRACKED_MAX; i++) rates.apply({ type: 'call:attempt', callId: `c${i}`, attempt: 1, peer: 'p', atMs: 1000 })
    assert.equal(rates.tasksRunning, IN_FLIGHT_TRACKED_MAX)
    rates.apply({ type: 'call:attempt', callId: 'one-more', attempt: 1, peer: 'p', atMs: 1000 })
    assert.equal(rates.tasksRunning, IN_FLIGHT_TRACKED_MAX)
    rates.apply({ type: 'call:done', callId: 'c0', peer: 'p', attempts: 1, totalMs: 1, atMs: 1001 })
    assert.equal(rates.tasksRunning, IN_FLIGHT_TRACKED_MAX, 'the oldest was forgotten, so its end changes nothing')
  })
})
