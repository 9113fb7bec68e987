/**
 * A home-set peer's store survives the process being killed mid-write. A child process writes to
 * the real home store (src/store/home-repo.ts) as a home-set peer does — runs opened, lease
 * promises raised, batches of memo entries with inline bytes under a fence, runs settled — as
 * fast as it can, printing a line for each write once it has returned; it is killed with SIGKILL
 * at a random moment under load, and the store it leaves is opened here: SQLite's integrity check
 * passes, every memo entry the child acknowledged is there with its epoch, CID and bytes, no
 * lease promise or fence went back, every run acknowledged settled is settled (so a restarted
 * peer does not rejoin it) and every other one is listed to be rejoined. Several rounds run over
 * the same data dir, so each round also reopens what the previous crash left.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { openDatabase } from '../../src/store/index.ts'
import { HOME_RUNS_LISTED_MAX, createHomeRepo } from '../../src/store/home-repo.ts'
import type { ChildProcess } from 'node:child_process'

const WRITER = fileURLToPath(new URL('../fixtures/home-store-writer.ts', import.meta.url))
const ROUNDS = 4
/** The kill comes this long after the writer is ready: under load, at no fixed point. */
const KILL_AFTER_MS_MIN = 200
const KILL_AFTER_MS_MAX = 1_500
/** Bound on the writer getting its store open (Node start + TypeScript stripping on a busy machine). */
const READY_TIMEOUT_MS = 15_000

interface Acked {
  runs: Set<string>
  settled: Set<string>
  /** The last acknowledged promise and fence of each run: the store may hold a later one, never an earlier. */
  lease: Map<string, { epoch: number, holder: string }>
  fence: Map<string, number>
  memo: Array<{ runId: string, id: string, epoch: number, cid: string, sha256: string }>
}

function parse (lines: string[]): Acked {
  const acked: Acked = { runs: new Set(), settled: new Set(), lease: new Map(), fence: new Map(), memo: [] }
  for (const line of lines) {
    const [word, kind, runId, ...rest] = line.split(' ')
    assert.equal(word, 'acked', `unexpected writer line: ${line}`)
    if (kind === 'run') acked.runs.add(runId)
    else if (kind === 'settled') acked.settled.add(runId)
    else if (kind === 'lease') acked.lease.set(runId, { epoch: Number(rest[0]), holder: rest[1] })
    else if (kind === 'fence') acked.fence.set(runId, Number(rest[0]))
    else if (kind === 'memo') acked.memo.push({ runId, id: rest[0], epoch: Number(rest[1]), cid: rest[2], sha256: rest[3] })
    else assert.fail(`unexpected writer line: ${line}`)
  }
  return acked
}

/** Run the writer on `dataDir` until it has been killed `killAfterMs` after it said `ready`; what it acked. */
async function writeUntilKilled (dataDir: string, prefix: string, killAfterMs: number, children: Set<ChildProcess>): Promise<Acked> {
  const child = spawn(process.execPath, [WRITER, dataDir, prefix], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const exited = new Promise<NodeJS.Signals | null>(resolve => { child.on('exit', (_code, signal) => resolve(signal)) })
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (!stdout.startsWith('ready\n')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`writer did not get ready (exit ${child.exitCode}): ${stderr}`)
    }
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  await new Promise(resolve => setTimeout(resolve, killAfterMs))
  assert.equal(child.exitCode, null, `the writer stopped before it was killed: ${stderr}`)
  child.kill('SIGKILL')
  assert.equal(await exited, 'SIGKILL')
  children.delete(child)
  // The output may end in a line cut short by the kill: only whole lines count.
  return parse(stdout.slice(0, stdout.lastIndexOf('\n')).split('\n').slice(1))
}

function sha256 (bytes: Uint8Array | undefined): string {
  return bytes === undefined ? '-' : createHash('sha256').update(bytes).digest('hex')
}

describe('a home store killed mid-write', { timeout: 60_000 }, () => {
  let dataDir: string
  const children = new Set<ChildProcess>()

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'rhizome-home-durable-'))
  })

  after(async () => {
    for (const child of children) child.kill('SIGKILL')
    await rm(dataDir, { recursive: true, force: true })
  })

  test(`opens intact with every acknowledged run, lease, fence and memo entry after ${ROUNDS} SIGKILLs under load`, async (t) => {
    const all: Acked[] = []
    for (let round = 0; round < ROUNDS; round++) {
      const killAfterMs = KILL_AFTER_MS_MIN + Math.floor(Math.random() * (KILL_AFTER_MS_MAX - KILL_AFTER_MS_MIN))
      const acked = await writeUntilKilled(dataDir, `r${round}`, killAfterMs, children)
      const where = `round ${round}, killed ${killAfterMs} ms after ready`
      assert.ok(acked.memo.length > 0 && acked.runs.size > 0, `${where}: the writer acked nothing`)
      all.push(acked)

      const db = openDatabase(join(dataDir, 'rhizome.db'))
      try {
        const check = db.sqlite.prepare('PRAGMA integrity_check').all() as Array<{ integrity_check: string }>
        assert.deepEqual(check.map(row => row.integrity_check), ['ok'], where)
        const home = createHomeRepo(db)
        const unsettled = new Set(home.listUnsettled(HOME_RUNS_LISTED_MAX).map(r => r.runId))
        // This round's writes and every earlier round's: a crash loses nothing acknowledged before it.
        for (const [n, earlier] of all.entries()) checkAcked(home, earlier, unsettled, `${where} (writes of round ${n})`)

        // The store takes new writes after the crash: a run is opened, fenced and settled.
        const runId = `after-${round}`
        assert.equal(home.openRun({ runId, spec: new Uint8Array([1]), homeSet: ['a', 'b', 'c'], openedMs: Date.now() }), true)
        home.putMemo(runId, [{ id: 'run:result', epoch: 1, cid: 'bafyafter', peer: 'a', bytes: new Uint8Array([7]) }], 1)
        home.setSettled(runId)
        assert.deepEqual(home.getMemo(runId, 'run:result')?.bytes, new Uint8Array([7]))
        assert.equal(home.getRun(runId)?.settled, true)
      } finally {
        db.close()
      }
    }
    const total = all.reduce((s, a) => ({ runs: s.runs + a.runs.size, memo: s.memo + a.memo.length, settled: s.settled + a.settled.size }), { runs: 0, memo: 0, settled: 0 })
    t.diagnostic(`acknowledged writes checked: ${JSON.stringify(total)}`)
  })
})

/** Every write in `acked` is in the home store; promises and fences never went back. */
function checkAcked (home: ReturnType<typeof createHomeRepo>, acked: Acked, unsettled: Set<string>, where: string): void {
  for (const runId of acked.runs) {
    const run = home.getRun(runId)
    assert.ok(run !== undefined, `${where}: run ${runId}`)
    assert.deepEqual(run.homeSet, ['peer-a', 'peer-b', 'peer-c'], `${where}: home set of ${runId}`)
    // A run acknowledged settled is not rejoined after a restart; any other is, unless its
    // settling committed just before the kill (then it is settled, and not listed).
    if (acked.settled.has(runId)) assert.equal(run.settled, true, `${where}: ${runId} settled`)
    assert.equal(unsettled.has(runId), !run.settled, `${where}: ${runId} listed to rejoin exactly when unsettled`)
    const lease = acked.lease.get(runId)
    if (lease !== undefined) {
      assert.ok(run.lease !== undefined && run.lease.epoch >= lease.epoch, `${where}: lease of ${runId} ${JSON.stringify(run.lease)} went back from ${JSON.stringify(lease)}`)
      if (run.lease.epoch === lease.epoch) assert.equal(run.lease.holder, lease.holder, `${where}: lease holder of ${runId}`)
    }
    const fence = acked.fence.get(runId)
    if (fence !== undefined) assert.ok(run.memoEpoch >= fence, `${where}: fence of ${runId} is ${run.memoEpoch}, below ${fence}`)
  }
  for (const entry of acked.memo) {
    const row = home.getMemo(entry.runId, entry.id)
    assert.ok(row !== undefined, `${where}: memo ${entry.runId} ${entry.id}`)
    assert.deepEqual({ epoch: row.epoch, cid: row.cid, sha256: sha256(row.bytes) }, { epoch: entry.epoch, cid: entry.cid, sha256: entry.sha256 }, `${where}: memo ${entry.runId} ${entry.id}`)
  }
}
