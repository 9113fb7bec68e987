/**
 * Functions: deploy once, run on any peer. Bundle a JS/TS module (bundleFunctions) or check a
 * wasm module (packageWasm), then describe it with a manifest (createManifest); the manifest's
 * dag-cbor bytes (encodeManifest) hash to the function id (manifestCid). Peers that receive a
 * manifest check it with decodeManifest; the task service runs only the exports it lists, in the
 * sandbox, under the limits it carries.
 */

export { bundleFunctions } from './bundle.ts'
export type { Bundle, BundleOptions } from './bundle.ts'
export { packageWasm } from './wasm.ts'
export type { WasmPackage, WasmPackageOptions } from './wasm.ts'
export {
  FUNCTION_MANIFEST_VERSION, MANIFEST_BYTES_MAX, MANIFEST_KINDS, FUNCTION_NAME_LENGTH_MAX, EXPORTS_MAX, EXPORT_NAME_LENGTH_MAX,
  codeCid, createManifest, encodeManifest, decodeManifest, manifestCid, validateManifest
} from './manifest.ts'
export type { FunctionManifest, ManifestInput, ManifestKind } from './manifest.ts'
export { BundleError, NoExportsError, NoWorkflowsError, InvalidManifestError, WorkflowNotCallableError } from './errors.ts'
// The limits a manifest carries, for the CLI, which may not reach into the sandbox itself.
export { CODE_BYTES_MAX, DEFAULT_LIMITS, LIMITS_CEILING, LIMITS_FLOOR, limitsProblem } from '../sandbox/index.ts'
export type { SandboxLimits } from '../sandbox/index.ts'
export { bundleWorkflow, SDK_SPECIFIERS, WORKFLOW_SDK_EXPORTS, WORKFLOW_FUNCTION_MODULES_MAX } from './workflow-bundle.ts'
export type { DeployedFunctionModule, WorkflowBundle, WorkflowBundleOptions } from './workflow-bundle.ts'
