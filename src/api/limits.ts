/**
 * Limits of the HTTP API that both sides need: the peer enforces them, and a client checks them
 * early (so `rhizome call --timeout-ms 0` exits 2 before any request, and `blob put` refuses a
 * huge file before reading it). One constant each, imported by the peer and by every client, so
 * the two can never disagree. Constants only: no imports, nothing that loads the peer.
 */

/** How long a caller waits for a task by default: the default sandbox time plus fetch and queue slack. */
export const CALL_TIMEOUT_MS_DEFAULT = 120_000
/** Longest `timeoutMs` a call may ask for: the sandbox's longest time limit (15 min) many times over, and still an hour, not forever. */
export const CALL_TIMEOUT_MS_MAX = 3_600_000
/** More copies of a deployed function than this is a broadcast, not replication. */
export const REPLICAS_MAX = 16
/**
 * Largest blob, in bytes. A peer reads a blob whole into memory (for the local API, for a
 * function's code and for a task's result), so this bounds the memory those take; 64 MiB covers
 * typical task inputs and results and keeps a few of them well inside a small peer's heap.
 */
export const BLOB_BYTES_MAX = 64 * 1024 * 1024
