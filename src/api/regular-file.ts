/**
 * Reading a file a user named (a config file, a blob to put, a module to deploy) without trusting
 * what it is. A path may name a FIFO (open() would block until a writer comes, ignoring signals),
 * a device such as /dev/zero (endless), or a directory. So the file is opened with O_NONBLOCK (a
 * FIFO open returns at once), its type is checked with fstat on that same handle (no race with a
 * rename between a stat and the open), and at most `bytesMax + 1` bytes are read: a file that
 * grows while it is read is refused past the limit instead of filling memory.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { RhizomeError, TooLargeError } from '../model/errors.ts'
import type { Stats } from 'node:fs'

/** Read in pieces of this size: large enough to be few reads, small enough not to over-allocate. */
const READ_CHUNK_BYTES = 64 * 1024

/** A path that cannot be read as a regular file: missing, a directory, a FIFO, a device, unreadable. */
export class FileNotReadableError extends RhizomeError {
  readonly path: string
  readonly reason: string
  constructor (path: string, reason: string, options: { hint?: string, cause?: unknown } = {}) {
    super('ERR_FILE', `cannot read ${path}: ${reason}`, { hint: options.hint ?? 'pass the path of a regular file', cause: options.cause })
    this.name = 'FileNotReadableError'
    this.path = path
    this.reason = reason
  }
}

const FLAGS = constants.O_RDONLY | constants.O_NONBLOCK

/** What a stat says a path is, in words, for "is X, not a regular file". */
export function describeFileType (stats: Stats): string {
  if (stats.isDirectory()) return 'a directory'
  if (stats.isFIFO()) return 'a named pipe (FIFO)'
  if (stats.isCharacterDevice()) return 'a character device'
  if (stats.isBlockDevice()) return 'a block device'
  if (stats.isSocket()) return 'a socket'
  return 'not a regular file'
}

function openError (path: string, err: unknown): FileNotReadableError {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return new FileNotReadableError(path, 'no such file', { cause: err, hint: 'check the path' })
  if (code === 'EACCES' || code === 'EPERM') return new FileNotReadableError(path, 'permission denied', { cause: err, hint: 'check the file\'s permissions' })
  if (code === 'EISDIR') return new FileNotReadableError(path, 'it is a directory', { cause: err })
  return new FileNotReadableError(path, code ?? (err as Error).message, { cause: err })
}

function checkStats (path: string, stats: Stats, bytesMax: number, what: string): void {
  if (!stats.isFile()) throw new FileNotReadableError(path, `it is ${describeFileType(stats)}, not a regular file`)
  if (stats.size > bytesMax) throw new TooLargeError(`${what} ${path}`, stats.size, bytesMax, { hint: `a ${what} holds at most ${bytesMax} bytes (docs/LIMITS.md)` })
}

function tooLarge (path: string, bytesMax: number, what: string): TooLargeError {
  return new TooLargeError(`${what} ${path}`, bytesMax + 1, bytesMax, { hint: `a ${what} holds at most ${bytesMax} bytes (docs/LIMITS.md); the file grew while it was read, or is larger than it says` })
}

/**
 * The bytes of the regular file at `path`, at most `bytesMax`. Throws FileNotReadableError (missing,
 * not a regular file) or TooLargeError naming the limit. `what` names the file in messages.
 */
export async function readRegularFile (path: string, bytesMax: number, what: string): Promise<Uint8Array> {
  let handle
  try {
    handle = await open(path, FLAGS)
  } catch (err) {
    throw openError(path, err)
  }
  try {
    checkStats(path, await handle.stat(), bytesMax, what)
    const chunks: Uint8Array[] = []
    let total = 0
    for (;;) {
      const chunk = new Uint8Array(Math.min(READ_CHUNK_BYTES, bytesMax + 1 - total))
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null)
      if (bytesRead === 0) break
      chunks.push(chunk.subarray(0, bytesRead))
      total += bytesRead
      if (total > bytesMax) throw tooLarge(path, bytesMax, what)
    }
    return concat(chunks, total)
  } finally {
    await handle.close()
  }
}

/** Synchronous readRegularFile, for configuration read before anything else starts. */
export function readRegularFileSync (path: string, bytesMax: number, what: string): Uint8Array {
  let fd: number
  try {
    fd = openSync(path, FLAGS)
  } catch (err) {
    throw openError(path, err)
  }
  try {
    checkStats(path, fstatSync(fd), bytesMax, what)
    const chunks: Uint8Array[] = []
    let total = 0
    for (;;) {
      const chunk = new Uint8Array(Math.min(READ_CHUNK_BYTES, bytesMax + 1 - total))
      const bytesRead = readSync(fd, chunk, 0, chunk.length, null)
      if (bytesRead === 0) break
      chunks.push(chunk.subarray(0, bytesRead))
      total += bytesRead
      if (total > bytesMax) throw tooLarge(path, bytesMax, what)
    }
    return concat(chunks, total)
  } finally {
    closeSync(fd)
  }
}

function concat (chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]
  const out = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) { out.set(chunk, offset); offset += chunk.length }
  return out
}
