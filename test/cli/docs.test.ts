/** The README's configuration table is what the field table generates, so the two cannot disagree. */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { test } from 'node:test'
import { README, withConfigTable } from '../../scripts/docs.ts'
import { KNOWN_ENV, configOptions } from '../../src/node/config.ts'

test('README.md holds exactly the generated configuration table (run `npm run docs` after changing a setting)', async () => {
  const readme = await readFile(README, 'utf8')
  assert.equal(readme, withConfigTable(readme))
  const table = readme.slice(readme.indexOf('<!-- config-table:start -->'), readme.indexOf('<!-- config-table:end -->'))
  for (const flag of Object.keys(configOptions())) assert.ok(table.includes(`\`--${flag}`), `--${flag} is not in the table`)
  for (const name of KNOWN_ENV) assert.ok(table.includes(`\`${name}\``), `${name} is not in the table`)
})
