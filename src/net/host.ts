/**
 * The libp2p host every Rhizome peer runs (DESIGN.md §5–6): TCP and WebSockets, Noise, Yamux,
 * identify, ping, a Kademlia DHT on Rhizome's own protocol id, gossipsub, a bootstrap list and
 * mDNS. The DHT keeps private and loopback addresses (passthrough mapper) and runs as a server,
 * so it works on a LAN or a single machine, where the public-network defaults would time out.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { bootstrap } from '@libp2p/bootstrap'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { mdns } from '@libp2p/mdns'
import { ping } from '@libp2p/ping'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p } from 'libp2p'
import { VERSION } from '../model/version.ts'
import { ADMISSION_OPTIONS_DEFAULTS } from '../protocol/admission/index.ts'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { KadDHT } from '@libp2p/kad-dht'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Ping } from '@libp2p/ping'
import type { Registry } from 'prom-client'

export type HostServices = {
  identify: Identify
  ping: Ping
  /** Absent in a permissioned network: the DHT answers any peer, member or not. */
  dht?: KadDHT
  pubsub: GossipSub
}

export type Host = Libp2p<HostServices>

export interface HostOptions {
  privateKey: PrivateKey
  networkId: string
  listen: string[]
  bootstrap: string[]
  mdns: boolean
  /** Peers refused at every stage of a connection (misbehaving peers). */
  isBlocked: (peerId: PeerId) => boolean
  /** Connections kept open (default ADMISSION_OPTIONS_DEFAULTS.connectionsMax); connection admission
   *  (src/net/admission-service.ts) holds the peer to it. */
  connectionsMax?: number
  /** Asked before the handshake of each inbound connection, with its remote address: false
   *  refuses it (its address, or the whole table, is full of connections that may not be pruned). */
  admitsInbound?: (remoteAddr: Multiaddr) => boolean
  /** The node's metrics registry (src/node/metrics.ts): libp2p's own metrics go there. */
  metricsRegistry?: Registry
  /** Run the Kademlia DHT (default true). A permissioned network leaves it out: it would answer
   *  and route for peers without a certificate; functions are found by asking members instead. */
  dht?: boolean
  /** Gossipsub's application score of a peer (default 0 for all). Below GOSSIP_PUBLISH_THRESHOLD
   *  nothing is published to the peer; below GOSSIP_GRAYLIST_THRESHOLD nothing it sends is read. */
  gossipScore?: (peerId: string) => number
}

/** Gossipsub's own defaults, named: publishing stops below the first, reading below the second. */
export const GOSSIP_PUBLISH_THRESHOLD = -50
export const GOSSIP_GRAYLIST_THRESHOLD = -80

/**
 * libp2p's own limit sits this far above `connectionsMax`. libp2p refuses an inbound connection
 * once its table is at its limit, before Rhizome can choose whom to prune; with the headroom a new
 * connection gets in and admission closes the worst one. 16 covers libp2p's 10 handshakes in
 * flight at once (maxIncomingPendingConnections) plus connections aborted but not yet gone.
 */
export const CONNECTIONS_HEADROOM = 16

/** Largest gossip message accepted by gossipsub itself, before our own per-topic limits. */
export const GOSSIP_DATA_BYTES_MAX = 64 * 1024

export function dhtProtocol (networkId: string): string {
  return `/rhizome/${networkId}/kad/1.0.0`
}

export async function createHost (options: HostOptions): Promise<Host> {
  const peerDiscovery = []
  if (options.bootstrap.length > 0) peerDiscovery.push(bootstrap({ list: options.bootstrap, timeout: 100 }))
  if (options.mdns) peerDiscovery.push(mdns({ serviceTag: `rhizome-${options.networkId}` }))
  return await createLibp2p({
    privateKey: options.privateKey,
    // Identify tells other peers what this is: Rhizome and its version, not the libp2p underneath.
    nodeInfo: { name: 'rhizome', version: VERSION, userAgent: userAgent() },
    addresses: { listen: options.listen },
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery,
    // Into the node's own registry; the process metrics are the node's (collectDefaultMetrics there).
    // `preserveExistingMetrics` stays false: libp2p's metric cache is per process, and reusing it
    // would put a second node's libp2p metrics in the first node's registry.
    ...(options.metricsRegistry === undefined ? {} : { metrics: prometheusMetrics({ registry: options.metricsRegistry, collectDefaultMetrics: false }) }),
    connectionManager: { maxConnections: (options.connectionsMax ?? ADMISSION_OPTIONS_DEFAULTS.connectionsMax) + CONNECTIONS_HEADROOM },
    connectionGater: {
      denyInboundConnection: (maConn) => options.admitsInbound !== undefined && !options.admitsInbound(maConn.remoteAddr),
      denyDialPeer: (peerId) => options.isBlocked(peerId),
      denyInboundEncryptedConnection: (peerId) => options.isBlocked(peerId),
      denyOutboundEncryptedConnection: (peerId) => options.isBlocked(peerId)
    },
    services: hostServices(options)
  }) as Host
}

function hostServices (options: HostOptions): Record<string, (components: any) => unknown> {
  const { gossipScore } = options
  const services: Record<string, (components: any) => unknown> = {
    identify: identify(),
    ping: ping(),
    pubsub: gossipsub({
      allowPublishToZeroTopicPeers: true,
      emitSelf: false,
      maxInboundDataLength: GOSSIP_DATA_BYTES_MAX,
      // Weight 1: the application score is the score's whole say (gossipsub's default weight is 10).
      ...(gossipScore !== undefined ? { scoreParams: { appSpecificScore: gossipScore, appSpecificWeight: 1 }, scoreThresholds: { publishThreshold: GOSSIP_PUBLISH_THRESHOLD, graylistThreshold: GOSSIP_GRAYLIST_THRESHOLD } } : {})
    })
  }
  if (options.dht !== false) {
    services.dht = kadDHT({
      protocol: dhtProtocol(options.networkId),
      clientMode: false,
      peerInfoMapper: passthroughMapper
    })
  }
  return services
}

/** What identify advertises as this peer's agent: `rhizome/<version>`. */
export function userAgent (): string {
  return `rhizome/${VERSION}`
}
