/**
 * `rhizome check`: deadlocks, lost parallelism and nondeterminism in workflow modules, found by
 * reading the code (the TypeScript compiler's parser; nothing is bundled or run).
 *
 * Workflow concurrency is syntactic: every `await` of a remote call is a synchronization point,
 * every `Promise.all` a fork. So what would otherwise show only at run time, or only at replay,
 * can be read off the code: calls awaited one by one that could go together (parallelism.ts,
 * loops.ts), runs that wait on themselves (deadlock.ts), values a replay cannot reproduce
 * (nondeterminism.ts). graph.ts draws the task graph the code defines.
 */
import fs from 'node:fs'
import path from 'node:path'
import { InvalidInputError } from '../model/errors.ts'
import { Loader } from './model.ts'
import type { ModuleModel } from './model.ts'
import { checkNondeterminism } from './nondeterminism.ts'
import { checkDeadlocks } from './deadlock.ts'
import { checkSequential, contextOf, moduleState } from './parallelism.ts'
import { checkLoops } from './loops.ts'
import type { CheckResult, Finding, ReadFile } from './types.ts'

export type { CheckResult, Finding, FindingKind, FlowGraph, GraphNodeKind, Location, ReadFile } from './types.ts'
export { workflowGraph, graphText, graphMermaid, graphDot } from './graph.ts'

/** Read a file from disk, or undefined when it cannot be read (a missing import is not the checker's error). */
function readFromDisk (file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
}

function checkModule (m: ModuleModel): Finding[] {
  if (!m.importsSdk) return [] // a function module: its code runs as tasks, whose results are recorded
  const state = moduleState(m)
  const findings = [...checkDeadlocks(m), ...checkNondeterminism(m)]
  for (const w of m.workflows.values()) {
    const ctx = contextOf(m, w, state)
    findings.push(...checkSequential(ctx), ...checkLoops(ctx))
  }
  return findings.sort((a, b) => a.start.line - b.start.line || a.start.column - b.start.column || a.rule.localeCompare(b.rule))
}

/** Check workflow modules on disk (follows relative imports for helpers and function modules). */
export function checkFiles (paths: string[]): CheckResult {
  const loader = new Loader(readFromDisk)
  const findings: Finding[] = []
  const files: string[] = []
  for (const file of paths) {
    const text = readFromDisk(file)
    if (text === undefined) throw new InvalidInputError(`cannot read ${file}`, { hint: 'name workflow modules that exist: rhizome check FILE.ts...' })
    files.push(file)
    findings.push(...checkModule(loader.model(path.resolve(file), text)).map(f => relabel(f, path.resolve(file), file)))
  }
  return { files, findings }
}

/** Report locations in the file as the caller named it. */
function relabel (f: Finding, resolved: string, given: string): Finding {
  const name = (file: string): string => file === resolved ? given : path.relative(process.cwd(), file)
  return { ...f, start: { ...f.start, file: name(f.start.file) }, end: { ...f.end, file: name(f.end.file) }, ...(f.path === undefined ? {} : { path: f.path.map(p => ({ ...p, file: name(p.file) })) }) }
}

/** Check one module from text (tests, the ESLint plugin); `readFile` resolves relative imports. */
export function checkSource (fileName: string, text: string, readFile?: ReadFile): CheckResult {
  const loader = new Loader(readFile)
  return { files: [fileName], findings: checkModule(loader.model(fileName, text)) }
}

/** Apply every fix's edits to `text` (non-overlapping; later offsets first). */
export function applyFixes (text: string, findings: Finding[]): string {
  const edits = findings.flatMap(f => f.fix?.edits ?? []).sort((a, b) => b.start - a.start)
  let out = text
  let floor = Infinity
  for (const e of edits) {
    if (e.end > floor) continue // overlaps an edit already applied: leave it for the next run of --fix
    out = out.slice(0, e.start) + e.text + out.slice(e.end)
    floor = e.start
  }
  return out
}
