/**
 * The simulator's discrete-event queue: items come out by time, then in insertion order, so
 * two runs that push the same items in the same order pop them in the same order.
 *
 * Built as a calendar: one FIFO bucket per distinct time, plus a binary min-heap of the times that
 * have a bucket. A network of n peers schedules about n² deliveries per announce round, spread
 * over the 50 ms of delay jitter, so most pushes land in an existing bucket (O(1)) and the heap
 * stays small (one entry per distinct ms). Times are usually whole ms, but any finite number works.
 */
import { assert } from '../model/errors.ts'

export class EventQueue<T> {
  private readonly buckets = new Map<number, { items: T[], head: number }>()
  private readonly times: number[] = [] // min-heap of the keys of `buckets`
  private count = 0
  /** The time of the last item popped: nothing earlier may be pushed after it. */
  private nowMs = -Infinity

  get size (): number {
    return this.count
  }

  push (timeMs: number, item: T): void {
    assert(Number.isFinite(timeMs), 'event time is finite')
    assert(timeMs >= this.nowMs, `events are not scheduled in the past (${timeMs} < ${this.nowMs})`)
    let bucket = this.buckets.get(timeMs)
    if (bucket === undefined) {
      bucket = { items: [], head: 0 }
      this.buckets.set(timeMs, bucket)
      this.heapPush(timeMs)
    }
    bucket.items.push(item)
    this.count += 1
  }

  peekTimeMs (): number | undefined {
    return this.times.length === 0 ? undefined : this.times[0]
  }

  pop (): { timeMs: number, item: T } | undefined {
    if (this.times.length === 0) return undefined
    const timeMs = this.times[0]
    const bucket = this.buckets.get(timeMs)
    assert(bucket !== undefined && bucket.head < bucket.items.length, 'every queued time has a non-empty bucket')
    const item = bucket.items[bucket.head]
    bucket.head += 1
    if (bucket.head === bucket.items.length) {
      // Items pushed at timeMs while this bucket drains were appended to it; once it is empty
      // it goes, and a later push at the same time starts a fresh bucket — still in order.
      this.buckets.delete(timeMs)
      this.heapPop()
    }
    this.count -= 1
    this.nowMs = timeMs
    return { timeMs, item }
  }

  private heapPush (value: number): void {
    const heap = this.times
    heap.push(value)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent] <= value) break
      heap[i] = heap[parent]
      i = parent
    }
    heap[i] = value
  }

  private heapPop (): void {
    const heap = this.times
    const last = heap.pop() as number
    if (heap.length === 0) return
    let i = 0
    const n = heap.length
    for (;;) {
      const left = 2 * i + 1
      if (left >= n) break
      const right = left + 1
      const child = right < n && heap[right] < heap[left] ? right : left
      if (heap[child] >= last) break
      heap[i] = heap[child]
      i = child
    }
    heap[i] = last
  }
}
