/** The shapes `rhizome check` reports (re-exported by index.ts). */

export type FindingKind = 'lost-parallelism' | 'deadlock' | 'nondeterminism'

/** A place in a file; line and column are 1-based. */
export interface Location { file: string, line: number, column: number }

export interface Finding {
  kind: FindingKind
  /** Stable rule id, e.g. 'sequential-awaits', 'await-in-loop', 'self-child', 'workflow-cycle', 'date', 'math-random'. */
  rule: string
  /** What was found; for nondeterminism: why it breaks replay. */
  message: string
  /** What to do instead (the rewrite, the SDK API to use). */
  hint: string
  /** The workflow export it is in. */
  workflow?: string
  start: Location
  end: Location
  /** Deadlocks: the cycle, one location per edge; nondeterminism through an imported helper: the call chain. */
  path?: Array<Location & { note: string }>
  /** Lost parallelism: the rewrite as text edits (offsets into the file's text). */
  fix?: { description: string, edits: Array<{ start: number, end: number, text: string }> }
  /** Critical-path tasks saved. */
  saving?: { hops: number, description: string }
}

export interface CheckResult { files: string[], findings: Finding[] }

export type ReadFile = (path: string) => string | undefined

export type GraphNodeKind = 'call' | 'child' | 'fork' | 'join' | 'loop' | 'branch' | 'start' | 'end'

/** The workflow's task graph as the code defines it. */
export interface FlowGraph {
  workflow: string
  nodes: Array<{ id: string, kind: GraphNodeKind, label: string, at: Location }>
  edges: Array<{ from: string, to: string, label?: string }>
}
