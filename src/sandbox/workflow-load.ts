/**
 * Loading a workflow bundle into a fresh context: the workflow prelude makes the context
 * deterministic and leaves the SDK for the virtual module 'rhizome:workflow', which is evaluated
 * before the bundle is even compiled; the bundle may import that module and nothing else.
 * Shared by live runs (workflow-engine.ts) and by inspection (workflow-inspect.ts).
 */

import type ivm from 'isolated-vm'
import { InvalidInputError } from '../model/errors.ts'
import { ForbiddenImportError } from './errors.ts'
import { THROWN_MESSAGE_LENGTH_MAX, THROWN_NAME_LENGTH_MAX, VALUE_DEPTH_MAX, WORKFLOW_CALL_ARGS_BYTES_MAX, WORKFLOW_COMMANDS_PER_ACTIVATION_MAX } from './limits.ts'
import type { SandboxLimits } from './limits.ts'
import { topLevelError } from './outcome.ts'
import { WORKFLOW_MODULE_SOURCE, WORKFLOW_MODULE_SPECIFIER, WORKFLOW_PRELUDE_SOURCE } from './prelude-workflow.ts'
import type { WorkflowPreludeLimits } from './prelude-workflow.ts'
import { copyInto } from './run-call.ts'

export interface WorkflowLoad {
  isolate: ivm.Isolate
  /** UTF-8 source of the bundle. */
  source: string
  workflowId: string
  seed: Uint8Array
  limits: SandboxLimits
  /** True once a guard stopped the isolate: errors are then its, not the code's. */
  stopped: () => boolean
  /** Handles to release when the run ends. */
  references: Array<{ release: () => void }>
}

/** Load the bundle and return the prelude's dispatcher, bound to the bundle's namespace. */
export async function loadWorkflow (load: WorkflowLoad): Promise<ivm.Reference> {
  const { isolate, references } = load
  const context = await isolate.createContext()
  references.push(context)
  const script = await isolate.compileScript(WORKFLOW_PRELUDE_SOURCE, { filename: 'rhizome:prelude' })
  references.push(script)
  const install = await script.run(context, { reference: true }) as ivm.Reference
  references.push(install)
  const dispatch = await install.apply(undefined, [copyInto(new Uint8Array(load.seed)), copyInto(workflowPreludeLimits(load.limits))], {
    result: { reference: true }
  }) as ivm.Reference
  references.push(dispatch)
  const sdk = await isolate.compileModule(WORKFLOW_MODULE_SOURCE, { filename: WORKFLOW_MODULE_SPECIFIER })
  references.push(sdk)
  await sdk.instantiate(context, specifier => { throw new ForbiddenImportError(specifier) })
  await sdk.evaluate()
  const module = await compile(load)
  references.push(module)
  for (const specifier of module.dependencySpecifiers) {
    if (specifier !== WORKFLOW_MODULE_SPECIFIER) {
      throw new ForbiddenImportError(specifier, undefined, `a workflow bundle imports only "${WORKFLOW_MODULE_SPECIFIER}"`)
    }
  }
  await module.instantiate(context, specifier => {
    if (specifier === WORKFLOW_MODULE_SPECIFIER) return sdk
    throw new ForbiddenImportError(specifier)
  })
  try {
    await module.evaluate()
  } catch (err) {
    if (load.stopped() || isolate.isDisposed) throw err
    throw topLevelError(err)
  }
  await dispatch.apply(undefined, ['bind', module.namespace.derefInto()])
  return dispatch
}

async function compile (load: WorkflowLoad): Promise<ivm.Module> {
  try {
    return await load.isolate.compileModule(load.source, { filename: `rhizome:workflow/${load.workflowId}` })
  } catch (err) {
    if (load.stopped() || load.isolate.isDisposed) throw err
    // A syntax error is the bundle's fault, reported like a throw at load time.
    throw topLevelError(err)
  }
}

export function decodeSource (code: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(code)
  } catch (err) {
    throw new InvalidInputError('workflow code is not valid UTF-8', { cause: err })
  }
}

function workflowPreludeLimits (limits: SandboxLimits): WorkflowPreludeLimits {
  return {
    outputBytesMax: limits.outputBytesMax,
    depthMax: VALUE_DEPTH_MAX,
    nameLengthMax: THROWN_NAME_LENGTH_MAX,
    messageLengthMax: THROWN_MESSAGE_LENGTH_MAX,
    commandsMax: WORKFLOW_COMMANDS_PER_ACTIVATION_MAX,
    argsBytesMax: WORKFLOW_CALL_ARGS_BYTES_MAX
  }
}
