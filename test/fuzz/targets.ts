/**
 * Every decoder of network, disk and API input, as a fuzz target: an input generator, the call,
 * and what an accepted value must satisfy. The property (./run.ts) is the same for all: each
 * input is accepted as a valid value or refused with a named RhizomeError — never a TypeError,
 * RangeError or SyntaxError, never a crash or a hang.
 */
import fc from 'fast-check'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import { decodeManifest, encodeManifest } from '../../src/functions/manifest.ts'
import type { FunctionManifest } from '../../src/functions/manifest.ts'
import * as dagCbor from '@ipld/dag-cbor'
import { parseReply, parseRequest } from '../../src/net/blob-service.ts'
import { parseReplicateRequest } from '../../src/net/function-service.ts'
import { readApiToken } from '../../src/node/api-token.ts'
import { readRegularFile, readRegularFileSync } from '../../src/api/regular-file.ts'
import { resolveConfig } from '../../src/node/config.ts'
import { loadOrCreateIdentity } from '../../src/node/identity.ts'
import { DEFAULT_LIMITS } from '../../src/sandbox/index.ts'
import { FrameDecoder, encodeFrame } from '../../src/wire/frame.ts'
import { decodeAnnouncement } from '../../src/wire/membership-codec.ts'
import { decodeEnvelope } from '../../src/wire/rpc.ts'
import { parseTaskReply, parseTaskRequest } from '../../src/wire/task-codec.ts'
import { decodeRemoteValue } from '../../src/wire/value.ts'
import { SAMPLE_CID, bodyValue, byteEdits, cborBytes, dagValue, edit } from './inputs.ts'

export interface Target<T = unknown> {
  name: string
  inputs: fc.Arbitrary<T>
  /** Decode one input. Returns the accepted value, or throws. */
  decode: (input: T) => unknown
  /** Throws if an accepted value is not valid. */
  check?: (value: unknown, input: T) => void
  /** Removes what the target made (temp dirs). */
  close?: () => void
}

const PEER = '12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf'

function invalid (what: string): never {
  throw new Error(`accepted an invalid value: ${what}`)
}

function isCid (value: unknown): boolean {
  return value instanceof CID && value.bytes instanceof Uint8Array && typeof value.toString() === 'string'
}

// ---- frames ---------------------------------------------------------------------------------

interface FrameInput { bytes: Uint8Array, cuts: number[], frameBytesMax: number }

type FrameOutcome = { frames: Uint8Array[], buffered: number } | { error: Error }

function decodeFrames (bytes: Uint8Array, cuts: number[], frameBytesMax: number): FrameOutcome {
  const decoder = new FrameDecoder(frameBytesMax)
  const frames: Uint8Array[] = []
  let at = 0
  try {
    for (const cut of [...cuts, bytes.byteLength]) {
      frames.push(...decoder.push(bytes.subarray(at, cut)))
      at = cut
    }
  } catch (err) {
    return { error: err as Error }
  }
  return { frames, buffered: decoder.bufferedBytes }
}

const frameInput: fc.Arbitrary<FrameInput> = fc.tuple(
  fc.oneof(
    fc.uint8Array({ maxLength: 400 }),
    // Valid frames back to back, sometimes with garbage or a cut-off frame after them.
    fc.tuple(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 6 }), fc.uint8Array({ maxLength: 8 }))
      .map(([bodies, tail]) => Uint8Array.from([...bodies.flatMap(b => [...encodeFrame(b)]), ...tail]))
  ),
  fc.array(fc.nat(), { maxLength: 40 }),
  fc.constantFrom(0, 1, 127, 128, 200, 300, 1024, 2 ** 31)
).map(([bytes, cuts, frameBytesMax]) => ({
  bytes,
  cuts: [...new Set(cuts.map(c => c % (bytes.byteLength + 1)))].sort((a, b) => a - b),
  frameBytesMax
}))

const framesTarget: Target<FrameInput> = {
  name: 'frames (every chunking gives the same frames or the same error)',
  inputs: frameInput,
  decode: ({ bytes, cuts, frameBytesMax }) => {
    const whole = decodeFrames(bytes, [], frameBytesMax)
    const split = decodeFrames(bytes, cuts, frameBytesMax)
    if ('error' in whole || 'error' in split) {
      const a = 'error' in whole ? `${whole.error.name}: ${whole.error.message}` : 'no error'
      const b = 'error' in split ? `${split.error.name}: ${split.error.message}` : 'no error'
      if (a !== b) throw new Error(`one chunk gave ${a}; chunks cut at ${cuts.join(',')} gave ${b}`)
      throw (whole as { error: Error }).error
    }
    if (whole.buffered !== split.buffered || whole.frames.length !== split.frames.length ||
        whole.frames.some((f, i) => !equal(f, split.frames[i]))) {
      throw new Error(`chunks cut at ${cuts.join(',')} gave other frames than one chunk`)
    }
    return whole.frames
  },
  check: (frames, { frameBytesMax }) => {
    for (const frame of frames as Uint8Array[]) if (frame.byteLength > frameBytesMax) invalid(`a frame of ${frame.byteLength} bytes past ${frameBytesMax}`)
  }
}

const frameChunksTarget: Target<FrameInput & { frameChunksMax: number }> = {
  name: 'frames with a small chunk limit',
  inputs: fc.tuple(frameInput, fc.integer({ min: 1, max: 8 })).map(([input, frameChunksMax]) => ({ ...input, frameChunksMax })),
  decode: ({ bytes, cuts, frameBytesMax, frameChunksMax }) => {
    const decoder = new FrameDecoder(frameBytesMax, { frameChunksMax })
    const frames: Uint8Array[] = []
    let at = 0
    for (const cut of [...cuts, bytes.byteLength]) {
      frames.push(...decoder.push(bytes.subarray(at, cut)))
      at = cut
    }
    return frames
  }
}

function equal (a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i])
}

// ---- dag-cbor messages ----------------------------------------------------------------------

const failure = fc.record({ name: fc.constantFrom('PeerBusyError', 'NotFoundError'), code: fc.constantFrom('ERR_PEER_BUSY', 'ERR_NOT_FOUND'), message: fc.string({ maxLength: 30 }), retryable: fc.boolean() })
const envelopeValue = fc.oneof(
  fc.record({ id: fc.nat({ max: 2 ** 31 - 1 }), kind: fc.constantFrom('req', 'res'), body: dagValue() }),
  fc.record({ id: fc.nat({ max: 2 ** 31 - 1 }), kind: fc.constant('err'), error: failure }),
  fc.record({ id: fc.nat({ max: 2 ** 31 - 1 }), kind: fc.constant('cancel') })
)

const envelopeTarget: Target<Uint8Array> = {
  name: 'rpc envelopes (decodeEnvelope)',
  inputs: cborBytes(envelopeValue, ['id', 'kind', 'body', 'error', 'name', 'code', 'message', 'retryable', 'hint']),
  decode: decodeEnvelope,
  check: (value) => {
    const envelope = value as { id: unknown, kind: unknown }
    if (typeof envelope.id !== 'number' || !['req', 'res', 'err', 'cancel'].includes(envelope.kind as string)) invalid('envelope')
  }
}

const announcementValue = fc.record({
  peerId: fc.constant(PEER),
  networkId: fc.constantFrom('rhizome', 'net-1'),
  incarnation: fc.nat(),
  seq: fc.nat(),
  version: fc.constantFrom('0.1.0', '1.2.3-rc.1'),
  addrs: fc.array(fc.constantFrom('/ip4/127.0.0.1/tcp/4001', '/ip6/::1/tcp/4002/ws'), { maxLength: 4 }),
  capacity: fc.nat({ max: 64 }).chain(slotsMax => fc.record({ slotsMax: fc.constant(slotsMax), slotsFree: fc.nat({ max: slotsMax }), queueLength: fc.nat({ max: 100 }) }))
})

const announcementTarget: Target<Uint8Array> = {
  name: 'membership announcements (decodeAnnouncement)',
  inputs: cborBytes(announcementValue, ['peerId', 'networkId', 'incarnation', 'seq', 'version', 'addrs', 'capacity', 'slotsFree', 'slotsMax', 'queueLength']),
  decode: decodeAnnouncement,
  check: (value) => {
    const a = value as { capacity: { slotsFree: number, slotsMax: number }, addrs: unknown[] }
    if (a.capacity.slotsFree > a.capacity.slotsMax || !Array.isArray(a.addrs)) invalid('announcement')
  }
}

const taskRequestValue = fc.record({ fn: fc.constant(SAMPLE_CID), export: fc.constantFrom('main', 'add', '$x_1'), args: fc.array(dagValue(), { maxLength: 3 }) })

const taskRequestTarget: Target<unknown> = {
  name: 'task requests (parseTaskRequest)',
  inputs: bodyValue(taskRequestValue, ['fn', 'export', 'args']),
  decode: parseTaskRequest,
  check: (value) => {
    const r = value as { fn: unknown, args: unknown }
    if (!isCid(r.fn) || !Array.isArray(r.args)) invalid('task request')
  }
}

const taskReplyValue = fc.record({
  attestation: fc.record({ task: fc.constant(SAMPLE_CID), result: fc.constant(SAMPLE_CID), peer: fc.constant(PEER), signature: fc.uint8Array({ minLength: 64, maxLength: 64 }) }),
  timings: fc.record({ queueMs: fc.nat(1000), fetchMs: fc.nat(1000), runMs: fc.nat(1000) }),
  result: fc.uint8Array({ maxLength: 40 })
})

const taskReplyTarget: Target<unknown> = {
  name: 'task replies (parseTaskReply)',
  inputs: bodyValue(taskReplyValue, ['attestation', 'task', 'result', 'peer', 'signature', 'timings', 'queueMs', 'fetchMs', 'runMs']),
  decode: parseTaskReply,
  check: (value) => {
    const r = value as { attestation: { task: unknown, result: unknown, signature: unknown } }
    if (!isCid(r.attestation.task) || !isCid(r.attestation.result) || !(r.attestation.signature instanceof Uint8Array)) invalid('task reply')
  }
}

const blobRequestTarget: Target<unknown> = {
  name: 'blob requests (parseRequest)',
  inputs: bodyValue(fc.record({ cid: fc.constant(SAMPLE_CID.toString()), offset: fc.nat(), length: fc.integer({ min: 1, max: 1024 * 1024 }) }), ['cid', 'offset', 'length']),
  decode: parseRequest,
  check: (value) => { if (!isCid((value as { cid: unknown }).cid)) invalid('blob request cid') }
}

const blobReplyTarget: Target<{ reply: unknown, totalSoFar: number | undefined }> = {
  name: 'blob replies (parseReply)',
  inputs: fc.record({
    reply: bodyValue(fc.record({ total: fc.nat(), bytes: fc.uint8Array({ maxLength: 100 }) }), ['total', 'bytes']),
    totalSoFar: fc.option(fc.nat(), { nil: undefined })
  }),
  decode: ({ reply, totalSoFar }) => parseReply(reply, totalSoFar),
  check: (value) => { if (!((value as { bytes: unknown }).bytes instanceof Uint8Array)) invalid('blob reply bytes') }
}

const replicateRequestTarget: Target<unknown> = {
  name: 'replicate requests (parseReplicateRequest)',
  inputs: bodyValue(fc.record({ op: fc.constant('replicate'), fn: fc.constant(SAMPLE_CID) }), ['op', 'fn']),
  decode: parseReplicateRequest,
  check: (value) => { if (!isCid((value as { fn: unknown }).fn)) invalid('replicate request fn') }
}

const remoteValueTarget: Target<Uint8Array> = {
  name: 'values from other peers (decodeRemoteValue)',
  inputs: cborBytes(dagValue(), []),
  decode: (bytes) => decodeRemoteValue(bytes, 'a fuzz value'),
  check: (value) => {
    // The encoders that later meet the value (memo entries, the API's answer) must not overflow
    // or throw on it. (Not: that it encodes back to the same bytes. The dag-cbor decoder turns
    // invalid UTF-8 in a string into U+FFFD, so [0x61, 0xa0] decodes to a value that encodes as
    // other bytes; results are hashed as bytes before they are decoded, so this does not let a
    // peer pass off one value as another.)
    dagCbor.encode(value)
  }
}

// ---- manifests ------------------------------------------------------------------------------

function manifestTarget (): Target<Uint8Array> {
  const manifest: FunctionManifest = {
    rhizome: 'function/1',
    name: 'fuzz',
    kind: 'js',
    code: SAMPLE_CID,
    codeBytes: 100,
    exports: ['add', 'main'],
    limits: { ...DEFAULT_LIMITS },
    deterministic: true
  }
  const valid = fc.record({ name: fc.constantFrom('fuzz', 'a function'), kind: fc.constantFrom('js', 'wasm'), deterministic: fc.boolean() })
    .map(changes => ({ ...manifest, ...changes }))
  // Encoded once through encodeManifest, so the valid half is canonical.
  encodeManifest(manifest)
  return {
    name: 'function manifests (decodeManifest)',
    inputs: cborBytes(valid, ['rhizome', 'name', 'kind', 'code', 'codeBytes', 'exports', 'limits', 'deterministic', ...Object.keys(DEFAULT_LIMITS)]),
    decode: decodeManifest,
    check: (value) => {
      const m = value as FunctionManifest
      const keys = Object.keys(m.limits).sort().join()
      if (keys !== Object.keys(DEFAULT_LIMITS).sort().join()) invalid(`manifest limits with fields ${keys}`)
      if (!isCid(m.code)) invalid('manifest code')
    }
  }
}

// ---- config (a file on disk and environment variables) ----------------------------------------

const CONFIG_FIELDS = ['listen', 'bootstrap', 'apiHost', 'apiPort', 'mdns', 'logLevel', 'networkId', 'slotsMax', 'announceIntervalMs', 'suspectAfterMs', 'goneAfterMs']
const ENV_NAMES = ['RHIZOME_LISTEN', 'RHIZOME_BOOTSTRAP', 'RHIZOME_API_HOST', 'RHIZOME_API_PORT', 'RHIZOME_MDNS', 'RHIZOME_LOG_LEVEL', 'RHIZOME_NETWORK_ID', 'RHIZOME_SLOTS_MAX', 'RHIZOME_ANNOUNCE_INTERVAL_MS', 'RHIZOME_SUSPECT_AFTER_MS', 'RHIZOME_GONE_AFTER_MS']

interface ConfigInput { file: string | undefined, env: Record<string, string> }

function configTarget (): Target<ConfigInput> {
  const dir = mkdtempSync(join(tmpdir(), 'rhizome-fuzz-config-'))
  const validConfig = {
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: [`/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`],
    apiHost: '127.0.0.1',
    apiPort: 0,
    mdns: false,
    logLevel: 'info',
    networkId: 'fuzz',
    slotsMax: 2,
    announceIntervalMs: 2000,
    suspectAfterMs: 5000,
    goneAfterMs: 10000
  }
  const json = fc.jsonValue({ maxDepth: 3 })
  const mutated = fc.tuple(fc.constantFrom(...CONFIG_FIELDS, '__proto__', 'constructor', 'extra'), fc.oneof(json, fc.string(), fc.constantFrom('1e400', '-0', ' 42 ', '0x10', 'true', '/ip4/1.2.3.4/tcp/1/p2p/nonsense')))
    .map(([key, value]) => JSON.stringify({ ...validConfig, [key]: value }).replace('"extra"', JSON.stringify(key)))
  const file = fc.oneof(
    fc.constant(undefined),
    fc.constant(JSON.stringify(validConfig)),
    { weight: 4, arbitrary: mutated },
    fc.string({ maxLength: 200 }),
    json.map(v => JSON.stringify(v)),
    fc.uint8Array({ maxLength: 200 }).map(b => Buffer.from(b).toString('latin1')),
    fc.integer({ min: 64 * 1024 - 20, max: 64 * 1024 + 20 }).map(n => JSON.stringify({ networkId: 'x'.repeat(n) }))
  )
  const env = fc.dictionary(fc.constantFrom(...ENV_NAMES), fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('0', '1', 'true', '65536', '-1', '100', '/ip4/127.0.0.1/tcp/1', `/ip4/127.0.0.1/tcp/1/p2p/${PEER}`)), { maxKeys: 3 })
  return {
    name: 'config (config.json on disk and RHIZOME_* variables)',
    inputs: fc.record({ file, env }),
    decode: ({ file, env }) => {
      if (file === undefined) rmSync(join(dir, 'config.json'), { force: true })
      else writeFileSync(join(dir, 'config.json'), file)
      return resolveConfig({ flags: { dataDir: dir }, env })
    },
    check: (value) => {
      const c = value as { slotsMax: number, suspectAfterMs: number, announceIntervalMs: number }
      if (!Number.isSafeInteger(c.slotsMax) || c.suspectAfterMs <= c.announceIntervalMs) invalid('config')
    },
    close: () => rmSync(dir, { recursive: true, force: true })
  }
}

// ---- identity (a key file on disk) -------------------------------------------------------------

async function identityTarget (): Promise<Target<Uint8Array>> {
  const dir = mkdtempSync(join(tmpdir(), 'rhizome-fuzz-identity-'))
  const keys = [
    privateKeyToProtobuf(await generateKeyPair('Ed25519')),
    privateKeyToProtobuf(await generateKeyPair('secp256k1')),
    privateKeyToProtobuf(await generateKeyPair('ECDSA'))
  ]
  const valid = fc.constantFrom(...keys)
  const edited = fc.tuple(valid, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }))
    .map(([bytes, edits]) => {
      const out = Uint8Array.from(bytes)
      for (const [at, byte] of edits) out[at % out.byteLength] = byte
      return out
    })
  return {
    name: 'identity (a damaged identity.key on disk)',
    inputs: fc.oneof(
      valid,
      { weight: 3, arbitrary: edited },
      fc.tuple(valid, fc.nat()).map(([bytes, n]) => bytes.slice(0, n % bytes.byteLength)),
      fc.tuple(valid, fc.uint8Array({ minLength: 1, maxLength: 40 })).map(([bytes, tail]) => Uint8Array.from([...bytes, ...tail])),
      fc.uint8Array({ maxLength: 200 }),
      fc.integer({ min: 4090, max: 4200 }).map(n => new Uint8Array(n))
    ),
    decode: async (bytes) => {
      writeFileSync(join(dir, 'identity.key'), bytes)
      return await loadOrCreateIdentity(dir)
    },
    check: (value) => {
      const { privateKey, created } = value as { privateKey: { type: string }, created: boolean }
      if (created || privateKey.type !== 'Ed25519') invalid(`identity of type ${privateKey.type}, created ${created}`)
    },
    close: () => rmSync(dir, { recursive: true, force: true })
  }
}

// ---- the API token file ---------------------------------------------------------------------

type TokenInput = { kind: 'bytes', bytes: Uint8Array } | { kind: 'missing' | 'directory' | 'fifo' | 'symlink-to-token' | 'dangling-symlink' }

function apiTokenTarget (): Target<TokenInput> {
  const dir = mkdtempSync(join(tmpdir(), 'rhizome-fuzz-token-'))
  const token = Buffer.from(new Uint8Array(32).map((_, i) => i * 37)).toString('base64url')
  const valid = fc.constantFrom(token, token + '\n', `  ${token}\r\n`).map(text => new TextEncoder().encode(text))
  const bytes = fc.oneof(
    valid,
    { weight: 3, arbitrary: fc.tuple(valid, byteEdits).map(([b, edits]) => edit(b, edits)) },
    fc.uint8Array({ maxLength: 100 }),
    fc.string({ maxLength: 60 }).map(text => new TextEncoder().encode(text)),
    // Around the 1 KiB file limit: a valid token padded with whitespace.
    fc.tuple(valid, fc.integer({ min: 1000, max: 1050 })).map(([b, n]) => Uint8Array.from([...b, ...new Uint8Array(Math.max(0, n - b.byteLength)).fill(0x0a)]))
  )
  const path = join(dir, 'api.token')
  const clear = (): void => rmSync(path, { recursive: true, force: true })
  return {
    name: 'API token file (a damaged or odd DIR/api.token)',
    inputs: fc.oneof(
      { weight: 6, arbitrary: bytes.map(b => ({ kind: 'bytes' as const, bytes: b })) },
      fc.constantFrom('missing', 'directory', 'fifo', 'symlink-to-token', 'dangling-symlink').map(kind => ({ kind }) as TokenInput)
    ),
    decode: async (input) => {
      clear()
      rmSync(join(dir, 'elsewhere'), { force: true })
      switch (input.kind) {
        case 'bytes': writeFileSync(path, input.bytes, { mode: 0o600 }); break
        case 'missing': break
        case 'directory': mkdirSync(path); break
        case 'fifo': execFileSync('mkfifo', [path]); break
        case 'symlink-to-token': writeFileSync(join(dir, 'elsewhere'), token); symlinkSync(join(dir, 'elsewhere'), path); break
        case 'dangling-symlink': symlinkSync(join(dir, 'elsewhere'), path); break
      }
      return await readApiToken(dir)
    },
    check: (value, input) => {
      if (value === undefined) {
        if (input.kind !== 'missing' && input.kind !== 'dangling-symlink') invalid(`no token reported for a ${input.kind} token file`)
        return
      }
      if (typeof value !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(value)) invalid(`token ${JSON.stringify(value)}`)
      if (input.kind === 'bytes' && input.bytes.byteLength > 1024) invalid(`a token file of ${input.bytes.byteLength} bytes`)
      if (input.kind !== 'bytes' && input.kind !== 'symlink-to-token') invalid(`a token read from a ${input.kind}`)
    },
    close: () => rmSync(dir, { recursive: true, force: true })
  }
}

// ---- files a user names (config, blob put, deploy) ----------------------------------------------

type FileKind = 'regular' | 'empty' | 'directory' | 'fifo' | 'missing' | 'symlink' | 'dangling-symlink' | '/dev/zero' | '/dev/null'

interface FileInput { kind: FileKind, bytes: number, bytesMax: number, sync: boolean }

function regularFileTarget (): Target<FileInput> {
  const dir = mkdtempSync(join(tmpdir(), 'rhizome-fuzz-file-'))
  const path = join(dir, 'input')
  const other = join(dir, 'other')
  const sizes = fc.oneof(fc.nat({ max: 1000 }), fc.integer({ min: 65_530, max: 65_540 }), fc.integer({ min: 131_060, max: 131_080 }))
  return {
    name: 'user-named files (readRegularFile, readRegularFileSync)',
    inputs: fc.record({
      kind: fc.constantFrom<FileKind>('regular', 'regular', 'regular', 'empty', 'directory', 'fifo', 'missing', 'symlink', 'dangling-symlink', '/dev/zero', '/dev/null'),
      bytes: sizes,
      // Around the 64 KiB read piece and small limits.
      bytesMax: fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 65_530, max: 65_540 }), fc.constant(131_072)),
      sync: fc.boolean()
    }),
    decode: async ({ kind, bytes, bytesMax, sync }) => {
      rmSync(path, { recursive: true, force: true })
      rmSync(other, { force: true })
      const content = new Uint8Array(bytes).map((_, i) => i % 251)
      let target = path
      switch (kind) {
        case 'regular': writeFileSync(path, content); break
        case 'empty': writeFileSync(path, new Uint8Array(0)); break
        case 'directory': mkdirSync(path); break
        case 'fifo': execFileSync('mkfifo', [path]); break
        case 'missing': break
        case 'symlink': writeFileSync(other, content); symlinkSync(other, path); break
        case 'dangling-symlink': symlinkSync(other, path); break
        default: target = kind
      }
      const read = sync ? readRegularFileSync(target, bytesMax, 'fuzz file') : await readRegularFile(target, bytesMax, 'fuzz file')
      return { read, content }
    },
    check: (value, { kind, bytesMax }) => {
      const { read, content } = value as { read: Uint8Array, content: Uint8Array }
      if (kind !== 'regular' && kind !== 'empty' && kind !== 'symlink') invalid(`read ${read.byteLength} bytes from a ${kind}`)
      if (read.byteLength > bytesMax) invalid(`${read.byteLength} bytes read past the limit of ${bytesMax}`)
      if (!equal(read, kind === 'empty' ? new Uint8Array(0) : content)) invalid('bytes other than the file\'s')
    },
    close: () => rmSync(dir, { recursive: true, force: true })
  }
}

/** All targets. Call `close()` on each when done. */
export async function makeTargets (): Promise<Array<Target<any>>> {
  return [
    framesTarget,
    frameChunksTarget,
    envelopeTarget,
    announcementTarget,
    taskRequestTarget,
    taskReplyTarget,
    blobRequestTarget,
    blobReplyTarget,
    replicateRequestTarget,
    remoteValueTarget,
    manifestTarget(),
    configTarget(),
    await identityTarget(),
    apiTokenTarget(),
    regularFileTarget()
  ]
}
