/**
 * The prelude: Rhizome's own code inside every isolate. It runs in a fresh context before any
 * function code and
 *   - captures the intrinsics it needs ("primordials", as Node core does) so that a function that
 *     pollutes Object.prototype, Array.prototype, JSON or Math cannot subvert Rhizome's code
 *     running after it in the same context;
 *   - makes the context deterministic (js mode): Math.random seeded from the task id, the clock
 *     refused, GC-observable and shared-memory globals removed;
 *   - calls the export, awaits it, and writes the result as a tape (see values.ts), checking the
 *     dag-cbor data model and counting a lower bound of the encoded size as it goes, so a huge
 *     result is refused before it is copied out of the isolate;
 *   - reports failures as plain records, never by letting a function's own thrown value (which
 *     may be a Proxy or have throwing getters) cross to the host.
 *
 * How it gets there: the functions below are turned into source with Function.prototype.toString
 * and evaluated inside the isolate within one closure (PRELUDE_SOURCE). They therefore must not
 * refer to anything outside themselves except each other, `P` (the primordials), `RNG` (the
 * random generator's state), `REFS` and `WF` (the workflow mode's state, see prelude-workflow.ts),
 * which that closure defines. They never run on the host.
 */

interface Primordials {
  ObjectGetPrototypeOf: typeof Object.getPrototypeOf
  ObjectGetOwnPropertyDescriptor: typeof Object.getOwnPropertyDescriptor
  ObjectHasOwn: typeof Object.hasOwn
  ObjectPrototype: object
  ObjectSetPrototypeOf: typeof Object.setPrototypeOf
  ArrayPrototype: object
  ObjectPrototypeToString: (self: unknown) => string
  ReflectOwnKeys: typeof Reflect.ownKeys
  ReflectApply: typeof Reflect.apply
  ReflectConstruct: typeof Reflect.construct
  ReflectDefineProperty: typeof Reflect.defineProperty
  ReflectDeleteProperty: typeof Reflect.deleteProperty
  ArrayIsArray: typeof Array.isArray
  NumberIsFinite: typeof Number.isFinite
  NumberIsInteger: typeof Number.isInteger
  NumberIsSafeInteger: typeof Number.isSafeInteger
  MathImul: typeof Math.imul
  String: typeof String
  StringPrototypeSlice: (self: string, start?: number, end?: number) => string
  Error: typeof Error
  RangeErrorPrototype: object
  Uint8Array: typeof Uint8Array
  Uint32Array: typeof Uint32Array
  TypedArrayGetToStringTag: (self: unknown) => string | undefined
  TypedArrayGetByteLength: (self: unknown) => number
  TypedArraySet: (self: Uint8Array, source: Uint8Array, offset?: number) => void
  Set: typeof Set
  SetHas: (self: Set<unknown>, value: unknown) => boolean
  SetAdd: (self: Set<unknown>, value: unknown) => Set<unknown>
  SetDelete: (self: Set<unknown>, value: unknown) => boolean
  WeakSet: typeof WeakSet
  WeakSetHas: (self: WeakSet<object>, value: object) => boolean
  WeakSetAdd: (self: WeakSet<object>, value: object) => WeakSet<object>
  WeakMap: typeof WeakMap
  WeakMapGet: (self: WeakMap<object, any>, key: object) => any
  WeakMapSet: (self: WeakMap<object, any>, key: object, value: unknown) => WeakMap<object, any>
  ObjectFreeze: typeof Object.freeze
  Promise: typeof Promise
  PromisePrototypeThen: (self: Promise<unknown>, onFulfilled?: (value: any) => unknown, onRejected?: (reason: unknown) => unknown) => Promise<unknown>
  TypeError: typeof TypeError
  Date: typeof Date
  Math: Math
  Intl: typeof Intl
  WebAssemblyModule: typeof WebAssembly.Module
  WebAssemblyInstance: typeof WebAssembly.Instance
  WebAssemblyMemory: typeof WebAssembly.Memory
  WebAssemblyRuntimeError: typeof WebAssembly.RuntimeError
  WebAssemblyCompileError: typeof WebAssembly.CompileError
  /** Errors the prelude itself throws, so they are told apart from the function's own. */
  rhizomeErrors: WeakSet<object>
}

/** A failure record: what went wrong, as plain data the host checks. */
interface Failure {
  ok: false
  kind: 'threw' | 'stack' | 'memory' | 'nondeterminism' | 'unsupported' | 'output' | 'export' | 'trap' | 'module'
  // Workflow mode only (prelude-workflow.ts).
  | 'commands' | 'args' | 'definition' | 'deadlock' | 'remote'
  /** kind 'remote': the named error of a remote call the workflow let through, as it came. */
  code?: string
  retryable?: boolean
  name?: string
  message?: string
  bytes?: number
  exports?: string[]
}

/** The result tape: `kinds` has spare capacity; its first `count` entries are the tokens. */
interface TapeOut { ok: true, kinds: Uint8Array, vals: unknown[], count: number, capacity: number, bytes: number }

interface Limits { outputBytesMax: number, depthMax: number, nameLengthMax: number, messageLengthMax: number }

/**
 * What the shared parts need to know of the workflow mode: whether it is on, and the failure that
 * ends the run however the workflow code reacts to the error it was thrown (prelude-workflow.ts).
 */
interface WorkflowHalt { on: boolean, fatal: Failure | undefined }

declare const P: Primordials
declare const RNG: Uint32Array
/** The CID bytes of each Ref a workflow holds (prelude-workflow.ts); empty for functions. */
declare const REFS: WeakMap<object, Uint8Array>
declare const WF: WorkflowHalt

// Tape token kinds; the same numbers as values.ts (a test checks they agree).
const SCALAR = 0
const BYTES = 1
const LIST = 2
const MAP = 3
const CID = 4
const BIGINT = 5

function capturePrimordials (): Primordials {
  const g = globalThis as any
  const uncurryThis = Function.prototype.bind.bind(Function.prototype.call) as (fn: any) => any
  const typedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype)
  const getter = (object: object, key: PropertyKey): any => (Object.getOwnPropertyDescriptor(object, key) as PropertyDescriptor).get
  const primordials: Primordials = {
    ObjectGetPrototypeOf: Object.getPrototypeOf,
    ObjectGetOwnPropertyDescriptor: Object.getOwnPropertyDescriptor,
    ObjectHasOwn: Object.hasOwn,
    ObjectPrototype: Object.prototype,
    ObjectSetPrototypeOf: Object.setPrototypeOf,
    ArrayPrototype: Array.prototype,
    ObjectPrototypeToString: uncurryThis(Object.prototype.toString),
    ReflectOwnKeys: Reflect.ownKeys,
    ReflectApply: Reflect.apply,
    ReflectConstruct: Reflect.construct,
    ReflectDefineProperty: Reflect.defineProperty,
    ReflectDeleteProperty: Reflect.deleteProperty,
    ArrayIsArray: Array.isArray,
    NumberIsFinite: Number.isFinite,
    NumberIsInteger: Number.isInteger,
    NumberIsSafeInteger: Number.isSafeInteger,
    MathImul: Math.imul,
    String,
    StringPrototypeSlice: uncurryThis(String.prototype.slice),
    Error,
    RangeErrorPrototype: RangeError.prototype,
    Uint8Array,
    Uint32Array,
    TypedArrayGetToStringTag: uncurryThis(getter(typedArrayPrototype, Symbol.toStringTag)),
    TypedArrayGetByteLength: uncurryThis(getter(typedArrayPrototype, 'byteLength')),
    TypedArraySet: uncurryThis(typedArrayPrototype.set),
    Set,
    SetHas: uncurryThis(Set.prototype.has),
    SetAdd: uncurryThis(Set.prototype.add),
    SetDelete: uncurryThis(Set.prototype.delete),
    WeakSet,
    WeakSetHas: uncurryThis(WeakSet.prototype.has),
    WeakSetAdd: uncurryThis(WeakSet.prototype.add),
    WeakMap,
    WeakMapGet: uncurryThis(WeakMap.prototype.get),
    WeakMapSet: uncurryThis(WeakMap.prototype.set),
    ObjectFreeze: Object.freeze,
    Promise,
    PromisePrototypeThen: uncurryThis(Promise.prototype.then),
    TypeError,
    Date,
    Math,
    Intl,
    WebAssemblyModule: g.WebAssembly.Module,
    WebAssemblyInstance: g.WebAssembly.Instance,
    WebAssemblyMemory: g.WebAssembly.Memory,
    WebAssemblyRuntimeError: g.WebAssembly.RuntimeError,
    WebAssemblyCompileError: g.WebAssembly.CompileError,
    rhizomeErrors: new WeakSet()
  }
  return Object.freeze(primordials)
}

/** A property descriptor with no prototype, so a polluted Object.prototype.get cannot turn it into an accessor. */
function dataProperty (value: unknown, enumerable: boolean): PropertyDescriptor {
  return { __proto__: null, value, writable: true, enumerable, configurable: true } as PropertyDescriptor
}

/**
 * An array with no prototype: storing `list[i] = v` cannot reach a setter planted on
 * Array.prototype or Object.prototype, and stays as fast as a plain store.
 */
function bareList (): unknown[] {
  const list: unknown[] = []
  P.ObjectSetPrototypeOf(list, null)
  return list
}

/** Array push without [[Set]]: setters planted on Array.prototype are not called. */
function append (list: unknown[], value: unknown): void {
  P.ReflectDefineProperty(list, list.length, dataProperty(value, true))
}

function failure (kind: Failure['kind'], message?: string): Failure {
  return { __proto__: null, ok: false, kind, message } as Failure
}

// --- Seeded randomness -------------------------------------------------------------------------
// sfc32 (Chris Doty-Humphrey, PractRand), seeded by cyrb128 (bryc) over the seed bytes: small,
// fast, and good enough for simulations; not for cryptography.

function reseed (seed: Uint8Array): void {
  let h1 = 1779033703
  let h2 = 3144134277
  let h3 = 1013904242
  let h4 = 2773480762
  const imul = P.MathImul
  const length = P.TypedArrayGetByteLength(seed)
  for (let i = 0; i < length; i++) {
    const k = seed[i]
    h1 = h2 ^ imul(h1 ^ k, 597399067)
    h2 = h3 ^ imul(h2 ^ k, 2869860233)
    h3 = h4 ^ imul(h3 ^ k, 951274213)
    h4 = h1 ^ imul(h4 ^ k, 2716044179)
  }
  h1 = imul(h3 ^ (h1 >>> 18), 597399067)
  h2 = imul(h4 ^ (h2 >>> 22), 2869860233)
  h3 = imul(h1 ^ (h3 >>> 17), 951274213)
  h4 = imul(h2 ^ (h4 >>> 19), 2716044179)
  RNG[0] = h1 ^ h2 ^ h3 ^ h4
  RNG[1] = h2 ^ h1
  RNG[2] = h3 ^ h1
  RNG[3] = h4 ^ h1
  for (let i = 0; i < 15; i++) nextUint32()
}

function nextUint32 (): number {
  const t = (((RNG[0] + RNG[1]) >>> 0) + RNG[3]) >>> 0
  RNG[3] = RNG[3] + 1
  RNG[0] = RNG[1] ^ (RNG[1] >>> 9)
  RNG[1] = RNG[2] + (RNG[2] << 3)
  RNG[2] = (RNG[2] << 21) | (RNG[2] >>> 11)
  RNG[2] = RNG[2] + t
  return t
}

/** A double in [0, 1) with 53 random bits, like V8's own Math.random. */
function nextRandom (): number {
  const high = nextUint32() >>> 5
  const low = nextUint32() >>> 6
  return (high * 67108864 + low) / 9007199254740992
}

// --- Determinism -------------------------------------------------------------------------------

function nondeterminism (what: string): Error {
  const err = new P.Error(`${what} is not available in a Rhizome ${WF.on ? 'workflow' : 'function'}: it differs from run to run, so results could not be verified or replayed. Pass the value in as an argument.`)
  P.ReflectDefineProperty(err, 'name', dataProperty('NondeterminismError', false))
  P.WeakSetAdd(P.rhizomeErrors, err)
  // A workflow that catches the error still ends: its replay could not be trusted.
  if (WF.on && WF.fatal === undefined) WF.fatal = failure('nondeterminism', err.message)
  return err
}

function makeDeterministic (): void {
  const g = globalThis as any
  P.ReflectDefineProperty(P.Math, 'random', dataProperty(function random () { return nextRandom() }, false))

  // Date: dates built from explicit values work; reading the clock throws.
  const RealDate = P.Date
  const SafeDate = function Date (this: unknown, ...args: unknown[]): unknown {
    if (new.target === undefined) throw nondeterminism('Date()')
    if (args.length === 0) throw nondeterminism('new Date()')
    return P.ReflectConstruct(RealDate, args, new.target)
  } as unknown as DateConstructor
  P.ReflectDefineProperty(SafeDate, 'prototype', { __proto__: null, value: RealDate.prototype, writable: false } as PropertyDescriptor)
  P.ReflectDefineProperty(SafeDate, 'now', dataProperty(function now () { throw nondeterminism('Date.now()') }, false))
  P.ReflectDefineProperty(SafeDate, 'parse', dataProperty(RealDate.parse, false))
  P.ReflectDefineProperty(SafeDate, 'UTC', dataProperty(RealDate.UTC, false))
  P.ReflectDefineProperty(RealDate.prototype, 'constructor', dataProperty(SafeDate, false))
  P.ReflectDefineProperty(g, 'Date', dataProperty(SafeDate, false))

  // Intl.DateTimeFormat formats "now" when given no date.
  const dtf = P.Intl.DateTimeFormat.prototype as any
  const formatGetter = (P.ObjectGetOwnPropertyDescriptor(dtf, 'format') as PropertyDescriptor).get as (this: unknown) => (date?: unknown) => string
  P.ReflectDefineProperty(dtf, 'format', {
    __proto__: null,
    configurable: true,
    get () {
      const format = P.ReflectApply(formatGetter, this, [])
      return function format_ (date?: unknown) {
        if (date === undefined) throw nondeterminism('Intl.DateTimeFormat.prototype.format() without a date')
        return format(date)
      }
    }
  } as PropertyDescriptor)
  for (const name of ['formatToParts', 'formatRange', 'formatRangeToParts']) {
    const original = dtf[name]
    if (typeof original !== 'function') continue
    P.ReflectDefineProperty(dtf, name, dataProperty(function (this: unknown, ...args: unknown[]) {
      if (args[0] === undefined) throw nondeterminism(`Intl.DateTimeFormat.prototype.${name}() without a date`)
      return P.ReflectApply(original, this, args)
    }, false))
  }

  // WebAssembly: its memory lives outside the isolate heap, so the heap limit would not hold it
  // (wasm is a function kind of its own, with a capped memory). SharedArrayBuffer and
  // Atomics.wait/waitAsync: blocking and timers. WeakRef, FinalizationRegistry: results that
  // depend on when the garbage collector runs. Temporal (where V8 ships it): Temporal.Now.
  for (const name of ['WebAssembly', 'SharedArrayBuffer', 'WeakRef', 'FinalizationRegistry', 'Temporal']) P.ReflectDeleteProperty(g, name)
  P.ReflectDeleteProperty(g.Atomics, 'wait')
  P.ReflectDeleteProperty(g.Atomics, 'waitAsync')
}

// --- Thrown values -----------------------------------------------------------------------------

/** Describe whatever the function threw, without trusting it: getters and Proxy traps may throw. */
function describeThrown (thrown: unknown, limits: Limits): Failure {
  const cut = (s: string, max: number): string => s.length > max ? P.StringPrototypeSlice(s, 0, max) + '…' : s
  const type = thrown === null ? 'null' : typeof thrown
  if (type !== 'object' && type !== 'function') {
    const text = type === 'string' ? thrown as string : P.String(thrown)
    const f = failure('threw', cut(text, limits.messageLengthMax))
    f.name = type
    return f
  }
  const object = thrown as object
  if (P.WeakSetHas(P.rhizomeErrors, object)) return failure('nondeterminism', (object as Error).message)
  let name: unknown
  let message: unknown
  let proto: unknown
  try { proto = P.ObjectGetPrototypeOf(object) } catch { proto = undefined }
  try { name = (object as any).name } catch { name = undefined }
  try { message = (object as any).message } catch { message = undefined }
  if (proto === P.RangeErrorPrototype && message === 'Maximum call stack size exceeded') return failure('stack')
  if (proto === P.RangeErrorPrototype && message === 'Array buffer allocation failed') return failure('memory', 'an ArrayBuffer allocation failed')
  if (typeof message === 'string') {
    const f = failure('threw', cut(message, limits.messageLengthMax))
    f.name = typeof name === 'string' && name !== '' ? cut(name, limits.nameLengthMax) : 'Error'
    return f
  }
  const f = failure('threw', 'a value that is not an Error (with no message) was thrown')
  f.name = type
  return f
}

// --- Results -----------------------------------------------------------------------------------

/** Thrown inside the walk; `rhizomeErrors` tells it apart from errors thrown by Proxy traps. */
function walkFailure (kind: Failure['kind'], message: string, bytes?: number): Failure {
  const f = failure(kind, message)
  if (bytes !== undefined) f.bytes = bytes
  P.WeakSetAdd(P.rhizomeErrors, f)
  return f
}

function emit (tape: TapeOut, kind: number, val: unknown, bytes: number, limits: Limits): void {
  tape.bytes += bytes
  if (tape.bytes > limits.outputBytesMax) throw walkFailure('output', 'the result is too large', tape.bytes)
  // Capacity is tracked here, not read from `kinds.length`: a function may redefine that getter.
  if (tape.count === tape.capacity) {
    tape.capacity *= 2
    const grown = new P.Uint8Array(tape.capacity)
    P.TypedArraySet(grown, tape.kinds)
    tape.kinds = grown
  }
  // Indexed stores into a typed array and a prototype-less array: no setter can intercept them.
  tape.kinds[tape.count] = kind
  tape.vals[tape.count] = val
  tape.count++
}

/** Write the result (or, for a workflow's remote call, the arguments: `path`) as a tape, or return the failure that stopped it. */
function resultTape (value: unknown, limits: Limits, path: string = 'result'): TapeOut | Failure {
  const tape = { __proto__: null, ok: true, kinds: new P.Uint8Array(64), vals: bareList(), count: 0, capacity: 64, bytes: 0 } as unknown as TapeOut
  try {
    // A function that returns nothing returns null: dag-cbor has no undefined.
    writeResult(tape, value === undefined ? null : value, path, 0, new P.Set(), limits)
    return tape
  } catch (err) {
    if (typeof err === 'object' && err !== null && P.WeakSetHas(P.rhizomeErrors, err)) return err as Failure
    const thrown = describeThrown(err, limits)
    if (thrown.kind !== 'threw') return thrown
    return failure('unsupported', `reading the result threw ${thrown.name ?? 'Error'}: ${thrown.message ?? ''}`)
  }
}

function writeResult (tape: TapeOut, value: unknown, path: string, depth: number, ancestors: Set<unknown>, limits: Limits): void {
  if (depth > limits.depthMax) throw walkFailure('unsupported', `${path} is nested deeper than ${limits.depthMax} levels`)
  const type = typeof value
  if (value === null || type === 'boolean') return emit(tape, SCALAR, value, 1, limits)
  if (type === 'number') {
    if (!P.NumberIsFinite(value)) throw walkFailure('unsupported', `${path} is ${P.String(value)}, which dag-cbor cannot encode`)
    return emit(tape, SCALAR, value, P.NumberIsInteger(value) ? 1 : 9, limits)
  }
  // UTF-8 takes at least one byte per UTF-16 code unit, so length is a lower bound.
  if (type === 'string') return emit(tape, SCALAR, value, 1 + (value as string).length, limits)
  if (type === 'bigint') {
    if ((value as bigint) < -(2n ** 63n) || (value as bigint) > 2n ** 63n - 1n) throw walkFailure('unsupported', `${path} is a BigInt outside the int64 range`)
    return emit(tape, BIGINT, value, 1, limits)
  }
  if (type === 'undefined') throw walkFailure('unsupported', `${path} is undefined, which dag-cbor cannot encode here`)
  if (type !== 'object') throw walkFailure('unsupported', `${path} is a ${type}, which is not data`)
  const object = value as object
  const tag = P.TypedArrayGetToStringTag(object)
  if (tag === 'Uint8Array') return emit(tape, BYTES, copyBytes(object as Uint8Array, tape, limits), 1, limits)
  if (tag !== undefined) throw walkFailure('unsupported', `${path} is a ${tag}: use Uint8Array for bytes`)
  // A workflow's Ref travels as the CID link of the result it stands for.
  const ref = P.WeakMapGet(REFS, object)
  if (ref !== undefined) return emit(tape, CID, copyBytes(ref, tape, limits), 3, limits)
  const cid = cidBytes(object)
  if (cid !== undefined) return emit(tape, CID, copyBytes(cid, tape, limits), 3, limits)
  if (P.SetHas(ancestors, object)) throw walkFailure('unsupported', `${path} contains a cycle`)
  P.SetAdd(ancestors, object)
  if (P.ArrayIsArray(object)) writeList(tape, object, path, depth, ancestors, limits)
  else writeMap(tape, object, path, depth, ancestors, limits)
  P.SetDelete(ancestors, object)
}

function copyBytes (bytes: Uint8Array, tape: TapeOut, limits: Limits): Uint8Array {
  const length = P.TypedArrayGetByteLength(bytes)
  // Count before copying, and copy so only these bytes (not the whole backing buffer) leave.
  tape.bytes += length
  if (tape.bytes > limits.outputBytesMax) throw walkFailure('output', 'the result is too large', tape.bytes)
  const copy = new P.Uint8Array(length)
  P.TypedArraySet(copy, bytes)
  return copy
}

/** A CID from multiformats (bundled by the function) marks itself with `cid['/'] === cid.bytes`. */
function cidBytes (object: object): Uint8Array | undefined {
  const slash = P.ObjectGetOwnPropertyDescriptor(object, '/')
  if (slash === undefined || !P.ObjectHasOwn(slash, 'value')) return undefined
  const bytes = P.ObjectGetOwnPropertyDescriptor(object, 'bytes')
  if (bytes === undefined || !P.ObjectHasOwn(bytes, 'value') || bytes.value !== slash.value) return undefined
  return P.TypedArrayGetToStringTag(bytes.value) === 'Uint8Array' ? bytes.value : undefined
}

function writeList (tape: TapeOut, list: unknown[], path: string, depth: number, ancestors: Set<unknown>, limits: Limits): void {
  const length: unknown = list.length
  if (typeof length !== 'number' || !P.NumberIsSafeInteger(length) || length < 0) throw walkFailure('unsupported', `${path} has an invalid length`)
  emit(tape, LIST, length, 1, limits)
  for (let i = 0; i < length; i++) {
    // Read elements directly (fast): a getter on an index runs like any other function code,
    // and a hole reads as undefined, which is refused.
    const element = list[i]
    if (element === undefined) throw walkFailure('unsupported', `${path}[${i}] is undefined (or a hole), which dag-cbor cannot encode in an array`)
    writeResult(tape, element, `${path}[${i}]`, depth + 1, ancestors, limits)
  }
}

function writeMap (tape: TapeOut, object: object, path: string, depth: number, ancestors: Set<unknown>, limits: Limits): void {
  const proto = P.ObjectGetPrototypeOf(object)
  if (proto !== P.ObjectPrototype && proto !== null) {
    throw walkFailure('unsupported', `${path} is a ${P.StringPrototypeSlice(P.ObjectPrototypeToString(object), 8, -1)} with a prototype (a class instance, Map, Set, Date, ...), not a plain object`)
  }
  const keys = P.ReflectOwnKeys(object)
  const names = bareList() as string[]
  const values = bareList()
  let count = 0
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    const d = P.ObjectGetOwnPropertyDescriptor(object, key)
    if (d === undefined || d.enumerable !== true) continue
    if (typeof key === 'symbol') throw walkFailure('unsupported', `${path} has a symbol-keyed property, which is not data`)
    if (!P.ObjectHasOwn(d, 'value')) throw walkFailure('unsupported', `${path}.${key} is a getter; return plain data`)
    // Like JSON: properties whose value is undefined are left out.
    if (d.value === undefined) continue
    names[count] = key
    values[count] = d.value
    count++
  }
  emit(tape, MAP, count, 1, limits)
  for (let i = 0; i < count; i++) {
    emit(tape, SCALAR, names[i], 1 + names[i].length, limits)
    writeResult(tape, values[i], `${path}.${names[i]}`, depth + 1, ancestors, limits)
  }
}

// --- Arguments ---------------------------------------------------------------------------------

/** Rebuild arguments from the host's tape (trusted: the host wrote it). */
function readArgs (kinds: number[], vals: unknown[]): unknown[] {
  const cursor = { at: 0 }
  return readArg(kinds, vals, cursor) as unknown[]
}

function readArg (kinds: number[], vals: unknown[], cursor: { at: number }): unknown {
  const kind = kinds[cursor.at]
  const val = vals[cursor.at] as any
  cursor.at++
  if (kind === LIST) {
    // Built without a prototype (no setter can intercept), then given the usual one.
    const list = bareList()
    for (let i = 0; i < val; i++) list[i] = readArg(kinds, vals, cursor)
    P.ObjectSetPrototypeOf(list, P.ArrayPrototype)
    return list
  }
  if (kind === MAP) {
    const map: Record<string, unknown> = { __proto__: null } as unknown as Record<string, unknown>
    for (let i = 0; i < val; i++) {
      const key = vals[cursor.at] as string
      cursor.at++
      map[key] = readArg(kinds, vals, cursor)
    }
    P.ObjectSetPrototypeOf(map, P.ObjectPrototype)
    return map
  }
  if (kind === CID) {
    // The shape multiformats' CID.asCID() recognises, so a bundled multiformats can adopt it.
    const multihash = { code: val.multihashCode, size: val.digest.length, digest: val.digest, bytes: val.multihashBytes }
    return { '/': val.bytes, bytes: val.bytes, version: val.version, code: val.code, multihash }
  }
  return val
}

// --- Runners -----------------------------------------------------------------------------------

/** js mode: call `exportName` of the module namespace `ns` with the tape's arguments. */
async function runJs (ns: any, exportName: string, kinds: number[], vals: unknown[], seed: Uint8Array, limits: Limits): Promise<TapeOut | Failure> {
  reseed(seed)
  let fn: unknown
  try {
    fn = ns[exportName]
  } catch (err) {
    return describeThrown(err, limits)
  }
  if (typeof fn !== 'function') return exportFailure(ns)
  let value: unknown
  try {
    value = await P.ReflectApply(fn as (...args: unknown[]) => unknown, undefined, readArgs(kinds, vals))
  } catch (err) {
    return describeThrown(err, limits)
  }
  return resultTape(value, limits)
}

function exportFailure (ns: any): Failure {
  const names: string[] = []
  const keys = P.ReflectOwnKeys(ns)
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    try {
      if (typeof key === 'string' && typeof ns[key] === 'function') append(names, key)
    } catch {}
  }
  const f = failure('export')
  f.exports = names
  return f
}

/** What the host sends for each wasm parameter: a number or BigInt as is, or bytes to copy in. */
interface WasmArg { bytes?: Uint8Array, value?: number | bigint }

/** wasm mode: a compiled module kept in this closure, instantiated afresh for every call. */
function makeWasmRunner (): { compile: (bytes: Uint8Array<ArrayBuffer>) => Failure | null, invoke: (...args: any[]) => TapeOut | Failure } {
  let compiled: WebAssembly.Module | undefined
  const compile = (bytes: Uint8Array<ArrayBuffer>): Failure | null => {
    try {
      compiled = new P.WebAssemblyModule(bytes)
      return null
    } catch (err) {
      return failure('module', (err as Error).message)
    }
  }
  const invoke = (exportName: string, args: WasmArg[], seed: Uint8Array, limits: Limits): TapeOut | Failure => {
    reseed(seed)
    if (compiled === undefined) return failure('module', 'no module compiled')
    const state: { memory?: WebAssembly.Memory, output?: Uint8Array } = {}
    const imports = {
      rhizome: {
        random_f64: () => nextRandom(),
        output: (ptr: number, length: number) => { state.output = readMemory(state.memory, ptr, length, limits) }
      }
    }
    try {
      const instance = new P.WebAssemblyInstance(compiled, imports)
      const exports = instance.exports as any
      if (exports.memory instanceof P.WebAssemblyMemory) state.memory = exports.memory
      const fn = exports[exportName]
      if (typeof fn !== 'function') return exportFailure(exports)
      const params = wasmParams(exports, state.memory, args)
      const returned = P.ReflectApply(fn, undefined, params)
      return resultTape(state.output ?? returned, limits)
    } catch (err) {
      return wasmFailure(err, limits)
    }
  }
  return { compile, invoke }
}

function wasmParams (exports: any, memory: WebAssembly.Memory | undefined, args: WasmArg[]): unknown[] {
  const params: unknown[] = []
  for (let i = 0; i < args.length; i++) {
    const bytes = args[i].bytes
    if (bytes === undefined) {
      append(params, args[i].value)
      continue
    }
    if (typeof exports.alloc !== 'function' || memory === undefined) {
      throw walkFailure('unsupported', 'a bytes argument needs the module to export "alloc" (i32 length → i32 pointer) and its "memory"')
    }
    const ptr = exports.alloc(bytes.length) >>> 0
    if (ptr + bytes.length > memory.buffer.byteLength) throw walkFailure('trap', `alloc(${bytes.length}) returned ${ptr}, outside the module's memory`)
    P.TypedArraySet(new P.Uint8Array(memory.buffer, ptr, bytes.length), bytes)
    append(params, ptr)
    append(params, bytes.length)
  }
  return params
}

function readMemory (memory: WebAssembly.Memory | undefined, ptr: number, length: number, limits: Limits): Uint8Array {
  const start = ptr >>> 0
  const size = length >>> 0
  if (size > limits.outputBytesMax) throw walkFailure('output', 'rhizome.output was given too many bytes', size)
  if (memory === undefined) throw walkFailure('unsupported', 'rhizome.output needs the module to export its memory as "memory"')
  if (start + size > memory.buffer.byteLength) throw walkFailure('trap', `rhizome.output(${start}, ${size}) reads outside the module's memory`)
  const copy = new P.Uint8Array(size)
  P.TypedArraySet(copy, new P.Uint8Array(memory.buffer, start, size))
  return copy
}

function wasmFailure (err: unknown, limits: Limits): Failure {
  if (typeof err === 'object' && err !== null && P.WeakSetHas(P.rhizomeErrors, err)) return err as Failure
  if (err instanceof P.WebAssemblyRuntimeError) return failure('trap', (err as Error).message)
  if (err instanceof P.WebAssemblyCompileError) return failure('module', (err as Error).message)
  const described = describeThrown(err, limits)
  // Anything else the module raised (a LinkError, a TypeError converting an i64) is its fault.
  return described.kind === 'threw' ? failure('trap', `${described.name ?? 'Error'}: ${described.message ?? ''}`) : described
}

/** inspect mode: name and `typeof` of every export of the module namespace `ns`. */
function listExports (ns: any): Array<[string, string]> {
  const list: Array<[string, string]> = []
  const keys = P.ReflectOwnKeys(ns)
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    if (typeof key !== 'string') continue
    let type: string
    try {
      type = typeof ns[key]
    } catch {
      type = 'uninitialized'
    }
    append(list, [key, type])
  }
  return list
}

/** Entry point: set the context up for `mode` and return its runner. */
function install (mode: 'js' | 'wasm' | 'inspect', seed: Uint8Array): unknown {
  reseed(seed)
  if (mode === 'wasm') return makeWasmRunner()
  makeDeterministic()
  return mode === 'inspect' ? listExports : runJs
}

// --- Frozen realm (js fast path, see js-engine.ts) ------------------------------------------

/**
 * Lock the context down so that calls can share it: nothing one call does to what existed before
 * its module was evaluated can reach a later call. Runs after install(), before any function code.
 *
 * What was checked, channel by channel (V8 13, Node 24, isolated-vm 7):
 *   - every object reachable from globalThis through own property values, accessor get/set
 *     functions and [[Prototype]]s: frozen, globalThis included (so `var`/function declarations
 *     of an indirect eval, and new globals, throw; the global lexical scope only grows through
 *     classic scripts, which function code cannot run);
 *   - intrinsics reachable only through syntax or results: the prototypes of generator, async,
 *     async generator functions and of their instances, %IteratorPrototype%,
 *     %AsyncIteratorPrototype%, the Array/Map/Set/String/RegExp-string iterator prototypes, the
 *     iterator helper and Iterator.from wrapper prototypes, Intl.Segmenter's segments and their
 *     iterator, %ThrowTypeError% (strict arguments.callee), the shared get/set of an error's
 *     `stack`: frozen (roots below);
 *   - RegExp legacy statics: deleted (below);
 *   - Error.captureStackTrace, Error.stackTraceLimit: frozen with Error (the limit cannot be
 *     changed, Error.prepareStackTrace cannot be added);
 *   - Math.random: the prelude's, over RNG, which js-engine.ts reseeds by the function id before
 *     every module's top-level code runs and the runner reseeds with the call's seed;
 *   - Symbol.for's registry: shared, but a symbol carries nothing a later call can tell apart;
 *   - the prelude's own state (RNG, rhizomeErrors, REFS, WF): in this closure, out of reach;
 *   - pending jobs: isolated-vm drains the microtask queue at the end of each task, and there are
 *     no timers, so no code of a call runs after its task.
 */
function lockdown (): void {
  const g = globalThis as any
  // The RegExp "legacy static" accessors (RegExp.$1, RegExp.lastMatch, ...) read the last match
  // made anywhere in the context, so one call would see the previous call's matches. Freezing
  // cannot stop that (they are accessors over engine state): deleted, as SES does.
  const REGEXP_LEGACY_STATICS = ['$1', '$2', '$3', '$4', '$5', '$6', '$7', '$8', '$9', 'input', '$_', 'lastMatch', '$&', 'lastParen', '$+', 'leftContext', '$`', 'rightContext', "$'"]
  for (let i = 0; i < REGEXP_LEGACY_STATICS.length; i++) P.ReflectDeleteProperty(g.RegExp, REGEXP_LEGACY_STATICS[i])
  const strictArguments = (function (..._args: unknown[]) { return arguments })()
  const stack = P.ObjectGetOwnPropertyDescriptor(new P.Error('x'), 'stack')
  const roots: unknown[] = [
    g,
    function * () {},
    async function () {},
    async function * () {},
    [][Symbol.iterator](),
    new Map().entries(),
    new Set().values(),
    ''[Symbol.iterator](),
    'a'.matchAll(/a/g),
    strictArguments,
    stack?.get,
    stack?.set
  ]
  if (typeof g.Iterator === 'function') {
    roots.push(([] as any).values().map((x: unknown) => x))
    roots.push(g.Iterator.from({ next () { return { done: true, value: undefined } } }))
  }
  if (typeof g.Intl?.Segmenter === 'function') {
    const segments = new g.Intl.Segmenter().segment('')
    roots.push(segments, segments[Symbol.iterator]())
  }
  tameOverrides()
  deepFreeze(roots)
}

/**
 * The "override mistake": once a prototype is frozen, assigning a property of the same name on an
 * object that inherits from it throws in strict code — `this.name = 'ParseError'` in an Error
 * subclass, `Foo.prototype.toString = ...` in a bundled library — so such calls would always take
 * the exact rerun, and such modules lose the frozen path for good. As SES does for the properties
 * code commonly overrides, each becomes an accessor: reading gives the original value; writing
 * through an inheriting object defines the property on that object, as an assignment would in an
 * unfrozen realm; writing on the intrinsic itself still throws, so pollution still fails here and
 * reruns exactly. (Observable difference: getOwnPropertyDescriptor of these shows an accessor.)
 */
function tameOverrides (): void {
  const g = globalThis as any
  const TypeErrorOfRealm = g.TypeError
  const targets: Array<[object, string[]]> = [
    [g.Object.prototype, ['constructor', 'toString', 'toLocaleString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', 'propertyIsEnumerable']],
    [g.Function.prototype, ['constructor', 'toString']],
    [g.Array.prototype, ['constructor', 'toString']],
    [g.Promise.prototype, ['constructor']]
  ]
  const errors = [g.Error, g.TypeError, g.RangeError, g.SyntaxError, g.ReferenceError, g.EvalError, g.URIError, g.AggregateError]
  for (let i = 0; i < errors.length; i++) if (typeof errors[i] === 'function') targets.push([errors[i].prototype, ['constructor', 'message', 'name', 'toString']])
  for (let t = 0; t < targets.length; t++) {
    const [proto, keys] = targets[t]
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k]
      const d = P.ObjectGetOwnPropertyDescriptor(proto, key)
      if (d === undefined || !P.ObjectHasOwn(d, 'value') || d.writable !== true) continue
      const value = d.value
      P.ReflectDefineProperty(proto, key, {
        get: function () { return value },
        set: function (this: unknown, replacement: unknown) {
          if (this === proto) throw new TypeErrorOfRealm(`Cannot assign to read only property '${key}' of a frozen built-in`)
          if (!P.ReflectDefineProperty(this as object, key, { value: replacement, writable: true, enumerable: true, configurable: true })) {
            throw new TypeErrorOfRealm(`Cannot assign to property '${key}' of a frozen or non-extensible object`)
          }
        },
        enumerable: d.enumerable,
        configurable: false
      })
    }
  }
}

/** Freeze everything reachable from `roots` through own properties (values, getters, setters) and prototypes. */
function deepFreeze (roots: unknown[]): void {
  const seen = new P.Set()
  const pending = roots
  while (pending.length > 0) {
    const value = pending.pop()
    if (value === null || (typeof value !== 'object' && typeof value !== 'function') || P.SetHas(seen, value)) continue
    P.SetAdd(seen, value)
    P.ObjectFreeze(value)
    pending.push(P.ObjectGetPrototypeOf(value))
    const keys = P.ReflectOwnKeys(value as object)
    for (let i = 0; i < keys.length; i++) {
      const d = P.ObjectGetOwnPropertyDescriptor(value, keys[i]) as PropertyDescriptor
      if (P.ObjectHasOwn(d, 'value')) pending.push(d.value)
      else pending.push(d.get, d.set)
    }
  }
}

/**
 * Entry point of the frozen realm: installs the js runner seeded by `seed` (the function id),
 * locks the context down, and returns [runner, reset]; reset() reseeds Math.random by the
 * function id, so every module's top-level code sees what it would see in a fresh context.
 */
function installFrozen (seed: Uint8Array): unknown {
  const runner = install('js', seed)
  lockdown()
  return [runner, function reset () { reseed(seed) }]
}

export const PRELUDE_PARTS: Array<(...args: any[]) => unknown> = [
  capturePrimordials, dataProperty, bareList, append, failure, reseed, nextUint32, nextRandom, nondeterminism,
  makeDeterministic, describeThrown, walkFailure, emit, resultTape, writeResult, copyBytes, cidBytes,
  writeList, writeMap, readArgs, readArg, runJs, exportFailure, makeWasmRunner, wasmParams, readMemory,
  wasmFailure, listExports, install
]

/** The parts of the frozen realm's prelude (js fast path): the shared parts and the lockdown. */
export const FROZEN_PRELUDE_PARTS: Array<(...args: any[]) => unknown> = [...PRELUDE_PARTS, lockdown, tameOverrides, deepFreeze, installFrozen]

/**
 * Script source of one closure holding `parts` (and the closure's constants `lines`) that
 * evaluates, inside a fresh context, to the part named `entry`.
 */
export function preludeSource (parts: Array<(...args: any[]) => unknown>, entry: string, lines: string[] = []): string {
  return [
    '(function () {',
    '"use strict";',
    `const SCALAR = ${SCALAR}, BYTES = ${BYTES}, LIST = ${LIST}, MAP = ${MAP}, CID = ${CID}, BIGINT = ${BIGINT};`,
    ...lines,
    ...parts.map(part => part.toString()),
    'const P = capturePrimordials();',
    'const RNG = new P.Uint32Array(4);',
    'const REFS = new P.WeakMap();',
    'const WF = { __proto__: null, on: false, fatal: undefined };',
    `return ${entry};`,
    '})()'
  ].join('\n')
}

/** Script source that evaluates (inside a fresh context) to `install`. */
export const PRELUDE_SOURCE = preludeSource(PRELUDE_PARTS, 'install')

/** The tape kinds as the prelude numbers them (values.ts must agree). */
export const PRELUDE_TAPE_KINDS = { SCALAR, BYTES, LIST, MAP, CID, BIGINT }

export type { Failure as PreludeFailure, TapeOut as PreludeTape, Limits as PreludeLimits, Primordials, WasmArg }
// The workflow mode's parts (prelude-workflow.ts) call these inside the same closure.
export { append, bareList, dataProperty, describeThrown, failure, makeDeterministic, nondeterminism, readArgs, reseed, resultTape }
