/**
 * The dashboard every peer serves on its API port (`GET /dashboard`): a page, its script and its
 * style sheet, built from src/dashboard/ with esbuild on the first request and kept in memory.
 * Nothing is fetched from a CDN: a peer may have no internet, and a page that loads code from a
 * third party hands that party the API.
 *
 * Who may see it. The page and its code hold no data and are served without the token; every
 * API request the page makes needs it, as `Authorization: Bearer` like any client's. The page
 * never sees the token's file: `rhizome dashboard` prints http://127.0.0.1:PORT/dashboard#token=…
 * (the fragment never leaves the browser), or with --open hands the browser …#code=…, a
 * single-use code (SignInCodes) the page trades for the token. The page keeps the token in
 * sessionStorage, which is per origin (port included) and per tab, and which the browser sends
 * nowhere on its own. There is no cookie: browsers keep cookies per host, not per port, so a
 * cookie of 127.0.0.1:PORT would go to every other port of 127.0.0.1 too, where any local
 * process could collect it. The checks are in http-api.ts (RequestGuard).
 */
import { createHash, randomBytes } from 'node:crypto'
import { access } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { RhizomeError } from '../model/errors.ts'
import type { Logger } from '../model/log.ts'

/**
 * Every answer of the API carries these, the dashboard's pages above all: only this origin's own
 * script, style and connections; never framed (clickjacking); no guessing of content types.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer'
}

/** The dashboard's files, by the last segment of their path under /dashboard/. */
export interface DashboardAsset {
  contentType: string
  body: Buffer
}

export class DashboardBuildError extends RhizomeError {
  constructor (cause: unknown) {
    super('ERR_DASHBOARD_BUILD', 'the dashboard\'s code could not be built', {
      cause,
      hint: 'this is a broken install of Rhizome: reinstall it; the peer\'s log has esbuild\'s message'
    })
    this.name = 'DashboardBuildError'
  }
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Rhizome</title>
<link rel="icon" href="/dashboard/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/dashboard/app.css">
</head>
<body>
<div id="app"><p class="loading">Loading the dashboard…</p></div>
<noscript>The Rhizome dashboard needs JavaScript.</noscript>
<script type="module" src="/dashboard/app.js"></script>
</body>
</html>
`

const ICON = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#13202b"/>' +
  '<g stroke="#4fd1a5" stroke-width="2.5" fill="none"><path d="M16 6v8M16 14l-7 8M16 14l7 8"/></g>' +
  '<g fill="#4fd1a5"><circle cx="16" cy="6" r="3"/><circle cx="9" cy="23" r="3"/><circle cx="23" cy="23" r="3"/></g></svg>'

const STATIC: ReadonlyMap<string, DashboardAsset> = new Map([
  ['index.html', { contentType: 'text/html; charset=utf-8', body: Buffer.from(PAGE) }],
  ['icon.svg', { contentType: 'image/svg+xml', body: Buffer.from(ICON) }]
])

/** The page, and the script and style sheet built on first use (one build, shared by all requests). */
export class DashboardAssets {
  private built: Promise<Map<string, DashboardAsset>> | undefined
  private readonly log: Logger

  constructor (log: Logger) {
    this.log = log
  }

  /** The asset named `name` ('index.html', 'app.js', 'app.css', 'icon.svg'), or undefined. */
  async get (name: string): Promise<DashboardAsset | undefined> {
    const fixed = STATIC.get(name)
    if (fixed !== undefined) return fixed
    if (name !== 'app.js' && name !== 'app.css') return undefined
    this.built ??= build().catch((err: unknown) => {
      this.built = undefined // a later request tries again (and logs again)
      this.log.error('the dashboard could not be built', { error: String((err as Error)?.stack ?? err) })
      throw new DashboardBuildError(err)
    })
    return (await this.built).get(name)
  }
}

/** Source (src/dashboard/*.ts) when running from a checkout, compiled JavaScript from a package. */
async function entryPoint (name: string): Promise<string> {
  const ts = fileURLToPath(new URL(`../dashboard/${name}.ts`, import.meta.url))
  try {
    await access(ts)
    return ts
  } catch {
    return fileURLToPath(new URL(`../dashboard/${name}.js`, import.meta.url))
  }
}

async function build (): Promise<Map<string, DashboardAsset>> {
  // esbuild loads a native binary: only a peer whose dashboard is opened pays for it.
  const esbuild = await import('esbuild')
  const main = await entryPoint('main')
  const css = fileURLToPath(new URL('../dashboard/style.css', import.meta.url))
  const result = await esbuild.build({
    entryPoints: { app: main, 'app-style': css },
    bundle: true,
    write: false,
    outdir: '/dashboard',
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    logLevel: 'silent'
  })
  const assets = new Map<string, DashboardAsset>()
  for (const file of result.outputFiles) {
    if (file.path.endsWith('/app.js')) assets.set('app.js', { contentType: 'text/javascript; charset=utf-8', body: Buffer.from(file.contents) })
    else if (file.path.endsWith('/app-style.css')) assets.set('app.css', { contentType: 'text/css; charset=utf-8', body: Buffer.from(file.contents) })
  }
  if (assets.size !== 2) throw new Error(`esbuild wrote ${result.outputFiles.map(f => f.path).join(', ')}, not app.js and app-style.css`)
  return assets
}

/**
 * A sign-in code lives this long: `rhizome dashboard --open` asks for it and hands the browser
 * the address at once, so it is traded within seconds; a minute covers a slow browser start, and
 * a code lying about in a process list or a shell history is dead soon after.
 */
export const SIGN_IN_CODE_TTL_MS = 60_000

/**
 * Codes outstanding at once. Only a bearer of the token can ask for one, so this bounds memory,
 * not an attacker: a person opens a handful of dashboards a minute, not dozens.
 */
export const SIGN_IN_CODES_MAX = 32

/** A code was asked for while SIGN_IN_CODES_MAX others were still unused and unexpired. */
export class TooManySignInCodesError extends RhizomeError {
  constructor () {
    super('ERR_TOO_MANY_SIGN_IN_CODES', `${SIGN_IN_CODES_MAX} dashboard sign-in codes are outstanding; no more are handed out until one is used or expires`, {
      retryable: true,
      hint: `wait ${SIGN_IN_CODE_TTL_MS / 1000} s, or open the address \`rhizome dashboard\` prints instead of using --open`
    })
    this.name = 'TooManySignInCodesError'
  }
}

/** A sign-in code that was never handed out, was used already, or expired. */
export class SignInCodeError extends RhizomeError {
  constructor () {
    super('ERR_SIGN_IN_CODE', 'this dashboard sign-in code is unknown, used already, or expired', {
      hint: `a code works once, within ${SIGN_IN_CODE_TTL_MS / 1000} s: run \`rhizome dashboard --open\` again`
    })
    this.name = 'SignInCodeError'
  }
}

/**
 * Single-use codes the dashboard trades for the API token. `rhizome dashboard --open` passes
 * the dashboard's address to the platform's opener as a command-line argument, which every
 * local user can read (/proc/PID/cmdline): the address carries a code rather than the token,
 * and by the time anyone reads it the browser has used it, or it has expired. Codes are kept
 * by their digest, so the table holds nothing a memory dump could replay.
 */
export class SignInCodes {
  private readonly expiresAtMs = new Map<string, number>()
  private readonly now: () => number

  constructor (now: () => number = Date.now) {
    this.now = now
  }

  /** A new code, valid for SIGN_IN_CODE_TTL_MS and one use. */
  issue (): { code: string, expiresInMs: number } {
    this.sweep()
    if (this.expiresAtMs.size >= SIGN_IN_CODES_MAX) throw new TooManySignInCodesError()
    const code = randomBytes(32).toString('base64url')
    this.expiresAtMs.set(codeDigest(code), this.now() + SIGN_IN_CODE_TTL_MS)
    return { code, expiresInMs: SIGN_IN_CODE_TTL_MS }
  }

  /** Use `code` up: throws SignInCodeError unless it was handed out, unused, and has not expired. */
  redeem (code: string): void {
    this.sweep()
    const key = codeDigest(code)
    if (!this.expiresAtMs.has(key)) throw new SignInCodeError()
    this.expiresAtMs.delete(key)
  }

  /** Codes outstanding (unused, unexpired). */
  get size (): number {
    this.sweep()
    return this.expiresAtMs.size
  }

  private sweep (): void {
    const now = this.now()
    for (const [key, expiresAtMs] of this.expiresAtMs) if (now >= expiresAtMs) this.expiresAtMs.delete(key)
  }
}

function codeDigest (code: string): string {
  return createHash('sha256').update(code).digest('base64url')
}
