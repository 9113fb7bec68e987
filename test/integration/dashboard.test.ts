/**
 * The dashboard in a real browser (headless Chromium through playwright-core) against three
 * real peers: the page signs in with the address `rhizome dashboard` prints (the token) or the
 * one `--open` opens (a single-use code), keeps no cookie, shows every peer,
 * and draws a 200-task run's DAG as it fills in; a page on another origin can neither read the
 * API nor frame the dashboard. Screenshots go to test-artifacts/dashboard/.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:http'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { chromium } from 'playwright-core'
import { findSystemBinary } from '../../scripts/system-deps.ts'
import { createManifest, encodeManifest } from '../../src/functions/index.ts'
import { TestNetwork, runCli, waitFor } from '../helpers/peers.ts'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import type { Server } from 'node:http'
import type { TestPeer } from '../helpers/peers.ts'
import type { RunReport } from '../../src/api/types.ts'

const FNS = fileURLToPath(new URL('../fixtures/runs/fns.ts', import.meta.url))
const FLOW = fileURLToPath(new URL('../fixtures/dashboard/flow.template.js', import.meta.url))
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/dashboard/', import.meta.url))
/** 10 lanes × 20 dependent steps, each task burning ~40 ms: long enough to watch it fill in. */
const LANES = 10
const STEPS = 20
const TASK_MS = 40

describe('the dashboard in a browser', { timeout: 300_000 }, () => {
  let net: TestNetwork
  let driver: TestPeer
  let workflow: string
  let browser: Browser
  let context: BrowserContext
  let foreign: Server | undefined

  before(async () => {
    const executablePath = findSystemBinary('chromium', 'chromium-browser')
    assert.ok(executablePath !== undefined, 'Chromium is missing: the dashboard tests need it. Run `node scripts/system-deps.ts` as root (it runs apt-get install chromium), or install Chromium yourself')
    await mkdir(ARTIFACTS, { recursive: true })
    net = await TestNetwork.create()
    driver = await net.addPeer(['--slots', '2'])
    await Promise.all([1, 2].map(async () => await net.addPeer(['--bootstrap', driver.tcpAddr, '--slots', '2'])))
    await waitFor('all peers to see each other', async () => {
      for (const p of net.peers) if ((await p.peers()).filter(x => x.state === 'alive').length < 2) return false
      return true
    }, 60_000, 200)
    workflow = await deployFlow(driver)
    browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] })
    context = await browser.newContext({ viewport: { width: 1480, height: 1100 }, deviceScaleFactor: 1 })
  })

  after(async () => {
    await browser?.close()
    await new Promise<void>(resolve => { if (foreign === undefined) resolve(); else { foreign.closeAllConnections(); foreign.close(() => resolve()) } })
    await net?.close()
  })

  test('the API takes only the bearer token, never a cookie; a sign-in code works once', async () => {
    const url = driver.apiUrl
    const page = await fetch(`${url}/dashboard`)
    assert.equal(page.status, 200)
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/)
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'.*frame-ancestors 'none'/)
    assert.equal(page.headers.get('x-frame-options'), 'DENY')
    assert.equal((await fetch(`${url}/dashboard/app.js`)).status, 200)
    assert.equal((await fetch(`${url}/dashboard/app.css`)).status, 200)
    assert.equal((await fetch(`${url}/dashboard/nothing.js`)).status, 404)
    // The data is not public: nothing, or only a cookie (what the API once took), gets 401.
    const port = new URL(url).port
    const refused: Array<Record<string, string>> = [{}, { 'sec-fetch-site': 'same-origin' }, { 'sec-fetch-site': 'same-origin', cookie: `rhizome-session-${port}=anything` }, { cookie: `rhizome-session-${port}=anything` }]
    for (const headers of refused) {
      const res = await fetch(`${url}/v1/status`, { headers })
      assert.equal(res.status, 401, JSON.stringify(headers))
      assert.equal((await res.json() as { error: { code: string } }).error.code, 'ERR_UNAUTHORIZED')
    }
    assert.equal((await fetch(`${url}/v1/dashboard/session`, { method: 'POST', headers: driver.authorized() })).status, 404, 'no session route')

    // Codes: only a bearer of the token gets one; it buys the token once.
    assert.equal((await fetch(`${url}/v1/dashboard/codes`, { method: 'POST', headers: { 'sec-fetch-site': 'same-origin' } })).status, 401)
    const issued = await fetch(`${url}/v1/dashboard/codes`, { method: 'POST', headers: driver.authorized() })
    assert.equal(issued.status, 200)
    assert.equal(issued.headers.get('set-cookie'), null)
    const { code, expiresInMs } = await issued.json() as { code: string, expiresInMs: number }
    assert.equal(expiresInMs, 60_000)
    const trade = async (value: unknown, headers: Record<string, string> = {}): Promise<Response> =>
      await fetch(`${url}/dashboard/sign-in`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ code: value }) })
    const foreignTrade = await trade(code, { origin: 'http://127.0.0.1:1' })
    assert.equal(foreignTrade.status, 403, 'a foreign page cannot trade a code')
    const first = await trade(code, { 'sec-fetch-site': 'same-origin' })
    assert.equal(first.status, 200)
    assert.equal(first.headers.get('set-cookie'), null)
    assert.deepEqual(await first.json(), { token: driver.apiToken })
    const second = await trade(code)
    assert.equal(second.status, 401, 'a code works once')
    assert.equal((await second.json() as { error: { code: string } }).error.code, 'ERR_SIGN_IN_CODE')
    assert.equal((await trade('made-up')).status, 401)
    assert.equal((await trade(7)).status, 400)

    for (const site of ['same-site', 'cross-site']) {
      const res = await fetch(`${url}/v1/status`, { headers: { ...driver.authorized(), 'sec-fetch-site': site } })
      assert.equal(res.status, 403, site)
      assert.equal((await res.json() as { error: { code: string } }).error.code, 'ERR_FORBIDDEN_ORIGIN')
    }
    const framed = await fetch(`${url}/dashboard`, { headers: { 'sec-fetch-site': 'cross-site', 'sec-fetch-dest': 'iframe' } })
    assert.equal(framed.status, 403)
    const foreignOrigin = await fetch(`${url}/v1/status`, { headers: { ...driver.authorized(), origin: 'http://127.0.0.1:1' } })
    assert.equal(foreignOrigin.status, 403)
    assert.equal(foreignOrigin.headers.get('access-control-allow-origin'), null)
    // The CLI's way: a bearer token, no browser headers.
    assert.equal((await fetch(`${url}/v1/status`, { headers: driver.authorized() })).status, 200)
    const printed = await runCli(['dashboard', '--data-dir', driver.dataDir])
    assert.equal(printed.code, 0, printed.stderr)
    assert.equal(printed.stdout.trim(), `${url}/dashboard#token=${encodeURIComponent(driver.apiToken)}`)
    // --open hands the opener (whose command line every local user can read) a code, not the token.
    const opened = await openWithCli(driver)
    assert.match(opened, new RegExp(`^${url}/dashboard#code=[A-Za-z0-9_-]{43}$`))
    assert.ok(!opened.includes(driver.apiToken) && !opened.includes(encodeURIComponent(driver.apiToken)), 'the opened address carries no token')
  })

  test('the page shows every peer, and a 200-task run\'s DAG fills in live, its tasks turning done', async () => {
    const page = await context.newPage()
    const problems = watchProblems(page)
    const printed = await runCli(['dashboard', '--data-dir', driver.dataDir, '--json'])
    await page.goto((JSON.parse(printed.stdout) as { url: string }).url)
    await waitFor('the network graph to show all three peers alive', async () =>
      await page.locator('[data-panel=network] [data-peer-id][data-state=alive]').count() === 3, 30_000, 100)
    assert.equal(await page.evaluate(() => location.hash), '', 'the token is dropped from the address bar')
    assert.equal(await page.evaluate(() => document.cookie), '')
    assert.deepEqual(await context.cookies(), [], 'no cookie: another port of 127.0.0.1 would get it too')
    await page.locator('[data-panel=runs] .notice-empty').waitFor({ timeout: 10_000 })
    await page.screenshot({ path: `${ARTIFACTS}empty.png` })

    const { runId } = await driver.api<{ runId: string }>('/v1/runs', { method: 'POST', body: JSON.stringify({ workflow, export: 'lanes', args: [LANES, STEPS, TASK_MS] }) })
    const seen = await observeRun(page, runId, LANES * STEPS)
    const growing = seen.counts.filter(n => n > 0 && n < LANES * STEPS)
    assert.ok(new Set(growing).size >= 3, `the DAG grew in steps while the run ran: counts seen ${JSON.stringify(seen.counts)}`)
    for (let i = 1; i < seen.counts.length; i++) assert.ok(seen.counts[i] >= seen.counts[i - 1], 'tasks never disappear')
    assert.ok(seen.turnedDone, 'a task seen queued or running was later seen done')
    await page.locator('[data-run-status=finished]').waitFor({ timeout: 30_000 })
    const path = (await driver.api<RunReport>(`/v1/runs/${runId}`)).criticalPath
    assert.ok(path !== undefined && path.taskIds.length >= 1)
    await waitFor('the critical path to be highlighted', async () => {
      const marked = await page.locator('.dag [data-task-id].critical').evaluateAll(els => els.map(el => el.getAttribute('data-task-id')))
      return marked.length === path.taskIds.length && path.taskIds.every(id => marked.includes(id))
    }, 15_000, 100)
    assert.equal(await page.locator('.dag [data-task-id][data-state=done]').count(), LANES * STEPS)
    assert.ok(await page.locator('.dag .edge').count() >= LANES * (STEPS - 1), 'each step is drawn after the one it depended on')
    assert.ok(await page.locator('.gantt .bar').count() >= LANES * STEPS)
    await page.screenshot({ path: `${ARTIFACTS}run-done.png`, fullPage: true })

    const other = net.peers[1].peerId
    await page.locator(`[data-panel=network] [data-peer-id="${other}"]`).click()
    await page.locator(`[data-panel=peer] table[data-peer-id="${other}"]`).waitFor({ timeout: 5000 })
    await page.screenshot({ path: `${ARTIFACTS}peer-details.png` })
    assert.deepEqual(problems, [], 'no console errors, failed requests or error answers')
    await page.close()
  })

  test('without the token the page says how to open it; peers that join and leave show up live', async () => {
    const stranger = await browser.newPage()
    await stranger.goto(`${driver.apiUrl}/dashboard`)
    await stranger.locator('.notice-error').waitFor({ timeout: 15_000 })
    assert.match(await stranger.locator('.notice-error').textContent() ?? '', /rhizome dashboard --open/)
    await stranger.screenshot({ path: `${ARTIFACTS}signed-out.png` })
    await stranger.close()

    // Opened the way `rhizome dashboard --open` opens it: with a single-use code.
    const page = await context.newPage()
    const beforeReload = watchProblems(page)
    await page.goto(await openWithCli(driver))
    await waitFor('three peers', async () => await page.locator('[data-panel=network] [data-peer-id]').count() === 3, 30_000, 100)
    assert.equal(await page.evaluate(() => location.hash), '', 'the code is dropped from the address bar')
    assert.equal(await page.evaluate(() => sessionStorage.getItem('rhizome-api-token')), driver.apiToken, 'the tab keeps the token it traded the code for')
    await waitFor('the ended run drawn', async () => await page.locator('.dag [data-task-id]').count() === LANES * STEPS, 15_000, 100)
    assert.deepEqual(beforeReload, [], 'no console errors, failed requests or error answers')
    // A reload cuts the page's open streams (the old listener sees those aborts); the tab keeps
    // its token, and the used code is not needed again.
    await page.reload()
    const problems = watchProblems(page)
    await waitFor('three peers after a reload', async () => await page.locator('[data-panel=network] [data-peer-id]').count() === 3, 30_000, 100)
    // The run of the test before ended before this page opened: the page never saw its scheduled
    // events, and draws its DAG from the dependencies the report names (kept with each task's row).
    const { runs } = await driver.api<{ runs: Array<{ runId: string }> }>('/v1/runs')
    const report = await driver.api<RunReport>(`/v1/runs/${runs[0].runId}`)
    assert.equal(report.status, 'finished')
    const reportEdges = report.tasks.reduce((n, t) => n + (t.deps?.length ?? 0), 0)
    assert.ok(reportEdges >= LANES * (STEPS - 1), `the report names each step's dependency (${reportEdges} named)`)
    await waitFor('the ended run drawn', async () => await page.locator('.dag [data-task-id]').count() === LANES * STEPS, 15_000, 100)
    await waitFor('the ended run\'s edges drawn', async () => await page.locator('.dag .edge').count() >= LANES * (STEPS - 1), 15_000, 100)
    assert.doesNotMatch(await page.locator('.run-summary').textContent() ?? '', /in the order they were asked for/, 'no notice: it has the dependencies')
    await page.screenshot({ path: `${ARTIFACTS}run-ended-edges.png`, fullPage: true })
    const joined = await net.addPeer(['--bootstrap', driver.tcpAddr, '--slots', '1'])
    await waitFor('the new peer to appear alive', async () => await page.locator(`[data-panel=network] [data-peer-id="${joined.peerId}"][data-state=alive]`).count() === 1, 30_000, 100)
    await joined.stop('SIGKILL')
    await waitFor('the stopped peer to turn suspect or gone', async () =>
      await page.locator(`[data-panel=network] [data-peer-id="${joined.peerId}"]:not([data-state=alive])`).count() === 1, 30_000, 100)
    await page.screenshot({ path: `${ARTIFACTS}peer-left.png` })
    assert.deepEqual(problems, [], 'no console errors, failed requests or error answers')
    await page.close()
  })

  test('a page on another origin can neither read the API nor frame the dashboard', async () => {
    const api = driver.apiUrl
    foreign = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' })
      // Frames of the dashboard and of an API route (GETs without an Origin header: only
      // Sec-Fetch-Site tells), a form posting to a route that starts runs, and a script reading
      // the API. 127.0.0.1 on another port is the same site, but the token is in the dashboard
      // tab's sessionStorage, which belongs to the dashboard's origin alone.
      res.end(`<!doctype html><p>elsewhere</p>
        <iframe src="${api}/dashboard"></iframe><iframe src="${api}/v1/status"></iframe><iframe name="posted"></iframe>
        <form id="form" method="POST" action="${api}/v1/runs" target="posted"><input name="workflow" value="x"></form>
        <script>
          document.getElementById('form').submit()
          window.result = fetch(${JSON.stringify(api + '/v1/status')}, { credentials: 'include' }).then(r => 'read: ' + r.status, e => 'refused: ' + e.message)
        </script>`)
    })
    await new Promise<void>(resolve => foreign!.listen(0, '127.0.0.1', resolve))
    const address = foreign.address() as { port: number }
    // The browser has a signed-in dashboard open; it holds no cookie a foreign page's requests could carry.
    const signedIn = await context.newPage()
    await signedIn.goto((JSON.parse((await runCli(['dashboard', '--data-dir', driver.dataDir, '--json'])).stdout) as { url: string }).url)
    await signedIn.locator('[data-panel=network] [data-peer-id]').first().waitFor({ timeout: 30_000 })
    await signedIn.close()
    assert.deepEqual(await context.cookies(), [])

    const page = await context.newPage()
    const answers: Array<{ url: string, status: number }> = []
    page.on('response', (res) => { if (res.url().startsWith(api)) answers.push({ url: res.url(), status: res.status() }) })
    await page.goto(`http://127.0.0.1:${address.port}/`)
    const result = await page.evaluate(async () => await (window as unknown as { result: Promise<string> }).result)
    assert.match(result, /^refused/, 'the foreign page could not read the API')
    await waitFor('the peer to answer the frames and the form', () => answers.length >= 3, 10_000, 50)
    assert.deepEqual(answers.map(a => new URL(a.url).pathname).sort(), ['/dashboard', '/v1/runs', '/v1/status'])
    for (const answer of answers) assert.equal(answer.status, 403, `${answer.url} answered the foreign page`)
    for (const frame of page.frames().filter(f => f !== page.mainFrame())) {
      assert.equal(await frame.locator('[data-panel], #app').count(), 0, `nothing of the peer loaded in the foreign frame ${frame.url()}`)
    }
    await page.screenshot({ path: `${ARTIFACTS}foreign-origin.png` })
    await page.close()
  })
})

/**
 * Runs `rhizome dashboard --open` with an opener (xdg-open, first on PATH) that writes down the
 * address it was given: the address the browser would have been started with.
 */
async function openWithCli (driver: TestPeer): Promise<string> {
  const bin = await mkdtemp(join(tmpdir(), 'rhizome-opener-'))
  try {
    const record = join(bin, 'opened')
    await writeFile(join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s' "$1" > "${record}.tmp" && mv "${record}.tmp" "${record}"\n`, { mode: 0o755 })
    const ran = await runCli(['dashboard', '--open', '--json', '--data-dir', driver.dataDir], { env: { PATH: `${bin}:${process.env.PATH ?? ''}` } })
    assert.equal(ran.code, 0, ran.stderr)
    const out = JSON.parse(ran.stdout) as { url: string, opened: boolean }
    assert.equal(out.opened, true)
    assert.equal(out.url, `${driver.apiUrl}/dashboard#token=${encodeURIComponent(driver.apiToken)}`, 'the printed address is for the user\'s own terminal')
    return await waitFor('the opener to run', async () => await readFile(record, 'utf8').catch(() => undefined), 10_000, 50)
  } finally {
    await rm(bin, { recursive: true, force: true })
  }
}

async function deployFlow (driver: TestPeer): Promise<string> {
  const deployed = await runCli(['deploy', FNS, '--replicas', '3', '--json', '--data-dir', driver.dataDir])
  assert.equal(deployed.code, 0, deployed.stderr)
  const fnId = (JSON.parse(deployed.stdout) as { cid: string }).cid
  const code = new TextEncoder().encode((await readFile(FLOW, 'utf8')).replaceAll('FNS', fnId))
  const manifest = encodeManifest(await createManifest({ name: 'dashboard-flow', kind: 'js', code, exports: ['lanes'] }))
  const res = await fetch(`${driver.apiUrl}/v1/functions`, { method: 'POST', headers: driver.authorized(), body: dagCbor.encode({ manifest, code, replicas: 1 }) as BodyInit, signal: AbortSignal.timeout(60_000) })
  assert.equal(res.status, 200, await res.clone().text())
  return (await res.json() as { cid: string }).cid
}

/** Console errors, uncaught exceptions, failed requests and error answers of a page, as they happen. */
function watchProblems (page: Page): string[] {
  const problems: string[] = []
  page.on('console', (message) => { if (message.type() === 'error') problems.push(`console: ${message.text()}`) })
  page.on('pageerror', (err) => { problems.push(`page error: ${err.message}`) })
  page.on('requestfailed', (req) => {
    const error = req.failure()?.errorText ?? ''
    // An event stream the page closed itself (it moved to a newer run, or reloaded) is reported by
    // the browser as aborted; a stream the peer or the network cut ends with another error.
    if (error === 'net::ERR_ABORTED' && new URL(req.url()).pathname.endsWith('/events')) return
    problems.push(`request failed: ${req.url()} ${error}`)
  })
  page.on('response', (res) => { if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.url()}`) })
  return problems
}

/**
 * Watch the DAG of run `runId` until it shows `total` tasks all done: the task count at each
 * look, and whether some task was seen not done and later done. One screenshot mid-run.
 */
async function observeRun (page: Page, runId: string, total: number): Promise<{ counts: number[], turnedDone: boolean }> {
  const counts: number[] = []
  const notDone = new Set<string>()
  let turnedDone = false
  let shot = false
  const drawn = waitFor(`run ${runId} to be drawn with ${total} tasks done`, async () => {
    const state = await page.evaluate(() => Array.from(document.querySelectorAll('.dag [data-task-id]')).map(el => [el.getAttribute('data-task-id'), el.getAttribute('data-state')]))
    counts.push(state.length)
    for (const [id, s] of state) {
      if (s !== 'done') notDone.add(id!)
      else if (notDone.has(id!)) turnedDone = true
    }
    if (!shot && state.length >= total / 3 && state.some(([, s]) => s !== 'done')) {
      shot = true
      await page.screenshot({ path: `${ARTIFACTS}run-live.png`, fullPage: true })
    }
    return state.length >= total && state.every(([, s]) => s === 'done')
  }, 180_000, 150)
  try {
    await drawn
  } catch (err) {
    await page.screenshot({ path: `${ARTIFACTS}run-timeout.png`, fullPage: true })
    const summary = await page.locator('.run-summary').textContent()
    throw new Error(`${(err as Error).message}; the page says: ${summary}; counts seen ${JSON.stringify(counts.slice(-20))}`)
  }
  return { counts, turnedDone }
}
