/**
 * A peer's store survives the process being killed mid-write. A child process writes memo
 * entries, run events and blobs through the real store as fast as it can, printing a line for
 * each write once it has returned; it is killed with SIGKILL at a random moment under load, and
 * the store it leaves is opened here: SQLite's integrity check passes, every write the child
 * reported is there (blobs read back verified against their CID), and the store takes new
 * writes. Several rounds run over the same data dir, so each round also reopens what the
 * previous crash left.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { createBlobStore, createRunRepo, openDatabase } from '../../src/store/index.ts'
import { TestNetwork } from '../helpers/peers.ts'
import type { ChildProcess } from 'node:child_process'

const WRITER = fileURLToPath(new URL('../fixtures/store-writer.ts', import.meta.url))
const ROUNDS = 5
/** The kill comes this long after the writer is ready: under load, at no fixed point. */
const KILL_AFTER_MS_MIN = 200
const KILL_AFTER_MS_MAX = 1_500
/** Blob puts a client keeps in flight against the real peer. */
const PUTS_IN_FLIGHT = 4
/** Bound on the writer getting its store open (Node start + TypeScript stripping on a busy machine). */
const READY_TIMEOUT_MS = 15_000

interface Acked {
  memo: Array<{ runId: string, taskId: string, cid: string }>
  events: Array<{ runId: string, seq: number, type: string }>
  blobs: string[]
}

/** Run the writer on `dataDir` until it has been killed `killAfterMs` after it said `ready`; what it acked. */
async function writeUntilKilled (dataDir: string, runId: string, killAfterMs: number, children: Set<ChildProcess>): Promise<Acked> {
  const child = spawn(process.execPath, [WRITER, dataDir, runId], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => {
    child.on('exit', (code, signal) => resolve({ code, signal }))
  })
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
  const { signal } = await exited
  children.delete(child)
  assert.equal(signal, 'SIGKILL')
  // The output may end in a line cut short by the kill: only whole lines count.
  const lines = stdout.slice(0, stdout.lastIndexOf('\n')).split('\n').slice(1)
  const acked: Acked = { memo: [], events: [], blobs: [] }
  for (const line of lines) {
    const [word, kind, ...rest] = line.split(' ')
    assert.equal(word, 'acked', `unexpected writer line: ${line}`)
    if (kind === 'memo') acked.memo.push({ runId: rest[0], taskId: rest[1], cid: rest[2] })
    else if (kind === 'event') acked.events.push({ runId: rest[0], seq: Number(rest[1]), type: rest[2] })
    else if (kind === 'blob') acked.blobs.push(rest[0])
    else assert.fail(`unexpected writer line: ${line}`)
  }
  return acked
}

describe('a store killed mid-write', { timeout: 60_000 }, () => {
  let dataDir: string
  const children = new Set<ChildProcess>()

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'rhizome-durable-'))
  })

  after(async () => {
    for (const child of children) child.kill('SIGKILL')
    await rm(dataDir, { recursive: true, force: true })
  })

  test('every commit is synced to disk before it returns (synchronous=FULL)', () => {
    const db = openDatabase(join(dataDir, 'pragmas.db'))
    try {
      assert.equal((db.sqlite.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal')
      // 2 is FULL: NORMAL (1) keeps a process crash's commits but may lose the last ones on power loss.
      assert.equal((db.sqlite.prepare('PRAGMA synchronous').get() as { synchronous: number }).synchronous, 2)
    } finally {
      db.close()
    }
  })

  test(`opens intact with every acknowledged write after ${ROUNDS} SIGKILLs under load`, async (t) => {
    const seen = { memo: 0, events: 0, blobs: 0 }
    for (let round = 0; round < ROUNDS; round++) {
      const runId = `run-${round}`
      const killAfterMs = KILL_AFTER_MS_MIN + Math.floor(Math.random() * (KILL_AFTER_MS_MAX - KILL_AFTER_MS_MIN))
      const acked = await writeUntilKilled(dataDir, runId, killAfterMs, children)
      const where = `round ${round}, killed ${killAfterMs} ms after ready`
      // Killed under load: it had written, and was still writing.
      assert.ok(acked.memo.length > 0 && acked.events.length > 0 && acked.blobs.length > 0, `${where}: the writer acked nothing`)
      seen.memo += acked.memo.length
      seen.events += acked.events.length
      seen.blobs += acked.blobs.length

      const db = openDatabase(join(dataDir, 'rhizome.db'))
      try {
        const check = db.sqlite.prepare('PRAGMA integrity_check').all() as Array<{ integrity_check: string }>
        assert.deepEqual(check.map(row => row.integrity_check), ['ok'], where)
        const runs = createRunRepo(db)
        const blobs = createBlobStore({ dir: join(dataDir, 'blobs'), db })

        const memo = new Map(runs.listMemo(runId).map(entry => [entry.taskId, entry.resultCid]))
        for (const entry of acked.memo) assert.equal(memo.get(entry.taskId), entry.cid, `${where}: memo ${entry.taskId}`)
        const events = new Map(runs.listEvents(runId).map(event => [event.seq, event.type]))
        for (const event of acked.events) assert.equal(events.get(event.seq), event.type, `${where}: event ${event.seq}`)
        // Earlier rounds' writes are still there too.
        for (let earlier = 0; earlier < round; earlier++) assert.ok(runs.getRun(`run-${earlier}`) !== undefined, `${where}: run-${earlier}`)

        const indexed = new Set((await blobs.list({ limit: 10_000 })).map(cid => cid.toString()))
        for (const cid of acked.blobs) {
          const bytes = await blobs.get(cid) // hashes the bytes and compares them with the CID
          assert.ok(bytes.byteLength > 0, `${where}: blob ${cid}`)
          assert.ok(indexed.has(cid), `${where}: blob ${cid} missing from the index`)
        }

        // The store takes new writes after the crash.
        assert.equal(runs.addMemo({ runId, taskId: 'after-restart', resultCid: 'bafyafter', peer: 'test' }), true)
        assert.ok(runs.appendEvent(runId, 'run:resumed', Date.now(), {}) !== undefined)
        const cid = await blobs.put(new TextEncoder().encode(`after restart ${round}`))
        assert.equal(new TextDecoder().decode(await blobs.get(cid)), `after restart ${round}`)
      } finally {
        db.close()
      }
    }
    t.diagnostic(`acknowledged writes checked: ${JSON.stringify(seen)}`)
    assert.ok(seen.memo >= ROUNDS && seen.events >= ROUNDS && seen.blobs >= ROUNDS, JSON.stringify(seen))
  })

  test('a real peer killed during blob puts restarts with every blob it answered for', async (t) => {
    const net = await TestNetwork.create()
    try {
      const peer = await net.addPeer()
      const answered: Array<{ cid: string, bytes: Uint8Array }> = []
      let killed = false
      const killAfterMs = KILL_AFTER_MS_MIN + Math.floor(Math.random() * (KILL_AFTER_MS_MAX - KILL_AFTER_MS_MIN))
      // Each client loop puts blobs back to back until the peer is gone; a put cut off by the kill
      // has no answer and is not counted.
      const client = async (n: number): Promise<void> => {
        for (let i = 0; !killed; i++) {
          const bytes = new TextEncoder().encode(`client ${n} blob ${i} `.repeat(1 + ((i * 7919) % 4096)))
          let cid: string
          try {
            cid = (await peer.api<{ cid: string }>('/v1/blobs', { method: 'POST', body: bytes, headers: { 'content-type': 'application/octet-stream' } })).cid
          } catch (err) {
            if (killed) return
            throw err
          }
          answered.push({ cid, bytes })
        }
      }
      const clients = Array.from({ length: PUTS_IN_FLIGHT }, async (_, n) => await client(n))
      await new Promise(resolve => setTimeout(resolve, killAfterMs))
      killed = true
      await peer.stop('SIGKILL')
      await Promise.all(clients)
      assert.ok(answered.length > 0, `no put was answered in ${killAfterMs} ms`)
      t.diagnostic(`blobs answered before the kill (${killAfterMs} ms): ${answered.length}`)

      await peer.start()
      for (const { cid, bytes } of answered) {
        const res = await fetch(`${peer.apiUrl}/v1/blobs/${cid}`, { headers: peer.authorized(), signal: AbortSignal.timeout(10_000) })
        assert.equal(res.status, 200, `blob ${cid}`)
        assert.deepEqual(new Uint8Array(await res.arrayBuffer()), bytes, `blob ${cid}`)
      }
      const after = await peer.api<{ cid: string }>('/v1/blobs', { method: 'POST', body: 'after restart', headers: { 'content-type': 'application/octet-stream' } })
      const res = await fetch(`${peer.apiUrl}/v1/blobs/${after.cid}`, { headers: peer.authorized(), signal: AbortSignal.timeout(10_000) })
      assert.equal(await res.text(), 'after restart')
    } finally {
      await net.close()
    }
  })
})
