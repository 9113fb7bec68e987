// The verify scenario: the real verification and reputation machines against honest and Byzantine
// workers on a lossy network. Many seeds hold every invariant and exercise lies, proofs, spot
// checks and re-checks; a seed replays exactly; and the invariants catch a verifier that accepts
// below its quorum or convicts an honest peer.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { createVerifier } from '../../src/protocol/verify/index.ts'
import type { Verifier, VerifierOptions, VerifierOutput } from '../../src/protocol/verify/index.ts'
import { replayCommand, runVerifyScenario, SCENARIOS } from '../../src/sim/index.ts'
import type { VerifyScenarioResult } from '../../src/sim/index.ts'

/** Seeds 1..SEEDS run here (about a second); `node scripts/sim-seeds.ts --scenario verify --seeds 1000` runs more. */
const SEEDS = 100

function explain (r: VerifyScenarioResult): string {
  return `seed ${r.seed} failed (${r.violationCount} violations) — replay: ${replayCommand(r.seed, 'verify')}\n  ${r.violations.join('\n  ')}`
}

/** The real verifier with its outputs changed. */
function wrapped (change: (out: VerifierOutput) => VerifierOutput): (options: VerifierOptions) => Verifier {
  return (options) => {
    const real = createVerifier(options)
    return {
      handleSubmit: (t, p, n) => real.handleSubmit(t, p, n),
      handlePlaced: (t, r, p, n) => { real.handlePlaced(t, r, p, n) },
      handleResult: (t, r, a, n) => real.handleResult(t, r, a, n),
      handleFailed: (t, r, f, n) => real.handleFailed(t, r, f, n),
      handleLiar: (p, n) => { real.handleLiar(p, n) },
      handleCancel: (t, n) => { real.handleCancel(t, n) },
      handleTimeout: (n) => { real.handleTimeout(n) },
      nextTimeoutMs: () => real.nextTimeoutMs(),
      counts: () => real.counts(),
      checkInvariants: () => { real.checkInvariants() },
      poll: () => {
        const out = real.poll()
        return out === undefined ? undefined : change(out)
      }
    }
  }
}

describe('verify simulator', () => {
  it(`holds its invariants on ${SEEDS} seeds, and the seeds exercise lies, proofs and checks`, () => {
    const failures: string[] = []
    const total = { lies: 0, proofs: 0, bans: 0, spotChecks: 0, reopened: 0, confirmed: 0, disproven: 0, quorumNotReached: 0, wrongSoloAccepted: 0, acceptedSolo: 0, retried: 0, lost: 0, colluding: 0 }
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = runVerifyScenario({ seed })
      if (!r.ok) failures.push(explain(r))
      for (const key of Object.keys(total) as Array<keyof typeof total>) if (key in r.counts) total[key] += r.counts[key as keyof typeof r.counts]
      total.lost += r.messages.lost
      if (r.collude && r.liars > 0) total.colluding += 1
    }
    assert.deepEqual(failures, [])
    for (const [key, n] of Object.entries(total)) assert.ok(n >= 5, `${key}: ${n}`)
  })

  it('seed 501: a result carried by two colluding liars after an undecided check convicts no honest peer', () => {
    // Before the fix, a late honest answer against that result was a "proof" with the two liars as witnesses.
    const r = runVerifyScenario({ seed: 501 })
    assert.ok(r.collude && r.liars === 2)
    assert.equal(r.ok, true, explain(r))
  })

  it('replays a seed exactly', () => {
    const a = runVerifyScenario({ seed: 42, traceLinesKept: 30 })
    const b = runVerifyScenario({ seed: 42, traceLinesKept: 30 })
    assert.deepEqual(a, b)
    assert.equal(a.trace.length, 30)
  })

  it('catches a verifier that accepts below its quorum', () => {
    const broken = wrapped(out => out.type === 'accepted' && !out.solo ? { ...out, attestations: out.attestations.slice(0, 1) } : out)
    const r = runVerifyScenario({ seed: 3 }, { verifier: broken })
    assert.equal(r.ok, false)
    assert.match(r.violations.join('\n'), /accepted on 1 attestations, quorum/)
  })

  it('catches a verifier that convicts a witness instead of the liar', () => {
    const broken = wrapped(out => out.type === 'proof' ? { type: 'proof', proof: { ...out.proof, liar: out.proof.witnesses[0], witnesses: [out.proof.liar, ...out.proof.witnesses.slice(1)] } } : out)
    let caught = false
    for (let seed = 1; seed <= 20 && !caught; seed++) caught = runVerifyScenario({ seed }, { verifier: broken }).violations.some(v => /proven a liar on .* but it answered ok:/.test(v))
    assert.ok(caught)
  })

  it('runs from the seed sweep script', () => {
    const command = replayCommand(7, 'verify')
    const out = execFileSync(process.execPath, command.split(' ').slice(1), { encoding: 'utf8', timeout: 60_000, cwd: new URL('../../', import.meta.url) })
    assert.match(out, new RegExp(`trace ${runVerifyScenario({ seed: 7 }).traceHash} `))
    assert.equal(SCENARIOS.verify.runSeed(7).ok, true)
  })
})
