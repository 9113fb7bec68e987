/**
 * Node's compile cache for the CLI: Node keeps the compiled code of every module it loads (after
 * type stripping) on disk, so the next run skips parsing them. A CLI command is short and loads
 * the same modules each time, so this is most of its start-up: measured (docs/PERFORMANCE.md)
 * it takes `rhizome status` from about 135 ms to about 40 ms, and a peer's start loads libp2p
 * from the cache too.
 *
 * The cache sits in the temp dir, which other users share: a cache they could write to would
 * let them plant compiled code that this user then runs. So the dir is made 0700 and used only
 * if it is a directory owned by this user and closed to others; else there is no cache (a
 * slower start, the same behaviour). NODE_COMPILE_CACHE (a dir of your choice) and
 * NODE_DISABLE_COMPILE_CACHE=1 are Node's own switches and win.
 */
import { lstatSync, mkdirSync } from 'node:fs'
import { enableCompileCache } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export function compileCacheDir (): string {
  return join(tmpdir(), `rhizome-compile-cache-${process.getuid?.() ?? 'user'}`)
}

/** Why `dir` may not hold the cache, or undefined if it may. */
export function compileCacheDirProblem (dir: string): string | undefined {
  const info = lstatSync(dir)
  if (!info.isDirectory()) return `${dir} is not a directory`
  const uid = process.getuid?.()
  if (uid !== undefined && info.uid !== uid) return `${dir} belongs to another user`
  if (uid !== undefined && (info.mode & 0o077) !== 0) return `${dir} is open to other users`
  return undefined
}

/** Turn the cache on for every module loaded from now on; false if it stays off. */
export function enableCliCompileCache (dir = compileCacheDir()): boolean {
  if (process.env.NODE_COMPILE_CACHE !== undefined || process.env.NODE_DISABLE_COMPILE_CACHE !== undefined) return false
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    if (compileCacheDirProblem(dir) !== undefined) return false
    enableCompileCache(dir)
    return true
  } catch {
    return false
  }
}
