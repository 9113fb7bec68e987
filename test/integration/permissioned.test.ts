/**
 * A permissioned network on real peers, made and run with the real CLI: `rhizome network create`
 * makes the admin key, `rhizome network admit` certifies three workers and a client (each peer's
 * id is made from its data dir before it first starts), `rhizome network revoke` revokes, and
 * `rhizome network status` shows it. Certificates the CLI would never sign (altered, foreign,
 * short-lived) are made with the same admin key by test/helpers/certificates.ts.
 *
 *  - an outsider with its own identity and the network's id but no certificate gets nothing: no
 *    membership, gossip, task, function or blob; each attempt is refused with a named error and
 *    logged, and counted in the members' `refused`;
 *  - a client member starts a run and is given no task; a certificate that expires is cut off;
 *  - a certificate altered, signed by another key, or of another network does not start a peer;
 *  - a worker revoked while a 100-task run uses it is cut off by every peer within a gossip round,
 *    and the run completes with the right result;
 *  - a member the founder made an admin admits a worker with `rhizome network admit --as`; the
 *    worker joins and runs tasks; the founder revokes the admin, and within a gossip round the
 *    worker it admitted is cut off too, while the run completes.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as dagCbor from '@ipld/dag-cbor'
import { after, before, describe, test } from 'node:test'
import { createManifest, encodeManifest } from '../../src/functions/index.ts'
import { encodeCertificate, issuerOf, networkIdOf } from '../../src/wire/certificate-codec.ts'
import { FAST_TIMING, TestPeer, runCli, runEvents, waitFor } from '../helpers/peers.ts'
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { certify, createAdmin, peerIdOf, writeCertificate } from '../helpers/certificates.ts'
import type { Admin } from '../helpers/certificates.ts'
import type { NetworkStatus, RunReport } from '../../src/api/types.ts'
import type { Role } from '../../src/wire/certificate-codec.ts'

const FNS = fileURLToPath(new URL('../fixtures/runs/bad-fns.ts', import.meta.url))
const FLOW = fileURLToPath(new URL('../fixtures/runs/durable-flow.template.js', import.meta.url))
const BASE = ['--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--log-level', 'info', ...FAST_TIMING]

describe('a permissioned network', { timeout: 420_000 }, () => {
  let root: string
  let admin: Admin
  /** The admin directory `rhizome network create` made. */
  let netDir: string
  const started: TestPeer[] = []
  let workers: TestPeer[]
  let fnId = ''
  let workflow = ''

  /** A peer certified with `roles` (certificate fields overridden by `fields`), started and joined through `via`. */
  async function member (name: string, roles: Role[], via?: TestPeer, fields: Parameters<typeof certify>[3] = {}, extra: string[] = []): Promise<TestPeer> {
    const dir = join(root, name)
    const path = join(root, `${name}.cert`)
    if (Object.keys(fields).length === 0) {
      const admitted = await runCli(['network', 'admit', await peerIdOf(dir), '--dir', netDir, '--roles', roles.join(','), '--expires', '1d', '--out', path], { timeoutMs: 60_000 })
      assert.equal(admitted.code, 0, admitted.stderr)
    } else {
      await writeCertificate(root, `${name}.cert`, await certify(admin, await peerIdOf(dir), roles, fields))
    }
    const peer = new TestPeer(dir, [...BASE, '--certificate', path, ...(via !== undefined ? ['--bootstrap', via.tcpAddr] : []), ...extra])
    started.push(peer)
    await peer.start()
    return peer
  }

  async function network (peer: TestPeer): Promise<NetworkStatus> {
    return await peer.api<NetworkStatus>('/v1/network')
  }

  async function alive (peer: TestPeer): Promise<string[]> {
    return (await peer.peers()).filter(p => p.state === 'alive').map(p => p.peerId)
  }

  async function allSee (peers: TestPeer[]): Promise<void> {
    await waitFor('every member to see the others alive', async () => {
      for (const p of peers) if ((await alive(p)).length < peers.length - 1) return false
      return true
    }, 60_000, 200)
  }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'rhizome-perm-'))
    netDir = join(root, 'network')
    const created = await runCli(['network', 'create', '--name', 'lab', '--dir', netDir], { timeoutMs: 60_000 })
    assert.equal(created.code, 0, created.stderr)
    const key = privateKeyFromProtobuf(await readFile(join(netDir, 'admin.key')))
    admin = { key, issuer: issuerOf(key.publicKey.raw), networkId: await networkIdOf(key.publicKey.raw) }
    assert.match(created.stdout, new RegExp(admin.networkId))
    const first = await member('w1', ['worker'], undefined, {}, ['--slots', '2'])
    workers = [first, ...await Promise.all(['w2', 'w3'].map(async n => await member(n, ['worker'], first, {}, ['--slots', '2'])))]
    await allSee(workers)
    const deployed = await runCli(['deploy', FNS, '--replicas', '3', '--json', '--data-dir', first.dataDir], { timeoutMs: 60_000 })
    assert.equal(deployed.code, 0, deployed.stderr)
    fnId = (JSON.parse(deployed.stdout) as { cid: string }).cid
    const code = new TextEncoder().encode((await readFile(FLOW, 'utf8')).replaceAll('FNS', fnId))
    const manifest = encodeManifest(await createManifest({ name: 'durable-flow', kind: 'workflow', code, exports: ['layers', 'nap', 'outer'] }))
    const res = await fetch(`${first.apiUrl}/v1/functions`, { method: 'POST', headers: first.authorized(), body: dagCbor.encode({ manifest, code, replicas: 3 }) as BodyInit, signal: AbortSignal.timeout(60_000) })
    assert.equal(res.status, 200, await res.clone().text())
    workflow = (await res.json() as { cid: string }).cid
  })

  after(async () => {
    await Promise.all(started.map(async p => await p.stop('SIGKILL')))
    if (root !== undefined) await rm(root, { recursive: true, force: true })
  })

  test('three members see each other; an outsider with the network id but no certificate gets nothing', async () => {
    for (const w of workers) {
      const status = await network(w)
      assert.equal(status.mode, 'permissioned')
      assert.equal(status.networkId, admin.networkId)
      assert.deepEqual(status.self?.roles, ['worker'])
      for (const other of workers) assert.ok(status.members.some(m => m.peerId === other.peerId), `${w.peerId} holds the certificate of ${other.peerId}`)
      assert.equal((await w.api<{ networkMode: string }>('/v1/status')).networkMode, 'permissioned')
    }
    const [w1] = workers
    const shown = await runCli(['network', 'status', '--data-dir', w1.dataDir], { timeoutMs: 60_000 })
    assert.equal(shown.code, 0, shown.stderr)
    assert.match(shown.stdout, /permissioned/)
    for (const w of workers) assert.ok(shown.stdout.includes(w.peerId), `status lists ${w.peerId}`)
    // An open-mode peer that happens to use the permissioned network's id, dialling a member.
    const outsider = new TestPeer(join(root, 'outsider'), [...BASE, '--network-id', admin.networkId, '--bootstrap', w1.tcpAddr])
    started.push(outsider)
    await outsider.start()
    // Within the credentials deadline: it asks a member to run a task, and is refused by name.
    const called = await runCli(['call', fnId, 'double', '21', '--on', w1.peerId, '--data-dir', outsider.dataDir], { timeoutMs: 60_000 })
    assert.notEqual(called.code, 0, called.stdout)
    assert.match(called.stderr, /ERR_NOT_A_MEMBER|not a member|no valid certificate/i, called.stderr)
    // And a function (fetched by blobs): refused too, then refused at the gater.
    const fetched = await runCli(['call', fnId, 'double', '21', '--data-dir', outsider.dataDir], { timeoutMs: 60_000 })
    assert.notEqual(fetched.code, 0, fetched.stdout)
    await waitFor('the member to count and log the refusals', async () => {
      const refused = (await network(w1)).refused
      return (refused['no-certificate'] ?? 0) + (refused['not-a-member'] ?? 0) >= 2 && w1.stderr.includes(outsider.peerId)
    }, 30_000, 200)
    const logged = w1.stderr.split('\n').filter(l => l.includes(outsider.peerId) && l.includes('"level":"warn"'))
    assert.ok(logged.some(l => l.includes('ERR_NOT_A_MEMBER') || l.includes('no-certificate')), logged.join('\n'))
    // Long enough for an announcement or two to have reached it, had any been sent.
    await new Promise(resolve => setTimeout(resolve, 2_000))
    assert.deepEqual(await outsider.peers(), [], 'the outsider learns of no member')
    assert.deepEqual((await outsider.api<{ functions: unknown[] }>('/v1/functions')).functions, [], 'nor any function')
    for (const w of workers) assert.ok(!(await w.peers()).some(p => p.peerId === outsider.peerId), 'no member lists the outsider')
    assert.ok(!(await network(w1)).members.some(m => m.peerId === outsider.peerId))
    await outsider.stop('SIGKILL')
  })

  test('a client member starts a run and is never given a task; an expiring certificate is cut off', async () => {
    const client = await member('client', ['client'], workers[0])
    await allSee([...workers, client])
    const { runId } = await client.api<{ runId: string }>('/v1/runs', { method: 'POST', body: JSON.stringify({ workflow, export: 'layers', args: [10, 1] }) })
    await runEvents(client, runId, 120_000)
    const report = await client.api<RunReport>(`/v1/runs/${runId}`)
    assert.equal(report.status, 'finished', JSON.stringify(report.error))
    assert.equal(report.result, 8 * 45, 'layers(10): 8 × (0 + … + 9)')
    assert.ok(report.tasks.length > 0)
    assert.ok(report.tasks.every(t => t.peer !== client.peerId), `no task ran on the client: ${JSON.stringify(report.tasks.map(t => t.peer))}`)
    assert.ok(!(client.stdout + client.stderr).includes('"msg":"task done"'), 'the client\'s own log shows no task run there')
    assert.ok(workers.some(w => (w.stdout + w.stderr).includes('"msg":"task done"')), 'the workers ran them')
    // Asked directly, the network refuses to give the client a task by name.
    const direct = await runCli(['call', fnId, 'double', '2', '--on', client.peerId, '--data-dir', workers[0].dataDir], { timeoutMs: 60_000 })
    assert.notEqual(direct.code, 0, direct.stdout)
    assert.match(direct.stderr, /ERR_ROLE_REFUSED|not allowed tasks/, direct.stderr)

    // A member whose certificate runs out a few seconds after it joins.
    const brief = await member('brief', ['worker'], workers[0], { notAfter: Date.now() + 8_000 })
    await waitFor('the members to admit it', async () => (await network(workers[0])).members.some(m => m.peerId === brief.peerId), 30_000, 200)
    await waitFor('the members to drop it once expired', async () => {
      for (const w of workers) if ((await network(w)).members.some(m => m.peerId === brief.peerId)) return false
      return true
    }, 30_000, 200)
    assert.ok(workers[0].stderr.includes('member expired'), 'logged')
    await brief.stop()
    // Started again with the expired certificate: a named start error.
    const again = await runCli(['node', 'start', ...brief.args, '--data-dir', brief.dataDir], { timeoutMs: 60_000 })
    assert.notEqual(again.code, 0)
    assert.match(again.stderr, /ERR_CERTIFICATE|expired/, again.stderr)
    assert.match(again.stderr, /rhizome network admit/)
  })

  test('altered, foreign and wrong-network certificates do not start a peer', async () => {
    const dir = join(root, 'tampered')
    const id = await peerIdOf(dir)
    const good = await certify(admin, id, ['worker'])
    const other = await createAdmin()
    const cases: Array<[string, Uint8Array]> = [
      ['wrong signature', encodeCertificate({ ...good, signature: good.signature.map((b, i) => i === 0 ? b ^ 1 : b) })],
      ['altered roles', encodeCertificate({ ...good, roles: ['admin', 'worker'] })],
      ['altered dates', encodeCertificate({ ...good, notAfter: good.notAfter + 86_400_000 })],
      ['another network\'s admin, this network named', encodeCertificate(await certify(other, id, ['worker'], { network: admin.networkId, issuer: other.issuer }))],
      ['another peer', encodeCertificate(await certify(admin, workers[0].peerId, ['worker']))]
    ]
    for (const [what, bytes] of cases) {
      const path = await writeCertificate(root, 'tampered.cert', bytes)
      const result = await runCli(['node', 'start', ...BASE, '--certificate', path, '--data-dir', dir, '--api-port', '0'], { timeoutMs: 60_000 })
      assert.notEqual(result.code, 0, `${what}: refused`)
      assert.match(result.stderr, /ERR_CERTIFICATE/, `${what}: ${result.stderr}`)
    }
    // A --network-id that is not the certificate's: a named config error.
    const path = await writeCertificate(root, 'good.cert', good)
    const mismatch = await runCli(['node', 'start', ...BASE, '--certificate', path, '--network-id', 'rhizome', '--data-dir', dir], { timeoutMs: 60_000 })
    assert.equal(mismatch.code, 2, mismatch.stderr)
    assert.match(mismatch.stderr, /--network-id: is rhizome, but the certificate .* is for network rz-/)
  })

  test('a worker revoked during a 100-task run is cut off within a gossip round, and the run ends right', async () => {
    const client = started.find(p => p.dataDir.endsWith('client'))!
    const victim = workers[2]
    const { runId } = await client.api<{ runId: string }>('/v1/runs', { method: 'POST', body: JSON.stringify({ workflow, export: 'layers', args: [50, 60] }) })
    await waitFor('the victim to run tasks of the run', () => victim.stderr.split('\n').filter(l => l.includes('"msg":"task done"')).length >= 3, 120_000, 50)
    const revokedAt = Date.now()
    const revoked = await runCli(['network', 'revoke', victim.peerId, '--dir', netDir, '--data-dir', workers[0].dataDir, '--json'], { timeoutMs: 60_000 })
    assert.equal(revoked.code, 0, revoked.stderr)
    assert.match(revoked.stdout, /accepted/)
    const others = started.filter(p => p !== victim && p.child?.exitCode === null && p.child.signalCode === null)
    await waitFor('every other peer to enforce the revocation', async () => {
      for (const p of others) {
        const status = await network(p)
        if (!status.revocations.some(r => r.peer === victim.peerId) || status.members.some(m => m.peerId === victim.peerId)) return false
        if ((await p.peers()).some(x => x.peerId === victim.peerId && (x as { connected?: boolean }).connected === true)) return false
      }
      return true
    }, 10_000, 100)
    const enforcedMs = Date.now() - revokedAt
    console.log(`# revocation enforced by ${others.length} peers within ${enforcedMs} ms`)
    await runEvents(client, runId, 240_000)
    const report = await client.api<RunReport>(`/v1/runs/${runId}`)
    assert.equal(report.status, 'finished', JSON.stringify(report.error))
    assert.equal(report.result, 8 * (50 * 49 / 2), 'layers(50): 8 × (0 + … + 49)')
    assert.ok(report.tasks.some(t => t.peer !== victim.peerId))
    for (const p of others) assert.ok(p.stderr.includes('member revoked'), `${p.peerId} logged the revocation`)
    await waitFor('the revoked worker to hear from nobody', async () => (await alive(victim)).length === 0, 30_000, 200)
  })

  test('an admin member admits a worker with --as; revoking the admin cuts that worker off too, and the run completes', async () => {
    const [w1, w2] = workers
    const client = started.find(p => p.dataDir.endsWith('client'))!
    const boss = await member('boss', ['admin'], w1)
    const dir = join(root, 'delegated')
    const path = join(root, 'delegated.cert')
    const admitted = await runCli(['network', 'admit', await peerIdOf(dir), '--as', boss.dataDir, '--admin-certificate', join(root, 'boss.cert'), '--roles', 'worker', '--expires', '1d', '--out', path], { timeoutMs: 60_000 })
    assert.equal(admitted.code, 0, admitted.stderr)
    assert.match(admitted.stdout, new RegExp(`signed by delegated admin ${boss.peerId}`))
    const delegated = new TestPeer(dir, [...BASE, '--certificate', path, '--bootstrap', w1.tcpAddr, '--slots', '2'])
    started.push(delegated)
    await delegated.start()
    const founders = [w1, w2, client]
    await allSee([...founders, boss, delegated])
    // Each checks its certificate on first contact (with the admin's, which came along) and knows who admitted it.
    await waitFor('every founder-admitted peer to hold the delegated certificate', async () => {
      for (const p of founders) if ((await network(p)).members.find(m => m.peerId === delegated.peerId)?.issuedBy !== boss.peerId) return false
      return true
    }, 30_000, 200)
    const shown = await runCli(['network', 'status', '--data-dir', w1.dataDir], { timeoutMs: 60_000 })
    assert.ok(shown.stdout.split('\n').some(l => l.includes(delegated.peerId) && l.includes(`admin ${boss.peerId}`)), shown.stdout)

    // Task durations unlike the last test's: its results are remembered, and these tasks must run.
    const { runId } = await client.api<{ runId: string }>('/v1/runs', { method: 'POST', body: JSON.stringify({ workflow, export: 'layers', args: [50, 70] }) })
    await waitFor('the delegated worker to run tasks of the run', () => delegated.stderr.split('\n').filter(l => l.includes('"msg":"task done"')).length >= 3, 120_000, 50)
    const revoked = await runCli(['network', 'revoke', boss.peerId, '--dir', netDir, '--data-dir', w1.dataDir, '--json'], { timeoutMs: 60_000 })
    assert.equal(revoked.code, 0, revoked.stderr)
    const revokedAt = Date.now()
    await waitFor('every founder-admitted peer to cut off the admin and the worker it admitted', async () => {
      for (const p of founders) {
        const status = await network(p)
        if (status.members.some(m => m.peerId === boss.peerId || m.peerId === delegated.peerId)) return false
        if ((await p.peers()).some(x => (x.peerId === delegated.peerId || x.peerId === boss.peerId) && (x as { connected?: boolean }).connected === true)) return false
      }
      return true
    }, 10_000, 100)
    console.log(`# the admin and the worker it admitted cut off by ${founders.length} peers within ${Date.now() - revokedAt} ms`)
    await runEvents(client, runId, 240_000)
    const report = await client.api<RunReport>(`/v1/runs/${runId}`)
    assert.equal(report.status, 'finished', JSON.stringify(report.error))
    assert.equal(report.result, 8 * (50 * 49 / 2), 'layers(50): 8 × (0 + … + 49)')
    assert.ok(report.tasks.some(t => t.peer === delegated.peerId), 'the delegated worker ran tasks of it')
    for (const p of founders) assert.ok(p.stderr.includes('member revoked'), `${p.peerId} logged the cut`)
    // Its certificate is refused from now on: it hears from nobody.
    await waitFor('the delegated worker to hear from nobody', async () => (await alive(delegated)).length === 0, 30_000, 200)
  })
})
