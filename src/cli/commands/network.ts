/**
 * `rhizome network create | admit | revoke | status`: run a permissioned network. The admin's
 * side (key, certificates, revocations) lives in an admin directory (../network-admin.ts) and
 * needs no peer; `revoke` then hands the revocation to the local peer, which enforces and gossips
 * it, and `status` asks the peer what it enforces.
 */
import { writeFile } from 'node:fs/promises'
import { RhizomeError } from '../../model/errors.ts'
import { CERTIFICATE_VALIDITY_MS_MAX, ROLES } from '../../protocol/permission/constants.ts'
import { SERIAL_CHARS_MAX, encodeCertificateFile } from '../../wire/certificate-codec.ts'
import type { Certificate, Revocation, Role } from '../../wire/certificate-codec.ts'
import { CliError, EXIT_OK, EXIT_USAGE, dataDirOption, jsonOption } from '../command.ts'
import { connectPeer } from '../connect.ts'
import {
  DEFAULT_NETWORK_NAME, checkNetworkName, createNetwork, issueCertificate, listAdminDir, loadAdmin, loadDelegatedAdmin, loadNetworkInfo, networkDir, parseDuration,
  readRevocationFile, signRevocation
} from '../network-admin.ts'
import type { Admin, AdminListing, DelegatedAdmin, NetworkInfo } from '../network-admin.ts'
import type { Command, CommandContext } from '../command.ts'
import type { MemberView, NetworkStatus, RevocationView } from '../../api/types.ts'

const DAY_MS = 86_400_000
/** `admit` without --expires: a month, so a lost machine's certificate runs out soon even unrevoked. */
const EXPIRES_DEFAULT = '30d'
const DIR_HELP = `  --network NAME    the network whose admin directory is RHIZOME_NETWORKS_DIR/NAME, else
                    ~/.rhizome/networks/NAME (default NAME: ${DEFAULT_NETWORK_NAME})
  --dir DIR         the admin directory itself`
const adminDirOptions = { network: { type: 'string' }, dir: { type: 'string' } } as const
const AS_HELP = `  --as DATA_DIR     sign as a delegated admin: the member whose data dir this is, with its peer
                    key, instead of the network's admin key (no --network/--dir then)
  --admin-certificate FILE
                    with --as: that member's own certificate (the file it starts with); it must be
                    signed by the network's founding key and have role admin`
const asOptions = { as: { type: 'string' }, 'admin-certificate': { type: 'string' } } as const

/** The signer: the network's admin key (--network/--dir), or a delegated admin (--as DATA_DIR). */
async function signer (context: CommandContext): Promise<Admin | DelegatedAdmin> {
  const as = str(context, 'as')
  const certificate = str(context, 'admin-certificate')
  if (as === undefined) {
    if (certificate !== undefined) throw usage('--admin-certificate goes with --as DATA_DIR', 'pass --as with the admin member\'s data dir, or neither')
    return await loadAdmin(adminDir(context))
  }
  if (str(context, 'dir') !== undefined || str(context, 'network') !== undefined) throw usage('--as signs with a member\'s key: --network/--dir name another signer', 'pass --as DATA_DIR or --network/--dir, not both')
  if (as === '') throw usage('--as is empty', 'name the admin member\'s data dir')
  if (certificate === undefined) throw usage('--as needs --admin-certificate FILE: the member\'s own certificate, which shows it is an admin', 'pass the certificate file that member starts with')
  return await loadDelegatedAdmin(as, certificate, Date.now())
}

const usage = (message: string, hint: string): CliError => new CliError('ERR_USAGE', message, { exitCode: EXIT_USAGE, hint })
const str = (context: CommandContext, name: string): string | undefined => context.values[name] as string | undefined
const adminDir = (context: CommandContext): string => networkDir({ dir: str(context, 'dir'), name: str(context, 'network') }, context.env)
const iso = (ms: number): string => new Date(ms).toISOString()

export const networkCreate: Command = {
  usage: `rhizome network create [--name NAME] [--dir DIR] [--json]

  Makes a permissioned network: an Ed25519 admin key (DIR/admin.key, mode 0600: keep it safe,
  it signs every membership) and DIR/network.json with the network id. DIR defaults to
  RHIZOME_NETWORKS_DIR/NAME, else ~/.rhizome/networks/NAME; NAME defaults to ${DEFAULT_NETWORK_NAME}.
  An existing network is never overwritten.

  Example: rhizome network create --name lab`,
  options: { name: { type: 'string' }, dir: { type: 'string' }, ...jsonOption },
  positionals: [0, 0],
  async run (context) {
    const name = checkNetworkName(str(context, 'name') ?? DEFAULT_NETWORK_NAME)
    const dir = str(context, 'dir') !== undefined ? networkDir({ dir: str(context, 'dir') }, context.env) : networkDir({ name }, context.env)
    const info = await createNetwork(dir, name, Date.now())
    if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify({ ...info, dir }, null, 2) + '\n' }
    const pick = str(context, 'dir') !== undefined ? `--dir ${dir}` : `--network ${name}`
    return {
      exitCode: EXIT_OK,
      stdout: [
        `network ${info.networkId} (${name})`, `admin key ${dir}/admin.key (mode 0600: back it up, never share it)`, '',
        'Next:',
        `  rhizome network admit PEER_ID ${pick} --roles worker    (on this machine: signs PEER_ID.cert)`,
        '  rhizome node start --certificate PEER_ID.cert             (on that peer\'s machine)',
        `  rhizome network status ${pick}`, ''
      ].join('\n')
    }
  }
}

export const networkAdmit: Command = {
  usage: `rhizome network admit PEER_ID [--roles ROLES] [--expires DURATION] [--network NAME | --dir DIR | --as DATA_DIR --admin-certificate FILE] [--out FILE] [--json]

  Signs a membership certificate for PEER_ID with the network's admin key, or as a delegated
  admin (--as): then the file written holds the admin's certificate too, so the peer can show
  who signed it; a certificate it signs never makes another admin that can sign.
  --roles ROLES     comma-separated, of ${ROLES.join(', ')} (default worker): a worker runs tasks, a
                    client or an admin starts runs
  --expires DURATION
                    how long it is valid from now: 90m, 12h, 30d (default ${EXPIRES_DEFAULT}, at most
                    ${CERTIFICATE_VALIDITY_MS_MAX / DAY_MS}d)
  --out FILE        where to write it (default ./PEER_ID.cert); a copy stays in DIR/issued/
${DIR_HELP}
${AS_HELP}

  Example: rhizome network admit 12D3KooW… --network lab --roles worker,client --expires 90d
           rhizome network admit 12D3KooW… --as ~/.rhizome --admin-certificate me.cert`,
  options: { roles: { type: 'string' }, expires: { type: 'string' }, out: { type: 'string' }, ...adminDirOptions, ...asOptions, ...jsonOption },
  positionals: [1, 1],
  async run (context) {
    const peer = await checkPeerId(context.positionals[0])
    const roles = parseRoles(str(context, 'roles') ?? 'worker')
    const validityMs = parseDuration(str(context, 'expires') ?? EXPIRES_DEFAULT)
    const out = str(context, 'out') ?? `${peer}.cert`
    const admin = await signer(context)
    const delegated = 'certificate' in admin ? admin : undefined
    if (delegated?.peerId === peer) throw usage(`${peer} is the admin signing: an admin cannot certify itself`, 'ask the network\'s founder to renew your certificate')
    const { certificate, bytes, copy } = await issueCertificate(admin, peer, roles, Date.now(), validityMs)
    try {
      await writeFile(out, delegated === undefined ? bytes : encodeCertificateFile({ certificate, issuerCertificate: delegated.certificate }))
    } catch (err) {
      throw new CliError('ERR_FILE', `cannot write ${out}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { hint: `the certificate is also in ${copy}`, cause: err })
    }
    const view = {
      peer, roles: certificate.roles, serial: certificate.serial, notBefore: certificate.notBefore, notAfter: certificate.notAfter, network: certificate.network, file: out, copy,
      ...(delegated !== undefined ? { issuedBy: delegated.peerId } : {})
    }
    if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify(view, null, 2) + '\n' }
    return {
      exitCode: EXIT_OK,
      stdout: [
        `admitted ${peer} to ${certificate.network} as ${certificate.roles.join(', ')}${delegated !== undefined ? ` (signed by delegated admin ${delegated.peerId})` : ''}`,
        `serial   ${certificate.serial}`, `expires  ${iso(certificate.notAfter)} (in ${formatSpan(validityMs)})`, `wrote    ${out}`, '',
        `Copy ${out} to that peer's machine and start it with:`, `  rhizome node start --certificate ${out}`, ''
      ].join('\n')
    }
  }
}

export const networkRevoke: Command = {
  usage: `rhizome network revoke PEER_ID|SERIAL [--network NAME | --dir DIR | --as DATA_DIR --admin-certificate FILE] [--data-dir DIR | --api URL] [--json]
       rhizome network revoke --submit FILE [--data-dir DIR | --api URL] [--json]

  Signs a revocation of a peer (every certificate it was issued until now) or of one certificate
  (by serial), keeps it in DIR/revocations/, and hands it to the local peer, which enforces it at
  once and gossips it to the network. With no peer running it stays in the file:
  --submit FILE     hand a kept revocation to the peer (nothing is signed)
${DIR_HELP}
${AS_HELP}
                    (and the peer handed it is that member, unless --data-dir or --api)

  Example: rhizome network revoke 12D3KooW… --network lab`,
  options: { submit: { type: 'string' }, ...adminDirOptions, ...asOptions, ...dataDirOption, ...jsonOption },
  positionals: [0, 1],
  async run (context) {
    const file = str(context, 'submit')
    if (file !== undefined) {
      if (context.positionals.length > 0) throw usage('--submit FILE takes no PEER_ID or SERIAL', 'the file names what it revokes')
      const { revocation, bytes } = await readRevocationFile(file)
      return await submit(context, revocation, bytes, file)
    }
    if (context.positionals.length === 0) throw usage('name the peer id or the serial to revoke', 'e.g. rhizome network revoke 12D3KooW… (or --submit FILE)')
    const target = await revocationTarget(context.positionals[0])
    const admin = await signer(context)
    const { revocation, bytes, file: kept } = await signRevocation(admin, target, Date.now())
    if (context.values.json !== true) context.print(`signed a revocation of ${'serial' in target ? `serial ${target.serial}` : `peer ${target.peer}`} at ${iso(revocation.atMs)}\nkept in ${kept}\n`)
    // A delegated admin hands it to its own peer unless told otherwise.
    const as = str(context, 'as')
    const to = as !== undefined && str(context, 'data-dir') === undefined && str(context, 'api') === undefined ? { ...context, values: { ...context.values, 'data-dir': as } } : context
    return await submit(to, revocation, bytes, kept)
  }
}

/** Hands the revocation to the peer; when none answers, says how to do it later. */
async function submit (context: CommandContext, revocation: Revocation, bytes: Uint8Array, file: string): Promise<{ exitCode: number, stdout: string }> {
  let result
  try {
    result = await (await connectPeer(context)).submitRevocation(bytes, { signal: context.signal })
  } catch (err) {
    if (!(err instanceof RhizomeError)) throw err
    if (err.code === 'ERR_NO_PEER') {
      throw new CliError('ERR_NO_PEER', `no peer is reachable, so the revocation is not enforced yet (${err.message})`, {
        hint: `it is kept in ${file}: start a peer of the network (or pass --data-dir / --api), then run \`rhizome network revoke --submit ${file}\``, cause: err
      })
    }
    throw new CliError(err.code, `${err.message} (the revocation is kept in ${file})`, { hint: err.hint ?? `retry with \`rhizome network revoke --submit ${file}\``, cause: err })
  }
  if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify({ ...revocationView(revocation), result: result.result, file }, null, 2) + '\n' }
  const said = result.result === 'accepted' ? 'the peer enforces it now and gossips it to the network' : 'the peer already held it'
  return { exitCode: EXIT_OK, stdout: `${said}\n` }
}

export const networkStatus: Command = {
  usage: `rhizome network status [--data-dir DIR | --api URL] [--network NAME | --dir DIR] [--json]

  The network as the peer enforces it: mode, id, this peer's roles and expiry, the members it
  has checked (roles, serial, expiry, connected), revocations, and what it refused. With
  --network or --dir and no peer running, what the admin directory knows instead: the
  certificates issued and the revocations signed there.
${DIR_HELP}`,
  options: { ...adminDirOptions, ...dataDirOption, ...jsonOption },
  positionals: [0, 0],
  async run (context) {
    const dirGiven = str(context, 'dir') !== undefined || str(context, 'network') !== undefined
    const dir = dirGiven ? adminDir(context) : undefined
    let status: NetworkStatus
    try {
      status = await (await connectPeer(context)).network({ signal: context.signal })
    } catch (err) {
      if (dir === undefined || !(err instanceof RhizomeError) || err.code !== 'ERR_NO_PEER') throw err
      return await adminStatus(context, dir)
    }
    if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify(status, null, 2) + '\n' }
    return { exitCode: EXIT_OK, stdout: networkStatusText(status, Date.now()) }
  }
}

async function adminStatus (context: CommandContext, dir: string): Promise<{ exitCode: number, stdout: string }> {
  const info = await loadNetworkInfo(dir)
  const { certificates, revocations } = await listAdminDir(dir)
  if (context.values.json === true) {
    const json = { admin: { ...info, dir }, issued: certificates.items.map(certificateView), revocations: revocations.items.map(revocationView), unreadable: [...certificates.unreadable, ...revocations.unreadable] }
    return { exitCode: EXIT_OK, stdout: JSON.stringify(json, null, 2) + '\n' }
  }
  return { exitCode: EXIT_OK, stdout: adminStatusText(info, dir, certificates, revocations, Date.now()) }
}

// --- arguments ---------------------------------------------------------------------------------

async function checkPeerId (text: string): Promise<string> {
  if (!(await isPeerId(text))) throw usage(`${JSON.stringify(text)} is not a peer id`, 'a peer id looks like 12D3KooW…; the peer prints it at start (`rhizome status` on its machine)')
  return text
}

async function isPeerId (text: string): Promise<boolean> {
  // Loaded only here: the peer id codec brings the key types with it.
  const { peerIdFromString } = await import('@libp2p/peer-id')
  try {
    peerIdFromString(text)
    return true
  } catch {
    return false
  }
}

export function parseRoles (text: string): Role[] {
  const roles = text.split(',').map(r => r.trim())
  const unknown = roles.filter(r => !ROLES.includes(r as Role))
  const hint = `roles are ${ROLES.join(', ')}, comma-separated (e.g. --roles worker,client)`
  if (text.trim() === '') throw usage('--roles is empty: no role given', hint)
  if (unknown.length > 0) throw usage(`--roles ${JSON.stringify(text)}: no role ${unknown.map(r => JSON.stringify(r)).join(', ')}`, hint)
  return [...new Set(roles as Role[])].sort()
}

/** A peer id revokes the peer; anything else that can be a serial revokes that certificate. */
async function revocationTarget (text: string): Promise<{ peer: string } | { serial: string }> {
  if (await isPeerId(text)) return { peer: text }
  if (text.length <= SERIAL_CHARS_MAX && /^[A-Za-z0-9_-]+$/.test(text)) return { serial: text }
  throw usage(`${JSON.stringify(text)} is neither a peer id nor a serial`, 'pass the peer id (12D3KooW…) or the serial `rhizome network admit` printed (also the file names in DIR/issued/)')
}

// --- printing ----------------------------------------------------------------------------------

/** 29 d 3 h, 5 h 10 min, 40 s. */
export function formatSpan (ms: number): string {
  const s = Math.floor(Math.abs(ms) / 1000)
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min`
  const h = Math.floor(m / 60)
  if (h < 24) return m % 60 === 0 ? `${h} h` : `${h} h ${m % 60} min`
  return h % 24 === 0 ? `${Math.floor(h / 24)} d` : `${Math.floor(h / 24)} d ${h % 24} h`
}

function expiresIn (notAfter: number, nowMs: number): string {
  return notAfter > nowMs ? formatSpan(notAfter - nowMs) : `expired ${formatSpan(nowMs - notAfter)} ago`
}

function table (rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map(r => r[i].length)))
  return rows.map(r => r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd())
}

function revocationRows (revocations: ReadonlyArray<RevocationView | Revocation>): string[] {
  if (revocations.length === 0) return ['revocations: none']
  const rows = [['REVOKES', 'AT', 'ISSUER']]
  for (const r of [...revocations].sort((a, b) => a.atMs - b.atMs)) rows.push([r.serial !== undefined ? `serial ${r.serial}` : `peer ${r.peer ?? ''}`, iso(r.atMs), r.issuer])
  return [`revocations (${revocations.length}):`, ...table(rows).map(l => `  ${l}`)]
}

/** `rhizome network status` of a running peer. */
export function networkStatusText (s: NetworkStatus, nowMs: number): string {
  if (s.mode === 'open') {
    return `mode       open: any peer that knows the network id joins\nnetwork    ${s.networkId}\n\nTo admit only peers you choose: rhizome network create, then start each peer with --certificate.\n`
  }
  const self = s.self
  const lines = [
    'mode       permissioned', `network    ${s.networkId}`,
    `this peer  ${self === undefined ? 'holds no certificate' : `${self.peerId}: ${self.roles.join(', ')}, serial ${self.serial}, expires in ${expiresIn(self.notAfter, nowMs)}`}`, ''
  ]
  lines.push(...memberRows(s.members, nowMs), '', ...revocationRows(s.revocations), '')
  const refused = Object.entries(s.refused).filter(([, n]) => n > 0).sort(([a], [b]) => a.localeCompare(b))
  lines.push(refused.length === 0 ? 'refused: nothing since start' : `refused since start: ${refused.map(([reason, n]) => `${reason} ${n}`).join(', ')}`)
  return lines.join('\n') + '\n'
}

function memberRows (members: readonly MemberView[], nowMs: number): string[] {
  if (members.length === 0) return ['members: none checked yet']
  const rows = [['PEER', 'ROLES', 'SERIAL', 'EXPIRES IN', 'CONNECTED', 'ISSUED BY']]
  for (const m of [...members].sort((a, b) => a.peerId.localeCompare(b.peerId))) {
    rows.push([m.peerId, m.roles.join(','), m.serial, expiresIn(m.notAfter, nowMs), m.connected ? 'yes' : 'no', m.issuedBy === undefined ? 'founding admin' : `admin ${m.issuedBy}`])
  }
  return [`members (${members.length}):`, ...table(rows).map(l => `  ${l}`)]
}

/** `rhizome network status --dir` with no peer: what the admin directory knows. */
export function adminStatusText (info: NetworkInfo, dir: string, certificates: AdminListing<Certificate>, revocations: AdminListing<Revocation>, nowMs: number): string {
  const lines = [
    `no peer is running: this is what ${dir} knows`, `network    ${info.networkId} (${info.name})`, `admin      ${info.admin}`, `created    ${info.createdAt}`, ''
  ]
  if (certificates.items.length === 0) lines.push('issued: none (rhizome network admit PEER_ID)')
  else {
    const rows = [['PEER', 'ROLES', 'SERIAL', 'EXPIRES IN', 'REVOKED']]
    for (const c of [...certificates.items].sort((a, b) => a.notBefore - b.notBefore)) {
      const revoked = revocations.items.some(r => (r.serial === c.serial || r.peer === c.peer) && c.notBefore <= r.atMs)
      rows.push([c.peer, c.roles.join(','), c.serial, expiresIn(c.notAfter, nowMs), revoked ? 'yes' : 'no'])
    }
    lines.push(`issued (${certificates.items.length}):`, ...table(rows).map(l => `  ${l}`))
  }
  lines.push('', ...revocationRows(revocations.items))
  const more = certificates.more + revocations.more
  if (more > 0) lines.push(`… and ${more} more files not listed`)
  const unreadable = [...certificates.unreadable, ...revocations.unreadable]
  if (unreadable.length > 0) lines.push(`unreadable: ${unreadable.join(', ')}`)
  return lines.join('\n') + '\n'
}

function certificateView (c: Certificate): Omit<Certificate, 'signature'> {
  return { network: c.network, peer: c.peer, roles: c.roles, notBefore: c.notBefore, notAfter: c.notAfter, serial: c.serial, issuer: c.issuer }
}

function revocationView (r: Revocation): RevocationView {
  const view: RevocationView = { atMs: r.atMs, issuer: r.issuer }
  if (r.serial !== undefined) view.serial = r.serial
  if (r.peer !== undefined) view.peer = r.peer
  return view
}
