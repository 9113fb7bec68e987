/**
 * The live progress of a followed run (`rhizome run`), rendered from a fixed event sequence with
 * a clock the test moves: on a terminal, a bar with a line per peer redrawn in place, at most every
 * PROGRESS_REDRAW_MS and once more at the end; off a terminal, the per-task lines as ever, plus a
 * summary line at most every PROGRESS_LINE_MS, never repeated, none at all for a short run.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { PROGRESS_LINE_MS, PROGRESS_REDRAW_MS, RunProgressView } from '../../src/cli/run-follow.ts'
import { PROGRESS_PEERS_SHOWN, RunProgress } from '../../src/cli/run-report.ts'
import { progressBlock } from '../../src/cli/progress.ts'
import type { ProgressEvent } from '../../src/api/events.ts'

const RUN = 'bafyrun'
const P = ['12D3KooWPeerOne000000000000000000000000000000aaaaaa', '12D3KooWPeerTwo000000000000000000000000000000bbbbbb']

const scheduled = (id: string): ProgressEvent => ({ type: 'run:task:scheduled', runId: RUN, taskId: id, fn: 'f', export: `E${id}`, atMs: 0 })
const started = (id: string, peer: string): ProgressEvent => ({ type: 'run:task:started', runId: RUN, taskId: id, peer, attempt: 1, atMs: 0 })
const done = (id: string, peer: string): ProgressEvent => ({ type: 'run:task:done', runId: RUN, taskId: id, peer, ms: 5, atMs: 0 })
const finished: ProgressEvent = { type: 'run:finished', runId: RUN, status: 'finished', atMs: 0 }

/** Four tasks: two on each peer; at each step the clock moves `stepMs`. */
function sequence (): ProgressEvent[] {
  return [
    ...['1', '2', '3', '4'].map(scheduled),
    started('1', P[0]), started('2', P[1]), started('3', P[0]),
    done('1', P[0]), started('4', P[1]), done('2', P[1]), done('3', P[0]), done('4', P[1]),
    finished
  ]
}

function render (isTTY: boolean, stepMs: number): { out: string, writes: string[] } {
  let clock = 0
  const writes: string[] = []
  const view = new RunProgressView({ write: (text) => { writes.push(text) }, isTTY, now: () => clock })
  for (const event of sequence()) {
    view.handle(event)
    clock += stepMs
  }
  view.done()
  return { out: writes.join(''), writes }
}

describe('the run progress bar', () => {
  test('the bar: tasks done / running / queued, and per peer how many it runs and has done', () => {
    const progress = new RunProgress()
    for (const event of sequence().slice(0, 9)) progress.handle(event)
    // Busiest peer first.
    assert.deepEqual(progress.barLines(), [
      'tasks [#####...............] 1/4: 1 done, 3 running, 0 queued',
      '  12D3KooW…bbbbbb  2 running, 0 done',
      '  12D3KooW…aaaaaa  1 running, 1 done'
    ])
    const many = new RunProgress()
    const busy = (i: number): void => {
      many.handle(scheduled(`t${i}`))
      many.handle(started(`t${i}`, `12D3KooWPeer${String(i).padStart(40, '0')}`))
    }
    for (let i = 0; i < PROGRESS_PEERS_SHOWN; i++) busy(i)
    assert.equal(many.barLines().length, 1 + PROGRESS_PEERS_SHOWN, 'at the limit: every peer listed')
    busy(PROGRESS_PEERS_SHOWN)
    const lines = many.barLines()
    assert.equal(lines.length, 1 + PROGRESS_PEERS_SHOWN + 1)
    assert.equal(lines.at(-1), '  … and 1 more peer', 'one past it: counted')
  })

  test('on a terminal: redrawn in place, at most every PROGRESS_REDRAW_MS, the last state drawn at the end', () => {
    // Events a tenth of the interval apart: 13 events span 1.3 intervals, so the bar is drawn at the
    // first event, once the interval has passed, and at run:finished.
    const { out, writes } = render(true, PROGRESS_REDRAW_MS / 10)
    const draws = writes.filter(w => w.includes('tasks ['))
    assert.equal(draws.length, 3)
    assert.equal(draws[0], '\rtasks [....................] 0/1: 0 done, 0 running, 1 queued\u001b[K\u001b[J')
    // Redraws go back up over the previous block's lines (1 line, then 3) before drawing.
    assert.ok(draws[1].startsWith('\rtasks ['), 'the first block was one line: no cursor up')
    assert.ok(draws[2].startsWith('\u001b[2A\r'), 'the second block was three lines: up two')
    assert.ok(draws[2].includes('tasks [####################] 4/4: 4 done, 0 running, 0 queued\u001b[K\n'))
    assert.ok(draws[2].includes('  12D3KooW…aaaaaa  0 running, 2 done\u001b[K\n  12D3KooW…bbbbbb  0 running, 2 done\u001b[K\u001b[J'))
    assert.ok(out.endsWith('\u001b[J\n'), 'done moves past the block')
    assert.doesNotMatch(out, /started {2}/, 'no per-task lines on a terminal')
  })

  test('off a terminal, a short run prints the per-task lines only, as before', () => {
    const { out } = render(false, 1)
    assert.doesNotMatch(out, /[\r\u001b]/)
    assert.equal(out, [
      'started  E1 on 12D3KooW…aaaaaa', 'started  E2 on 12D3KooW…bbbbbb', 'started  E3 on 12D3KooW…aaaaaa',
      'done     E1 on 12D3KooW…aaaaaa in 5 ms', 'started  E4 on 12D3KooW…bbbbbb', 'done     E2 on 12D3KooW…bbbbbb in 5 ms',
      'done     E3 on 12D3KooW…aaaaaa in 5 ms', 'done     E4 on 12D3KooW…bbbbbb in 5 ms', ''
    ].join('\n'))
  })

  test('off a terminal, a long run adds a summary line at most every PROGRESS_LINE_MS, never the same twice', () => {
    const { out } = render(false, PROGRESS_LINE_MS / 2)
    const summaries = out.split('\n').filter(l => l.startsWith('tasks ['))
    // 13 events half an interval apart: a summary is due at events 2, 4, 6, 8 and 10 (none at the
    // end: the report follows), each a different state.
    assert.equal(summaries.length, 5, summaries.join('\n'))
    for (let i = 1; i < summaries.length; i++) assert.notEqual(summaries[i], summaries[i - 1])
    assert.doesNotMatch(out, /[\r\u001b]/)
    assert.equal(out.split('\n').filter(l => /^(started|done) /.test(l)).length, 8, 'every per-task line is still there')
  })

  test('an unchanged state is not written again, on a terminal or not', () => {
    for (const isTTY of [true, false]) {
      const writes: string[] = []
      const block = progressBlock(text => { writes.push(text) }, isTTY)
      block.update(['a', 'b'])
      block.update(['a', 'b'])
      block.update(['a', 'c'])
      block.done()
      assert.equal(writes.filter(w => w !== '\n').length, 2, `isTTY ${isTTY}`)
    }
  })
})
