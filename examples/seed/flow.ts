// The seed example's workflow: `npx rhizome run examples/seed/flow.ts A 5` prints 14.
// B, C and D are imported from a module of functions, so they run as remote tasks — three peers
// at the same time under Promise.all. Code written here runs in the driver, deterministically.
import { workflow } from '@rhizome-net/rhizome'
import { B, C, D } from './fns.ts'

export const A = workflow(async (x: number) => {
  const [b, c, d] = await Promise.all([B(x), C(x), D(x)])
  return b + c - d
})
