// The seed example's functions: deployed once, content-addressed, run sandboxed on any peer.
// Each burns about `ms` of CPU first, so that three of them running at once on three peers
// is visible in the run's timeline.

function burn (ms: number): void {
  let n = 0
  for (let i = 0; i < ms * 200_000; i++) n = (n + i) % 1_000_003
  if (n < 0) throw new Error('unreachable')
}

export async function B (x: number, ms = 300): Promise<number> { burn(ms); return x * 2 }
export async function C (x: number, ms = 300): Promise<number> { burn(ms); return x + 1 }
export async function D (x: number, ms = 300): Promise<number> { burn(ms); return x - 3 }
