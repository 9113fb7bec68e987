/**
 * The permission service between peers over in-memory streams (test/helpers/memory-net.ts): the
 * real RPC layer and credentials exchange, the real permission machine and SQLite repo; only the
 * host (connection events, hang-ups) and gossipsub (validators, publish) are stand-ins that record
 * what the service asks of them.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { Message } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { createLogger } from '../../src/node/logger.ts'
import { RpcService } from '../../src/net/rpc.ts'
import {
  CREDENTIALS_REVOCATIONS_MAX, GOSSIP_SCORE_PENDING, GOSSIP_SCORE_REFUSED, PermissionService, credentialsProtocol, gatedPubsub, revocationTopic
} from '../../src/net/permission-service.ts'
import type { PermissionHost, PermissionPubsub } from '../../src/net/permission-service.ts'
import { createPermission } from '../../src/protocol/permission/index.ts'
import { createPermissionRepo, openDatabase } from '../../src/store/index.ts'
import type { PermissionRepo } from '../../src/store/index.ts'
import { encodeCertificate } from '../../src/wire/certificate-codec.ts'
import type { Certificate, Role } from '../../src/wire/certificate-codec.ts'
import { issuerPeerId } from '../../src/net/certificate-signatures.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { issuerOf } from '../../src/wire/certificate-codec.ts'
import { MemoryNet, waitFor } from '../helpers/memory-net.ts'
import type { MemoryPeer, Violation } from '../helpers/memory-net.ts'
import { certify, createAdmin, revoke } from '../helpers/certificates.ts'
import type { Admin } from '../helpers/certificates.ts'

interface Side {
  peer: MemoryPeer
  id: string
  service: PermissionService
  rpc: RpcService
  repo: PermissionRepo
  hungUp: string[]
  lost: string[]
  published: Uint8Array[]
  validators: Map<string, (peer: PeerId, message: Message) => Promise<TopicValidatorResult> | TopicValidatorResult>
  violations: Violation[]
  events: EventTarget
}

const dirs: string[] = []
after(async () => { for (const dir of dirs) await rm(dir, { recursive: true, force: true }) })

/** A peer with a permission service whose own certificate is `own(peerId)` (checked or not: the service trusts it). */
async function side (net: MemoryNet, admin: Admin, own: (peerId: string) => Promise<Certificate>, refusedPeersMax?: number, ownIssuer?: Certificate): Promise<Side> {
  const peer = await net.peer()
  const id = peer.peerId.toString()
  const cert = await own(id)
  const permission = createPermission({ mode: 'permissioned', networkId: admin.networkId, issuers: [admin.issuer], issuerPeerId })
  if (ownIssuer !== undefined) permission.handleCertificate(ownIssuer, true, Date.now())
  permission.handleCertificate(cert, true, Date.now())
  const dir = await mkdtemp(join(tmpdir(), 'rhizome-perm-svc-'))
  dirs.push(dir)
  const repo = createPermissionRepo(openDatabase(join(dir, 'db')))
  const events = new EventTarget()
  const s = { peer, id, repo, hungUp: [] as string[], lost: [] as string[], published: [] as Uint8Array[], validators: new Map(), violations: [] as Violation[], events } as unknown as Side
  const host = {
    peerId: peer.peerId,
    addEventListener: events.addEventListener.bind(events),
    removeEventListener: events.removeEventListener.bind(events),
    hangUp: async (target: PeerId) => { s.hungUp.push(target.toString()) },
    getConnections: () => []
  } as unknown as PermissionHost
  const pubsub = {
    topicValidators: s.validators,
    subscribe: () => {},
    unsubscribe: () => {},
    publish: async (_topic: string, data: Uint8Array) => { s.published.push(data); return { recipients: [] } }
  } as unknown as PermissionPubsub
  s.rpc = new RpcService({
    libp2p: peer.libp2p,
    log: createLogger('test', { level: 'silent' }),
    onViolation: (remote, protocol, error) => { s.violations.push({ peer: remote.toString(), protocol, error }) },
    authorize: (remote, protocol) => s.service.authorize(remote, protocol),
    authorizeOutbound: (remote, protocol) => s.service.authorizeOutbound(remote, protocol)
  })
  s.rpc.start()
  s.service = new PermissionService({ permission, repo, rpc: s.rpc, host, pubsub, own: cert, ...(ownIssuer !== undefined ? { ownIssuer } : {}), log: createLogger('test', { level: 'silent' }), now: Date.now, onLost: (p) => { s.lost.push(p) }, refusedPeersMax })
  await s.service.start()
  return s
}

/** `from` opens a connection to `to`: the dialling side starts the exchange. */
function connect (from: Side, to: Side): void {
  from.events.dispatchEvent(new CustomEvent('connection:open', { detail: { remotePeer: to.peer.peerId, direction: 'outbound' } }))
}

async function stopAll (...sides: Side[]): Promise<void> {
  for (const s of sides) { await s.service.stop(); await s.rpc.stop() }
}

describe('PermissionService', () => {
  test('two members exchange certificates on a new connection, and each keeps the other\'s', async () => {
    const admin = await createAdmin()
    const net = new MemoryNet()
    const worker = async (id: string): Promise<Certificate> => await certify(admin, id, ['worker'])
    const [a, b] = [await side(net, admin, worker), await side(net, admin, worker)]
    try {
      assert.equal(a.service.allows(b.id, 'membership'), false)
      assert.equal(a.service.gossipScore(b.id), GOSSIP_SCORE_PENDING)
      connect(a, b)
      await waitFor('both to admit the other', () => a.service.allows(b.id, 'task') && b.service.allows(a.id, 'task'))
      assert.deepEqual(a.repo.listCertificates().map(r => r.peerId).sort(), [a.id, b.id].sort(), 'persisted')
      assert.equal(a.service.gossipScore(b.id), 0)
      assert.deepEqual(a.service.status().members.map(m => m.peerId).sort(), [a.id, b.id].sort())
      assert.deepEqual(a.service.refused, {})
    } finally {
      await stopAll(a, b)
    }
  })

  test('tampered, foreign, expired and misdirected certificates are refused by name, counted, hung up on and gated', async () => {
    const admin = await createAdmin()
    const other = await createAdmin()
    const net = new MemoryNet()
    const b = await side(net, admin, async id => await certify(admin, id, ['worker']))
    const cases: Array<[string, (id: string) => Promise<Certificate>]> = [
      ['bad-signature', async id => { const c = await certify(admin, id, ['worker']); return { ...c, signature: c.signature.map((x, i) => i === 3 ? x ^ 1 : x) } }],
      ['bad-signature', async id => ({ ...await certify(admin, id, ['worker']), roles: ['admin', 'worker'] as Role[] })],
      ['bad-signature', async id => { const c = await certify(admin, id, ['worker']); return { ...c, notAfter: c.notAfter + 1 } }],
      ['wrong-network', async id => await certify(other, id, ['worker'])],
      ['unknown-issuer', async id => await certify(other, id, ['worker'], { network: admin.networkId })],
      ['expired', async id => await certify(admin, id, ['worker'], { notBefore: Date.now() - 10_000, notAfter: Date.now() - 1_000 })],
      ['wrong-peer', async () => await certify(admin, b.id, ['worker'])]
    ]
    try {
      let seen = 0
      for (const [reason, make] of cases) {
        // A peer that speaks the credentials protocol but holds no service of its own: it sends what it is given.
        const a = await net.peer()
        const aId = a.peerId.toString()
        const rpc = net.rpc(a)
        const credentials = { protocol: credentialsProtocol(admin.networkId), frameBytesMax: 64 * 1024, inflightMax: 1, handler: async () => ({}) }
        await rpc.handle(credentials)
        try {
          await assert.rejects(rpc.request(b.peer.peerId, credentials.protocol, { certificate: encodeCertificate(await make(aId)), revocations: [] }), (err: Error & { code?: string }) => {
            assert.equal(err.code, 'ERR_NOT_A_MEMBER', `${reason}: ${err.message}`)
            assert.ok(err.message.includes(reason), `${reason} named: ${err.message}`)
            return true
          })
          seen++
          assert.ok(b.service.refuses(aId), `${reason}: gated`)
          assert.equal(b.service.allows(aId, 'membership'), false)
          assert.equal(b.service.gossipScore(aId), GOSSIP_SCORE_REFUSED)
          await waitFor(`${reason}: hung up`, () => b.hungUp.includes(aId))
        } finally {
          await rpc.stop()
        }
      }
      const refused = b.service.status().refused
      assert.equal(Object.values(refused).reduce((x, y) => x + y, 0) >= seen, true)
      for (const reason of ['bad-signature', 'wrong-network', 'unknown-issuer', 'expired', 'wrong-peer']) assert.ok((refused[reason] ?? 0) >= 1, `${reason} counted: ${JSON.stringify(refused)}`)
      assert.deepEqual(b.repo.listCertificates().map(r => r.peerId), [b.id], 'no refused certificate is kept')
    } finally {
      await stopAll(b)
    }
  })

  test('revocations are taken only with an admitted certificate: an outsider\'s are not even checked', async () => {
    const admin = await createAdmin()
    const net = new MemoryNet()
    const worker = async (id: string): Promise<Certificate> => await certify(admin, id, ['worker'])
    const [b, c] = [await side(net, admin, worker), await side(net, admin, worker)]
    const a = await net.peer()
    const rpc = net.rpc(a)
    const credentials = { protocol: credentialsProtocol(admin.networkId), frameBytesMax: 64 * 1024, inflightMax: 1, handler: async () => ({}) }
    await rpc.handle(credentials)
    try {
      connect(c, b)
      await waitFor('admitted', () => b.service.allows(c.id, 'task'))
      // A valid revocation (the admin signed it), carried by a peer with no certificate: refused
      // with the peer, before any of its revocations costs a signature check.
      const revocation = await revoke(admin, { peer: c.id })
      await assert.rejects(rpc.request(b.peer.peerId, credentials.protocol, { certificate: encodeCertificate(await certify(await createAdmin(), a.peerId.toString(), ['worker'], { network: admin.networkId })), revocations: [revocation] }),
        (err: Error & { code?: string }) => err.code === 'ERR_NOT_A_MEMBER')
      assert.deepEqual(b.service.status().revocations, [], 'nothing an outsider carried was applied')
      assert.ok(b.service.allows(c.id, 'task'), 'the member is still a member')
    } finally {
      await rpc.stop()
      await stopAll(b, c)
    }
  })

  test('a peer without a certificate is refused every request by name, and its handler never runs', async () => {
    const admin = await createAdmin()
    const net = new MemoryNet()
    const b = await side(net, admin, async id => await certify(admin, id, ['worker']))
    const outsider = await net.peer()
    const rpc = net.rpc(outsider)
    let served = 0
    const blob = { protocol: `/rhizome/${admin.networkId}/blob/1.0.0`, frameBytesMax: 1024, inflightMax: 4, handler: async () => { served++; return 'bytes' } }
    await b.rpc.handle(blob)
    await rpc.handle(blob)
    try {
      await assert.rejects(rpc.request(b.peer.peerId, blob.protocol, {}), (err: Error & { code?: string, hint?: string }) => {
        assert.equal(err.code, 'ERR_NOT_A_MEMBER')
        assert.match(err.hint ?? '', /rhizome network admit/)
        return true
      })
      assert.equal(served, 0)
      assert.equal(b.service.refused['not-a-member'], 1)
      // Nor does the member send it anything.
      await assert.rejects(b.rpc.request(outsider.peerId, blob.protocol, {}), /ERR_NOT_A_MEMBER|sends it nothing/)
    } finally {
      await rpc.stop()
      await stopAll(b)
    }
  })

  test('the refused table keeps the newest refusedPeersMax peers: one past it, the oldest may try again', async () => {
    const admin = await createAdmin()
    const net = new MemoryNet()
    const b = await side(net, admin, async id => await certify(admin, id, ['worker']), 2)
    const ids: string[] = []
    try {
      for (let i = 0; i < 3; i++) {
        const a = await net.peer()
        ids.push(a.peerId.toString())
        const rpc = net.rpc(a)
        const credentials = { protocol: credentialsProtocol(admin.networkId), frameBytesMax: 64 * 1024, inflightMax: 1, handler: async () => ({}) }
        await rpc.handle(credentials)
        await assert.rejects(rpc.request(b.peer.peerId, credentials.protocol, { certificate: new Uint8Array([0xa0]), revocations: [] }), (err: Error & { code?: string }) => err.code === 'ERR_NOT_A_MEMBER')
        await rpc.stop()
        assert.ok(b.service.refuses(ids[i]))
      }
      assert.deepEqual(ids.map(id => b.service.refuses(id)), [false, true, true])
      assert.equal(b.service.refused.malformed, 3)
    } finally {
      await stopAll(b)
    }
  })

  test('a client is refused tasks; a worker serves them to a client', async () => {
    const admin = await createAdmin()
    const net = new MemoryNet()
    const client = await side(net, admin, async id => await certify(admin, id, ['client']))
    const worker = await side(net, admin, async id => await certify(admin, id, ['worker']))
    let ran = 0
    const task = { protocol: `/rhizome/${admin.networkId}/task/1.0.0`, frameBytesMax: 1024, inflightMax: 4, handler: async () => { ran++; return 42 } }
    await client.rpc.handle(task)
    await worker.rpc.handle(task)
    try {
      connect(client, worker)
      await waitFor('admitted both ways', () => client.service.allows(worker.id, 'membership') && worker.service.allows(client.id, 'membership'))
      assert.equal(await client.rpc.request(worker.peer.peerId, task.protocol, {}), 42)
      await assert.rejects(worker.rpc.request(client.peer.peerId, task.protocol, {}), (err: Error & { code?: string, retryable?: boolean }) => err.code === 'ERR_ROLE_REFUSED' && err.retryable === true)
      assert.equal(ran, 1)
    } finally {
      await stopAll(client, worker)
    }
  })

  test('a revocation cuts the member off, is kept and gossiped, travels with credentials, and a bad one is refused by name', async () => {
    const admin = await createAdmin()
    const net = new MemoryNet()
    const worker = async (id: string): Promise<Certificate> => await certify(admin, id, ['worker'])
    const [a, b] = [await side(net, admin, worker), await side(net, admin, worker)]
    try {
      connect(a, b)
      await waitFor('admitted', () => a.service.allows(b.id, 'task'))
      const bytes = await revoke(admin, { peer: b.id })
      assert.equal(await a.service.submitRevocation(bytes), 'accepted')
      assert.equal(a.service.allows(b.id, 'task'), false)
      assert.deepEqual(a.lost, [b.id], 'the scheduler is told')
      await waitFor('hung up', () => a.hungUp.includes(b.id))
      assert.ok(a.service.refuses(b.id), 'gated')
      assert.equal(a.published.length, 1, 'gossiped')
      assert.equal(a.repo.listRevocations().length, 1)
      assert.ok(!a.repo.listCertificates().some(r => r.peerId === b.id), 'its certificate is forgotten')
      assert.equal(await a.service.submitRevocation(bytes), 'duplicate')
      await assert.rejects(a.service.submitRevocation(await revoke(await createAdmin(), { peer: b.id })), (err: Error & { code?: string }) => err.code === 'ERR_REVOCATION_REFUSED')
      await assert.rejects(a.service.submitRevocation(new Uint8Array([1, 2, 3])), (err: Error & { code?: string }) => err.code === 'ERR_REVOCATION_REFUSED')
      // A third member that was offline learns it with the credentials of its next connection.
      const c = await side(net, admin, worker)
      try {
        connect(c, a)
        await waitFor('c learns the revocation', () => c.service.status().revocations.some(r => r.peer === b.id))
        // And by gossip: b's own copy validates on the topic once (then it is a duplicate).
        const validate = b.validators.get(revocationTopic(admin.networkId))!
        assert.equal(await validate(a.peer.peerId, { type: 'signed', from: a.peer.peerId, data: bytes } as unknown as Message), TopicValidatorResult.Accept)
        assert.equal(await validate(a.peer.peerId, { type: 'signed', from: a.peer.peerId, data: bytes } as unknown as Message), TopicValidatorResult.Ignore)
      } finally {
        await stopAll(c)
      }
    } finally {
      await stopAll(a, b)
    }
  })

  test('a delegated admin\'s certificate travels with what it signed; revoking the admin cuts those off too', async () => {
    const admin = await createAdmin()
    const net = new MemoryNet()
    // A member admitted as an admin by the founder, which signs with its peer key (it need not be online).
    const adminKey = await generateKeyPair('Ed25519')
    const adminPeer = peerIdFromPrivateKey(adminKey).toString()
    const adminCert = await certify(admin, adminPeer, ['admin'])
    const delegated: Admin = { key: adminKey, issuer: issuerOf(adminKey.publicKey.raw), networkId: admin.networkId }
    const a = await side(net, admin, async id => await certify(admin, id, ['worker']))
    const w = await side(net, admin, async id => await certify(delegated, id, ['worker']), undefined, adminCert)
    // The same certificate without its admin's: a peer that never met the admin cannot check it.
    const bare = await side(net, admin, async id => await certify(delegated, id, ['worker']))
    try {
      connect(bare, a)
      await waitFor('refused without it', () => a.service.refuses(bare.id))
      assert.ok((a.service.status().refused['unknown-issuer'] ?? 0) >= 1)
      // A revocation by the admin, gossiped before this peer holds the admin's certificate: ignored, not penalised.
      const validate = a.validators.get(revocationTopic(admin.networkId))!
      const byAdmin = { type: 'signed', from: w.peer.peerId, data: await revoke(delegated, { serial: 'gone' }) } as unknown as Message
      assert.equal(await validate(w.peer.peerId, byAdmin), TopicValidatorResult.Ignore)
      connect(w, a)
      await waitFor('admitted with its admin\'s certificate', () => a.service.allows(w.id, 'task'))
      assert.equal(await validate(w.peer.peerId, byAdmin), TopicValidatorResult.Accept, 'once the admin is known, its revocation is')
      const view = a.service.status().members.find(m => m.peerId === w.id)
      assert.equal(view?.issuedBy, adminPeer)
      assert.equal(a.service.status().members.find(m => m.peerId === adminPeer)?.issuedBy, undefined, 'the admin\'s own is the founder\'s')
      // The founder revokes the admin: what it signed goes with it.
      assert.equal(await a.service.submitRevocation(await revoke(admin, { peer: adminPeer })), 'accepted')
      assert.equal(a.service.allows(w.id, 'task'), false)
      assert.ok(a.lost.includes(w.id), 'the scheduler is told')
      await waitFor('hung up', () => a.hungUp.includes(w.id))
      assert.ok(!a.repo.listCertificates().some(r => r.peerId === w.id || r.peerId === adminPeer), 'both certificates forgotten')
    } finally {
      await stopAll(a, w, bare)
    }
  })

  test('the founder\'s and a delegated admin\'s revocations of the same serial are stored apart, and each replaced by its own', async () => {
    const admin = await createAdmin()
    const net = new MemoryNet()
    const adminKey = await generateKeyPair('Ed25519')
    const adminCert = await certify(admin, peerIdFromPrivateKey(adminKey).toString(), ['admin'])
    const delegated: Admin = { key: adminKey, issuer: issuerOf(adminKey.publicKey.raw), networkId: admin.networkId }
    const a = await side(net, admin, async id => await certify(delegated, id, ['worker']), undefined, adminCert)
    try {
      const now = Date.now()
      const founders = await revoke(admin, { serial: 'gone' }, now - 1000)
      assert.equal(await a.service.submitRevocation(founders), 'accepted')
      assert.equal(await a.service.submitRevocation(await revoke(delegated, { serial: 'gone' }, now - 2000)), 'accepted')
      assert.equal(await a.service.submitRevocation(await revoke(delegated, { serial: 'gone' }, now)), 'accepted')
      assert.equal(a.service.status().revocations.length, 2)
      const rows = a.repo.listRevocations()
      assert.equal(rows.length, 2, 'one row each: neither overwrites the other')
      assert.ok(rows.some(r => Buffer.from(r.bytes).equals(Buffer.from(founders))), 'the founder\'s is still stored')
      assert.deepEqual(rows.map(r => r.atMs).sort(), [now - 1000, now].sort())
    } finally {
      await stopAll(a)
    }
  })

  test('credentials carrying one revocation past CREDENTIALS_REVOCATIONS_MAX break the protocol', async () => {
    const admin = await createAdmin()
    const net = new MemoryNet()
    const b = await side(net, admin, async id => await certify(admin, id, ['worker']))
    const a = await side(net, admin, async id => await certify(admin, id, ['worker']))
    try {
      const certificate = encodeCertificate(await certify(admin, a.id, ['worker']))
      const rev = await revoke(admin, { serial: 'x' })
      await assert.rejects(a.rpc.request(b.peer.peerId, credentialsProtocol(admin.networkId), { certificate, revocations: Array.from({ length: CREDENTIALS_REVOCATIONS_MAX + 1 }, () => rev) }))
      await waitFor('a violation', () => b.violations.length === 1)
      assert.match(b.violations[0].error.message, new RegExp(`at most ${CREDENTIALS_REVOCATIONS_MAX}`))
      // At the limit it is served.
      await a.rpc.request(b.peer.peerId, credentialsProtocol(admin.networkId), { certificate, revocations: Array.from({ length: CREDENTIALS_REVOCATIONS_MAX }, () => rev) })
      assert.ok(b.service.allows(a.id, 'membership'))
    } finally {
      await stopAll(a, b)
    }
  })

  test('a member whose certificate expires is cut off at its notAfter', async () => {
    const admin = await createAdmin()
    const net = new MemoryNet()
    const a = await side(net, admin, async id => await certify(admin, id, ['worker']))
    const b = await side(net, admin, async id => await certify(admin, id, ['worker'], { notAfter: Date.now() + 1_500 }))
    try {
      connect(b, a)
      await waitFor('admitted', () => a.service.allows(b.id, 'membership'))
      await waitFor('expired', () => a.lost.includes(b.id), 10_000)
      assert.equal(a.service.allows(b.id, 'membership'), false)
      await waitFor('hung up', () => a.hungUp.includes(b.id))
    } finally {
      await stopAll(a, b)
    }
  })

  test('gated gossip: a validator never sees a message a non-member sent', async () => {
    const inner = new Map<string, (peer: PeerId, message: Message) => Promise<TopicValidatorResult> | TopicValidatorResult>()
    const admin = await createAdmin()
    const net = new MemoryNet()
    const [member, outsider] = [await net.peer(), await net.peer()]
    const gated = gatedPubsub({ topicValidators: inner, subscribe: () => {}, unsubscribe: () => {}, publish: async () => ({ recipients: [] }) } as unknown as PermissionPubsub, id => id === member.peerId.toString())
    let seen = 0
    gated.topicValidators.set(`rhizome/${admin.networkId}/membership/1`, () => { seen++; return TopicValidatorResult.Accept })
    const validate = inner.get(`rhizome/${admin.networkId}/membership/1`)!
    const message = (from: PeerId): Message => ({ type: 'signed', from, data: new Uint8Array(), topic: 't', sequenceNumber: 1n, signature: new Uint8Array(), key: from.publicKey! }) as unknown as Message
    assert.equal(await validate(outsider.peerId, message(outsider.peerId)), TopicValidatorResult.Reject)
    assert.equal(seen, 0)
    assert.equal(await validate(member.peerId, message(member.peerId)), TopicValidatorResult.Accept)
    assert.equal(seen, 1)
    // Relayed by a member: its author was checked by the first member it reached.
    assert.equal(await validate(member.peerId, message(outsider.peerId)), TopicValidatorResult.Accept)
    assert.equal(seen, 2)
    gated.topicValidators.delete(`rhizome/${admin.networkId}/membership/1`)
    assert.equal(inner.size, 0)
  })
})
