// A delegated admin's revocations are scoped to the certificates that admin signed: it cannot
// revoke what the founder (or another admin) signed, and it cannot fill the revocation set so the
// founder's revocation of it is refused.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DELEGATED_REVOCATIONS_MAX } from '../../src/protocol/permission/index.ts'
import { DAY, cert, keyOf, machine as fixtureMachine, rev, signed } from '../helpers/permission-fixtures.ts'
import type { Permission, PermissionOutput, Revocation } from '../../src/protocol/permission/index.ts'

function machine (over: { revocations?: Revocation[], revocationsMax?: number } = {}): Permission {
  return fixtureMachine(['A', 'B', 'W', 'X', 'Y'], over)
}

function drain (p: Permission): PermissionOutput[] {
  const out: PermissionOutput[] = []
  for (let o = p.poll(); o !== undefined; o = p.poll()) out.push(o)
  p.checkInvariants()
  return out
}

/** Admins A and B (founder-signed); W signed by A, X signed by B, Y founder-signed. */
function network (over: { revocationsMax?: number } = {}): Permission {
  const p = machine(over)
  for (const c of [cert('A', ['admin']), cert('B', ['admin']), signed('A', 'W', ['worker']), signed('B', 'X', ['worker']), cert('Y', ['worker'])]) {
    assert.equal(p.handleCertificate(c, true, DAY), 'admitted')
  }
  drain(p)
  return p
}

describe('permission: a delegated admin revokes only what it signed', () => {
  it('cannot revoke a founder-signed admin, nor cut off that admin\'s members (regression)', () => {
    const p = network()
    assert.equal(p.handleRevocation(rev({ peer: 'B' }, DAY, keyOf('A')), true, DAY), 'accepted')
    assert.equal(p.handleRevocation(rev({ serial: 's-B' }, DAY, keyOf('A')), true, DAY), 'accepted')
    assert.equal(p.handleRevocation(rev({ peer: 'X' }, DAY, keyOf('A')), true, DAY), 'accepted')
    assert.equal(p.handleRevocation(rev({ peer: 'Y' }, DAY, keyOf('A')), true, DAY), 'accepted')
    assert.deepEqual(drain(p).filter(o => o.type === 'revoked'), [])
    for (const peer of ['B', 'X', 'Y']) assert.equal(p.allows(peer, 'membership', DAY), true, peer)
    assert.equal(p.handleCertificate(cert('Y', ['worker']), true, DAY), 'admitted', 'a founder-signed certificate is not refused by it either')
  })

  it('revokes its own members, by peer and by serial, and its revocation does not touch the same peer under another issuer', () => {
    const p = network()
    assert.equal(p.handleRevocation(rev({ peer: 'W' }, DAY, keyOf('A')), true, DAY), 'accepted')
    assert.deepEqual(drain(p).filter(o => o.type === 'revoked'), [{ type: 'revoked', peerId: 'W' }])
    assert.equal(p.allows('W', 'task', DAY), false)
    assert.equal(p.handleCertificate(signed('A', 'W', ['worker']), true, DAY), 'revoked')
    // The founder (or B) may still admit W: A's revocation names only what A signed.
    assert.equal(p.handleCertificate(signed('B', 'W', ['worker']), true, DAY), 'admitted')
    assert.equal(p.handleRevocation(rev({ serial: 's-B-W' }, DAY, keyOf('A')), true, DAY), 'accepted')
    assert.equal(p.allows('W', 'task', DAY), true)
    assert.equal(p.handleRevocation(rev({ serial: 's-B-W' }, DAY, keyOf('B')), true, DAY), 'accepted')
    assert.equal(p.allows('W', 'task', DAY), false)
    drain(p)
  })

  it('keeps a delegated and a founder revocation of the same target apart: neither replaces the other', () => {
    const p = network()
    assert.equal(p.handleRevocation(rev({ peer: 'W' }, DAY, keyOf('A')), true, DAY), 'accepted')
    assert.equal(p.handleRevocation(rev({ peer: 'W' }, DAY - 5), true, DAY), 'accepted', 'an earlier founder revocation is no duplicate of the admin\'s')
    assert.equal(p.handleRevocation(rev({ peer: 'W' }, DAY - 10, keyOf('A')), true, DAY), 'duplicate')
    assert.equal(p.counts().revocations, 2)
    drain(p)
  })

  it('applies whatever the order: a revocation that arrives before the certificate it names', () => {
    const p = machine()
    p.handleCertificate(cert('A', ['admin']), true, DAY)
    assert.equal(p.handleRevocation(rev({ serial: 's-A-W' }, DAY, keyOf('A')), true, DAY), 'accepted')
    assert.equal(p.handleRevocation(rev({ peer: 'X' }, DAY, keyOf('A')), true, DAY), 'accepted')
    assert.equal(p.handleCertificate(signed('A', 'W', ['worker']), true, DAY), 'revoked')
    assert.equal(p.handleCertificate(signed('A', 'X', ['worker']), true, DAY), 'revoked')
    assert.equal(p.handleCertificate(cert('X', ['worker']), true, DAY), 'admitted', 'founder-signed: not A\'s to revoke')
    drain(p)
    // And after a restart, from storage.
    const again = machine({ revocations: p.revocations() })
    again.handleCertificate(cert('A', ['admin']), true, DAY)
    assert.equal(again.handleCertificate(signed('A', 'W', ['worker']), true, DAY), 'revoked')
    assert.equal(again.handleCertificate(cert('W', ['worker']), true, DAY), 'admitted')
    drain(again)
  })

  it('stays in force after its admin lapses and is renewed: what it revoked does not come back', () => {
    const p = network()
    assert.equal(p.handleRevocation(rev({ peer: 'W' }, DAY, keyOf('A')), true, DAY), 'accepted')
    assert.equal(p.handleRevocation(rev({ peer: 'A' }, DAY), true, DAY), 'accepted')
    assert.equal(p.handleCertificate(cert('A', ['admin'], { serial: 'a2', notBefore: DAY + 1 }), true, DAY + 1), 'admitted')
    assert.equal(p.handleCertificate(signed('A', 'W', ['worker']), true, DAY + 1), 'revoked')
    drain(p)
  })
})

describe('permission: the founder can always revoke', () => {
  it('a full set of an admin\'s revocations of made-up peers does not stop the founder revoking that admin (regression)', () => {
    const p = network({ revocationsMax: 5 })
    for (let i = 0; i < 5; i++) assert.equal(p.handleRevocation(rev({ peer: `fake-${i}` }, DAY, keyOf('A')), true, DAY), 'accepted')
    drain(p)
    assert.equal(p.handleRevocation(rev({ peer: 'A' }, DAY), true, DAY), 'accepted')
    assert.equal(p.allows('A', 'run', DAY), false)
    assert.equal(p.allows('W', 'task', DAY), false, 'and what A signed goes with it')
    drain(p)
  })

  it('evicts the oldest delegated revocation, and refuses full only when every held one is the founder\'s', () => {
    const p = network({ revocationsMax: 3 })
    assert.equal(p.handleRevocation(rev({ peer: 'f-1' }, DAY - 2, keyOf('A')), true, DAY), 'accepted')
    assert.equal(p.handleRevocation(rev({ peer: 'f-0' }, DAY - 3, keyOf('B')), true, DAY), 'accepted')
    assert.equal(p.handleRevocation(rev({ peer: 'g-0' }, DAY), true, DAY), 'accepted')
    drain(p)
    assert.equal(p.handleRevocation(rev({ peer: 'g-1' }, DAY), true, DAY), 'accepted')
    assert.deepEqual(drain(p).filter(o => o.type === 'forget-revocation').map(o => o.type === 'forget-revocation' ? o.revocation.peer : ''), ['f-0'])
    assert.equal(p.handleRevocation(rev({ peer: 'f-2' }, DAY, keyOf('A')), true, DAY), 'full', 'a delegated admin evicts nothing that still matters')
    assert.equal(p.handleRevocation(rev({ peer: 'g-2' }, DAY), true, DAY), 'accepted')
    assert.deepEqual(drain(p).filter(o => o.type === 'forget-revocation').map(o => o.type === 'forget-revocation' ? o.revocation.peer : ''), ['f-1'])
    assert.equal(p.handleRevocation(rev({ peer: 'g-3' }, DAY), true, DAY), 'full')
    assert.deepEqual(p.revocations().map(r => r.peer).sort(), ['g-0', 'g-1', 'g-2'])
    drain(p)
  })

  it('a delegated admin\'s new revocation may take the place of one by an admin no longer held', () => {
    const p = network({ revocationsMax: 3 })
    assert.equal(p.handleRevocation(rev({ peer: 'f-0' }, DAY - 1, keyOf('A')), true, DAY), 'accepted')
    assert.equal(p.handleRevocation(rev({ peer: 'f-1' }, DAY, keyOf('B')), true, DAY), 'accepted')
    assert.equal(p.handleRevocation(rev({ peer: 'B' }, DAY), true, DAY), 'accepted')
    drain(p)
    assert.equal(p.handleRevocation(rev({ peer: 'f-2' }, DAY, keyOf('A')), true, DAY), 'accepted', 'takes the place of B\'s, though A\'s own is older')
    assert.deepEqual(drain(p).filter(o => o.type === 'forget-revocation').map(o => o.type === 'forget-revocation' ? o.revocation.peer : ''), ['f-1'])
    assert.equal(p.handleRevocation(rev({ peer: 'f-3' }, DAY, keyOf('A')), true, DAY), 'full', 'A\'s own and the founder\'s still matter')
    drain(p)
  })
})

describe(`permission: at most ${DELEGATED_REVOCATIONS_MAX} revocations per delegated admin`, () => {
  it(`accepts ${DELEGATED_REVOCATIONS_MAX} by one admin and refuses one more full; another admin and the founder still revoke`, () => {
    const p = network()
    for (let i = 0; i < DELEGATED_REVOCATIONS_MAX; i++) assert.equal(p.handleRevocation(rev({ peer: `fake-${i}` }, DAY, keyOf('A')), true, DAY), 'accepted')
    assert.equal(p.handleRevocation(rev({ peer: 'one-more' }, DAY, keyOf('A')), true, DAY), 'full')
    assert.equal(p.handleRevocation(rev({ peer: 'fake-0' }, DAY + 1, keyOf('A')), true, DAY + 1), 'accepted', 'a newer one of a target it holds replaces it')
    assert.equal(p.handleRevocation(rev({ peer: 'X' }, DAY, keyOf('B')), true, DAY), 'accepted')
    assert.equal(p.handleRevocation(rev({ peer: 'Y' }, DAY), true, DAY), 'accepted')
    assert.equal(p.counts().revocations, DELEGATED_REVOCATIONS_MAX + 2)
    drain(p)
  })

  it('loads at most the cap per admin from storage, newest first, and forgets the rest', () => {
    const stored = Array.from({ length: DELEGATED_REVOCATIONS_MAX + 1 }, (_, i) => rev({ peer: `fake-${i}` }, DAY + i, keyOf('A')))
    const p = machine({ revocations: stored })
    const forgotten = drain(p).filter(o => o.type === 'forget-revocation')
    assert.equal(forgotten.length, 1)
    assert.equal(forgotten[0].type === 'forget-revocation' ? forgotten[0].revocation.peer : '', 'fake-0')
    assert.equal(p.counts().revocations, DELEGATED_REVOCATIONS_MAX)
  })
})
