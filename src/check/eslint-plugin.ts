/**
 * The checks of `rhizome check` as an ESLint plugin (flat config), so editors show them as you
 * type:
 *
 * ```js
 * // eslint.config.js
 * import rhizome from '@rhizome-net/rhizome/eslint-plugin'
 * export default [{ files: ['**\/*.ts'], languageOptions: { parser: tsParser }, ...rhizome.configs.recommended }]
 * ```
 *
 * One rule per kind of finding. The rules do not read ESLint's syntax tree: each runs the analyzer
 * on the file's text, so they work under any parser that accepts the file (typescript-eslint's for
 * TypeScript). The analysis runs once per file, whichever of the rules are on; the others reuse it.
 * Offsets of fixes are into the same text ESLint fixes (ESLint drops a byte-order mark from both).
 *
 * The types below are the few parts of ESLint's rule API used here, written out so that the
 * package's types do not depend on ESLint's.
 */
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { VERSION } from '../model/version.ts'
import { checkSource } from './index.ts'
import type { CheckResult, Finding, FindingKind } from './index.ts'

interface Position { line: number, column: number }
interface Fixer { replaceTextRange: (range: [number, number], text: string) => unknown }
interface RuleContext {
  filename: string
  sourceCode: { text: string }
  report: (descriptor: { message: string, loc: { start: Position, end: Position }, fix?: (fixer: Fixer) => unknown[] }) => void
}
export interface RhizomeRule {
  meta: { type: 'problem' | 'suggestion', docs: { description: string, url: string }, fixable?: 'code', schema: [] }
  create: (context: RuleContext) => Record<string, () => void>
}

const DOCS_URL = 'https://www.npmjs.com/package/@rhizome-net/rhizome#checking-workflows-before-they-run'

/** The analysis of each file being linted, shared by the three rules: keyed by ESLint's SourceCode object. */
const analyses = new WeakMap<object, CheckResult>()

function readIfPresent (file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined
}

function analysis (context: RuleContext): CheckResult {
  let result = analyses.get(context.sourceCode)
  if (result === undefined) {
    result = checkSource(context.filename, context.sourceCode.text, readIfPresent)
    analyses.set(context.sourceCode, result)
  }
  return result
}

/** The finding as one ESLint message: what, the hint, and for a cycle its edges. */
function messageOf (f: Finding): string {
  const sentence = (text: string): string => text.replace(/\.+$/, '')
  const parts = [`${sentence(f.message)} [${f.rule}]`, sentence(f.hint)]
  if (f.saving !== undefined) parts.push(`Saving: ${sentence(f.saving.description)}`)
  if (f.path !== undefined && f.path.length > 0) parts.push(`Path: ${f.path.map(p => `line ${p.line}: ${p.note}`).join(' → ')}`)
  return parts.join('. ') + '.'
}

function rule (kind: FindingKind, description: string, fixable: boolean): RhizomeRule {
  return {
    meta: { type: kind === 'lost-parallelism' ? 'suggestion' : 'problem', docs: { description, url: DOCS_URL }, ...(fixable ? { fixable: 'code' as const } : {}), schema: [] },
    create (context) {
      return {
        Program () {
          for (const f of analysis(context).findings) {
            if (f.kind !== kind || resolve(f.start.file) !== resolve(context.filename)) continue
            const edits = f.fix?.edits ?? []
            context.report({
              message: messageOf(f),
              // ESLint's columns are 0-based, the analyzer's 1-based.
              loc: { start: { line: f.start.line, column: f.start.column - 1 }, end: { line: f.end.line, column: f.end.column - 1 } },
              ...(fixable && edits.length > 0 ? { fix: (fixer: Fixer) => edits.map(e => fixer.replaceTextRange([e.start, e.end], e.text)) } : {})
            })
          }
        }
      }
    }
  }
}

const rules = {
  'lost-parallelism': rule('lost-parallelism', 'independent remote calls awaited one after another in a workflow (fix: Promise.all)', true),
  deadlock: rule('deadlock', 'a workflow that waits on itself: a child run of itself, a cycle of workflows, a signal only it sends later', false),
  nondeterminism: rule('nondeterminism', 'workflow code that does not replay the same way: clocks, randomness, timers, module state', false)
}

export interface RhizomePlugin {
  meta: { name: string, version: string }
  rules: typeof rules
  configs: { recommended: { plugins: Record<string, RhizomePlugin>, rules: Record<string, 'warn' | 'error'> } }
}

const plugin: RhizomePlugin = {
  meta: { name: '@rhizome-net/rhizome/eslint-plugin', version: VERSION },
  rules,
  configs: { recommended: { plugins: {}, rules: {} } }
}
// The recommended config names the plugin itself, as flat configs expect.
plugin.configs.recommended = {
  plugins: { rhizome: plugin },
  rules: { 'rhizome/lost-parallelism': 'warn', 'rhizome/deadlock': 'error', 'rhizome/nondeterminism': 'error' }
}

export default plugin
export { rules }
