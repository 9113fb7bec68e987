// One suite, run against the blob store on files alone and with its SQLite index (STYLE.md §15).
import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, open as openFile, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import * as dagCbor from '@ipld/dag-cbor'
import {
  openDatabase,
  createBlobStore,
  blobBytesMaxDefault,
  blobRangeBytesMax,
  blobVerifyChunkBytes,
  blobListLengthMax,
  BlobHashMismatchError,
  syncDir
} from '../../src/store/index.ts'
import { CID_CHARS_MAX } from '../../src/model/limits.ts'
import type { BlobStore, BlobStoreOptions, Database, OpenDir } from '../../src/store/index.ts'

const encoder = new TextEncoder()

/** Where the store keeps a blob: <dir>/<last 2 chars of its CIDv1>/<CIDv1>. */
function blobPath (dir: string, cid: CID): string {
  const key = cid.toV1().toString()
  return join(dir, key.slice(-2), key)
}

async function rawCid (bytes: Uint8Array): Promise<CID> {
  return CID.create(1, raw.code, await sha256.digest(bytes))
}

/** Bytes that differ at every position a test may look at: a blob whose every piece differs. */
function pattern (bytes: number, seed = 1): Uint8Array {
  const out = new Uint8Array(bytes)
  let x = 0x9e3779b9 ^ seed
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

/** Overwrite `bytes` at `position` in place (same inode, same size), as a disk or an editor might. */
async function patchInPlace (path: string, position: number, bytes: Uint8Array): Promise<void> {
  const file = await openFile(path, 'r+')
  try {
    await file.write(bytes, 0, bytes.byteLength, position)
  } finally {
    await file.close()
  }
}

function isName (name: string) {
  return (err: unknown): boolean => {
    assert.equal((err as Error).name, name)
    return true
  }
}

for (const variant of [{ name: 'files only', withDb: false }, { name: 'files with SQLite index', withDb: true }]) {
  describe(`BlobStore (${variant.name})`, () => {
    let root: string
    let dir: string
    let db: Database | undefined
    let store: BlobStore
    const open = (options: Partial<BlobStoreOptions> = {}): BlobStore => createBlobStore({ dir, db, now: () => 1_700_000_000_000, ...options })

    /** The index rows, or undefined when the store runs on files alone. */
    const indexRows = (): Array<{ cid: string, bytes: number, created_ms: number }> | undefined =>
      db?.sqlite.prepare('SELECT cid, bytes, created_ms FROM blobs ORDER BY cid').all()
        .map(row => ({ cid: row.cid as string, bytes: row.bytes as number, created_ms: row.created_ms as number }))

    beforeEach(async () => {
      root = await mkdtemp(join(tmpdir(), 'rhizome-blobs-'))
      dir = join(root, 'blobs')
      db = variant.withDb ? openDatabase(join(root, 'rhizome.sqlite')) : undefined
      store = open()
    })
    afterEach(async () => {
      db?.close()
      await rm(root, { recursive: true, force: true })
    })

    it('reads back byte-identical bytes under the CID multiformats computes independently', async () => {
      const bytes = encoder.encode('hello rhizome')
      const cid = await store.put(bytes)
      assert.ok(cid.equals(await rawCid(bytes)))
      assert.equal(cid.toString(), (await rawCid(bytes)).toString())
      assert.deepEqual(await store.get(cid), bytes)
      assert.deepEqual(await store.get(cid.toString()), bytes)
      assert.deepEqual(new Uint8Array(await readFile(blobPath(dir, cid))), bytes)
      if (db !== undefined) assert.deepEqual(indexRows(), [{ cid: cid.toString(), bytes: bytes.length, created_ms: 1_700_000_000_000 }])
    })

    it('counts blobs from the index, and only when there is one', async () => {
      assert.equal(store.count(), db === undefined ? undefined : 0)
      const cid = await store.put(encoder.encode('one'))
      await store.put(encoder.encode('one'))
      await store.put(encoder.encode('two'))
      assert.equal(store.count(), db === undefined ? undefined : 2)
      await store.delete(cid)
      assert.equal(store.count(), db === undefined ? undefined : 1)
    })

    it('stores the empty blob', async () => {
      const empty = new Uint8Array(0)
      const cid = await store.put(empty)
      assert.ok(cid.equals(await rawCid(empty)))
      assert.deepEqual(await store.get(cid), empty)
      assert.deepEqual(await store.stat(cid), { bytes: 0 })
    })

    it('uses the given codec in the CID', async () => {
      const bytes = dagCbor.encode({ task: 'B', args: [5] })
      const cid = await store.put(bytes, dagCbor.code)
      assert.equal(cid.code, dagCbor.code)
      assert.ok(cid.equals(CID.create(1, dagCbor.code, await sha256.digest(bytes))))
      assert.deepEqual(dagCbor.decode(await store.get(cid)), { task: 'B', args: [5] })
    })

    it('is idempotent: the same bytes give the same CID and the file is not rewritten', async () => {
      const bytes = encoder.encode('same')
      const first = await store.put(bytes)
      const before = await stat(blobPath(dir, first))
      const second = await store.put(bytes)
      assert.ok(first.equals(second))
      // Every write renames a fresh temp file into place, which changes the inode.
      assert.equal((await stat(blobPath(dir, first))).ino, before.ino)
      assert.deepEqual(await store.list(), [first])
    })

    it('fsyncs a new blob before its rename and its shard (and a new shard\'s parent) after it; stored bytes sync nothing', async () => {
      const first = await store.put(encoder.encode('durable'))
      // The file, then the new shard directory and the store's directory that gained it.
      assert.deepEqual({ ...store.counters, bytesHashed: 0, bytesRead: 0 }, { bytesHashed: 0, bytesRead: 0, fileSyncs: 1, dirSyncs: 2 })
      await store.put(encoder.encode('durable'))
      assert.equal(store.counters.fileSyncs, 1, 'bytes already stored are not written again')
      assert.equal(store.counters.dirSyncs, 2)
      // A second blob in the same, now existing, shard: its file and the shard only.
      const shard = first.toString().slice(-2)
      let other: Uint8Array | undefined
      for (let i = 0; other === undefined && i < 100_000; i++) {
        const candidate = encoder.encode(`durable ${i}`)
        if ((await rawCid(candidate)).toString().slice(-2) === shard) other = candidate
      }
      assert.ok(other !== undefined, 'a blob in the same shard')
      await store.put(other)
      assert.equal(store.counters.fileSyncs, 2)
      assert.equal(store.counters.dirSyncs, 3)
      assert.deepEqual(await store.get(await rawCid(other)), other)
    })

    it('handles concurrent puts of the same bytes', async () => {
      const bytes = encoder.encode('raced')
      const cids = await Promise.all(Array.from({ length: 16 }, () => store.put(bytes)))
      for (const cid of cids) assert.ok(cid.equals(cids[0]))
      assert.deepEqual(await store.get(cids[0]), bytes)
      assert.deepEqual(await readdir(join(dir, 'tmp')), [], 'no temp files are left behind')
      assert.equal((await store.list()).length, 1)
      if (db !== undefined) assert.equal(indexRows()?.length, 1)
    })

    it('accepts a blob of exactly blobBytesMax bytes and refuses one byte more, storing nothing', async () => {
      const small = open({ blobBytesMax: 16 })
      await small.put(new Uint8Array(16).fill(1))
      await assert.rejects(small.put(new Uint8Array(17).fill(2)), (err: unknown) => {
        assert.equal((err as Error).name, 'TooLargeError')
        assert.equal((err as { bytes: number }).bytes, 17)
        assert.equal((err as { bytesMax: number }).bytesMax, 16)
        return true
      })
      assert.equal((await small.list()).length, 1)
    })

    it('refuses a blob one byte over the default limit of 64 MiB', async () => {
      assert.equal(blobBytesMaxDefault, 64 * 1024 * 1024)
      assert.equal(store.blobBytesMax, blobBytesMaxDefault)
      await assert.rejects(store.put(new Uint8Array(blobBytesMaxDefault + 1)), isName('TooLargeError'))
      assert.deepEqual(await store.list(), [])
    })

    it('putVerified stores bytes that match the claimed CID', async () => {
      const bytes = encoder.encode('from a peer')
      const claimed = await rawCid(bytes)
      const cid = await store.putVerified(claimed.toString(), bytes)
      assert.ok(cid.equals(claimed))
      assert.deepEqual(await store.get(claimed), bytes)
    })

    it('putVerified refuses bytes that do not match the claimed CID and stores nothing', async () => {
      const claimed = await rawCid(encoder.encode('what the peer promised'))
      const sent = encoder.encode('what the peer sent')
      const sentCid = await rawCid(sent)
      await assert.rejects(store.putVerified(claimed, sent), (err: unknown) => {
        assert.ok(err instanceof BlobHashMismatchError)
        assert.equal(err.code, 'ERR_BLOB_HASH_MISMATCH')
        assert.equal(err.cid, claimed.toString())
        assert.equal(err.cidActual, sentCid.toString())
        return true
      })
      assert.equal(await store.has(claimed), false)
      assert.equal(await store.has(sentCid), false)
      assert.deepEqual(await store.list(), [])
      if (db !== undefined) assert.deepEqual(indexRows(), [])
    })

    it('putVerified refuses a blob past blobBytesMax before hashing it', async () => {
      const small = open({ blobBytesMax: 4 })
      const bytes = encoder.encode('12345')
      await assert.rejects(small.putVerified(await rawCid(bytes), bytes), isName('TooLargeError'))
    })

    it('refuses a blob altered on disk with BlobCorruptError, moves it aside and never serves it', async () => {
      const bytes = encoder.encode('precious result')
      const cid = await store.put(bytes)
      const path = blobPath(dir, cid)
      const onDisk = await readFile(path)
      onDisk[3] ^= 0x01 // flip one bit
      await writeFile(path, onDisk)

      await assert.rejects(store.get(cid), (err: unknown) => {
        assert.equal((err as Error).name, 'BlobCorruptError')
        assert.equal((err as { cid: string }).cid, cid.toString())
        return true
      })
      const quarantined = await readdir(join(dir, 'corrupt'))
      assert.equal(quarantined.length, 1)
      assert.ok(quarantined[0].startsWith(cid.toString()))
      assert.deepEqual(await readFile(join(dir, 'corrupt', quarantined[0])), onDisk)

      await assert.rejects(store.get(cid), isName('NotFoundError'))
      assert.equal(await store.has(cid), false)
      assert.deepEqual(await store.list(), [])
      if (db !== undefined) assert.deepEqual(indexRows(), [])

      // Putting the good bytes again repairs it.
      await store.put(bytes)
      assert.deepEqual(await store.get(cid), bytes)
    })

    it('refuses a truncated file as corrupt', async () => {
      const cid = await store.put(encoder.encode('will be cut short'))
      await writeFile(blobPath(dir, cid), encoder.encode('will be'))
      await assert.rejects(store.get(cid), isName('BlobCorruptError'))
    })

    it('throws NotFoundError naming the CID of a missing blob', async () => {
      const cid = await rawCid(encoder.encode('never stored'))
      await assert.rejects(store.get(cid), (err: unknown) => {
        assert.equal((err as Error).name, 'NotFoundError')
        assert.ok((err as Error).message.includes(cid.toString()))
        return true
      })
      assert.equal(await store.has(cid), false)
      assert.equal(await store.stat(cid), undefined)
    })

    it('refuses a string that is not a CID with InvalidInputError and a hint', async () => {
      for (const bad of ['', 'not-a-cid', 'bafkreinotreallyacid']) {
        await assert.rejects(store.get(bad), (err: unknown) => {
          assert.equal((err as Error).name, 'InvalidInputError')
          assert.match((err as { hint: string }).hint, /base32/)
          return true
        })
      }
    })

    it(`refuses a CID string one character past ${CID_CHARS_MAX}`, async () => {
      const longest = 'b' + 'a'.repeat(CID_CHARS_MAX - 1)
      // At the limit, the string is parsed (and is not a CID); past it, it is refused unread.
      await assert.rejects(store.get(longest), (err: unknown) => {
        assert.equal((err as Error).name, 'InvalidInputError')
        assert.match((err as Error).message, /not a CID/)
        return true
      })
      await assert.rejects(store.get(longest + 'a'), (err: unknown) => {
        assert.equal((err as Error).name, 'InvalidInputError')
        assert.match((err as Error).message, /longer than the limit/)
        return true
      })
    })

    it('refuses CIDs not addressed by sha2-256', async () => {
      const bytes = encoder.encode('sha512')
      const other = CID.create(1, raw.code, await sha512.digest(bytes))
      await assert.rejects(store.putVerified(other, bytes), isName('InvalidInputError'))
      await assert.rejects(store.get(other.toString()), isName('InvalidInputError'))
    })

    it('accepts a CIDv0 and its v1 form as the same blob', async () => {
      const bytes = encoder.encode('a dag-pb node, as far as the store cares')
      const v0 = CID.createV0(await sha256.digest(bytes))
      await store.putVerified(v0.toString(), bytes)
      assert.deepEqual(await store.get(v0), bytes)
      assert.deepEqual(await store.get(v0.toV1().toString()), bytes)
    })

    it('has, stat and delete', async () => {
      const bytes = encoder.encode('short-lived')
      const cid = await store.put(bytes)
      assert.equal(await store.has(cid), true)
      assert.deepEqual(await store.stat(cid), { bytes: bytes.length })
      assert.equal(await store.delete(cid), true)
      assert.equal(await store.delete(cid), false)
      assert.equal(await store.has(cid), false)
      assert.equal(await store.stat(cid), undefined)
      await assert.rejects(store.get(cid), isName('NotFoundError'))
      if (db !== undefined) assert.deepEqual(indexRows(), [])
    })

    it('lists up to limit CIDs and refuses a limit past blobListLengthMax', async () => {
      const stored = new Set<string>()
      for (let i = 0; i < 5; i++) stored.add((await store.put(encoder.encode(`blob ${i}`))).toString())
      const all = (await store.list()).map(String)
      assert.deepEqual(new Set(all), stored)
      assert.equal(all.length, 5)
      const some = (await store.list({ limit: 3 })).map(String)
      assert.equal(new Set(some).size, 3)
      for (const cid of some) assert.ok(stored.has(cid))
      assert.deepEqual(await store.list({ limit: 0 }), [])
      await store.list({ limit: blobListLengthMax })
      await assert.rejects(store.list({ limit: blobListLengthMax + 1 }), isName('InvalidInputError'))
    })

    it('sees the blobs of an earlier store over the same directory', async () => {
      const bytes = encoder.encode('persisted')
      const cid = await store.put(bytes)
      const reopened = open()
      assert.deepEqual(await reopened.get(cid), bytes)
      assert.deepEqual((await reopened.list()).map(String), [cid.toString()])
    })

    describe('readRange', () => {
      const MiB = 1024 * 1024

      it('returns the bytes at an offset and the total, cut short at the end of the blob', async () => {
        const bytes = pattern(2 * MiB + 100)
        const cid = await store.put(bytes)
        const aligned = await store.readRange(cid, MiB, MiB)
        assert.equal(aligned.total, bytes.length)
        assert.deepEqual(aligned.bytes, bytes.subarray(MiB, 2 * MiB))
        // Unaligned: spans two pieces.
        assert.deepEqual((await store.readRange(cid, MiB - 7, 1000)).bytes, bytes.subarray(MiB - 7, MiB + 993))
        assert.deepEqual((await store.readRange(cid, 2 * MiB, MiB)).bytes, bytes.subarray(2 * MiB))
        assert.deepEqual((await store.readRange(cid, 2 * MiB + 100, 5)).bytes, new Uint8Array(0))
        assert.deepEqual((await store.readRange(cid, 10 * MiB, 5)), { total: bytes.length, bytes: new Uint8Array(0) })
        const empty = await store.put(new Uint8Array(0))
        assert.deepEqual(await store.readRange(empty, 0, 1), { total: 0, bytes: new Uint8Array(0) })
      })

      it(`reads at most blobRangeBytesMax (${blobRangeBytesMax}) bytes, and refuses one more`, async () => {
        assert.equal(blobVerifyChunkBytes, blobRangeBytesMax)
        const bytes = pattern(blobRangeBytesMax + 10)
        const cid = await store.put(bytes)
        assert.equal((await store.readRange(cid, 0, blobRangeBytesMax)).bytes.byteLength, blobRangeBytesMax)
        await assert.rejects(store.readRange(cid, 0, blobRangeBytesMax + 1), isName('InvalidInputError'))
        await assert.rejects(store.readRange(cid, 0, 0), isName('InvalidInputError'))
        await assert.rejects(store.readRange(cid, -1, 1), isName('InvalidInputError'))
        await assert.rejects(store.readRange(cid, 0.5, 1), isName('InvalidInputError'))
      })

      it('throws NotFoundError for a missing blob', async () => {
        await assert.rejects(store.readRange(await rawCid(encoder.encode('absent')), 0, 1), isName('NotFoundError'))
      })

      it('hashes a blob once for all its ranges, even when they arrive at once', async () => {
        const bytes = pattern(4 * MiB + 1)
        const cid = await store.put(bytes)
        const hashed = store.counters.bytesHashed
        const read = store.counters.bytesRead
        const offsets = [0, MiB, 2 * MiB, 3 * MiB, 4 * MiB, 0, MiB, 2 * MiB]
        const replies = await Promise.all(offsets.map(async offset => await store.readRange(cid, offset, MiB)))
        for (const [i, reply] of replies.entries()) assert.deepEqual(reply.bytes, bytes.subarray(offsets[i], offsets[i] + MiB))
        assert.equal(store.counters.bytesHashed - hashed, bytes.length, 'one verification, shared by the concurrent ranges')
        // One read to verify, then each range reads its own piece and no more.
        const rangeBytes = replies.reduce((sum, reply) => sum + reply.bytes.byteLength, 0)
        assert.equal(store.counters.bytesRead - read, bytes.length + rangeBytes)
      })

      it('remembers verifiedMax verified blobs and hashes again the one that fell out past it', async () => {
        const small = open({ verifiedMax: 2 })
        const cids = [await small.put(pattern(1000, 1)), await small.put(pattern(1000, 2)), await small.put(pattern(1000, 3))]
        const hashedFor = async (cid: CID): Promise<number> => {
          const before = small.counters.bytesHashed
          await small.readRange(cid, 0, 10)
          return small.counters.bytesHashed - before
        }
        assert.equal(await hashedFor(cids[0]), 1000)
        assert.equal(await hashedFor(cids[1]), 1000)
        assert.equal(await hashedFor(cids[0]), 0)
        assert.equal(await hashedFor(cids[1]), 0)
        // A third one past the limit of 2 pushes out the least recently served (cids[0]).
        assert.equal(await hashedFor(cids[2]), 1000)
        assert.equal(await hashedFor(cids[1]), 0)
        assert.equal(await hashedFor(cids[0]), 1000)
      })

      it('refuses a blob corrupt on disk before it was ever verified, and moves it aside', async () => {
        const bytes = pattern(MiB + 5)
        const cid = await store.put(bytes)
        await patchInPlace(blobPath(dir, cid), MiB + 2, Uint8Array.of(bytes[MiB + 2] ^ 1))
        // The range asked for is intact; the blob as a whole is not, so none of it is served.
        await assert.rejects(store.readRange(cid, 0, 10), (err: unknown) => {
          assert.equal((err as Error).name, 'BlobCorruptError')
          assert.equal((err as { code: string }).code, 'ERR_BLOB_CORRUPT')
          return true
        })
        assert.equal((await readdir(join(dir, 'corrupt'))).length, 1)
        await assert.rejects(store.readRange(cid, 0, 10), isName('NotFoundError'))
        if (db !== undefined) assert.deepEqual(indexRows(), [])
      })

      it('verifies again a file written since it was verified, and refuses it if it no longer matches', async () => {
        const bytes = pattern(2 * MiB)
        const cid = await store.put(bytes)
        const path = blobPath(dir, cid)
        await store.readRange(cid, 0, MiB)
        // A write that moves the mtime (set explicitly: two writes may share a timestamp tick).
        await patchInPlace(path, 10, Uint8Array.of(bytes[10] ^ 0xff))
        await utimes(path, new Date(2_000_000_000_000), new Date(2_000_000_000_000))
        const hashed = store.counters.bytesHashed
        // The range asked for is the other, untouched piece: only the new hash can see the damage.
        await assert.rejects(store.readRange(cid, MiB, MiB), isName('BlobCorruptError'))
        assert.equal(store.counters.bytesHashed - hashed, bytes.length)
        assert.equal(await store.has(cid), false)
      })

      it('verifies again a file touched since it was verified, and serves it if it still matches', async () => {
        const bytes = pattern(MiB + 1)
        const cid = await store.put(bytes)
        await store.readRange(cid, 0, MiB)
        await utimes(blobPath(dir, cid), new Date(2_000_000_000_000), new Date(2_000_000_000_000))
        const hashed = store.counters.bytesHashed
        assert.deepEqual((await store.readRange(cid, MiB, MiB)).bytes, bytes.subarray(MiB))
        assert.equal(store.counters.bytesHashed - hashed, bytes.length)
      })

      it('refuses a range changed in place since it was verified even when the file looks unchanged', async () => {
        const bytes = pattern(2 * MiB + 3)
        const cid = await store.put(bytes)
        const path = blobPath(dir, cid)
        // A whole-millisecond mtime, so that utimes can put exactly it back.
        const mtime = new Date(1_900_000_000_000)
        await utimes(path, mtime, mtime)
        await store.readRange(cid, 0, MiB)
        // Rot, or an edit that puts the mtime back: inode, size and mtime all as verified.
        await patchInPlace(path, MiB + 77, Uint8Array.of(bytes[MiB + 77] ^ 0x10))
        await utimes(path, mtime, mtime)
        assert.equal((await stat(path)).mtimeMs, mtime.getTime())
        const hashed = store.counters.bytesHashed
        // The untouched piece is still served: what it returns is what was verified.
        assert.deepEqual((await store.readRange(cid, 0, MiB)).bytes, bytes.subarray(0, MiB))
        await assert.rejects(store.readRange(cid, MiB, MiB), isName('BlobCorruptError'))
        assert.equal(store.counters.bytesHashed, hashed, 'caught by the piece checksums, without hashing the blob again')
        assert.equal((await readdir(join(dir, 'corrupt'))).length, 1)
        await assert.rejects(store.readRange(cid, 0, MiB), isName('NotFoundError'))
      })

      it('refuses a file cut short since it was verified', async () => {
        const bytes = pattern(2 * MiB)
        const cid = await store.put(bytes)
        const path = blobPath(dir, cid)
        await store.readRange(cid, 0, MiB)
        const file = await openFile(path, 'r+')
        await file.truncate(MiB)
        await file.close()
        await assert.rejects(store.readRange(cid, MiB, MiB), isName('BlobCorruptError'))
      })

      it('does nothing when the signal is already aborted', async () => {
        const cid = await store.put(encoder.encode('aborted'))
        await assert.rejects(store.readRange(cid, 0, 1, { signal: AbortSignal.abort() }), isName('AbortedError'))
      })
    })

    it('removes what a crash left in tmp/ when it opens, and keeps the blobs', async () => {
      const cid = await store.put(encoder.encode('kept'))
      // What a put cut off by a crash leaves: a partial temp file (and whatever else ended up there).
      await writeFile(join(dir, 'tmp', `${cid.toString()}.0b1e5f2a-partial`), new Uint8Array(4096))
      await writeFile(join(dir, 'tmp', 'stray'), 'x')
      await mkdir(join(dir, 'tmp', 'a-directory'))
      const reopened = open()
      assert.deepEqual(await readdir(join(dir, 'tmp')), [])
      assert.deepEqual(await reopened.get(cid), encoder.encode('kept'))
      assert.deepEqual((await readdir(join(dir, 'corrupt'))), [])
    })

    it('does nothing when the signal is already aborted', async () => {
      const bytes = encoder.encode('never written')
      const signal = AbortSignal.abort()
      await assert.rejects(store.put(bytes, raw.code, { signal }), isName('AbortedError'))
      await assert.rejects(store.putVerified(await rawCid(bytes), bytes, { signal }), isName('AbortedError'))
      assert.equal(await store.has(await rawCid(bytes)), false)
      const cid = await store.put(bytes)
      await assert.rejects(store.get(cid, { signal }), isName('AbortedError'))
    })

    it('refuses a non-byte value and a bad codec', async () => {
      await assert.rejects(store.put('text' as unknown as Uint8Array), isName('InvalidInputError'))
      await assert.rejects(store.put(new Uint8Array(1), -1), isName('InvalidInputError'))
    })
  })
}

describe('syncDir', () => {
  let root: string
  beforeEach(async () => { root = await mkdtemp(join(tmpdir(), 'rhizome-syncdir-')) })
  afterEach(async () => { await rm(root, { recursive: true, force: true }) })

  /** A directory handle whose sync fails with `code` (or succeeds), remembering whether it was closed. */
  function refusing (code: string | undefined, at: 'open' | 'sync'): { openDir: OpenDir, closed: () => boolean } {
    let closed = false
    const fail = (): never => { throw Object.assign(new Error(`${code ?? ''}: refused`), { code }) }
    const openDir: OpenDir = async () => {
      if (at === 'open' && code !== undefined) fail()
      return {
        sync: async () => { if (at === 'sync' && code !== undefined) fail() },
        close: async () => { closed = true }
      }
    }
    return { openDir, closed: () => closed }
  }

  it('syncs a real directory', async () => {
    assert.equal(await syncDir(root), true)
  })

  it('reports false, syncing nothing, where the platform cannot sync a directory', async () => {
    for (const code of ['EINVAL', 'ENOTSUP', 'EISDIR', 'EPERM']) {
      const onSync = refusing(code, 'sync')
      assert.equal(await syncDir(root, onSync.openDir), false, code)
      assert.equal(onSync.closed(), true, `${code}: the handle is closed`)
      assert.equal(await syncDir(root, refusing(code, 'open').openDir), false, code)
    }
  })

  it('throws a disk error, and closes the handle', async () => {
    const eio = refusing('EIO', 'sync')
    await assert.rejects(syncDir(root, eio.openDir), (err: NodeJS.ErrnoException) => err.code === 'EIO')
    assert.equal(eio.closed(), true)
    await assert.rejects(syncDir(join(root, 'missing')), (err: NodeJS.ErrnoException) => err.code === 'ENOENT')
  })
})
