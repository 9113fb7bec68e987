/**
 * The workflow sandbox contract: a workflow run's code lives in its own isolate between
 * activations; each activation delivers the results of remote calls and returns the calls the
 * code made since (Temporal's `activate(activation) → commands`).
 *
 *   const engine = createWorkflowEngine()
 *   const run = await engine.openWorkflow({ workflowId, code, exportName: 'A', args: [5], seed: runIdBytes })
 *   let { commands, done } = await run.activate([])            // starts A(5)
 *   // ... run the calls, then:
 *   ;({ commands, done } = await run.activate([{ seq: 0, ok: true, value: 10 }]))
 *   run.close()
 */

import type { FailureData } from '../model/errors.ts'
import type { SandboxLimits } from './limits.ts'

export interface WorkflowOpenOptions {
  /** CID string of the workflow bundle's manifest: names the module in stack traces. */
  workflowId: string
  /** One ES module, UTF-8, whose only import is 'rhizome:workflow'. */
  code: Uint8Array
  /** The exported workflow (marked with `workflow()`) the run starts. */
  exportName: string
  /** Plain data (the dag-cbor data model), as for functions. */
  args: unknown[]
  /** The run id's bytes: seeds Math.random for the whole run. */
  seed: Uint8Array
  /** Default DEFAULT_WORKFLOW_LIMITS; `timeMs` is CPU time per activation. */
  limits?: SandboxLimits
}

/** Why a remote call failed, as the workflow's catch sees it (`err.name`, `err.code`, `err.message`, `err.retryable`). */
export interface ResolutionError {
  name: string
  code: string
  message: string
  retryable: boolean
}

/**
 * The outcome of one pending call. `value` is its result (decoded dag-cbor data); for a call made
 * with `.ref(...)`, `ref` is the result's CID instead and the code receives a Ref.
 */
export type Resolution =
  | { seq: number, ok: true, value?: unknown, ref?: string }
  | { seq: number, ok: false, error: ResolutionError }

/**
 * A call the code made, in program order (`seq`). `args` is the arguments as every peer sees them
 * (decoded from `argsBytes`, their deterministic dag-cbor; a Ref is a CID link there).
 */
export type WorkflowCommand =
  | { type: 'call', seq: number, fn: string, export: string, args: unknown[], argsBytes: Uint8Array, ref: boolean }
  | { type: 'child', seq: number, export: string, args: unknown[], argsBytes: Uint8Array }
  /** `await sleep(ms)`: resolved (with null) once the host's durable timer fired. */
  | { type: 'sleep', seq: number, ms: number }
  /** `await signal(name)`: resolved with the signal's value, as a call's value. */
  | { type: 'signal', seq: number, name: string }

/** How the run ended: its result (as dag-cbor too), or the named failure that ended it. */
export type WorkflowDone =
  /** `continueAsNew`: the code returned continueAsNew(...args); `value` is then null. */
  | { ok: true, value: unknown, bytes: Uint8Array, continueAsNew?: { args: unknown[], argsBytes: Uint8Array } }
  | { ok: false, error: FailureData }

export interface ActivationResult {
  /** Every call made since the previous activation. */
  commands: WorkflowCommand[]
  /** Present once the run has ended; the run's isolate is then already gone. */
  done?: WorkflowDone
}

export interface WorkflowRun {
  readonly workflowId: string
  readonly exportName: string
  /**
   * Deliver `resolutions` (in this order) and run the code until it waits again. The first
   * activation takes none and starts the workflow. Throws InvalidInputError for a resolution of
   * a call that is not pending (the run stays usable), InvalidInputError once the run has ended or
   * is closed, and SandboxClosedError when the engine closes meanwhile. Everything the code does
   * wrong, limits included, ends the run with `done: { ok: false, error }`.
   */
  activate (resolutions: Resolution[]): Promise<ActivationResult>
  /** Seqs of the calls still waiting for a resolution. */
  pendingSeqs (): number[]
  /** Dispose the run's isolate. Safe to call twice. */
  close (): void
}

export interface WorkflowEngineStats {
  runsOpen: number
  runsOpenMax: number
}
