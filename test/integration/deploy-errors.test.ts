/** Malformed deploys fail at deploy time, before any peer is asked, with a message saying what to fix. */
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { describe, test } from 'node:test'
import { runCli } from '../helpers/peers.ts'

const bad = (name: string): string => fileURLToPath(new URL(`../fixtures/deploy/bad/${name}`, import.meta.url))

describe('rhizome deploy refuses bad modules', { timeout: 60_000 }, () => {
  const cases: Array<[string, string, RegExp]> = [
    ['a syntax error, with its position', 'syntax.ts', /syntax\.ts:3:1: Unexpected "}"/],
    ['a Node built-in import, by name', 'builtin.ts', /forbidden import "node:fs"/],
    ['a package import, by name', 'package.ts', /"left-pad"/],
    ['a module with no exported functions', 'no-functions.ts', /exports no function/]
  ]
  for (const [what, file, message] of cases) {
    test(what, async () => {
      const r = await runCli(['deploy', bad(file), '--api', 'http://127.0.0.1:9'])
      assert.equal(r.code, 2, r.stderr)
      assert.match(r.stderr, message)
      assert.match(r.stderr, /hint: /)
    })
  }

  test('a file that does not exist', async () => {
    const r = await runCli(['deploy', bad('missing.ts'), '--api', 'http://127.0.0.1:9'])
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /missing\.ts/)
  })
})
