/**
 * The blob store's totals (objects and bytes, for the peer's metrics): counted over the index
 * once, then kept as rows are added and removed — by durable puts, background writes of cached
 * puts (file and inline), deletes, and corrupt files moved aside — and always equal to a fresh
 * count of the same store.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { blobInlineBytesMax, createBlobStore, openDatabase } from '../../src/store/index.ts'
import type { BlobStore, Database } from '../../src/store/index.ts'

describe('blob store totals', () => {
  let root: string
  let db: Database
  let store: BlobStore
  const dir = (): string => join(root, 'blobs')
  /** What a store opened afresh on the same files and database counts. */
  const recount = (): ReturnType<BlobStore['totals']> => createBlobStore({ dir: dir(), db }).totals()

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'rhizome-blob-totals-'))
    db = openDatabase(join(root, 'rhizome.db'))
    store = createBlobStore({ dir: dir(), db })
  })

  afterEach(async () => {
    db.close()
    await rm(root, { recursive: true, force: true })
  })

  test('puts, cached puts, deletes and a corrupt file keep the totals equal to a fresh count', async () => {
    const a = new Uint8Array(1000).fill(1)
    const cidA = await store.put(a)
    assert.deepEqual(store.totals(), { objects: 1, bytes: 1000 }, 'the first call counts the index')
    await store.put(a)
    assert.deepEqual(store.totals(), { objects: 1, bytes: 1000 }, 'the same bytes again add nothing')
    const small = new Uint8Array(200).fill(2)
    const large = new Uint8Array(blobInlineBytesMax + 1).fill(3)
    await store.putCached(small, dagCbor.code)
    await store.putCached(large, dagCbor.code)
    const expected = { objects: 3, bytes: 1000 + 200 + large.byteLength }
    assert.deepEqual(store.totals(), expected, 'blobs waiting in memory count at once')
    await store.flush()
    assert.deepEqual(store.totals(), expected, 'and the same once written (inline and as a file)')
    assert.deepEqual(recount(), expected)

    assert.equal(await store.delete(cidA), true)
    assert.deepEqual(store.totals(), { objects: 2, bytes: 200 + large.byteLength })
    assert.equal(await store.delete(cidA), false)
    assert.deepEqual(store.totals(), { objects: 2, bytes: 200 + large.byteLength }, 'deleting what is gone changes nothing')

    const b = new Uint8Array(5000).fill(4)
    const cidB = await store.put(b)
    const key = cidB.toV1().toString()
    const path = join(dir(), key.slice(-2), key)
    const onDisk = await readFile(path)
    onDisk[0] ^= 1
    await writeFile(path, onDisk)
    await assert.rejects(store.get(cidB), { name: 'BlobCorruptError' })
    assert.deepEqual(store.totals(), { objects: 2, bytes: 200 + large.byteLength }, 'a corrupt file moved aside is no longer counted')
    assert.deepEqual(recount(), store.totals())
  })
})
