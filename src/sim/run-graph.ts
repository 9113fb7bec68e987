/**
 * The "workflow code" of the run scenario: a random task graph drawn from a seed, the pure
 * functions its tasks call, a direct evaluation of it, and a deterministic script that plays it
 * as activations of the run driver — as the workflow sandbox would play real code.
 *
 * A graph is built from chains (a node on the last one), fan-outs (many nodes on one) and fan-ins
 * (one node on many), with some nodes repeating an earlier node exactly (the same call: the same
 * task id, which the driver runs once). Every node without dependants feeds the sink, through a
 * tree of fan-ins so no call has more than FAN_IN_MAX arguments; the workflow returns the sink's
 * value. A call that fails reaches the code as a rejection, which it catches as -1.
 */
import { assert } from '../model/errors.ts'
import type { Random } from '../protocol/random.ts'
import type { ActivationResult, CallCommand, Resolution, ResultRef } from '../protocol/run/index.ts'

export type GraphFn = 'inc' | 'dbl' | 'mix' | 'boom'
export interface GraphNode { fn: GraphFn, c: number, deps: number[] }

/** Arguments of one call at most (a wider fan-in is a tree of them). */
export const FAN_IN_MAX = 16
/** Values stay below this prime, so task ids (which spell the arguments) stay short. */
const MODULUS = 1_000_003

/** The functions the workers run: pure, so a retry or a speculative copy computes the same. */
export function work (fn: GraphFn, args: readonly number[]): { ok: true, value: number } | { ok: false } {
  let sum = 0
  for (const a of args) sum = (sum + a) % MODULUS
  if (fn === 'inc') return { ok: true, value: (sum + 1) % MODULUS }
  if (fn === 'dbl') return { ok: true, value: (sum * 2) % MODULUS }
  if (fn === 'mix') return { ok: true, value: (sum * 31 + 7) % MODULUS }
  return sum % 5 === 0 ? { ok: false } : { ok: true, value: sum }
}

/** Task ids are content ids in Rhizome; here the call's text does the same job. */
export function graphTaskId (fn: GraphFn, args: readonly number[]): string {
  return `${fn}(${args.join(',')})`
}

export function argsOf (node: GraphNode, values: readonly number[]): number[] {
  return [node.c, ...node.deps.map(d => values[d])]
}

/** What the workflow returns, evaluated directly. `failedIds`: tasks that failed for reasons
 *  outside the functions (every retry used up during faults), which the code sees as -1 too. */
export function evaluateGraph (graph: readonly GraphNode[], failedIds: ReadonlySet<string> = new Set()): number {
  const values: number[] = []
  for (const node of graph) {
    const args = argsOf(node, values)
    const r = failedIds.has(graphTaskId(node.fn, args)) ? { ok: false as const } : work(node.fn, args)
    values.push(r.ok ? r.value : -1)
  }
  return values[values.length - 1]
}

/** Draw a graph of about `size` nodes (the sink tree adds a few). */
export function drawGraph (rng: Random, size: number): GraphNode[] {
  assert(size >= 1, 'a graph has a node')
  const fns: GraphFn[] = ['inc', 'dbl', 'mix', 'boom']
  const graph: GraphNode[] = []
  const add = (deps: number[]): void => { graph.push({ fn: rng.pick(fns), c: rng.int(0, 999_999), deps }) }
  const recent = (): number => Math.max(0, graph.length - 1 - rng.int(0, Math.min(graph.length - 1, 50)))
  const roots = rng.int(1, 3)
  for (let i = 0; i < roots && graph.length < size; i++) add([])
  while (graph.length < size) {
    const shape = rng.int(0, 9)
    if (shape <= 2) add([graph.length - 1]) // chain
    else if (shape <= 5) { // fan-out
      const from = recent()
      const width = rng.int(2, 12)
      for (let i = 0; i < width && graph.length < size; i++) add([from])
    } else if (shape <= 8) { // fan-in
      const k = rng.int(2, Math.min(FAN_IN_MAX, graph.length + 1))
      add([...new Set(Array.from({ length: k }, recent))].sort((a, b) => a - b))
    } else { // the same call again
      const copy = graph[rng.int(0, graph.length - 1)]
      graph.push({ fn: copy.fn, c: copy.c, deps: [...copy.deps] })
    }
  }
  return withSink(rng, graph)
}

/** Fan every node without dependants into one sink, FAN_IN_MAX at a time. */
function withSink (rng: Random, graph: GraphNode[]): GraphNode[] {
  const hasDependant = new Uint8Array(graph.length)
  for (const node of graph) for (const d of node.deps) hasDependant[d] = 1
  let level: number[] = []
  for (let i = 0; i < graph.length; i++) if (hasDependant[i] === 0) level.push(i)
  do {
    const next: number[] = []
    for (let i = 0; i < level.length; i += FAN_IN_MAX) {
      next.push(graph.length)
      graph.push({ fn: 'mix', c: rng.int(0, 999_999), deps: level.slice(i, i + FAN_IN_MAX) })
    }
    level = next
  } while (level.length > 1)
  return graph
}

/** The longest chain of dependencies (nodes on it). */
export function graphDepth (graph: readonly GraphNode[]): number {
  const depth: number[] = []
  let max = 0
  for (const node of graph) {
    let d = 1
    for (const dep of node.deps) d = Math.max(d, depth[dep] + 1)
    depth.push(d)
    max = Math.max(max, d)
  }
  return max
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function encodeValue (value: number): Uint8Array {
  return encoder.encode(String(value))
}

export function decodeValue (bytes: Uint8Array): number {
  return Number(decoder.decode(bytes))
}

/**
 * The workflow code: calls each node once all its inputs resolved (in node order within an
 * activation), passes the results of its inputs as Refs (their CIDs, for locality), catches a
 * failed call as -1 and returns when the sink resolves. O(work) per activation: counts of
 * unresolved inputs, not a scan of the graph.
 */
export class GraphScript {
  private readonly graph: readonly GraphNode[]
  private readonly values: number[]
  private readonly cids: Array<string | undefined>
  private readonly waitingOn: Int32Array
  private readonly dependants: number[][]
  private readonly seqNode = new Map<number, number>()
  private ready: number[] = []
  private nextSeq = 0
  private started = false

  constructor (graph: readonly GraphNode[]) {
    this.graph = graph
    this.values = new Array<number>(graph.length)
    this.cids = new Array<string | undefined>(graph.length)
    this.waitingOn = new Int32Array(graph.length)
    this.dependants = graph.map(() => [])
    graph.forEach((node, i) => {
      this.waitingOn[i] = node.deps.length
      for (const d of node.deps) this.dependants[d].push(i)
      if (node.deps.length === 0) this.ready.push(i)
    })
  }

  activate (resolutions: readonly Resolution[]): ActivationResult {
    assert(this.started || resolutions.length === 0, 'the first activation delivers nothing')
    this.started = true
    const sink = this.graph.length - 1
    for (const r of resolutions) {
      const node = this.seqNode.get(r.seq)
      assert(node !== undefined, `a resolution for seq ${r.seq}, which this code issued`)
      this.seqNode.delete(r.seq)
      this.values[node] = r.ok ? decodeValue(resultBytes(r.result)) : -1
      if (r.ok) this.cids[node] = r.result.cid
      if (node === sink) return { commands: [], done: { ok: true, value: encodeValue(this.values[node]) } }
      for (const dependant of this.dependants[node]) {
        this.waitingOn[dependant] -= 1
        if (this.waitingOn[dependant] === 0) this.ready.push(dependant)
      }
    }
    const issue = this.ready.sort((a, b) => a - b)
    this.ready = []
    return { commands: issue.map(i => this.call(i)) }
  }

  private call (i: number): CallCommand {
    const node = this.graph[i]
    const args = argsOf(node, this.values)
    const seq = this.nextSeq++
    this.seqNode.set(seq, i)
    const inputs = [...new Set(node.deps.flatMap(d => this.cids[d] ?? []))]
    return { type: 'call', seq, taskId: graphTaskId(node.fn, args), fn: node.fn, export: 'default', args: encoder.encode(JSON.stringify(args)), ref: false, inputs }
  }
}

function resultBytes (result: ResultRef): Uint8Array {
  assert(result.bytes !== undefined, 'simulated results travel inline')
  return result.bytes
}
