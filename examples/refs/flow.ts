// Results by reference: `npx rhizome run examples/refs/flow.ts report 1000000` prints 1000000.
// render's bytes stay on the peer that made them; size's peer fetches them by CID from there,
// and the driver only ever holds the Ref.
import { workflow, ref, remote } from '@rhizome-net/rhizome'
import { render, size } from './fns.ts'

export const report = workflow(async (n: number) => {
  const image = await ref(render)(n)
  return await remote(size)(image)
})
