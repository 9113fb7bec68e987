/**
 * The outputs a sans-I/O state machine has for its shell (STYLE.md §4): the machine pushes them
 * while it handles an input, the shell drains them with `poll()` after every call. Bounded: a
 * shell that stops draining is a bug, and the machine's assertion says so instead of growing
 * without end. `poll()` is O(1) (a head index, not `shift()`), and the array is dropped once drained.
 */
import { assert } from '../model/errors.ts'

export class OutputQueue<T> {
  private items: T[] = []
  private head = 0
  private readonly lengthMax: number

  /** `lengthMax`: the most outputs one input can produce, with room; each machine derives it from its own limits. */
  constructor (lengthMax: number) {
    assert(Number.isSafeInteger(lengthMax) && lengthMax >= 1, 'an output queue holds at least one output')
    this.lengthMax = lengthMax
  }

  push (output: T): void {
    assert(this.items.length - this.head < this.lengthMax, 'the shell drains poll() after every call')
    this.items.push(output)
  }

  /** The next output, in the order pushed; undefined when drained. */
  poll (): T | undefined {
    if (this.head === this.items.length) return undefined
    const output = this.items[this.head]
    this.head += 1
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    }
    return output
  }

  /** Outputs not yet polled. */
  get length (): number {
    return this.items.length - this.head
  }
}
