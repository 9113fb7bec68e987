/**
 * `npm test` runs this first (the `pretest` script): the operator tests need a real Prometheus
 * and a real Chromium, which npm cannot install. On a machine that lacks them, this installs
 * Debian's `prometheus` and `chromium` packages with apt-get (as root), printing what it does.
 * Where it cannot (not root, no apt-get, no package archive), it says so and what to run; the
 * tests that need them then fail with the same advice, never silently pass.
 *
 * `findSystemBinary(name)` is how tests find them.
 */
import { spawnSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

/** Debian package and the binary it installs. */
export const SYSTEM_PACKAGES: ReadonlyArray<{ package: string, binaries: string[] }> = [
  { package: 'prometheus', binaries: ['prometheus'] },
  { package: 'chromium', binaries: ['chromium', 'chromium-browser'] }
]

/** apt-get may take minutes on a slow mirror; past this it is not going to finish. */
const APT_TIMEOUT_MS = 15 * 60_000

/** The full path of the first of `names` on PATH (or in /usr/bin, /usr/sbin), or undefined. */
export function findSystemBinary (...names: string[]): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/sbin', '/usr/local/bin']
  for (const name of names) {
    for (const dir of dirs) {
      if (dir === '') continue
      const path = join(dir, name)
      try {
        accessSync(path, constants.X_OK)
        return path
      } catch {}
    }
  }
  return undefined
}

/** The packages whose binaries are missing. */
export function missingPackages (): string[] {
  return SYSTEM_PACKAGES.filter(p => findSystemBinary(...p.binaries) === undefined).map(p => p.package)
}

function apt (args: string[]): boolean {
  const result = spawnSync('apt-get', args, { stdio: ['ignore', 'inherit', 'inherit'], timeout: APT_TIMEOUT_MS, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
  return result.status === 0
}

/** Installs what is missing; returns the packages still missing afterwards. */
export function ensureSystemPackages (log: (line: string) => void = (line) => { process.stderr.write(line + '\n') }): string[] {
  const missing = missingPackages()
  if (missing.length === 0) return []
  const how = `apt-get update && apt-get install -y ${missing.join(' ')}`
  if (process.getuid?.() !== 0 || findSystemBinary('apt-get') === undefined) {
    log(`system packages missing: ${missing.join(', ')}; the operator tests need them. Install them with: ${how}`)
    return missing
  }
  log(`installing system packages the operator tests need: ${missing.join(', ')} (apt-get, may take a few minutes)`)
  if (!apt(['update', '-qq']) || !apt(['install', '-y', '-qq', '--no-install-recommends', ...missing])) {
    log(`apt-get could not install ${missing.join(', ')}; run: ${how}`)
  }
  const still = missingPackages()
  if (still.length === 0) log('system packages installed')
  return still
}

if (import.meta.main) ensureSystemPackages()
