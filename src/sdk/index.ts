/**
 * What programs import from Rhizome: a typed client of a running peer. Workflows
 * (`workflow()`, remote function proxies) join it as they are built.
 *
 * ```ts
 * import { connect } from '@rhizome-net/rhizome'
 * const peer = await connect({ dataDir: '.rhizome/devnet/peer-1' })
 * const { value } = await peer.call({ fn: FUNCTION_ID, export: 'double', args: [21] })
 * ```
 */
export { RhizomeClient, ApiUnreachableError, ApiTimeoutError, ApiAbortedError, ApiAnswerError, API_TIMEOUT_MS_DEFAULT } from '../api/client.ts'
export type { ClientOptions, RequestOptions } from '../api/client.ts'
export { connect, readToken, PeerNotRunningError } from '../api/connect.ts'
export type { ConnectOptions } from '../api/connect.ts'
export type { BlobPutResult, CallRequest, CallResult, DeployResult, FailureData, FunctionInfo, FunctionOrigin, NodeStatus, PeerState, PeerView, TaskTimings } from '../api/types.ts'
export { RhizomeError } from '../model/errors.ts'
export { VERSION } from '../model/version.ts'
export { workflow, remote, ref, isWorkflow, sleep, signal, continueAsNew } from './workflow.ts'
export type { Ref, Refable, Workflow } from './workflow.ts'
