/**
 * List a workflow bundle's exports, in a throwaway isolate under limits (like inspect.ts for
 * functions): which exports are workflows is only known by evaluating the module. Used when
 * packaging a workflow, for its manifest.
 */

import ivm from 'isolated-vm'
import { InvalidInputError, TooLargeError } from '../model/errors.ts'
import { CallGuard } from './call-guard.ts'
import { SandboxAbortedError } from './errors.ts'
import { readExports } from './inspect.ts'
import type { InspectOptions, ModuleExport } from './inspect.ts'
import { CODE_BYTES_MAX, DEFAULT_WORKFLOW_LIMITS, limitsProblem } from './limits.ts'
import { engineError } from './outcome.ts'
import { releaseAll } from './run-call.ts'
import { decodeSource, loadWorkflow } from './workflow-load.ts'

const MIB = 1024 * 1024

/**
 * Evaluate `code` (one workflow bundle) and list its exports, sorted by name: `type` is
 * 'workflow' for exports marked with `workflow()`, else `typeof` the export.
 */
export async function inspectWorkflowExports (code: Uint8Array, options: InspectOptions = {}): Promise<ModuleExport[]> {
  const startedMs = performance.now()
  const limits = options.limits ?? DEFAULT_WORKFLOW_LIMITS
  const problem = limitsProblem(limits)
  if (problem !== undefined) throw new InvalidInputError(problem)
  if (code.length > CODE_BYTES_MAX.js) throw new TooLargeError('workflow code', code.length, CODE_BYTES_MAX.js)
  if (options.signal?.aborted === true) throw new SandboxAbortedError()
  const source = decodeSource(code)
  const isolate = new ivm.Isolate({ memoryLimit: Math.ceil(limits.memoryBytesMax / MIB) })
  const guard = new CallGuard(isolate, limits.timeMs, startedMs, options.signal)
  const references: Array<{ release: () => void }> = []
  try {
    return await guard.race((async () => {
      const dispatch = await loadWorkflow({ isolate, source, workflowId: 'inspect', seed: new Uint8Array(0), limits, stopped: () => guard.reason !== undefined, references })
      return readExports(await dispatch.apply(undefined, ['list'], { result: { copy: true } }))
    })())
  } catch (err) {
    throw guard.reason !== undefined ? guard.error(guard.reason) : engineError(err, limits)
  } finally {
    guard.clear()
    releaseAll(references)
    if (!isolate.isDisposed) isolate.dispose()
  }
}
