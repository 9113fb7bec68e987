import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { bundleFunctions, codeCid } from '../../src/functions/index.ts'
import { SOURCE_FILE_BYTES_MAX } from '../../src/functions/bundle.ts'
import { execFileSync } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import { createSandbox, DEFAULT_LIMITS } from '../../src/sandbox/index.ts'

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/functions')
const fixture = (name: string): string => path.join(fixtures, name)

describe('bundleFunctions', () => {
  let scratch = ''
  before(async () => { scratch = await mkdtemp(path.join(tmpdir(), 'rhizome-bundle-')) })
  after(async () => { await rm(scratch, { recursive: true, force: true }) })

  const scratchFile = async (name: string, source: string): Promise<string> => {
    const file = path.join(scratch, name)
    await writeFile(file, source)
    return file
  }

  test('bundles a module and lists its exported functions, not its constants', async () => {
    const bundle = await bundleFunctions(fixture('good/fns.ts'))
    assert.deepEqual(bundle.exports, ['B', 'C', 'D'])
    const source = new TextDecoder().decode(bundle.code)
    assert.match(source, /export \{/)
    assert.doesNotMatch(source, /\bimport\b/)
  })

  test('the same source gives byte-identical bundles (the same CID), wherever it sits on disk', async () => {
    const a = await bundleFunctions(fixture('good/multi/main.ts'))
    const b = await bundleFunctions(fixture('good/multi/main.ts'))
    assert.deepEqual(a.code, b.code)
    const moved = path.join(scratch, 'moved')
    await cp(fixture('good/multi'), moved, { recursive: true })
    const c = await bundleFunctions(path.join(moved, 'main.ts'))
    assert.equal((await codeCid(c.code)).toString(), (await codeCid(a.code)).toString())
  })

  test('relative imports are bundled into one module that runs in the sandbox', async () => {
    const bundle = await bundleFunctions(fixture('good/multi/main.ts'))
    assert.deepEqual(bundle.exports, ['summarize'])
    const sandbox = createSandbox()
    try {
      const result = await sandbox.run({ functionId: 'bundle-multi', kind: 'js', code: bundle.code, exportName: 'summarize', args: [[1, 2, 3]], seed: new Uint8Array(1), limits: DEFAULT_LIMITS })
      assert.equal(result.value, 'mean=2')
    } finally {
      await sandbox.close()
    }
  })

  test('a pure npm package is bundled in', async () => {
    const bundle = await bundleFunctions(fixture('good/uses-package.ts'))
    assert.deepEqual(bundle.exports, ['version'])
    assert.doesNotMatch(new TextDecoder().decode(bundle.code), /from ["']multiformats/)
  })

  test('a Node built-in imported by an imported file is refused, naming the import and the file', async () => {
    await assert.rejects(bundleFunctions(fixture('bad/builtin.ts')), (err: Error & { specifier: string, file: string }) => {
      assert.equal(err.name, 'ForbiddenImportError')
      assert.equal(err.specifier, 'node:fs')
      assert.match(err.file, /^lib\/reads-file\.ts:1:\d+$/)
      assert.match(err.message, /node:fs/)
      return true
    })
  })

  test('a built-in without the node: prefix is refused', async () => {
    await assert.rejects(bundleFunctions(fixture('bad/bare-builtin.ts')), { name: 'ForbiddenImportError', specifier: 'path' })
  })

  test('URL imports are refused', async () => {
    const file = await scratchFile('url.ts', 'import { x } from "https://example.com/x.js"\nexport function f () { return x }\n')
    await assert.rejects(bundleFunctions(file), { name: 'ForbiddenImportError', specifier: 'https://example.com/x.js' })
  })

  test('a syntax error is reported with file:line:column and esbuild\'s message', async () => {
    const file = await scratchFile('syntax.ts', 'export function f (x: number) {\n  return x +* 2\n}\n')
    await assert.rejects(bundleFunctions(file), (err: Error & { file: string, line: number, column: number }) => {
      assert.equal(err.name, 'BundleError')
      assert.equal(err.file, 'syntax.ts')
      assert.equal(err.line, 2)
      assert.equal(err.column, 13)
      assert.match(err.message, /^syntax\.ts:2:13: Unexpected "\*"/)
      return true
    })
  })

  test('an import that does not resolve is a BundleError with its position', async () => {
    const file = await scratchFile('missing.ts', 'import { x } from "./nowhere.ts"\nexport function f () { return x }\n')
    await assert.rejects(bundleFunctions(file), { name: 'BundleError', line: 1 })
  })

  test('a module with no exported function is refused with NoExportsError', async () => {
    await assert.rejects(bundleFunctions(fixture('bad/no-exports.ts')), { name: 'NoExportsError' })
  })

  test('asking for an export that is not an exported function is refused with ExportNotFoundError', async () => {
    assert.deepEqual((await bundleFunctions(fixture('good/fns.ts'), { exports: ['C', 'B'] })).exports, ['B', 'C'])
    await assert.rejects(bundleFunctions(fixture('good/fns.ts'), { exports: ['B', 'E'] }), { name: 'ExportNotFoundError', exportName: 'E' })
    await assert.rejects(bundleFunctions(fixture('good/fns.ts'), { exports: ['VERSION'] }), { name: 'ExportNotFoundError' })
  })

  test('a bundle at bundleBytesMax passes; one byte over is refused with TooLargeError', async () => {
    const { code } = await bundleFunctions(fixture('good/fns.ts'))
    await bundleFunctions(fixture('good/fns.ts'), { bundleBytesMax: code.length })
    await assert.rejects(bundleFunctions(fixture('good/fns.ts'), { bundleBytesMax: code.length - 1 }), { name: 'TooLargeError', bytes: code.length, bytesMax: code.length - 1 })
  })

  test('bundleBytesMax cannot exceed what the sandbox accepts', async () => {
    await assert.rejects(bundleFunctions(fixture('good/fns.ts'), { bundleBytesMax: 4 * 1024 * 1024 + 1 }), { name: 'InvalidInputError' })
  })

  test('a module that throws or reads the clock while loading is refused at deploy', async () => {
    await assert.rejects(bundleFunctions(fixture('bad/throws-at-load.ts')), { name: 'FunctionThrewError', thrownName: 'Error' })
    await assert.rejects(bundleFunctions(fixture('bad/reads-clock-at-load.ts')), { name: 'NondeterminismError' })
  })

  describe('source files that are not regular files, or too large', () => {
    let dir: string
    before(async () => { dir = await mkdtemp(path.join(tmpdir(), 'rhizome-bundle-src-')) })
    after(async () => { await rm(dir, { recursive: true, force: true }) })

    test('an entry that is a device, a FIFO or a directory is refused without reading it', async () => {
      execFileSync('mkfifo', [path.join(dir, 'pipe.ts')])
      await mkdir(path.join(dir, 'folder.ts'))
      await assert.rejects(bundleFunctions('/dev/zero'), { name: 'InvalidInputError', message: /\/dev\/zero is not a regular file/ })
      await assert.rejects(bundleFunctions(path.join(dir, 'pipe.ts')), { name: 'InvalidInputError', message: /named pipe \(FIFO\)/ })
      await assert.rejects(bundleFunctions(path.join(dir, 'folder.ts')), { name: 'InvalidInputError', message: /is a directory/ })
    })

    test('an imported FIFO is refused as a BundleError naming it', async () => {
      execFileSync('mkfifo', [path.join(dir, 'imported.ts')])
      await writeFile(path.join(dir, 'main.ts'), "import { x } from './imported.ts'\nexport function f () { return x }\n")
      await assert.rejects(bundleFunctions(path.join(dir, 'main.ts')), { name: 'BundleError', message: /imported\.ts is a named pipe/ })
    })

    test(`a source file of SOURCE_FILE_BYTES_MAX (${SOURCE_FILE_BYTES_MAX}) bytes is read; one byte more is refused with TooLargeError`, async () => {
      const body = 'export function f () { return 1 }\n'
      await writeFile(path.join(dir, 'at.ts'), body + ' '.repeat(SOURCE_FILE_BYTES_MAX - body.length))
      assert.deepEqual((await bundleFunctions(path.join(dir, 'at.ts'))).exports, ['f'])
      await writeFile(path.join(dir, 'over.ts'), body + ' '.repeat(SOURCE_FILE_BYTES_MAX - body.length + 1))
      await assert.rejects(bundleFunctions(path.join(dir, 'over.ts')), { name: 'TooLargeError', message: new RegExp(`more than the limit of ${SOURCE_FILE_BYTES_MAX} bytes`) })
    })

    test('exports whose names are not identifiers are not listed: no task could name them', async () => {
      await writeFile(path.join(dir, 'names.ts'), 'function f () { return 1 }\nfunction g () { return 2 }\nexport { f, g as "not-an-id" }\n')
      assert.deepEqual((await bundleFunctions(path.join(dir, 'names.ts'))).exports, ['f'])
    })
  })
})
