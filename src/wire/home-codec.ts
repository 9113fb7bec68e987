/**
 * The home protocol, `/rhizome/<net>/home/1.0.0` (RPC, src/net/rpc.ts): what the home-set peers of
 * a durable run say to each other, and how any peer finds a run.
 *
 *   { op: 'open', runId, spec, homeSet }   the peer that starts a run asks each home-set peer to
 *                                          keep it; answered { ok: true } once persisted
 *   { op: 'msg', runId, message }           a lease or memo message (src/protocol/home/); answered {}
 *   { op: 'status', runId }                 where is this run, and is it over? answered with a
 *                                          HomeStatus (known: false from a peer that never had it)
 *   { op: 'signal', runId, name, value }    a signal for the run, relayed to whoever drives it
 *
 * Every field from the network is checked here: shapes, string lengths, counts, whole numbers;
 * memo entries are checked again (and fully) by the memo machines. Anything else is a protocol
 * violation by the sender.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { ProtocolViolationError } from '../model/errors.ts'
import { PEER_ID_CHARS_MAX } from '../model/limits.ts'
import { HOME_SET_MAX } from '../protocol/lease/index.ts'
import { MEMO_INLINE_BYTES_MAX, MEMO_STRING_CHARS_MAX, MEMO_OPTIONS_DEFAULTS } from '../protocol/memo/index.ts'
import type { HomeMessage } from '../protocol/home/index.ts'
import type { MemoEntry } from '../protocol/memo/index.ts'

/** Characters of a run id: a CIDv1 is 59; room for other bases. */
export const RUN_ID_CHARS_MAX = 128
/** Bytes of a run's spec (workflow CID, export, arguments): the run's arguments are capped at 1 MiB by the API. */
export const RUN_SPEC_BYTES_MAX = 1024 * 1024 + 4096
/** Bytes of a signal's value on the wire (the run driver checks its own, smaller, limit). */
export const SIGNAL_VALUE_BYTES_MAX = 256 * 1024
/** Frames on the home protocol: a full memo batch (256 entries of ≤ 1 KiB inline + ids) or a spec. */
export const HOME_FRAME_BYTES_MAX = Math.max(RUN_SPEC_BYTES_MAX, SIGNAL_VALUE_BYTES_MAX, MEMO_OPTIONS_DEFAULTS.batchEntriesMax * (MEMO_INLINE_BYTES_MAX + 3 * MEMO_STRING_CHARS_MAX + 64)) + 4096

export type HomeRequest =
  | { op: 'open', runId: string, spec: Uint8Array, homeSet: string[] }
  | { op: 'msg', runId: string, message: HomeMessage }
  | { op: 'status', runId: string }
  | { op: 'signal', runId: string, name: string, value: Uint8Array }

/** What a peer knows of a run. */
export interface HomeStatus {
  known: boolean
  homeSet?: string[]
  /** 'running' until the outcome is in this peer's memo. */
  state?: 'running' | 'settled'
  /** The peer this one believes drives (its lease promise's holder). */
  driver?: string
  epoch?: number
  /** The outcome entry's value bytes (dag-cbor RunResultRecord), when settled and inline. */
  outcome?: { cid: string, peer: string, bytes?: Uint8Array }
  /** The run's spec (dag-cbor, see `parseRunSpec`), so a peer outside the home set can describe it. */
  spec?: Uint8Array
}

/** A run's spec as the home set keeps it. */
export interface RunSpecFields {
  workflow: string
  export: string
  args: Uint8Array
  startedMs: number
  opener: string
  parent?: string
  ancestors?: string[]
}

/** Runs above a child run: the run driver's own child depth limit (16), with room. */
const SPEC_ANCESTORS_MAX = 64

/** Decode and check a run's spec (from another peer). */
export function parseRunSpec (encoded: Uint8Array): RunSpecFields {
  let value: unknown
  try {
    value = dagCbor.decode(encoded)
  } catch (err) {
    throw new ProtocolViolationError('a run spec must be dag-cbor', { cause: err })
  }
  if (!isRecord(value)) throw new ProtocolViolationError('a run spec must be a map')
  const spec: RunSpecFields = {
    workflow: text(value.workflow, 'spec workflow', RUN_ID_CHARS_MAX),
    export: text(value.export, 'spec export', 256),
    args: bytes(value.args, 'spec args', RUN_SPEC_BYTES_MAX),
    startedMs: whole(value.startedMs, 'spec startedMs'),
    opener: text(value.opener, 'spec opener', PEER_ID_CHARS_MAX)
  }
  if (value.parent !== undefined) spec.parent = text(value.parent, 'spec parent', RUN_ID_CHARS_MAX)
  if (value.ancestors !== undefined) {
    const ancestors = list(value.ancestors, 'spec ancestors')
    if (ancestors.length > SPEC_ANCESTORS_MAX) throw new ProtocolViolationError(`a run spec names at most ${SPEC_ANCESTORS_MAX} ancestors`)
    spec.ancestors = ancestors.map(a => text(a, 'spec ancestor', RUN_ID_CHARS_MAX))
  }
  return spec
}

const OPS = new Set(['open', 'msg', 'status', 'signal'])

export function parseHomeRequest (body: unknown): HomeRequest {
  if (!isRecord(body) || typeof body.op !== 'string' || !OPS.has(body.op)) throw new ProtocolViolationError('home request must be a map with op open, msg, status or signal')
  const runId = text(body.runId, 'runId', RUN_ID_CHARS_MAX)
  switch (body.op) {
    case 'open':
      return { op: 'open', runId, spec: bytes(body.spec, 'spec', RUN_SPEC_BYTES_MAX), homeSet: peers(body.homeSet) }
    case 'status':
      return { op: 'status', runId }
    case 'signal':
      return { op: 'signal', runId, name: text(body.name, 'signal name', 64), value: bytes(body.value, 'signal value', SIGNAL_VALUE_BYTES_MAX) }
    default:
      return { op: 'msg', runId, message: parseHomeMessage(body.message) }
  }
}

export function parseHomeMessage (m: unknown): HomeMessage {
  if (!isRecord(m) || typeof m.type !== 'string') throw new ProtocolViolationError('home message must be a map with a type')
  switch (m.type) {
    case 'lease-request':
    case 'lease-grant':
      return { type: m.type, epoch: whole(m.epoch, 'epoch'), round: whole(m.round, 'round') }
    case 'lease-refuse': {
      const reason = m.reason
      if (reason !== 'stale-epoch' && reason !== 'held' && reason !== 'not-home') throw new ProtocolViolationError('lease refusal reason must be stale-epoch, held or not-home')
      return { type: 'lease-refuse', epoch: whole(m.epoch, 'epoch'), round: whole(m.round, 'round'), reason }
    }
    case 'append':
      return { type: 'append', epoch: whole(m.epoch, 'epoch'), entries: entries(m.entries) }
    case 'gather':
      return { type: 'gather', epoch: whole(m.epoch, 'epoch'), nonce: whole(m.nonce, 'nonce') }
    case 'probe':
    case 'probe-reply':
      return { type: m.type, epoch: whole(m.epoch, 'epoch'), digest: digest(m.digest) }
    case 'ack':
      return { type: 'ack', epoch: whole(m.epoch, 'epoch'), ids: list(m.ids, 'ids').map(id => text(id, 'id', MEMO_STRING_CHARS_MAX)) }
    case 'refused':
      return { type: 'refused', epoch: whole(m.epoch, 'epoch') }
    case 'home-set':
      return { type: 'home-set', epoch: whole(m.epoch, 'epoch'), homeSet: peers(m.homeSet) }
    case 'memo-part':
      return { type: 'memo-part', epoch: whole(m.epoch, 'epoch'), nonce: whole(m.nonce, 'nonce'), part: whole(m.part, 'part'), parts: whole(m.parts, 'parts'), entries: entries(m.entries) }
    default:
      throw new ProtocolViolationError(`unknown home message type ${JSON.stringify(m.type.slice(0, 32))}`)
  }
}

/** The status answer, checked on the asking side. */
export function parseHomeStatus (body: unknown): HomeStatus {
  if (!isRecord(body) || typeof body.known !== 'boolean') throw new ProtocolViolationError('home status must be a map with known')
  const status: HomeStatus = { known: body.known }
  if (body.homeSet !== undefined) status.homeSet = peers(body.homeSet)
  if (body.state !== undefined) {
    if (body.state !== 'running' && body.state !== 'settled') throw new ProtocolViolationError('home status state must be running or settled')
    status.state = body.state
  }
  if (body.driver !== undefined) status.driver = text(body.driver, 'driver', PEER_ID_CHARS_MAX)
  if (body.epoch !== undefined) status.epoch = whole(body.epoch, 'epoch')
  if (body.outcome !== undefined) {
    const o = body.outcome
    if (!isRecord(o)) throw new ProtocolViolationError('home status outcome must be a map')
    status.outcome = { cid: text(o.cid, 'outcome cid', MEMO_STRING_CHARS_MAX), peer: text(o.peer, 'outcome peer', PEER_ID_CHARS_MAX) }
    if (o.bytes !== undefined) status.outcome.bytes = bytes(o.bytes, 'outcome bytes', MEMO_INLINE_BYTES_MAX)
  }
  if (body.spec !== undefined) status.spec = bytes(body.spec, 'spec', RUN_SPEC_BYTES_MAX)
  return status
}

function entries (value: unknown): MemoEntry[] {
  const items = list(value, 'entries')
  if (items.length > MEMO_OPTIONS_DEFAULTS.batchEntriesMax) throw new ProtocolViolationError(`a memo message carries at most ${MEMO_OPTIONS_DEFAULTS.batchEntriesMax} entries`)
  return items.map((e) => {
    if (!isRecord(e) || !isRecord(e.value)) throw new ProtocolViolationError('a memo entry is a map with a value map')
    const entry: MemoEntry = {
      id: text(e.id, 'entry id', MEMO_STRING_CHARS_MAX),
      epoch: whole(e.epoch, 'entry epoch'),
      value: { cid: text(e.value.cid, 'entry cid', MEMO_STRING_CHARS_MAX), peer: text(e.value.peer, 'entry peer', MEMO_STRING_CHARS_MAX) }
    }
    if (e.value.bytes !== undefined) entry.value.bytes = bytes(e.value.bytes, 'entry bytes', MEMO_INLINE_BYTES_MAX)
    return entry
  })
}

function digest (value: unknown): { count: number, hashA: number, hashB: number } {
  if (!isRecord(value)) throw new ProtocolViolationError('a digest is a map')
  return { count: whole(value.count, 'digest count'), hashA: whole(value.hashA, 'digest hashA'), hashB: whole(value.hashB, 'digest hashB') }
}

function peers (value: unknown): string[] {
  const items = list(value, 'homeSet')
  if (items.length < 1 || items.length > HOME_SET_MAX) throw new ProtocolViolationError(`a home set has 1..${HOME_SET_MAX} peers`)
  const ids = items.map(p => text(p, 'peer id', PEER_ID_CHARS_MAX))
  if (new Set(ids).size !== ids.length) throw new ProtocolViolationError('a home set names each peer once')
  return ids
}

function list (value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new ProtocolViolationError(`${what} must be an array`)
  return value
}

function text (value: unknown, what: string, charsMax: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > charsMax) throw new ProtocolViolationError(`${what} must be a string of 1..${charsMax} characters`)
  return value
}

function whole (value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new ProtocolViolationError(`${what} must be a whole number`)
  return value
}

function bytes (value: unknown, what: string, bytesMax: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new ProtocolViolationError(`${what} must be bytes`)
  if (value.byteLength > bytesMax) throw new ProtocolViolationError(`${what} is ${value.byteLength} bytes; at most ${bytesMax}`)
  return value
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array)
}
