/**
 * A peer's identity: an Ed25519 key made on first start and kept in `DIR/identity.key`
 * (libp2p's protobuf encoding, file mode 0600), so the peer id survives restarts.
 *
 * The key is written as blobs are: to a temp file in the data dir, fsynced, then linked into place
 * and the directory fsynced. A start killed at any moment leaves either no identity.key (the next
 * start makes one) or a complete one — never a 0-byte or partial file that stops every later
 * start. Linking, unlike renaming, fails if identity.key exists, so an identity is never replaced.
 *
 * A key is checked when loaded: it must decode, be Ed25519, and its public half must be the one
 * its private half derives. A mismatched pair would start a peer that signs with one key while
 * announcing the other, so no peer could ever complete a handshake with it (a silent partition);
 * refusing to start says what is wrong instead.
 */
import { chmod, link, open, readFile, rename, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { equals } from 'multiformats/bytes'
import { generateKeyPair, generateKeyPairFromSeed, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { RhizomeError } from '../model/errors.ts'
import type { PrivateKey } from '@libp2p/interface'

/** An Ed25519 key in protobuf is 68 bytes; anything past 4 KiB is not a key file. */
const IDENTITY_FILE_BYTES_MAX = 4096
const IDENTITY_FILE = 'identity.key'
/** Where a new key is written before it is linked into place; one left by a crash is overwritten. */
const IDENTITY_TMP_FILE = 'identity.key.tmp'
/** An Ed25519 private key's raw form is its 32-byte seed followed by its 32-byte public key. */
const ED25519_SEED_BYTES = 32

const RECOVER_HINT = 'restore identity.key from a backup to keep this peer id, or remove it to start as a new peer (with a new peer id)'

export class IdentityError extends RhizomeError {
  constructor (message: string, hint: string, cause?: unknown) {
    super('ERR_IDENTITY', message, { hint, cause })
    this.name = 'IdentityError'
  }
}

export async function loadOrCreateIdentity (dataDir: string): Promise<{ privateKey: PrivateKey, created: boolean }> {
  const path = join(dataDir, IDENTITY_FILE)
  const bytes = await readIdentityFile(path)
  if (bytes !== undefined) return { privateKey: await decodeIdentity(path, bytes), created: false }

  const privateKey = await generateKeyPair('Ed25519')
  const tmpPath = join(dataDir, IDENTITY_TMP_FILE)
  const handle = await open(tmpPath, 'w', 0o600)
  try {
    await handle.writeFile(privateKeyToProtobuf(privateKey))
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    await link(tmpPath, path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') {
      // Another process made one meanwhile: never overwrite an identity; use the one on disk.
      await unlink(tmpPath).catch(() => {})
      const existing = await readIdentityFile(path)
      if (existing === undefined) throw err
      return { privateKey: await decodeIdentity(path, existing), created: false }
    }
    // A filesystem without hard links: rename instead. identity.key was absent a moment ago and
    // the data dir lock keeps other Rhizome peers out, so this replaces nothing.
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err
    await rename(tmpPath, path)
  }
  await unlink(tmpPath).catch(() => {})
  await syncDir(dataDir)
  return { privateKey, created: true }
}

/** The key file's bytes, or undefined if there is none. */
async function readIdentityFile (path: string): Promise<Buffer | undefined> {
  try {
    const info = await stat(path)
    if (info.size > IDENTITY_FILE_BYTES_MAX) throw new IdentityError(`${path} is ${info.size} bytes, too large to be a key`, RECOVER_HINT)
    if ((info.mode & 0o077) !== 0) await chmod(path, 0o600)
    return await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

async function decodeIdentity (path: string, bytes: Uint8Array): Promise<PrivateKey> {
  if (bytes.byteLength === 0) {
    throw new IdentityError(`${path} is empty (0 bytes): it was cut off while it was being written`, RECOVER_HINT)
  }
  let privateKey: PrivateKey
  try {
    privateKey = privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new IdentityError(`${path} does not hold a valid private key (${bytes.byteLength} bytes; damaged or truncated)`, RECOVER_HINT, err)
  }
  if (privateKey.type !== 'Ed25519') throw new IdentityError(`${path} holds a ${privateKey.type} key; Rhizome peers use Ed25519`, RECOVER_HINT)
  const derived = await generateKeyPairFromSeed('Ed25519', privateKey.raw.subarray(0, ED25519_SEED_BYTES))
  if (!equals(derived.publicKey.raw, privateKey.publicKey.raw)) {
    throw new IdentityError(`${path} is damaged: its public key does not belong to its private key, so no peer could connect to this one`, RECOVER_HINT)
  }
  return privateKey
}

/** fsync a directory, so a file just linked or renamed into it survives a power cut. */
async function syncDir (dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
