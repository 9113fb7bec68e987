/**
 * Limits of the HTTP API that both sides need: the peer enforces them, and a client checks them
 * early (so `rhizome call --timeout-ms 0` exits 2 before any request, and `blob put` refuses a
 * huge file before reading it). One constant each, imported by the peer and by every client, so
 * the two can never disagree. Constants only: nothing that loads the peer. Limits more layers
 * than the API need (the most replicas, the longest call) are defined once in src/model/limits.ts.
 */
export { CALL_TIMEOUT_MS_MAX, REPLICAS_MAX } from '../model/limits.ts'

/** How long a caller waits for a task by default: the default sandbox time plus fetch and queue slack. */
export const CALL_TIMEOUT_MS_DEFAULT = 120_000
/**
 * Largest blob, in bytes. A peer reads a blob whole into memory (for the local API, for a
 * function's code and for a task's result), so this bounds the memory those take; 64 MiB covers
 * typical task inputs and results and keeps a few of them well inside a small peer's heap.
 */
export const BLOB_BYTES_MAX = 64 * 1024 * 1024

// SQL over a peer's history (`rhizome sql`, POST /v1/sql).
/** A query's text, in UTF-8 bytes. A query someone writes is a few hundred bytes; 16 KiB leaves
 *  room for long generated ones while keeping the request small. */
export const SQL_TEXT_BYTES_MAX = 16 * 1024
/** Rows a query answers when it does not say: a screenful and then some, as a terminal table. */
export const SQL_ROWS_DEFAULT = 1_000
/** The most rows a query may ask for (`maxRows`). With SQL_RESULT_BYTES_MAX this bounds what the
 *  peer builds in memory; 100,000 rows covers every task of the largest run (10,000 tasks) ten times. */
export const SQL_ROWS_MAX = 100_000
/** How long a query may run when it does not say. Queries over the views take milliseconds; ten
 *  seconds is a generous scan of a large history and still an answer a person waits for. */
export const SQL_TIMEOUT_MS_DEFAULT = 10_000
/** The longest a query may ask to run (`timeoutMs`): two minutes, the same as a call's default wait. */
export const SQL_TIMEOUT_MS_MAX = 120_000
/** The answer's rows as JSON, in bytes: below what a client reads (32 MiB, API_JSON_BYTES_MAX). */
export const SQL_RESULT_BYTES_MAX = 16 * 1024 * 1024

// A peer's log history (`rhizome logs`, GET /v1/logs).
/** Records `GET /v1/logs` answers when it does not say: the last screenful or two. */
export const LOG_LIST_DEFAULT = 100
/** The most records one `GET /v1/logs` answers: 10,000 records of at most ~5 KB each stay well
 *  below a client's 32 MiB answer limit. */
export const LOG_LIST_MAX = 10_000
