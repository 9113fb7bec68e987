// Re-computable blobs (putCached): visible at once, written in the background without fsyncs,
// with and without the SQLite index.
import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { blobCachedBytesMax, blobInlineBytesMax, blobPendingBytesMax, createBlobStore, openDatabase } from '../../src/store/index.ts'
import type { BlobStore, Database } from '../../src/store/index.ts'
import type { CID } from 'multiformats/cid'

function blobPath (dir: string, cid: CID): string {
  const key = cid.toV1().toString()
  return join(dir, key.slice(-2), key)
}

async function exists (path: string): Promise<boolean> {
  return await stat(path).then(() => true, () => false)
}

for (const variant of [{ name: 'files only', withDb: false }, { name: 'files with SQLite index', withDb: true }]) {
  describe(`BlobStore.putCached (${variant.name})`, () => {
    let root: string
    let dir: string
    let db: Database | undefined
    let store: BlobStore
    const indexed = (): string[] | undefined => db?.sqlite.prepare('SELECT cid FROM blobs ORDER BY cid').all().map(row => row.cid as string)
    /** Where the background writer put a small blob: its index row with a database, else a file. */
    const written = async (cid: CID): Promise<Uint8Array | undefined> => {
      if (db !== undefined) {
        const row = db.sqlite.prepare('SELECT data FROM blobs WHERE cid = ?').get(cid.toString()) as { data: Uint8Array | null } | undefined
        assert.equal(await exists(blobPath(dir, cid)), false, 'a small result in the database has no file of its own')
        return row?.data ?? undefined
      }
      return await exists(blobPath(dir, cid)) ? new Uint8Array(await readFile(blobPath(dir, cid))) : undefined
    }

    beforeEach(async () => {
      root = await mkdtemp(join(tmpdir(), 'rhizome-blobs-cached-'))
      dir = join(root, 'blobs')
      db = variant.withDb ? openDatabase(join(root, 'rhizome.sqlite')) : undefined
      store = createBlobStore({ dir, db })
    })
    afterEach(async () => {
      await store.flush()
      db?.close()
      await rm(root, { recursive: true, force: true })
    })

    it('answers has, get, stat and readRange before the file exists, then writes it without a sync', async () => {
      const bytes = dagCbor.encode({ result: 42, name: 'a task result' })
      const cid = await store.putCached(bytes, dagCbor.code)
      assert.equal(cid.code, dagCbor.code)
      assert.equal(await exists(blobPath(dir, cid)), false, 'not on disk yet: put returned without touching the file system')
      assert.equal(await store.has(cid), true)
      assert.deepEqual(await store.get(cid), bytes)
      assert.deepEqual(await store.stat(cid), { bytes: bytes.byteLength })
      assert.deepEqual(await store.readRange(cid, 2, 5), { total: bytes.byteLength, bytes: bytes.subarray(2, 7) })
      await store.flush()
      assert.deepEqual(await written(cid), bytes)
      assert.equal(store.counters.fileSyncs, 0)
      assert.equal(store.counters.dirSyncs, 0)
      assert.equal(store.cacheCounters.puts, 1)
      if (db !== undefined) assert.deepEqual(indexed(), [cid.toString()])
      assert.deepEqual(await store.get(cid), bytes, 'read back from the file once written')
    })

    it('keeps its own copy: changing the caller\'s buffer afterwards changes nothing', async () => {
      const bytes = dagCbor.encode('original')
      const cid = await store.putCached(bytes, dagCbor.code)
      bytes.fill(0)
      assert.deepEqual(await store.get(cid), dagCbor.encode('original'))
      await store.flush()
      assert.deepEqual(await store.get(cid), dagCbor.encode('original'))
    })

    it('writes many puts of one turn as one batch, their index rows in one transaction', async () => {
      const cids = await Promise.all(Array.from({ length: 50 }, async (_, i) => await store.putCached(dagCbor.encode({ i }), dagCbor.code)))
      await store.flush()
      for (const cid of cids) assert.ok(await written(cid) !== undefined)
      if (db !== undefined) assert.equal(indexed()?.length, 50)
      assert.equal(store.counters.fileSyncs, 0)
      assert.equal(store.cacheCounters.writeFailures, 0)
    })

    it('a blob deleted before its background write is gone, file and all', async () => {
      const cid = await store.putCached(dagCbor.encode('short-lived'), dagCbor.code)
      assert.equal(await store.delete(cid), true)
      assert.equal(await store.has(cid), false)
      await store.flush()
      assert.equal(await exists(blobPath(dir, cid)), false)
      assert.equal(await store.has(cid), false)
      if (db !== undefined) assert.deepEqual(indexed(), [])
    })

    it('a blob deleted while its file is being written does not come back', async () => {
      const cid = await store.putCached(dagCbor.encode('raced'), dagCbor.code)
      const flushing = store.flush()
      await store.delete(cid)
      await flushing
      await store.flush()
      assert.equal(await exists(blobPath(dir, cid)), false)
      assert.equal(await store.has(cid), false)
    })

    it(`writes through (no memory held) a blob over blobCachedBytesMax (${blobCachedBytesMax} bytes)`, async () => {
      const atMax = await store.putCached(new Uint8Array(blobCachedBytesMax).fill(1))
      assert.equal(await exists(blobPath(dir, atMax)), false, 'at the limit: held in memory')
      const over = await store.putCached(new Uint8Array(blobCachedBytesMax + 1).fill(2))
      assert.equal(await exists(blobPath(dir, over)), true, 'one past it: on disk when put returns')
      assert.equal(store.counters.fileSyncs, 0, 'written through, still without a sync')
    })

    it(`writes through once ${blobPendingBytesMax} bytes are waiting`, async () => {
      const piece = blobCachedBytesMax
      const held = Math.floor(blobPendingBytesMax / piece)
      // All in one turn: the background writer cannot run between them.
      const cids = await Promise.all(Array.from({ length: held + 1 }, async (_, i) => await store.putCached(new Uint8Array(piece).fill(i % 251 + 1).map((x, j) => j === 0 ? i & 0xff : x))))
      // Checked before anything lets the background writer run: counters, not the disk.
      assert.equal(store.cacheCounters.puts, held, 'all but the one past the memory bound were held in memory')
      assert.equal(cids.length, held + 1)
      await store.flush()
      for (const cid of cids) assert.equal(await exists(blobPath(dir, cid)), true)
    })

    it('counts and lists blobs waiting in memory, once each, before and after they are written', async () => {
      const before = store.count()
      const a = await store.putCached(dagCbor.encode('count me'), dagCbor.code)
      await store.putCached(dagCbor.encode('count me'), dagCbor.code)
      if (db !== undefined) assert.equal(store.count(), (before ?? 0) + 1)
      assert.deepEqual((await store.list()).map(String), [a.toString()])
      await store.flush()
      if (db !== undefined) assert.equal(store.count(), (before ?? 0) + 1)
      assert.deepEqual((await store.list()).map(String), [a.toString()])
      // A result already on disk is not held again, so it is not counted twice.
      await store.putCached(dagCbor.encode('count me'), dagCbor.code)
      assert.equal(store.cacheCounters.puts, 1)
      if (db !== undefined) assert.equal(store.count(), (before ?? 0) + 1)
    })

    it('a durable put while the background writer writes the same blob keeps its file', async () => {
      const bytes = dagCbor.encode('kept')
      const cid = await store.putCached(bytes, dagCbor.code)
      const flushing = store.flush()
      await store.put(bytes, dagCbor.code)
      await flushing
      await store.flush()
      assert.equal(await exists(blobPath(dir, cid)), true)
      assert.deepEqual(await store.get(cid), bytes)
      if (db !== undefined) assert.deepEqual(indexed(), [cid.toString()])
    })

    it(`keeps a result of at most blobInlineBytesMax (${blobInlineBytesMax} bytes) in its index row when there is a database, larger ones in files`, async () => {
      const small = await store.putCached(new Uint8Array(blobInlineBytesMax).fill(3))
      const large = await store.putCached(new Uint8Array(blobInlineBytesMax + 1).fill(4))
      await store.flush()
      assert.equal(await exists(blobPath(dir, small)), db === undefined, 'the small one is a file only without a database')
      assert.equal(await exists(blobPath(dir, large)), true)
      for (const [cid, fill, size] of [[small, 3, blobInlineBytesMax], [large, 4, blobInlineBytesMax + 1]] as const) {
        assert.equal(await store.has(cid), true)
        assert.deepEqual(await store.stat(cid), { bytes: size })
        assert.deepEqual(await store.get(cid), new Uint8Array(size).fill(fill))
        assert.deepEqual((await store.readRange(cid, 1, 2)).bytes, new Uint8Array(2).fill(fill))
      }
      assert.equal(await store.delete(small), true)
      assert.equal(await store.has(small), false)
      assert.equal(await store.delete(small), false)
      await assert.rejects(store.get(small), { name: 'NotFoundError' })
    })

    it('a small result kept in the database that no longer matches its CID is refused and dropped', async (t) => {
      if (db === undefined) { t.skip('no database'); return }
      const cid = await store.putCached(dagCbor.encode('tampered'), dagCbor.code)
      await store.flush()
      db.sqlite.prepare('UPDATE blobs SET data = ? WHERE cid = ?').run(dagCbor.encode('something else'), cid.toString())
      await assert.rejects(store.get(cid), { name: 'BlobCorruptError' })
      assert.equal(await store.has(cid), false)
    })

    it('a durable put of bytes waiting in memory writes them synced', async () => {
      const bytes = dagCbor.encode('both ways')
      const cid = await store.putCached(bytes, dagCbor.code)
      await store.put(bytes, dagCbor.code)
      assert.equal(await exists(blobPath(dir, cid)), true)
      assert.equal(store.counters.fileSyncs, 1)
      await store.flush()
      assert.deepEqual(await store.get(cid), bytes)
    })
  })
}
