import type { FlowGraph, ReadFile } from './types.ts'
export function workflowGraph (_fileName: string, _text: string, exportName: string, _readFile?: ReadFile): FlowGraph { return { workflow: exportName, nodes: [], edges: [] } }
export function graphText (_g: FlowGraph): string { return '' }
export function graphMermaid (_g: FlowGraph): string { return '' }
export function graphDot (_g: FlowGraph): string { return '' }
