/**
 * Workflows as users write them: ordinary async TypeScript.
 *
 * ```ts
 * import { workflow, ref } from '@rhizome-net/rhizome'
 * import { B, C, D, big, size } from './fns.ts'     // imported function modules become remote tasks
 * export const A = workflow(async (x: number) => {
 *   const [b, c, d] = await Promise.all([B(x), C(x), D(x)])   // three tasks at once
 *   const blob = await ref(big)(x)      // Ref<Uint8Array>: the bytes stay on the worker that made them
 *   return b + c - d + await size(blob) // the next worker fetches them by CID, not through the driver
 * })
 * ```
 *
 * `rhizome run flow.ts A 5` bundles the workflow module: each function module it imports is
 * deployed and its imports become remote stubs, and this module's functions are replaced by the
 * sandbox's own (`rhizome:workflow`). The types stay those of the user's own functions, so
 * `B('x')` is a `tsc` error when B takes a number.
 *
 * Outside a run — imported by a plain Node program or a test — the same code runs in-process:
 * `workflow(f)` is `f`, remote calls are local calls, and Refs hold their value. That is the
 * reference a run's result is checked against.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { RhizomeError } from '../model/errors.ts'
import { DURATION_MS_LIMIT, signalNameProblem } from '../model/limits.ts'

type AnyFunction = (...args: any[]) => any

/** A handle to a task's result, by content: where the bytes are is the network's business. */
export interface Ref<T> {
  /** The result's CID (dag-cbor). */
  readonly cid: string
  /** Never set: carries T for the type checker. */
  readonly '~value'?: T
}

/** Each argument may be given as its value or as a Ref to it. */
export type Refable<P extends unknown[]> = { [K in keyof P]: P[K] | Ref<P[K]> }

/** A workflow: the function itself, marked. Called from another workflow, it starts a child run. */
export type Workflow<F extends AnyFunction> = F & { readonly '~workflow': true }

const WORKFLOW = Symbol.for('rhizome.workflow')

/**
 * Mark an async function as a workflow. In-process, a `return continueAsNew(...args)` calls it
 * again with those arguments, as a run would go on as a new run.
 */
export function workflow<F extends (...args: never[]) => Promise<unknown>> (fn: F): Workflow<F> {
  const body = fn as unknown as (...args: unknown[]) => Promise<unknown>
  const local = async function (this: unknown, ...args: unknown[]): Promise<unknown> {
    let result = await body.apply(this, args)
    while (result instanceof ContinueAsNew) result = await body.apply(this, result.args)
    return result
  }
  Object.defineProperty(local, 'name', { value: fn.name })
  Object.defineProperty(local, WORKFLOW, { value: true })
  return local as unknown as Workflow<F>
}

/** What `continueAsNew` returns in-process: the arguments to call the workflow with again. */
class ContinueAsNew {
  readonly args: unknown[]
  constructor (args: unknown[]) {
    this.args = args
  }
}

/**
 * `return continueAsNew(...args)` ends this run and goes on as a new run of the same workflow with
 * `args` and a fresh history: how a workflow that loops for ever (sleep, wait for signals, repeat)
 * stays within its history limits. `rhizome run` follows the chain to the last run's result.
 * Typed `never` so that `return continueAsNew(n - 1)` fits any workflow's return type.
 */
export function continueAsNew (...args: unknown[]): never {
  return new ContinueAsNew(args) as never
}

/** Call `fn` remotely with arguments that may be Refs; resolves to its value. */
export function remote<F extends AnyFunction> (fn: F): (...args: Refable<Parameters<F>>) => Promise<Awaited<ReturnType<F>>> {
  return async (...args) => await fn(...(await Promise.all(args.map(resolve))))
}

/** Call `fn` remotely; resolves to a Ref to its result instead of the result's bytes. */
export function ref<F extends AnyFunction> (fn: F): (...args: Refable<Parameters<F>>) => Promise<Ref<Awaited<ReturnType<F>>>> {
  return async (...args) => new LocalRef(await fn(...(await Promise.all(args.map(resolve))))) as Ref<Awaited<ReturnType<F>>>
}

/** In-process Refs: the value itself, and its CID so code that prints `ref.cid` behaves the same. */
class LocalRef<T> implements Ref<T> {
  readonly value: T
  readonly cid: string
  constructor (value: T) {
    this.value = value
    const digest = sha256.digest(dagCbor.encode(value))
    if (digest instanceof Promise) throw new Error('assertion failed: sha256 is synchronous in Node')
    this.cid = CID.create(1, dagCbor.code, digest).toString()
  }
}

async function resolve (arg: unknown): Promise<unknown> {
  return arg instanceof LocalRef ? arg.value : arg
}

/**
 * Wait `ms` milliseconds (a whole number, 0 to about 24.8 days). In a run the timer is durable:
 * its deadline and its firing are recorded, so it fires once, whichever peer drives the run then.
 * Outside a run it is a plain timer.
 */
export async function sleep (ms: number): Promise<void> {
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > DURATION_MS_LIMIT) {
    throw new TypeError(`sleep(ms) takes a whole number of milliseconds from 0 to ${DURATION_MS_LIMIT}`)
  }
  await new Promise<void>(resolve => setTimeout(resolve, ms))
}

/**
 * Wait for the run's next signal `name` — `rhizome signal RUN NAME JSON`, or `client.signalRun`
 * — and resolve with its value, recorded in the run's memo before the code sees it. Only a run
 * can receive signals: outside one this rejects, with a hint.
 */
export async function signal<T = unknown> (name: string): Promise<T> {
  const problem = signalNameProblem(name)
  if (problem !== undefined) throw new TypeError(`signal(name): the name ${problem}`)
  throw new RhizomeError('ERR_NOT_IN_RUN', `signal(${JSON.stringify(name)}) waits for a signal sent to a workflow run, and this code is not running as one`, {
    hint: 'start the workflow with `rhizome run FILE EXPORT ARGS...` and send it `rhizome signal RUN NAME JSON`; in a local test, pass the value as an argument instead'
  })
}

/** Whether `fn` was marked by `workflow()`. */
export function isWorkflow (fn: unknown): boolean {
  return typeof fn === 'function' && (fn as unknown as Record<symbol, unknown>)[WORKFLOW] === true
}
