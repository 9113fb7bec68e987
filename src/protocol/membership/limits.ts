/**
 * Limits on the fields of an announcement. The wire codec (src/wire/membership-codec.ts) rejects
 * inbound announcements that break them; the membership state machine rejects local options that
 * break them, so a peer never announces something its peers would refuse. Keep in docs/LIMITS.md.
 *
 * Strings other than the peer id are printable ASCII, so characters equal bytes and the largest
 * valid announcement has a known size (see ANNOUNCEMENT_BYTES_MAX in the codec).
 */

import { PEER_ID_CHARS_MAX } from '../../model/limits.ts'

/** Shared with the task codec, so defined in src/model/limits.ts. */
export { PEER_ID_CHARS_MAX }

/** A network id is a name people type or a hash (a CIDv1 in base32 is 59 characters). */
export const NETWORK_ID_CHARS_MAX = 64

/** Enough for a semver version with a pre-release tag, e.g. `0.1.0-rc.12+build.345`. */
export const VERSION_CHARS_MAX = 32

/** A peer listens on a few transports × a few interfaces; 16 covers a host with TCP and
 *  WebSockets on IPv4 and IPv6 and a relay or two. The shell must choose which to announce. */
export const ADDRS_MAX = 16

/** A multiaddr with DNS name, port, transport and a `/p2p-circuit/p2p/<peer id>` relay suffix
 *  fits well within 256 characters. */
export const ADDR_CHARS_MAX = 256

/** Upper bound of every capacity number (slots, queue length): far above what one peer runs,
 *  low enough that sums over 1,024 peers stay exact in a double. */
export const CAPACITY_VALUE_MAX = 100_000

/** The base58btc alphabet (Bitcoin's): no 0, O, I or l. */
const BASE58BTC = /^[1-9A-HJ-NP-Za-km-z]+$/

/** Printable ASCII, space included (0x20–0x7e). */
const PRINTABLE = /^[\x20-\x7e]*$/

/** Printable ASCII without space (0x21–0x7e): a multiaddr string has no spaces. */
const VISIBLE = /^[\x21-\x7e]*$/

export function isPeerIdString (value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= PEER_ID_CHARS_MAX && BASE58BTC.test(value)
}

export function isNetworkIdString (value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= NETWORK_ID_CHARS_MAX && PRINTABLE.test(value)
}

export function isVersionString (value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= VERSION_CHARS_MAX && PRINTABLE.test(value)
}

export function isAddrString (value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= ADDR_CHARS_MAX && VISIBLE.test(value)
}

export function isCapacityValue (value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= CAPACITY_VALUE_MAX
}

/** A non-negative safe integer (incarnation, seq). */
export function isCounter (value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}
