import { describe, test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createSandbox, DEFAULT_LIMITS } from '../../src/sandbox/index.ts'
import type { SandboxCall } from '../../src/sandbox/index.ts'
import { HOSTILE_FIXTURES, NORMAL_FUNCTION } from '../fixtures/functions/hostile.ts'
import type { HostileFixture } from '../fixtures/functions/hostile.ts'

const encode = (source: string): Uint8Array => new TextEncoder().encode(source)

function fixtureCall (fixture: HostileFixture, index: number, exportName = fixture.exportName, args = fixture.args): SandboxCall {
  return {
    functionId: `hostile-${index}`,
    kind: fixture.kind,
    code: fixture.kind === 'js' ? encode(fixture.source ?? '') : fixture.wasm ?? new Uint8Array(0),
    exportName,
    args,
    seed: new Uint8Array([index]),
    limits: { ...DEFAULT_LIMITS, ...fixture.limits }
  }
}

const normalCall: SandboxCall = {
  functionId: 'hostile-normal',
  kind: 'js',
  code: encode(NORMAL_FUNCTION.source),
  exportName: NORMAL_FUNCTION.exportName,
  args: NORMAL_FUNCTION.args,
  seed: new Uint8Array([0]),
  limits: DEFAULT_LIMITS
}

describe('hostile functions', () => {
  const sandbox = createSandbox()
  after(async () => { await sandbox.close() })

  test('there are at least 25 hostile JS functions and some hostile wasm modules', () => {
    assert.ok(HOSTILE_FIXTURES.filter(f => f.kind === 'js').length >= 25)
    assert.ok(HOSTILE_FIXTURES.some(f => f.kind === 'wasm'))
    assert.equal(new Set(HOSTILE_FIXTURES.map(f => f.name)).size, HOSTILE_FIXTURES.length)
  })

  HOSTILE_FIXTURES.forEach((fixture, index) => {
    test(`${fixture.kind}: ${fixture.name}`, async () => {
      const run = sandbox.run(fixtureCall(fixture, index))
      if (fixture.expectedError !== undefined) {
        await assert.rejects(run, (err: Error & { thrownName?: string, toData?: () => unknown }) => {
          assert.equal(err.name, fixture.expectedError, `${err.name}: ${err.message}`)
          if (fixture.expectedThrownName !== undefined) assert.equal(err.thrownName, fixture.expectedThrownName, err.message)
          assert.equal(typeof err.toData, 'function')
          return true
        })
      } else {
        assert.deepEqual((await run).value, fixture.expectedValue)
      }
      if (fixture.followUp !== undefined) {
        const followUp = await sandbox.run(fixtureCall(fixture, index, fixture.followUp.exportName, fixture.followUp.args))
        assert.equal(followUp.warm, true)
        assert.deepEqual(followUp.value, fixture.followUp.expectedValue)
      }
      assert.deepEqual((await sandbox.run(normalCall)).value, NORMAL_FUNCTION.expectedValue)
    })
  })

  test('after the whole suite no call is left running', () => {
    assert.equal(sandbox.stats().callsActive, 0)
  })
})
