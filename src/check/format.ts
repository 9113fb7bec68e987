/**
 * What `rhizome check` prints: for people (file:line:col, the rule, a hint and a code frame), as
 * JSON (the findings as the analyzer gives them, in a fixed shape), and as SARIF 2.1.0, the format
 * code-scanning tools (GitHub code scanning, editors' SARIF viewers) read.
 *
 * Locations are 1-based and `end` is exclusive (the column after the last character), as SARIF
 * regions are; columns count UTF-16 code units, as TypeScript and SARIF's default do.
 */
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { VERSION } from '../model/version.ts'
import type { CheckResult, Finding, FindingKind, Location } from './index.ts'

/** Lines of source shown before and after a finding's lines, so the reader sees where it is. */
export const FRAME_CONTEXT_LINES = 2
/**
 * Lines of a finding's own span shown in its frame. A finding may span a whole loop; its start
 * and its first lines say where, and a frame longer than a screen hides the next finding.
 */
export const FRAME_SPAN_LINES_MAX = 12

export const SARIF_SCHEMA = 'https://json.schemastore.org/sarif-2.1.0.json'
export const CHECK_TOOL_NAME = 'rhizome check'
export const CHECK_INFORMATION_URI = 'https://www.npmjs.com/package/@rhizome-net/rhizome'

export type ReadFile = (file: string) => string | undefined

/** What each rule looks for, in a line: SARIF's rule descriptions, and the fallback for rules not listed. */
const RULE_DESCRIPTIONS: Record<string, string> = {
  'sequential-awaits': 'remote calls awaited one after another although neither uses the other\'s result',
  'await-in-loop': 'a remote call awaited inside a loop whose iterations are independent',
  'self-child': 'a workflow awaits a child run of itself with the same arguments: it waits on itself',
  'workflow-cycle': 'workflows await each other in a cycle',
  date: 'Date in workflow code: the clock differs on replay',
  'performance-now': 'performance.now in workflow code: the clock differs on replay',
  'math-random': 'Math.random in workflow code: a different value on replay',
  'crypto-random': 'crypto randomness in workflow code: a different value on replay',
  timer: 'a timer in workflow code: it fires at a different point on replay',
  weakref: 'WeakRef or FinalizationRegistry in workflow code: garbage collection differs on replay',
  'dynamic-import': 'dynamic import() in workflow code: what it loads is not part of the bundle',
  'module-state': 'module-level state that a run mutates: a replay starts from another state',
  'promise-race': 'Promise.race over calls whose winner is not recorded: a replay may pick another',
  'impure-import': 'imported code that is nondeterministic in one of these ways'
}

const KIND_DESCRIPTIONS: Record<FindingKind, string> = {
  'lost-parallelism': 'independent remote calls run one after another',
  deadlock: 'a workflow waits on something that can only happen after it stops waiting',
  nondeterminism: 'workflow code that does not replay the same way'
}

export function ruleId (f: Finding): string {
  return `${f.kind}/${f.rule}`
}

export function ruleDescription (kind: FindingKind, rule: string): string {
  return RULE_DESCRIPTIONS[rule] ?? KIND_DESCRIPTIONS[kind] ?? rule
}

/** A file's name as printed: relative to `cwd` when it is inside it. */
export function displayPath (file: string, cwd: string = process.cwd()): string {
  if (!path.isAbsolute(file)) return file
  const rel = path.relative(cwd, file)
  return rel === '' || rel.startsWith('..') || path.isAbsolute(rel) ? file : rel
}

function where (l: Location, cwd: string): string {
  return `${displayPath(l.file, cwd)}:${l.line}:${l.column}`
}

/** The findings for people: each with its hint, details and a code frame, then a summary line. */
export function formatHuman (result: CheckResult, readFile: ReadFile, options: { cwd?: string } = {}): string {
  const cwd = options.cwd ?? process.cwd()
  const texts = new Map<string, string | undefined>()
  const text = (file: string): string | undefined => {
    if (!texts.has(file)) texts.set(file, readFile(file))
    return texts.get(file)
  }
  const blocks = result.findings.map(f => findingBlock(f, text(f.start.file), cwd))
  return [...blocks, summaryLine(result)].join('\n') + '\n'
}

function findingBlock (f: Finding, text: string | undefined, cwd: string): string {
  const lines = [`${where(f.start, cwd)}  ${ruleId(f)}  ${f.message}`]
  if (f.workflow !== undefined) lines.push(`  in workflow ${f.workflow}`)
  lines.push(`  hint: ${f.hint}`)
  if (f.fix !== undefined) lines.push(`  fix: ${f.fix.description}`)
  if (f.saving !== undefined) lines.push(`  saving: ${f.saving.description} (${f.saving.hops} ${f.saving.hops === 1 ? 'hop' : 'hops'} off the critical path)`)
  if (f.path !== undefined && f.path.length > 0) {
    lines.push(f.kind === 'deadlock' ? '  cycle:' : '  path:')
    for (const step of f.path) lines.push(`    ${where(step, cwd)}  ${step.note}`)
  }
  if (text !== undefined) lines.push(...codeFrame(text, f.start, f.end).map(l => `  ${l}`))
  return lines.join('\n') + '\n'
}

export function summaryLine (result: CheckResult): string {
  const n = result.findings.length
  if (n === 0) return `no findings (${plural(result.files.length, 'file')} checked)`
  const files = new Set(result.findings.map(f => f.start.file)).size
  return `${plural(n, 'finding')} in ${plural(files, 'file')}`
}

function plural (n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

/**
 * The lines from `start` to `end` (exclusive) with FRAME_CONTEXT_LINES around them, a `>` on the
 * finding's lines, and a caret line under each of them marking the span.
 */
export function codeFrame (text: string, start: Location, end: Location): string[] {
  const lines = text.split(/\r?\n/)
  const first = Math.max(1, Math.min(start.line, lines.length))
  const last = Math.max(first, Math.min(end.line, lines.length))
  const shownLast = Math.min(last, first + FRAME_SPAN_LINES_MAX - 1)
  const from = Math.max(1, first - FRAME_CONTEXT_LINES)
  const to = Math.min(lines.length, shownLast + FRAME_CONTEXT_LINES)
  const width = String(to).length
  const out: string[] = []
  for (let n = from; n <= to; n++) {
    const line = lines[n - 1]
    const inSpan = n >= first && n <= shownLast
    out.push(`${inSpan ? '>' : ' '} ${String(n).padStart(width)} | ${line}`.trimEnd())
    if (inSpan) {
      const startCol = n === first ? start.column : firstNonBlank(line)
      const endCol = n === last ? end.column : line.length + 1
      out.push(`  ${' '.repeat(width)} | ${caretLine(line, startCol, endCol)}`)
    }
    if (n === shownLast && shownLast < last) out.push(`  ${' '.repeat(width)} | … ${plural(last - shownLast, 'more line')}`)
  }
  return out
}

function firstNonBlank (line: string): number {
  const i = line.search(/\S/)
  return i < 0 ? 1 : i + 1
}

/** Carets under columns [startCol, endCol) of `line`; tabs before them are kept so the carets line up. */
function caretLine (line: string, startCol: number, endCol: number): string {
  const lead = line.slice(0, Math.max(0, startCol - 1)).replace(/[^\t]/g, ' ')
  return lead + '^'.repeat(Math.max(1, endCol - startCol))
}

/** The result as JSON, every finding in the same key order whatever the analyzer built. */
export function formatJson (result: CheckResult): string {
  const findings = result.findings.map(f => ({
    kind: f.kind,
    rule: f.rule,
    message: f.message,
    hint: f.hint,
    ...(f.workflow !== undefined ? { workflow: f.workflow } : {}),
    start: f.start,
    end: f.end,
    ...(f.path !== undefined ? { path: f.path } : {}),
    ...(f.fix !== undefined ? { fix: f.fix } : {}),
    ...(f.saving !== undefined ? { saving: f.saving } : {})
  }))
  return JSON.stringify({ files: result.files, findings }, null, 2) + '\n'
}

/** A file as a SARIF artifact URI: relative to `root` (with uriBaseId %SRCROOT%) when inside it, else a file: URL. */
function artifactLocation (file: string, root: string): { uri: string, uriBaseId?: string } {
  const abs = path.resolve(root, file)
  const rel = path.relative(root, abs)
  if (rel.startsWith('..') || path.isAbsolute(rel)) return { uri: pathToFileURL(abs).href }
  return { uri: rel.split(path.sep).map(encodeURIComponent).join('/'), uriBaseId: '%SRCROOT%' }
}

function region (start: Location, end: Location): { startLine: number, startColumn: number, endLine: number, endColumn: number } {
  return { startLine: start.line, startColumn: start.column, endLine: end.line, endColumn: end.column }
}

function sarifRules (findings: Finding[]): { ids: string[], rules: unknown[] } {
  const byId = new Map<string, Finding>()
  for (const f of findings) if (!byId.has(ruleId(f))) byId.set(ruleId(f), f)
  const ids = [...byId.keys()].sort()
  const rules = ids.map(id => {
    const f = byId.get(id) as Finding
    return {
      id,
      name: f.rule,
      shortDescription: { text: ruleDescription(f.kind, f.rule) },
      help: { text: f.hint },
      defaultConfiguration: { level: 'warning' },
      properties: { tags: [f.kind] }
    }
  })
  return { ids, rules }
}

function sarifResult (f: Finding, ruleIndex: number, root: string): Record<string, unknown> {
  const physical = (l: Location, end: Location): unknown => ({ artifactLocation: artifactLocation(l.file, root), region: region(l, end) })
  const result: Record<string, unknown> = {
    ruleId: ruleId(f),
    ruleIndex,
    level: 'warning',
    message: { text: `${f.message.replace(/\.$/, '')}. Hint: ${f.hint}` },
    locations: [{ physicalLocation: physical(f.start, f.end) }]
  }
  if (f.path !== undefined && f.path.length > 0) {
    result.relatedLocations = f.path.map((step, id) => ({ id, message: { text: step.note }, physicalLocation: physical(step, step) }))
  }
  if (f.fix !== undefined) {
    result.fixes = [{
      description: { text: f.fix.description },
      artifactChanges: [{
        artifactLocation: artifactLocation(f.start.file, root),
        replacements: f.fix.edits.map(e => ({ deletedRegion: { charOffset: e.start, charLength: e.end - e.start }, insertedContent: { text: e.text } }))
      }]
    }]
  }
  return result
}

/** The result as a SARIF 2.1.0 log: one run, one rule per rule id found, one result per finding. */
export function formatSarif (result: CheckResult, options: { root?: string } = {}): string {
  const root = path.resolve(options.root ?? process.cwd())
  const { ids, rules } = sarifRules(result.findings)
  const log = {
    $schema: SARIF_SCHEMA,
    version: '2.1.0',
    runs: [{
      tool: { driver: { name: CHECK_TOOL_NAME, version: VERSION, informationUri: CHECK_INFORMATION_URI, rules } },
      originalUriBaseIds: { '%SRCROOT%': { uri: pathToFileURL(root + path.sep).href } },
      artifacts: result.files.map(file => ({ location: artifactLocation(file, root) })),
      results: result.findings.map(f => sarifResult(f, ids.indexOf(ruleId(f)), root))
    }]
  }
  return JSON.stringify(log, null, 2) + '\n'
}
