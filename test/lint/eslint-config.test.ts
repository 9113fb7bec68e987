// The lint rules that keep the architecture honest, checked on small sources placed (by path
// only; nothing is written) where the rules apply.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ESLint } from 'eslint'

const eslint = new ESLint({ cwd: new URL('../..', import.meta.url).pathname })

/** The rules under test that `code` breaks, were it at `filePath`. */
async function ruleIds (filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath })
  return result.messages.map(m => m.ruleId ?? m.message).filter(id => id !== '@typescript-eslint/no-unused-vars')
}

describe('eslint.config.js', () => {
  test('the CLI may import src/node/index.ts, src/api, src/model and src/functions, and nothing else of the peer', async () => {
    const allowed = [
      "import { startNode } from '../../node/index.ts'",
      "import { ROUTES } from '../../api/routes.ts'",
      "import { assert } from '../../model/errors.ts'",
      "import { bundleFunctions } from '../../functions/index.ts'"
    ]
    for (const line of allowed) assert.deepEqual(await ruleIds('src/cli/commands/x.ts', `${line}\nvoid 0\n`), [], line)
    const refused = [
      "import { readRegularFile } from '../../node/regular-file.ts'",
      "import { startNode } from '../../node/node.ts'",
      "import { createBlobStore } from '../../store/index.ts'",
      "import { Slots } from '../../net/slots.ts'",
      "import { encodeFrame } from '../../wire/frame.ts'",
      "import { createMembership } from '../../protocol/membership/index.ts'",
      "import { createSandbox } from '../../sandbox/index.ts'"
    ]
    for (const line of refused) assert.deepEqual(await ruleIds('src/cli/commands/x.ts', `${line}\nvoid 0\n`), ['no-restricted-imports'], line)
  })

  test('`rhizome network` may use the credentials codec and the permission rules, and nothing else of src/wire or src/protocol', async () => {
    for (const dir of ['src/cli/commands/x.ts', 'src/cli/x.ts']) {
      const up = dir.startsWith('src/cli/commands/') ? '../../' : '../'
      for (const line of [`import { encodeCertificate } from '${up}wire/certificate-codec.ts'`, `import { ROLES } from '${up}protocol/permission/constants.ts'`]) {
        assert.deepEqual(await ruleIds(dir, `${line}\nvoid 0\n`), [], `${dir}: ${line}`)
      }
      for (const line of [`import { createPermission } from '${up}protocol/permission/index.ts'`, `import { PermissionMachine } from '${up}protocol/permission/permission.ts'`, `import { encodeFrame } from '${up}wire/frame.ts'`, `import { OutputQueue } from '${up}protocol/output-queue.ts'`]) {
        assert.deepEqual(await ruleIds(dir, `${line}\nvoid 0\n`), ['no-restricted-imports'], `${dir}: ${line}`)
      }
    }
  })

  test('a function of 70 lines passes; one of 71 fails, blank lines and comments aside', async () => {
    // Header, `let`, `lines - 4` increments (each with a comment and a blank line), `return`, `}`.
    const fn = (lines: number): string => `export function f (): number {\n  let n = 0\n${'  n++\n  // a comment\n\n'.repeat(lines - 4)}  return n\n}\n`
    assert.deepEqual(await ruleIds('src/store/x.ts', fn(70)), [])
    assert.deepEqual(await ruleIds('src/store/x.ts', fn(71)), ['max-lines-per-function'])
  })
})
