// The permission scenario: the real permission machine on every peer, members and outsiders of
// every kind, revocations spread by lossy gossip, crashes. Many seeds hold every invariant and
// exercise refusals, revocations and expiry; a seed replays exactly; and the invariants catch a
// machine that lets outsiders in, ignores signatures or revocations, forgets them on restart, or
// refuses a member.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { createPermission } from '../../src/protocol/permission/index.ts'
import type { Permission, PermissionOptions } from '../../src/protocol/permission/index.ts'
import { replayCommand, runPermissionScenario, SCENARIOS } from '../../src/sim/index.ts'
import type { PermissionScenarioResult } from '../../src/sim/index.ts'

/** Seeds 1..SEEDS run here (about a second); `node scripts/sim-seeds.ts --scenario permission --seeds 3000` runs more. */
const SEEDS = 100

function explain (r: PermissionScenarioResult): string {
  return `seed ${r.seed} failed (${r.violationCount} violations) — replay: ${replayCommand(r.seed, 'permission')}\n  ${r.violations.join('\n  ')}`
}

/** The real machine with some of its methods changed. */
function wrapped (change: (real: Permission) => Partial<Permission>): (options: PermissionOptions) => Permission {
  return (options) => {
    const real = createPermission(options)
    const over = change(real)
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
    const broken = wrapped(real => ({ handleRevocation: (r, v, n) => v ? 'accepted' : real.handleRevocation(r, v, n) }))
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

  it('runs from the seed sweep script', () => {
    const command = replayCommand(7, 'permission')
    const out = execFileSync(process.execPath, command.split(' ').slice(1), { encoding: 'utf8', timeout: 60_000, cwd: new URL('../../', import.meta.url) })
    assert.match(out, new RegExp(`trace ${runPermissionScenario({ seed: 7 }).traceHash} `))
    assert.equal(SCENARIOS.permission.runSeed(7).ok, true)
  })
})
