/**
 * A permissioned network's admin directory, as `rhizome network` keeps it on the admin's machine:
 *
 *   DIR/admin.key          the admin's Ed25519 private key (libp2p protobuf), mode 0600
 *   DIR/network.json       { name, networkId, admin, createdAt }
 *   DIR/issued/S.cert      a copy of every certificate issued, by serial S
 *   DIR/revocations/*.rev  every revocation signed, kept so it can be submitted again
 *
 * The key never leaves this directory: certificates and revocations are signed here and only
 * their bytes travel. The key file is created with mode 0600 in the same call that creates it
 * (O_EXCL, so an existing network is never overwritten and there is no moment it is readable by
 * others), and a key file that others may read is refused, as ssh refuses such a private key.
 * Everything written is in the one wire format of src/wire/certificate-codec.ts.
 *
 * A delegated admin (a member whose founder-signed certificate has role `admin`) signs with its
 * peer key instead (`--as DATA_DIR`: DATA_DIR/identity.key, never copied) and keeps its copies in
 * DATA_DIR/issued/ and DATA_DIR/revocations/ the same way; see loadDelegatedAdmin.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, open, readdir, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf, publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { readRegularFile } from '../api/regular-file.ts'
import { RhizomeError } from '../model/errors.ts'
import { CERTIFICATES_MAX, CERTIFICATE_VALIDITY_MS_MAX, CLOCK_SKEW_MS } from '../protocol/permission/constants.ts'
import {
  CERTIFICATE_BYTES_MAX, CERTIFICATE_FILE_BYTES_MAX, decodeCertificateFile, issuerKey, REVOCATION_BYTES_MAX, canonicalRoles, certificateSigningBytes, decodeCertificate, decodeRevocation, encodeCertificate, encodeRevocation,
  issuerOf, networkIdOf, revocationSigningBytes
} from '../wire/certificate-codec.ts'
import type { Certificate, Revocation, Role } from '../wire/certificate-codec.ts'
import { CliError, EXIT_USAGE } from './command.ts'

/** A network's name is a directory name under the networks dir: letters, digits, '.', '_', '-',
 *  not starting with '.' (no hidden directories, no '..'). 64 characters name anything; more is a
 *  mistake, and keeps paths far from PATH_MAX. */
export const NETWORK_NAME_CHARS_MAX = 64
const NETWORK_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/
/** admin.key is ~68 bytes (an Ed25519 key in protobuf) and network.json ~200: 4 KiB is anything
 *  this tool wrote, and a file larger than that is not ours (it is refused before it is parsed). */
export const ADMIN_FILE_BYTES_MAX = 4096
/** `network status` without a peer lists at most this many issued certificates and revocations
 *  each: as many as a network may have members; beyond, it counts the rest. */
export const ADMIN_FILES_LISTED_MAX = CERTIFICATES_MAX
/** Serials are 128 random bits: a clash between two certificates of one network is out of reach. */
const SERIAL_BYTES = 16

export const ADMIN_KEY_FILE = 'admin.key'
export const NETWORK_FILE = 'network.json'
export const DEFAULT_NETWORK_NAME = 'default'

export interface NetworkInfo {
  name: string
  networkId: string
  /** The admin's raw Ed25519 public key, base64url (the certificates' `issuer`). */
  admin: string
  /** ISO 8601. */
  createdAt: string
}

export interface Admin {
  dir: string
  info: NetworkInfo
  key: PrivateKey
}

const usage = (message: string, hint: string): CliError => new CliError('ERR_USAGE', message, { exitCode: EXIT_USAGE, hint })

export function checkNetworkName (name: string, flag = '--name'): string {
  if (name.length === 0 || name.length > NETWORK_NAME_CHARS_MAX || !NETWORK_NAME.test(name)) {
    throw usage(`${flag} ${JSON.stringify(name)} is not a network name`, `use 1..${NETWORK_NAME_CHARS_MAX} letters, digits, '.', '_' or '-', not starting with '.'`)
  }
  return name
}

/** The admin directory: `--dir`, else RHIZOME_NETWORKS_DIR/NAME, else ~/.rhizome/networks/NAME. */
export function networkDir (options: { dir?: string, name?: string }, env: NodeJS.ProcessEnv): string {
  if (options.dir !== undefined && options.name !== undefined) throw usage('--dir and --network/--name name the network twice', 'pass one of them')
  if (options.dir !== undefined) {
    if (options.dir.length === 0) throw usage('--dir is empty', 'name the network\'s admin directory')
    return resolve(options.dir)
  }
  const name = checkNetworkName(options.name ?? DEFAULT_NETWORK_NAME, '--network')
  const root = env.RHIZOME_NETWORKS_DIR !== undefined && env.RHIZOME_NETWORKS_DIR !== '' ? env.RHIZOME_NETWORKS_DIR : join(homedir(), '.rhizome', 'networks')
  return resolve(root, name)
}

/** `90m`, `12h`, `30d` → ms; at most CERTIFICATE_VALIDITY_MS_MAX. */
export function parseDuration (text: string): number {
  const match = /^([1-9][0-9]{0,5})(m|h|d)$/.exec(text)
  const maxDays = CERTIFICATE_VALIDITY_MS_MAX / 86_400_000
  if (match === null) throw usage(`--expires ${JSON.stringify(text)} is not a duration`, 'write minutes, hours or days: 90m, 12h, 30d')
  const ms = Number(match[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'm' | 'h' | 'd']
  if (ms > CERTIFICATE_VALIDITY_MS_MAX) throw usage(`--expires ${text} is longer than a certificate may live (${maxDays} days)`, `pass at most ${maxDays}d, and admit the peer again before it expires`)
  return ms
}

/** Creates the file with `mode` from the first moment; refuses one that exists. */
async function writeNew (path: string, bytes: Uint8Array | string, mode: number): Promise<void> {
  const handle = await open(path, 'wx', mode)
  try {
    await handle.writeFile(bytes)
  } finally {
    await handle.close()
  }
}

function fileError (path: string, err: unknown): CliError {
  const code = (err as NodeJS.ErrnoException).code
  return new CliError('ERR_FILE', `cannot write ${path}: ${code ?? (err as Error).message}`, { hint: 'check that you may write to that directory', cause: err })
}

/** A new network: an admin key and network.json in `dir`. Refuses a directory that holds either. */
export async function createNetwork (dir: string, name: string, nowMs: number): Promise<NetworkInfo> {
  for (const file of [ADMIN_KEY_FILE, NETWORK_FILE]) {
    if (await stat(join(dir, file)).catch(() => undefined) !== undefined) {
      throw new CliError('ERR_NETWORK_EXISTS', `${dir} already holds a network (${file})`, { hint: 'pick another --name or --dir; an admin key is never overwritten (delete the directory yourself to start over)' })
    }
  }
  const key = await generateKeyPair('Ed25519')
  const info: NetworkInfo = { name, networkId: await networkIdOf(key.publicKey.raw), admin: issuerOf(key.publicKey.raw), createdAt: new Date(nowMs).toISOString() }
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await writeNew(join(dir, ADMIN_KEY_FILE), privateKeyToProtobuf(key), 0o600)
    await writeNew(join(dir, NETWORK_FILE), JSON.stringify(info, null, 2) + '\n', 0o644)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new CliError('ERR_NETWORK_EXISTS', `${dir} already holds a network`, { hint: 'pick another --name or --dir', cause: err })
    throw fileError(dir, err)
  }
  return info
}

function noNetwork (dir: string, cause?: unknown): CliError {
  return new CliError('ERR_NO_NETWORK', `there is no network in ${dir}`, { hint: 'create one with `rhizome network create --name NAME`, or pass --network NAME / --dir DIR', cause })
}

async function readSmall (path: string): Promise<Uint8Array> {
  return await readRegularFile(path, ADMIN_FILE_BYTES_MAX, path)
}

/** network.json of `dir`, checked field by field. */
export async function loadNetworkInfo (dir: string): Promise<NetworkInfo> {
  const path = join(dir, NETWORK_FILE)
  let bytes: Uint8Array
  try {
    bytes = await readSmall(path)
  } catch (err) {
    if ((err as RhizomeError).code === 'ERR_FILE' && await stat(path).catch(() => undefined) === undefined) throw noNetwork(dir, err)
    throw err
  }
  let info: Partial<NetworkInfo>
  try {
    info = JSON.parse(new TextDecoder().decode(bytes))
  } catch (err) {
    throw new CliError('ERR_ADMIN_FILE', `${path} is not JSON`, { hint: 'restore it from a backup, or create a new network', cause: err })
  }
  const fields = ['name', 'networkId', 'admin', 'createdAt'] as const
  for (const field of fields) {
    if (typeof info?.[field] !== 'string') throw new CliError('ERR_ADMIN_FILE', `${path}: ${field} is missing`, { hint: 'restore it from a backup, or create a new network' })
  }
  return { name: info.name as string, networkId: info.networkId as string, admin: info.admin as string, createdAt: info.createdAt as string }
}

/** A key file that signs for the network: it must exist and be readable by its owner alone (as
 *  ssh refuses a private key others can read: whoever else could read it could sign too). */
async function requirePrivateKeyFile (path: string, missingHint: string): Promise<void> {
  const stats = await stat(path).catch(() => undefined)
  if (stats === undefined) throw new CliError('ERR_ADMIN_KEY', `${path} is missing: this directory cannot sign`, { hint: missingHint })
  if ((stats.mode & 0o077) !== 0) {
    throw new CliError('ERR_ADMIN_KEY', `${path} may be read by others (mode ${(stats.mode & 0o777).toString(8)}): it is not used`, { hint: `make it private: chmod 600 ${path}` })
  }
}

/** The admin key and network of `dir`: refused if others may read the key, or it is not the network's. */
export async function loadAdmin (dir: string): Promise<Admin> {
  const info = await loadNetworkInfo(dir)
  const path = join(dir, ADMIN_KEY_FILE)
  await requirePrivateKeyFile(path, 'run this on the machine that holds the network\'s admin key')
  let key: PrivateKey
  try {
    key = privateKeyFromProtobuf(await readSmall(path))
  } catch (err) {
    if (err instanceof RhizomeError) throw err
    throw new CliError('ERR_ADMIN_KEY', `${path} is not a private key`, { hint: 'restore it from a backup', cause: err })
  }
  if (key.type !== 'Ed25519' || issuerOf(key.publicKey.raw) !== info.admin || await networkIdOf(key.publicKey.raw) !== info.networkId) {
    throw new CliError('ERR_ADMIN_KEY', `${path} is not the admin key of network ${info.networkId}`, { hint: `the key and ${NETWORK_FILE} must come from the same \`rhizome network create\`` })
  }
  return { dir, info, key }
}

/** A delegated admin: a member's peer key, and its own certificate (founder-signed, role admin). */
export interface DelegatedAdmin extends Admin { peerId: string, certificate: Certificate }

const IDENTITY_FILE = 'identity.key'

/**
 * The member whose data dir is `dataDir` as a delegated admin: its peer key (DATA_DIR/identity.key)
 * and its own certificate (`certificatePath`, the file it starts with), which must name that peer,
 * verify, be signed by the key that founded its network, carry role `admin`, and be valid now.
 * Each failure is a CliError saying which, so nothing is signed that the network would refuse.
 */
export async function loadDelegatedAdmin (dataDir: string, certificatePath: string, nowMs: number): Promise<DelegatedAdmin> {
  const keyPath = join(resolve(dataDir), IDENTITY_FILE)
  await requirePrivateKeyFile(keyPath, '--as names the data dir of the admin member (the peer started with its admin certificate)')
  let key: PrivateKey
  try {
    key = privateKeyFromProtobuf(await readSmall(keyPath))
  } catch (err) {
    throw new CliError('ERR_ADMIN_KEY', `${keyPath} is not a peer's key: ${(err as Error).message}`, { hint: '--as names the data dir of the admin member (the peer started with its admin certificate)', cause: err })
  }
  if (key.type !== 'Ed25519') throw new CliError('ERR_ADMIN_KEY', `${keyPath} is not an Ed25519 key`, { hint: 'a peer made by Rhizome has one' })
  const peerId = peerIdFromPrivateKey(key).toString()
  const certificate = await readAdminCertificate(certificatePath)
  const refuse = (problem: string, hint: string): CliError => new CliError('ERR_NOT_AN_ADMIN', `${certificatePath} ${problem}`, { exitCode: EXIT_USAGE, hint })
  const ask = `ask the network's founder for one: \`rhizome network admit ${peerId} --roles admin\``
  if (certificate.peer !== peerId) throw refuse(`is for peer ${certificate.peer}, and ${dataDir} is peer ${peerId}`, 'pass the certificate that member starts with')
  if (!await signatureValid(certificate)) throw refuse('does not verify (altered, or signed by another key)', ask)
  if (await networkIdOf(issuerKey(certificate.issuer)) !== certificate.network) throw refuse('is not signed by the key that founded its network: an admin admitted by a delegated admin cannot sign', ask)
  if (!certificate.roles.includes('admin')) throw refuse(`gives peer ${peerId} the roles ${certificate.roles.join(', ')}, not admin: it may not sign certificates or revocations`, ask)
  if (nowMs >= certificate.notAfter || certificate.notBefore > nowMs + CLOCK_SKEW_MS) throw refuse('is not valid now', ask)
  const info: NetworkInfo = { name: peerId, networkId: certificate.network, admin: issuerOf(key.publicKey.raw), createdAt: new Date(certificate.notBefore).toISOString() }
  return { dir: resolve(dataDir), info, key, peerId, certificate }
}

async function signatureValid (cert: Certificate): Promise<boolean> {
  try {
    return await publicKeyFromRaw(issuerKey(cert.issuer)).verify(certificateSigningBytes(cert), cert.signature)
  } catch {
    return false
  }
}

async function readAdminCertificate (path: string): Promise<Certificate> {
  try {
    const file = decodeCertificateFile(await readRegularFile(path, CERTIFICATE_FILE_BYTES_MAX, 'certificate'))
    if (file.issuerCertificate !== undefined) {
      throw new CliError('ERR_NOT_AN_ADMIN', `${path} was signed by a delegated admin: an admin admitted that way cannot sign (one level of delegation only)`, { exitCode: EXIT_USAGE, hint: 'ask the network\'s founder for an admin certificate' })
    }
    return file.certificate
  } catch (err) {
    if (err instanceof CliError) throw err
    if (err instanceof RhizomeError) throw new CliError(err.code, `${path}: ${err.message}`, { exitCode: EXIT_USAGE, hint: 'pass the admin member\'s own certificate (the --certificate file it starts with)', cause: err })
    throw err
  }
}

/** A fresh certificate signed by the admin; its copy is kept under DIR/issued/. */
export async function issueCertificate (admin: Admin, peer: string, roles: readonly Role[], notBefore: number, validityMs: number): Promise<{ certificate: Certificate, bytes: Uint8Array, copy: string }> {
  const fields = {
    network: admin.info.networkId, peer, roles: canonicalRoles(roles), notBefore, notAfter: notBefore + validityMs,
    serial: randomBytes(SERIAL_BYTES).toString('hex'), issuer: issuerOf(admin.key.publicKey.raw)
  }
  const certificate: Certificate = { ...fields, signature: await admin.key.sign(certificateSigningBytes(fields)) }
  const bytes = encodeCertificate(certificate)
  const copy = join(admin.dir, 'issued', `${certificate.serial}.cert`)
  try {
    await mkdir(join(admin.dir, 'issued'), { recursive: true, mode: 0o700 })
    await writeNew(copy, bytes, 0o644)
  } catch (err) {
    throw fileError(copy, err)
  }
  return { certificate, bytes, copy }
}

/** A revocation of a serial or a peer at `atMs`, signed by the admin and kept under DIR/revocations/. */
export async function signRevocation (admin: Admin, target: { serial: string } | { peer: string }, atMs: number): Promise<{ revocation: Revocation, bytes: Uint8Array, file: string }> {
  const fields = { network: admin.info.networkId, ...target, atMs, issuer: issuerOf(admin.key.publicKey.raw) }
  const revocation: Revocation = { ...fields, signature: await admin.key.sign(revocationSigningBytes(fields)) }
  const bytes = encodeRevocation(revocation)
  const name = 'serial' in target ? `serial-${target.serial}` : `peer-${target.peer}`
  const file = join(admin.dir, 'revocations', `${atMs}-${name}.rev`)
  try {
    await mkdir(join(admin.dir, 'revocations'), { recursive: true, mode: 0o700 })
    await writeNew(file, bytes, 0o644)
  } catch (err) {
    throw fileError(file, err)
  }
  return { revocation, bytes, file }
}

/** A revocation file to submit (`revoke --submit FILE`): read within its limit and decoded. */
export async function readRevocationFile (path: string): Promise<{ revocation: Revocation, bytes: Uint8Array }> {
  try {
    const bytes = await readRegularFile(path, REVOCATION_BYTES_MAX, 'revocation')
    return { revocation: decodeRevocation(bytes), bytes }
  } catch (err) {
    if (err instanceof RhizomeError) throw new CliError(err.code, `${path}: ${err.message}`, { exitCode: EXIT_USAGE, hint: 'pass a file that `rhizome network revoke` wrote (DIR/revocations/*.rev)', cause: err })
    throw err
  }
}

export interface AdminListing<T> { items: T[], unreadable: string[], more: number }

/** What the admin directory knows: issued certificates and revocations (each at most ADMIN_FILES_LISTED_MAX). */
export async function listAdminDir (dir: string, listedMax = ADMIN_FILES_LISTED_MAX): Promise<{ certificates: AdminListing<Certificate>, revocations: AdminListing<Revocation> }> {
  return {
    certificates: await listFolder(join(dir, 'issued'), '.cert', CERTIFICATE_BYTES_MAX, decodeCertificate, listedMax),
    revocations: await listFolder(join(dir, 'revocations'), '.rev', REVOCATION_BYTES_MAX, decodeRevocation, listedMax)
  }
}

async function listFolder<T> (folder: string, ext: string, bytesMax: number, decode: (bytes: Uint8Array) => T, listedMax: number): Promise<AdminListing<T>> {
  const names = (await readdir(folder).catch(() => [] as string[])).filter(n => n.endsWith(ext)).sort()
  const listing: AdminListing<T> = { items: [], unreadable: [], more: Math.max(0, names.length - listedMax) }
  for (const name of names.slice(0, listedMax)) {
    try {
      listing.items.push(decode(await readRegularFile(join(folder, name), bytesMax, 'credential')))
    } catch {
      listing.unreadable.push(name)
    }
  }
  return listing
}
