/**
 * The workflow mode of the prelude: Rhizome's own code inside a workflow run's context.
 *
 * Theory of operation. A workflow is an ES module that imports `workflow` and `remote` from the
 * virtual module 'rhizome:workflow' (built from `makeSdk` below, on the primordials, so workflow
 * code that pollutes prototypes cannot subvert it). Its code runs like Temporal's workflow code:
 *   - calling a remote stub records a `call` command (seq, fn, export, args as a tape) and returns
 *     a promise that stays pending until the host resolves that seq; calling a workflow-marked
 *     function records a `child` command the same way;
 *   - the host drives the run with activations: `start` (the first) calls the exported workflow,
 *     `deliver` settles pending promises in the order given, and after each isolated-vm drains
 *     the isolate's microtask queue, so by the time the host calls `collect` every continuation
 *     that could run has run: the code is waiting on pending calls, or it has returned;
 *   - `collect` hands over the commands recorded since the last one, and the outcome once there
 *     is one: the result as a tape, the failure it threw, or a *halt*. A halt ends the run
 *     whatever the code does with the error it was thrown (it may catch it): reading the clock,
 *     a timer, a limit, or a misuse of the SDK. A run that waits on nothing (no call pending, not
 *     returned) can never move again, and ends as a deadlock.
 * seq numbers count calls in program order, so the same code fed the same resolutions in the same
 * order records the same commands: that is what replay builds on.
 *
 * Like prelude.ts, these functions are turned into source and evaluated in the isolate inside one
 * closure (WORKFLOW_PRELUDE_SOURCE), next to the shared parts; they never run on the host. State
 * lives in `WF`, a prototype-less object of that closure.
 */

import {
  append, bareList, dataProperty, describeThrown, failure, makeDeterministic, nondeterminism, preludeSource,
  PRELUDE_PARTS, readArgs, reseed, resultTape
} from './prelude.ts'
import type { PreludeFailure as Failure, PreludeLimits, PreludeTape as TapeOut, Primordials } from './prelude.ts'
import { DURATION_MS_LIMIT, SIGNAL_NAME_CHARS_MAX } from '../model/limits.ts'

/** The limits the workflow mode enforces inside the isolate, on top of the shared ones. */
export interface WorkflowPreludeLimits extends PreludeLimits {
  /** Most commands one activation may record. */
  commandsMax: number
  /** Lower bound of a call's arguments as dag-cbor; the host checks the exact size. */
  argsBytesMax: number
}

interface Pending { resolve: (value: unknown) => void, reject: (reason: unknown) => void, ref: boolean, sleep: boolean }

/** A command as recorded: the arguments as a tape (kinds, vals, count); a sleep's ms, a signal wait's name. */
interface CommandRecord {
  type: 'call' | 'child' | 'sleep' | 'signal'
  seq: number
  fn?: string
  export: string
  ms?: number
  name?: string
  ref: boolean
  kinds: Uint8Array | null
  vals: unknown[] | null
  count: number
}

/** One resolution as the host sends it: every field present, so nothing is read from a prototype. */
interface ResolutionRecord {
  seq: number
  ok: boolean
  kinds: number[]
  vals: unknown[]
  cid: string
  cidBytes: Uint8Array
  error: { name: string, code: string, message: string, retryable: boolean }
}

interface WorkflowState {
  on: boolean
  fatal: Failure | undefined
  ns: any
  started: boolean
  ended: boolean
  seq: number
  pending: Record<number, Pending>
  pendingCount: number
  commands: CommandRecord[]
  done: TapeOut | Failure | undefined
  limits: WorkflowPreludeLimits
  /** The same limits with the output cap set to the arguments' cap. */
  argsLimits: WorkflowPreludeLimits
  /** Workflow-marked function → the body it runs. */
  workflows: WeakMap<object, (...args: unknown[]) => unknown>
  /** Workflow-marked function → its export name, once looked up. */
  names: WeakMap<object, string>
  /** Errors made for failed remote calls → the failure as it came (so an uncaught one ends the run as itself). */
  remoteErrors: WeakMap<object, ResolutionRecord['error']>
  refPrototype: object
  /** Markers `continueAsNew(...)` returned → the new run's arguments, as a tape. */
  continues: WeakMap<object, TapeOut>
  /** Set when the workflow returned a continueAsNew marker: the arguments to go on with. */
  continued: TapeOut | undefined
}

declare const P: Primordials
declare const WF: WorkflowState
declare const REFS: WeakMap<object, Uint8Array>
declare const SDK_GLOBAL: string
declare const SLEEP_MS_MAX: number
declare const SIGNAL_NAME_MAX: number

/** The global the SDK object waits under until the 'rhizome:workflow' module takes (and deletes) it. */
export const WORKFLOW_SDK_GLOBAL = '__rhizomeWorkflowSdk'

/** The specifier a workflow bundle imports the SDK from (the bundler rewrites the package's name to it). */
export const WORKFLOW_MODULE_SPECIFIER = 'rhizome:workflow'

/**
 * Source of the 'rhizome:workflow' module. It is evaluated before the workflow's own module is
 * compiled, so no workflow code runs while the SDK object sits on the global.
 */
export const WORKFLOW_MODULE_SOURCE = [
  `const sdk = globalThis[${JSON.stringify(WORKFLOW_SDK_GLOBAL)}];`,
  `delete globalThis[${JSON.stringify(WORKFLOW_SDK_GLOBAL)}];`,
  'export const workflow = sdk.workflow;',
  'export const remote = sdk.remote;',
  'export const Ref = sdk.Ref;',
  'export const sleep = sdk.sleep;',
  'export const signal = sdk.signal;',
  'export const continueAsNew = sdk.continueAsNew;'
].join('\n')

function noop (): void {}

/** Entry point: make the context deterministic, leave the SDK for the virtual module, return the dispatcher. */
function installWorkflow (seed: Uint8Array, limits: WorkflowPreludeLimits): unknown {
  reseed(seed)
  makeDeterministic()
  WF.on = true
  WF.started = false
  WF.ended = false
  WF.seq = 0
  WF.pending = { __proto__: null } as unknown as Record<number, Pending>
  WF.pendingCount = 0
  WF.commands = bareList() as CommandRecord[]
  WF.done = undefined
  WF.limits = limits
  WF.argsLimits = { __proto__: null, outputBytesMax: limits.argsBytesMax, depthMax: limits.depthMax, nameLengthMax: limits.nameLengthMax, messageLengthMax: limits.messageLengthMax, commandsMax: limits.commandsMax, argsBytesMax: limits.argsBytesMax } as unknown as WorkflowPreludeLimits
  WF.workflows = new P.WeakMap()
  WF.names = new P.WeakMap()
  WF.remoteErrors = new P.WeakMap()
  WF.continues = new P.WeakMap()
  WF.continued = undefined
  refuseTimers()
  P.ReflectDefineProperty(globalThis, SDK_GLOBAL, { __proto__: null, value: makeSdk(), writable: false, enumerable: false, configurable: true } as PropertyDescriptor)
  return dispatch
}

/** Timers wait on the clock; a workflow waits on its remote calls, and on time only through sleep(), which is recorded. */
function refuseTimers (): void {
  for (const name of ['setTimeout', 'setInterval', 'setImmediate']) {
    P.ReflectDefineProperty(globalThis, name, dataProperty(function timer () { throw nondeterminism(`${name}() (a timer waits on the clock)`) }, false))
  }
}

/** The host's one entry: `op` names what to do. */
function dispatch (op: string, a: unknown, b: unknown, c: unknown): unknown {
  if (op === 'bind') {
    WF.ns = a
    return null
  }
  if (op === 'start') return startWorkflow(a as string, b as number[], c as unknown[])
  if (op === 'deliver') return deliver(a as ResolutionRecord[])
  if (op === 'collect') return collect()
  if (op === 'list') return listWorkflowExports(WF.ns)
  throw new P.TypeError('unknown operation')
}

// --- The SDK -----------------------------------------------------------------------------------

function makeSdk (): unknown {
  const Ref = function Ref (): never {
    throw new P.TypeError('a Ref cannot be made by hand: it comes from calling a remote function with .ref(...)')
  }
  WF.refPrototype = Ref.prototype
  P.ObjectFreeze(Ref.prototype)
  P.ObjectFreeze(Ref)
  return P.ObjectFreeze({ __proto__: null, workflow: markWorkflow, remote: makeRemote, Ref, sleep: sleepFor, signal: waitSignal, continueAsNew })
}

/** `workflow(fn)`: a callable that, called from a running workflow, starts a child run. */
function markWorkflow (body: unknown): unknown {
  if (typeof body !== 'function') throw new P.TypeError('workflow() takes an async function')
  const marked = function workflowCall (...args: unknown[]): Promise<unknown> { return callChild(marked, args) }
  P.WeakMapSet(WF.workflows, marked, body as (...args: unknown[]) => unknown)
  return P.ObjectFreeze(marked)
}

/** `remote(fnId, exportName)`: a stub that records a call; `.ref(...)` asks for the result's CID instead of its value. */
function makeRemote (fn: unknown, exportName: unknown): unknown {
  if (typeof fn !== 'string' || typeof exportName !== 'string') throw new P.TypeError('remote(fnId, exportName) takes two strings')
  const stub = function remoteCall (...args: unknown[]): Promise<unknown> { return callRemote(fn, exportName, args, false) }
  P.ReflectDefineProperty(stub, 'ref', dataProperty(function remoteRef (...args: unknown[]): Promise<unknown> { return callRemote(fn, exportName, args, true) }, false))
  return P.ObjectFreeze(stub)
}

function callRemote (fn: string, exportName: string, args: unknown[], ref: boolean): Promise<unknown> {
  const command = { __proto__: null, type: 'call', seq: 0, fn, export: exportName, ref, kinds: null, vals: null, count: 0 } as unknown as CommandRecord
  return record(command, args)
}

function callChild (marked: object, args: unknown[]): Promise<unknown> {
  if (!WF.started) throw new P.TypeError('a workflow can be called only from a running workflow (it then starts a child run)')
  const name = exportNameOf(marked)
  if (name === undefined) throw halt('definition', 'a workflow called from a workflow must be exported from the bundle, so the child run can name it')
  const command = { __proto__: null, type: 'child', seq: 0, export: name, ref: false, kinds: null, vals: null, count: 0 } as unknown as CommandRecord
  return record(command, args)
}

/** The export name of a workflow-marked function, by identity among the bundle's exports (first in name order). */
function exportNameOf (marked: object): string | undefined {
  const cached = P.WeakMapGet(WF.names, marked)
  if (cached !== undefined) return cached
  const keys = P.ReflectOwnKeys(WF.ns)
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    if (typeof key !== 'string') continue
    let value: unknown
    try {
      value = WF.ns[key]
    } catch {
      continue
    }
    if (value === marked) {
      P.WeakMapSet(WF.names, marked, key)
      return key
    }
  }
  return undefined
}

/** `sleep(ms)`: a durable timer. The host records when it fires, so a replay waits for the same deadline. */
function sleepFor (ms: unknown): Promise<unknown> {
  if (typeof ms !== 'number' || !P.NumberIsSafeInteger(ms) || ms < 0 || ms > SLEEP_MS_MAX) {
    throw new P.TypeError(`sleep(ms) takes a whole number of milliseconds from 0 to ${SLEEP_MS_MAX}`)
  }
  const gate = gateCommand('sleep()')
  if (gate !== undefined) return gate
  return enqueue({ __proto__: null, type: 'sleep', seq: 0, export: '', ms, ref: false, kinds: null, vals: null, count: 0 } as unknown as CommandRecord)
}

/** `signal(name)`: waits for the run's next signal `name` (`rhizome signal RUN NAME JSON`) and resolves with its value. */
function waitSignal (name: unknown): Promise<unknown> {
  if (typeof name !== 'string' || name.length === 0 || name.length > SIGNAL_NAME_MAX) {
    throw new P.TypeError(`signal(name) takes a name of 1 to ${SIGNAL_NAME_MAX} characters`)
  }
  const gate = gateCommand('signal()')
  if (gate !== undefined) return gate
  return enqueue({ __proto__: null, type: 'signal', seq: 0, export: '', name, ref: false, kinds: null, vals: null, count: 0 } as unknown as CommandRecord)
}

/**
 * `continueAsNew(...args)`: a marker which, returned by the workflow, ends the run as 'continued';
 * the host starts a new run of the same export with `args` and a fresh history.
 */
function continueAsNew (...args: unknown[]): object {
  if (!WF.started) throw new P.TypeError('continueAsNew() can be called only from a running workflow')
  const tape = resultTape(args, WF.argsLimits, 'arguments')
  if (!tape.ok) {
    if (tape.kind === 'output') throw halt('args', 'the arguments of continueAsNew() are too large', tape.bytes)
    throw halt(tape.kind === 'unsupported' ? 'unsupported' : 'definition', tape.message ?? 'the arguments of continueAsNew() cannot be sent')
  }
  const marker = P.ObjectFreeze({ __proto__: null })
  P.WeakMapSet(WF.continues, marker, tape)
  return marker
}

/** Whether a command may be recorded now: a promise that never settles once the run has an outcome, a throw when it may not. */
function gateCommand (what: string): Promise<unknown> | undefined {
  // Once the run has an outcome, further calls (from branches still running) are not recorded.
  if (WF.fatal !== undefined || WF.done !== undefined || WF.ended) return new P.Promise(noop)
  if (!WF.started) throw new P.TypeError(`${what} can be called only from a running workflow, not while the module loads`)
  if (WF.commands.length >= WF.limits.commandsMax) {
    throw halt('commands', `the workflow made more than ${WF.limits.commandsMax} calls in one activation`)
  }
  return undefined
}

/** Record a command and return the promise its resolution settles. */
function record (command: CommandRecord, args: unknown[]): Promise<unknown> {
  const gate = gateCommand('a remote function')
  if (gate !== undefined) return gate
  const tape = resultTape(args, WF.argsLimits, 'arguments')
  if (!tape.ok) {
    if (tape.kind === 'output') throw halt('args', 'the arguments of a remote call are too large', tape.bytes)
    throw halt(tape.kind === 'unsupported' ? 'unsupported' : 'definition', tape.message ?? 'the arguments of a remote call cannot be sent')
  }
  command.kinds = tape.kinds
  command.vals = tape.vals
  command.count = tape.count
  return enqueue(command)
}

/** Give the command its seq, hand it to the host with the next collect, and return the promise its resolution settles. */
function enqueue (command: CommandRecord): Promise<unknown> {
  command.seq = WF.seq++
  append(WF.commands, command)
  let entry: Pending | undefined
  const promise = new P.Promise((resolve, reject) => { entry = { __proto__: null, resolve, reject, ref: command.ref, sleep: command.type === 'sleep' } as unknown as Pending })
  WF.pending[command.seq] = entry as Pending
  WF.pendingCount++
  // A failed call nobody awaits (yet) is not an unhandled rejection: awaiting it later still sees the error.
  P.PromisePrototypeThen(promise, undefined, noop)
  return promise
}

/** End the run with `kind`, whatever the code does with the error thrown at it. */
function halt (kind: Failure['kind'], message: string, bytes?: number): Error {
  const f = failure(kind, message)
  if (bytes !== undefined) f.bytes = bytes
  if (WF.fatal === undefined) WF.fatal = f
  const err = new P.Error(message)
  P.WeakSetAdd(P.rhizomeErrors, err)
  return err
}

// --- Activations -------------------------------------------------------------------------------

function startWorkflow (exportName: string, kinds: number[], vals: unknown[]): null {
  WF.started = true
  if (WF.fatal !== undefined) return null
  let marked: unknown
  try {
    marked = WF.ns[exportName]
  } catch (err) {
    WF.done = describeThrown(err, WF.limits)
    return null
  }
  const body = typeof marked === 'function' ? P.WeakMapGet(WF.workflows, marked) : undefined
  if (body === undefined) {
    const f = failure('export')
    f.exports = workflowNames(WF.ns)
    WF.done = f
    return null
  }
  let returned: unknown
  try {
    returned = P.ReflectApply(body, undefined, readArgs(kinds, vals))
  } catch (err) {
    finishFailed(err)
    return null
  }
  // An async function's promise is followed with the captured `then`, so a workflow that
  // replaced Promise.prototype.then still reports its own result; anything else is resolved.
  try {
    P.PromisePrototypeThen(returned as Promise<unknown>, finishOk, finishFailed)
    return null
  } catch {}
  P.PromisePrototypeThen(new P.Promise(resolve => { resolve(returned) }), finishOk, finishFailed)
  return null
}

function finishOk (value: unknown): void {
  if (WF.done !== undefined) return
  const continued = typeof value === 'object' && value !== null ? P.WeakMapGet(WF.continues, value) : undefined
  if (continued !== undefined) {
    WF.continued = continued
    WF.done = resultTape(null, WF.limits)
    return
  }
  WF.done = resultTape(value, WF.limits)
}

function finishFailed (err: unknown): void {
  if (WF.done !== undefined) return
  // A remote call's failure the code let through ends the run as that failure (its name and code),
  // not as "the workflow threw".
  const remote = (typeof err === 'object' || typeof err === 'function') && err !== null ? P.WeakMapGet(WF.remoteErrors, err) : undefined
  if (remote !== undefined) {
    const f = failure('remote', remote.message)
    f.name = remote.name
    f.code = remote.code
    f.retryable = remote.retryable
    WF.done = f
    return
  }
  WF.done = describeThrown(err, WF.limits)
}

/** Settle pending calls in the order given. The host checked every seq is pending. */
function deliver (resolutions: ResolutionRecord[]): null {
  for (let i = 0; i < resolutions.length; i++) {
    const r = resolutions[i]
    const entry = WF.pending[r.seq]
    if (entry === undefined) continue
    P.ReflectDeleteProperty(WF.pending, r.seq)
    WF.pendingCount--
    if (r.ok) entry.resolve(entry.ref ? makeRef(r.cid, r.cidBytes) : entry.sleep ? undefined : readArgs(r.kinds, r.vals)[0])
    else entry.reject(remoteError(r.error))
  }
  return null
}

function makeRef (cid: string, bytes: Uint8Array): object {
  const ref = P.ObjectFreeze({ __proto__: WF.refPrototype, cid })
  P.WeakMapSet(REFS, ref, bytes)
  return ref
}

/** The failure of a remote call as an Error the workflow may catch. */
function remoteError (data: ResolutionRecord['error']): Error {
  const err = new P.Error(data.message)
  P.ReflectDefineProperty(err, 'name', dataProperty(data.name, false))
  P.ReflectDefineProperty(err, 'code', dataProperty(data.code, false))
  P.ReflectDefineProperty(err, 'retryable', dataProperty(data.retryable, false))
  P.WeakMapSet(WF.remoteErrors, err, data)
  return err
}

/** Hand over the commands of this activation, and the outcome once there is one. */
function collect (): unknown {
  const commands = WF.commands
  WF.commands = bareList() as CommandRecord[]
  let done: TapeOut | Failure | undefined = WF.fatal ?? WF.done
  if (done === undefined && WF.started && WF.pendingCount === 0) {
    done = failure('deadlock', 'the workflow is waiting, but on no remote call: nothing can ever move it on (a promise that never settles?)')
  }
  if (done !== undefined) WF.ended = true
  const continued = done !== undefined && done === WF.done && WF.continued !== undefined ? WF.continued : null
  return { __proto__: null, commands, done: done ?? null, pending: WF.pendingCount, continued }
}

function workflowNames (ns: any): string[] {
  const names: string[] = []
  const list = listWorkflowExports(ns)
  for (let i = 0; i < list.length; i++) {
    if (list[i][1] === 'workflow') append(names, list[i][0])
  }
  return names
}

/** inspect: name and kind of every export; 'workflow' for workflow-marked functions, else `typeof`. */
function listWorkflowExports (ns: any): Array<[string, string]> {
  const list: Array<[string, string]> = []
  const keys = P.ReflectOwnKeys(ns)
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    if (typeof key !== 'string') continue
    let type: string
    try {
      const value = ns[key]
      type = typeof value === 'function' && P.WeakMapGet(WF.workflows, value) !== undefined ? 'workflow' : typeof value
    } catch {
      type = 'uninitialized'
    }
    append(list, [key, type])
  }
  return list
}

const WORKFLOW_PARTS: Array<(...args: any[]) => unknown> = [
  noop, installWorkflow, refuseTimers, dispatch, makeSdk, markWorkflow, makeRemote, callRemote, callChild, exportNameOf,
  sleepFor, waitSignal, continueAsNew, gateCommand, record, enqueue, halt, startWorkflow, finishOk, finishFailed, deliver, makeRef, remoteError, collect, workflowNames,
  listWorkflowExports
]

/** Script source that evaluates (inside a fresh context) to `installWorkflow`. */
export const WORKFLOW_PRELUDE_SOURCE = preludeSource([...PRELUDE_PARTS, ...WORKFLOW_PARTS], 'installWorkflow', [
  `const SDK_GLOBAL = ${JSON.stringify(WORKFLOW_SDK_GLOBAL)};`,
  `const SLEEP_MS_MAX = ${DURATION_MS_LIMIT}, SIGNAL_NAME_MAX = ${SIGNAL_NAME_CHARS_MAX};`
])
