/**
 * The workflow bundler against fixture sources, and its bundles run in the real workflow engine,
 * answered by hand: what the code calls (fn ids, exports, arguments) and what it makes of the answers.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import {
  bundleFunctions, bundleWorkflow, createManifest, encodeManifest, manifestCid, CODE_BYTES_MAX, WORKFLOW_FUNCTION_MODULES_MAX
} from '../../src/functions/index.ts'
import type { DeployedFunctionModule } from '../../src/functions/index.ts'
import { createWorkflowEngine } from '../../src/sandbox/index.ts'
import { applyFixes, checkSource } from '../../src/check/index.ts'
import type { WorkflowEngine } from '../../src/sandbox/index.ts'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/workflows/src')
const fixture = (name: string): string => path.join(root, name)

/**
 * Deploy as `rhizome deploy` packages a module, without a peer: bundle, manifest, id. The id is
 * the one a peer would answer, so the stubs name real function ids.
 */
function localDeployer (): { deploy: (file: string) => Promise<DeployedFunctionModule>, calls: string[] } {
  const calls: string[] = []
  return {
    calls,
    async deploy (file) {
      calls.push(file)
      const bundle = await bundleFunctions(file)
      const manifest = encodeManifest(await createManifest({ name: path.basename(file), kind: 'js', code: bundle.code, exports: bundle.exports }))
      return { fnId: (await manifestCid(manifest)).toString(), exports: bundle.exports }
    }
  }
}

function open (engine: WorkflowEngine, code: Uint8Array, exportName: string, args: unknown[]): ReturnType<WorkflowEngine['openWorkflow']> {
  return engine.openWorkflow({ workflowId: 'bafyreigzfgfbbunqonmdpxcl3bo2yza3b46o6j5epzovhjkpf47vwl6p7i', code, exportName, args, seed: new Uint8Array([7]) })
}

describe('bundleWorkflow', () => {
  let engine: WorkflowEngine
  let scratch = ''
  before(async () => {
    engine = createWorkflowEngine()
    scratch = await mkdtemp(path.join(tmpdir(), 'rhizome-workflow-bundle-'))
  })
  after(async () => {
    engine.close()
    await rm(scratch, { recursive: true, force: true })
  })

  test('the seed example: A(5) makes three calls in one activation, to the deployed module, and 10, 6, 2 give 14', async () => {
    const deployer = localDeployer()
    const bundle = await bundleWorkflow(fixture('flow.ts'), { deployFunctionModule: deployer.deploy })
    assert.deepEqual(bundle.workflows, ['A'])
    assert.deepEqual(deployer.calls, [fixture('fns.ts')])
    assert.equal(bundle.functionModules.length, 1)
    const fns = bundle.functionModules[0]
    assert.equal(fns.path, fixture('fns.ts'))
    assert.deepEqual(fns.exports, ['B', 'C', 'D'])
    assert.equal(fns.fnId, (await deployer.deploy(fixture('fns.ts'))).fnId)
    // The only import left is the sandbox's virtual module; nothing of the SDK's client is in it.
    const text = new TextDecoder().decode(bundle.code)
    assert.deepEqual([...new Set([...text.matchAll(/\bfrom\s+"([^"]+)"/g)].map(m => m[1]))], ['rhizome:workflow'])
    assert.doesNotMatch(text, /RhizomeClient|fetch\(/)

    const run = await open(engine, bundle.code, 'A', [5])
    const first = await run.activate([])
    assert.equal(first.done, undefined)
    assert.deepEqual(first.commands.map(c => c.type === 'call' ? [c.seq, c.fn, c.export, c.args, c.ref] : c), [
      [0, fns.fnId, 'B', [5], false],
      [1, fns.fnId, 'C', [5], false],
      [2, fns.fnId, 'D', [5], false]
    ])
    const last = await run.activate([{ seq: 0, ok: true, value: 10 }, { seq: 1, ok: true, value: 6 }, { seq: 2, ok: true, value: 2 }])
    assert.deepEqual(last.commands, [])
    assert.ok(last.done?.ok === true)
    assert.equal(last.done.value, 14)
  })

  test('deterministic: the same sources give the same bytes wherever they sit', async () => {
    const a = await bundleWorkflow(fixture('flow.ts'), { deployFunctionModule: localDeployer().deploy })
    const elsewhere = path.join(scratch, 'copy', 'deeper')
    await mkdir(elsewhere, { recursive: true })
    await cp(root, elsewhere, { recursive: true })
    const b = await bundleWorkflow(path.join(elsewhere, 'flow.ts'), { deployFunctionModule: localDeployer().deploy })
    assert.deepEqual(b.code, a.code)
    assert.doesNotMatch(new TextDecoder().decode(a.code), new RegExp(root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
  })

  test('ref(f) and remote(f): the Ref travels to the next call as a CID link', async () => {
    const bundle = await bundleWorkflow(fixture('refs.ts'), { deployFunctionModule: localDeployer().deploy })
    assert.deepEqual(bundle.workflows, ['R'])
    const fnId = bundle.functionModules[0].fnId
    const run = await open(engine, bundle.code, 'R', [4])
    const first = await run.activate([])
    assert.equal(first.commands.length, 1)
    const call = first.commands[0]
    assert.ok(call.type === 'call')
    assert.deepEqual([call.fn, call.export, call.args, call.ref], [fnId, 'B', [4], true])
    const cid = CID.create(1, dagCbor.code, await sha256.digest(dagCbor.encode(8)))
    const second = await run.activate([{ seq: 0, ok: true, ref: cid.toString() }])
    assert.equal(second.commands.length, 1)
    const next = second.commands[0]
    assert.ok(next.type === 'call')
    assert.equal(next.export, 'C')
    assert.equal(CID.asCID(next.args[0])?.toString(), cid.toString())
    const last = await run.activate([{ seq: 1, ok: true, value: 9 }])
    assert.ok(last.done?.ok === true)
    assert.equal(last.done.value, 9)
  })

  test('a workflow in another file is bundled inline and called as a child run; fns.ts is deployed once', async () => {
    const deployer = localDeployer()
    const bundle = await bundleWorkflow(fixture('parent.ts'), { deployFunctionModule: deployer.deploy })
    assert.deepEqual(bundle.workflows, ['Child', 'Parent'])
    assert.deepEqual(deployer.calls, [fixture('fns.ts')])
    const parent = await open(engine, bundle.code, 'Parent', [3])
    const first = await parent.activate([])
    assert.deepEqual(first.commands.map(c => c.type === 'call' || c.type === 'child' ? [c.type, c.export, c.args] : [c.type]), [['child', 'Child', [3]]])
    // The child run of the same bundle: C(3) = 4, times 10.
    const child = await open(engine, bundle.code, 'Child', [3])
    const childCall = (await child.activate([])).commands[0]
    assert.ok(childCall.type === 'call')
    assert.equal(childCall.fn, bundle.functionModules[0].fnId)
    const childDone = (await child.activate([{ seq: 0, ok: true, value: 4 }])).done
    assert.ok(childDone?.ok === true)
    assert.equal(childDone.value, 40)
    const second = await parent.activate([{ seq: 0, ok: true, value: childDone.value }])
    assert.deepEqual(second.commands.map(c => c.type === 'call' || c.type === 'child' ? [c.type, c.export, c.args] : [c.type]), [['call', 'B', [3]]])
    const last = await parent.activate([{ seq: 1, ok: true, value: 6 }])
    assert.ok(last.done?.ok === true)
    assert.equal(last.done.value, 46)
  })

  test('a Node built-in in a workflow module is refused, naming it', async () => {
    const deployer = localDeployer()
    await assert.rejects(bundleWorkflow(fixture('bad/builtin.ts'), { deployFunctionModule: deployer.deploy }), (err: Error & { specifier?: string, hint?: string }) => {
      assert.equal(err.name, 'ForbiddenImportError')
      assert.equal(err.specifier, 'node:fs')
      assert.match(err.message, /builtin\.ts:2/)
      assert.match(err.hint ?? '', /function module/)
      return true
    })
    assert.deepEqual(deployer.calls, [])
  })

  test('an npm package in a workflow module is refused, naming it', async () => {
    await assert.rejects(bundleWorkflow(fixture('bad/package.ts'), { deployFunctionModule: localDeployer().deploy }), (err: Error & { specifier?: string }) => {
      assert.equal(err.name, 'ForbiddenImportError')
      assert.equal(err.specifier, 'multiformats/cid')
      assert.match(err.message, /package/)
      return true
    })
  })

  test('a URL import is refused', async () => {
    const file = path.join(scratch, 'url.ts')
    await writeFile(file, "import { workflow } from '@rhizome-net/rhizome'\nimport x from 'https://example.com/x.js'\nexport const A = workflow(async () => x)\n")
    await assert.rejects(bundleWorkflow(file, { deployFunctionModule: localDeployer().deploy }), { name: 'ForbiddenImportError', specifier: 'https://example.com/x.js' })
  })

  test('the SDK\'s client cannot be imported into a workflow: refused at bundle time, naming the import', async () => {
    await assert.rejects(bundleWorkflow(fixture('bad/sdk-client.ts'), { deployFunctionModule: localDeployer().deploy }), (err: Error & { specifier?: string, hint?: string }) => {
      assert.equal(err.name, 'ForbiddenImportError')
      assert.match(err.message, /"connect" cannot be used inside a workflow/)
      assert.match(err.hint ?? '', /continueAsNew, ref, remote, signal, sleep, workflow/)
      return true
    })
    // Reached through a namespace import too (esbuild only warns about that one).
    const file = path.join(scratch, 'namespace.ts')
    await writeFile(file, "import * as rz from '@rhizome-net/rhizome'\nexport const A = rz.workflow(async () => typeof rz.connect)\n")
    await assert.rejects(bundleWorkflow(file, { deployFunctionModule: localDeployer().deploy }), { name: 'ForbiddenImportError', message: /"connect" cannot be used/ })
  })

  test('bare `rhizome` is the SDK too', async () => {
    const dir = path.join(scratch, 'bare')
    await mkdir(dir, { recursive: true })
    await cp(fixture('fns.ts'), path.join(dir, 'fns.ts'))
    await writeFile(path.join(dir, 'flow.ts'), "import { workflow } from 'rhizome'\nimport { C } from './fns.ts'\nexport const A = workflow(async (x: number) => await C(x))\n")
    const bundle = await bundleWorkflow(path.join(dir, 'flow.ts'), { deployFunctionModule: localDeployer().deploy })
    assert.deepEqual(bundle.workflows, ['A'])
  })

  test('sleep and signal from the SDK become the sandbox\'s own: a sleep and a signal wait are recorded', async () => {
    const dir = path.join(scratch, 'timers')
    await mkdir(dir, { recursive: true })
    await cp(fixture('fns.ts'), path.join(dir, 'fns.ts'))
    await writeFile(path.join(dir, 'flow.ts'), [
      "import { workflow, sleep, signal } from '@rhizome-net/rhizome'",
      "import { C } from './fns.ts'",
      'export const A = workflow(async (x: number) => { await sleep(10); return await C(x + await signal<number>(\'add\')) })'
    ].join('\n'))
    const bundle = await bundleWorkflow(path.join(dir, 'flow.ts'), { deployFunctionModule: localDeployer().deploy })
    const run = await open(engine, bundle.code, 'A', [1])
    assert.deepEqual((await run.activate([])).commands, [{ type: 'sleep', seq: 0, ms: 10 }])
    assert.deepEqual((await run.activate([{ seq: 0, ok: true, value: null }])).commands, [{ type: 'signal', seq: 1, name: 'add' }])
    const call = (await run.activate([{ seq: 1, ok: true, value: 2 }])).commands[0]
    assert.ok(call.type === 'call')
    assert.deepEqual([call.export, call.args], ['C', [3]])
    run.close()
  })

  test('a name the function module does not export is a BundleError naming it', async () => {
    await assert.rejects(bundleWorkflow(fixture('bad/missing-export.ts'), { deployFunctionModule: localDeployer().deploy }), { name: 'BundleError', message: /no exported function "E"/ })
  })

  test('a module that exports no workflow is NoWorkflowsError', async () => {
    await assert.rejects(bundleWorkflow(fixture('bad/no-workflow.ts'), { deployFunctionModule: localDeployer().deploy }), { name: 'NoWorkflowsError' })
  })

  test('a function module that cannot be deployed fails the bundle with its own error', async () => {
    const dir = path.join(scratch, 'bad-fns')
    await mkdir(dir, { recursive: true })
    await writeFile(path.join(dir, 'fns.ts'), "import { readFileSync } from 'node:fs'\nexport async function F (p: string) { return readFileSync(p, 'utf8') }\n")
    await writeFile(path.join(dir, 'flow.ts'), "import { workflow } from '@rhizome-net/rhizome'\nimport { F } from './fns.ts'\nexport const A = workflow(async () => await F('x'))\n")
    await assert.rejects(bundleWorkflow(path.join(dir, 'flow.ts'), { deployFunctionModule: localDeployer().deploy }), { name: 'ForbiddenImportError', specifier: 'node:fs' })
  })

  test(`at most ${WORKFLOW_FUNCTION_MODULES_MAX} function modules: one more is refused before it is deployed`, async () => {
    const write = async (count: number): Promise<string> => {
      const dir = path.join(scratch, `many-${count}`)
      await mkdir(dir, { recursive: true })
      const lines = ["import { workflow } from '@rhizome-net/rhizome'"]
      for (let i = 0; i < count; i++) {
        await writeFile(path.join(dir, `m${i}.ts`), `export function f${i} (x: number): number { return x + ${i} }\n`)
        lines.push(`import { f${i} } from './m${i}.ts'`)
      }
      lines.push(`export const A = workflow(async (x: number) => (await Promise.all([${Array.from({ length: count }, (_, i) => `f${i}(x)`).join(', ')}])).length)`)
      await writeFile(path.join(dir, 'flow.ts'), lines.join('\n') + '\n')
      return path.join(dir, 'flow.ts')
    }
    // Deploying is not what this test is about: each module gets an id of its own path's hash.
    let deploys = 0
    const deployFunctionModule = async (file: string): Promise<DeployedFunctionModule> => {
      deploys++
      const fnId = CID.create(1, dagCbor.code, await sha256.digest(new TextEncoder().encode(file))).toString()
      return { fnId, exports: [path.basename(file, '.ts').replace('m', 'f')] }
    }
    const ok = await bundleWorkflow(await write(WORKFLOW_FUNCTION_MODULES_MAX), { deployFunctionModule })
    assert.equal(ok.functionModules.length, WORKFLOW_FUNCTION_MODULES_MAX)
    deploys = 0
    await assert.rejects(bundleWorkflow(await write(WORKFLOW_FUNCTION_MODULES_MAX + 1), { deployFunctionModule }), { name: 'InvalidInputError', message: /more than 64 function modules/ })
    assert.ok(deploys <= WORKFLOW_FUNCTION_MODULES_MAX)
  })

  test('a bundle one byte past bundleBytesMax is TooLargeError; the ceiling is the functions\' CODE_BYTES_MAX.js', async () => {
    const bundle = await bundleWorkflow(fixture('flow.ts'), { deployFunctionModule: localDeployer().deploy })
    await bundleWorkflow(fixture('flow.ts'), { deployFunctionModule: localDeployer().deploy, bundleBytesMax: bundle.code.length })
    await assert.rejects(bundleWorkflow(fixture('flow.ts'), { deployFunctionModule: localDeployer().deploy, bundleBytesMax: bundle.code.length - 1 }), { name: 'TooLargeError' })
    await assert.rejects(bundleWorkflow(fixture('flow.ts'), { deployFunctionModule: localDeployer().deploy, bundleBytesMax: CODE_BYTES_MAX.js + 1 }), { name: 'InvalidInputError' })
  })

  test('transformEntry rewrites the entry before bundling: the sequential seed, parallelized, calls B, C, D in one activation with the same result', async () => {
    const sequential = path.join(path.dirname(root), '../check-cli/sequential.ts')
    const seen: Array<[string, string]> = []
    const transformEntry = (text: string, file: string): string => {
      seen.push([file, text])
      const rewrites = checkSource(file, text).findings.filter(f => f.kind === 'lost-parallelism')
      return applyFixes(text, rewrites)
    }
    const plain = await bundleWorkflow(sequential, { deployFunctionModule: localDeployer().deploy })
    const rewritten = await bundleWorkflow(sequential, { deployFunctionModule: localDeployer().deploy, transformEntry })
    // Called once, for the entry only (not for fns.ts), with the file's own text.
    assert.deepEqual(seen.map(([file]) => file), [sequential])
    assert.match(seen[0][1], /const b = await B\(x\)/)
    assert.doesNotMatch(new TextDecoder().decode(plain.code), /Promise\.all/)
    assert.match(new TextDecoder().decode(rewritten.code), /Promise\.all/)
    const answers = [{ seq: 0, ok: true, value: 6 }, { seq: 1, ok: true, value: 10 }, { seq: 2, ok: true, value: 2 }] as const
    const calls = (commands: Array<{ type: string }>): unknown[] => commands.map(c => c.type === 'call' ? [(c as any).export, (c as any).args] : c)
    // The original waits for B before it calls C: three activations of one call each.
    const a = await open(engine, plain.code, 'A', [5])
    const a1 = await a.activate([])
    const a2 = await a.activate([answers[0]])
    const a3 = await a.activate([answers[1]])
    const aDone = await a.activate([answers[2]])
    assert.deepEqual([calls(a1.commands), calls(a2.commands), calls(a3.commands)], [[['B', [5]]], [['C', [5]]], [['D', [5]]]])
    // The rewrite: the same three tasks in the first activation, and the same result.
    const b = await open(engine, rewritten.code, 'A', [5])
    const b1 = await b.activate([])
    assert.deepEqual(calls(b1.commands), [['B', [5]], ['C', [5]], ['D', [5]]])
    const bDone = await b.activate([...answers])
    assert.ok(aDone.done?.ok === true && bDone.done?.ok === true)
    assert.equal(bDone.done.value, aDone.done.value)
    assert.equal(aDone.done.value, 14)
  })

  test('a missing entry is refused with a hint', async () => {
    await assert.rejects(bundleWorkflow(path.join(scratch, 'nope.ts'), { deployFunctionModule: localDeployer().deploy }), { name: 'InvalidInputError', message: /no such file/ })
  })
})
