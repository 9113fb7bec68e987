import { stat, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { BLOB_BYTES_MAX } from '../../api/limits.ts'
import { RhizomeError } from '../../model/errors.ts'
import { describeFileType, readRegularFile } from '../../api/regular-file.ts'
import { CliError, EXIT_OK, EXIT_USAGE, checkPeerIdFlag, dataDirOption, jsonOption } from '../command.ts'
import { connectPeer } from '../connect.ts'
import type { Command } from '../command.ts'

export const blobPut: Command = {
  usage: `rhizome blob put FILE [--data-dir DIR | --api URL] [--json]\n\n  FILE   a regular file of at most ${BLOB_BYTES_MAX / 1024 / 1024} MiB (the peer's blob limit)`,
  options: { ...dataDirOption, ...jsonOption },
  positionals: [1, 1],
  async run (context) {
    const file = context.positionals[0]
    let bytes: Uint8Array
    try {
      // A FIFO, a device such as /dev/zero or a directory is refused, and at most the limit is read.
      bytes = await readRegularFile(file, BLOB_BYTES_MAX, 'blob')
    } catch (err) {
      if (err instanceof RhizomeError) throw new CliError(err.code, err.message, { exitCode: EXIT_USAGE, hint: err.hint, cause: err })
      throw err
    }
    const result = await (await connectPeer(context)).putBlob(bytes)
    if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify(result) + '\n' }
    return { exitCode: EXIT_OK, stdout: `${result.cid}\n` }
  }
}

export const blobGet: Command = {
  usage: 'rhizome blob get CID [--out FILE] [--from PEER] [--data-dir DIR | --api URL]\n\n  --out FILE    write it to FILE (its directory must exist) instead of stdout\n  --from PEER   fetch it from that peer first (verified against the CID), then read it',
  options: { ...dataDirOption, out: { type: 'string' }, from: { type: 'string' } },
  positionals: [1, 1],
  async run (context) {
    const cid = context.positionals[0]
    if (!/^[a-zA-Z0-9]{1,100}$/.test(cid)) throw new CliError('ERR_USAGE', `${JSON.stringify(cid)} is not a CID`, { exitCode: EXIT_USAGE, hint: 'a CID looks like bafkrei…' })
    const from = context.values.from as string | undefined
    if (from !== undefined) await checkPeerIdFlag('--from', from)
    const out = context.values.out as string | undefined
    // Checked before asking the peer, so a typo in --out does not cost a fetch from another peer.
    if (out !== undefined) await checkOutPath(out)
    const api = await connectPeer(context)
    if (from !== undefined) await api.fetchBlob(cid, from)
    const bytes = await api.getBlob(cid)
    if (out !== undefined) {
      try {
        await writeFile(out, bytes)
      } catch (err) {
        throw new CliError('ERR_FILE', `cannot write ${out}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { hint: 'check that the directory exists and that you may write to it', cause: err })
      }
      return { exitCode: EXIT_OK }
    }
    return { exitCode: EXIT_OK, stdout: bytes }
  }
}

/** `--out` must name a file to write: not a directory, and in a directory that exists. */
async function checkOutPath (out: string): Promise<void> {
  const existing = await stat(out).catch(() => undefined)
  if (existing?.isDirectory() === true) {
    throw new CliError('ERR_USAGE', `--out ${out} is a directory`, { exitCode: EXIT_USAGE, hint: `name a file to write, e.g. --out ${resolve(out, 'blob.bin')}` })
  }
  const parent = dirname(resolve(out))
  const dir = await stat(parent).catch(() => undefined)
  if (dir === undefined) throw new CliError('ERR_USAGE', `--out ${out}: the directory ${parent} does not exist`, { exitCode: EXIT_USAGE, hint: `create it first (mkdir -p ${parent}) or write elsewhere` })
  if (!dir.isDirectory()) throw new CliError('ERR_USAGE', `--out ${out}: ${parent} is ${dir.isFile() ? 'a regular file' : describeFileType(dir)}, not a directory`, { exitCode: EXIT_USAGE, hint: 'name a file in a directory that exists' })
}
