/**
 * A peer's identity: an Ed25519 key made on first start and kept in `DIR/identity.key`
 * (libp2p's protobuf encoding, file mode 0600), so the peer id survives restarts.
 */
import { chmod, open, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { RhizomeError } from '../model/errors.ts'
import type { PrivateKey } from '@libp2p/interface'

/** An Ed25519 key in protobuf is 68 bytes; anything past 4 KiB is not a key file. */
const IDENTITY_FILE_BYTES_MAX = 4096

export class IdentityError extends RhizomeError {
  constructor (message: string, hint: string, cause?: unknown) {
    super('ERR_IDENTITY', message, { hint, cause })
    this.name = 'IdentityError'
  }
}

export async function loadOrCreateIdentity (dataDir: string): Promise<{ privateKey: PrivateKey, created: boolean }> {
  const path = join(dataDir, 'identity.key')
  let bytes: Buffer | undefined
  try {
    const info = await stat(path)
    if (info.size > IDENTITY_FILE_BYTES_MAX) throw new IdentityError(`${path} is ${info.size} bytes, too large to be a key`, 'restore the right identity.key, or remove it to start as a new peer')
    if ((info.mode & 0o077) !== 0) await chmod(path, 0o600)
    bytes = await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (bytes !== undefined) {
    let privateKey: PrivateKey
    try {
      privateKey = privateKeyFromProtobuf(bytes)
    } catch (err) {
      throw new IdentityError(`${path} does not hold a valid private key`, 'restore the right identity.key, or remove it to start as a new peer (with a new peer id)', err)
    }
    if (privateKey.type !== 'Ed25519') throw new IdentityError(`${path} holds a ${privateKey.type} key; Rhizome peers use Ed25519`, 'remove it to start as a new peer')
    return { privateKey, created: false }
  }
  const privateKey = await generateKeyPair('Ed25519')
  // 'wx' fails if another process created the file meanwhile: never overwrite an identity.
  const handle = await open(path, 'wx', 0o600)
  try {
    await handle.writeFile(privateKeyToProtobuf(privateKey))
    await handle.sync()
  } finally {
    await handle.close()
  }
  return { privateKey, created: true }
}
