/**
 * The command table: names and summaries only, so `rhizome --help` and the dispatch in main.ts
 * load nothing else. Each command's module is imported when that command runs (or its help is
 * asked for): `status` pays for an HTTP client, `node start` for libp2p, `deploy` for esbuild.
 */
import type { CommandEntry } from './command.ts'

export const COMMANDS: CommandEntry[] = [
  { name: 'node start', summary: 'start a peer in the foreground (Ctrl-C stops it)', load: async () => (await import('./commands/node-start.ts')).nodeStart },
  { name: 'status', summary: 'show this peer: id, addresses, peers, uptime', load: async () => (await import('./commands/status.ts')).status },
  { name: 'peers', summary: 'list the peers this peer knows, with their state and capacity', load: async () => (await import('./commands/peers.ts')).peers },
  { name: 'deploy', summary: 'bundle a module of functions, content-address it, and replicate it to peers', load: async () => (await import('./commands/deploy.ts')).deploy },
  { name: 'functions', summary: 'list the functions this peer holds', load: async () => (await import('./commands/functions.ts')).functionsList },
  { name: 'call', summary: 'run one task: call an export of a deployed function with JSON arguments', load: async () => (await import('./commands/call.ts')).call },
  { name: 'check', summary: 'find deadlocks, lost parallelism and nondeterminism in workflow modules, before anything runs', load: async () => (await import('./commands/check.ts')).check },
  { name: 'run', summary: 'run a workflow: deploy it and the functions it imports, start it, show its progress and result', load: async () => (await import('./commands/run.ts')).run },
  { name: 'runs', summary: 'list the workflow runs this peer drives', load: async () => (await import('./commands/runs.ts')).runs },
  { name: 'run-status', summary: 'show a run: status, result, which peer ran which task; --wait follows it to its end', load: async () => (await import('./commands/run-status.ts')).runStatus },
  { name: 'signal', summary: 'send a workflow run a signal: its signal(NAME) gets the JSON value', load: async () => (await import('./commands/signal.ts')).signal },
  { name: 'cancel', summary: 'cancel a workflow run and its tasks in flight', load: async () => (await import('./commands/cancel.ts')).cancel },
  { name: 'attestations', summary: 'show who computed a verified task, who agreed and who disagreed', load: async () => (await import('./commands/attestations.ts')).attestations },
  { name: 'reputation', summary: 'list this peer\'s record of each peer: agreements, disagreements, lies, score, ban', load: async () => (await import('./commands/reputation.ts')).reputation },
  { name: 'sql', summary: 'one read-only SQL query over this peer\'s history: runs, tasks, attempts, peers, logs…', load: async () => (await import('./commands/sql.ts')).sql },
  { name: 'logs', summary: 'show this peer\'s recent log records; --follow prints new ones as they come', load: async () => (await import('./commands/logs.ts')).logs },
  { name: 'dashboard', summary: 'print (or --open) the address of the peer\'s live dashboard in the browser', load: async () => (await import('./commands/dashboard.ts')).dashboard },
  { name: 'blob put', summary: 'store a file as a content-addressed blob on the local peer; prints its CID', load: async () => (await import('./commands/blob.ts')).blobPut },
  { name: 'blob get', summary: 'read a blob by CID from the local peer (to stdout, or --out FILE)', load: async () => (await import('./commands/blob.ts')).blobGet },
  { name: 'network create', summary: 'make a permissioned network: an admin key and the network id', load: async () => (await import('./commands/network.ts')).networkCreate },
  { name: 'network admit', summary: 'sign a membership certificate for a peer (roles, expiry) with the admin key', load: async () => (await import('./commands/network.ts')).networkAdmit },
  { name: 'network revoke', summary: 'revoke a peer or a certificate: sign it, keep it, hand it to the local peer to enforce and gossip', load: async () => (await import('./commands/network.ts')).networkRevoke },
  { name: 'network status', summary: 'show the network as this peer enforces it: mode, members, revocations, refusals', load: async () => (await import('./commands/network.ts')).networkStatus },
  { name: 'devnet', summary: 'start a local network of peers in separate processes (what `npm start` runs)', load: async () => (await import('./commands/devnet.ts')).devnet }
]
