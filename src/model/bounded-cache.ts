/**
 * A least-recently-used cache bounded both in entries and in bytes. Map insertion order is the
 * recency order: a hit moves the entry to the end, eviction takes from the front. An entry larger
 * than the byte bound on its own is not kept.
 */
export class BoundedCache<K, V> {
  readonly entriesMax: number
  readonly bytesMax: number
  private readonly sizeOf: (value: V) => number
  private readonly entries = new Map<K, V>()
  private bytesHeld = 0

  constructor (options: { entriesMax: number, bytesMax: number, sizeOf: (value: V) => number }) {
    if (!Number.isSafeInteger(options.entriesMax) || options.entriesMax < 1) throw new Error('assertion failed: entriesMax must be a positive integer')
    if (!Number.isSafeInteger(options.bytesMax) || options.bytesMax < 1) throw new Error('assertion failed: bytesMax must be a positive integer')
    this.entriesMax = options.entriesMax
    this.bytesMax = options.bytesMax
    this.sizeOf = options.sizeOf
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
    this.delete(key)
    if (bytes > this.bytesMax) return
    this.entries.set(key, value)
    this.bytesHeld += bytes
    for (const [oldest, entry] of this.entries) {
      if (this.entries.size <= this.entriesMax && this.bytesHeld <= this.bytesMax) break
      this.entries.delete(oldest)
      this.bytesHeld -= this.sizeOf(entry)
    }
  }

  delete (key: K): boolean {
    const value = this.entries.get(key)
    if (value === undefined) return false
    this.entries.delete(key)
    this.bytesHeld -= this.sizeOf(value)
    return true
  }
}
