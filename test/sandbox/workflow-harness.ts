/**
 * A small driver for workflow runs in tests: it answers each call by computing the fixture
 * functions here (B = x*2, C = x+1, D = x-3, Sum adds numbers or the values behind Refs), runs
 * child workflows as real runs of the same bundle, and records every activation, so a replay can
 * feed the same resolutions again.
 */

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import type { ActivationResult, Resolution, WorkflowCommand, WorkflowEngine, WorkflowOpenOptions, WorkflowRun } from '../../src/sandbox/index.ts'

export const FNS = 'bafyreielc5lei6vhsruiyhfsiquehgdc2j4536jcrmu3ubvvjqn6pnbkbe'

export function fixture (name: string): Uint8Array {
  return readFileSync(new URL(`../fixtures/workflows/${name}.js`, import.meta.url))
}

export function source (text: string): Uint8Array {
  return new TextEncoder().encode(text)
}

export function options (code: Uint8Array, exportName: string, args: unknown[] = [], over: Partial<WorkflowOpenOptions> = {}): WorkflowOpenOptions {
  return { workflowId: 'bafyreigzfgfbbunqonmdpxcl3bo2yza3b46o6j5epzovhjkpf47vwl6p7i', code, exportName, args, seed: new Uint8Array([1, 2, 3]), ...over }
}

/** Values stored by CID, for calls made with .ref(). */
export class Store {
  readonly values = new Map<string, unknown>()
  async put (value: unknown): Promise<string> {
    const bytes = dagCbor.encode(value)
    const cid = CID.create(1, dagCbor.code, await sha256.digest(bytes)).toString()
    this.values.set(cid, value)
    return cid
  }
}

function compute (command: Extract<WorkflowCommand, { type: 'call' }>, store: Store): unknown {
  const [x] = command.args as [unknown]
  switch (command.export) {
    case 'B': return typeof x === 'number' ? x * 2 : 0
    case 'C': return (x as number) + 1
    case 'D': return (x as number) - 3
    case 'Sum': return (x as unknown[]).reduce<number>((sum, item) => {
      const cid = CID.asCID(item)
      return sum + (cid !== null ? store.values.get(cid.toString()) as number : item as number)
    }, 0)
    default: throw new Error(`no fixture function ${command.export}`)
  }
}

export interface Step { resolutions: Resolution[], result: ActivationResult }

export interface DriveOptions {
  store?: Store
  /** Fail these exports instead of computing them. */
  fail?: Record<string, { name: string, code: string, message: string, retryable: boolean }>
  /** Most activations before the test gives up. */
  activationsMax?: number
  /** Signal name → the value every wait for it receives (default null). */
  signals?: Record<string, unknown>
}

/** Drive `run` to its end, answering every pending call at once after each activation. */
export async function drive (engine: WorkflowEngine, run: WorkflowRun, code: Uint8Array, o: DriveOptions = {}): Promise<Step[]> {
  const store = o.store ?? new Store()
  const steps: Step[] = []
  let resolutions: Resolution[] = []
  for (let i = 0; i < (o.activationsMax ?? 10_000); i++) {
    const result = await run.activate(resolutions)
    steps.push({ resolutions, result })
    if (result.done !== undefined) return steps
    resolutions = []
    for (const command of result.commands) resolutions.push(await answer(engine, command, code, store, o))
  }
  assert.fail('the run did not end')
}

async function answer (engine: WorkflowEngine, command: WorkflowCommand, code: Uint8Array, store: Store, o: DriveOptions): Promise<Resolution> {
  if (command.type === 'child') {
    const child = await engine.openWorkflow(options(code, command.export, command.args))
    const steps = await drive(engine, child, code, o)
    const done = steps[steps.length - 1].result.done
    assert.ok(done !== undefined)
    return done.ok ? { seq: command.seq, ok: true, value: done.value } : { seq: command.seq, ok: false, error: done.error }
  }
  // A timer fires at once here; a signal answers with the value the test gave for its name.
  if (command.type === 'sleep') return { seq: command.seq, ok: true, value: null }
  if (command.type === 'signal') return { seq: command.seq, ok: true, value: o.signals?.[command.name] ?? null }
  const failure = o.fail?.[command.export]
  if (failure !== undefined) return { seq: command.seq, ok: false, error: failure }
  const value = compute(command, store)
  if (command.ref) return { seq: command.seq, ok: true, ref: await store.put(value) }
  return { seq: command.seq, ok: true, value }
}

/** Replay: a fresh run fed the recorded resolutions must record the same commands and end the same way. */
export async function replay (engine: WorkflowEngine, open: WorkflowOpenOptions, steps: Step[]): Promise<Step[]> {
  const run = await engine.openWorkflow(open)
  const again: Step[] = []
  for (const step of steps) again.push({ resolutions: step.resolutions, result: await run.activate(step.resolutions) })
  run.close()
  return again
}

export function doneOf (steps: Step[]): NonNullable<ActivationResult['done']> {
  const done = steps[steps.length - 1].result.done
  assert.ok(done !== undefined, 'the run has not ended')
  return done
}
