/**
 * Following a run from the CLI (`rhizome run`, `rhizome run-status --wait`): its events as a
 * live bar on a terminal (tasks done / running / queued, and per peer), or a line per task start
 * and finish elsewhere. Ctrl-C stops following, not the run: the peer drives it to its end
 * whether anyone watches or not.
 */
import { CID } from 'multiformats/cid'
import { CliError, EXIT_USAGE } from './command.ts'
import { progressBlock } from './progress.ts'
import { RunProgress } from './run-report.ts'
import type { ProgressBlock } from './progress.ts'
import type { ProgressEvent } from '../api/events.ts'
import type { RhizomeClient } from '../api/client.ts'
import type { CommandContext } from './command.ts'

/**
 * Follow `runId` until it ends — and the runs it continued as (continueAsNew), to the last of the
 * chain: that run's id once its `run:finished` arrived, undefined if Ctrl-C stopped the following
 * (the run goes on). `show: false` follows silently (for `--json`).
 */
export async function followRun (client: RhizomeClient, runId: string, context: CommandContext, show: boolean): Promise<string | undefined> {
  const view = new RunProgressView({ write: context.print, isTTY: context.isTTY, now: () => performance.now() })
  try {
    for (let current: string | undefined = runId; current !== undefined;) {
      const following: string = current
      current = undefined
      for await (const event of client.runEvents(following, { signal: context.signal })) {
        if (event.type === 'run:finished' && event.status === 'continued' && event.continuedAs !== undefined) current = event.continuedAs
        if (show) view.handle(event)
      }
      if (current === undefined) return following
    }
    return runId
  } catch (err) {
    if (context.signal.aborted) return undefined
    throw err
  } finally {
    if (show) view.done()
  }
}

/**
 * A terminal's live bar is redrawn at most this often: a fan-out of thousands of tasks sends
 * thousands of events a second, and redrawing on each would cost more than the run shows.
 */
export const PROGRESS_REDRAW_MS = 250
/** Off a terminal (a pipe, a log, CI) a summary line at most this often: one a second reads as a log. */
export const PROGRESS_LINE_MS = 1000

/**
 * What a followed run shows as its events arrive. On a terminal: the live bar (RunProgress.barLines),
 * redrawn in place at most every PROGRESS_REDRAW_MS, and once more when the run ends or the events
 * pause. Elsewhere: a line per task start and finish, as ever, and — only once a run has gone on
 * for PROGRESS_LINE_MS — its summary line at most that often, when it changed.
 */
export class RunProgressView {
  private readonly progress = new RunProgress()
  private readonly isTTY: boolean
  private readonly write: (text: string) => void
  private readonly now: () => number
  private readonly block: ProgressBlock
  private readonly intervalMs: number
  private lastDrawMs: number
  private lastSummary: string | undefined
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor (options: { write: (text: string) => void, isTTY: boolean, now: () => number }) {
    this.write = options.write
    this.isTTY = options.isTTY
    this.now = options.now
    this.block = progressBlock(options.write, options.isTTY)
    this.intervalMs = options.isTTY ? PROGRESS_REDRAW_MS : PROGRESS_LINE_MS
    // A terminal shows the bar at once; a log waits a line's interval (a short run prints none).
    this.lastDrawMs = options.isTTY ? -Infinity : options.now()
  }

  handle (event: ProgressEvent): void {
    const lines = this.progress.handle(event)
    if (!this.isTTY) for (const text of lines) this.write(`${text}\n`)
    if (event.type === 'run:finished') {
      if (this.isTTY) this.draw()
      return
    }
    if (this.now() - this.lastDrawMs >= this.intervalMs) this.draw()
    else if (this.isTTY) this.drawLater()
  }

  /** Stop: the bar's last state stays on the terminal; nothing more is drawn. */
  done (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.block.done()
  }

  private draw (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.lastDrawMs = this.now()
    if (this.isTTY) {
      this.block.update(this.progress.barLines())
      return
    }
    const summary = this.progress.barLines()[0]
    if (summary === this.lastSummary) return
    this.lastSummary = summary
    this.write(`${summary}\n`)
  }

  /** The events paused within an interval: show where they left off once it has passed. */
  private drawLater (): void {
    if (this.timer !== undefined) return
    this.timer = setTimeout(() => { this.timer = undefined; this.draw() }, Math.max(0, this.lastDrawMs + this.intervalMs - this.now()))
    this.timer.unref?.()
  }
}

/** The connection flags the user gave, so the commands we suggest reach the same peer. */
function connectionFlags (context: CommandContext): string {
  const flags: string[] = []
  const dataDir = context.values['data-dir']
  const api = context.values.api
  if (typeof dataDir === 'string') flags.push(`--data-dir ${shellWord(dataDir)}`)
  if (typeof api === 'string') flags.push(`--api ${shellWord(api)}`)
  return flags.length === 0 ? '' : ` ${flags.join(' ')}`
}

function shellWord (text: string): string {
  return /^[\w./:@%+=,-]+$/.test(text) ? text : `'${text.replace(/'/g, '\'\\\'\'')}'`
}

/** What to print when Ctrl-C stops following: the run keeps going; how to follow it again, or cancel it. */
export function detachedText (runId: string, context: CommandContext): string {
  const flags = connectionFlags(context)
  return [
    `run ${runId} goes on without you watching (Ctrl-C stops following, not the run)`,
    `  follow it  rhizome run-status ${runId} --wait${flags}`,
    `  cancel it  rhizome cancel ${runId}${flags}`
  ].join('\n') + '\n'
}

/** A run id from the command line: a CID, refused here (exit 2) rather than by the peer. */
export function checkRunId (text: string): string {
  try {
    return CID.parse(text).toString()
  } catch {
    throw new CliError('ERR_USAGE', `${JSON.stringify(text)} is not a run id`, { exitCode: EXIT_USAGE, hint: 'a run id is a CID (bafy…), as `rhizome run` printed it; `rhizome runs` lists the runs of a peer' })
  }
}
