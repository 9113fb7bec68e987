/**
 * Errors raised by the store. The shared ones (BlobCorruptError, TooLargeError, NotFoundError,
 * InvalidInputError) live in src/model/errors.ts; these are the store's own.
 */
import { RhizomeError } from '../model/errors.ts'
import type { RhizomeErrorOptions } from '../model/errors.ts'

/**
 * The database was written by a newer Rhizome whose schema this code does not know. Opening it
 * anyway could misread or damage tables added later, so the peer refuses to start.
 */
export class SchemaTooNewError extends RhizomeError {
  readonly schemaVersion: number
  readonly schemaVersionKnown: number
  constructor (path: string, schemaVersion: number, schemaVersionKnown: number, options: RhizomeErrorOptions = {}) {
    super('ERR_SCHEMA_TOO_NEW', `database ${path} has schema version ${schemaVersion}, but this Rhizome knows versions up to ${schemaVersionKnown}`, {
      hint: 'this data dir was written by a newer Rhizome: upgrade Rhizome, or start this peer with a different data dir',
      ...options
    })
    this.name = 'SchemaTooNewError'
    this.schemaVersion = schemaVersion
    this.schemaVersionKnown = schemaVersionKnown
  }
}

/**
 * Bytes claimed to be a blob do not hash to the claimed CID. Usually the peer that sent them
 * is faulty or lying; nothing was stored.
 */
export class BlobHashMismatchError extends RhizomeError {
  readonly cid: string
  readonly cidActual: string
  constructor (cid: string, cidActual: string, options: RhizomeErrorOptions = {}) {
    super('ERR_BLOB_HASH_MISMATCH', `bytes claimed to be blob ${cid} hash to ${cidActual}`, {
      hint: 'nothing was stored; fetch the blob from another peer that holds it',
      ...options
    })
    this.name = 'BlobHashMismatchError'
    this.cid = cid
    this.cidActual = cidActual
  }
}
