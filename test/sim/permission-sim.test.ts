// The permission scenario: the real permission machine on every peer, members and outsiders of
// every kind, revocations spread by lossy gossip, crashes. Many seeds hold every invariant and
// exercise refusals, revocations and expiry; a seed replays exactly; and the invariants catch a
// machine that lets outsiders in, ignores signatures or revocations, forgets them on restart, or
// refuses a member; and, with delegated admins, one that ignores the cascade when an admin is cut
// off, honours a depth-2 signature, lifts a cut-off admin's revocations, lets a delegated admin revoke
// what it did not sign, or refuses the members a delegated admin admitted.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { ACTIONS_BY_ROLE, createPermission } from '../../src/protocol/permission/index.ts'
import type { Action, Certificate, Permission, PermissionOptions, Revocation } from '../../src/protocol/permission/index.ts'
import { replayCommand, runPermissionScenario, SCENARIOS } from '../../src/sim/index.ts'
import type { PermissionScenarioResult } from '../../src/sim/index.ts'

/** Seeds 1..SEEDS run here (about a second); `node scripts/sim-seeds.ts --scenario permission --seeds 3000` runs more. */
const SEEDS = 100

function explain (r: PermissionScenarioResult): string {
  return `seed ${r.seed} failed (${r.violationCount} violations) — replay: ${replayCommand(r.seed, 'permission')}\n  ${r.violations.join('\n  ')}`
}

/** The real machine with some of its methods changed. */
function wrapped (change: (real: Permission, options: PermissionOptions) => Partial<Permission>): (options: PermissionOptions) => Permission {
  return (options) => {
    const real = createPermission(options)
    const over = change(real, options)
    return {
      mode: real.mode,
      handleCertificate: over.handleCertificate ?? ((c, v, n) => real.handleCertificate(c, v, n)),
      handleRevocation: over.handleRevocation ?? ((r, v, n) => real.handleRevocation(r, v, n)),
      allows: over.allows ?? ((p, a, n) => real.allows(p, a, n)),
      role: (p) => real.role(p),
      issuedBy: (p) => real.issuedBy(p),
      handleTimeout: (n) => { real.handleTimeout(n) },
      nextTimeoutMs: () => real.nextTimeoutMs(),
      poll: () => real.poll(),
      certificates: () => real.certificates(),
      revocations: over.revocations ?? (() => real.revocations()),
      counts: () => real.counts(),
      checkInvariants: () => { real.checkInvariants() }
    }
  }
}

const founding = (options: PermissionOptions): readonly string[] => options.mode === 'permissioned' ? options.issuers : []
const keyPeer = (options: PermissionOptions, issuer: string): string | undefined => options.mode === 'permissioned' ? options.issuerPeerId?.(issuer) : undefined
const grants = (cert: Certificate | undefined, action: Action, now: number): boolean => cert !== undefined && now < cert.notAfter && cert.roles.some(r => ACTIONS_BY_ROLE[r].includes(action))
const accepted = (result: string): boolean => result === 'accepted' || result === 'duplicate'

/** Keeps allowing the peers a delegated admin admitted after the admin is cut off (unless revoked by name). */
const ignoresCascade = wrapped(real => {
  const delegated = new Map<string, Certificate>()
  const named = new Set<string>()
  return {
    handleCertificate: (c, v, n) => {
      const result = real.handleCertificate(c, v, n)
      if (result === 'admitted' && real.issuedBy(c.peer) !== undefined) delegated.set(c.peer, c)
      return result
    },
    handleRevocation: (r, v, n) => {
      const result = real.handleRevocation(r, v, n)
      if (accepted(result)) named.add(r.peer ?? r.serial ?? '')
      return result
    },
    allows: (p, a, n) => {
      const cert = delegated.get(p)
      return real.allows(p, a, n) || (cert !== undefined && !named.has(p) && !named.has(cert.serial) && grants(cert, a, n))
    }
  }
})

/** Takes a signature by any admin it holds, delegated ones too: depth 2. */
const honoursDepth2 = wrapped((real, options) => {
  const extra = new Map<string, Certificate>()
  const admin = (issuer: string): boolean => real.role(keyPeer(options, issuer) ?? '')?.includes('admin') === true
  return {
    handleCertificate: (c, v, n) => {
      const result = real.handleCertificate(c, v, n)
      if (result !== 'unknown-issuer' || !v || !admin(c.issuer)) return result
      extra.set(c.peer, c)
      return 'admitted'
    },
    handleRevocation: (r, v, n) => {
      const result = real.handleRevocation(r, v, n)
      return result === 'unknown-issuer' && v && admin(r.issuer) ? 'accepted' : result
    },
    allows: (p, a, n) => real.allows(p, a, n) || grants(extra.get(p), a, n)
  }
})

/** Drops a delegated admin's revocations once the admin is cut off: the members it signed and
 *  revoked are let back in (as if its revocations stopped mattering with it). */
const liftsCutOffRevocations = wrapped((real, options) => {
  const byAdmin = new Map<string, Revocation[]>()
  const seen = new Map<string, Certificate>()
  const lifted = (peer: string, action: Action, now: number): boolean => {
    const cert = seen.get(peer)
    const admin = cert === undefined ? undefined : keyPeer(options, cert.issuer)
    if (cert === undefined || admin === undefined || real.role(admin)?.includes('admin') === true) return false
    const revoked = (byAdmin.get(admin) ?? []).some(r => r.peer === peer || r.serial === cert.serial)
    return revoked && grants(cert, action, now)
  }
  return {
    handleCertificate: (c, v, n) => {
      if (v) seen.set(c.peer, c)
      return real.handleCertificate(c, v, n)
    },
    handleRevocation: (r, v, n) => {
      const result = real.handleRevocation(r, v, n)
      const admin = keyPeer(options, r.issuer)
      if (accepted(result) && admin !== undefined) byAdmin.set(admin, [...(byAdmin.get(admin) ?? []), r])
      return result
    },
    allows: (p, a, n) => real.allows(p, a, n) || lifted(p, a, n)
  }
})

/** Lets a delegated admin's revocation take away what it did not sign (the founder's members, another
 *  admin's): it also applies it as if the founder had signed it (and never gossips that copy). */
const copies = new Set<Uint8Array>() // across restarts: the copies are stored with the rest
const delegatedRevokesAny = wrapped((real, options) => {
  const founder = (issuer: string): boolean => founding(options).includes(issuer)
  return {
    handleRevocation: (r, v, n) => {
      const result = real.handleRevocation(r, v, n)
      if (result !== 'accepted' || founder(r.issuer)) return result
      copies.add(r.signature)
      real.handleRevocation({ ...r, issuer: founding(options)[0] }, v, n)
      return result
    },
    revocations: () => real.revocations().filter(r => !(founder(r.issuer) && copies.has(r.signature)))
  }
})

/** Refuses every certificate a delegated admin signed. */
const refusesDelegated = wrapped((real, options) => ({
  handleCertificate: (c, v, n) => founding(options).includes(c.issuer) ? real.handleCertificate(c, v, n) : 'unknown-issuer'
}))

/** The first violation a broken machine causes within the first `seeds` seeds. */
function firstViolation (permission: (options: PermissionOptions) => Permission, seeds = 30): string {
  for (let seed = 1; seed <= seeds; seed++) {
    const r = runPermissionScenario({ seed }, { permission })
    if (!r.ok) return r.violations[0]
  }
  return ''
}

describe('permission simulator', () => {
  it(`holds its invariants on ${SEEDS} seeds, and the seeds exercise every kind of outsider, revocations, expiry and crashes`, () => {
    const failures: string[] = []
    const total: Record<string, number> = { lost: 0 }
    const kinds: Record<string, number> = {}
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = runPermissionScenario({ seed })
      if (!r.ok) failures.push(explain(r))
      for (const [key, n] of Object.entries(r.counts)) total[key] = (total[key] ?? 0) + n
      total.lost += r.messages.lost
      for (const [kind, n] of Object.entries(r.outsiders)) kinds[kind] = (kinds[kind] ?? 0) + n
    }
    assert.deepEqual(failures, [])
    for (const [key, n] of Object.entries(total)) assert.ok(n >= 20, `${key}: ${n}`)
    assert.equal(Object.keys(total).length, 16)
    for (const kind of ['none', 'tampered', 'wrong-network', 'expired', 'stolen', 'not-admin', 'self-signed', 'depth-2']) assert.ok((kinds[kind] ?? 0) >= 10, `${kind}: ${kinds[kind]}`)
  })

  it('replays a seed exactly', () => {
    const a = runPermissionScenario({ seed: 42, traceLinesKept: 30 })
    const b = runPermissionScenario({ seed: 42, traceLinesKept: 30 })
    assert.deepEqual(a, b)
    assert.equal(a.trace.length, 30)
  })

  it('catches a machine that allows everyone', () => {
    assert.match(firstViolation(wrapped(() => ({ allows: () => true }))), /gave (task|function|blob) to p\d+, an outsider/)
  })

  it('catches a machine that takes any signature', () => {
    assert.match(firstViolation(wrapped(real => ({ handleCertificate: (c, _v, n) => real.handleCertificate(c, true, n), handleRevocation: (r, _v, n) => real.handleRevocation(r, true, n) }))), /admitted p\d+, an outsider \(tampered\)|took a forged revocation/)
  })

  it('catches a machine that ignores revocations', () => {
    // Says 'accepted' to every founder's revocation and applies none (a depth-2 one it still refuses).
    const broken = wrapped((real, options) => ({ handleRevocation: (r, v, n) => v && founding(options).includes(r.issuer) ? 'accepted' : real.handleRevocation(r, v, n) }))
    assert.match(firstViolation(broken), /gave (task|function|blob) to p\d+ after its revocation reached it/)
  })

  it('catches a machine that forgets its revocations on restart', () => {
    const broken = (options: PermissionOptions): Permission => createPermission(options.mode === 'permissioned' ? { ...options, revocations: [] } : options)
    assert.match(firstViolation(broken), /after its revocation reached it/)
  })

  it('catches a machine that refuses a member', () => {
    assert.match(firstViolation(wrapped(real => ({ allows: (p, a, n) => a === 'task' ? false : real.allows(p, a, n) }))), /refused task to member p\d+/)
  })

  it('catches a machine that never expires anyone', () => {
    assert.match(firstViolation(wrapped(real => ({ allows: (p, a) => real.allows(p, a, 0) }))), /whose certificate expired at/)
  })

  it('catches a machine that ignores the cascade when a delegated admin is cut off', () => {
    assert.match(firstViolation(ignoresCascade), /gave (task|function|blob) to p\d+, whose certificate's admin p\d+ it knows is cut off/)
  })

  it('catches a machine that honours a depth-2 certificate or revocation', () => {
    assert.match(firstViolation(honoursDepth2), /honoured a depth-2 (certificate|revocation)/)
  })

  it('catches a machine that lifts a delegated admin\'s revocations once the admin is cut off', () => {
    assert.match(firstViolation(liftsCutOffRevocations, 100), /after its revocation reached it \(by admin p\d+, since cut off\)/)
  })

  it('catches a machine that lets a delegated admin revoke what it did not sign', () => {
    assert.match(firstViolation(delegatedRevokesAny, 100), /refused (task|function|blob|membership|gossip|run) to member p\d+|refused member p\d+'s certificate: revoked|does not allow member p\d+ at the end/)
  })

  it('catches a machine that refuses the members a delegated admin admitted', () => {
    assert.match(firstViolation(refusesDelegated), /refused member p\d+'s certificate: unknown-issuer/)
  })

  it('runs from the seed sweep script', () => {
    const command = replayCommand(7, 'permission')
    const out = execFileSync(process.execPath, command.split(' ').slice(1), { encoding: 'utf8', timeout: 60_000, cwd: new URL('../../', import.meta.url) })
    assert.match(out, new RegExp(`trace ${runPermissionScenario({ seed: 7 }).traceHash} `))
    assert.equal(SCENARIOS.permission.runSeed(7).ok, true)
  })
})
