import { readFile, stat, writeFile } from 'node:fs/promises'
import { connectApi } from '../api-client.ts'
import { CliError, EXIT_OK, EXIT_USAGE, dataDirOption, jsonOption } from '../command.ts'
import type { Command } from '../command.ts'

/** Same as the peer's blob limit (docs/LIMITS.md); checked here to fail before reading the file. */
const BLOB_FILE_BYTES_MAX = 64 * 1024 * 1024

export const blobPut: Command = {
  name: 'blob put',
  summary: 'store a file as a content-addressed blob on the local peer; prints its CID',
  usage: 'rhizome blob put FILE [--data-dir DIR | --api URL] [--json]',
  options: { ...dataDirOption, ...jsonOption },
  positionals: [1, 1],
  async run (context) {
    const file = context.positionals[0]
    let size: number
    try {
      size = (await stat(file)).size
    } catch (err) {
      throw new CliError('ERR_FILE', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { exitCode: EXIT_USAGE })
    }
    if (size > BLOB_FILE_BYTES_MAX) throw new CliError('ERR_TOO_LARGE', `${file} is ${size} bytes; a blob holds at most ${BLOB_FILE_BYTES_MAX}`, { exitCode: EXIT_USAGE })
    const api = await connectApi(context)
    const result = await api.json<{ cid: string, bytes: number }>('POST', '/v1/blobs', new Uint8Array(await readFile(file)))
    if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify(result) + '\n' }
    return { exitCode: EXIT_OK, stdout: `${result.cid}\n` }
  }
}

export const blobGet: Command = {
  name: 'blob get',
  summary: 'read a blob by CID from the local peer (to stdout, or --out FILE)',
  usage: 'rhizome blob get CID [--out FILE] [--from PEER] [--data-dir DIR | --api URL]\n\n  --from PEER   fetch it from that peer first (verified against the CID), then read it',
  options: { ...dataDirOption, out: { type: 'string' }, from: { type: 'string' } },
  positionals: [1, 1],
  async run (context) {
    const cid = context.positionals[0]
    if (!/^[a-zA-Z0-9]{1,100}$/.test(cid)) throw new CliError('ERR_USAGE', `${JSON.stringify(cid)} is not a CID`, { exitCode: EXIT_USAGE, hint: 'a CID looks like bafkrei…' })
    const api = await connectApi(context)
    const from = context.values.from as string | undefined
    if (from !== undefined) await api.json('POST', `/v1/blobs/${cid}/fetch?from=${encodeURIComponent(from)}`)
    const bytes = await api.bytes(`/v1/blobs/${cid}`)
    const out = context.values.out as string | undefined
    if (out !== undefined) {
      await writeFile(out, bytes)
      return { exitCode: EXIT_OK }
    }
    return { exitCode: EXIT_OK, stdout: bytes }
  }
}
