/**
 * The dashboard every peer serves on its API port (`GET /dashboard`): a page, its script and its
 * style sheet, built from src/dashboard/ with esbuild on the first request and kept in memory.
 * Nothing is fetched from a CDN: a peer may have no internet, and a page that loads code from a
 * third party hands that party the API.
 *
 * Who may see it. The page and its code hold no data and are served without the token; every
 * API request the page makes needs it. The page never sees the token's file: `rhizome dashboard`
 * prints http://127.0.0.1:PORT/dashboard#token=…, the fragment never leaves the browser, and the
 * page trades it once (POST /v1/dashboard/session, `Authorization: Bearer`) for an HttpOnly,
 * SameSite=Strict session cookie, then drops it from the address bar. The API accepts that
 * cookie only on requests the browser labels same-origin (`Sec-Fetch-Site`), since cookies are
 * not kept apart by port: a page on another port of 127.0.0.1 is "same-site" and its requests
 * would carry the cookie too. The checks are in http-api.ts (RequestGuard).
 */
import { randomBytes } from 'node:crypto'
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
 * The dashboard's session: one random value per API server, so a restart of the peer ends every
 * session. The cookie's name carries the port, since browsers keep cookies per host name, not
 * per port: two peers on one machine must not overwrite each other's.
 */
export class DashboardSession {
  readonly cookieName: string
  readonly value: string

  constructor (port: number) {
    this.cookieName = `rhizome-session-${port}`
    this.value = randomBytes(32).toString('base64url')
  }

  /** The Set-Cookie header: HttpOnly (no script reads it), SameSite=Strict, ends with the browser session. */
  setCookie (): string {
    return `${this.cookieName}=${this.value}; Path=/; HttpOnly; SameSite=Strict`
  }

  /** This session's value from a Cookie header, if the header has one. */
  valueIn (cookieHeader: string | undefined): string | undefined {
    if (cookieHeader === undefined) return undefined
    for (const part of cookieHeader.split(';')) {
      const eq = part.indexOf('=')
      if (eq !== -1 && part.slice(0, eq).trim() === this.cookieName) return part.slice(eq + 1).trim()
    }
    return undefined
  }
}
