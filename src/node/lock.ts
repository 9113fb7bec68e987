/**
 * One peer per data dir. Two processes writing one SQLite file and one identity would look like
 * one peer to the network while disagreeing with each other, so the second one refuses to start.
 */
import { lstat, mkdir, open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { RhizomeError } from '../model/errors.ts'
import { describeFileType } from '../api/regular-file.ts'
import { DataDirError } from './start-errors.ts'

export class DataDirLockedError extends RhizomeError {
  constructor (dataDir: string, pid: number) {
    super('ERR_DATA_DIR_LOCKED', `another Rhizome peer (pid ${pid}) is running from ${dataDir}`, {
      hint: 'stop that peer first, or give this one its own --data-dir'
    })
    this.name = 'DataDirLockedError'
  }
}

export async function lockDataDir (dataDir: string): Promise<() => Promise<void>> {
  const path = join(dataDir, 'peer.lock')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600)
      await handle.writeFile(String(process.pid))
      await handle.close()
      return async () => { await rm(path, { force: true }) }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim())
      if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) throw new DataDirLockedError(dataDir, pid)
      await rm(path, { force: true }) // left behind by a peer that died; take it over
    }
  }
  throw new Error(`assertion failed: could not take ${path}`)
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** What the peer keeps in its data dir, and the kind of file each must be when it exists. */
const DATA_DIR_ENTRIES: Array<{ name: string, kind: 'file' | 'dir', what: string, hint: string }> = [
  { name: 'identity.key', kind: 'file', what: 'the peer\'s private key', hint: 'restore the right identity.key file, or move this aside to start as a new peer (with a new peer id)' },
  { name: 'rhizome.db', kind: 'file', what: 'the peer\'s SQLite database', hint: 'move it aside; the peer then starts with an empty database' },
  { name: 'blobs', kind: 'dir', what: 'the blob store directory', hint: 'move it aside; the peer then creates an empty blob store' },
  { name: 'peer.lock', kind: 'file', what: 'the lock file', hint: 'move it aside' }
]

/**
 * Create the data dir if missing, and check that it and what the peer keeps in it are the kind of
 * file they must be, so a mistake fails with its path named (DataDirError) rather than with
 * EISDIR or ENOTDIR from deep inside the start.
 */
export async function prepareDataDir (dataDir: string): Promise<void> {
  try {
    await mkdir(dataDir, { recursive: true, mode: 0o700 })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST' || code === 'ENOTDIR') {
      throw new DataDirError(dataDir, 'is not a directory (a file is in the way)', { hint: 'pass a directory as --data-dir (it is created if missing)', cause: err })
    }
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      throw new DataDirError(dataDir, `cannot be created (${code})`, { hint: 'pass a --data-dir this user can write to', cause: err })
    }
    throw err
  }
  for (const entry of DATA_DIR_ENTRIES) {
    const path = join(dataDir, entry.name)
    let stats
    try {
      stats = await lstat(path)
    } catch {
      continue // created on start
    }
    const ok = entry.kind === 'dir' ? stats.isDirectory() : stats.isFile()
    if (!ok) throw new DataDirError(path, `is ${stats.isFile() ? 'a regular file' : describeFileType(stats)}; it should be ${entry.what} (${entry.kind === 'dir' ? 'a directory' : 'a regular file'})`, { hint: entry.hint })
  }
}
