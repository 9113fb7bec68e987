/**
 * `rhizome check FILE...`: the static checks of workflow modules (src/check) from the command
 * line. It reads files only — no peer, no data dir — so it runs in an editor's save hook or CI.
 * The analyzer (and the TypeScript compiler it uses) is imported when the command runs, not when
 * its help is shown.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { readRegularFileSync } from '../../api/regular-file.ts'
import { displayPath, formatHuman, formatJson, formatSarif } from '../../check/format.ts'
import type { CheckResult, Finding } from '../../check/index.ts'
import { exportNameProblem } from '../../model/export-name.ts'
import { CliError, EXIT_FAILED, EXIT_OK, EXIT_USAGE, jsonOption } from '../command.ts'
import type { Command, CommandContext, CommandResult } from '../command.ts'

/**
 * Files one `rhizome check` takes. A shell glob over a source tree stays far below it; the
 * analyzer holds every file's syntax tree at once, and past some thousands of files that is
 * gigabytes, so a mistaken glob over node_modules stops here instead.
 */
export const CHECK_FILES_MAX = 4096

/**
 * Largest file checked, in bytes: 4 MiB, the largest workflow bundle a peer accepts (CODE_BYTES_MAX.js),
 * so no module that could run is refused, and a large generated file is not parsed by mistake.
 */
export const CHECK_FILE_BYTES_MAX = 4 * 1024 * 1024

const FORMATS = ['human', 'json', 'sarif'] as const
const GRAPH_FORMATS = ['text', 'mermaid', 'dot'] as const
type Format = typeof FORMATS[number]
type GraphFormat = typeof GRAPH_FORMATS[number]

type Analyzer = typeof import('../../check/index.ts')

export const check: Command = {
  usage: `rhizome check FILE... [--json | --format human|json|sarif] [--fix]
       rhizome check FILE --graph EXPORT [--graph-format text|mermaid|dot] [--json]

  FILE          a workflow module (imports @rhizome-net/rhizome); the functions and helpers it
                imports are followed (at most ${CHECK_FILES_MAX} files, each at most ${CHECK_FILE_BYTES_MAX / 1024 / 1024} MiB)
  --format F    human (default): file:line:col, the rule, a hint and the code; json; sarif (SARIF 2.1.0,
                for code-scanning tools)
  --json        the same as --format json
  --fix         rewrite the files in place with each finding's fix (independent calls joined in a
                Promise.all), then check them again and report what is left
  --graph EXPORT  print the task graph of workflow EXPORT of FILE instead: calls, child runs, forks,
                joins, loops and branches as the code defines them
  --graph-format  text (default), mermaid or dot; with --json, the graph as JSON

  Finds, before anything runs: lost parallelism (independent remote calls awaited one after another),
  deadlocks (a workflow awaiting itself with the same arguments, cycles of workflows awaiting each other)
  and nondeterminism (clocks, randomness, timers, module state and the like in workflow code, which
  break replay). Exit 0 when nothing is found, 1 when something is, 2 for a wrong command line.`,
  options: { ...jsonOption, format: { type: 'string' }, fix: { type: 'boolean' }, graph: { type: 'string' }, 'graph-format': { type: 'string' } },
  positionals: [1, CHECK_FILES_MAX],
  async run (context) {
    // The same file named twice (a glob and a path) is checked once.
    const files = [...new Set(context.positionals.map(f => resolve(f)))]
    if (context.values.graph !== undefined || context.values['graph-format'] !== undefined) return await graph(context, files)
    const format = formatFromFlags(context)
    for (const given of context.positionals) readable(given)
    const analyzer = await import('../../check/index.ts')
    if (context.values.fix === true) {
      const fixed = fixFiles(analyzer, files)
      if (format === 'human') context.print(fixedText(fixed))
    }
    return output(analyzer.checkFiles(files), format)
  }
}

function usage (message: string, hint: string): CliError {
  return new CliError('ERR_USAGE', message, { exitCode: EXIT_USAGE, hint })
}

function formatFromFlags (context: CommandContext): Format {
  const format = context.values.format as string | undefined
  if (format !== undefined && !(FORMATS as readonly string[]).includes(format)) throw usage(`--format must be one of ${FORMATS.join(', ')}, got ${JSON.stringify(format)}`, 'e.g. --format sarif > check.sarif')
  if (context.values.json === true && format !== undefined && format !== 'json') throw usage(`--json and --format ${format} ask for two formats`, 'give one of them')
  return context.values.json === true ? 'json' : (format as Format | undefined) ?? 'human'
}

/** A FILE must be a regular file within the size limit: a wrong path is a usage error (exit 2). */
function readable (given: string): string {
  try {
    return new TextDecoder().decode(readRegularFileSync(given, CHECK_FILE_BYTES_MAX, 'workflow module'))
  } catch (err) {
    const e = err as CliError
    throw new CliError('ERR_USAGE', e.message, { exitCode: EXIT_USAGE, hint: e.hint ?? `check the path ${given}`, cause: err })
  }
}

function readIfPresent (file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined
}

function output (result: CheckResult, format: Format): CommandResult {
  const exitCode = result.findings.length > 0 ? EXIT_FAILED : EXIT_OK
  if (format === 'json') return { exitCode, stdout: formatJson(result) }
  if (format === 'sarif') return { exitCode, stdout: formatSarif(result) }
  return { exitCode, stdout: formatHuman(result, readIfPresent) }
}

interface Fixed { file: string, findings: Finding[] }

/** Apply every fix the analyzer offers, file by file; the files are written only when something changed. */
function fixFiles (analyzer: Analyzer, files: string[]): Fixed[] {
  const { findings } = analyzer.checkFiles(files)
  const byFile = new Map<string, Finding[]>()
  for (const f of findings) {
    if (f.fix === undefined || f.fix.edits.length === 0) continue
    const file = resolve(f.start.file)
    byFile.set(file, [...(byFile.get(file) ?? []), f])
  }
  const fixed: Fixed[] = []
  for (const [file, list] of byFile) {
    const before = readFileSync(file, 'utf8')
    const after = analyzer.applyFixes(before, list)
    if (after === before) continue
    writeFileSync(file, after)
    fixed.push({ file, findings: list })
  }
  return fixed
}

function fixedText (fixed: Fixed[]): string {
  if (fixed.length === 0) return 'nothing to fix\n'
  const count = fixed.reduce((n, f) => n + f.findings.length, 0)
  const lines = [`fixed ${count} ${count === 1 ? 'finding' : 'findings'} in ${fixed.length} ${fixed.length === 1 ? 'file' : 'files'}:`]
  for (const { findings } of fixed) {
    for (const f of findings) lines.push(`  ${displayPath(f.start.file)}:${f.start.line}:${f.start.column}  ${f.fix?.description ?? ''}${f.saving !== undefined ? ` (${f.saving.description})` : ''}`)
  }
  return lines.join('\n') + '\n\n'
}

/** `--graph EXPORT`: the workflow's task graph, as text, Mermaid, DOT or JSON. Exit 0: it reports, it does not judge. */
async function graph (context: CommandContext, files: string[]): Promise<CommandResult> {
  const exportName = context.values.graph as string | undefined
  if (exportName === undefined) throw usage('--graph-format needs --graph EXPORT', 'e.g. rhizome check flow.ts --graph A --graph-format mermaid')
  const bad = exportNameProblem(exportName)
  if (bad !== undefined) throw usage(`--graph EXPORT ${bad}`, 'EXPORT is the name of an exported workflow, e.g. --graph A')
  if (files.length !== 1) throw usage(`--graph draws the workflow of one FILE, got ${files.length}`, 'e.g. rhizome check flow.ts --graph A')
  if (context.values.fix === true || context.values.format !== undefined) throw usage('--graph does not combine with --fix or --format', 'use --graph-format text|mermaid|dot, or --json')
  const graphFormat = (context.values['graph-format'] as string | undefined) ?? 'text'
  if (!(GRAPH_FORMATS as readonly string[]).includes(graphFormat)) throw usage(`--graph-format must be one of ${GRAPH_FORMATS.join(', ')}, got ${JSON.stringify(graphFormat)}`, 'e.g. --graph-format mermaid')
  const text = readable(context.positionals[0])
  const analyzer = await import('../../check/index.ts')
  let g
  try {
    g = analyzer.workflowGraph(files[0], text, exportName, readIfPresent)
  } catch (err) {
    throw usage(`cannot draw workflow ${JSON.stringify(exportName)} of ${context.positionals[0]}: ${(err as Error).message}`, 'name an export marked with workflow(): `export const A = workflow(async (x) => ...)`')
  }
  if (context.values.json === true) return { exitCode: EXIT_OK, stdout: JSON.stringify(g, null, 2) + '\n' }
  const draw = { text: analyzer.graphText, mermaid: analyzer.graphMermaid, dot: analyzer.graphDot }[graphFormat as GraphFormat]
  return { exitCode: EXIT_OK, stdout: draw(g) }
}

/**
 * `rhizome run --auto-parallel`: a source transform that applies the analyzer's lost-parallelism
 * rewrites (and no other fix) to a workflow module's text; `applied()` counts the last call's.
 */
export async function autoParallel (): Promise<{ transform: (text: string, file: string) => string, applied: () => number }> {
  const { applyFixes, checkSource } = await import('../../check/index.ts')
  let applied = 0
  return {
    transform: (text, file) => {
      const rewrites = checkSource(file, text, readIfPresent).findings.filter(f => f.kind === 'lost-parallelism' && f.fix !== undefined && f.fix.edits.length > 0)
      applied = rewrites.length
      return applyFixes(text, rewrites)
    },
    applied: () => applied
  }
}
