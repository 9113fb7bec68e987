/**
 * Limits that more than one layer enforces: each is defined here once, and every layer that
 * checks it imports it, so two checks of one rule cannot drift apart. A limit only one layer
 * knows stays next to the code that enforces it. Keep in docs/LIMITS.md.
 */

/** An Ed25519 peer id in base58btc is 52 characters (`12D3KooW…`), an RSA one 46 (`Qm…`);
 *  128 leaves room for other key types without letting a peer id become a payload. Checked by
 *  the membership codec (announcements) and the task codec (attestations). */
export const PEER_ID_CHARS_MAX = 128

/** Longest signature accepted or kept, in bytes: an Ed25519 signature is 64; room for other key
 *  types without letting a signature become a payload. Checked by the task codec (attestations),
 *  the lie-proof and certificate codecs, and the verification store. */
export const SIGNATURE_BYTES_MAX = 1024

/**
 * Longest CID string accepted, in characters. A sha2-256 CIDv1 in base32 is 59 characters and a
 * CIDv0 46; 100 leaves room for other codecs while refusing long input before decoding it.
 * Checked by the blob store (local callers) and the blob protocol (peers).
 */
export const CID_CHARS_MAX = 100

/** Time options may not exceed this (about 24.8 days, the largest delay Node's timers accept),
 *  so the shell can always schedule the next tick. Every protocol's time options share it. */
export const DURATION_MS_LIMIT = 2_147_483_647

/** Most copies of a deployed function: more than this is a broadcast, not replication. The
 *  peer refuses more; the CLI checks it before asking. */
export const REPLICAS_MAX = 16

/** One hour: the longest a caller may ask to wait for one task (API `timeoutMs`, CLI
 *  `--timeout-ms`); it bounds the whole call, retries on other peers included. */
export const CALL_TIMEOUT_MS_MAX = 3_600_000

/** Longest signal name, in characters. A name says what the workflow waits for ("approved",
 *  "order.paid"); 64 is plenty for that while keeping memo ids (`signal:NAME:n`) short. */
export const SIGNAL_NAME_CHARS_MAX = 64

/** Largest signal value, as dag-cbor bytes. A signal is a decision or a small document sent to a
 *  waiting run, recorded in its memo and replicated with it; bulk data belongs in a blob, passed
 *  by CID. Checked by the API, the CLI and the run driver. */
export const SIGNAL_VALUE_BYTES_MAX = 64 * 1024

/** Letters, digits and `_ . -`: no `:` (it separates the parts of a memo id), no spaces. */
const SIGNAL_NAME = /^[A-Za-z0-9_.-]+$/

/** Why `name` is not a signal name, or undefined if it is one. */
export function signalNameProblem (name: unknown): string | undefined {
  if (typeof name !== 'string') return `must be a string, got ${typeof name}`
  if (name.length === 0 || name.length > SIGNAL_NAME_CHARS_MAX) return `must be 1 to ${SIGNAL_NAME_CHARS_MAX} characters, got ${name.length}`
  if (!SIGNAL_NAME.test(name)) return `${JSON.stringify(name)} may hold only letters, digits, '_', '.' and '-'`
  return undefined
}
