/**
 * The HTTP status of every error a peer's API can answer with: the one place an HTTP status is
 * defined (the server sends them, clients may branch on them). A test checks that every error
 * code defined in src/ outside the clients has an entry.
 *
 * Retry-After on 503: a busy peer frees a slot when its shortest task ends, which for the
 * tasks Rhizome is made for (milliseconds to seconds) is about a second.
 */
export const RETRY_AFTER_SECONDS = 1

/**
 * The HTTP status of every error code a peer can produce (a test checks that every code in
 * src/ has one). The body always carries the code, the message, `retryable` and a hint.
 *  - 400 the caller's request is malformed; 404 what it names does not exist; 413 too large.
 *  - 401/403/405 the request was refused before it was read (see src/node/http-api.ts).
 *  - 422 the request was fine but the function (or workflow) failed on its own terms: it threw,
 *    ran past its limits, returned what cannot be a result, its code cannot be deployed, or a
 *    workflow called itself, nested too deep, stalled or outgrew its history.
 *  - 409 the run was cancelled (its result will never come).
 *  - 502 another peer failed or broke the protocol; 503 this or another peer is busy or
 *    shutting down, retry (Retry-After says when); 504 the work did not finish in time.
 *  - 500 this peer failed (a bug, or its disk): see its log.
 */
export const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  ERR_INVALID_INPUT: 400,
  ERR_CONFIG: 400,
  ERR_CERTIFICATE: 400,
  ERR_REVOCATION_REFUSED: 400,
  ERR_NOT_A_MEMBER: 403,
  ERR_ROLE_REFUSED: 403,
  ERR_MANIFEST_MISMATCH: 400,
  ERR_UNAUTHORIZED: 401,
  ERR_SIGN_IN_CODE: 401,
  ERR_TOO_MANY_SIGN_IN_CODES: 503,
  ERR_FORBIDDEN_HOST: 403,
  ERR_FORBIDDEN_ORIGIN: 403,
  ERR_NOT_FOUND: 404,
  ERR_FUNCTION_NOT_FOUND: 404,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_TOO_LARGE: 413,
  ERR_EXPORT_NOT_FOUND: 422,
  ERR_FUNCTION_THREW: 422,
  ERR_SANDBOX_TIME_LIMIT: 422,
  ERR_SANDBOX_MEMORY_LIMIT: 422,
  ERR_SANDBOX_OUTPUT_LIMIT: 422,
  ERR_SANDBOX_STACK_OVERFLOW: 422,
  ERR_UNSUPPORTED_VALUE: 422,
  ERR_NONDETERMINISM: 422,
  ERR_WASM_TRAP: 422,
  ERR_WASM_MODULE: 422,
  ERR_FORBIDDEN_IMPORT: 422,
  ERR_BUNDLE: 422,
  ERR_NO_EXPORTS: 422,
  ERR_NO_WORKFLOWS: 422,
  ERR_WORKFLOW_NOT_CALLABLE: 422,
  ERR_INVALID_MANIFEST: 422,
  ERR_WORKFLOW_CYCLE: 422,
  ERR_WORKFLOW_DEPTH: 422,
  ERR_RUN_HISTORY_LIMIT: 422,
  ERR_MEMO_FULL: 422,
  ERR_WORKFLOW_STALLED: 422,
  ERR_RUN_CANCELLED: 409,
  ERR_RUN_INTERRUPTED: 500,
  ERR_RUN_ENDED: 409,
  ERR_HOME_SET_UNAVAILABLE: 503,
  ERR_RUN_TIMEOUT: 504,
  ERR_ACTIVATION_TIMEOUT: 504,
  ERR_WORKFLOW_COMMANDS_LIMIT: 422,
  ERR_WORKFLOW_ARGS_LIMIT: 422,
  ERR_WORKFLOW_DEFINITION: 422,
  ERR_WORKFLOW_DEADLOCK: 422,
  ERR_INTERNAL: 500,
  ERR_DASHBOARD_BUILD: 500,
  ERR_BLOB_CORRUPT: 500,
  ERR_SCHEMA_TOO_NEW: 500,
  ERR_IDENTITY: 500,
  ERR_API_TOKEN: 500,
  ERR_DATA_DIR_LOCKED: 500,
  ERR_DATA_DIR: 500,
  ERR_DATABASE: 500,
  ERR_FILE: 500,
  ERR_LISTEN: 500,
  ERR_API_LISTEN: 500,
  ERR_PEER_UNAVAILABLE: 502,
  ERR_TASK_LOST: 502,
  ERR_INPUT_UNAVAILABLE: 502,
  ERR_PROTOCOL_VIOLATION: 502,
  ERR_QUORUM_NOT_REACHED: 502,
  ERR_NOT_ENOUGH_PEERS: 503,
  ERR_TASK_FORGOTTEN: 410,
  ERR_ATTESTATION_INVALID: 502,
  ERR_BLOB_HASH_MISMATCH: 502,
  ERR_NETWORK_MISMATCH: 502,
  ERR_SANDBOX_CRASHED: 502,
  ERR_PEER_BUSY: 503,
  ERR_SCHEDULER_QUEUE_FULL: 503,
  ERR_QUEUE_FULL: 503,
  ERR_SANDBOX_BUSY: 503,
  ERR_WORKFLOW_RUNS_BUSY: 503,
  ERR_ABORTED: 503,
  ERR_SANDBOX_ABORTED: 503,
  ERR_SANDBOX_CLOSED: 503,
  ERR_TIMEOUT: 504,
  ERR_SQL_READ_ONLY: 400,
  ERR_SQL_ATTACH_REFUSED: 400,
  ERR_SQL_INVALID: 400,
  ERR_SQL_TOO_MANY_ROWS: 413,
  ERR_SQL_TIMEOUT: 504,
  ERR_SQL_BUSY: 503
}

export function httpStatusOf (code: string): number {
  return STATUS_BY_CODE[code] ?? 500
}

/** Statuses the server treats specially (headers that go with them). */
export const HTTP_OK = 200
export const HTTP_UNAUTHORIZED = 401
export const HTTP_METHOD_NOT_ALLOWED = 405
export const HTTP_UNAVAILABLE = 503
