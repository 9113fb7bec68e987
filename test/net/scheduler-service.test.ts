/**
 * The scheduler shell (src/net/scheduler-service.ts) with stub components (no libp2p): it runs
 * what the scheduler dispatches, feeds outcomes back, aborts cancelled copies, joins duplicate
 * task ids, answers backpressure by name and aborts everything on stop.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { CID } from 'multiformats/cid'
import { InvalidInputError, PeerUnavailableError } from '../../src/model/errors.ts'
import { QuorumNotReachedError, RETAINED_TASKS_MAX, SchedulerService } from '../../src/net/scheduler-service.ts'
import type { CallTaskOptions, CallTaskResult, ExecutorTask, SchedulerServiceInit } from '../../src/net/scheduler-service.ts'
import { createLogger } from '../../src/node/logger.ts'
import { createRandom } from '../../src/protocol/random.ts'

const log = createLogger('test', { level: 'silent' })
const fn = CID.parse('bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')

interface Call { peer: string, args: unknown[], options: CallTaskOptions, resolve: (r: CallTaskResult) => void, reject: (e: Error) => void }

function harness (peers: string[], init: SchedulerServiceInit = {}): { service: SchedulerService, calls: Call[], gone: (peer: string) => void, waitCalls: (n: number) => Promise<void> } {
  const calls: Call[] = []
  let listener: ((peer: string) => void) | undefined
  const service = new SchedulerService({
    callTask: async (_fn, _export, args, peer, options) => await new Promise<CallTaskResult>((resolve, reject) => {
      calls.push({ peer, args, options, resolve, reject })
      options.signal.addEventListener('abort', () => { reject(options.signal.reason as Error) }, { once: true })
    }),
    candidates: () => peers.map(peerId => ({ peerId, slotsMax: 1, slotsFree: 1, queueLength: 0 })),
    onPeerGone: (l) => { listener = l; return () => { listener = undefined } },
    now: () => performance.now(),
    random: createRandom(7),
    log
  }, init)
  service.start()
  const waitCalls = async (n: number): Promise<void> => {
    for (let i = 0; calls.length < n; i++) {
      assert.ok(i < 500, `${n} calls within 5 s (have ${calls.length})`)
      await new Promise(resolve => setTimeout(resolve, 10))
    }
  }
  return { service, calls, gone: (peer) => listener?.(peer), waitCalls }
}

function task (taskId: string, args: unknown[] = [1]): ExecutorTask {
  return { taskId, fn, export: 'run', args, inputs: [], ref: false }
}

function answer (call: Call, value: unknown): void {
  call.resolve({ resultCid: `bafy-${String(value)}`, value, peer: call.peer, timings: { queueMs: 1, fetchMs: 2, runMs: 3 } })
}

describe('SchedulerService', () => {
  test('runs a task on a candidate peer and resolves with its result, timings and attempts', async () => {
    const h = harness(['A', 'B'])
    const attempts: Array<[number, string]> = []
    const promise = h.service.run(task('t1', [5]), { onAttempt: (a, p) => attempts.push([a, p]) })
    await h.waitCalls(1)
    assert.deepEqual(h.calls[0].args, [5])
    assert.equal(h.calls[0].options.ref, false)
    answer(h.calls[0], 10)
    const result = await promise
    assert.equal(result.value, 10)
    assert.equal(result.peer, h.calls[0].peer)
    assert.equal(result.attempts, 1)
    assert.deepEqual(attempts, [[1, h.calls[0].peer]])
    assert.equal(result.timings.fetchMs, 2)
    assert.equal(result.timings.runMs, 3)
    assert.ok(result.timings.queueMs >= 1 && result.timings.totalMs >= 0)
    assert.equal(h.service.counts().pending, 0)
    h.service.stop()
  })

  test('a retryable failure is retried on another peer; a non-retryable one rejects with that error', async () => {
    const h = harness(['A', 'B'], { retryBaseMs: 5, retryMaxMs: 10 })
    const promise = h.service.run(task('t1'))
    await h.waitCalls(1)
    h.calls[0].reject(new PeerUnavailableError('went away'))
    await h.waitCalls(2)
    assert.notEqual(h.calls[1].peer, h.calls[0].peer)
    answer(h.calls[1], 'ok')
    assert.equal((await promise).attempts, 2)

    const failing = h.service.run(task('t2'))
    await h.waitCalls(3)
    h.calls[2].reject(new InvalidInputError('no such export'))
    await assert.rejects(failing, { name: 'InvalidInputError' })
    h.service.stop()
  })

  test(`answers SchedulerQueueFullError one past pendingMax`, async () => {
    const h = harness([], { pendingMax: 2 })
    const a = h.service.run(task('t1'))
    const b = h.service.run(task('t2'))
    await assert.rejects(h.service.run(task('t3')), { name: 'SchedulerQueueFullError', retryable: true })
    h.service.stop()
    await assert.rejects(a, { name: 'AbortedError' })
    await assert.rejects(b, { name: 'AbortedError' })
  })

  test('two callers of one task id share one call; the task is cancelled only when both give up', async () => {
    const h = harness(['A'])
    const first = new AbortController()
    const second = new AbortController()
    const p1 = h.service.run(task('same'), { signal: first.signal })
    const p2 = h.service.run(task('same'), { signal: second.signal })
    await h.waitCalls(1)
    first.abort()
    await assert.rejects(p1, { name: 'AbortedError' })
    assert.equal(h.calls[0].options.signal.aborted, false, 'one caller still waits: the call goes on')
    second.abort()
    await assert.rejects(p2, { name: 'AbortedError' })
    assert.equal(h.calls[0].options.signal.aborted, true)
    assert.equal(h.calls.length, 1)
    assert.equal(h.service.counts().pending, 0)
    const p3 = h.service.run(task('joined'))
    const p4 = h.service.run(task('joined'))
    await h.waitCalls(2)
    answer(h.calls[1], 7)
    assert.deepEqual([(await p3).value, (await p4).value], [7, 7])
    assert.equal(h.calls.length, 2)
    h.service.stop()
  })

  test('a lost peer\'s copy is aborted and the task re-placed elsewhere', async () => {
    const h = harness(['A', 'B'])
    const promise = h.service.run(task('t1'))
    await h.waitCalls(1)
    const first = h.calls[0]
    h.gone(first.peer)
    await h.waitCalls(2)
    assert.equal(first.options.signal.aborted, true)
    assert.notEqual(h.calls[1].peer, first.peer)
    answer(h.calls[1], 1)
    assert.equal((await promise).attempts, 2)
    h.service.stop()
  })

  test('silence past attemptTimeoutMs aborts the copy and retries; running out of attempts is a TimeoutError', async () => {
    const h = harness(['A', 'B'], { attemptTimeoutMs: 30, retryBaseMs: 1, retryMaxMs: 2, attemptsMax: 2 })
    const promise = h.service.run(task('t1'))
    await assert.rejects(promise, { name: 'TimeoutError' })
    assert.equal(h.calls.length, 2)
    assert.ok(h.calls.every(c => c.options.signal.aborted))
    h.service.stop()
  })

  test('stop aborts every copy in flight and every caller hears AbortedError; run after stop is refused', async () => {
    const h = harness(['A'])
    const promise = h.service.run(task('t1'))
    await h.waitCalls(1)
    h.service.stop()
    await assert.rejects(promise, { name: 'AbortedError', message: /stopping/ })
    assert.equal(h.calls[0].options.signal.aborted, true)
    await assert.rejects(h.service.run(task('t2')), { name: 'AbortedError' })
  })
})

describe('SchedulerService: verification', () => {
  const QUORUM = { replicas: 3, quorum: 2, spotCheckRate: 0 }

  function answerCid (call: Call, cid: string): void {
    call.resolve({ resultCid: cid, value: cid, peer: call.peer, signature: new Uint8Array(64), timings: { queueMs: 0, fetchMs: 0, runMs: 1 } })
  }

  test('replicas run on distinct peers; the result is accepted once a quorum agrees, with its attestations', async () => {
    const h = harness(['A', 'B', 'C', 'D'])
    const promise = h.service.run({ ...task('q'), policy: QUORUM })
    await h.waitCalls(3)
    assert.equal(new Set(h.calls.map(c => c.peer)).size, 3, 'three distinct peers')
    answerCid(h.calls[0], 'bafyx')
    answerCid(h.calls[1], 'bafyx')
    const result = await promise
    assert.equal(result.resultCid, 'bafyx')
    assert.deepEqual(result.attestations.map(a => a.role).sort(), ['accepted', 'agreed'])
    assert.equal(h.service.counters.replicas, 3)
    h.service.stop()
  })

  test('no quorum among every replica allowed: QuorumNotReachedError listing the answers', async () => {
    const h = harness(['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H'])
    const promise = h.service.run({ ...task('q'), policy: QUORUM })
    const settled = promise.then(() => undefined, (err: Error) => err)
    let answered = 0
    for (let i = 0; i < 200 && answered < 7; i++) {
      while (answered < h.calls.length) { answerCid(h.calls[answered], `bafy${answered}`); answered++ }
      await new Promise(resolve => setTimeout(resolve, 10))
    }
    const err = await settled
    assert.ok(err instanceof QuorumNotReachedError, String(err))
    assert.equal(err.code, 'ERR_QUORUM_NOT_REACHED')
    assert.equal(err.attestations.length, answered)
    assert.equal(new Set(err.attestations.map(a => a.peer)).size, answered, 'every answer from its own peer')
    h.service.stop()
  })

  test("a straggler's backup copy answering, or its primary, settles the task either way", async () => {
    for (const winner of ['primary', 'backup'] as const) {
      const h = harness(['A', 'B'], { stragglerSamplesMin: 1, runtimeSamplesMax: 1, stragglerMinMs: 1, stragglerFactor: 1 })
      const first = h.service.run(task('warm'))
      await h.waitCalls(1)
      answer(h.calls[0], 1)
      await first
      const promise = h.service.run({ ...task('slow'), policy: { replicas: 1, quorum: 1, spotCheckRate: 0 } })
      await h.waitCalls(3) // the primary, then its backup on the other peer
      assert.notEqual(h.calls[1].peer, h.calls[2].peer)
      answer(winner === 'primary' ? h.calls[1] : h.calls[2], 7)
      assert.equal((await promise).value, 7, `${winner} answered`)
      h.service.stop()
    }
  })
})

describe('SchedulerService: settled tasks kept', () => {
  test(`the most recent RETAINED_TASKS_MAX (${RETAINED_TASKS_MAX}) are answered again without a call; one past, the oldest is run again`, async () => {
    let calls = 0
    const service = new SchedulerService({
      callTask: async (_fn, _export, args, peer) => {
        calls++
        return { resultCid: `bafy-${String(args[0])}`, value: args[0], peer, signature: new Uint8Array(64), timings: { queueMs: 0, fetchMs: 0, runMs: 0 } }
      },
      candidates: () => [{ peerId: 'A', slotsMax: 64, slotsFree: 64, queueLength: 0 }],
      onPeerGone: () => () => {},
      now: () => performance.now(),
      random: createRandom(3),
      log
    })
    service.start()
    const ids = Array.from({ length: RETAINED_TASKS_MAX + 1 }, (_, i) => i)
    for (let i = 0; i < ids.length; i += 256) await Promise.all(ids.slice(i, i + 256).map(async n => await service.run({ ...task(`t${n}`, [n]), argsBytes: 8 })))
    assert.equal(calls, RETAINED_TASKS_MAX + 1)
    // (What is kept is the result's CID and bytes, not the decoded value.)
    assert.equal((await service.run(task(`t${RETAINED_TASKS_MAX}`, [RETAINED_TASKS_MAX]))).resultCid, `bafy-${RETAINED_TASKS_MAX}`)
    assert.equal(calls, RETAINED_TASKS_MAX + 1, 'the newest is answered from what was kept')
    assert.equal((await service.run(task('t0', [0]))).value, 0)
    assert.equal(calls, RETAINED_TASKS_MAX + 2, 'the oldest was let go: it runs again')
    service.stop()
  })
})
