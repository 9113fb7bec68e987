/**
 * The sandbox contract: one call of one exported function, under limits, with plain data in
 * and out. Engines (JS on V8 isolates, WebAssembly) implement SandboxEngine.
 */

import type { SandboxLimits } from './limits.ts'

export type FunctionKind = 'js' | 'wasm'

export interface SandboxCall {
  /** CID string of the function manifest: the cache key for warm isolates and compiled code. */
  functionId: string
  kind: FunctionKind
  /** js: one ES module (the bundle), UTF-8. wasm: the module's bytes. */
  code: Uint8Array
  exportName: string
  /** Plain data: the dag-cbor data model (null, boolean, number, string, Uint8Array, arrays, plain objects, CID; BigInt within int64). */
  args: unknown[]
  /** The task id's bytes: seeds Math.random (and wasm's rhizome.random_f64) for this call. */
  seed: Uint8Array
  limits: SandboxLimits
}

export interface SandboxResult {
  /** The result as every peer sees it: decoded from `bytes`. */
  value: unknown
  /** The result as deterministic dag-cbor. */
  bytes: Uint8Array
  /** Wall time of the whole call, setup included. */
  runMs: number
  /** True when an already warm isolate served the call. */
  warm: boolean
}

export interface RunOptions {
  signal?: AbortSignal
}

export interface SandboxEngine {
  readonly kind: FunctionKind
  run (call: SandboxCall, options?: RunOptions): Promise<SandboxResult>
  close (): Promise<void>
}
