/**
 * A running hash of everything observable that happens in a simulation, so that "same seed, same
 * run" is one string comparison. Two independent 32-bit multiply-xor lanes (the cyrb53 mixing of
 * bryc/code, public domain) give 64 bits: enough that two different traces colliding by chance in a
 * test suite is not a concern. Not cryptographic.
 */
export class TraceHash {
  private h1 = 0xdeadbeef
  private h2 = 0x41c6ce57
  private lines = 0
  private readonly kept: string[] | undefined
  private readonly keptMax: number

  /** `keep` > 0 also keeps the first `keep` lines, to print when a run needs explaining. */
  constructor (keep = 0) {
    this.keptMax = keep
    this.kept = keep > 0 ? [] : undefined
  }

  add (line: string): void {
    let h1 = this.h1
    let h2 = this.h2
    for (let i = 0; i < line.length; i++) {
      const c = line.charCodeAt(i)
      h1 = Math.imul(h1 ^ c, 2654435761)
      h2 = Math.imul(h2 ^ c, 1597334677)
    }
    // A separator, so that ["ab", "c"] and ["a", "bc"] differ.
    h1 = Math.imul(h1 ^ 0x0a, 2654435761)
    h2 = Math.imul(h2 ^ 0x0a, 1597334677)
    this.h1 = h1
    this.h2 = h2
    this.lines += 1
    if (this.kept !== undefined && this.kept.length < this.keptMax) this.kept.push(line)
  }

  get lineCount (): number {
    return this.lines
  }

  get keptLines (): readonly string[] {
    return this.kept ?? []
  }

  /** 16 hex digits. */
  digest (): string {
    let h1 = this.h1
    let h2 = this.h2
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507)
    h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909)
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507)
    h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909)
    return (h2 >>> 0).toString(16).padStart(8, '0') + (h1 >>> 0).toString(16).padStart(8, '0')
  }
}
