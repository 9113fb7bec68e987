/**
 * What one durable step costs, counted (not timed): a run's home set of three, each peer with its
 * own SQLite home repo on disk, wired in one process (bench/durable-memo.ts). Each accepted result
 * the driver adds must cost one commit per peer and one append plus one ack per other peer, with
 * small messages, and every replica must hold every entry afterwards.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { measureMemoStep } from '../../bench/durable-memo.ts'

/** Entries measured; the harness adds 100 of warm-up, which are not counted. */
const ENTRIES = 40
/** An append or ack of one entry: type, epoch, id, a CID, a peer id and 48 inline bytes. */
const MESSAGE_BYTES_MAX = 256

test('a durable step costs one commit per home-set peer and an append and an ack per other peer', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rhizome-home-step-'))
  try {
    // Frozen time: no lease renewal runs, so every commit and message counted is the steps'.
    const result = await measureMemoStep(ENTRIES, dir, true)
    assert.equal(result.step.n, ENTRIES)
    assert.equal(result.commits, 3 * ENTRIES, 'the driver\'s replica and both others commit each entry once')
    assert.equal(result.messages, 4 * ENTRIES, 'one append to and one ack from each of the two other peers')
    assert.ok(result.messageBytes / result.messages <= MESSAGE_BYTES_MAX, `messages average ${result.messageBytes / result.messages} B`)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
