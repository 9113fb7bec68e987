/**
 * Content-addressed blobs on disk. A blob's name is its CID (v1, sha2-256), so its bytes are
 * verified wherever they enter: hashed on `put`, checked against a peer's claimed CID on
 * `putVerified`, and hashed again on every `get`, because a disk can rot and a file can be edited
 * behind our back. Bytes that no longer match are moved aside and never served.
 *
 * `readRange` serves a piece of a blob (the blob protocol asks for 1 MiB at a time) without
 * reading the whole of it. The file is hashed once, streamed in `blobVerifyChunkBytes` pieces, and
 * the store remembers that this file — same inode, size and mtime — was verified, with a
 * CRC-32 of each piece. A range then costs one bounded read of the pieces it covers (one, for the
 * aligned ranges a fetch asks for), checked against their CRCs. A file that changed since (a write
 * moves its mtime, a replacement changes its inode) is hashed again before it is served;
 * the CRCs catch what timestamps miss — bit rot, an edit within the filesystem's timestamp
 * granularity, or one that put the mtime back — so a range whose bytes differ from what was
 * verified is refused, never served.
 *
 * Layout under `dir` (after go-ipfs flatfs, sharded by the end of the CID, which is hash bits):
 *   <last 2 chars of cid>/<cid>   one file per blob; base32 gives 32 × 8 = 256 shards
 *   tmp/                          files being written; renamed into place when complete
 *   corrupt/                      files that failed verification, kept for inspection
 * Shard names have two characters, so they never collide with `tmp` or `corrupt`.
 *
 * Writes go to a temp file, are fsynced and renamed into place, so a crash never leaves a partial
 * blob under its CID, and concurrent puts of the same bytes each rename a complete copy. What a
 * crash does leave is the temp file; opening the store empties tmp/, so only one store may be open
 * on a directory at a time (a peer holds its data dir lock while its store is open).
 *
 * A rename lives in the directory, not the file: after a killed process it is done, but after a
 * power cut it is on disk only once the directory is. So after the rename the shard directory is
 * fsynced too (and the store's directory, when the put created the shard), before `put` returns:
 * a blob a peer has acknowledged survives a power cut. Cost: two fsyncs per new blob (file and
 * shard), three for a shard's first blob (256 shards: a store's first few hundred); a put of
 * bytes already stored syncs nothing. `counters.fileSyncs` and `counters.dirSyncs` count them.
 * Moves to corrupt/ and deletes are not synced: one lost to a power cut brings back a file that is
 * verified again before it is served, or a blob that was to be dropped — never damage.
 *
 * With a database, the `blobs` table mirrors the files (written after the file, removed with it)
 * so SQL can see what a peer holds. The files stay the truth: `has`, `stat` and `get` look at disk.
 *
 * Re-computable blobs — a task's result, which its function gives again from the same inputs —
 * take `putCached`: the bytes are hashed and held in memory, visible at once to `has`, `get`,
 * `stat` and `readRange`, and written in the background, a batch per turn of the event loop,
 * without fsyncs, their index rows in one transaction per batch committed without a sync. With a
 * database, a result of at most blobInlineBytesMax goes in its index row (`data`) and gets no file
 * at all: for those rows the database, not a file, holds the blob, and `get` checks them against
 * their CID as it does files. A task's answer then
 * waits on no file-system call: before, every result cost a stat, a file write, two fsyncs, a rename
 * and a commit on the worker and again on the caller, and those fsyncs queued every other file
 * operation of the peer behind them. What this gives up: a result put this way is not on disk when
 * `putCached` returns, so a crash (or a power cut, before the OS writes the file) can lose it; the
 * tasks that need it run again. Memory stays bounded (blobPendingBytesMax); past it, and for
 * blobs over blobCachedBytesMax, `putCached` writes through (still without syncing). `flush()`
 * waits for the background writes; a stopping peer calls it before closing its database.
 */
import { createHash, randomUUID } from 'node:crypto'
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs'
import { crc32 } from 'node:zlib'
import { mkdir, open, opendir, rename, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { equals } from 'multiformats/bytes'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import { BoundedCache } from '../model/bounded-cache.ts'
import { AbortedError, BlobCorruptError, InvalidInputError, NotFoundError, TooLargeError } from '../model/errors.ts'
import { CID_CHARS_MAX } from '../model/limits.ts'
import { withoutSync } from './database.ts'
import type { Database } from './database.ts'
import type { FileHandle } from 'node:fs/promises'
import type { StatementSync } from 'node:sqlite'
import { BlobHashMismatchError } from './errors.ts'

/**
 * Largest blob, in bytes. `get` reads a blob whole into memory (for the local API, for a function's
 * code and for a task's result), and a fetch from a peer assembles one whole before verifying it,
 * so this bounds the memory those take; 64 MiB covers typical task inputs and results and keeps a
 * few of them well inside a small peer's heap. Ranges served to peers never hold a whole blob
 * (see `blobRangeBytesMax`). Bigger data should be split into blobs and linked from a dag-cbor value.
 */
import { BLOB_BYTES_MAX } from '../api/limits.ts'
export const blobBytesMaxDefault = BLOB_BYTES_MAX
/** Most CIDs one `list` call returns; page through a bigger store. Bounds memory and time per call. */
export const blobListLengthMax = 10_000
/** CIDs one `list` call returns when no limit is given. */
export const blobListLengthDefault = 1_000

/**
 * Largest range one `readRange` returns, in bytes: the blob protocol's chunk. A range is read into
 * a buffer of its own size, so this bounds the memory one range request holds.
 */
export const blobRangeBytesMax = 1024 * 1024
/**
 * Bytes read at a time while hashing a file to verify it, and the piece each remembered CRC-32
 * covers. Equal to `blobRangeBytesMax`, so an aligned range is exactly one piece and an unaligned
 * one at most two; 1 MiB keeps the buffer small next to a 64 MiB blob and the reads cheap per byte.
 */
export const blobVerifyChunkBytes = blobRangeBytesMax
/**
 * Verified files remembered, in entries: each a stat signature (~100 bytes) and a CRC-32 per MiB
 * (256 bytes for a 64 MiB blob), so ~3 MB at most. A peer serving more distinct blobs than this
 * at once re-verifies the least recently served; that costs a hash, never correctness.
 */
export const blobsVerifiedMax = 8192
/**
 * Bytes of re-computable blobs (`putCached`) held in memory until the background writer has put
 * them in files. 16 MiB is a few thousand small task results, several seconds of them at the task
 * rates a peer reaches; past it a put writes through, so a disk slower than the tasks costs speed,
 * never memory.
 */
export const blobPendingBytesMax = 16 * 1024 * 1024
/**
 * Largest blob `putCached` holds in memory; larger ones are written through at once. The size of
 * a task result that travels inline in the task reply (RESULT_INLINE_BYTES_MAX): bigger results
 * are fetched as blobs, which wants them in a file anyway.
 */
export const blobCachedBytesMax = 256 * 1024
/**
 * Largest `putCached` blob whose bytes go in its SQLite index row instead of a file of its own
 * (stores with a database). SQLite reads and writes blobs of a few KiB faster than a file system
 * does files of that size ("35% Faster Than The Filesystem", sqlite.org/fasterthanfs.html; its
 * "Internal Versus External BLOBs" study puts the break-even near 100 KiB at 4 KiB pages), and a
 * row costs no open, write, close, rename and directory entry per task result. 64 KiB keeps every
 * typical small result in the database and anything large in files.
 */
export const blobInlineBytesMax = 64 * 1024
/** Files the background writer writes at once: enough to overlap, few enough to leave the thread pool to others. */
const BACKGROUND_WRITES_CONCURRENT = 4

const sha256DigestBytes = 32
const shardDirChars = 2
const tmpDirName = 'tmp'
const corruptDirName = 'corrupt'

/** A file verified against its CID: its stat signature then, and a CRC-32 per `blobVerifyChunkBytes`. */
interface Verified {
  signature: string
  crcs: Uint32Array
}

export interface AbortOptions {
  signal?: AbortSignal
}

export interface BlobStoreOptions {
  /** Directory holding the blobs; created if missing. */
  dir: string
  /** If given, the `blobs` table is kept in sync with the files. */
  db?: Database
  /** Default `blobBytesMaxDefault` (64 MiB). */
  blobBytesMax?: number
  /** Verified files remembered. Default `blobsVerifiedMax` (8,192). */
  verifiedMax?: number
  /** Clock for the index's `created_ms`. Default `Date.now`. */
  now?: () => number
}

export interface BlobStat {
  bytes: number
}

export interface BlobRange {
  /** The whole blob's size in bytes. */
  total: number
  /** The bytes at [offset, offset + length), cut short at the end of the blob. */
  bytes: Uint8Array
}

/** Work the store has done since it was opened, for cost tests and diagnostics. */
export interface BlobStoreCounters {
  /** Bytes fed to sha2-256: on put, on putVerified and when verifying a stored file. */
  bytesHashed: number
  /** Bytes read from blob files. */
  bytesRead: number
  /** Blob files fsynced before their rename into place: one per new blob. */
  fileSyncs: number
  /** Directories fsynced after a rename (the shard, and the store's directory for a new shard). */
  dirSyncs: number
}

/** What `putCached` has done since the store was opened. */
export interface BlobCacheCounters {
  /** Blobs `putCached` kept in memory and wrote in the background. */
  puts: number
  /** Background writes that failed: the blob was dropped (it is re-computable). */
  writeFailures: number
}

export interface BlobStore {
  readonly dir: string
  readonly blobBytesMax: number
  /** Running totals of bytes hashed and read, and of fsyncs; never reset. */
  readonly counters: Readonly<BlobStoreCounters>
  /** Running totals of `putCached`'s in-memory puts and failed background writes. */
  readonly cacheCounters: Readonly<BlobCacheCounters>
  /** Store bytes; returns their CIDv1 (sha2-256, `codec`, default raw). Storing the same bytes again is a no-op. */
  put(bytes: Uint8Array, codec?: number, options?: AbortOptions): Promise<CID>
  /**
   * Store re-computable bytes (a task's result): visible at once, written to disk in the background
   * without syncing. `bytes` is copied. See the file's comment for what a crash may lose.
   */
  putCached(bytes: Uint8Array, codec?: number): Promise<CID>
  /** Wait until every `putCached` blob is in its file (or dropped after a failed write). */
  flush(): Promise<void>
  /** Store bytes that a peer says have CID `cid`. Throws BlobHashMismatchError, storing nothing, if they do not. */
  putVerified(cid: CID | string, bytes: Uint8Array, options?: AbortOptions): Promise<CID>
  /** The blob's bytes, verified against its CID. NotFoundError if absent, BlobCorruptError if damaged. */
  get(cid: CID | string, options?: AbortOptions): Promise<Uint8Array>
  /**
   * Up to `length` (at most `blobRangeBytesMax`) bytes of the blob from `offset`, and its size. The
   * file is verified against its CID first — once, while it stays unchanged — and never read whole.
   * NotFoundError if absent, BlobCorruptError if damaged (the file is moved aside).
   */
  readRange(cid: CID | string, offset: number, length: number, options?: AbortOptions): Promise<BlobRange>
  has(cid: CID | string): Promise<boolean>
  /** Removes the blob. Returns whether it was there. */
  delete(cid: CID | string): Promise<boolean>
  stat(cid: CID | string): Promise<BlobStat | undefined>
  /** Up to `limit` stored CIDs (default `blobListLengthDefault`, at most `blobListLengthMax`), in no particular order. */
  list(options?: { limit?: number }): Promise<CID[]>
  /** How many blobs the SQLite index holds; undefined for a store without one (counting files would walk the disk). */
  count(): number | undefined
  /** Blobs and their bytes, waiting ones included; counted over the index once, then kept as rows come and go. Undefined without an index. */
  totals(): { objects: number, bytes: number } | undefined
}

/**
 * Parse and check a CID: only sha2-256, CIDv1 or CIDv0. Throws InvalidInputError with a hint on
 * anything else.
 */
export function parseBlobCid (cid: CID | string): CID {
  let parsed: CID | null
  if (typeof cid === 'string') {
    if (cid.length > CID_CHARS_MAX) {
      throw new InvalidInputError(`a CID of ${cid.length} characters is longer than the limit of ${CID_CHARS_MAX}`, {
        hint: 'give a blob CID in base32 (bafk…) or base58 CIDv0 (Qm…) form'
      })
    }
    try {
      parsed = CID.parse(cid)
    } catch (err) {
      throw new InvalidInputError(`not a CID: ${JSON.stringify(cid)}`, {
        cause: err,
        hint: 'give a blob CID in base32 (bafk…) or base58 CIDv0 (Qm…) form'
      })
    }
  } else {
    parsed = CID.asCID(cid)
    if (parsed === null) throw new InvalidInputError('not a CID object', { hint: 'pass a multiformats CID or its string form' })
  }
  if (parsed.multihash.code !== sha256.code || parsed.multihash.digest.length !== sha256DigestBytes) {
    throw new InvalidInputError(`blob ${parsed.toString()} is not addressed by sha2-256`, {
      hint: 'Rhizome addresses blobs by sha2-256 only; recompute the CID with sha2-256'
    })
  }
  return parsed
}

/** The file name of a blob: its CIDv1 in base32, so a CIDv0 and its v1 form share one file. */
function blobKey (cid: CID): string {
  return cid.toV1().toString()
}

/** Prepared statements of the `blobs` index table. */
interface BlobIndex {
  insert: StatementSync
  /** A row that carries the blob's bytes (a small putCached blob, see blobInlineBytesMax). */
  insertInline: StatementSync
  inline: StatementSync
  inlineSize: StatementSync
  remove: StatementSync
  list: StatementSync
  count: StatementSync
  totals: StatementSync
}

/** How a blob's file is written: synced (durable) or not (re-computable), with its index row or without (a batch adds them). */
interface WriteMode {
  sync: boolean
  index: boolean
}
const DURABLE: WriteMode = { sync: true, index: true }

/**
 * The blob store on disk: one file per blob under a two-character shard directory, written to
 * tmp/ and renamed into place, moved to corrupt/ when it no longer matches its CID.
 */
class DiskBlobStore implements BlobStore {
  readonly dir: string
  readonly blobBytesMax: number
  readonly counters: BlobStoreCounters = { bytesHashed: 0, bytesRead: 0, fileSyncs: 0, dirSyncs: 0 }
  readonly cacheCounters: BlobCacheCounters = { puts: 0, writeFailures: 0 }
  private readonly now: () => number
  private readonly tmpDir: string
  private readonly corruptDir: string
  private readonly index: BlobIndex | undefined
  /** Blob key → the file last verified under it: its stat signature and a CRC-32 per piece. */
  private readonly verified: BoundedCache<string, Verified>
  /** Verifications running, by key and signature: concurrent ranges of one file share one hash. */
  private readonly verifying = new Map<string, Promise<Verified>>()
  /** `putCached` blobs not yet in their files, by key. */
  private readonly pending = new Map<string, Uint8Array>()
  private pendingBytes = 0
  /** The background writer's current batch, while one runs. */
  private writing: Promise<void> | undefined
  private writeScheduled = false
  /** Keys deleted while a batch was being written, whose files that batch may have just made. */
  private readonly deletedWhileWriting = new Set<string>()
  private readonly db: Database | undefined

  constructor (options: BlobStoreOptions) {
    const { dir, db } = options
    this.dir = dir
    this.db = db
    this.now = options.now ?? Date.now
    this.blobBytesMax = options.blobBytesMax ?? blobBytesMaxDefault
    if (!Number.isSafeInteger(this.blobBytesMax) || this.blobBytesMax < 0) {
      throw new InvalidInputError(`blobBytesMax must be a non-negative integer, got ${this.blobBytesMax}`)
    }
    this.tmpDir = join(dir, tmpDirName)
    this.corruptDir = join(dir, corruptDirName)
    // Once, at construction: every put then writes into existing directories except its shard.
    mkdirSync(this.tmpDir, { recursive: true })
    mkdirSync(this.corruptDir, { recursive: true })
    // What is in tmp/ now was being written when a peer stopped or crashed: it never became a blob
    // and nothing will finish it. Removed here, while no put can be running (one store per dir).
    for (const name of readdirSync(this.tmpDir)) rmSync(join(this.tmpDir, name), { recursive: true, force: true })
    this.verified = new BoundedCache<string, Verified>({ entriesMax: options.verifiedMax ?? blobsVerifiedMax })
    this.index = db === undefined
      ? undefined
      : {
          insert: db.sqlite.prepare('INSERT INTO blobs (cid, bytes, created_ms) VALUES (?, ?, ?) ON CONFLICT (cid) DO NOTHING'),
          insertInline: db.sqlite.prepare('INSERT INTO blobs (cid, bytes, created_ms, data) VALUES (?, ?, ?, ?) ON CONFLICT (cid) DO NOTHING'),
          inline: db.sqlite.prepare('SELECT data FROM blobs WHERE cid = ? AND data IS NOT NULL'),
          inlineSize: db.sqlite.prepare('SELECT length(data) AS n FROM blobs WHERE cid = ? AND data IS NOT NULL'),
          remove: db.sqlite.prepare('DELETE FROM blobs WHERE cid = ? RETURNING bytes'),
          list: db.sqlite.prepare('SELECT cid FROM blobs ORDER BY cid LIMIT ?'),
          count: db.sqlite.prepare('SELECT count(*) AS n FROM blobs'),
          totals: db.sqlite.prepare('SELECT count(*) AS n, coalesce(sum(bytes), 0) AS bytes FROM blobs')
        }
  }

  async put (bytes: Uint8Array, codec = raw.code, { signal }: AbortOptions = {}): Promise<CID> {
    throwIfAborted(signal)
    if (!Number.isSafeInteger(codec) || codec < 0) throw new InvalidInputError(`codec must be a multicodec code, got ${codec}`)
    this.checkSize('blob', bytes)
    this.counters.bytesHashed += bytes.byteLength
    const cid = CID.createV1(codec, await sha256.digest(bytes))
    await this.write(cid, bytes, signal)
    return cid
  }

  async putCached (bytes: Uint8Array, codec = raw.code): Promise<CID> {
    if (!Number.isSafeInteger(codec) || codec < 0) throw new InvalidInputError(`codec must be a multicodec code, got ${codec}`)
    this.checkSize('blob', bytes)
    this.counters.bytesHashed += bytes.byteLength
    const cid = CID.createV1(codec, await sha256.digest(bytes))
    const key = blobKey(cid)
    // Held already, or already a file (a repeated result): nothing to do. So what is pending is
    // new, and `count` and `list` can add it to the index's rows without counting anything twice.
    if (this.pending.has(key) || this.inlineSize(key) === bytes.byteLength || (await statFile(this.pathOf(key)))?.bytes === bytes.byteLength) return cid
    if (bytes.byteLength > blobCachedBytesMax || this.pendingBytes + bytes.byteLength > blobPendingBytesMax) {
      await this.write(cid, bytes, undefined, { sync: false, index: true })
      return cid
    }
    // A copy of its own: the caller's bytes may be a view on a bigger buffer (a received frame).
    this.pending.set(key, bytes.slice())
    this.pendingBytes += bytes.byteLength
    this.cacheCounters.puts++
    this.scheduleWrites()
    return cid
  }

  async flush (): Promise<void> {
    while (this.writing !== undefined || this.pending.size > 0) await (this.writing ?? this.startBatch())
  }

  private scheduleWrites (): void {
    if (this.writeScheduled || this.writing !== undefined) return
    this.writeScheduled = true
    // After the current turn: the results of every task that finished in it go in one batch.
    setImmediate(() => {
      this.writeScheduled = false
      if (this.writing === undefined) void this.startBatch()
    })
  }

  /** Start a batch; `writing` holds it until it ends, then the next one is scheduled if more came. */
  private async startBatch (): Promise<void> {
    const running = this.writeBatch().finally(() => {
      this.writing = undefined
      if (this.pending.size > 0) this.scheduleWrites()
    })
    this.writing = running
    await running
  }

  /** Write every pending blob to its file, their index rows in one transaction, then drop them from memory. */
  private async writeBatch (): Promise<void> {
    const batch = [...this.pending]
    const written: Array<[string, number]> = []
    // Small ones go in their index rows (blobInlineBytesMax), the rest to files.
    const inline = this.index === undefined ? [] : batch.filter(([, bytes]) => bytes.byteLength <= blobInlineBytesMax)
    const files = inline.length === 0 ? batch : batch.filter(([, bytes]) => bytes.byteLength > blobInlineBytesMax)
    for (let at = 0; at < files.length; at += BACKGROUND_WRITES_CONCURRENT) {
      await Promise.all(files.slice(at, at + BACKGROUND_WRITES_CONCURRENT).map(async ([key, bytes]) => {
        try {
          await this.write(CID.parse(key), bytes, undefined, { sync: false, index: false })
          written.push([key, bytes.byteLength])
        } catch {
          this.cacheCounters.writeFailures++
        }
      }))
    }
    if (this.index !== undefined && written.length + inline.length > 0) {
      const { insert, insertInline } = this.index
      const at = this.now()
      const rows = (): void => {
        for (const [key, bytes] of written) if (this.pending.has(key)) this.indexed(insert.run(key, bytes, at).changes, bytes)
        for (const [key, bytes] of inline) if (this.pending.get(key) === bytes) this.indexed(insertInline.run(key, bytes.byteLength, at, bytes).changes, bytes.byteLength)
      }
      try {
        // Without a disk sync: the files are the truth, and these blobs are re-computable.
        if (this.db !== undefined) withoutSync(this.db, rows)
        else rows()
      } catch {
        // The database closed under us (a peer stopping without flush): the files are the truth.
        this.cacheCounters.writeFailures++
        // Rows counted may have been rolled back: count again next time.
        this.indexTotals = undefined
      }
    }
    for (const [key, bytes] of batch) {
      if (this.pending.get(key) === bytes) {
        this.pending.delete(key)
        this.pendingBytes -= bytes.byteLength
      } else if (this.deletedWhileWriting.has(key)) {
        // Deleted while its file was being written: the delete found no file, so remove it now.
        await unlink(this.pathOf(key)).catch(() => {})
      }
      // Otherwise a durable put took it over meanwhile: its file stays.
    }
    this.deletedWhileWriting.clear()
  }

  async putVerified (cidClaimed: CID | string, bytes: Uint8Array, { signal }: AbortOptions = {}): Promise<CID> {
    throwIfAborted(signal)
    const cid = parseBlobCid(cidClaimed)
    this.checkSize(`blob ${cid.toString()}`, bytes)
    this.counters.bytesHashed += bytes.byteLength
    const digest = await sha256.digest(bytes)
    if (!equals(digest.digest, cid.multihash.digest)) {
      throw new BlobHashMismatchError(cid.toString(), CID.createV1(cid.code, digest).toString())
    }
    await this.write(cid, bytes, signal)
    return cid
  }

  async get (cidIn: CID | string, { signal }: AbortOptions = {}): Promise<Uint8Array> {
    throwIfAborted(signal)
    const cid = parseBlobCid(cidIn)
    const key = blobKey(cid)
    // Hashed when it was put, and never out of this process since: a copy is the blob.
    const cached = this.pending.get(key)
    if (cached !== undefined) return cached.slice()
    const inline = await this.inlineBytes(cid, key)
    if (inline !== undefined) return inline
    const path = this.pathOf(key)
    const file = await this.openBlob(cid, key, path)
    let bytes: Uint8Array
    try {
      await this.statOpen(file, key)
      const buffer = await file.readFile({ signal })
      this.counters.bytesRead += buffer.byteLength
      // A plain Uint8Array over the same memory: callers get the type they put in, not a Buffer.
      bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
      this.counters.bytesHashed += bytes.byteLength
      const digest = await sha256.digest(bytes)
      if (!equals(digest.digest, cid.multihash.digest)) {
        await this.quarantine(key, path)
        throw new BlobCorruptError(cid.toString())
      }
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw new AbortedError(undefined, { cause: err })
      throw err
    } finally {
      await file.close()
    }
    return bytes
  }

  async readRange (cidIn: CID | string, offset: number, length: number, { signal }: AbortOptions = {}): Promise<BlobRange> {
    throwIfAborted(signal)
    const cid = parseBlobCid(cidIn)
    if (!Number.isSafeInteger(offset) || offset < 0) throw new InvalidInputError(`offset must be a non-negative integer, got ${offset}`)
    if (!Number.isSafeInteger(length) || length < 1 || length > blobRangeBytesMax) {
      throw new InvalidInputError(`length must be an integer from 1 to ${blobRangeBytesMax}, got ${length}`, {
        hint: 'read a larger blob in several ranges'
      })
    }
    const key = blobKey(cid)
    const cached = this.pending.get(key) ?? await this.inlineBytes(cid, key)
    if (cached !== undefined) {
      const start = Math.min(offset, cached.byteLength)
      return { total: cached.byteLength, bytes: cached.slice(start, Math.min(start + length, cached.byteLength)) }
    }
    const path = this.pathOf(key)
    const file = await this.openBlob(cid, key, path)
    try {
      const { size, signature } = await this.statOpen(file, key)
      // Waits for a verification that another request started, even if this one is aborted
      // meanwhile: the file handle it reads through must stay open until it ends.
      const { crcs } = await this.verifyOnce(cid, key, path, file, size, signature)
      throwIfAborted(signal)
      const start = Math.min(offset, size)
      const end = Math.min(start + length, size)
      if (end === start) return { total: size, bytes: new Uint8Array(0) }
      // Read the whole pieces the range touches, so each can be checked against its CRC.
      const first = Math.floor(start / blobVerifyChunkBytes)
      const last = Math.floor((end - 1) / blobVerifyChunkBytes)
      const from = first * blobVerifyChunkBytes
      const to = Math.min((last + 1) * blobVerifyChunkBytes, size)
      const pieces = await this.readFully(file, new Uint8Array(to - from), to - from, from)
      let intact = pieces.byteLength === to - from
      for (let piece = first; intact && piece <= last; piece++) {
        const at = (piece - first) * blobVerifyChunkBytes
        intact = crc32(pieces.subarray(at, at + blobVerifyChunkBytes)) === crcs[piece]
      }
      if (!intact) {
        // Changed in place since it was verified, without moving its timestamps (or cut short).
        await this.quarantine(key, path)
        throw new BlobCorruptError(cid.toString())
      }
      const bytes = pieces.subarray(start - from, end - from)
      return { total: size, bytes }
    } finally {
      await file.close()
    }
  }

  async has (cid: CID | string): Promise<boolean> {
    const key = blobKey(parseBlobCid(cid))
    return this.pending.has(key) || this.inlineSize(key) !== undefined || (await statFile(this.pathOf(key))) !== undefined
  }

  async delete (cid: CID | string): Promise<boolean> {
    const key = blobKey(parseBlobCid(cid))
    const cached = this.pending.get(key)
    if (cached !== undefined) {
      this.pending.delete(key)
      this.pendingBytes -= cached.byteLength
      if (this.writing !== undefined) this.deletedWhileWriting.add(key)
    }
    const inline = this.inlineSize(key) !== undefined
    let existed = true
    this.verified.delete(key)
    try {
      await unlink(this.pathOf(key))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      existed = cached !== undefined || inline
    }
    this.unindex(key)
    return existed
  }

  async stat (cid: CID | string): Promise<BlobStat | undefined> {
    const key = blobKey(parseBlobCid(cid))
    const cached = this.pending.get(key)
    if (cached !== undefined) return { bytes: cached.byteLength }
    const inline = this.inlineSize(key)
    if (inline !== undefined) return { bytes: inline }
    return await statFile(this.pathOf(key))
  }

  count (): number | undefined {
    // Blobs waiting for the background writer are the store's too; their rows come with their files.
    return this.index === undefined ? undefined : Number((this.index.count.get() as { n: number | bigint }).n) + this.pending.size
  }

  totals (): { objects: number, bytes: number } | undefined {
    if (this.index === undefined) return undefined
    // One pass over the index the first time; kept up to date by every row added or removed since.
    if (this.indexTotals === undefined) {
      const row = this.index.totals.get() as { n: number | bigint, bytes: number | bigint }
      this.indexTotals = { objects: Number(row.n), bytes: Number(row.bytes) }
    }
    return { objects: this.indexTotals.objects + this.pending.size, bytes: this.indexTotals.bytes + this.pendingBytes }
  }

  /** Blobs and bytes in the index, once `totals` has counted them. */
  private indexTotals: { objects: number, bytes: number } | undefined

  /** An insert into the index ran: count its row if it added one (a known CID adds none). */
  private indexed (changes: number | bigint, bytes: number): void {
    if (this.indexTotals === undefined || Number(changes) === 0) return
    this.indexTotals.objects++
    this.indexTotals.bytes += bytes
  }

  /** Remove a blob's index row, uncounting it. */
  private unindex (key: string): void {
    const row = this.index?.remove.get(key) as { bytes: number | bigint } | undefined
    if (row === undefined || this.indexTotals === undefined) return
    this.indexTotals.objects--
    this.indexTotals.bytes -= Number(row.bytes)
  }

  async list ({ limit = blobListLengthDefault }: { limit?: number } = {}): Promise<CID[]> {
    if (!Number.isSafeInteger(limit) || limit < 0 || limit > blobListLengthMax) {
      throw new InvalidInputError(`limit must be an integer from 0 to ${blobListLengthMax}, got ${limit}`, {
        hint: 'list fewer CIDs per call'
      })
    }
    // Blobs waiting for the background writer first: they have neither a row nor a file yet.
    const waiting = [...this.pending.keys()].slice(0, limit).map(key => CID.parse(key))
    if (waiting.length === limit) return waiting
    const stored = this.index !== undefined
      ? (this.index.list.all(limit) as Array<{ cid: string }>).map(row => CID.parse(row.cid))
      : await listFiles(this.dir, limit)
    const seen = new Set(waiting.map(cid => cid.toString()))
    return [...waiting, ...stored.filter(cid => !seen.has(cid.toString()))].slice(0, limit)
  }

  /** The size of a blob kept in its index row, if it is one. */
  private inlineSize (key: string): number | undefined {
    const row = this.index?.inlineSize.get(key) as { n: number | bigint } | undefined
    return row === undefined ? undefined : Number(row.n)
  }

  /** The bytes of a blob kept in its index row, checked against its CID; a damaged row is dropped. */
  private async inlineBytes (cid: CID, key: string): Promise<Uint8Array | undefined> {
    const row = this.index?.inline.get(key) as { data: Uint8Array } | undefined
    if (row === undefined) return undefined
    this.counters.bytesRead += row.data.byteLength
    this.counters.bytesHashed += row.data.byteLength
    const digest = await sha256.digest(row.data)
    if (!equals(digest.digest, cid.multihash.digest)) {
      this.unindex(key)
      throw new BlobCorruptError(cid.toString())
    }
    return row.data
  }

  private pathOf (key: string): string {
    return join(this.dir, key.slice(-shardDirChars), key)
  }

  private checkSize (what: string, bytes: Uint8Array): void {
    if (!(bytes instanceof Uint8Array)) throw new InvalidInputError(`${what} must be a Uint8Array`)
    if (bytes.length > this.blobBytesMax) {
      throw new TooLargeError(what, bytes.length, this.blobBytesMax, {
        hint: 'split the data into smaller blobs linked from a dag-cbor value, or raise blobBytesMax'
      })
    }
  }

  /** Write a blob's file unless it is there; `sync: false` (re-computable blobs) skips the fsyncs. */
  private async write (cid: CID, bytes: Uint8Array, signal: AbortSignal | undefined, { sync, index }: WriteMode = DURABLE): Promise<void> {
    const key = blobKey(cid)
    const path = this.pathOf(key)
    const existing = await statFile(path)
    // Same size under the same CID is the same blob; a damaged one is caught by the next get.
    if (existing?.bytes !== bytes.length) {
      throwIfAborted(signal)
      const shardDir = join(this.dir, key.slice(-shardDirChars))
      // The first directory it created, if any: then the store's directory holds a new entry too.
      const shardCreated = await mkdir(shardDir, { recursive: true }) !== undefined
      await this.writeFile(path, key, bytes, signal, sync)
      // The new name is durable once the shard is synced; a new shard's, once the store's dir is.
      if (sync && await syncDir(shardDir)) this.counters.dirSyncs++
      if (sync && shardCreated && await syncDir(this.dir)) this.counters.dirSyncs++
    }
    if (index) {
      if (this.index !== undefined) this.indexed(this.index.insert.run(key, bytes.length, this.now()).changes, bytes.length)
      // A durable put of bytes that were waiting in memory: they are a file with a row now.
      const waiting = this.pending.get(key)
      if (waiting !== undefined) {
        this.pending.delete(key)
        this.pendingBytes -= waiting.byteLength
      }
    }
  }

  /** Write `bytes` to a temp file, fsync it if asked (its data must be on disk before its name) and rename it to `path`. */
  private async writeFile (path: string, key: string, bytes: Uint8Array, signal: AbortSignal | undefined, sync: boolean): Promise<void> {
    const tmpPath = join(this.tmpDir, `${key}.${randomUUID()}`)
    try {
      const file = await open(tmpPath, 'wx')
      try {
        await file.writeFile(bytes)
        if (sync) {
          await file.sync()
          this.counters.fileSyncs++
        }
      } finally {
        await file.close()
      }
      throwIfAborted(signal)
      await rename(tmpPath, path)
    } catch (err) {
      await unlink(tmpPath).catch(() => {})
      throw err
    }
  }

  /** Move a damaged file out of the store so it is never served, and forget it in the index. */
  private async quarantine (key: string, path: string): Promise<void> {
    this.verified.delete(key)
    await rename(path, join(this.corruptDir, `${key}.${randomUUID()}`)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err
    })
    this.unindex(key)
  }

  /** Open a blob's file; NotFoundError (and the index row dropped) if it is not there. */
  private async openBlob (cid: CID, key: string, path: string): Promise<FileHandle> {
    try {
      return await open(path, 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.unindex(key)
        throw new NotFoundError(`blob ${cid.toString()} is not in this store`, {
          hint: 'fetch it from a peer that holds it, or put it first'
        })
      }
      throw err
    }
  }

  /** Size and stat signature of an open blob file; TooLargeError past blobBytesMax. */
  private async statOpen (file: FileHandle, key: string): Promise<{ size: number, signature: string }> {
    const info = await file.stat({ bigint: true })
    const size = Number(info.size)
    if (size > this.blobBytesMax) {
      throw new TooLargeError(`blob ${key}`, size, this.blobBytesMax, {
        hint: 'the blob was stored under a larger blobBytesMax; raise blobBytesMax to read it'
      })
    }
    // Not ctime: the CRCs already catch an edit that put the mtime back, and leaving ctime out lets
    // a test make exactly that edit (ctime cannot be set from user space).
    return { size, signature: `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}` }
  }

  /**
   * Hash the open file in `blobVerifyChunkBytes` pieces and compare with its CID. A match is
   * remembered, with each piece's CRC-32, if the file did not change while it was hashed; a
   * mismatch moves the file aside and throws BlobCorruptError. Runs to the end once started (at
   * most blobBytesMax bytes), so requests waiting on it are not left holding a half-done hash.
   */
  private async verify (cid: CID, key: string, path: string, file: FileHandle, size: number, signature: string): Promise<Verified> {
    const hash = createHash('sha256')
    const buffer = Buffer.allocUnsafe(Math.max(1, Math.min(size, blobVerifyChunkBytes)))
    const crcs = new Uint32Array(Math.ceil(size / blobVerifyChunkBytes))
    for (let piece = 0; piece < crcs.length; piece++) {
      const position = piece * blobVerifyChunkBytes
      const bytes = await this.readFully(file, buffer, Math.min(blobVerifyChunkBytes, size - position), position)
      hash.update(bytes)
      this.counters.bytesHashed += bytes.byteLength
      crcs[piece] = crc32(bytes)
      if (bytes.byteLength < Math.min(blobVerifyChunkBytes, size - position)) break // cut short: the digest will not match
    }
    if (!equals(hash.digest(), cid.multihash.digest)) {
      await this.quarantine(key, path)
      throw new BlobCorruptError(cid.toString())
    }
    const result = { signature, crcs }
    if ((await this.statOpen(file, key)).signature === signature) this.verified.set(key, result)
    return result
  }

  private async verifyOnce (cid: CID, key: string, path: string, file: FileHandle, size: number, signature: string): Promise<Verified> {
    const known = this.verified.get(key)
    if (known?.signature === signature) return known
    const flight = `${key}|${signature}`
    let running = this.verifying.get(flight)
    if (running === undefined) {
      running = this.verify(cid, key, path, file, size, signature).finally(() => this.verifying.delete(flight))
      this.verifying.set(flight, running)
    }
    return await running
  }

  /** Read up to `length` bytes at `position` into `buffer`, looping over short reads; fewer only at end of file. */
  private async readFully (file: FileHandle, buffer: Uint8Array, length: number, position: number): Promise<Uint8Array> {
    let filled = 0
    while (filled < length) {
      const { bytesRead } = await file.read(buffer, filled, length - filled, position + filled)
      if (bytesRead === 0) break
      this.counters.bytesRead += bytesRead
      filled += bytesRead
    }
    return buffer.subarray(0, filled)
  }
}

export function createBlobStore (options: BlobStoreOptions): BlobStore {
  return new DiskBlobStore(options)
}

/**
 * A blob file's size, or undefined if there is none. Synchronous on purpose: a stat of a local
 * file is a metadata lookup the kernel answers from its caches, ~2 µs here, where the promise form
 * costs ~20 µs of CPU and ~100 µs of waiting on the thread pool (behind any fsync queued there),
 * and a missing file — the usual case for a new blob — also builds an ENOENT error with its stack.
 * Every task result asks it once or twice.
 */
async function statFile (path: string): Promise<BlobStat | undefined> {
  const stats = statSync(path, { throwIfNoEntry: false })
  return stats?.isFile() === true ? { bytes: stats.size } : undefined
}

/** Walk the shard directories until `limit` CIDs are found. Skips tmp/, corrupt/ and stray files. */
async function listFiles (dir: string, limit: number): Promise<CID[]> {
  const cids: CID[] = []
  if (limit === 0) return cids
  for await (const shard of await opendir(dir)) {
    if (!shard.isDirectory() || shard.name.length !== shardDirChars) continue
    for await (const entry of await opendir(join(dir, shard.name))) {
      if (!entry.isFile() || !entry.name.endsWith(shard.name)) continue
      let cid: CID
      try {
        cid = CID.parse(entry.name)
      } catch {
        continue
      }
      cids.push(cid)
      // Returning from inside for-await closes both directory handles.
      if (cids.length >= limit) return cids
    }
  }
  return cids
}

/**
 * Errors from opening or fsyncing a directory that mean "this platform does not do that", not "the
 * disk failed": Windows will not open a directory as a file (EISDIR, EPERM), and some filesystems
 * refuse fsync on a directory (EINVAL, ENOTSUP). There a rename cannot be made durable this way,
 * and the put goes on as before; anything else (EIO, ENOSPC) fails the put.
 */
const dirSyncUnsupported = new Set(['EISDIR', 'EPERM', 'EINVAL', 'ENOTSUP', 'EOPNOTSUPP'])

/** The part of `fs/promises.open` that `syncDir` uses; a parameter so a test can give a directory that refuses. */
export type OpenDir = (path: string, flags: 'r') => Promise<Pick<FileHandle, 'sync' | 'close'>>

/**
 * Fsync a directory, so the renames and new entries in it survive a power cut: open it read-only,
 * sync, close. Returns false, having synced nothing, where the platform does not support it.
 */
export async function syncDir (path: string, openDir: OpenDir = open): Promise<boolean> {
  let dir: Pick<FileHandle, 'sync' | 'close'>
  try {
    dir = await openDir(path, 'r')
  } catch (err) {
    if (dirSyncUnsupported.has((err as NodeJS.ErrnoException).code ?? '')) return false
    throw err
  }
  try {
    await dir.sync()
    return true
  } catch (err) {
    if (dirSyncUnsupported.has((err as NodeJS.ErrnoException).code ?? '')) return false
    throw err
  } finally {
    await dir.close()
  }
}

function throwIfAborted (signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new AbortedError(undefined, { cause: signal.reason })
}
