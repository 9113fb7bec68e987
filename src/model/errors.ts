/**
 * Errors. Expected failures are named classes with a stable `code`, a `hint` that tells the
 * reader what to do next, and `retryable` for the scheduler. Broken invariants use `assert`
 * and crash: they mean a bug in Rhizome, not bad input.
 *
 * Failures that cross a boundary (HTTP API, wire protocols) travel as `FailureData` and are
 * rebuilt with `failureFromData`.
 */

export interface FailureData {
  name: string
  code: string
  message: string
  retryable: boolean
  hint?: string
}

export interface RhizomeErrorOptions {
  cause?: unknown
  hint?: string
  retryable?: boolean
}

export class RhizomeError extends Error {
  readonly code: string
  readonly hint: string | undefined
  readonly retryable: boolean

  constructor (code: string, message: string, options: RhizomeErrorOptions = {}) {
    super(message, { cause: options.cause })
    this.name = 'RhizomeError'
    this.code = code
    this.hint = options.hint
    this.retryable = options.retryable ?? false
  }

  toData (): FailureData {
    const data: FailureData = { name: this.name, code: this.code, message: this.message, retryable: this.retryable }
    if (this.hint !== undefined) data.hint = this.hint
    return data
  }
}

/** The local caller (CLI user, config file, API client) passed something invalid. */
export class InvalidInputError extends RhizomeError {
  constructor (message: string, options: RhizomeErrorOptions = {}) {
    super('ERR_INVALID_INPUT', message, options)
    this.name = 'InvalidInputError'
  }
}

/** A configuration value is out of range or of the wrong type. `field` names it. */
export class ConfigError extends RhizomeError {
  readonly field: string
  constructor (field: string, message: string, options: RhizomeErrorOptions = {}) {
    super('ERR_CONFIG', `${field}: ${message}`, options)
    this.name = 'ConfigError'
    this.field = field
  }
}

/** A remote peer broke the protocol: oversized, undecodable or invalid message. */
export class ProtocolViolationError extends RhizomeError {
  constructor (message: string, options: RhizomeErrorOptions = {}) {
    super('ERR_PROTOCOL_VIOLATION', message, options)
    this.name = 'ProtocolViolationError'
  }
}

/** A message or value is larger than the limit that applies to it. */
export class TooLargeError extends RhizomeError {
  readonly bytes: number
  readonly bytesMax: number
  constructor (what: string, bytes: number, bytesMax: number, options: RhizomeErrorOptions = {}) {
    super('ERR_TOO_LARGE', `${what} is ${bytes} bytes, more than the limit of ${bytesMax} bytes`, options)
    this.name = 'TooLargeError'
    this.bytes = bytes
    this.bytesMax = bytesMax
  }
}

/** Stored bytes no longer hash to their CID. They are never served. */
export class BlobCorruptError extends RhizomeError {
  readonly cid: string
  constructor (cid: string, options: RhizomeErrorOptions = {}) {
    super('ERR_BLOB_CORRUPT', `blob ${cid} is corrupt on disk: its bytes no longer match its CID`, {
      hint: 'the damaged file was moved aside; fetch the blob again from a peer that holds it, or put it again',
      ...options
    })
    this.name = 'BlobCorruptError'
    this.cid = cid
  }
}

export class NotFoundError extends RhizomeError {
  constructor (message: string, options: RhizomeErrorOptions = {}) {
    super('ERR_NOT_FOUND', message, options)
    this.name = 'NotFoundError'
  }
}

/** An operation did not finish before its deadline. Usually worth retrying. */
export class TimeoutError extends RhizomeError {
  constructor (message: string, options: RhizomeErrorOptions = {}) {
    super('ERR_TIMEOUT', message, { retryable: true, ...options })
    this.name = 'TimeoutError'
  }
}

/** The peer is shutting down or the caller aborted. */
export class AbortedError extends RhizomeError {
  constructor (message = 'the operation was aborted', options: RhizomeErrorOptions = {}) {
    super('ERR_ABORTED', message, { retryable: true, ...options })
    this.name = 'AbortedError'
  }
}

/** Rebuild an error that crossed a boundary as data. */
export function failureFromData (data: FailureData): RhizomeError {
  const err = new RhizomeError(data.code, data.message, { hint: data.hint, retryable: data.retryable })
  err.name = data.name
  return err
}

/** Crash on a broken invariant. Stays on in production (TIGER_STYLE). */
export function assert (condition: unknown, message: string): asserts condition {
  if (!condition) {
    throw new Error(`assertion failed: ${message}`)
  }
}

/** A peer could not be reached, or went away mid-request. Another peer may do. */
export class PeerUnavailableError extends RhizomeError {
  constructor (message: string, options: RhizomeErrorOptions = {}) {
    super('ERR_PEER_UNAVAILABLE', message, { retryable: true, hint: 'the peer may have stopped or be unreachable; retry, or choose another peer', ...options })
    this.name = 'PeerUnavailableError'
  }
}
