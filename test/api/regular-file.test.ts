import { afterEach, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readRegularFile, readRegularFileSync } from '../../src/api/regular-file.ts'
import { prepareDataDir } from '../../src/node/lock.ts'

describe('readRegularFile', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'rhizome-regular-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  for (const [label, read] of [['async', readRegularFile], ['sync', async (p: string, max: number, what: string) => readRegularFileSync(p, max, what)]] as const) {
    test(`${label}: a file of exactly bytesMax is read; one byte more is refused with TooLargeError naming the limit`, async () => {
      await writeFile(join(dir, 'at'), new Uint8Array(100_000).fill(7))
      await writeFile(join(dir, 'over'), new Uint8Array(100_001).fill(7))
      const bytes = await read(join(dir, 'at'), 100_000, 'thing')
      assert.equal(bytes.length, 100_000)
      assert.ok(bytes.every(b => b === 7))
      await assert.rejects(read(join(dir, 'over'), 100_000, 'thing'), { name: 'TooLargeError', message: /more than the limit of 100000 bytes/ })
    })

    test(`${label}: a FIFO, a device and a directory are refused at once, by type; a missing file is named`, async () => {
      execFileSync('mkfifo', [join(dir, 'pipe')])
      await mkdir(join(dir, 'folder'))
      // No writer ever opens the FIFO: a blocking open would hang this test until its timeout.
      await assert.rejects(read(join(dir, 'pipe'), 1000, 'thing'), { name: 'FileNotReadableError', message: /named pipe \(FIFO\), not a regular file/ })
      await assert.rejects(read('/dev/zero', 1000, 'thing'), { name: 'FileNotReadableError', message: /\/dev\/zero: it is a character device/ })
      await assert.rejects(read(join(dir, 'folder'), 1000, 'thing'), { name: 'FileNotReadableError', message: /it is a directory/ })
      await assert.rejects(read(join(dir, 'missing'), 1000, 'thing'), { name: 'FileNotReadableError', message: /missing: no such file/ })
    })
  }
})

describe('prepareDataDir', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'rhizome-datadir-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  test('creates a missing data dir; accepts one with the right kinds of entries', async () => {
    await prepareDataDir(join(dir, 'new', 'peer'))
    await mkdir(join(dir, 'ok', 'blobs'), { recursive: true })
    await writeFile(join(dir, 'ok', 'identity.key'), 'k')
    await writeFile(join(dir, 'ok', 'rhizome.db'), '')
    await prepareDataDir(join(dir, 'ok'))
  })

  test('each entry of the wrong kind is a DataDirError naming its path, with a hint', async () => {
    await writeFile(join(dir, 'file'), 'x')
    await assert.rejects(prepareDataDir(join(dir, 'file')), (err: Error & { hint?: string }) => err.name === 'DataDirError' && err.message.includes(join(dir, 'file')) && err.hint !== undefined)
    for (const [name, make] of [['identity.key', 'dir'], ['rhizome.db', 'dir'], ['blobs', 'file'], ['peer.lock', 'fifo']] as const) {
      const dataDir = join(dir, `bad-${name}`)
      await mkdir(dataDir)
      const path = join(dataDir, name)
      if (make === 'dir') await mkdir(path)
      else if (make === 'file') await writeFile(path, 'x')
      else execFileSync('mkfifo', [path])
      await assert.rejects(prepareDataDir(dataDir), (err: Error & { hint?: string }) => err.name === 'DataDirError' && err.message.startsWith(path) && err.hint !== undefined, name)
    }
  })
})
