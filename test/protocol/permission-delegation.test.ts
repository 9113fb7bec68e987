// Delegated admins in the permission machine: a member holding a founder-signed `admin`
// certificate signs certificates and revocations with its peer key; depth 1; an admin cut off
// (revoked, expired, demoted) takes every certificate it signed with it; its revocations, which
// match only what it signed, stay.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CLOCK_SKEW_MS, createPermission } from '../../src/protocol/permission/index.ts'
import { DAY, FOUNDER, NET, cert, keyOf, machine as fixtureMachine, rev, signed } from '../helpers/permission-fixtures.ts'
import type { Certificate, Permission, PermissionOutput, Revocation } from '../../src/protocol/permission/index.ts'

function machine (over: { certificates?: Certificate[], revocations?: Revocation[], certificatesMax?: number } = {}): Permission {
  return fixtureMachine(['M', 'N', 'W', 'X', 'Y'], over)
}

function drain (p: Permission): string[] {
  const out: string[] = []
  for (let o: PermissionOutput | undefined = p.poll(); o !== undefined; o = p.poll()) {
    out.push(o.type === 'persist-certificate' ? `persist ${o.certificate.peer}` : o.type === 'forget-certificate' ? `forget ${o.peerId}` : 'peerId' in o ? `${o.type} ${o.peerId}` : o.type)
  }
  p.checkInvariants()
  return out
}

/** A machine holding admin M (founder-signed, role admin) and worker W signed by M. */
function withAdmin (): Permission {
  const p = machine()
  assert.equal(p.handleCertificate(cert('M', ['admin']), true, DAY), 'admitted')
  assert.equal(p.handleCertificate(signed('M', 'W', ['worker']), true, DAY), 'admitted')
  drain(p)
  return p
}

describe('permission: delegated admins sign', () => {
  it('admits a certificate signed by a member holding a founder-signed admin certificate, and says which admin', () => {
    const p = withAdmin()
    assert.equal(p.allows('W', 'task', DAY), true)
    assert.equal(p.issuedBy('W'), 'M')
    assert.equal(p.issuedBy('M'), undefined)
  })

  it('refuses the key of a member without role admin, of no member, and any key when no issuer mapping is given', () => {
    const p = machine()
    p.handleCertificate(cert('N', ['client', 'worker']), true, DAY)
    assert.equal(p.handleCertificate(signed('N', 'W', ['worker']), true, DAY), 'unknown-issuer')
    assert.equal(p.handleCertificate(signed('X', 'W', ['worker']), true, DAY), 'unknown-issuer')
    const bare = createPermission({ mode: 'permissioned', networkId: NET, issuers: [FOUNDER] })
    bare.handleCertificate(cert('M', ['admin']), true, DAY)
    assert.equal(bare.handleCertificate(signed('M', 'W', ['worker']), true, DAY), 'unknown-issuer')
    drain(p)
  })

  it('goes one level deep only: an admin admitted by a delegated admin signs nothing', () => {
    const p = withAdmin()
    assert.equal(p.handleCertificate(signed('M', 'N', ['admin']), true, DAY), 'admitted')
    assert.equal(p.allows('N', 'run', DAY), true)
    assert.equal(p.handleCertificate(signed('N', 'X', ['worker']), true, DAY), 'unknown-issuer')
    assert.equal(p.handleRevocation(rev({ peer: 'W' }, DAY, keyOf('N')), true, DAY), 'unknown-issuer')
    drain(p)
  })

  it('refuses a certificate whose admin is not (yet) held, and admits it once the admin is', () => {
    const p = machine()
    assert.equal(p.handleCertificate(signed('M', 'W', ['worker']), true, DAY), 'unknown-issuer')
    p.handleCertificate(cert('M', ['admin']), true, DAY)
    assert.equal(p.handleCertificate(signed('M', 'W', ['worker']), true, DAY), 'admitted')
    drain(p)
  })

  it('refuses an admin signing its own certificate, and one whose admin is not valid now', () => {
    const p = machine()
    p.handleCertificate(cert('M', ['admin'], { notAfter: 2 * DAY }), true, DAY)
    assert.equal(p.handleCertificate(signed('M', 'M', ['admin', 'worker'], { notBefore: 100 }), true, DAY), 'unknown-issuer')
    assert.equal(p.handleCertificate(signed('M', 'W', ['worker']), true, 2 * DAY), 'unknown-issuer')
    drain(p)
  })

  it('keeps a founder-signed certificate over a newer delegated one: a delegated admin cannot demote another admin', () => {
    const p = withAdmin()
    p.handleCertificate(cert('N', ['admin']), true, DAY)
    p.handleCertificate(signed('N', 'X', ['worker']), true, DAY)
    assert.equal(p.handleCertificate(signed('M', 'N', ['worker'], { notBefore: 500 }), true, DAY), 'admitted')
    assert.equal(p.issuedBy('N'), undefined)
    assert.equal(p.allows('X', 'task', DAY), true)
    // The founder replacing a delegated certificate takes it out of the admin's list.
    assert.equal(p.handleCertificate(cert('W', ['worker'], { serial: 'f-W' }), true, DAY), 'admitted')
    assert.equal(p.issuedBy('W'), undefined)
    drain(p)
  })
})

describe('permission: a delegated admin cut off takes what it signed', () => {
  it('revoking the admin drops every certificate it signed: forget and revoked for each', () => {
    const p = withAdmin()
    p.handleCertificate(signed('M', 'X', ['client']), true, DAY)
    p.handleCertificate(cert('Y', ['worker']), true, DAY)
    drain(p)
    assert.equal(p.handleRevocation(rev({ peer: 'M' }, DAY), true, DAY), 'accepted')
    const out = drain(p)
    for (const peer of ['M', 'W', 'X']) {
      assert.ok(out.includes(`forget ${peer}`), `forget ${peer}`)
      assert.ok(out.includes(`revoked ${peer}`), `revoked ${peer}`)
    }
    assert.ok(!out.some(o => o.endsWith(' Y')))
    assert.deepEqual(p.certificates().map(c => c.peer), ['Y'])
    // What it signed is refused from now on; its certificates come back only with a new admin.
    assert.equal(p.handleCertificate(signed('M', 'W', ['worker']), true, DAY), 'unknown-issuer')
  })

  it('an admin that expires takes its dependents with it, and a late timer lets none of them through', () => {
    const p = machine()
    p.handleCertificate(cert('M', ['admin'], { notAfter: 2 * DAY }), true, DAY)
    p.handleCertificate(signed('M', 'W', ['worker']), true, DAY)
    drain(p)
    assert.equal(p.allows('W', 'task', 2 * DAY), false, 'before the timer fires')
    assert.equal(p.nextTimeoutMs(), 2 * DAY)
    p.handleTimeout(2 * DAY)
    assert.deepEqual(drain(p).sort(), ['expired M', 'forget M', 'forget W', 'revoked W'])
    assert.deepEqual(p.counts(), { members: 0, revocations: 0 })
  })

  it('an admin renewed as an admin keeps what it signed; renewed without role admin, it does not', () => {
    const p = withAdmin()
    assert.equal(p.handleCertificate(cert('M', ['admin', 'worker'], { serial: 'm2', notBefore: 100 }), true, DAY), 'admitted')
    assert.deepEqual(drain(p), ['forget M', 'persist M'])
    assert.equal(p.issuedBy('W'), 'M')
    assert.equal(p.handleCertificate(cert('M', ['worker'], { serial: 'm3', notBefore: 200 }), true, DAY), 'admitted')
    assert.deepEqual(drain(p), ['forget M', 'forget W', 'revoked W', 'persist M'])
    assert.equal(p.allows('W', 'gossip', DAY), false)
  })
})

describe('permission: delegated revocations', () => {
  it('accepts an admin\'s revocation of what it signed, which stays in force after the admin is revoked and re-admitted', () => {
    const p = withAdmin()
    p.handleCertificate(cert('Y', ['worker']), true, DAY)
    assert.equal(p.handleRevocation(rev({ peer: 'W' }, DAY, keyOf('M')), true, DAY), 'accepted')
    assert.equal(p.allows('W', 'task', DAY), false)
    assert.equal(p.handleRevocation(rev({ peer: 'M' }, DAY), true, DAY), 'accepted')
    assert.equal(p.counts().revocations, 2)
    // Re-admitted by the founder with a certificate issued after its revocation, M's own revocation still holds.
    assert.equal(p.handleCertificate(cert('M', ['admin'], { serial: 'm2', notBefore: DAY + 1 }), true, DAY + 1), 'admitted')
    assert.equal(p.handleCertificate(signed('M', 'W', ['worker']), true, DAY + 1), 'revoked')
    drain(p)
    // Reloaded from storage, it is still enforced.
    const again = machine({ revocations: p.revocations(), certificates: p.certificates() })
    assert.equal(again.counts().revocations, 2)
    assert.equal(again.handleCertificate(signed('M', 'W', ['worker']), true, DAY + 1), 'revoked')
  })

  it(`accepts a delegated revocation dated up to ${CLOCK_SKEW_MS} ms ahead, and refuses one ms more`, () => {
    const p = withAdmin()
    assert.equal(p.handleRevocation(rev({ serial: 'a' }, DAY + CLOCK_SKEW_MS, keyOf('M')), true, DAY), 'accepted')
    assert.equal(p.handleRevocation(rev({ serial: 'b' }, DAY + CLOCK_SKEW_MS + 1, keyOf('M')), true, DAY), 'not-yet-valid')
    // The founder may date one ahead (its own rule of old).
    assert.equal(p.handleRevocation(rev({ serial: 'c' }, DAY + CLOCK_SKEW_MS + 1), true, DAY), 'accepted')
    drain(p)
  })

  it('refuses a revocation by a member that is not an admin', () => {
    const p = withAdmin()
    assert.equal(p.handleRevocation(rev({ peer: 'M' }, DAY, keyOf('W')), true, DAY), 'unknown-issuer')
    assert.equal(p.allows('M', 'run', DAY), true)
  })
})

describe('permission: delegated certificates in storage', () => {
  it('loads an admin before what it signed whatever the stored order, and forgets what has no admin', () => {
    const stored = [signed('M', 'W', ['worker']), signed('N', 'X', ['worker']), cert('M', ['admin'], { notBefore: 5 })]
    const p = machine({ certificates: stored })
    assert.deepEqual(drain(p), ['forget X'])
    assert.deepEqual(p.certificates().map(c => c.peer).sort(), ['M', 'W'])
    assert.equal(p.issuedBy('W'), 'M')
    assert.equal(p.allows('W', 'task', DAY), true)
  })

  it('counts delegated members against certificatesMax: one past it is refused full', () => {
    const p = machine({ certificatesMax: 2 })
    p.handleCertificate(cert('M', ['admin']), true, DAY)
    assert.equal(p.handleCertificate(signed('M', 'W', ['worker']), true, DAY), 'admitted')
    assert.equal(p.handleCertificate(signed('M', 'X', ['worker']), true, DAY), 'full')
    drain(p)
  })
})
