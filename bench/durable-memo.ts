/**
 * The durable step alone, in one process: three HomeRun machines (src/protocol/home/) — one run's
 * home set — each with its own SQLite database (src/store/home-repo.ts; WAL, synchronous=FULL, in
 * a temp dir), wired by in-process queues. Messages cross as the home protocol carries them
 * (dag-cbor, then parseHomeMessage), and every `persist-*` is written before anything polled after
 * it is handed on, as src/net/home-service.ts does. One sample: `handleLocalEntry` of a task
 * result on the driver → its `deliver` (the driver's replica and one other have the entry on disk).
 *
 * Depth first: the messages one step produces go ahead of older ones, so the first replica's ack
 * reaches the driver before the third peer writes: the time is the majority's path (two commits),
 * as on a network where the other two peers write in parallel. The third peer's write is done
 * before the next entry, outside the sample. Lease renewals run when they are due, inside samples.
 *
 *   node bench/durable-memo.ts [ENTRIES]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import { createHomeRun } from '../src/protocol/home/index.ts'
import type { HomeMessage, HomeRun } from '../src/protocol/home/index.ts'
import { openDatabase } from '../src/store/database.ts'
import type { Database } from '../src/store/database.ts'
import { createHomeRepo } from '../src/store/home-repo.ts'
import type { HomeRepo } from '../src/store/home-repo.ts'
import { parseHomeMessage } from '../src/wire/home-codec.ts'
import { fakePeerId, summarize } from './helpers.ts'
import type { Summary } from './helpers.ts'

/** Entries measured by default: the brief's 2,000, a fifth of one run's memo limit (10,000). */
export const MEMO_ENTRIES_DEFAULT = 2000
/** Entries before the samples, not counted: JIT, SQLite page cache, WAL growth. */
const WARMUP_ENTRIES = 100
/** Setting up and one entry may not take longer than this (a stuck pump is a bug, not a number). */
const STEP_TIMEOUT_MS = 10_000
/** A task result's inline bytes: a small dag-cbor value, as most results are. */
const RESULT_BYTES = 48

interface Peer { id: string, machine: HomeRun, repo: HomeRepo, db: Database }
interface Envelope { from: string, to: string, bytes: Uint8Array }

export interface MemoStepResult {
  /** Where the databases lived: a directory (synchronous=FULL) or ':memory:' (no disk). */
  storage: string
  step: Summary
  /** SQLite commits made by all three peers over the samples (putMemo and setLease). */
  commits: number
  /** Home messages that crossed between peers over the samples, and their dag-cbor bytes. */
  messages: number
  messageBytes: number
}

class HomeSetHarness {
  readonly peers: Peer[]
  private readonly queue: Envelope[] = []
  readonly delivered = new Set<string>()
  commits = 0
  messages = 0
  messageBytes = 0
  private readonly t0 = performance.now()
  /** Set: the machines' time stands still at this value (no lease renewal comes due). */
  frozenAt: number | undefined

  constructor (peers: Peer[]) {
    this.peers = peers
  }

  /** The machines' time: real ms since the start, unless frozen. */
  now (): number {
    return this.frozenAt ?? performance.now() - this.t0
  }

  /** Drain one machine's outputs: write what it persists, queue what it sends (ahead of older messages). */
  drain (peer: Peer): void {
    const batch: Envelope[] = []
    for (let o = peer.machine.poll(); o !== undefined; o = peer.machine.poll()) {
      switch (o.type) {
        case 'send': {
          const bytes = dagCbor.encode(o.message)
          batch.push({ from: peer.id, to: o.to, bytes })
          break
        }
        case 'persist-lease':
          peer.repo.setLease(RUN_ID, o.promise)
          this.commits++
          break
        case 'persist-memo':
          peer.repo.putMemo(RUN_ID, o.entries.map(e => ({ id: e.id, epoch: e.epoch, cid: e.value.cid, peer: e.value.peer, bytes: e.value.bytes })), o.epoch)
          this.commits++
          break
        case 'deliver':
          this.delivered.add(o.id)
          break
        case 'conflict':
          throw new Error(`memo conflict on ${o.id}`)
        default:
          // drive, stop, settled: the run service's business; the harness only watches `deliver` and the role.
      }
    }
    this.queue.unshift(...batch)
  }

  /** Hand on one queued message; false if none. Timers that are due fire first. */
  step (): boolean {
    this.fireTimers()
    const envelope = this.queue.shift()
    if (envelope === undefined) return false
    const to = this.peers.find(p => p.id === envelope.to)!
    this.messages++
    this.messageBytes += envelope.bytes.byteLength
    const message: HomeMessage = parseHomeMessage(dagCbor.decode(envelope.bytes))
    to.machine.handleMessage(envelope.from, message, this.now())
    this.drain(to)
    return true
  }

  fireTimers (): void {
    for (const peer of this.peers) {
      if (peer.machine.nextTimeoutMs() <= this.now()) {
        peer.machine.handleTimeout(this.now())
        this.drain(peer)
      }
    }
  }

  /** Pump until `done()`, bounded in time. */
  until (what: string, done: () => boolean): void {
    const deadline = performance.now() + STEP_TIMEOUT_MS
    while (!done()) {
      if (performance.now() > deadline) throw new Error(`the home set did not get to "${what}" within ${STEP_TIMEOUT_MS} ms`)
      this.step()
    }
  }

  /** Hand on everything still queued (the third peer's write, its ack). */
  settle (): void {
    const deadline = performance.now() + STEP_TIMEOUT_MS
    while (this.step()) {
      if (performance.now() > deadline) throw new Error(`the home set did not go quiet within ${STEP_TIMEOUT_MS} ms`)
    }
  }
}

const RUN_ID = 'bafyreibenchdurablememostep'

async function resultValue (i: number, peer: string): Promise<{ cid: string, peer: string, bytes: Uint8Array }> {
  const bytes = new Uint8Array(RESULT_BYTES).fill(i % 251)
  bytes.set(new TextEncoder().encode(`result ${i}`))
  return { cid: CID.create(1, raw.code, await sha256.digest(bytes)).toString(), peer, bytes }
}

function openPeers (dir: string | undefined): Peer[] {
  const ids = [0, 1, 2].map(i => fakePeerId(900 + i))
  return ids.map((id, i) => {
    const db = openDatabase(dir === undefined ? ':memory:' : join(dir, `peer-${i}.sqlite`))
    const repo = createHomeRepo(db)
    repo.openRun({ runId: RUN_ID, spec: new Uint8Array([0xa0]), homeSet: ids, openedMs: 0 })
    return { id, db, repo, machine: createHomeRun({ selfId: id, runId: RUN_ID, homeSet: ids }, 0) }
  })
}

/**
 * Measure `entries` durable steps on one home set whose databases are in `dir` (undefined: SQLite
 * in memory, the same path without a disk, to show what the disk costs). `freeze`: once the
 * driver drives, the machines' time stands still, so no lease renewal comes due and the work
 * counted is the steps' alone (tests count it).
 */
export async function measureMemoStep (entries: number, dir: string | undefined, freeze = false): Promise<MemoStepResult> {
  const peers = openPeers(dir)
  try {
    const h = new HomeSetHarness(peers)
    for (const p of peers) h.drain(p)
    const driver = peers[0]
    // A new run: the first peer in order asks for the lease at once, wins it and gathers.
    h.until('the first peer driving', () => driver.machine.role() === 'driving')
    h.settle()
    if (freeze) h.frozenAt = h.now()
    const values = await Promise.all(Array.from({ length: WARMUP_ENTRIES + entries }, async (_, i) => await resultValue(i, peers[1 + (i % 2)].id)))
    const samples: number[] = []
    for (let i = 0; i < values.length; i++) {
      if (i === WARMUP_ENTRIES) Object.assign(h, { commits: 0, messages: 0, messageBytes: 0 })
      const id = `task-${i}`
      const start = performance.now()
      if (!driver.machine.handleLocalEntry({ id, value: values[i] }, h.now())) throw new Error('the driver lost its lease')
      h.drain(driver)
      h.until(`entry ${id} delivered`, () => h.delivered.has(id))
      const ms = performance.now() - start
      if (i >= WARMUP_ENTRIES) samples.push(ms)
      h.settle()
    }
    const held = peers.map(p => p.repo.listMemo(RUN_ID).length)
    if (held.some(n => n !== values.length)) throw new Error(`every replica should hold ${values.length} entries, they hold ${held.join(', ')}`)
    return { storage: dir === undefined ? ':memory:' : 'files', step: summarize(samples), commits: h.commits, messages: h.messages, messageBytes: h.messageBytes }
  } finally {
    for (const p of peers) p.db.close()
  }
}

/** Both variants, in a temp dir that is removed afterwards. */
export async function measureMemoSteps (entries = MEMO_ENTRIES_DEFAULT): Promise<{ disk: MemoStepResult, memory: MemoStepResult }> {
  const dir = await mkdtemp(join(tmpdir(), 'rhizome-durable-memo-'))
  try {
    const disk = await measureMemoStep(entries, dir)
    const memory = await measureMemoStep(entries, undefined)
    return { disk, memory }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

if (import.meta.main) {
  const entries = Number(process.argv[2] ?? MEMO_ENTRIES_DEFAULT)
  process.stdout.write(JSON.stringify(await measureMemoSteps(entries), null, 1) + '\n')
}
