/**
 * `npm run docs` — rewrites what README.md shows of the code: the configuration table, between
 * its config-table markers, from the field table in src/node/config.ts (the same table the
 * peer reads its settings by and `rhizome node start --help` is printed from).
 * test/cli/docs.test.ts fails while README.md differs from what this writes.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { configTable } from '../src/node/config.ts'

export const README = fileURLToPath(new URL('../README.md', import.meta.url))
const START = '<!-- config-table:start -->'
const END = '<!-- config-table:end -->'

/** README text with the generated table between the markers. */
export function withConfigTable (readme: string): string {
  const start = readme.indexOf(START)
  const end = readme.indexOf(END)
  if (start < 0 || end < start) throw new Error(`README.md lacks the markers ${START} … ${END}`)
  return readme.slice(0, start + START.length) + '\n' + configTable() + readme.slice(end)
}

if (import.meta.main) {
  const before = await readFile(README, 'utf8')
  const after = withConfigTable(before)
  if (after === before) {
    process.stdout.write('README.md: the configuration table is current\n')
  } else {
    await writeFile(README, after)
    process.stdout.write('README.md: configuration table rewritten\n')
  }
}
