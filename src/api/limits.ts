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
