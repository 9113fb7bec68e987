/**
 * Defaults and bounds of memo replication. Why each number:
 *
 * - `memoEntriesMax` 10,000 entries per run: the run driver's own `memoEntriesMax`
 *   (src/protocol/run/constants.ts). A replica holds no more of a run than its driver may.
 * - `batchEntriesMax` 256 entries per message (append, memo-part): an entry is an id, a result
 *   CID, a peer id and an epoch, about 200 bytes, so a full batch is ~50 KiB — far under a frame,
 *   and a whole 10,000-entry memo moves in 40 messages.
 * - `homeSetSizeMax` 15 peers: the default is 3; 15 tolerates 7 losses, more than any
 *   run needs, and bounds the per-peer state and the fan-out of every append.
 * - `resendMs` 1 s, doubling to `resendMaxMs` 30 s: a replica answers within a round trip (tens of
 *   ms) plus one storage write; a second is long enough not to resend to a healthy replica, and
 *   30 s keeps a down replica costing one message per half minute.
 * - `attemptsMax` 8 sends of one batch (about 1 + 2 + 4 + 8 + 16 + 30 + 30 + 30 s ≈ 2 min) before
 *   the driver stops pushing to that replica and falls back to probing it: the run goes on with
 *   the other replicas, and the probe repairs this one when it answers again.
 * - `probeIntervalMs` 10 s: an idle replica gets one small digest message per 10 s; a mismatch
 *   (a replica restored from an old disk, one that missed batches) is repaired within that.
 * - `stringCharsMax` 128 chars per id, CID and peer id: a CIDv1 is 59 chars, an Ed25519 peer id
 *   52; anything longer from the network is not an entry.
 */
export const MEMO_DEFAULTS = {
  memoEntriesMax: 10_000,
  batchEntriesMax: 256,
  homeSetSizeMax: 15,
  resendMs: 1000,
  resendMaxMs: 30_000,
  attemptsMax: 8,
  probeIntervalMs: 10_000
} as const satisfies Record<string, number>

/** Characters of an entry id, result CID or peer id (see above). */
export const MEMO_STRING_CHARS_MAX = 128

/** Epochs are safe integers ≥ 0; the lease part counts them up from 1. */
export const MEMO_EPOCH_MAX = Number.MAX_SAFE_INTEGER

/**
 * Inline bytes of one entry's value. 1 KiB holds a timer deadline, a small signal value or a
 * small task result (most results of fine-grained tasks are numbers or short records), so a new
 * driver replays them without fetching blobs; a full append batch (256 entries) stays under
 * 300 KiB. Larger values travel as blobs, by CID.
 */
export const MEMO_INLINE_BYTES_MAX = 1024
