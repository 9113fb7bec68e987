/**
 * One peer per data dir. Two processes writing one SQLite file and one identity would look like
 * one peer to the network while disagreeing with each other, so the second one refuses to start.
 */
import { open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { RhizomeError } from '../model/errors.ts'

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
