/**
 * The simulated world every scenario runs in: one clock, one event queue, one trace, one list of
 * violations. The network, the nodes and the faults all schedule into the same queue, so their
 * events interleave in one order that depends only on the seed: items come out by time, then in
 * the order they were pushed (EventQueue), and nothing else decides.
 *
 * Events are actions (closures) rather than tagged records: a component schedules what it will do
 * when the time comes, and the world need not know every component's event kinds. An action that
 * is superseded (a timer re-armed earlier) stays queued and finds nothing to do, which is cheaper
 * than removing it and keeps the queue append-only.
 */
import { assert } from '../model/errors.ts'
import { EventQueue } from './event-queue.ts'
import { TraceHash } from './trace.ts'

/** Enough to read why a seed failed; the rest are counted (violationCount), not kept. */
export const VIOLATIONS_KEPT = 20

export interface RunOptions {
  /** Events after this time are not run. */
  endMs: number
  /** When to call `check` (sorted ascending; a repeated time is checked once). A check at time t
   *  runs after every event at t, so it sees the world as it is at the end of that ms. */
  checkTimesMs: readonly number[]
  check: () => void
  /** A budget, so that a broken machine (or scenario) ends as a violation, not a hang. */
  simEventsMax: number
}

export class SimWorld {
  readonly queue = new EventQueue<() => void>()
  readonly trace: TraceHash
  /** Sim time: the time of the event (or check) being run. */
  nowMs = 0
  /** Events popped and run, superseded ones included. */
  simEvents = 0
  readonly violations: string[] = []
  violationCount = 0

  constructor (traceLinesKept = 0) {
    this.trace = new TraceHash(traceLinesKept)
  }

  /** Run `action` at `timeMs` (not earlier than the event being run). */
  at (timeMs: number, action: () => void): void {
    this.queue.push(timeMs, action)
  }

  violate (message: string): void {
    this.violationCount += 1
    if (this.violations.length < VIOLATIONS_KEPT) this.violations.push(`t=${this.nowMs}: ${message}`)
  }

  /** Run events and checks in time order until `endMs` or the queue runs dry. Never throws for a
   *  bug in what is simulated: an assertion (in a machine or here) becomes a violation with the
   *  time it happened, and the run stops there. */
  run (options: RunOptions): void {
    const { endMs, checkTimesMs, check, simEventsMax } = options
    let checkIndex = 0
    try {
      for (;;) {
        if (this.simEvents > simEventsMax) {
          this.violate(`more than ${simEventsMax} sim events: something schedules without end`)
          break
        }
        const eventMs = this.queue.peekTimeMs()
        const checkMs = checkIndex < checkTimesMs.length ? checkTimesMs[checkIndex] : undefined
        if (checkMs !== undefined && (eventMs === undefined || checkMs < eventMs)) {
          this.nowMs = checkMs
          checkIndex += 1
          if (checkMs !== checkTimesMs[checkIndex - 2]) check() // skip a duplicate time
          continue
        }
        if (eventMs === undefined || eventMs > endMs) break
        const popped = this.queue.pop()
        assert(popped !== undefined, 'peeked event is there')
        this.nowMs = popped.timeMs
        this.simEvents += 1
        popped.item()
      }
    } catch (err) {
      this.violate(`crashed: ${(err as Error).stack ?? String(err)}`)
    }
  }
}

/** Check times every `everyMs` from 0 below `endMs`, plus the `extra` times, sorted. */
export function checkTimes (endMs: number, everyMs: number, extra: readonly number[] = []): number[] {
  assert(everyMs >= 1, 'checks are at least 1 ms apart')
  const times: number[] = []
  for (let t = 0; t < endMs; t += everyMs) times.push(t)
  times.push(...extra)
  times.sort((a, b) => a - b)
  return times
}
