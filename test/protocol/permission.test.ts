// The permission machine: admission rules, roles, revocation by serial and by peer, expiry as a
// timer, the bounded member and revocation sets, stored state, and open mode.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError } from '../../src/model/errors.ts'
import {
  ACTIONS, CERTIFICATE_VALIDITY_MS_MAX, CLOCK_SKEW_MS, createPermission
} from '../../src/protocol/permission/index.ts'
import type { Action, Certificate, Permission, PermissionOutput, Revocation, Role } from '../../src/protocol/permission/index.ts'

const NET = 'rz-aaaaaaaaaaaaaaaaaaaaaaaaaa'
const ADMIN = 'A'.repeat(43)
const DAY = 86_400_000

function cert (peer: string, roles: Role[], over: Partial<Certificate> = {}): Certificate {
  return { network: NET, peer, roles, notBefore: 0, notAfter: 10 * DAY, serial: `s-${peer}`, issuer: ADMIN, signature: new Uint8Array([1]), ...over }
}

function rev (target: { serial: string } | { peer: string }, atMs: number, over: Partial<Revocation> = {}): Revocation {
  return { network: NET, ...target, atMs, issuer: ADMIN, signature: new Uint8Array([2]), ...over }
}

function machine (over: { certificatesMax?: number, revocationsMax?: number } = {}): Permission {
  return createPermission({ mode: 'permissioned', networkId: NET, issuers: [ADMIN], ...over })
}

function drain (p: Permission): PermissionOutput[] {
  const out: PermissionOutput[] = []
  for (let o = p.poll(); o !== undefined; o = p.poll()) out.push(o)
  p.checkInvariants()
  return out
}

const allowed = (p: Permission, peer: string, now = DAY): Action[] => ACTIONS.filter(a => p.allows(peer, a, now))

describe('permission: admission', () => {
  it('admits a valid certificate and persists it', () => {
    const p = machine()
    assert.equal(p.handleCertificate(cert('W', ['worker']), true, DAY), 'admitted')
    assert.deepEqual(drain(p), [{ type: 'persist-certificate', certificate: cert('W', ['worker']) }])
    assert.deepEqual(p.role('W'), ['worker'])
    assert.deepEqual(p.counts(), { members: 1, revocations: 0 })
  })

  it('refuses a bad signature, another network, an unknown issuer, not yet valid, expired — and admits nothing', () => {
    const p = machine()
    assert.equal(p.handleCertificate(cert('W', ['worker']), false, DAY), 'bad-signature')
    assert.equal(p.handleCertificate(cert('W', ['worker'], { network: 'rz-bbbbbbbbbbbbbbbbbbbbbbbbbb' }), true, DAY), 'wrong-network')
    assert.equal(p.handleCertificate(cert('W', ['worker'], { issuer: 'B'.repeat(43) }), true, DAY), 'unknown-issuer')
    assert.equal(p.handleCertificate(cert('W', ['worker'], { notBefore: 2 * DAY + CLOCK_SKEW_MS + 1, notAfter: 3 * DAY }), true, 2 * DAY), 'not-yet-valid')
    assert.equal(p.handleCertificate(cert('W', ['worker'], { notAfter: 2 * DAY }), true, 2 * DAY), 'expired')
    assert.deepEqual(drain(p), [])
    assert.equal(p.role('W'), undefined)
    assert.deepEqual(allowed(p, 'W'), [])
  })

  it(`accepts a certificate starting within ${CLOCK_SKEW_MS} ms of now (the admin's clock runs ahead)`, () => {
    const p = machine()
    assert.equal(p.handleCertificate(cert('W', ['worker'], { notBefore: DAY + CLOCK_SKEW_MS }), true, DAY), 'admitted')
  })

  it('keeps the newest certificate per peer; an older one changes nothing', () => {
    const p = machine()
    p.handleCertificate(cert('W', ['worker'], { serial: 'old', notBefore: 0 }), true, DAY)
    assert.equal(p.handleCertificate(cert('W', ['client', 'worker'], { serial: 'new', notBefore: 100 }), true, DAY), 'admitted')
    assert.deepEqual(drain(p).map(o => o.type), ['persist-certificate', 'forget-certificate', 'persist-certificate'])
    assert.equal(p.handleCertificate(cert('W', ['worker'], { serial: 'old', notBefore: 0 }), true, DAY), 'admitted')
    assert.deepEqual(drain(p), [])
    assert.deepEqual(p.role('W'), ['client', 'worker'])
    assert.equal(p.certificates()[0].serial, 'new')
  })

  it('refuses a serial another member holds', () => {
    const p = machine()
    p.handleCertificate(cert('A', ['worker'], { serial: 'x' }), true, DAY)
    assert.equal(p.handleCertificate(cert('B', ['worker'], { serial: 'x' }), true, DAY), 'serial-in-use')
    drain(p)
  })

  it('refuses one member past certificatesMax, and admits again once one expires', () => {
    const p = machine({ certificatesMax: 2 })
    p.handleCertificate(cert('A', ['worker'], { notAfter: 2 * DAY }), true, DAY)
    p.handleCertificate(cert('B', ['worker']), true, DAY)
    assert.equal(p.handleCertificate(cert('C', ['worker']), true, DAY), 'full')
    assert.equal(p.handleCertificate(cert('B', ['worker'], { serial: 'b2', notBefore: 1 }), true, DAY), 'admitted', 'a member may renew when full')
    p.handleTimeout(2 * DAY)
    assert.equal(p.handleCertificate(cert('C', ['worker']), true, 2 * DAY), 'admitted')
    drain(p)
  })
})

describe('permission: roles', () => {
  it('a worker may be given tasks but not start runs; a client starts runs and is never given a task', () => {
    const p = machine()
    p.handleCertificate(cert('W', ['worker']), true, DAY)
    p.handleCertificate(cert('C', ['client']), true, DAY)
    p.handleCertificate(cert('X', ['admin']), true, DAY)
    p.handleCertificate(cert('WC', ['client', 'worker']), true, DAY)
    assert.deepEqual(allowed(p, 'W'), ['membership', 'gossip', 'task', 'function', 'blob'])
    assert.deepEqual(allowed(p, 'C'), ['membership', 'gossip', 'function', 'blob', 'run'])
    assert.equal(p.allows('C', 'task', DAY), false)
    assert.deepEqual(allowed(p, 'X'), ['membership', 'gossip', 'function', 'blob', 'run'])
    assert.deepEqual(allowed(p, 'WC'), [...ACTIONS])
    drain(p)
  })

  it('an outsider is allowed nothing', () => {
    const p = machine()
    p.handleCertificate(cert('W', ['worker']), true, DAY)
    assert.deepEqual(allowed(p, 'outsider'), [])
    assert.equal(p.role('outsider'), undefined)
  })

  it('allows checks the time itself: nothing at or after notAfter, even before the timer fires', () => {
    const p = machine()
    p.handleCertificate(cert('W', ['worker'], { notAfter: 2 * DAY }), true, DAY)
    assert.equal(p.allows('W', 'task', 2 * DAY - 1), true)
    assert.equal(p.allows('W', 'task', 2 * DAY), false)
  })
})

describe('permission: expiry', () => {
  it('the timer is the earliest notAfter; at it the peer expires and loses everything', () => {
    const p = machine()
    assert.equal(p.nextTimeoutMs(), undefined)
    p.handleCertificate(cert('A', ['worker'], { notAfter: 3 * DAY }), true, DAY)
    p.handleCertificate(cert('B', ['client'], { notAfter: 2 * DAY }), true, DAY)
    drain(p)
    assert.equal(p.nextTimeoutMs(), 2 * DAY)
    p.handleTimeout(2 * DAY - 1)
    assert.deepEqual(drain(p), [])
    p.handleTimeout(2 * DAY)
    assert.deepEqual(drain(p), [{ type: 'forget-certificate', peerId: 'B', serial: 's-B' }, { type: 'expired', peerId: 'B' }])
    assert.deepEqual(allowed(p, 'B', 2 * DAY), [])
    assert.equal(p.role('B'), undefined)
    assert.equal(p.nextTimeoutMs(), 3 * DAY)
    p.handleTimeout(3 * DAY)
    assert.deepEqual(drain(p).map(o => o.type), ['forget-certificate', 'expired'])
    assert.equal(p.nextTimeoutMs(), undefined)
  })
})

describe('permission: revocation', () => {
  it('by serial: the holder is revoked, loses everything, and its certificate is refused after', () => {
    const p = machine()
    p.handleCertificate(cert('W', ['worker']), true, DAY)
    drain(p)
    assert.equal(p.handleRevocation(rev({ serial: 's-W' }, DAY + 5), true, DAY + 10), 'accepted')
    assert.deepEqual(drain(p), [
      { type: 'persist-revocation', revocation: rev({ serial: 's-W' }, DAY + 5) },
      { type: 'forget-certificate', peerId: 'W', serial: 's-W' },
      { type: 'revoked', peerId: 'W' }
    ])
    assert.deepEqual(allowed(p, 'W'), [])
    assert.equal(p.handleCertificate(cert('W', ['worker']), true, DAY + 20), 'revoked')
    assert.equal(p.handleRevocation(rev({ serial: 's-W' }, DAY + 5), true, DAY + 30), 'duplicate')
    assert.deepEqual(drain(p), [])
  })

  it('by peer: every certificate issued before it is revoked; one issued after re-admits the peer', () => {
    const p = machine()
    p.handleCertificate(cert('W', ['worker']), true, DAY)
    assert.equal(p.handleRevocation(rev({ peer: 'W' }, DAY), true, DAY), 'accepted')
    assert.deepEqual(drain(p).map(o => o.type), ['persist-certificate', 'persist-revocation', 'forget-certificate', 'revoked'])
    assert.equal(p.handleCertificate(cert('W', ['worker'], { serial: 'other', notBefore: DAY }), true, DAY), 'revoked')
    assert.equal(p.handleCertificate(cert('W', ['worker'], { serial: 'later', notBefore: DAY + 1 }), true, DAY + 1), 'admitted')
    assert.deepEqual(p.role('W'), ['worker'])
    assert.equal(p.handleRevocation(rev({ peer: 'W' }, DAY - 1), true, DAY + 1), 'duplicate', 'an earlier revocation of the same peer')
    assert.equal(p.handleRevocation(rev({ peer: 'W' }, DAY + 2), true, DAY + 2), 'accepted', 'a later one replaces it and cuts off the new certificate')
    assert.deepEqual(drain(p).map(o => o.type), ['persist-certificate', 'forget-revocation', 'persist-revocation', 'forget-certificate', 'revoked'])
    assert.equal(p.counts().revocations, 1)
  })

  it('a revocation of a peer that holds nothing is kept and refuses its certificate later', () => {
    const p = machine()
    assert.equal(p.handleRevocation(rev({ peer: 'W' }, DAY), true, DAY), 'accepted')
    assert.deepEqual(drain(p).map(o => o.type), ['persist-revocation'])
    assert.equal(p.handleCertificate(cert('W', ['worker']), true, DAY), 'revoked')
  })

  it('refuses a revocation with a bad signature, of another network, or by an unknown issuer', () => {
    const p = machine()
    p.handleCertificate(cert('W', ['worker']), true, DAY)
    drain(p)
    assert.equal(p.handleRevocation(rev({ peer: 'W' }, DAY), false, DAY), 'bad-signature')
    assert.equal(p.handleRevocation(rev({ peer: 'W' }, DAY, { network: 'rz-bbbbbbbbbbbbbbbbbbbbbbbbbb' }), true, DAY), 'wrong-network')
    assert.equal(p.handleRevocation(rev({ peer: 'W' }, DAY, { issuer: 'B'.repeat(43) }), true, DAY), 'unknown-issuer')
    assert.deepEqual(drain(p), [])
    assert.equal(p.allows('W', 'task', DAY), true)
  })

  it('any configured issuer may revoke a certificate another issuer signed', () => {
    const p = createPermission({ mode: 'permissioned', networkId: NET, issuers: [ADMIN, 'B'.repeat(43)] })
    p.handleCertificate(cert('W', ['worker']), true, DAY)
    assert.equal(p.handleRevocation(rev({ serial: 's-W' }, DAY, { issuer: 'B'.repeat(43) }), true, DAY), 'accepted')
    assert.equal(p.allows('W', 'gossip', DAY), false)
  })

  it('bounded: past revocationsMax the oldest is dropped only once every certificate it could match has expired', () => {
    const p = machine({ revocationsMax: 2 })
    p.handleRevocation(rev({ serial: 'a' }, 0), true, 0)
    p.handleRevocation(rev({ serial: 'b' }, DAY), true, DAY)
    drain(p)
    assert.equal(p.handleRevocation(rev({ serial: 'c' }, 2 * DAY), true, CERTIFICATE_VALIDITY_MS_MAX - 1), 'full', 'a could still match a live certificate')
    assert.equal(p.handleRevocation(rev({ serial: 'c' }, 2 * DAY), true, CERTIFICATE_VALIDITY_MS_MAX), 'accepted')
    assert.deepEqual(drain(p).map(o => o.type === 'forget-revocation' ? `forget ${o.revocation.serial ?? ''}` : o.type), ['forget a', 'persist-revocation'])
    assert.equal(p.handleRevocation(rev({ serial: 'a' }, 0), true, CERTIFICATE_VALIDITY_MS_MAX), 'obsolete', 'a replay of the dropped one')
    assert.deepEqual(p.revocations().map(r => r.serial), ['b', 'c'])
  })
})

describe('permission: stored state', () => {
  it('loads stored certificates and revocations; drops (and forgets) revoked, foreign and surplus ones', () => {
    const p = createPermission({
      mode: 'permissioned',
      networkId: NET,
      issuers: [ADMIN],
      certificates: [cert('W', ['worker']), cert('R', ['worker']), cert('F', ['worker'], { network: 'rz-bbbbbbbbbbbbbbbbbbbbbbbbbb' }), cert('W', ['worker'], { serial: 'older', notBefore: 0 })],
      revocations: [rev({ peer: 'R' }, DAY)]
    })
    assert.deepEqual(drain(p).map(o => o.type === 'forget-certificate' ? `forget ${o.peerId}/${o.serial}` : o.type).sort(), ['forget F/s-F', 'forget R/s-R', 'forget W/older'])
    assert.deepEqual(p.certificates().map(c => c.peer), ['W'])
    assert.equal(p.allows('W', 'task', DAY), true)
    assert.equal(p.allows('R', 'gossip', DAY), false)
    assert.equal(p.nextTimeoutMs(), 10 * DAY)
  })

  it('refuses bad options by name', () => {
    assert.throws(() => createPermission({ mode: 'permissioned', networkId: NET, issuers: [] }), (e: unknown) => e instanceof ConfigError && /issuers/.test(e.message))
    assert.throws(() => createPermission({ mode: 'permissioned', networkId: '', issuers: [ADMIN] }), /networkId/)
    assert.throws(() => machine({ certificatesMax: 0 }), /certificatesMax/)
    assert.throws(() => machine({ revocationsMax: 1.5 }), /revocationsMax/)
    assert.throws(() => createPermission({ mode: 'permissioned', networkId: NET, issuers: [ADMIN], certificates: [cert('W', [])] }), /certificates/)
    assert.throws(() => createPermission({ mode: 'weird' } as never), /mode/)
  })
})

describe('permission: open mode', () => {
  it('allows everything to everyone and holds nothing', () => {
    const p = createPermission({ mode: 'open' })
    assert.equal(p.mode, 'open')
    for (const action of ACTIONS) assert.equal(p.allows('anyone', action, 0), true)
    assert.equal(p.handleCertificate(cert('W', ['client']), false, 0), 'admitted')
    assert.equal(p.handleRevocation(rev({ peer: 'W' }, 0), true, 0), 'duplicate')
    assert.equal(p.allows('W', 'task', 0), true)
    assert.equal(p.nextTimeoutMs(), undefined)
    assert.deepEqual(drain(p), [])
  })
})
