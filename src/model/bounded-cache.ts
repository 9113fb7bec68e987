/**
 * The one least-recently-used cache in Rhizome, bounded in entries and optionally in bytes. Map
 * insertion order is the recency order: a hit moves the entry to the end, eviction takes from the
 * front. An entry larger than the byte bound on its own is not kept.
 *
 * A cache whose values hold resources (isolates, handles) passes `onEvict` to free what the cache
 * lets go of by itself; what the caller takes out with `delete` or `clear` is the caller's to free.
 */
import { assert } from './errors.ts'

export interface BoundedCacheOptions<K, V> {
  /** Most entries held; one more evicts the least recently used. */
  entriesMax: number
  /** Most bytes held, as `sizeOf` counts them. Give both or neither: without them only entries are bounded. */
  bytesMax?: number
  sizeOf?: (value: V) => number
  /**
   * Called with every entry the cache drops on its own — evicted to make room, too large to keep,
   * or replaced by `set` with a different value — after it has left the cache. Not called for
   * `delete` or `clear`.
   */
  onEvict?: (key: K, value: V) => void
}

export class BoundedCache<K, V> {
  readonly entriesMax: number
  /** Undefined when only entries are bounded. */
  readonly bytesMax: number | undefined
  private readonly sizeOf: (value: V) => number
  private readonly onEvict: ((key: K, value: V) => void) | undefined
  private readonly entries = new Map<K, V>()
  private bytesHeld = 0

  constructor (options: BoundedCacheOptions<K, V>) {
    assert(Number.isSafeInteger(options.entriesMax) && options.entriesMax >= 1, 'entriesMax must be a positive integer')
    assert((options.bytesMax === undefined) === (options.sizeOf === undefined), 'bytesMax and sizeOf come together')
    if (options.bytesMax !== undefined) {
      assert(Number.isSafeInteger(options.bytesMax) && options.bytesMax >= 1, 'bytesMax must be a positive integer')
    }
    this.entriesMax = options.entriesMax
    this.bytesMax = options.bytesMax
    this.sizeOf = options.sizeOf ?? (() => 0)
    this.onEvict = options.onEvict
  }

  get size (): number { return this.entries.size }
  get bytes (): number { return this.bytesHeld }

  get (key: K): V | undefined {
    const value = this.entries.get(key)
    if (value === undefined) return undefined
    this.entries.delete(key)
    this.entries.set(key, value)
    return value
  }

  set (key: K, value: V): void {
    const bytes = this.sizeOf(value)
    const replaced = this.entries.get(key)
    this.delete(key)
    if (replaced !== undefined && replaced !== value) this.onEvict?.(key, replaced)
    if (this.bytesMax !== undefined && bytes > this.bytesMax) {
      this.onEvict?.(key, value)
      return
    }
    this.entries.set(key, value)
    this.bytesHeld += bytes
    while (this.entries.size > this.entriesMax || (this.bytesMax !== undefined && this.bytesHeld > this.bytesMax)) {
      const [oldest, entry] = this.entries.entries().next().value as [K, V]
      this.entries.delete(oldest)
      this.bytesHeld -= this.sizeOf(entry)
      this.onEvict?.(oldest, entry)
    }
  }

  delete (key: K): boolean {
    const value = this.entries.get(key)
    if (value === undefined) return false
    this.entries.delete(key)
    this.bytesHeld -= this.sizeOf(value)
    return true
  }

  /** Forget every entry without calling `onEvict`. */
  clear (): void {
    this.entries.clear()
    this.bytesHeld = 0
  }
}
