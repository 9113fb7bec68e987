/** Named failures of function packaging (bundling, wasm checks, manifests). */

import { RhizomeError } from '../model/errors.ts'
import type { RhizomeErrorOptions } from '../model/errors.ts'

/**
 * esbuild could not bundle the function: a syntax error, an import that does not resolve, ...
 * `file`, `line` and `column` (1-based) locate the first error when esbuild gave a location.
 */
export class BundleError extends RhizomeError {
  readonly file: string | undefined
  readonly line: number | undefined
  readonly column: number | undefined
  readonly detail: string
  constructor (detail: string, location?: { file: string, line: number, column: number }, options: RhizomeErrorOptions = {}) {
    const where = location !== undefined ? `${location.file}:${location.line}:${location.column}: ` : ''
    super('ERR_BUNDLE', `${where}${detail}`, { hint: 'fix the error at that position and deploy again', ...options })
    this.name = 'BundleError'
    this.file = location?.file
    this.line = location?.line
    this.column = location?.column
    this.detail = detail
  }
}

/** The code exports no function a caller could call. */
export class NoExportsError extends RhizomeError {
  constructor (what: string, options: RhizomeErrorOptions = {}) {
    super('ERR_NO_EXPORTS', `${what} exports no function`, { hint: 'export the functions to deploy, e.g. `export async function B (x) { ... }`', ...options })
    this.name = 'NoExportsError'
  }
}

/** A function manifest is malformed; `field` names the part that is wrong. */
export class InvalidManifestError extends RhizomeError {
  readonly field: string
  constructor (field: string, message: string, options: RhizomeErrorOptions = {}) {
    super('ERR_INVALID_MANIFEST', `function manifest ${field}: ${message}`, { hint: 'fix that field (see docs/PROTOCOLS.md for the manifest) and deploy again with `rhizome deploy`', ...options })
    this.name = 'InvalidManifestError'
    this.field = field
  }
}

/** A workflow module exports no workflow (no export is marked with `workflow()`). */
export class NoWorkflowsError extends RhizomeError {
  constructor (what: string, options: RhizomeErrorOptions = {}) {
    super('ERR_NO_WORKFLOWS', `${what} exports no workflow`, { hint: 'mark and export one: `export const A = workflow(async (x) => { ... })`', ...options })
    this.name = 'NoWorkflowsError'
  }
}

/**
 * A task named a deployed workflow: a workflow is driven as a run (`rhizome run`, POST /v1/runs),
 * never called as one task on a worker.
 */
export class WorkflowNotCallableError extends RhizomeError {
  constructor (fn: string, exportName: string, options: RhizomeErrorOptions = {}) {
    super('ERR_WORKFLOW_NOT_CALLABLE', `${fn} is a workflow, not a function: ${exportName} cannot run as a task`, { hint: `start it as a run: \`rhizome run FILE ${exportName}\`, or POST /v1/runs with { workflow, export, args }`, ...options })
    this.name = 'WorkflowNotCallableError'
  }
}
