/**
 * The numbers behind the dashboard's charts, computed from the peer's progress events (not from
 * its /metrics endpoint): tasks finished per second, and tasks running, per second over the last
 * CHART_SECONDS. A task is a run's task (`run:task:*`) or a call (`call:*`) this peer placed.
 * No DOM here: the chart view reads it, tests feed it.
 */
import type { ProgressEvent } from '../api/events.ts'

/** Seconds the charts span: two minutes shows a run of seconds to minutes and its tail. */
export const CHART_SECONDS = 120

/**
 * Tasks in flight the charts track at once. A peer holds at most a few thousand tasks
 * (its scheduler queue); an id whose end event never came (events dropped) must not stay
 * forever: past this the oldest is forgotten.
 */
export const IN_FLIGHT_TRACKED_MAX = 10_000

export interface Series {
  /** Seconds since the epoch of each point, oldest first (CHART_SECONDS points). */
  seconds: number[]
  /** Tasks finished (done or failed) in each second. */
  finished: number[]
  /** Most tasks running at once in each second. */
  running: number[]
}

export class RateSeries {
  private readonly finished = new Map<number, number>()
  private readonly running = new Map<number, number>()
  private readonly inFlight = new Set<string>()

  apply (event: ProgressEvent): void {
    const second = Math.floor(event.atMs / 1000)
    switch (event.type) {
      case 'run:task:started': this.start(`${event.runId}/${event.taskId}`, second); break
      case 'run:task:done':
      case 'run:task:failed': this.end(`${event.runId}/${event.taskId}`, second); break
      case 'call:attempt': this.start(`call/${event.callId}`, second); break
      case 'call:done':
      case 'call:failed': this.end(`call/${event.callId}`, second); break
      default: return
    }
    this.prune(second)
  }

  /** The last CHART_SECONDS seconds up to `nowMs`. */
  series (nowMs: number): Series {
    const last = Math.floor(nowMs / 1000)
    const out: Series = { seconds: [], finished: [], running: [] }
    let running = 0
    for (let s = last - CHART_SECONDS + 1; s <= last; s++) {
      out.seconds.push(s)
      out.finished.push(this.finished.get(s) ?? 0)
      // A second with no event had as many running as the end of the one before.
      running = this.running.get(s) ?? (s <= this.lastRunningSecond() ? running : this.inFlight.size)
      out.running.push(running)
    }
    return out
  }

  get tasksRunning (): number {
    return this.inFlight.size
  }

  private start (id: string, second: number): void {
    if (this.inFlight.has(id)) return // a retry of a task already counted
    if (this.inFlight.size >= IN_FLIGHT_TRACKED_MAX) this.inFlight.delete(this.inFlight.values().next().value!)
    this.inFlight.add(id)
    this.running.set(second, Math.max(this.running.get(second) ?? 0, this.inFlight.size))
  }

  private end (id: string, second: number): void {
    // Up to its end, it ran in this second too.
    this.running.set(second, Math.max(this.running.get(second) ?? 0, this.inFlight.size))
    this.inFlight.delete(id)
    this.finished.set(second, (this.finished.get(second) ?? 0) + 1)
  }

  private lastRunningSecond (): number {
    let last = -Infinity
    for (const s of this.running.keys()) if (s > last) last = s
    return last
  }

  /** Keep CHART_SECONDS of history: the maps hold at most that many seconds. */
  private prune (nowSecond: number): void {
    for (const map of [this.finished, this.running]) {
      for (const s of map.keys()) if (s <= nowSecond - CHART_SECONDS) map.delete(s)
    }
  }
}
