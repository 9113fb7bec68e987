import { createLogger, resolveConfig, startNode } from '../../node/index.ts'
import { ConfigError } from '../../model/errors.ts'
import { CliError, EXIT_OK, EXIT_USAGE } from '../command.ts'
import type { Command } from '../command.ts'
import type { NodeConfig } from '../../node/index.ts'

export const nodeStart: Command = {
  name: 'node start',
  summary: 'start a peer in the foreground (Ctrl-C stops it)',
  usage: `rhizome node start [--data-dir DIR] [--listen ADDR...] [--bootstrap ADDR...] [--api-port N]
                   [--api-host HOST] [--no-mdns] [--network-id ID] [--slots N] [--log-level LEVEL]
                   [--announce-interval-ms N] [--suspect-after-ms N] [--gone-after-ms N]
                   [--connections-max N] [--connections-per-address-max N] [--connections-limit-loopback]

  --data-dir DIR        identity, database and blobs (default ~/.rhizome, or RHIZOME_DATA_DIR)
  --listen ADDR         multiaddr to listen on; repeat for several (default TCP and WebSockets on 0.0.0.0)
  --bootstrap ADDR      a peer to join through, /ip4/…/tcp/…/p2p/12D3Koo…; repeat for several
  --api-port N          port of the local HTTP API (default 0: any free port, written to DIR/api.json)
  --api-host HOST       loopback address of the HTTP API: 127.0.0.1 (default), ::1 or localhost.
                        The API has no authentication, so other hosts are refused; tunnel it instead.
  --no-mdns             do not look for peers on the LAN
  --network-id ID       peers only talk to peers of the same network (default rhizome)
  --slots N             tasks this peer runs at once (default: CPU cores)
  --log-level LEVEL     debug, info, warn, error or silent (default info); logs are JSON lines on stderr
  --connections-max N   connections kept open (default 100); half are kept for peers that completed hello
  --connections-per-address-max N
                        connections from one remote IP address (default 8; loopback is exempt)
  --connections-limit-loopback
                        apply the per-address limit to loopback too (for tests of that limit)
Every flag can also be set as RHIZOME_<NAME> (e.g. RHIZOME_API_PORT, RHIZOME_SLOTS) or in DIR/config.json
(keys: listen, bootstrap, apiHost, apiPort, mdns, logLevel, networkId, slotsMax, announceIntervalMs, ...).`,
  options: {
    'data-dir': { type: 'string' },
    listen: { type: 'string', multiple: true },
    bootstrap: { type: 'string', multiple: true },
    'api-port': { type: 'string' },
    'api-host': { type: 'string' },
    mdns: { type: 'boolean' },
    'network-id': { type: 'string' },
    slots: { type: 'string' },
    'log-level': { type: 'string' },
    'announce-interval-ms': { type: 'string' },
    'suspect-after-ms': { type: 'string' },
    'gone-after-ms': { type: 'string' },
    'connections-max': { type: 'string' },
    'connections-per-address-max': { type: 'string' },
    'connections-limit-loopback': { type: 'boolean' }
  },
  positionals: [0, 0],
  async run ({ values, env, signal, print }) {
    let config: NodeConfig
    try {
      config = resolveConfig({
        env,
        onWarning: message => { process.stderr.write(`warning: ${message}\n`) },
        flags: {
          dataDir: values['data-dir'],
          listen: values.listen,
          bootstrap: values.bootstrap,
          apiPort: values['api-port'],
          apiHost: values['api-host'],
          mdns: values.mdns,
          networkId: values['network-id'],
          slotsMax: values.slots,
          logLevel: values['log-level'],
          announceIntervalMs: values['announce-interval-ms'],
          suspectAfterMs: values['suspect-after-ms'],
          goneAfterMs: values['gone-after-ms'],
          connectionsMax: values['connections-max'],
          connectionsPerAddressMax: values['connections-per-address-max'],
          connectionsLimitLoopback: values['connections-limit-loopback']
        }
      })
    } catch (err) {
      if (err instanceof ConfigError) throw new CliError('ERR_CONFIG', err.message, { exitCode: EXIT_USAGE, hint: err.hint ?? 'see `rhizome node start --help`', cause: err })
      throw err
    }
    // Functions see the process's time zone through Date and Intl: pin it, so a task gives the
    // same result on every peer whatever the host's zone (the sandbox refuses the clock itself).
    process.env.TZ = 'UTC'
    const log = createLogger('rhizome', { level: config.logLevel })
    const node = await startNode(config, log)
    print([
      `Rhizome peer ${node.peerId.toString()}`,
      `  network    ${config.networkId}`,
      `  data dir   ${config.dataDir}`,
      `  api        ${node.apiUrl()}`,
      ...node.addrs().map((addr, i) => `  ${i === 0 ? 'listening' : '         '}  ${addr}`),
      ''
    ].join('\n'))
    await new Promise<void>(resolve => {
      if (signal.aborted) resolve()
      else signal.addEventListener('abort', () => resolve(), { once: true })
    })
    await node.stop()
    return { exitCode: EXIT_OK }
  }
}
