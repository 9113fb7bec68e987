/**
 * The store: what a peer keeps on its own disk. A SQLite database in the data dir (membership
 * view, peer history, blob index, settings) and a content-addressed blob store that verifies
 * bytes against their CID wherever they enter or leave.
 */
export { openDatabase, migrations, busyTimeoutMsDefault, busyTimeoutMsMax } from './database.ts'
export type { Database, DatabaseOptions, Migration } from './database.ts'

export {
  createPeerRepo,
  peerEventsMaxDefault,
  peersMaxDefault,
  peerAddrsMax,
  peerEventDetailCharsMax,
  peerScoreMax,
  peerScoreMin
} from './peer-repo.ts'
export type { PeerRepo, PeerRepoOptions, PeerUpsert, PeerRow, PeerEvent } from './peer-repo.ts'

export {
  createBlobStore,
  parseBlobCid,
  blobBytesMaxDefault,
  blobRangeBytesMax,
  blobVerifyChunkBytes,
  blobsVerifiedMax,
  blobPendingBytesMax,
  blobCachedBytesMax,
  blobInlineBytesMax,
  blobListLengthMax,
  blobListLengthDefault,
  syncDir
} from './blob-store.ts'
export type { BlobStore, BlobRange, BlobStoreCounters, BlobCacheCounters, BlobStoreOptions, BlobStat, AbortOptions, OpenDir } from './blob-store.ts'

export { SchemaTooNewError, BlobHashMismatchError } from './errors.ts'
export { createFunctionRepo, functionListLengthMax } from './function-repo.ts'
export type { FunctionRepo, FunctionRow, FunctionOrigin } from './function-repo.ts'
export * from './run-repo.ts'
export { createHomeRepo, HOME_RUNS_LISTED_MAX } from './home-repo.ts'
export type { HomeRepo, HomeRunRow, HomeMemoRow } from './home-repo.ts'
export {
  createVerifyRepo,
  ATTESTATIONS_PER_TASK_MAX,
  ATTESTATION_RETENTION_MS,
  ATTESTATION_ROWS_MAX,
  ATTESTATION_ROLES,
  LIE_PROOF_BYTES_MAX,
  LIE_PROOF_RETENTION_MS,
  REPUTATION_ROWS_MAX,
  SIGNATURE_BYTES_MAX,
  VERIFY_ID_CHARS_MAX
} from './verify-repo.ts'
export type { VerifyRepo, VerifyRepoOptions, ReputationRow, AttestationRole, AttestationRow, StoredAttestation, PruneCounts } from './verify-repo.ts'
export { createLogRepo, LOG_RECORD_LEVELS } from './log-repo.ts'
export type { LogRepo, LogRow, LogQuery, LogRecordLevel } from './log-repo.ts'
export { createPermissionRepo, revocationKey } from './permission-repo.ts'
export type { PermissionRepo, StoredCertificate, StoredRevocation } from './permission-repo.ts'
