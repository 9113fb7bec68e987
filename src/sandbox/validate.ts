/** Checks on a SandboxCall from the local caller: nonsense here is a bug in the caller. */

import { InvalidInputError, TooLargeError } from '../model/errors.ts'
// The one export-name limit, shared with manifests and the task protocol.
import { EXPORT_NAME_LENGTH_MAX } from '../model/export-name.ts'
import { CODE_BYTES_MAX, limitsProblem } from './limits.ts'
import type { FunctionKind, SandboxCall } from './types.ts'

/** Longest seed accepted: a task id is a CID, well under 128 bytes. */
export const SEED_BYTES_MAX = 128

export function validateCall (call: SandboxCall, kind: FunctionKind): void {
  if (typeof call !== 'object' || call === null) throw new InvalidInputError('a sandbox call must be an object')
  if (call.kind !== kind) throw new InvalidInputError(`this engine runs ${kind} functions, not ${String(call.kind)}`)
  if (typeof call.functionId !== 'string' || call.functionId.length === 0) throw new InvalidInputError('functionId must be a non-empty string')
  if (!(call.code instanceof Uint8Array)) throw new InvalidInputError('code must be a Uint8Array')
  if (call.code.length > CODE_BYTES_MAX[kind]) throw new TooLargeError(`${kind} function code`, call.code.length, CODE_BYTES_MAX[kind])
  if (typeof call.exportName !== 'string' || call.exportName.length === 0 || call.exportName.length > EXPORT_NAME_LENGTH_MAX) {
    throw new InvalidInputError(`exportName must be a string of 1 to ${EXPORT_NAME_LENGTH_MAX} characters`)
  }
  if (!Array.isArray(call.args)) throw new InvalidInputError('args must be an array')
  if (!(call.seed instanceof Uint8Array)) throw new InvalidInputError('seed must be a Uint8Array')
  if (call.seed.length > SEED_BYTES_MAX) throw new TooLargeError('seed', call.seed.length, SEED_BYTES_MAX)
  const problem = limitsProblem(call.limits)
  if (problem !== undefined) throw new InvalidInputError(problem)
}
