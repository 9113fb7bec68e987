/**
 * Which requests a permissioned peer serves, by protocol: the rule the RPC layer's gate applies
 * before any handler runs (src/net/permission-service.ts). Pure: the caller says what the
 * requester and this peer are allowed (Permission.allows) and gets the refusal, if any.
 *
 * - credentials: served to anyone; it is how a peer shows its certificate.
 * - hello (membership), fn (functions), blob: the requester's matching right.
 * - task: the requester's 'run' right (a client or admin starting work) or 'task' right (a worker
 *   that took over driving a run from its home set, and so places the run's tasks), and this
 *   peer's own 'task' right: a client is never given a task, even by a member.
 * - task-locate and home (a run's memo and lease): any member. The driver of a run may be a client
 *   or an admin and its home set are workers, so both sides of these hold different roles; what a
 *   home-set peer keeps is only ever the run's own memo.
 * - any other Rhizome protocol: members only (a new protocol is closed until it is listed here).
 */
import type { Action } from './index.ts'

export type RequestRefusal =
  | { type: 'not-a-member' }
  | { type: 'role', who: 'requester' | 'self', needs: readonly Action[] }

/** The protocol's name within `/rhizome/<network>/<name>/<version>`, or the whole id if not Rhizome's. */
export function protocolName (protocol: string): string {
  const parts = protocol.split('/')
  return parts.length === 5 && parts[0] === '' && parts[1] === 'rhizome' ? parts[3] : protocol
}

export const CREDENTIALS_PROTOCOL_NAME = 'credentials'

const REQUESTER_NEEDS: Readonly<Record<string, readonly Action[]>> = {
  hello: ['membership'],
  fn: ['function'],
  blob: ['blob'],
  task: ['run', 'task'],
  'task-locate': ['membership'],
  home: ['membership']
}
const SELF_NEEDS: Readonly<Record<string, readonly Action[]>> = { task: ['task'] }

/** Why a request on `protocol` is refused, or undefined if it is served. */
export function requestRefusal (protocol: string, allows: (who: 'requester' | 'self', action: Action) => boolean): RequestRefusal | undefined {
  const name = protocolName(protocol)
  if (name === CREDENTIALS_PROTOCOL_NAME) return undefined
  if (!allows('requester', 'membership')) return { type: 'not-a-member' }
  const needs = REQUESTER_NEEDS[name] ?? ['membership']
  if (!needs.some(action => allows('requester', action))) return { type: 'role', who: 'requester', needs }
  const selfNeeds = SELF_NEEDS[name]
  if (selfNeeds !== undefined && !selfNeeds.some(action => allows('self', action))) return { type: 'role', who: 'self', needs: selfNeeds }
  return undefined
}
