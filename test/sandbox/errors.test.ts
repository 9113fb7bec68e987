import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { failureFromData, RhizomeError } from '../../src/model/errors.ts'
import * as errors from '../../src/sandbox/errors.ts'

const samples: Array<[RhizomeError, boolean]> = [
  [new errors.SandboxMemoryLimitError(8 * 1024 * 1024), false],
  [new errors.SandboxTimeLimitError(100), true],
  [new errors.SandboxOutputLimitError(2000, 1000), false],
  [new errors.SandboxStackOverflowError(), false],
  [new errors.FunctionThrewError('TypeError', 'bad'), false],
  [new errors.UnsupportedValueError('result is a function'), false],
  [new errors.ExportNotFoundError('E', ['B']), false],
  [new errors.ForbiddenImportError('node:fs', 'lib/x.ts:1:1'), false],
  [new errors.NondeterminismError('Date.now()'), false],
  [new errors.WasmTrapError('unreachable'), false],
  [new errors.WasmModuleError('bad module'), false],
  [new errors.SandboxAbortedError(), true],
  [new errors.SandboxClosedError(), true],
  [new errors.SandboxBusyError(8), true],
  [new errors.SandboxCrashedError('gone'), true]
]

describe('sandbox errors', () => {
  for (const [err, retryable] of samples) {
    test(`${err.name} has a stable code, says whether to retry, and survives toData()`, () => {
      assert.ok(err instanceof RhizomeError)
      assert.match(err.code, /^ERR_[A-Z_]+$/)
      assert.equal(err.retryable, retryable)
      const rebuilt = failureFromData(err.toData())
      assert.equal(rebuilt.name, err.name)
      assert.equal(rebuilt.code, err.code)
      assert.equal(rebuilt.message, err.message)
      assert.equal(rebuilt.retryable, retryable)
    })
  }
})
