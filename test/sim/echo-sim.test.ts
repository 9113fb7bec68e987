// The echo scenario: a ping/pong machine on the generic simulator (point-to-point messages,
// crashes, storage). Many seeds hold; a seed replays exactly; and the invariants catch machines
// that forget their numbers across a restart, skip persisting them, lose pongs or answer pings
// they never got.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { createPinger, createRandom, decodePing, echoScenarioFromSeed, encodePing, PINGS_OUTSTANDING_MAX, replayCommand, runEchoScenario } from '../../src/sim/index.ts'
import type { EchoScenarioResult, Pinger, PingerOptions, PingerOutput } from '../../src/sim/index.ts'

/** Seeds 1..SEEDS run here (about a second); `npm run test:sim -- --scenario echo` runs more. */
const SEEDS = 100

function explain (r: EchoScenarioResult): string {
  return `seed ${r.seed} failed (${r.violationCount} violations) — replay: ${replayCommand(r.seed, 'echo')}\n  ${r.violations.join('\n  ')}`
}

/** The real pinger with its outputs filtered or its inputs altered. */
function wrap (options: PingerOptions, change: { output?: (out: PingerOutput) => PingerOutput | undefined, message?: (from: number, bytes: Uint8Array) => boolean }): Pinger {
  const real = createPinger(options)
  return {
    handleMessage: (from, bytes, nowMs) => { if (change.message?.(from, bytes) ?? true) real.handleMessage(from, bytes, nowMs) },
    handleTimeout: (nowMs) => real.handleTimeout(nowMs),
    nextTimeoutMs: () => real.nextTimeoutMs(),
    poll: () => {
      for (let out = real.poll(); out !== undefined; out = real.poll()) {
        const changed = change.output === undefined ? out : change.output(out)
        if (changed !== undefined) return changed
      }
      return undefined
    }
  }
}

const RESTART = { seed: 1, nodes: 3, faults: false, crashes: [{ atMs: 3000, node: 0, restartAtMs: 4000 }] }

describe('echo simulator', () => {
  it(`holds its invariants on ${SEEDS} seeds, and the seeds exercise the faults`, () => {
    const failures: string[] = []
    const total = { afterT: 0, unreachable: 0, lost: 0, duplicated: 0, partitioned: 0, droppedAtDownPeer: 0, resent: 0, gaveUp: 0 }
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = runEchoScenario({ seed })
      if (!r.ok) failures.push(explain(r))
      total.afterT += r.pings.afterT
      total.resent += r.pings.resent
      total.gaveUp += r.pings.gaveUp
      total.unreachable += r.messages.unreachable
      total.lost += r.messages.lost
      total.duplicated += r.messages.duplicated
      total.partitioned += r.messages.partitioned
      total.droppedAtDownPeer += r.messages.droppedAtDownPeer
    }
    assert.deepEqual(failures, [])
    for (const [key, n] of Object.entries(total)) assert.ok(n > 10, `${key}: ${n}`)
  })

  it('replays a seed exactly', () => {
    const a = runEchoScenario({ seed: 42, traceLinesKept: 30 })
    const b = runEchoScenario({ seed: 42, traceLinesKept: 30 })
    assert.deepEqual(a, b)
    assert.notEqual(a.traceHash, runEchoScenario({ seed: 43 }).traceHash)
    assert.ok(a.trace.some(line => /^\d+ start \d+ seq=\d+$/.test(line)))
    assert.ok(a.trace.some(line => /^\d+ ping \d+>\d+ \d+$/.test(line)))
  })

  it('keeps the numbers a peer used across its restart: the restarted life continues from storage', () => {
    const r = runEchoScenario({ ...RESTART, traceLinesKept: 10_000 })
    assert.ok(r.ok, explain(r))
    const restart = r.trace.find(line => /^4000 start 0 /.test(line))
    assert.ok(restart !== undefined)
    const seq = Number(/seq=(\d+)/.exec(restart)?.[1])
    assert.ok(seq > 0, restart)
    // Its first ping after the restart carries that number, not 0.
    const first = r.trace.find(line => /^\d+ ping 0>/.test(line) && Number(line.split(' ')[0]) >= 4000)
    assert.equal(first?.split(' ')[3], String(seq))
  })

  it('catches a machine that forgets its numbers across a restart', () => {
    const r = runEchoScenario(RESTART, { createPinger: (options) => createPinger({ ...options, firstSeq: 0 }) })
    assert.equal(r.ok, false)
    assert.match(r.violations.join('\n'), /reused after a restart/)
  })

  it('catches a machine that sends a number before persisting it', () => {
    const r = runEchoScenario(RESTART, { createPinger: (options) => wrap(options, { output: out => out.type === 'persist' ? undefined : out }) })
    assert.equal(r.ok, false)
    assert.match(r.violations.join('\n'), /before its number was persisted/)
  })

  it('catches a machine that loses pongs (liveness after the faults)', () => {
    const r = runEchoScenario({ seed: 2, nodes: 4, faults: false }, {
      createPinger: (options) => wrap(options, { message: (_from, bytes) => decodePing(bytes)?.type !== 'pong' || decodePing(bytes)!.seq % 5 !== 3 })
    })
    assert.equal(r.ok, false)
    assert.match(r.violations.join('\n'), /not completed within 100 ms/)
  })

  it('catches a machine that answers a ping it never got', () => {
    const r = runEchoScenario({ seed: 2, nodes: 4, faults: false }, {
      createPinger: (options) => wrap(options, {
        output: out => out.type === 'send' && decodePing(out.bytes)?.type === 'pong' ? { ...out, bytes: encodePing('pong', decodePing(out.bytes)!.seq + 1000) } : out
      })
    })
    assert.equal(r.ok, false)
    assert.match(r.violations.join('\n'), /which never pinged it with that number/)
  })

  it('the codec round-trips and refuses anything else; the machine ignores what it refuses', () => {
    assert.deepEqual(decodePing(encodePing('ping', 7)), { type: 'ping', seq: 7 })
    assert.deepEqual(decodePing(encodePing('pong', 2 ** 40)), { type: 'pong', seq: 2 ** 40 })
    assert.equal(decodePing(new Uint8Array(8)), undefined) // one byte short
    assert.equal(decodePing(new Uint8Array(10)), undefined) // one byte long
    const badType = encodePing('ping', 1)
    badType[0] = 3
    assert.equal(decodePing(badType), undefined)
    assert.equal(decodePing(encodePing('ping', -1)), undefined)
    assert.equal(decodePing(encodePing('ping', 1.5)), undefined)
    const pinger = createPinger({ self: 0, peers: 2, random: createRandom(1), firstSeq: 0, intervalMs: 100, timeoutMs: 150, attemptsMax: 1 })
    pinger.handleMessage(1, badType, 0)
    assert.equal(pinger.poll(), undefined)
    pinger.handleMessage(1, encodePing('ping', 9), 0)
    const out = pinger.poll()
    assert.ok(out?.type === 'send' && out.to === 1)
    assert.deepEqual(decodePing(out.bytes), { type: 'pong', seq: 9 })
  })

  it('refuses a scenario whose timeout does not cover a round trip', () => {
    assert.throws(() => runEchoScenario({ ...echoScenarioFromSeed(3), timeoutMs: 100 }), /timeoutMs > 2·delayMaxMs/)
  })
})

describe('sim-seeds replay command', () => {
  it('names the scenario, and running it replays the seed exactly', () => {
    const command = replayCommand(42, 'echo')
    assert.equal(command, 'node scripts/sim-seeds.ts --scenario echo --seed 42')
    const out = execFileSync(process.execPath, command.split(' ').slice(1), { encoding: 'utf8', timeout: 60_000, cwd: new URL('../../', import.meta.url) })
    assert.match(out, new RegExp(`trace ${runEchoScenario({ seed: 42 }).traceHash} `))
  })
})

describe('pinger limits', () => {
  it(`keeps at most PINGS_OUTSTANDING_MAX (${PINGS_OUTSTANDING_MAX}) pings unanswered: the next one waits`, () => {
    const pinger = createPinger({ self: 0, peers: 3, random: createRandom(1), firstSeq: 0, intervalMs: 1, timeoutMs: 1_000_000, attemptsMax: 1 })
    const seqs: number[] = []
    for (let t = 0; t <= PINGS_OUTSTANDING_MAX; t++) {
      pinger.handleTimeout(t)
      for (let out = pinger.poll(); out !== undefined; out = pinger.poll()) {
        if (out.type === 'send') seqs.push(decodePing(out.bytes)!.seq)
      }
    }
    // PINGS_OUTSTANDING_MAX + 1 rounds, one past the limit: the last sends nothing.
    assert.deepEqual(seqs, Array.from({ length: PINGS_OUTSTANDING_MAX }, (_, i) => i))
  })
})
