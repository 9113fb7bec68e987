/**
 * The sandbox a peer runs: both engines over one pool of isolates, so the concurrency limit
 * and the warm cache cover JS and wasm calls together.
 */

import { InvalidInputError } from '../model/errors.ts'
import type { IsolatePoolOptions, PoolStats } from './isolate-pool.ts'
import { IsolatePool } from './isolate-pool.ts'
import { JsEngine } from './js-engine.ts'
import type { RunOptions, SandboxCall, SandboxEngine, SandboxResult } from './types.ts'
import { WasmEngine } from './wasm-engine.ts'

export type SandboxOptions = IsolatePoolOptions

export type SandboxStats = PoolStats

export interface Sandbox {
  /** Run one call on the engine for `call.kind`. */
  run (call: SandboxCall, options?: RunOptions): Promise<SandboxResult>
  /** Stop running calls (they fail with SandboxClosedError) and dispose every isolate. */
  close (): Promise<void>
  stats (): SandboxStats
}

export class DefaultSandbox implements Sandbox {
  private readonly pool: IsolatePool
  private readonly engines: Record<'js' | 'wasm', SandboxEngine>

  constructor (options: SandboxOptions = {}) {
    this.pool = new IsolatePool(options)
    this.engines = { js: new JsEngine({ pool: this.pool }), wasm: new WasmEngine({ pool: this.pool }) }
  }

  async run (call: SandboxCall, options: RunOptions = {}): Promise<SandboxResult> {
    const kind: unknown = call?.kind
    if (kind !== 'js' && kind !== 'wasm') throw new InvalidInputError(`unknown function kind ${JSON.stringify(kind)}: expected "js" or "wasm"`)
    return await this.engines[kind].run(call, options)
  }

  async close (): Promise<void> {
    this.pool.close()
  }

  stats (): SandboxStats {
    return this.pool.stats()
  }
}
