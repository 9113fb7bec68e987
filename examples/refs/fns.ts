// Functions for the results-by-reference example: a large result, and a function that uses it.
export async function render (n: number): Promise<Uint8Array> { return new Uint8Array(n).fill(7) }
export async function size (bytes: Uint8Array): Promise<number> { return bytes.length }
