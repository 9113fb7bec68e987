/**
 * The shell around the admission state machine (src/protocol/admission): feeds it libp2p's
 * connection events, the stream count of every connection once a sweep, and hello results; closes
 * the connections its `poll()` names; re-arms one timer.
 *
 * libp2p refuses an inbound connection outright once its own table is at `maxConnections`, before
 * anyone can choose whom to prune — that is how a flood of idle connections locked honest peers
 * out. So the host runs libp2p with headroom above `connectionsMax` (see host.ts) and admission
 * keeps the real limit: each new connection is let in, and the worst one goes.
 */
import { Lifecycle } from './lifecycle.ts'
import type { Logger } from '../model/log.ts'
import type { Admission, ConnectionInfo } from '../protocol/admission/index.ts'
import type { Host } from './host.ts'
import type { Connection } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** Stream counts are sampled this often; an idle limit of minutes needs no finer grain, and a
 *  hello deadline fires at most this late. */
const SWEEP_MS = 1000
/** Timer floor: never spin faster than this even if a deadline is already due. */
const TICK_MS_MIN = 10
/** A closed connection that is not gone after this long is aborted: its slot must come free. */
const CLOSE_TIMEOUT_MS = 1000

/** The remote IP address of a multiaddr (no port), and whether it is loopback. */
export function remoteAddressOf (addr: Multiaddr): { address: string | undefined, loopback: boolean } {
  const ip = addr.getComponents().find(c => c.name === 'ip4' || c.name === 'ip6')
  if (ip?.value === undefined) return { address: undefined, loopback: false }
  const address = ip.value.toLowerCase()
  const loopback = address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.')
  return { address, loopback }
}

/** What admission needs of libp2p: the open connections and their open/close events. */
export type AdmissionHost = Pick<Host, 'getConnections' | 'addEventListener' | 'removeEventListener'>

export interface AdmissionServiceComponents {
  host: AdmissionHost
  admission: Admission
  log: Logger
  now: () => number
  /** The peer is alive in membership: its connections start proven. */
  isAlive: (peerId: string) => boolean
  /** The peer's stored score (0 if unknown). */
  scoreOf: (peerId: string) => number
}

export class AdmissionService {
  private readonly init: AdmissionServiceComponents
  private readonly lifecycle = new Lifecycle('connection admission')
  private timer: ReturnType<typeof setTimeout> | undefined
  private stopped = false
  private readonly onOpen: (evt: CustomEvent<Connection>) => void
  private readonly onClose: (evt: CustomEvent<Connection>) => void

  constructor (components: AdmissionServiceComponents) {
    this.init = components
    this.onOpen = (evt) => { this.open(evt.detail) }
    this.onClose = (evt) => {
      this.init.admission.handleClose(evt.detail.id)
    }
  }

  async start (): Promise<void> {
    this.stopped = false
    this.lifecycle.start()
    const { host } = this.init
    // Connections already open first, then the listeners: no event can fire in between.
    for (const connection of host.getConnections()) this.open(connection)
    host.addEventListener('connection:open', this.onOpen)
    host.addEventListener('connection:close', this.onClose)
    this.tick()
  }

  /** Stop watching connections; graceful closes still in flight are cut short. */
  async stop (): Promise<void> {
    this.stopped = true
    this.lifecycle.stop()
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.init.host.removeEventListener('connection:open', this.onOpen)
    this.init.host.removeEventListener('connection:close', this.onClose)
  }

  /** The peer swapped a valid hello, or turned alive in membership. */
  handleProven (peerId: string): void {
    if (this.stopped) return
    this.init.admission.handleProven(peerId)
    this.drain()
  }

  /** The peer's score changed (a violation). */
  handleScore (peerId: string, score: number): void {
    if (this.stopped) return
    this.init.admission.handleScore(peerId, score)
    this.drain()
  }

  private open (connection: Connection): void {
    if (this.stopped || connection.status !== 'open') return
    const peerId = connection.remotePeer.toString()
    const info: ConnectionInfo = { id: connection.id, peerId, ...remoteAddressOf(connection.remoteAddr) }
    this.init.admission.handleOpen(info, { proven: this.init.isAlive(peerId), score: this.init.scoreOf(peerId) }, this.init.now())
    this.drain()
  }

  private tick (): void {
    if (this.stopped) return
    const { admission, host } = this.init
    const now = this.init.now()
    for (const connection of host.getConnections()) admission.handleStreams(connection.id, connection.streams.length, now)
    admission.handleTick(now)
    this.drain()
  }

  /** Carry out the machine's decisions; the one place the timer is re-armed. */
  private drain (): void {
    const { admission, host, log } = this.init
    let byId: Map<string, Connection> | undefined
    for (let output = admission.poll(); output !== undefined; output = admission.poll()) {
      byId ??= new Map(host.getConnections().map(c => [c.id, c]))
      const connection = byId.get(output.id)
      log.debug('closing connection', { peer: output.peerId, reason: output.reason })
      if (connection !== undefined) this.close(connection, output.reason)
    }
    if (this.timer !== undefined) clearTimeout(this.timer)
    const now = this.init.now()
    const waitMs = Math.min(SWEEP_MS, Math.max(TICK_MS_MIN, (admission.nextTimeoutMs() ?? Infinity) - now))
    this.timer = setTimeout(() => this.tick(), waitMs)
    this.timer.unref?.()
  }

  /** An idle connection may still carry a last message: close it gracefully, within a bound (and
   *  not past stop()). The others have shown nothing worth waiting for, and their slot is wanted
   *  now: abort them. */
  private close (connection: Connection, reason: string): void {
    if (reason !== 'idle') {
      connection.abort(new Error(`connection closed by admission: ${reason}`))
      return
    }
    const operation = this.lifecycle.operation({ timeoutMs: CLOSE_TIMEOUT_MS })
    connection.close({ signal: operation.signal })
      .catch((err: Error) => { connection.abort(err) })
      .finally(() => { operation.release() })
  }
}
