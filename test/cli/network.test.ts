/**
 * `rhizome network create | admit | revoke | status` in-process: the admin directory's files and
 * modes, certificates that decode, verify under the admin key and are admitted by the real
 * permission machine, one past each argument limit (exit 2 with a hint), a key others may read
 * (refused), revocations signed and kept when no peer answers, `--submit` sending the file's
 * bytes, the status table from a fixture, and a real (open) peer's status and refusal.
 */
import assert from 'node:assert/strict'
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf, publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { NetworkStatus } from '../../src/api/types.ts'
import { adminStatusText, formatSpan, networkStatusText } from '../../src/cli/commands/network.ts'
import { main } from '../../src/cli/main.ts'
import { ADMIN_FILE_BYTES_MAX, NETWORK_NAME_CHARS_MAX, listAdminDir } from '../../src/cli/network-admin.ts'
import { CERTIFICATE_VALIDITY_MS_MAX, createPermission } from '../../src/protocol/permission/index.ts'
import {
  certificateSigningBytes, decodeCertificate, decodeCertificateFile, decodeRevocation, issuerKey, issuerOf, networkIdOf, revocationSigningBytes
} from '../../src/wire/certificate-codec.ts'
import { issuerPeerId } from '../../src/net/certificate-signatures.ts'
import { loadOrCreateIdentity } from '../../src/node/identity.ts'
import { loadOwnCertificate } from '../../src/node/certificate.ts'
import { TestPeer } from '../helpers/peers.ts'
import type { IncomingMessage, Server } from 'node:http'

interface Run { code: number, stdout: string, stderr: string }

let root: string
let env: NodeJS.ProcessEnv

async function run (argv: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const code = await main(argv, { ...env, ...extraEnv }, new AbortController().signal, {
    out: text => { stdout += typeof text === 'string' ? text : Buffer.from(text).toString() },
    err: text => { stderr += text },
    isTTY: false
  })
  return { code, stdout, stderr }
}

async function newPeerId (): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}

const DAY_MS = 86_400_000
/** A port nothing listens on: connecting is refused at once. */
const DEAD_API = 'http://127.0.0.1:1'

describe('rhizome network', () => {
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'rhizome-cli-network-'))
    env = { RHIZOME_NETWORKS_DIR: join(root, 'networks'), RHIZOME_DATA_DIR: join(root, 'no-peer') }
  })
  after(async () => { await rm(root, { recursive: true, force: true }) })

  test('create writes a private admin key and network.json (even with umask 0), and never overwrites a network', async () => {
    const umask = process.umask(0)
    let r: Run
    try {
      r = await run(['network', 'create', '--name', 'lab'])
    } finally {
      process.umask(umask)
    }
    assert.equal(r.code, 0, r.stderr)
    const dir = join(root, 'networks', 'lab')
    assert.equal((await stat(join(dir, 'admin.key'))).mode & 0o777, 0o600)
    assert.equal((await stat(dir)).mode & 0o777, 0o700)
    const key = privateKeyFromProtobuf(await readFile(join(dir, 'admin.key')))
    assert.equal(key.type, 'Ed25519')
    const info = JSON.parse(await readFile(join(dir, 'network.json'), 'utf8'))
    assert.deepEqual(Object.keys(info).sort(), ['admin', 'createdAt', 'name', 'networkId'])
    assert.equal(info.name, 'lab')
    assert.equal(info.networkId, await networkIdOf(key.publicKey.raw))
    assert.equal(info.admin, issuerOf(key.publicKey.raw))
    assert.match(r.stdout, new RegExp(`network ${info.networkId} \\(lab\\)`))
    assert.match(r.stdout, /rhizome network admit PEER_ID --network lab/)
    assert.match(r.stdout, /rhizome node start --certificate/)

    const keyBytes = await readFile(join(dir, 'admin.key'))
    const again = await run(['network', 'create', '--name', 'lab'])
    assert.equal(again.code, 1)
    assert.match(again.stderr, /already holds a network .*ERR_NETWORK_EXISTS/)
    assert.match(again.stderr, /hint: pick another --name or --dir/)
    assert.deepEqual(await readFile(join(dir, 'admin.key')), keyBytes, 'the key is untouched')

    const json = await run(['network', 'create', '--dir', join(root, 'by-dir'), '--json'])
    assert.equal(json.code, 0, json.stderr)
    assert.equal(JSON.parse(json.stdout).name, 'default')
    assert.equal(JSON.parse(json.stdout).dir, join(root, 'by-dir'))
  })

  test(`create refuses a bad network name (${NETWORK_NAME_CHARS_MAX} characters pass, one more does not), exit 2`, async () => {
    for (const name of ['..', '.hidden', 'a/b', '', 'x'.repeat(NETWORK_NAME_CHARS_MAX + 1)]) {
      const r = await run(['network', 'create', '--name', name])
      assert.equal(r.code, 2, name)
      assert.match(r.stderr, /is not a network name/)
      assert.match(r.stderr, /hint: use 1\.\.64 letters/)
    }
    assert.equal((await run(['network', 'create', '--name', 'x'.repeat(NETWORK_NAME_CHARS_MAX)])).code, 0)
    const badNetwork = await run(['network', 'status', '--network', '../up'])
    assert.equal(badNetwork.code, 2)
    assert.match(badNetwork.stderr, /--network "\.\.\/up" is not a network name/)
    const both = await run(['network', 'create', '--name', 'a', '--dir', join(root, 'x'), '--json'])
    assert.equal(both.code, 0, both.stderr)
    assert.equal(JSON.parse(await readFile(join(root, 'x', 'network.json'), 'utf8')).name, 'a', '--dir places the network, --name names it')
  })

  test('admit writes a certificate that decodes, verifies under the admin key, and the permission machine admits', async () => {
    const dir = join(root, 'networks', 'lab')
    const info = JSON.parse(await readFile(join(dir, 'network.json'), 'utf8'))
    const peer = await newPeerId()
    const out = join(root, 'member.cert')
    const before = Date.now()
    const r = await run(['network', 'admit', peer, '--network', 'lab', '--roles', 'worker,client,worker', '--expires', '12h', '--out', out])
    const afterMs = Date.now()
    assert.equal(r.code, 0, r.stderr)
    const bytes = await readFile(out)
    const cert = decodeCertificate(bytes)
    assert.equal(cert.network, info.networkId)
    assert.equal(cert.peer, peer)
    assert.deepEqual(cert.roles, ['client', 'worker'])
    assert.equal(cert.issuer, info.admin)
    assert.ok(cert.notBefore >= before && cert.notBefore <= afterMs)
    assert.equal(cert.notAfter - cert.notBefore, 12 * 3_600_000)
    assert.match(cert.serial, /^[0-9a-f]{32}$/)
    const adminKey = publicKeyFromRaw(issuerKey(cert.issuer))
    assert.equal(await adminKey.verify(certificateSigningBytes(cert), cert.signature), true)
    assert.equal(await adminKey.verify(certificateSigningBytes({ ...cert, roles: ['admin', 'client', 'worker'] }), cert.signature), false, 'the roles are signed')
    assert.deepEqual(await readFile(join(dir, 'issued', `${cert.serial}.cert`)), bytes, 'a copy stays in the admin directory')
    assert.match(r.stdout, new RegExp(`serial +${cert.serial}`))
    assert.match(r.stdout, new RegExp(`rhizome node start --certificate ${out}`))

    const permission = createPermission({ mode: 'permissioned', networkId: info.networkId, issuers: [info.admin] })
    assert.equal(permission.handleCertificate(cert, true, Date.now()), 'admitted')
    assert.equal(permission.allows(peer, 'task', Date.now()), true)
    assert.equal(permission.allows(peer, 'run', Date.now()), true)
  })

  test('admit: two certificates get different serials; --json says what was written', async () => {
    const peer = await newPeerId()
    const a = JSON.parse((await run(['network', 'admit', peer, '--network', 'lab', '--out', join(root, 'a.cert'), '--json'])).stdout)
    const b = JSON.parse((await run(['network', 'admit', peer, '--network', 'lab', '--out', join(root, 'b.cert'), '--json'])).stdout)
    assert.notEqual(a.serial, b.serial)
    assert.deepEqual(a.roles, ['worker'], 'worker by default')
    assert.equal(a.notAfter - a.notBefore, 30 * DAY_MS, '30 days by default')
  })

  test(`admit refuses a bad peer id, bad roles, a bad duration and one longer than ${CERTIFICATE_VALIDITY_MS_MAX / DAY_MS} days: exit 2 with a hint`, async () => {
    const peer = await newPeerId()
    const cases: Array<[string[], RegExp]> = [
      [['not-a-peer'], /"not-a-peer" is not a peer id/],
      [[peer, '--roles', 'worker,boss'], /no role "boss"/],
      [[peer, '--roles', ''], /no role given/],
      [[peer, '--expires', '30x'], /is not a duration/],
      [[peer, '--expires', '0d'], /is not a duration/],
      [[peer, '--expires', '1.5d'], /is not a duration/],
      [[peer, '--expires', '367d'], /longer than a certificate may live \(366 days\)/],
      [[peer, '--expires', `${CERTIFICATE_VALIDITY_MS_MAX / 60_000 + 1}m`], /longer than a certificate may live/],
      [[peer, '--network', 'lab', '--dir', join(root, 'networks', 'lab')], /name the network twice/]
    ]
    for (const [args, message] of cases) {
      const r = await run(['network', 'admit', ...args, '--out', join(root, 'refused.cert')])
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, message)
      assert.match(r.stderr, /hint: /)
    }
    await assert.rejects(readFile(join(root, 'refused.cert')), { code: 'ENOENT' })
    const longest = await run(['network', 'admit', peer, '--network', 'lab', '--expires', `${CERTIFICATE_VALIDITY_MS_MAX / 60_000}m`, '--out', join(root, 'longest.cert')])
    assert.equal(longest.code, 0, longest.stderr)
    const cert = decodeCertificate(await readFile(join(root, 'longest.cert')))
    assert.equal(cert.notAfter - cert.notBefore, CERTIFICATE_VALIDITY_MS_MAX)
  })

  test('admit refuses an admin key that others may read (chmod 600 hint), a key of another network, and no network', async () => {
    const dir = join(root, 'networks', 'lab')
    const keyPath = join(dir, 'admin.key')
    const peer = await newPeerId()
    const out = join(root, 'leaky.cert')
    await chmod(keyPath, 0o640)
    try {
      const r = await run(['network', 'admit', peer, '--network', 'lab', '--out', out])
      assert.equal(r.code, 1)
      assert.match(r.stderr, /may be read by others \(mode 640\)/)
      assert.match(r.stderr, new RegExp(`hint: make it private: chmod 600 ${keyPath}`))
    } finally {
      await chmod(keyPath, 0o600)
    }
    await assert.rejects(readFile(out), { code: 'ENOENT' })

    const other = join(root, 'other')
    assert.equal((await run(['network', 'create', '--dir', other])).code, 0)
    await writeFile(join(other, 'admin.key'), privateKeyToProtobuf(await generateKeyPair('Ed25519')), { mode: 0o600, flag: 'w' })
    const wrong = await run(['network', 'admit', peer, '--dir', other, '--out', out])
    assert.equal(wrong.code, 1)
    assert.match(wrong.stderr, /is not the admin key of network rz-/)

    const none = await run(['network', 'admit', peer, '--network', 'nowhere', '--out', out])
    assert.equal(none.code, 1)
    assert.match(none.stderr, /there is no network in .*nowhere .*ERR_NO_NETWORK/)
    assert.match(none.stderr, /hint: create one with `rhizome network create/)
  })

  test(`admin files past ${ADMIN_FILE_BYTES_MAX} bytes are refused before they are parsed`, async () => {
    const dir = join(root, 'big')
    assert.equal((await run(['network', 'create', '--dir', dir])).code, 0)
    const info = await readFile(join(dir, 'network.json'), 'utf8')
    await writeFile(join(dir, 'network.json'), info.padEnd(ADMIN_FILE_BYTES_MAX - 1) + '\n')
    assert.equal((await run(['network', 'admit', await newPeerId(), '--dir', dir, '--out', join(root, 'big.cert')])).code, 0, 'at the limit')
    await writeFile(join(dir, 'network.json'), info.padEnd(ADMIN_FILE_BYTES_MAX) + '\n')
    const r = await run(['network', 'admit', await newPeerId(), '--dir', dir, '--out', join(root, 'big.cert')])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /network.json is 4097 bytes, more than the limit of 4096 bytes/)
  })

  test('revoke with no peer: signs a revocation (peer or serial), keeps it, and says how to submit it later', async () => {
    const dir = join(root, 'networks', 'lab')
    const info = JSON.parse(await readFile(join(dir, 'network.json'), 'utf8'))
    const peer = await newPeerId()
    const before = Date.now()
    const r = await run(['network', 'revoke', peer, '--network', 'lab', '--api', DEAD_API, '--api-token', 'x'])
    assert.equal(r.code, 1)
    assert.match(r.stdout, new RegExp(`signed a revocation of peer ${peer}`))
    assert.match(r.stderr, /no peer is reachable, so the revocation is not enforced yet .*ERR_NO_PEER/)
    const kept = /rhizome network revoke --submit (\S+)`/.exec(r.stderr)?.[1]
    assert.ok(kept !== undefined, r.stderr)
    assert.ok(kept.startsWith(join(dir, 'revocations')))
    const rev = decodeRevocation(await readFile(kept))
    assert.equal(rev.peer, peer)
    assert.equal(rev.serial, undefined)
    assert.equal(rev.network, info.networkId)
    assert.ok(rev.atMs >= before && rev.atMs <= Date.now())
    assert.equal(await publicKeyFromRaw(issuerKey(rev.issuer)).verify(revocationSigningBytes(rev), rev.signature), true)

    const serial = 'a'.repeat(32)
    const bySerial = await run(['network', 'revoke', serial, '--network', 'lab', '--data-dir', join(root, 'no-peer')])
    assert.equal(bySerial.code, 1)
    const files = await readdir(join(dir, 'revocations'))
    const serialFile = files.find(f => f.endsWith(`serial-${serial}.rev`))
    assert.ok(serialFile !== undefined, files.join(', '))
    assert.equal(decodeRevocation(await readFile(join(dir, 'revocations', serialFile))).serial, serial)

    for (const bad of ['not a serial!', 'x'.repeat(65)]) {
      const refused = await run(['network', 'revoke', bad, '--network', 'lab'])
      assert.equal(refused.code, 2, bad)
      assert.match(refused.stderr, /is neither a peer id nor a serial/)
    }
    assert.equal((await run(['network', 'revoke', '--network', 'lab'])).code, 2, 'nothing to revoke')
    assert.equal((await run(['network', 'revoke', peer, '--submit', kept])).code, 2, '--submit takes no target')
    const notRev = await run(['network', 'revoke', '--submit', join(dir, 'network.json')])
    assert.equal(notRev.code, 2)
    assert.match(notRev.stderr, /revocation/)
  })

  test('admit and revoke --as DATA_DIR sign with a delegated admin\'s peer key; a member that is not a founder-signed admin is told so', async () => {
    const dir = join(root, 'networks', 'lab')
    const info = JSON.parse(await readFile(join(dir, 'network.json'), 'utf8'))
    const memberDir = join(root, 'admin-member')
    await mkdir(memberDir, { recursive: true, mode: 0o700 })
    const memberKey = (await loadOrCreateIdentity(memberDir)).privateKey
    const member = peerIdFromPrivateKey(memberKey).toString()
    const adminCert = join(root, 'admin-member.cert')
    const workerCert = join(root, 'worker-member.cert')
    assert.equal((await run(['network', 'admit', member, '--network', 'lab', '--roles', 'admin', '--out', adminCert])).code, 0)
    assert.equal((await run(['network', 'admit', member, '--network', 'lab', '--roles', 'worker', '--out', workerCert])).code, 0)
    const worker = await newPeerId()
    const out = join(root, 'delegated.cert')
    const r = await run(['network', 'admit', worker, '--as', memberDir, '--admin-certificate', adminCert, '--out', out, '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(JSON.parse(r.stdout).issuedBy, member)
    const file = decodeCertificateFile(await readFile(out))
    assert.equal(file.certificate.issuer, issuerOf(memberKey.publicKey.raw), 'signed with the member\'s peer key')
    assert.equal(issuerPeerId(file.certificate.issuer), member)
    assert.deepEqual(file.issuerCertificate, decodeCertificate(await readFile(adminCert)), 'the admin\'s certificate travels with it')
    assert.equal(await publicKeyFromRaw(issuerKey(file.certificate.issuer)).verify(certificateSigningBytes(file.certificate), file.certificate.signature), true)
    assert.ok((await readdir(join(memberDir, 'issued'))).includes(`${file.certificate.serial}.cert`), 'a copy stays in the member\'s data dir')
    // The file starts the peer it names: checked in full, admin's certificate included.
    const own = await loadOwnCertificate(out, worker, Date.now())
    assert.equal(own.founder, info.admin)
    assert.equal(own.issuerCertificate?.peer, member)
    await assert.rejects(loadOwnCertificate(out, member, Date.now()), /is for peer/)

    const notAdmin = await run(['network', 'admit', worker, '--as', memberDir, '--admin-certificate', workerCert, '--out', join(root, 'x.cert')])
    assert.equal(notAdmin.code, 2)
    assert.match(notAdmin.stderr, /roles worker, not admin.*ERR_NOT_AN_ADMIN/s)
    assert.match(notAdmin.stderr, /--roles admin/)
    // One level only: a certificate a delegated admin signed does not make an admin that signs.
    const depth = await run(['network', 'admit', worker, '--as', memberDir, '--admin-certificate', out, '--out', join(root, 'y.cert')])
    assert.equal(depth.code, 2)
    assert.match(depth.stderr, /delegated admin/)
    const self = await run(['network', 'admit', member, '--as', memberDir, '--admin-certificate', adminCert, '--out', join(root, 'z.cert')])
    assert.equal(self.code, 2)
    assert.match(self.stderr, /cannot certify itself/)
    assert.equal((await run(['network', 'admit', worker, '--as', memberDir])).code, 2, '--as needs --admin-certificate')
    // The member's peer key signs for the network now: one others may read is not used.
    await chmod(join(memberDir, 'identity.key'), 0o644)
    const readable = await run(['network', 'admit', worker, '--as', memberDir, '--admin-certificate', adminCert, '--out', join(root, 'w.cert')])
    assert.notEqual(readable.code, 0)
    assert.match(readable.stderr, /may be read by others.*ERR_ADMIN_KEY/s)
    assert.match(readable.stderr, /chmod 600/)
    await chmod(join(memberDir, 'identity.key'), 0o600)
    assert.equal((await run(['network', 'admit', worker, '--as', memberDir, '--admin-certificate', adminCert, '--network', 'lab'])).code, 2, 'one signer')
    assert.equal((await run(['network', 'admit', worker, '--network', 'lab', '--admin-certificate', adminCert])).code, 2, '--admin-certificate without --as')

    const revoked = await run(['network', 'revoke', worker, '--as', memberDir, '--admin-certificate', adminCert])
    assert.equal(revoked.code, 1, 'no peer runs in the member\'s data dir')
    assert.match(revoked.stderr, /ERR_NO_PEER/)
    const kept = await readdir(join(memberDir, 'revocations'))
    assert.equal(kept.length, 1)
    const rev = decodeRevocation(await readFile(join(memberDir, 'revocations', kept[0])))
    assert.equal(rev.peer, worker)
    assert.equal(rev.issuer, issuerOf(memberKey.publicKey.raw))
    assert.equal(rev.network, info.networkId)
  })

  test('revoke --submit hands the kept file\'s bytes, with the token, to the peer\'s revocation route', async () => {
    const dir = join(root, 'networks', 'lab')
    const files = await readdir(join(dir, 'revocations'))
    const file = join(dir, 'revocations', files[0])
    const seen: Array<{ method?: string, url?: string, auth?: string, body: Buffer }> = []
    const server: Server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, body: Buffer.concat(chunks) })
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ result: seen.length === 1 ? 'accepted' : 'duplicate' }))
      })
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
      const r = await run(['network', 'revoke', '--submit', file, '--api', url, '--api-token', 'tok'])
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, /enforces it now and gossips it/)
      const again = await run(['network', 'revoke', '--submit', file, '--api', url, '--api-token', 'tok', '--json'])
      assert.equal(JSON.parse(again.stdout).result, 'duplicate')
      assert.equal(seen.length, 2)
      assert.equal(seen[0].method, 'POST')
      assert.equal(seen[0].url, '/v1/network/revocations')
      assert.equal(seen[0].auth, 'Bearer tok')
      assert.deepEqual(new Uint8Array(seen[0].body), new Uint8Array(await readFile(file)))
    } finally {
      await new Promise(resolve => server.close(resolve))
    }
  })

  test('status with --network and no peer shows the admin directory: issued, revoked, revocations', async () => {
    const r = await run(['network', 'status', '--network', 'lab'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^no peer is running: this is what .*lab knows/)
    assert.match(r.stdout, /issued \(\d+\):/)
    assert.match(r.stdout, /revocations \(2\):/)
    const json = JSON.parse((await run(['network', 'status', '--network', 'lab', '--json'])).stdout)
    assert.equal(json.admin.name, 'lab')
    assert.equal(json.revocations.length, 2)
    assert.ok(json.issued.length >= 4)
    const none = await run(['network', 'status'])
    assert.equal(none.code, 1, 'without --network it needs a peer')
    assert.match(none.stderr, /no Rhizome peer is running/)
  })

  test('status of the admin directory lists at most its limit of files and counts the rest', async () => {
    const dir = join(root, 'networks', 'lab')
    const all = await listAdminDir(dir)
    const n = all.certificates.items.length
    const cut = await listAdminDir(dir, n - 1)
    assert.equal(cut.certificates.items.length, n - 1)
    assert.equal(cut.certificates.more, 1)
    const text = adminStatusText({ name: 'lab', networkId: 'rz-x', admin: 'A', createdAt: 'then' }, dir, cut.certificates, cut.revocations, Date.now())
    assert.match(text, /… and 1 more files not listed/)
    assert.equal((await listAdminDir(dir, n)).certificates.more, 0)
  })

  test('the status table from a fixture: members, expiry, revocations, refusals; open mode says how to close it', () => {
    const now = Date.UTC(2026, 0, 1)
    const member = (peerId: string, roles: Array<'worker' | 'client' | 'admin'>, serial: string, notAfter: number, connected: boolean): NetworkStatus['members'][number] =>
      ({ peerId, roles, serial, notBefore: now - DAY_MS, notAfter, issuer: 'I'.repeat(43), connected })
    const self = member('12D3KooWSelf', ['worker'], 's1', now + 29 * DAY_MS + 3 * 3_600_000, true)
    const status: NetworkStatus = {
      mode: 'permissioned',
      networkId: 'rz-abcdefghijklmnopqrstuvwxyz',
      self,
      // Zed was admitted by Ann, a delegated admin.
      members: [{ ...member('12D3KooWZed', ['client', 'worker'], 's3', now - 2 * 3_600_000, false), issuedBy: '12D3KooWAnn' }, self, member('12D3KooWAnn', ['admin'], 's2', now + 90 * 60_000, false)],
      revocations: [{ serial: 's9', atMs: now - DAY_MS, issuer: 'I'.repeat(43) }, { peer: '12D3KooWGone', atMs: now - 2 * DAY_MS, issuer: 'I'.repeat(43) }],
      refused: { 'not-a-member': 3, expired: 1, revoked: 0 }
    }
    const text = networkStatusText(status, now)
    assert.equal(text, [
      'mode       permissioned',
      'network    rz-abcdefghijklmnopqrstuvwxyz',
      'this peer  12D3KooWSelf: worker, serial s1, expires in 29 d 3 h',
      '',
      'members (3):',
      '  PEER          ROLES          SERIAL  EXPIRES IN       CONNECTED  ISSUED BY',
      '  12D3KooWAnn   admin          s2      1 h 30 min       no         founding admin',
      '  12D3KooWSelf  worker         s1      29 d 3 h         yes        founding admin',
      '  12D3KooWZed   client,worker  s3      expired 2 h ago  no         admin 12D3KooWAnn',
      '',
      'revocations (2):',
      `  REVOKES            AT                        ISSUER`,
      `  peer 12D3KooWGone  2025-12-30T00:00:00.000Z  ${'I'.repeat(43)}`,
      `  serial s9          2025-12-31T00:00:00.000Z  ${'I'.repeat(43)}`,
      '',
      'refused since start: expired 1, not-a-member 3',
      ''
    ].join('\n'))
    const open = networkStatusText({ mode: 'open', networkId: 'rhizome', members: [], revocations: [], refused: {} }, now)
    assert.match(open, /^mode {7}open/)
    assert.match(open, /rhizome network create, then start each peer with --certificate/)
    assert.equal(formatSpan(45_000), '45 s')
    assert.equal(formatSpan(2 * DAY_MS), '2 d')
  })
})

describe('rhizome network against a real (open) peer', () => {
  let dir: string
  let peer: TestPeer
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rhizome-cli-network-peer-'))
    env = { RHIZOME_NETWORKS_DIR: join(dir, 'networks') }
    peer = new TestPeer(join(dir, 'peer'), ['--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--log-level', 'silent'])
    await peer.start()
  })
  after(async () => {
    await peer.stop()
    await rm(dir, { recursive: true, force: true })
  })

  test('status shows an open network; a revocation is refused and stays kept for later', async () => {
    const status = await run(['network', 'status', '--data-dir', peer.dataDir])
    assert.equal(status.code, 0, status.stderr)
    assert.match(status.stdout, /^mode {7}open/)
    assert.equal(JSON.parse((await run(['network', 'status', '--data-dir', peer.dataDir, '--json'])).stdout).mode, 'open')
    assert.equal((await run(['network', 'create', '--name', 'n'])).code, 0)
    const r = await run(['network', 'revoke', await newPeerId(), '--network', 'n', '--data-dir', peer.dataDir])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /\(the revocation is kept in .*\.rev\)/, 'an open peer refuses it')
    assert.equal((await readdir(join(dir, 'networks', 'n', 'revocations'))).length, 1)
  })
})
