/**
 * What a peer's HTTP API answers, as data. The server (src/node/http-api.ts) is typed against
 * these, and every client — the CLI, the SDK, the dashboard — reads them from here. Nothing in
 * this file may import the peer's internals: a client must not need libp2p to know the shapes.
 */
import type { Capacity } from '../model/capacity.ts'
import type { VerificationMode } from '../model/verification.ts'

import type { FailureData } from '../model/errors.ts'
export type { FailureData }

/** The one Capacity type: what a worker's slots count is what membership announces and this API shows. */
export type { Capacity }

export type PeerState = 'alive' | 'suspect' | 'gone'

/** `GET /v1/status` */
export interface NodeStatus {
  peerId: string
  version: string
  networkId: string
  /** How results of functions without their own policy are verified: 'trusted' or 'open'. */
  verification: VerificationMode
  dataDir: string
  addrs: string[]
  apiUrl: string
  uptimeMs: number
  connections: number
  peers: { alive: number, suspect: number, gone: number }
  blobs: { count: number }
  /** 'open': any peer that knows the network id joins; 'permissioned': only peers holding a
   *  membership certificate signed by the network's admin key (`rhizome network`). */
  networkMode: NetworkMode
}

export type NetworkMode = 'open' | 'permissioned'
export type MemberRole = 'worker' | 'client' | 'admin'

/** A member of a permissioned network, as `GET /v1/network` shows it. */
export interface MemberView {
  peerId: string
  roles: MemberRole[]
  serial: string
  notBefore: number
  notAfter: number
  /** The issuing admin key (base64url). */
  issuer: string
  /** This peer has an open connection to the member now. */
  connected: boolean
  /** The peer id of the delegated admin that signed the certificate; absent when the founding key did. */
  issuedBy?: string
}

/** A revocation this peer holds and enforces. */
export interface RevocationView {
  serial?: string
  peer?: string
  atMs: number
  issuer: string
}

/** `GET /v1/network`: the network's mode and, when permissioned, its members and revocations. */
export interface NetworkStatus {
  mode: NetworkMode
  networkId: string
  /** This peer's own membership (undefined in an open network). */
  self?: MemberView
  /** Members this peer has checked the certificate of (itself included), by peer id. */
  members: MemberView[]
  revocations: RevocationView[]
  /** Refusals since start, by reason (e.g. { 'not-a-member': 3 }): what outsiders tried. */
  refused: Record<string, number>
}

/** `POST /v1/network/revocations` answer. */
export interface RevocationResult {
  result: 'accepted' | 'duplicate'
}

/** One row of `GET /v1/peers`: what this peer knows of another. */
export interface PeerView {
  peerId: string
  state: PeerState
  incarnation: number
  seq: number
  version: string
  addrs: string[]
  capacity: Capacity
  firstSeenMs: number
  lastSeenMs: number
  stateSinceMs: number
  /** Whether a libp2p connection to it is open right now. */
  connected: boolean
}

export type FunctionOrigin = 'deploy' | 'replica' | 'fetched'

/** One row of `GET /v1/functions`. */
export interface FunctionInfo {
  cid: string
  name: string
  kind: string
  codeCid: string
  codeBytes: number
  exports: string[]
  addedMs: number
  origin: FunctionOrigin
}

/** `POST /v1/functions` answers this. */
export interface DeployResult {
  cid: string
  name: string
  exports: string[]
  alreadyDeployed: boolean
  replicas: Array<{ peer: string, ok: boolean, error?: string }>
}

/** `POST /v1/call` takes this (JSON). */
export interface CallRequest {
  /** A function id, or a name known to the peer. */
  fn: string
  export: string
  args: unknown[]
  /** Run on this peer id; without it, placement picks one. */
  on?: string
  timeoutMs?: number
}

export interface TaskTimings {
  queueMs: number
  fetchMs: number
  runMs: number
  totalMs: number
}

/** `POST /v1/call` answers this; `value` is the result as dag-json-style JSON. */
export interface CallResult {
  taskId: string
  resultCid: string
  value: unknown
  peer: string
  attempts: number
  timings: TaskTimings
}

/** `POST /v1/blobs` and `POST /v1/blobs/:cid/fetch` answer this. */
export interface BlobPutResult {
  cid: string
  bytes: number
}

/** 'continued': the run ended with continueAsNew; `continuedAs` in its report names the next run. */
export type RunStatus = 'created' | 'running' | 'finished' | 'continued' | 'failed' | 'cancelled'

/** `POST /v1/runs` takes this (JSON). */
export interface RunRequest {
  /** The workflow's id (the manifest CID `rhizome run` deployed), or a name known to the peer. */
  workflow: string
  /** The exported workflow to run. */
  export: string
  args: unknown[]
}

/** `POST /v1/runs/:id/signals`: the signal `name` (see signalNameProblem) and its value (plain data). */
export interface SignalRequest {
  name: string
  value: unknown
}

/** `POST /v1/runs` answers this as soon as the run is started (its outcome comes later). */
export interface RunStarted {
  runId: string
}

/** One row of `GET /v1/runs`. */
export interface RunSummary {
  runId: string
  workflow: string
  export: string
  status: RunStatus
  startedMs: number
  finishedMs?: number
  /** The peer driving the run. */
  driver: string
}

/** One task of a run, as `GET /v1/runs/:id` reports it. */
export interface RunTaskReport {
  taskId: string
  fn: string
  export: string
  /** The peer whose result was accepted (or that last tried). */
  peer?: string
  attempt: number
  status: 'scheduled' | 'running' | 'accepted' | 'failed' | 'cancelled'
  queuedMs: number
  startedMs?: number
  finishedMs?: number
  error?: FailureData
  /** Verification: the other peers whose signed answers matched the accepted result (quorum
   *  members, spot checks) and those whose answers did not (`rhizome attestations TASK` has the
   *  signatures). Absent when no other peer answered. */
  agreed?: string[]
  disagreed?: string[]
  /** The tasks whose results the run's code had received when it asked for this one (the last
   *  RUN_EVENT_DEPS_MAX, src/api/events.ts), as the driving peer kept them; absent for tasks this
   *  peer recorded before it kept dependencies. */
  deps?: string[]
  /** How many dependencies the task had, when more than `deps` names. */
  depsCount?: number
}

/** `GET /v1/runs/:id`: the run, its outcome when it has one, what ran where, and its critical path. */
export interface RunReport extends RunSummary {
  /** The run this one continued as (status 'continued'): follow it for the chain's result. */
  continuedAs?: string
  /** The workflow's return value, as dag-json-style JSON. */
  result?: unknown
  error?: FailureData
  tasks: RunTaskReport[]
  /** The chain of dependent tasks that took longest, first to last, and its span. */
  criticalPath?: { taskIds: string[], ms: number }
  /** The peers that keep the run (durable runs), as the answering peer knows them; absent when it
   *  is not one of them (it found the run by asking). */
  homeSet?: string[]
  /**
   * Checks of the run's results after they were used (spot checks, re-checks of a peer proven to
   * lie): how many opened and were confirmed, and each result disproven — a wrong answer the run
   * had accepted, replaced by `resultCid`; the code replayed on the right one, so none of them is
   * in `result`. Absent when no result of the run was checked later.
   */
  verification?: { checks: number, confirmed: number, disproven: Array<{ taskId: string, resultCid: string }> }
}

/** One signed answer behind a verified task, in `GET /v1/tasks/:id/attestations`. */
export interface AttestationView {
  peer: string
  resultCid: string
  /** accepted: its result was used; agreed / disagreed: with the accepted result; checked: a spot check's answer. */
  role: 'accepted' | 'agreed' | 'disagreed' | 'checked'
  runId?: string
  atMs: number
  /** The peer's Ed25519 signature over its attestation, base64. */
  signature: string
}

/** `GET /v1/tasks/:id/attestations` */
export interface TaskAttestations {
  taskId: string
  attestations: AttestationView[]
}

/** One peer's record in `GET /v1/reputation`, as this peer last stored it. */
export interface ReputationView {
  peerId: string
  agreements: number
  disagreements: number
  failures: number
  lies: number
  /** 0 when never banned. */
  bannedUntilMs: number
  updatedMs: number
  /** For display: the Beta posterior mean (1 + agreements) / (2 + agreements + disagreements + failures). */
  score: number
  /** bannedUntilMs is in the future. */
  banned: boolean
}


/** `POST /v1/sql`: one read-only query over the views of a peer's history (README, "SQL over a peer's history"). */
export interface SqlRequest {
  sql: string
  /** More rows than this is ERR_SQL_TOO_MANY_ROWS. Default SQL_ROWS_DEFAULT, at most SQL_ROWS_MAX. */
  maxRows?: number
  /** Past this the query is stopped: ERR_SQL_TIMEOUT. Default SQL_TIMEOUT_MS_DEFAULT, at most SQL_TIMEOUT_MS_MAX. */
  timeoutMs?: number
}

/** The answer to `POST /v1/sql`. */
export interface SqlResult {
  columns: string[]
  /** One array per row in column order: null, number, string (integers past 2^53 as decimal strings), or `{ "/": { "bytes": base64 } }` for a BLOB. */
  rows: unknown[][]
  /** Always false: a query over its row cap is an error, never cut short silently. */
  truncated: false
}

export type LogLevelName = 'debug' | 'info' | 'warn' | 'error'

/** One record of a peer's log history (`GET /v1/logs`). */
export interface LogRecordView {
  /** Its row in log_events; absent for a live record not yet written. */
  id?: number
  atMs: number
  level: LogLevelName
  /** The logger's namespace, e.g. rhizome:tasks. */
  ns: string
  msg: string
  fields?: Record<string, unknown>
}

/** What `GET /v1/logs` asks for. */
export interface LogQueryParams {
  /** The least severe level answered. */
  level?: LogLevelName
  /** Namespace prefix, e.g. rhizome:tasks. */
  ns?: string
  /** Only records at or after this time, ms since the epoch. */
  sinceMs?: number
  /** The newest N matching records, oldest first. Default LOG_LIST_DEFAULT, at most LOG_LIST_MAX. */
  limit?: number
}
