import { ConfigError } from '../../model/errors.ts'
import { configFlags, configHelp, configOptions, resolveConfig } from '../../node/index.ts'
import { CliError, EXIT_OK, EXIT_USAGE } from '../command.ts'
import type { Command } from '../command.ts'
import type { NodeConfig } from '../../node/index.ts'

export const nodeStart: Command = {
  // The options and their help come from the config field table, the one place a setting is defined.
  usage: `rhizome node start [options]\n\n${configHelp()}`,
  options: configOptions(),
  positionals: [0, 0],
  async run ({ values, env, signal, print }) {
    let config: NodeConfig
    try {
      config = resolveConfig({
        env,
        onWarning: message => { process.stderr.write(`warning: ${message}\n`) },
        flags: configFlags(values)
      })
    } catch (err) {
      if (err instanceof ConfigError) throw new CliError('ERR_CONFIG', err.message, { exitCode: EXIT_USAGE, hint: err.hint ?? 'see `rhizome node start --help`', cause: err })
      throw err
    }
    // The peer itself (libp2p, SQLite, the sandbox) is loaded only now that it is to run.
    const { createLogger, startNode } = await import('../../node/index.ts')
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
