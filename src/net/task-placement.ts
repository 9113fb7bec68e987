/**
 * The shell of task placement (src/protocol/placement.ts, TaskPlacement): runs each attempt the
 * state machine asks for through the task service and feeds back its outcome. A call pinned to a
 * peer (`on`) skips placement and is tried once, there.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { InvalidInputError, PeerUnavailableError, RhizomeError } from '../model/errors.ts'
import { TaskPlacement } from '../protocol/placement.ts'
import type { Logger } from '../model/log.ts'
import type { PlacementCandidate } from '../protocol/placement.ts'
import type { CallResult } from './task-service.ts'
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/** A task is tried on at most this many peers before the caller sees the error. */
export const CALL_ATTEMPTS_MAX = 3

export interface CallOptions {
  /** A peer id: run there and nowhere else. */
  on?: string
  timeoutMs?: number
  signal?: AbortSignal
  /** Told of each attempt as it is sent, and of each retryable failure before the next (progress events). */
  onAttempt?: (attempt: number, peer: string) => void
  onRetry?: (attempt: number, peer: string, err: RhizomeError) => void
}

export type PlacedCallResult = CallResult & { attempts: number }

export interface TaskPlacementComponents {
  /** Run one attempt on one peer (TaskService.call). */
  call: (fn: CID, exportName: string, args: unknown[], peer: PeerId, options: { signal?: AbortSignal, timeoutMs?: number }) => Promise<CallResult>
  /** This peer and the peers alive in its view, with their capacity (placementCandidates). */
  candidates: () => PlacementCandidate[]
  /** Floats in [0, 1); default Math.random. */
  random?: () => number
  log: Logger
}

/** Run a task: on `options.on` if given, else on a peer chosen by placement, retrying retryable failures elsewhere. */
export async function callPlaced (components: TaskPlacementComponents, fn: CID, exportName: string, args: unknown[], options: CallOptions = {}): Promise<PlacedCallResult> {
  if (options.on !== undefined) {
    const peer = parsePeer(options.on)
    options.onAttempt?.(1, options.on)
    return { ...await components.call(fn, exportName, args, peer, options), attempts: 1 }
  }
  const placement = new TaskPlacement({ attemptsMax: CALL_ATTEMPTS_MAX, random: components.random ?? Math.random })
  placement.handleStart(components.candidates())
  let lastError: unknown
  for (let output = placement.poll(); output !== undefined; output = placement.poll()) {
    if (output.type === 'give-up') break
    options.onAttempt?.(output.attempt, output.peerId)
    try {
      const result = await components.call(fn, exportName, args, peerIdFromString(output.peerId), options)
      placement.handleSuccess()
      return { ...result, attempts: output.attempt }
    } catch (err) {
      lastError = err
      const retryable = err instanceof RhizomeError && err.retryable
      placement.handleFailure({ retryable }, options.signal?.aborted === true, components.candidates())
      if (retryable && options.signal?.aborted !== true) options.onRetry?.(output.attempt, output.peerId, err as RhizomeError)
      components.log.info('task attempt failed', { peer: output.peerId, attempt: output.attempt, retryable, error: (err as Error).message })
    }
  }
  if (lastError !== undefined) throw lastError
  throw new PeerUnavailableError('no peer is available to run the task')
}

function parsePeer (text: string): PeerId {
  try {
    return peerIdFromString(text)
  } catch (err) {
    throw new InvalidInputError(`${JSON.stringify(text)} is not a peer id`, { cause: err, hint: 'a peer id looks like 12D3KooW…; `rhizome peers` lists them' })
  }
}
