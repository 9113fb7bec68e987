/**
 * A simulated node's durable storage: what survives a crash. A crash throws away the node's
 * machines and everything they held in memory; a restart builds new machines that read back only
 * what was written here. So a machine that must not forget something across a restart (the last
 * incarnation it announced, the next id it may hand out, a run's memo) is forced to say so by
 * writing it, and a simulated crash proves whether it did.
 *
 * Values are bytes and are copied in and out, so no object a machine still holds in memory can
 * alias what is "on disk": state reaches storage only by an explicit `put`. A `put` is durable when
 * it returns (as a committed SQLite transaction is); torn or lost writes are not simulated yet.
 */
import { assert } from '../model/errors.ts'

export class SimStorage {
  private readonly entries = new Map<string, Uint8Array>()
  /** Writes and bytes written over the node's whole existence, across crashes. */
  writes = 0
  bytesWritten = 0

  get (key: string): Uint8Array | undefined {
    const value = this.entries.get(key)
    return value === undefined ? undefined : value.slice()
  }

  put (key: string, value: Uint8Array): void {
    assert(value instanceof Uint8Array, 'storage holds bytes')
    this.entries.set(key, value.slice())
    this.writes += 1
    this.bytesWritten += value.length
  }

  delete (key: string): boolean {
    return this.entries.delete(key)
  }

  has (key: string): boolean {
    return this.entries.has(key)
  }

  /** Keys in the order they were first written. */
  keys (): string[] {
    return [...this.entries.keys()]
  }

  get size (): number {
    return this.entries.size
  }

  /** A safe integer as 8 bytes (float64, big-endian): for counters and high-water marks. */
  putNumber (key: string, value: number): void {
    assert(Number.isSafeInteger(value), 'putNumber stores safe integers')
    const bytes = new Uint8Array(8)
    new DataView(bytes.buffer).setFloat64(0, value)
    this.put(key, bytes)
  }

  getNumber (key: string): number | undefined {
    const bytes = this.entries.get(key)
    if (bytes === undefined) return undefined
    assert(bytes.length === 8, `storage key ${key} holds a number`)
    return new DataView(bytes.buffer, bytes.byteOffset, 8).getFloat64(0)
  }
}
