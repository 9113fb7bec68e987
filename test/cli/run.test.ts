/**
 * `rhizome run`, `runs`, `run-status` and `cancel` in-process, against a real local HTTP server
 * that answers the run routes with canned data: argument errors (exit 2 and a hint, before any
 * request), what each command sends, how progress and the report are printed, Ctrl-C (stops
 * following, never cancels the run), and a failed run (exit 1 with its error and hint).
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, beforeEach, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { encodeSse } from '../../src/api/events.ts'
import type { ProgressEvent } from '../../src/api/events.ts'
import { REPLICAS_MAX } from '../../src/api/limits.ts'
import type { RunReport, RunSummary } from '../../src/api/types.ts'
import { main } from '../../src/cli/main.ts'
import { RunProgress, criticalPathLine, formatRunList, formatRunReport, taskTable } from '../../src/cli/run-report.ts'
import { decodeManifest } from '../../src/functions/index.ts'
import { REPLICAS_MAX as VERIFY_REPLICAS_MAX } from '../../src/model/verification.ts'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/workflows/src')

async function cid (text: string): Promise<string> {
  return CID.create(1, dagCbor.code, await sha256.digest(new TextEncoder().encode(text))).toString()
}

const RUN = await cid('run')
const FNS = await cid('fns')
const FLOW = await cid('flow')
const PEERS = ['12D3KooWPeerOne000000000000000000000000000000aaaaaa', '12D3KooWPeerTwo000000000000000000000000000000bbbbbb', '12D3KooWPeerThree0000000000000000000000000000cccccc']

/** The seed example as a peer reports it: B, C and D at once on three peers, then done. */
function report (over: Partial<RunReport> = {}): RunReport {
  return {
    runId: RUN,
    workflow: FLOW,
    export: 'A',
    status: 'finished',
    startedMs: 1_000,
    finishedMs: 1_050,
    driver: PEERS[0],
    result: 14,
    tasks: [
      { taskId: 'tD', fn: FNS, export: 'D', peer: PEERS[2], attempt: 1, status: 'accepted', queuedMs: 1_002, startedMs: 1_005, finishedMs: 1_030 },
      { taskId: 'tB', fn: FNS, export: 'B', peer: PEERS[0], attempt: 1, status: 'accepted', queuedMs: 1_001, startedMs: 1_003, finishedMs: 1_040 },
      { taskId: 'tC', fn: FNS, export: 'C', peer: PEERS[1], attempt: 2, status: 'accepted', queuedMs: 1_001, startedMs: 1_004, finishedMs: 1_020 }
    ],
    criticalPath: { taskIds: ['tB'], ms: 37 },
    ...over
  }
}

function events (): ProgressEvent[] {
  const list: ProgressEvent[] = [{ type: 'run:started', runId: RUN, workflow: FLOW, export: 'A', atMs: 1_000 }]
  for (const name of ['B', 'C', 'D']) list.push({ type: 'run:task:scheduled', runId: RUN, taskId: `t${name}`, fn: FNS, export: name, atMs: 1_001 })
  for (const [i, name] of ['B', 'C', 'D'].entries()) list.push({ type: 'run:task:started', runId: RUN, taskId: `t${name}`, peer: PEERS[i], attempt: 1, atMs: 1_003 })
  for (const [i, name] of ['B', 'C', 'D'].entries()) list.push({ type: 'run:task:done', runId: RUN, taskId: `t${name}`, peer: PEERS[i], ms: 20 + i, atMs: 1_030 })
  list.push({ type: 'run:finished', runId: RUN, status: 'finished', atMs: 1_050 })
  return list
}

interface Seen { method: string, path: string, body: Buffer }

describe('rhizome run, runs, run-status, cancel', () => {
  let server: Server
  let url: string
  let scratch: string
  const seen: Seen[] = []
  /** What the server answers to GET /v1/runs/:id, and streams from /events (held open when `hold`). */
  let current: RunReport
  let stream: ProgressEvent[]
  let hold = false

  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'rhizome-cli-run-'))
    server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => { answer(req, res, Buffer.concat(chunks)) })
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  })
  beforeEach(() => {
    seen.length = 0
    current = report()
    stream = events()
    hold = false
  })
  after(async () => {
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => resolve()))
    await rm(scratch, { recursive: true, force: true })
  })

  function answer (req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const route = `${req.method ?? ''} ${(req.url ?? '').split('?')[0]}`
    seen.push({ method: req.method ?? '', path: req.url ?? '', body })
    const json = (value: unknown): void => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify(value)) }
    if (route === 'POST /v1/functions') {
      const { manifest } = dagCbor.decode(body) as { manifest: Uint8Array }
      const m = decodeManifest(manifest)
      json({ cid: m.kind === 'workflow' ? FLOW : FNS, name: m.name, exports: m.exports, alreadyDeployed: false, replicas: [{ peer: PEERS[0], ok: true }] })
    } else if (route === 'POST /v1/runs') {
      json({ runId: RUN })
    } else if (route === `GET /v1/runs/${RUN}/events`) {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      const text = stream.map((e, i) => encodeSse(i + 1, e)).join('')
      if (hold) res.write(text)
      else res.end(text)
    } else if (route === `GET /v1/runs/${RUN}`) {
      json(current)
    } else if (route === 'GET /v1/runs') {
      const { tasks: _t, result: _r, criticalPath: _c, ...summary } = current
      json({ runs: [summary] })
    } else if (route === `POST /v1/runs/${RUN}/cancel`) {
      current = { ...current, status: 'cancelled' }
      json({ runId: RUN, status: 'cancelled' })
    } else {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: { name: 'NotFoundError', code: 'ERR_NOT_FOUND', message: `no route ${route}`, retryable: false } }))
    }
  }

  async function cli (argv: string[], options: { isTTY?: boolean, onOut?: (stdout: string, abort: () => void) => void } = {}): Promise<{ code: number, stdout: string, stderr: string }> {
    let stdout = ''
    let stderr = ''
    const controller = new AbortController()
    const code = await main([...argv, '--api', url, '--api-token', 't'], { RHIZOME_DATA_DIR: scratch }, controller.signal, {
      out: text => {
        stdout += typeof text === 'string' ? text : Buffer.from(text).toString()
        options.onOut?.(stdout, () => controller.abort())
      },
      err: text => { stderr += text },
      isTTY: options.isTTY ?? false
    })
    return { code, stdout, stderr }
  }

  describe('argument errors exit 2 with a hint, before any request', () => {
    const cases: Array<[string, string[], RegExp]> = [
      ['an EXPORT that is not a name', ['run', path.join(fixtures, 'flow.ts'), 'not-a-name'], /EXPORT .* is not an identifier/],
      ['an ARG that is not JSON', ['run', path.join(fixtures, 'flow.ts'), 'A', 'five'], /argument 1 is not JSON: five/],
      ['--replicas 0', ['run', path.join(fixtures, 'flow.ts'), 'A', '--replicas', '0'], /--replicas must be an integer from 1/],
      [`--replicas ${REPLICAS_MAX + 1}`, ['run', path.join(fixtures, 'flow.ts'), 'A', '--replicas', String(REPLICAS_MAX + 1)], new RegExp(`--replicas must be an integer from 1 to ${REPLICAS_MAX}`)],
      ['no EXPORT', ['run', path.join(fixtures, 'flow.ts')], /expected 2 to 66 argument/],
      ['a workflow importing a Node built-in', ['run', path.join(fixtures, 'bad/builtin.ts'), 'A'], /forbidden import "node:fs"/],
      ['a workflow importing a package', ['run', path.join(fixtures, 'bad/package.ts'), 'A'], /forbidden import "multiformats\/cid"/],
      ['a missing file', ['run', path.join(fixtures, 'nope.ts'), 'A'], /no such file/],
      ['run-status of something that is not a run id', ['run-status', 'nope'], /"nope" is not a run id/],
      ['cancel of something that is not a run id', ['cancel', 'bafy!'], /is not a run id/],
      ['runs --limit 0', ['runs', '--limit', '0'], /--limit must be a whole number from 1/],
      ['runs --status done', ['runs', '--status', 'done'], /--status must be one of created, running, finished, continued, failed, cancelled/]
    ]
    for (const [label, argv, message] of cases) {
      test(label, async () => {
        const r = await cli(argv)
        assert.equal(r.code, 2, r.stderr)
        assert.match(r.stderr, message)
        assert.match(r.stderr, /hint: /)
        assert.deepEqual(seen, [])
      })
    }

    test('an EXPORT the module does not have as a workflow: exit 2 naming its workflows, after deploying its functions', async () => {
      const r = await cli(['run', path.join(fixtures, 'flow.ts'), 'B', '5'])
      assert.equal(r.code, 2, r.stderr)
      assert.match(r.stderr, /has no workflow "B"; its workflows are A/)
      assert.deepEqual(seen.map(s => `${s.method} ${s.path}`), ['POST /v1/functions'])
    })
  })

  test('run: deploys the function module and the workflow, starts the run, prints progress, the result, the table and the critical path', async () => {
    const r = await cli(['run', path.join(fixtures, 'flow.ts'), 'A', '5'])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(seen.map(s => `${s.method} ${s.path}`), ['POST /v1/functions', 'POST /v1/functions', 'POST /v1/runs', `GET /v1/runs/${RUN}/events`, `GET /v1/runs/${RUN}`])
    // The function module as `rhizome deploy` sends it (3 replicas); the workflow bundle, kind workflow, 1 replica.
    const fns = dagCbor.decode(seen[0].body) as { manifest: Uint8Array, replicas: number }
    assert.deepEqual([decodeManifest(fns.manifest).kind, decodeManifest(fns.manifest).name, decodeManifest(fns.manifest).exports, fns.replicas], ['js', 'fns', ['B', 'C', 'D'], 3])
    const flow = dagCbor.decode(seen[1].body) as { manifest: Uint8Array, code: Uint8Array, replicas: number }
    assert.deepEqual([decodeManifest(flow.manifest).kind, decodeManifest(flow.manifest).name, decodeManifest(flow.manifest).exports, flow.replicas], ['workflow', 'flow', ['A'], 1])
    assert.match(new TextDecoder().decode(flow.code), new RegExp(`remote\\("${FNS}", "B"\\)`))
    assert.deepEqual(JSON.parse(seen[2].body.toString()), { workflow: FLOW, export: 'A', args: [5] })
    // Off a terminal: one line per task start and finish, then the report.
    assert.doesNotMatch(r.stdout, /\r/)
    assert.match(r.stdout, /started {2}B on 12D3KooW…aaaaaa\n/)
    assert.match(r.stdout, /done {5}D on 12D3KooW…cccccc in 22 ms\n/)
    const report = r.stdout.slice(r.stdout.indexOf('done     D'))
    assert.equal(report.split('\n')[1], '14')
    assert.match(r.stdout, /critical path {2}B \(37 ms\)/)
    assert.match(r.stdout, /tasks {10}3 on 3 peers/)
  })

  test('run --auto-parallel: the bundle deployed has the Promise.all rewrite, the file is not changed, and a line counts the rewrites', async () => {
    const file = path.join(fixtures, '../../check-cli/sequential.ts')
    const before = await readFile(file, 'utf8')
    const plain = await cli(['run', file, 'A', '5', '--detach'])
    assert.equal(plain.code, 0, plain.stderr)
    assert.doesNotMatch(new TextDecoder().decode((dagCbor.decode(seen[1].body) as { code: Uint8Array }).code), /Promise\.all/)
    assert.doesNotMatch(plain.stdout, /auto-parallel/)
    seen.length = 0
    const r = await cli(['run', file, 'A', '5', '--auto-parallel', '--detach'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^auto-parallel {2}1 rewrite applied to .*sequential\.ts$/m)
    const flow = dagCbor.decode(seen[1].body) as { manifest: Uint8Array, code: Uint8Array }
    assert.equal(decodeManifest(flow.manifest).kind, 'workflow')
    assert.match(new TextDecoder().decode(flow.code), /const \[b, c, d\] = await Promise\.all\(\[\w+\(x\), \w+\(x\), \w+\(x\)\]\)/)
    assert.equal(await readFile(file, 'utf8'), before)
  })

  test('run --verify-replicas 3: every function module deployed carries the policy (quorum a majority); the workflow none', async () => {
    const r = await cli(['run', path.join(fixtures, 'flow.ts'), 'A', '5', '--verify-replicas', '3', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const fns = decodeManifest((dagCbor.decode(seen[0].body) as { manifest: Uint8Array }).manifest)
    assert.deepEqual(fns.verification, { replicas: 3, quorum: 2, spotCheckRate: 0 })
    const flow = decodeManifest((dagCbor.decode(seen[1].body) as { manifest: Uint8Array }).manifest)
    assert.equal(flow.kind, 'workflow')
    assert.equal(Object.hasOwn(flow, 'verification'), false)
  })

  test('deploy --verify-replicas 5 --quorum 4 --spot-check-rate 0.1 sends that policy and prints it; without the flags, none', async () => {
    const file = path.join(fixtures, 'fns.ts')
    const r = await cli(['deploy', file, '--verify-replicas', '5', '--quorum', '4', '--spot-check-rate', '0.1'])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(decodeManifest((dagCbor.decode(seen[0].body) as { manifest: Uint8Array }).manifest).verification, { replicas: 5, quorum: 4, spotCheckRate: 0.1 })
    assert.match(r.stdout, /verification 5 peers, 4 must agree, 10% spot checks\n/)
    const spot = await cli(['deploy', file, '--spot-check-rate', '.5'])
    assert.equal(spot.code, 0, spot.stderr)
    assert.deepEqual(decodeManifest((dagCbor.decode(seen[1].body) as { manifest: Uint8Array }).manifest).verification, { replicas: 1, quorum: 1, spotCheckRate: 0.5 })
    const plain = await cli(['deploy', file, '--replicas', '2'])
    assert.equal(plain.code, 0, plain.stderr)
    const body = dagCbor.decode(seen[2].body) as { manifest: Uint8Array, replicas: number }
    assert.equal(body.replicas, 2)
    assert.equal(Object.hasOwn(decodeManifest(body.manifest), 'verification'), false)
    assert.doesNotMatch(plain.stdout, /verification/)
  })

  describe('verification flags: bad values exit 2 with a hint, before any request', () => {
    const flow = path.join(fixtures, 'flow.ts')
    const fns = path.join(fixtures, 'fns.ts')
    const cases: Array<[string, string[], RegExp]> = [
      ['--verify-replicas 0', ['deploy', fns, '--verify-replicas', '0'], /--verify-replicas must be an integer from 1 to 16, got 0/],
      [`--verify-replicas ${VERIFY_REPLICAS_MAX + 1}`, ['deploy', fns, '--verify-replicas', String(VERIFY_REPLICAS_MAX + 1)], /--verify-replicas must be an integer from 1 to 16, got 17/],
      ['--verify-replicas three', ['deploy', fns, '--verify-replicas', 'three'], /--verify-replicas must be a whole number, got "three"/],
      ['--quorum without --verify-replicas', ['deploy', fns, '--quorum', '2'], /--quorum needs --verify-replicas N/],
      ['--quorum 1 of 3', ['deploy', fns, '--verify-replicas', '3', '--quorum', '1'], /--quorum must be from 2 to replicas \(3\), got 1/],
      ['--quorum 4 of 3', ['run', flow, 'A', '--verify-replicas', '3', '--quorum', '4'], /--quorum must be from 2 to replicas \(3\), got 4/],
      ['--quorum=-1', ['deploy', fns, '--verify-replicas', '3', '--quorum=-1'], /--quorum must be a whole number/],
      ['--spot-check-rate 1.5', ['deploy', fns, '--spot-check-rate', '1.5'], /--spot-check-rate must be a number from 0 to 1, got 1.5/],
      ['--spot-check-rate 5%', ['run', flow, 'A', '--spot-check-rate', '5%'], /--spot-check-rate must be a number from 0 to 1, got "5%"/],
      ['--spot-check-rate NaN', ['deploy', fns, '--spot-check-rate', 'NaN'], /--spot-check-rate must be a number/]
    ]
    for (const [label, argv, message] of cases) {
      test(label, async () => {
        const r = await cli(argv)
        assert.equal(r.code, 2, r.stderr)
        assert.match(r.stderr, message)
        assert.match(r.stderr, /hint: e\.g\. --verify-replicas 3 --quorum 2/)
        assert.deepEqual(seen, [])
      })
    }
  })

  test('run on a terminal: a live bar redrawn in place, counting tasks and what each peer runs and has done', async () => {
    const r = await cli(['run', path.join(fixtures, 'flow.ts'), 'A', '5'], { isTTY: true })
    assert.equal(r.code, 0, r.stderr)
    // However the events were spread in time, the run's last state is drawn, then the report.
    const peerLine = (p: string): string => `  12D3KooW…${p}  0 running, 1 done\u001b\\[K`
    assert.match(r.stdout, new RegExp(`\\rtasks \\[#{20}\\] 3/3: 3 done, 0 running, 0 queued\u001b\\[K\n${['aaaaaa', 'cccccc', 'bbbbbb'].map(peerLine).join('\n')}\u001b\\[J\n14\n`))
    assert.doesNotMatch(r.stdout, /started {2}B/)
  })

  test('run --detach --json prints {"runId"} and returns at once; nothing is followed', async () => {
    const r = await cli(['run', path.join(fixtures, 'flow.ts'), 'A', '5', '--detach', '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(JSON.parse(r.stdout), { runId: RUN })
    assert.deepEqual(seen.map(s => `${s.method} ${s.path}`), ['POST /v1/functions', 'POST /v1/functions', 'POST /v1/runs'])
  })

  test('run --json: no progress, the report as JSON', async () => {
    const r = await cli(['run', path.join(fixtures, 'flow.ts'), 'A', '5', '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(JSON.parse(r.stdout), report())
  })

  test('Ctrl-C while following: exit 130, how to follow again and how to cancel; the run is not cancelled', async () => {
    hold = true
    stream = events().slice(0, 5)
    const r = await cli(['run', path.join(fixtures, 'flow.ts'), 'A', '5'], { onOut: (stdout, abort) => { if (stdout.includes('started  B')) abort() } })
    assert.equal(r.code, 130, r.stderr)
    assert.match(r.stdout, new RegExp(`rhizome run-status ${RUN} --wait --api ${url.replace(/[.]/g, '\\.')}`))
    assert.match(r.stdout, new RegExp(`rhizome cancel ${RUN}`))
    assert.ok(!seen.some(s => s.path.endsWith('/cancel')))
  })

  test('a failed run: the report, then exit 1 with the run\'s error and its hint', async () => {
    current = report({ status: 'failed', result: undefined, error: { name: 'FunctionThrewError', code: 'ERR_FUNCTION_THREW', message: 'D threw: no', retryable: false, hint: 'fix D' } })
    stream = [...events().slice(0, -1), { type: 'run:finished', runId: RUN, status: 'failed', error: current.error, atMs: 1_050 }]
    const r = await cli(['run', path.join(fixtures, 'flow.ts'), 'A', '5'])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /error: D threw: no \(ERR_FUNCTION_THREW\)\nhint: fix D\n/)
    assert.match(r.stdout, /status {9}failed in 50 ms/)
    assert.doesNotMatch(r.stdout, /^14$/m)
  })

  test('run-status prints the report; --wait follows first and exits 1 for a run that did not finish', async () => {
    const r = await cli(['run-status', RUN])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(seen.map(s => `${s.method} ${s.path}`), [`GET /v1/runs/${RUN}`])
    assert.equal(r.stdout, formatRunReport(report()))
    seen.length = 0
    current = report({ status: 'cancelled', result: undefined })
    stream = [...events().slice(0, 4), { type: 'run:finished', runId: RUN, status: 'cancelled', atMs: 1_010 }]
    const waited = await cli(['run-status', RUN, '--wait'])
    assert.equal(waited.code, 1)
    assert.match(waited.stderr, /was cancelled \(ERR_RUN_CANCELLED\)/)
    assert.deepEqual(seen.map(s => `${s.method} ${s.path}`), [`GET /v1/runs/${RUN}/events`, `GET /v1/runs/${RUN}`])
    const asJson = await cli(['run-status', RUN, '--json'])
    assert.equal(asJson.code, 0)
    assert.equal(JSON.parse(asJson.stdout).status, 'cancelled')
  })

  test('runs lists the runs; --limit and --status go to the peer', async () => {
    const r = await cli(['runs', '--limit', '5', '--status', 'finished'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(seen[0].path, '/v1/runs?limit=5&status=finished')
    assert.match(r.stdout, new RegExp(`^run +status +export +workflow +started +took\n${RUN} +finished +A +bafyrei[a-z0-9]{3}…[a-z0-9]{6} +1970-01-01T00:00:01\\.000Z +50 ms\n$`))
    const asJson = await cli(['runs', '--json'])
    assert.equal(JSON.parse(asJson.stdout)[0].runId, RUN)
  })

  test('cancel asks the peer to cancel and prints the run\'s status', async () => {
    const r = await cli(['cancel', RUN])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(seen.map(s => `${s.method} ${s.path}`), [`POST /v1/runs/${RUN}/cancel`, `GET /v1/runs/${RUN}`])
    assert.equal(r.stdout, `run ${RUN} is cancelled\n`)
  })
})

describe('run output formatting', () => {
  test('the report: result first, then the run, and the task table in ms since the run started, by queue time', () => {
    const text = formatRunReport(report())
    const lines = text.split('\n')
    assert.equal(lines[0], '14')
    assert.deepEqual(taskTable(report()), [
      'task  peer             queued  started  finished  status',
      'B     12D3KooW…aaaaaa       1        3        40  accepted',
      'C     12D3KooW…bbbbbb       1        4        20  accepted (attempt 2)',
      'D     12D3KooW…cccccc       2        5        30  accepted'
    ])
    assert.ok(text.endsWith(taskTable(report()).map(r => `  ${r}`).join('\n') + '\n'))
  })

  test('verification shows in the report: who else answered for each task, and the results replaced after a check', () => {
    const base = report()
    const of = (name: string): RunReport['tasks'][number] => base.tasks.find(t => t.export === name)!
    const checked = report({
      tasks: [{ ...of('B'), agreed: ['12D3KooWdddddddddddddddddddddddddddddddddddddddddddd'] }, { ...of('C'), agreed: ['p1', 'p2'], disagreed: ['12D3KooWeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee'] }, of('D')],
      verification: { checks: 3, confirmed: 2, disproven: [{ taskId: 'tC', resultCid: 'bafyright' }] }
    })
    const rows = taskTable(checked)
    const row = (name: string): string => rows.find(r => r.startsWith(`${name} `))!
    assert.match(rows[0], /checked by$/)
    assert.match(row('B'), /1 agreed$/)
    assert.match(row('C'), /2 agreed, 1 disagreed \(12D3KooW…eeeeee\)$/)
    assert.match(row('D'), / -$/)
    assert.match(formatRunReport(checked), /checked {8}3 results checked again after use; 1 wrong, replaced/)
    assert.doesNotMatch(formatRunReport(base), /checked/)
  })

  test('the critical path by export names, chained', () => {
    assert.equal(criticalPathLine(report({ criticalPath: { taskIds: ['tB', 'tC'], ms: 57.4 } })), 'B → C (57 ms)')
    assert.equal(criticalPathLine(report({ criticalPath: undefined })), undefined)
  })

  test('a failed task shows its error; an unfinished task shows dashes', () => {
    const rows = taskTable(report({
      tasks: [
        { taskId: 'tB', fn: FNS, export: 'B', peer: PEERS[0], attempt: 3, status: 'failed', queuedMs: 1_001, startedMs: 1_003, finishedMs: 1_009, error: { name: 'FunctionThrewError', code: 'ERR_FUNCTION_THREW', message: 'x', retryable: false } },
        { taskId: 'tC', fn: FNS, export: 'C', attempt: 1, status: 'scheduled', queuedMs: 1_002 }
      ]
    }))
    assert.deepEqual(rows.slice(1), [
      'B     12D3KooW…aaaaaa       1        3         9  failed: FunctionThrewError (attempt 3)',
      'C     -                     2        -         -  scheduled'
    ])
  })

  test('progress counts each task once, however many events it has', () => {
    const progress = new RunProgress()
    const lines = events().flatMap(e => progress.handle(e))
    assert.equal(lines.length, 6)
    assert.equal(progress.line(), 'tasks: 3 scheduled, 0 running, 3 done')
    // A retry on another peer: still one task.
    progress.handle({ type: 'run:task:scheduled', runId: RUN, taskId: 'tE', fn: FNS, export: 'E', atMs: 1 })
    progress.handle({ type: 'run:task:started', runId: RUN, taskId: 'tE', peer: PEERS[0], attempt: 1, atMs: 1 })
    assert.deepEqual(progress.handle({ type: 'run:task:started', runId: RUN, taskId: 'tE', peer: PEERS[1], attempt: 2, atMs: 2 }), ['started  E on 12D3KooW…bbbbbb (attempt 2)'])
    assert.equal(progress.line(), 'tasks: 4 scheduled, 1 running on 1 peer (12D3KooW…bbbbbb), 3 done')
  })

  test('the run list, and an empty one that says how to start a run', () => {
    const summary: RunSummary = { runId: RUN, workflow: FLOW, export: 'A', status: 'running', startedMs: 0, driver: PEERS[0] }
    assert.match(formatRunList([summary]), /running +A .* 1970-01-01T00:00:00\.000Z +-\n$/)
    assert.match(formatRunList([]), /rhizome run FILE EXPORT/)
  })
})
