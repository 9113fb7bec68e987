/**
 * `rhizome check` as people run it: the real CLI in a child process on small workflow modules.
 * Exit 0 when clean, 1 when something is found, 2 for a wrong command line; --json and
 * --format sarif parse; --fix rewrites a copy of a file and says what it changed; --graph draws the
 * workflow. No peer is started: the command reads files only.
 */
import assert from 'node:assert/strict'
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { main } from '../../src/cli/main.ts'
import { CHECK_FILE_BYTES_MAX, CHECK_FILES_MAX } from '../../src/cli/commands/check.ts'
import { runCli } from '../helpers/peers.ts'

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/check-cli')
const fixture = (name: string): string => path.join(FIXTURES, name)

describe('rhizome check', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(path.join(tmpdir(), 'rhizome-check-cli-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  test('a clean module exits 0 and says there is nothing to report', async () => {
    const r = await runCli(['check', fixture('clean.ts')])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^no findings \(1 file checked\)$/m)
  })

  test('a sequential workflow exits 1 with file:line:col, the rule, a hint and a code frame', async () => {
    const r = await runCli(['check', fixture('sequential.ts')])
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stdout, /sequential\.ts:6:3 {2}lost-parallelism\/\S+ {2}/)
    assert.match(r.stdout, /^ {2}hint: /m)
    assert.match(r.stdout, /^ {2}> {2}6 \| {3}const b = await B\(x\)$/m)
    assert.match(r.stdout, /^1 finding in 1 file$/m)
  })

  test('--json parses to { files, findings } with each finding\'s kind and line', async () => {
    const r = await runCli(['check', fixture('clock.ts'), fixture('clean.ts'), '--json'])
    assert.equal(r.code, 1, r.stderr)
    const out = JSON.parse(r.stdout)
    assert.deepEqual(Object.keys(out), ['files', 'findings'])
    assert.equal(out.files.length, 2)
    const found = out.findings.map((f: any) => [f.kind, f.rule, path.basename(f.start.file), f.start.line])
    assert.deepEqual(found, [['nondeterminism', 'date', 'clock.ts', 6], ['nondeterminism', 'math-random', 'clock.ts', 8]])
  })

  test('--format sarif is a SARIF 2.1.0 log with a rule and a located result per finding', async () => {
    const r = await runCli(['check', fixture('sequential.ts'), '--format', 'sarif'])
    assert.equal(r.code, 1, r.stderr)
    const log = JSON.parse(r.stdout)
    assert.equal(log.version, '2.1.0')
    const run = log.runs[0]
    assert.equal(run.tool.driver.name, 'rhizome check')
    assert.ok(run.tool.driver.rules.some((rule: any) => rule.id.startsWith('lost-parallelism/')))
    const [result] = run.results
    assert.equal(result.level, 'warning')
    assert.match(result.locations[0].physicalLocation.artifactLocation.uri, /check-cli\/sequential\.ts$/)
    assert.equal(result.locations[0].physicalLocation.region.startLine, 6)
  })

  test('--fix rewrites the file with Promise.all, says so, and the file then checks clean', async () => {
    await copyFile(fixture('fns.ts'), path.join(dir, 'fns.ts'))
    const file = path.join(dir, 'flow.ts')
    await copyFile(fixture('sequential.ts'), file)
    const r = await runCli(['check', file, '--fix'])
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.match(r.stdout, /^fixed 1 finding in 1 file:$/m)
    assert.match(r.stdout, /flow\.ts:6:3 {2}.+/)
    const text = await readFile(file, 'utf8')
    assert.match(text, /await Promise\.all\(\[B\(x\), C\(x\), D\(x\)\]\)/)
    assert.doesNotMatch(text, /const b = await B\(x\)/)
    const again = await runCli(['check', file, '--fix'])
    assert.equal(again.code, 0)
    assert.match(again.stdout, /^nothing to fix$/m)
  })

  test('--graph prints the workflow\'s task graph as text, Mermaid and DOT', async () => {
    const text = await runCli(['check', fixture('sequential.ts'), '--graph', 'A'])
    assert.equal(text.code, 0, text.stderr)
    for (const call of ['B', 'C', 'D']) assert.match(text.stdout, new RegExp(`\\b${call}\\b`))
    const mermaid = await runCli(['check', fixture('sequential.ts'), '--graph', 'A', '--graph-format', 'mermaid'])
    assert.equal(mermaid.code, 0, mermaid.stderr)
    assert.match(mermaid.stdout, /^(flowchart|graph) /)
    assert.match(mermaid.stdout, /-->/)
    const dot = await runCli(['check', fixture('sequential.ts'), '--graph', 'A', '--graph-format', 'dot'])
    assert.equal(dot.code, 0, dot.stderr)
    assert.match(dot.stdout, /^digraph /)
    assert.match(dot.stdout, /->/)
    const json = await runCli(['check', fixture('sequential.ts'), '--graph', 'A', '--json'])
    assert.equal(JSON.parse(json.stdout).workflow, 'A')
  })

  test('a wrong command line exits 2 with a hint', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['check', fixture('clean.ts'), '--nope'], /Unknown option '--nope'/],
      [['check'], /expected 1 to \d+ argument/],
      [['check', fixture('missing.ts')], /cannot read .*missing\.ts: no such file/],
      [['check', FIXTURES], /it is a directory/],
      [['check', fixture('clean.ts'), '--format', 'xml'], /--format must be one of human, json, sarif/],
      [['check', fixture('clean.ts'), '--json', '--format', 'sarif'], /two formats/],
      [['check', fixture('clean.ts'), fixture('sequential.ts'), '--graph', 'A'], /one FILE, got 2/],
      [['check', fixture('clean.ts'), '--graph-format', 'dot'], /--graph-format needs --graph/],
      [['check', fixture('clean.ts'), '--graph', 'A', '--graph-format', 'png'], /--graph-format must be one of/],
      [['check', fixture('clean.ts'), '--graph', 'Nope'], /cannot draw workflow "Nope"/]
    ]
    for (const [args, message] of cases) {
      const r = await runCli(args)
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`)
      assert.match(r.stderr, message, args.join(' '))
      assert.match(r.stderr, /hint: /, args.join(' '))
    }
  })

  test(`takes ${CHECK_FILES_MAX} files, and one more is a usage error`, async () => {
    const io = (): { out: (t: string | Uint8Array) => void, err: (t: string) => void, isTTY: boolean, text: () => string } => {
      let text = ''
      return { out: t => { text += String(t) }, err: t => { text += t }, isTTY: false, text: () => text }
    }
    const atLimit = io()
    const files = Array.from({ length: CHECK_FILES_MAX }, () => fixture('clean.ts'))
    assert.equal(await main(['check', ...files, '--json'], {}, new AbortController().signal, atLimit), 0, atLimit.text().slice(0, 500))
    const past = io()
    assert.equal(await main(['check', ...files, fixture('clean.ts')], {}, new AbortController().signal, past), 2)
    assert.match(past.text(), new RegExp(`expected 1 to ${CHECK_FILES_MAX} argument\\(s\\), got ${CHECK_FILES_MAX + 1}`))
  })

  test(`a file of ${CHECK_FILE_BYTES_MAX} bytes is checked; one byte more is a usage error`, async () => {
    const line = '// a comment line, no workflow here\n'
    const text = line.repeat(Math.floor(CHECK_FILE_BYTES_MAX / line.length))
    const file = path.join(dir, 'big.ts')
    await writeFile(file, text.padEnd(CHECK_FILE_BYTES_MAX, ' '))
    const atLimit = await runCli(['check', file])
    assert.equal(atLimit.code, 0, atLimit.stderr)
    await writeFile(file, text.padEnd(CHECK_FILE_BYTES_MAX + 1, ' '))
    const past = await runCli(['check', file])
    assert.equal(past.code, 2)
    assert.match(past.stderr, new RegExp(`${CHECK_FILE_BYTES_MAX}`))
  })
})
