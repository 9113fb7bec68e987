/**
 * A durable run's home set, as one peer of it sees the run: the LEASE (who drives, with what
 * epoch: ../lease/), the memo REPLICA every home-set peer keeps (../memo/replica.ts), and — on the
 * peer that drives — the memo DRIVER (../memo/driver.ts). This machine composes the three and
 * decides what the run service may do:
 *
 *  - `drive { epoch, memo }`: this peer won the lease AND gathered the memo from a majority: start
 *    the run's code from that memo (a replay: finished calls resolve from it, nothing re-runs).
 *  - `deliver { id }`: an entry this driver added (`handleLocalEntry`: an accepted result, a timer,
 *    a signal, the run's outcome) is persisted by a majority. Only now may the code see it.
 *  - `stop`: the lease is lost or a newer driver fenced this one: stop driving at once.
 *  - `settled { entry }`: the run's outcome (RESULT_ENTRY_ID) is in this peer's memo: the run is
 *    over here, whoever drove it. A settled peer never takes the run over.
 *
 * One machine per home-set peer per run. Sans-I/O: the shell (src/net/home-service.ts) feeds
 * inputs with the current time, drains `poll()` after every call — writing each `persist-*`
 * before it sends anything polled after it — and calls `handleTimeout` at `nextTimeoutMs()`.
 * Theory of operation: ./home-run.ts.
 */
import { HomeRunMachine } from './home-run.ts'
import type { LeaseOptions, LeasePromise, RefusalReason } from '../lease/index.ts'
import type { DriverMessage, MemoConflict, MemoDriverOptions, MemoEntry, MemoLimits, MemoValue, ReplicaMessage } from '../memo/index.ts'

export type LeaseMessage =
  | { type: 'lease-request', epoch: number, round: number }
  | { type: 'lease-grant', epoch: number, round: number }
  | { type: 'lease-refuse', epoch: number, round: number, reason: RefusalReason }

/** The driver of `epoch` replaced a home-set peer that is gone for good: this is the run's home set now. */
export interface HomeSetMessage { type: 'home-set', epoch: number, homeSet: string[] }

/** Everything home-set peers of one run say to each other. */
export type HomeMessage = LeaseMessage | DriverMessage | ReplicaMessage | HomeSetMessage

export type HomeOutput =
  | { type: 'send', to: string, message: HomeMessage }
  /** Write the lease promise; finish before sending anything polled after it. */
  | { type: 'persist-lease', promise: LeasePromise }
  /** Write these memo entries and the fencing epoch; finish before sending anything after it. */
  | { type: 'persist-memo', entries: MemoEntry[], epoch: number }
  /** Write the run's new home set (a repair); finish before sending anything polled after it. */
  | { type: 'persist-home-set', homeSet: string[] }
  /** Ask `peer` to keep the run (send it the run's spec) with this home set: it replaces a gone peer. */
  | { type: 'add-member', peer: string, homeSet: string[] }
  /** Drive the run from `memo` (the gathered memo, without the outcome: there is none yet). */
  | { type: 'drive', epoch: number, memo: MemoEntry[] }
  /** An entry of this driver is durable: the code may depend on it. Once per id. */
  | { type: 'deliver', id: string, epoch: number }
  /** Stop driving now: the lease ran out, or a newer epoch fenced this driver. */
  | { type: 'stop', epoch: number, reason: 'lost-lease' | 'fenced' }
  /** The run's outcome is in this peer's memo. Once per life of the machine. */
  | { type: 'settled', entry: MemoEntry }
  | MemoConflict

export type HomeRole = 'follower' | 'gathering' | 'driving' | 'settled'

export type HomeVerdict = 'accepted' | 'refused' | 'ignored' | 'malformed'

export interface HomeRunOptions {
  selfId: string
  runId: string
  /** The run's home set in rendezvous order; must include selfId. */
  homeSet: readonly string[]
  /** What this peer persisted for the run in an earlier life. */
  restored?: { promise?: LeasePromise, entries?: MemoEntry[], epoch?: number }
  /** Lease timings (../lease/index.ts LeaseOptions). */
  lease?: Pick<LeaseOptions, 'leaseMs' | 'renewMs' | 'graceMs' | 'staggerMs' | 'clockDriftMaxMs'>
  /** Memo limits and timings (../memo/index.ts). */
  memo?: MemoLimits & Pick<MemoDriverOptions, 'resendMs' | 'resendMaxMs' | 'attemptsMax' | 'probeIntervalMs'>
}

export interface HomeRun {
  /** A message from another home-set peer (shape already checked by the wire codec). */
  handleMessage (from: string, message: HomeMessage, nowMs: number): HomeVerdict
  /** The driver's code produced an entry (accepted result, timer, signal, the outcome). False when
   *  this peer is not driving (any more): the entry is dropped, and the shell drops the run. A
   *  `deliver` follows once it is durable. */
  handleLocalEntry (entry: { id: string, value: MemoValue }, nowMs: number): boolean
  /** Several local entries at once (one turn of the shell's event loop): each replica gets those
   *  not yet durable in one append — one commit and one ack for all, not one each. */
  handleLocalEntries (entries: ReadonlyArray<{ id: string, value: MemoValue }>, nowMs: number): boolean
  /** True while this peer drives the run and takes local entries. */
  takesEntries (): boolean
  /** Membership says `gone` peers are gone for good; `candidates` are alive. The driver replaces
   *  each gone home-set peer by the best candidate in rendezvous order on the run id, tells the
   *  home set, and repairs the newcomer's memo. Others ignore it. True if the home set changed. */
  handlePeersGone (gone: readonly string[], candidates: readonly string[], nowMs: number): boolean
  handleTimeout (nowMs: number): void
  poll (): HomeOutput | undefined
  /** Absolute ms at which to call handleTimeout (Infinity: nothing timed). */
  nextTimeoutMs (): number
  role (): HomeRole
  /** The epoch this peer drives (undefined unless driving or gathering). */
  epoch (): number | undefined
  /** This peer's replica of the memo, sorted by id. */
  memo (): MemoEntry[]
  /** The run's home set as this peer knows it, in rendezvous order. */
  homeSet (): string[]
  /** The outcome entry, once settled. */
  outcome (): MemoEntry | undefined
}

/** Validates the options (ConfigError naming the field) and returns the machine. */
export function createHomeRun (options: HomeRunOptions, nowMs: number): HomeRun {
  return new HomeRunMachine(options, nowMs)
}

export { HOME_SET_SIZE_DEFAULT, RESULT_ENTRY_ID } from './constants.ts'
