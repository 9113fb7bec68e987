/**
 * Sandbox: the execution boundary. Runs one exported function of a deployed function's code
 * with plain data in and out, under memory, time and output limits, deterministically (seeded
 * randomness, no clock), with nothing of the host reachable from inside.
 *
 *   const sandbox = createSandbox()
 *   const { value, bytes } = await sandbox.run({ functionId, kind: 'js', code, exportName: 'B',
 *     args: [5], seed: taskIdBytes, limits: DEFAULT_LIMITS }, { signal })
 *
 * Engines: JS (ES module bundles in V8 isolates, js-engine.ts) and WebAssembly (wasm-engine.ts,
 * which documents the wasm calling convention). Both pass the shared compliance suite.
 * Workflows run in a third mode (workflow-engine.ts, contract in workflow-types.ts): a live
 * isolate per run, driven by activations that deliver call results and return the calls made.
 * Failures are the named errors of errors.ts; `err.retryable` says whether another try can help.
 */

import { DefaultSandbox } from './sandbox.ts'
import type { Sandbox, SandboxOptions } from './sandbox.ts'

export type { FunctionKind, RunOptions, SandboxCall, SandboxEngine, SandboxResult } from './types.ts'
export type { Sandbox, SandboxOptions, SandboxStats } from './sandbox.ts'
export type { SandboxLimits } from './limits.ts'
export { DEFAULT_LIMITS, LIMITS_CEILING, LIMITS_FLOOR, CODE_BYTES_MAX, VALUE_DEPTH_MAX, limitsProblem } from './limits.ts'
export { DEFAULT_CACHE_SIZE, DEFAULT_CALLS_CONCURRENT_MAX, DEFAULT_ISOLATE_CALLS_MAX } from './isolate-pool.ts'
export type { IsolatePoolOptions } from './isolate-pool.ts'
export { createJsEngine, JsEngine } from './js-engine.ts'
export type { JsEngineOptions } from './js-engine.ts'
export { createWasmEngine, WasmEngine } from './wasm-engine.ts'
export type { WasmEngineOptions } from './wasm-engine.ts'
export { inspectJsExports } from './inspect.ts'
export type { ModuleExport, InspectOptions } from './inspect.ts'
export { parseWasmModule, checkWasmModule, callableExports, RHIZOME_IMPORTS, ALLOC_EXPORT } from './wasm-module.ts'
export type { WasmModuleInfo, WasmFuncType } from './wasm-module.ts'
export * from './errors.ts'
export { createWorkflowEngine, WorkflowEngine, DEFAULT_WORKFLOW_RUNS_OPEN_MAX, WORKFLOW_RUNS_OPEN_CEILING } from './workflow-engine.ts'
export type { WorkflowEngineOptions } from './workflow-engine.ts'
export type { ActivationResult, Resolution, ResolutionError, WorkflowCommand, WorkflowDone, WorkflowEngineStats, WorkflowOpenOptions, WorkflowRun } from './workflow-types.ts'
export { DEFAULT_WORKFLOW_LIMITS, WORKFLOW_CALL_ARGS_BYTES_MAX, WORKFLOW_COMMANDS_PER_ACTIVATION_MAX } from './limits.ts'
export { inspectWorkflowExports } from './workflow-inspect.ts'
export { WORKFLOW_MODULE_SPECIFIER } from './prelude-workflow.ts'

/**
 * Create a sandbox with both engines. Options: `cacheSize` (idle warm isolates kept, default
 * 32), `callsConcurrentMax` (calls at once, default 8; one more fails with SandboxBusyError) and
 * `isolateCallsMax` (calls per isolate before it is replaced, default 64).
 */
export function createSandbox (options: SandboxOptions = {}): Sandbox {
  return new DefaultSandbox(options)
}
