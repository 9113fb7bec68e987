/**
 * Count work without a clock: V8's precise block coverage (the inspector's Profiler domain)
 * counts how many times each block of code ran. The sum over the decoder's code — Rhizome's own
 * files and the CBOR libraries — is a deterministic measure of the steps a call took, so a cost
 * test can assert that twice the input costs about twice the steps, not four times.
 */
import { Session } from 'node:inspector/promises'

/** Code whose blocks are counted: Rhizome's sources and the dag-cbor decoder beneath them. */
const COUNTED = [/\/src\//, /\/node_modules\/cborg\//, /\/node_modules\/@ipld\/dag-cbor\//, /\/node_modules\/multiformats\//]

let session: Session | undefined

async function start (): Promise<Session> {
  if (session !== undefined) return session
  session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true })
  return session
}

/** Blocks executed by `fn` in the counted code. */
export async function blocksExecuted (fn: () => unknown): Promise<number> {
  const s = await start()
  await s.post('Profiler.takePreciseCoverage') // resets the counters
  fn()
  const { result } = await s.post('Profiler.takePreciseCoverage')
  let blocks = 0
  for (const script of result) {
    if (!COUNTED.some(pattern => pattern.test(script.url))) continue
    for (const fnCoverage of script.functions) {
      for (const range of fnCoverage.ranges) blocks += range.count
    }
  }
  return blocks
}

export async function stopCounting (): Promise<void> {
  if (session === undefined) return
  await session.post('Profiler.stopPreciseCoverage')
  await session.post('Profiler.disable')
  session.disconnect()
  session = undefined
}
