/**
 * Results as JSON for API clients: dag-cbor data written the way dag-json writes it — bytes as
 * `{"/":{"bytes":"<base64>"}}`, links as `{"/":"<cid>"}`, big integers as decimal strings.
 */
import { base64 } from 'multiformats/bases/base64'
import { CID } from 'multiformats/cid'

/** dag-cbor data to JSON the way dag-json writes it: bytes as {"/":{"bytes":…}}, links as {"/":cid}. */
export function toJson (value: unknown): unknown {
  if (value instanceof Uint8Array) return { '/': { bytes: base64.baseEncode(value) } }
  const cid = CID.asCID(value)
  if (cid !== null) return { '/': cid.toString() }
  if (Array.isArray(value)) return value.map(toJson)
  if (typeof value === 'bigint') return value.toString()
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]))
  return value
}
