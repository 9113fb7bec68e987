/**
 * A permissioned network on a simulated network: every peer runs the real permission machine
 * (src/protocol/permission) behind a small shell, as src/net does: credentials are exchanged on
 * connect (hello / ack, retried until answered), requests for code and blobs are answered only
 * where the answering peer's machine allows, and the driver (node 0, also the admin) places tasks
 * only where its own machine allows. Peers are:
 *  - members holding a certificate from the admin (roles worker, client or both; some expire
 *    during the run), who may crash and restart with what they stored (persist-* / forget-*);
 *  - outsiders: no certificate; a tampered one (signature no longer matches: signatureValid
 *    false), one of another network (signed by its own admin), one that expired, or a member's
 *    certificate presented by another peer (refused by the shell: the certificate names someone
 *    else). Tampering outsiders also gossip a forged revocation of a member.
 *  - in some seeds, one or two delegated admins: members whose founder-signed certificate has role
 *    admin, who sign further members' certificates with their peer key (sent with the admin's own
 *    certificate, as the real credentials exchange does; now and then without it, so a peer that
 *    never met the admin must refuse `unknown-issuer`) and issue revocations of their own. One of
 *    their members is made admin by them (a sub-admin): its signatures are depth 2, never honoured.
 *  - outsiders that sign for themselves: a certificate signed by a member that is not an admin,
 *    a self-signed admin certificate, and a depth-2 one signed by the sub-admin (which also gossips
 *    a revocation it signed).
 * The admin revokes one or two members (by peer or by serial) during the fault window, sometimes a
 * delegated admin (cutting off everything it signed); the
 * revocation spreads by gossip over a lossy, duplicating network: every peer re-sends the
 * revocations it holds to the members it allows, every GOSSIP_EVERY_TICKS ticks.
 *
 * Signatures are modelled, not computed (the simulator does no crypto): a signature is the text
 * of the signed fields and the signer's key name, so a changed field no longer "verifies", and
 * only the two founding keys of the scenario and the peers' own keys (`key-pN`) sign.
 *
 * Invariants, checked every time a peer gives something or refuses a request, and at samples:
 *  - a peer outside the network (no valid certificate now) is never given a task, code or data;
 *    a task goes only to a worker;
 *  - once a revocation naming a peer has reached a member, that member gives the peer nothing
 *    (a delegated admin's names only what that admin signed: one naming a founder-signed member,
 *    or another admin's, takes nothing away, and that member must not be refused for it);
 *  - no member is refused: a genuine certificate, valid and not revoked where it arrives, is
 *    admitted, and a member whose certificate a peer admitted is allowed what its roles allow;
 *  - the cascade: a peer whose certificate a delegated admin signed is given nothing by a member
 *    that knows the admin is revoked or expired; a depth-2 certificate or revocation is never
 *    honoured; what a delegated admin revoked is still refused after the admin is cut off; no member
 *    (founder-signed or signed by an admin not cut off, valid, not revoked) is refused;
 *  - the machines' own invariants hold;
 *  - liveness: after the faults end, every running member holds every revocation the founder
 *    issued (and every one by a delegated admin still in force) and allows every other running
 *    member.
 */
import { createPermission } from '../protocol/permission/index.ts'
import { ACTIONS_BY_ROLE, CERTIFICATE_VALIDITY_MS_MAX } from '../protocol/permission/constants.ts'
import type { Action, Certificate, Permission, PermissionOptions, Revocation, Role } from '../protocol/permission/index.ts'
import { createRandom } from '../protocol/random.ts'
import type { Random } from '../protocol/random.ts'
import { SimNetwork } from './network.ts'
import type { NetworkStats } from './network.ts'
import { checkTimes, SimWorld } from './world.ts'

/** Each peer's loop: timers, hello retries, a request, gossip. Half a second, as membership's announce at its fastest setting. */
const TICK_MS = 500
/** Gossip of held revocations every 2 ticks: a second, so convergence after the faults takes seconds. */
const GOSSIP_EVERY_TICKS = 2
/** An outsider gives up after this many unanswered hellos (members retry until answered). */
const OUTSIDER_HELLOS_MAX = 5
/** After the faults end, this long to converge: a restarted peer is back within a tick, a
 *  revocation is re-gossiped every second; fifteen seconds is many rounds of both. */
const SETTLE_MS = 15_000
/** Outsiders' certificates that expired did so here; hellos start after it. */
const EXPIRED_AT_MS = 1000
const NETWORK = 'rz-simulated-network'
const OTHER_NETWORK = 'rz-another-network'
const ADMIN_KEY = 'admin-key'
const OTHER_ADMIN_KEY = 'other-admin-key'
const DRIVER = 0
/** A delegated member's hello leaves out its admin's certificate this often: a peer that has not
 *  met the admin must then refuse it `unknown-issuer`, and admit it at a later hello that has it. */
const ISSUER_OMITTED_RATE = 0.2
/** A peer's own key, as an issuer string (src/net derives the peer id from the raw key). */
const peerKey = (node: number): string => `key-p${node}`
const issuerPeerId = (issuer: string): string | undefined => /^key-p\d+$/.test(issuer) ? issuer.slice(4) : undefined

export type PeerKind = 'member' | 'none' | 'tampered' | 'wrong-network' | 'expired' | 'stolen' | 'not-admin' | 'self-signed' | 'depth-2'
const OUTSIDER_KINDS: readonly PeerKind[] = ['none', 'tampered', 'wrong-network', 'expired', 'stolen', 'not-admin', 'self-signed', 'depth-2']

export interface PeerPlan {
  kind: PeerKind
  roles: Role[]
  notAfter: number
  startMs: number
  /** The node whose peer key signed the certificate (a delegated admin for a member; for an
   *  outsider a member that is no admin, the sub-admin, or itself); none: the founding key. */
  issuer?: number
}

export interface PermissionScenario {
  seed: number
  /** Node 0 is the admin and driver (a member). */
  peers: PeerPlan[]
  /** `issuer`: DRIVER (the founding key) or a delegated admin (its peer key). */
  revocations: Array<{ atMs: number, target: number, by: 'peer' | 'serial', issuer: number }>
  /** The sub-admin (made admin by a delegated admin) signs a revocation: depth 2, refused everywhere. */
  depth2Revocation: { atMs: number, target: number } | undefined
  crashes: Array<{ node: number, atMs: number, downMs: number }>
  delayMinMs: number
  delayMaxMs: number
  lossRate: number
  duplicateRate: number
  faultsEndMs: number
  endMs: number
  checkEveryMs: number
  traceLinesKept: number
}

export interface PermissionHooks {
  /** Replace the machine (tests wrap the real one to show the invariants catch a broken one). */
  permission?: (options: PermissionOptions) => Permission
}

export interface PermissionCounts {
  given: number
  tasks: number
  withheld: number
  refusedHellos: number
  revocationsIssued: number
  revocationsReached: number
  forgedRefused: number
  revokedOutputs: number
  expiredOutputs: number
  crashes: number
  /** Delegated certificates admitted, revocations delegated admins issued, delegated certificates
   *  cut off with their admin (`revoked` outputs), `unknown-issuer` refusals of members' certificates
   *  and delegated revocations (admin not met yet, or cut off), depth-2 certificates and revocations refused. */
  delegatedAdmitted: number
  delegatedRevocations: number
  cascadeCutOff: number
  unknownIssuer: number
  depth2Refused: number
}

export interface PermissionScenarioResult {
  seed: number
  ok: boolean
  violations: string[]
  violationCount: number
  members: number
  outsiders: Record<string, number>
  counts: PermissionCounts
  messages: NetworkStats
  simEvents: number
  traceHash: string
  trace: readonly string[]
  /** How much of SETTLE_MS the revocations took to reach every running member after the faults. */
  boundUsed: number | undefined
}

export function permissionScenarioFromSeed (seed: number): PermissionScenario {
  const rng = createRandom(seed)
  const members = rng.int(3, 9)
  const outsiders = rng.int(2, 5)
  const faultsEndMs = rng.int(8_000, 20_000)
  const endMs = faultsEndMs + SETTLE_MS
  const peers: PeerPlan[] = [{ kind: 'member', roles: ['admin'], notAfter: CERTIFICATE_VALIDITY_MS_MAX, startMs: 0 }]
  for (let i = 1; i < members; i++) {
    const roles: Role[] = rng.pick([['worker'], ['worker'], ['client'], ['client', 'worker']])
    peers.push({ kind: 'member', roles, notAfter: rng.chance(0.2) ? rng.int(4_000, endMs - 1) : CERTIFICATE_VALIDITY_MS_MAX, startMs: rng.int(EXPIRED_AT_MS, 4_000) })
  }
  const admins = delegate(rng, peers)
  for (let i = 0; i < outsiders; i++) peers.push(outsider(rng, peers, members, admins))
  const crashes = []
  for (let i = rng.int(0, 3); i > 0; i--) crashes.push({ node: rng.int(1, members - 1), atMs: rng.int(2_000, faultsEndMs - 1_000), downMs: rng.int(200, 4_000) })
  const faults = rng.chance(0.8)
  return {
    seed,
    peers,
    ...revocationsOf(rng, members, admins, faultsEndMs),
    crashes,
    delayMinMs: rng.int(1, 20),
    delayMaxMs: rng.int(20, 300),
    lossRate: faults ? 0.05 + 0.25 * rng.float() : 0,
    duplicateRate: faults ? 0.1 * rng.float() : 0,
    faultsEndMs,
    endMs,
    checkEveryMs: 500,
    traceLinesKept: 0
  }
}

/** Nodes 1..admins become delegated admins (founder-signed, role admin); some later members get
 *  their certificate from one of them, and the last member is made admin by one (the sub-admin).
 *  Returns how many delegated admins (0 in many seeds). */
function delegate (rng: Random, peers: PeerPlan[]): number {
  const members = peers.length
  const admins = members >= 4 && rng.chance(0.6) ? rng.int(1, Math.min(2, members - 3)) : 0
  if (admins === 0) return 0
  for (let node = 1; node <= admins; node++) peers[node].roles = rng.pick([['admin'], ['admin', 'worker']])
  for (let node = admins + 1; node < members - 1; node++) if (rng.chance(0.5)) peers[node].issuer = rng.int(1, admins)
  peers[members - 1] = { ...peers[members - 1], roles: ['admin'], issuer: rng.int(1, admins) }
  return admins
}

/** An outsider; one that signs for itself names its signer (a depth-2 one needs a sub-admin, and
 *  one signed by a member that is no admin needs such a member: else it signs for itself). */
function outsider (rng: Random, peers: PeerPlan[], members: number, admins: number): PeerPlan {
  let kind = rng.pick(OUTSIDER_KINDS)
  const plan: PeerPlan = { kind, roles: ['worker'], notAfter: kind === 'expired' ? EXPIRED_AT_MS : CERTIFICATE_VALIDITY_MS_MAX, startMs: rng.int(EXPIRED_AT_MS, 6_000) }
  const plain = Array.from({ length: members - 1 }, (_, i) => i + 1).filter(node => peers[node].roles.every(r => r !== 'admin'))
  if (kind === 'depth-2' && admins === 0) kind = 'not-admin'
  if (kind === 'not-admin' && plain.length === 0) kind = 'self-signed'
  if (kind === 'depth-2') plan.issuer = members - 1
  if (kind === 'not-admin') plan.issuer = rng.pick(plain)
  if (kind === 'self-signed') {
    plan.issuer = peers.length
    plan.roles = ['admin']
  }
  plan.kind = kind
  return plan
}

/** The founder revokes one or two members (sometimes a delegated admin); each delegated admin
 *  often revokes a member too (one it signed, or one it did not: that takes nothing away); the
 *  sub-admin tries. */
function revocationsOf (rng: Random, members: number, admins: number, faultsEndMs: number): Pick<PermissionScenario, 'revocations' | 'depth2Revocation'> {
  const revocations: PermissionScenario['revocations'] = []
  const targets = Array.from({ length: members - 1 }, (_, i) => i + 1)
  const take = (index: number): number => targets.splice(index, 1)[0]
  for (let i = rng.int(1, Math.min(2, targets.length)); i > 0; i--) {
    revocations.push({ atMs: rng.int(5_000, faultsEndMs), target: take(rng.int(0, targets.length - 1)), by: rng.pick(['peer', 'serial'] as const), issuer: DRIVER })
  }
  const admin = targets.indexOf(1)
  if (admins > 0 && admin >= 0 && rng.chance(0.5)) revocations.push({ atMs: rng.int(5_000, faultsEndMs), target: take(admin), by: rng.pick(['peer', 'serial'] as const), issuer: DRIVER })
  for (let issuer = 1; issuer <= admins; issuer++) {
    const plain = targets.filter(node => node > admins)
    if (plain.length === 0 || !rng.chance(0.7)) continue
    revocations.push({ atMs: rng.int(3_000, faultsEndMs), target: take(targets.indexOf(rng.pick(plain))), by: rng.pick(['peer', 'serial'] as const), issuer })
  }
  const depth2Revocation = admins > 0 ? { atMs: rng.int(3_000, faultsEndMs), target: rng.int(1, members - 2) } : undefined
  return { revocations, depth2Revocation }
}

type Message =
  /** `issuer`: the certificate of the delegated admin that signed `certificate`, sent with it. */
  | { type: 'hello' | 'ack', certificate: Certificate | undefined, issuer: Certificate | undefined }
  | { type: 'request', action: 'function' | 'blob' }
  | { type: 'data' | 'task' }
  | { type: 'gossip', revocations: Revocation[] }

const peerName = (node: number): string => `p${node}`
const nodeOf = (peerId: string): number => Number(peerId.slice(1))
const encoder = new TextEncoder()
const decoder = new TextDecoder()

function certificateText (c: Omit<Certificate, 'signature'>, key: string): string {
  return `cert|${key}|${c.network}|${c.peer}|${[...c.roles].sort().join(',')}|${c.notBefore}|${c.notAfter}|${c.serial}`
}

function revocationText (r: Omit<Revocation, 'signature'>, key: string): string {
  return `rev|${key}|${r.network}|${r.serial ?? ''}|${r.peer ?? ''}|${r.atMs}`
}

/** The two founding keys and the peers' own keys sign; a signature names its key, so the issuer must match it. */
const signer = (issuer: string): boolean => issuer === ADMIN_KEY || issuer === OTHER_ADMIN_KEY || issuerPeerId(issuer) !== undefined

function verifyCertificate (c: Certificate): boolean {
  return signer(c.issuer) && decoder.decode(c.signature) === certificateText(c, c.issuer)
}

function verifyRevocation (r: Revocation): boolean {
  return signer(r.issuer) && decoder.decode(r.signature) === revocationText(r, r.issuer)
}

/** The node whose peer key signed a revocation; undefined for a founding key. */
function issuerNodeOf (r: Revocation): number | undefined {
  const peer = issuerPeerId(r.issuer)
  return peer === undefined ? undefined : nodeOf(peer)
}

function signCertificate (fields: Omit<Certificate, 'signature'>, key: string): Certificate {
  return { ...fields, signature: encoder.encode(certificateText(fields, key)) }
}

const revocationKey = (r: Revocation): string => `${r.serial !== undefined ? `s:${r.serial}` : `p:${r.peer ?? ''}`}@${r.atMs}`

/** What one peer keeps across a crash, and its shell's state in this life. */
interface SimPeer {
  node: number
  plan: PeerPlan
  certificate: Certificate | undefined
  /** The delegated admin's certificate sent with `certificate` (none when a founding key signed it). */
  issuerCertificate: Certificate | undefined
  up: boolean
  life: number
  machine: Permission
  stored: { certificates: Map<string, Certificate>, revocations: Map<string, Revocation> }
  /** Peers whose hello this life answered with an ack (members stop retrying them). */
  acked: Set<number>
  hellos: Map<number, number>
  ticks: number
}

class PermissionSim {
  readonly world: SimWorld
  readonly counts: PermissionCounts = {
    given: 0, tasks: 0, withheld: 0, refusedHellos: 0, revocationsIssued: 0, revocationsReached: 0, forgedRefused: 0, revokedOutputs: 0, expiredOutputs: 0, crashes: 0,
    delegatedAdmitted: 0, delegatedRevocations: 0, cascadeCutOff: 0, unknownIssuer: 0, depth2Refused: 0
  }

  readonly net: SimNetwork<Message>
  private readonly s: PermissionScenario
  private readonly rng: Random
  private readonly create: (options: PermissionOptions) => Permission
  readonly peers: SimPeer[]
  /** Revocations the founder and the delegated admins issued. */
  readonly issued: Revocation[] = []
  /** Per peer: revocation keys it has accepted (or already held), and when first. */
  private readonly reached: Array<Map<string, number>>
  /** Per peer: the members whose genuine certificate its machine admitted. */
  private readonly admitted: Array<Set<number>>

  constructor (s: PermissionScenario, hooks: PermissionHooks) {
    this.s = s
    this.world = new SimWorld(s.traceLinesKept)
    const rng = createRandom(s.seed ^ 0x9e57_c0de)
    this.rng = rng.fork()
    this.create = hooks.permission ?? createPermission
    this.peers = s.peers.map((plan, node) => this.newPeer(node, plan))
    this.reached = s.peers.map(() => new Map())
    this.admitted = s.peers.map(() => new Set())
    this.net = new SimNetwork<Message>(this.world, this.peers, rng.fork(), {
      delayMinMs: s.delayMinMs, delayMaxMs: Math.max(s.delayMinMs, s.delayMaxMs), lossRate: s.lossRate, duplicateRate: s.duplicateRate
    }, (to, from, message) => { this.deliver(to, from, message) })
  }

  private newPeer (node: number, plan: PeerPlan): SimPeer {
    const stored = { certificates: new Map<string, Certificate>(), revocations: new Map<string, Revocation>() }
    const issuerCertificate = plan.issuer === undefined || plan.issuer === node ? undefined : this.certificateOf(plan.issuer, this.s.peers[plan.issuer])
    return { node, plan, certificate: this.certificateOf(node, plan), issuerCertificate, up: false, life: 0, machine: this.machine(stored), stored, acked: new Set(), hellos: new Map(), ticks: 0 }
  }

  private machine (stored: SimPeer['stored']): Permission {
    return this.create({
      mode: 'permissioned', networkId: NETWORK, issuers: [ADMIN_KEY], issuerPeerId, certificates: [...stored.certificates.values()], revocations: [...stored.revocations.values()]
    })
  }

  /** What the peer presents: a member's own certificate, or an outsider's kind of bad one. */
  private certificateOf (node: number, plan: PeerPlan): Certificate | undefined {
    const own = { network: NETWORK, peer: peerName(node), roles: plan.roles, notBefore: 0, notAfter: plan.notAfter, serial: `serial-${node}`, issuer: ADMIN_KEY }
    if (plan.issuer !== undefined) return signCertificate({ ...own, issuer: peerKey(plan.issuer) }, peerKey(plan.issuer))
    switch (plan.kind) {
      case 'member': return signCertificate(own, ADMIN_KEY)
      case 'none': return undefined
      case 'tampered': return { ...signCertificate({ ...own, roles: ['client'] }, ADMIN_KEY), roles: ['worker'] }
      case 'wrong-network': return signCertificate({ ...own, network: OTHER_NETWORK, issuer: OTHER_ADMIN_KEY }, OTHER_ADMIN_KEY)
      case 'expired': return signCertificate(own, ADMIN_KEY)
      case 'stolen': return signCertificate({ ...own, peer: peerName(1), roles: this.s.peers[1].roles, serial: 'serial-1', notAfter: this.s.peers[1].notAfter }, ADMIN_KEY)
      default: return undefined // the kinds that sign for themselves have an issuer (above)
    }
  }

  start (): void {
    if (this.s.faultsEndMs > 0 && (this.s.lossRate > 0 || this.s.duplicateRate > 0)) {
      this.net.setFaultsActive(true)
      this.world.at(this.s.faultsEndMs, () => { this.net.setFaultsActive(false) })
    }
    for (const peer of this.peers) this.world.at(peer.plan.startMs, () => { this.boot(peer) })
    for (const c of this.s.crashes) {
      this.world.at(c.atMs, () => { this.crash(this.peers[c.node]) })
      this.world.at(c.atMs + c.downMs, () => { if (!this.peers[c.node].up) this.boot(this.peers[c.node]) })
    }
    for (const r of this.s.revocations) this.world.at(r.atMs, () => { this.revoke(r.target, r.by, r.issuer) })
    const depth2 = this.s.depth2Revocation
    if (depth2 !== undefined) this.world.at(depth2.atMs, () => { this.revokeAtDepth2(depth2.target) })
  }

  // --- a peer's life ------------------------------------------------------------------------------

  private boot (peer: SimPeer): void {
    peer.up = true
    peer.life += 1
    peer.machine = this.machine(peer.stored)
    this.drain(peer)
    peer.acked = new Set()
    peer.hellos = new Map()
    this.world.trace.add(`${this.world.nowMs} up ${peerName(peer.node)} life ${peer.life}`)
    // A member's machine holds its own certificate (and its admin's), as a peer loads its own credentials.
    if (peer.plan.kind === 'member') this.onCredentials(peer, peer.node, peer.certificate, peer.issuerCertificate)
    const life = peer.life
    const tick = (): void => {
      if (!peer.up || peer.life !== life) return
      this.tick(peer)
      this.world.at(this.world.nowMs + TICK_MS, tick)
    }
    tick()
  }

  private crash (peer: SimPeer): void {
    if (!peer.up) return
    peer.up = false
    peer.life += 1
    this.counts.crashes += 1
    this.world.trace.add(`${this.world.nowMs} crash ${peerName(peer.node)}`)
  }

  private tick (peer: SimPeer): void {
    const now = this.world.nowMs
    const due = peer.machine.nextTimeoutMs()
    if (due !== undefined && due <= now) {
      peer.machine.handleTimeout(now)
      this.drain(peer)
    }
    this.sendHellos(peer)
    peer.ticks += 1
    if (peer.plan.kind !== 'member') return this.outsiderTick(peer)
    if (peer.ticks % GOSSIP_EVERY_TICKS === 0) this.gossip(peer)
    const others = this.peers.filter(p => p !== peer && peer.acked.has(p.node))
    if (others.length > 0) this.net.send(peer.node, this.rng.pick(others).node, { type: 'request', action: this.rng.pick(['function', 'blob'] as const) })
    if (peer.node === DRIVER) this.placeTask(peer)
  }

  /** Outsiders ask anyone for code and data; a tampering one gossips a forged revocation of a member. */
  private outsiderTick (peer: SimPeer): void {
    const target = this.rng.pick(this.peers.filter(p => p !== peer))
    this.net.send(peer.node, target.node, { type: 'request', action: this.rng.pick(['function', 'blob'] as const) })
    if (peer.plan.kind === 'tampered' && peer.ticks % 4 === 1) {
      const fields = { network: NETWORK, peer: peerName(this.rng.int(1, this.memberCount() - 1)), atMs: this.world.nowMs, issuer: ADMIN_KEY }
      const forged: Revocation = { ...fields, signature: encoder.encode(revocationText({ ...fields, atMs: fields.atMs + 1 }, ADMIN_KEY)) }
      this.net.send(peer.node, target.node, { type: 'gossip', revocations: [forged] })
    }
  }

  private memberCount (): number {
    return this.s.peers.filter(p => p.kind === 'member').length
  }

  /** Hellos to every peer not yet answered this life (an outsider gives up after a few). */
  private sendHellos (peer: SimPeer): void {
    for (const other of this.peers) {
      if (other === peer || peer.acked.has(other.node)) continue
      const sent = peer.hellos.get(other.node) ?? 0
      if (peer.plan.kind !== 'member' && sent >= OUTSIDER_HELLOS_MAX) continue
      peer.hellos.set(other.node, sent + 1)
      const issuer = peer.issuerCertificate !== undefined && this.rng.chance(ISSUER_OMITTED_RATE) ? undefined : peer.issuerCertificate
      this.net.send(peer.node, other.node, { type: 'hello', certificate: peer.certificate, issuer })
    }
  }

  private gossip (peer: SimPeer): void {
    const held = peer.machine.revocations()
    if (held.length === 0) return
    for (const other of this.peers) {
      if (other !== peer && peer.machine.allows(peerName(other.node), 'gossip', this.world.nowMs)) this.net.send(peer.node, other.node, { type: 'gossip', revocations: held })
    }
  }

  /** The driver tries any peer; it sends the task, with its code and input blob, only where its machine allows each. */
  private placeTask (driver: SimPeer): void {
    const target = this.rng.pick(this.peers.filter(p => p !== driver))
    for (const action of ['task', 'function', 'blob'] as const) {
      if (!driver.machine.allows(peerName(target.node), action, this.world.nowMs)) {
        this.refuse(driver, target.node, action)
        return
      }
      if (action === 'task') this.counts.tasks += 1
      this.give(driver, target.node, action)
      this.net.send(driver.node, target.node, action === 'task' ? { type: 'task' } : { type: 'data' })
    }
  }

  /** The founder (at the driver) or a delegated admin (when up: its key is on its machine) revokes. */
  private revoke (target: number, by: 'peer' | 'serial', issuer: number): void {
    const admin = this.peers[issuer]
    if (!admin.up) return
    const key = issuer === DRIVER ? ADMIN_KEY : peerKey(issuer)
    const fields = by === 'peer' ? { network: NETWORK, peer: peerName(target), atMs: this.world.nowMs, issuer: key } : { network: NETWORK, serial: `serial-${target}`, atMs: this.world.nowMs, issuer: key }
    const revocation: Revocation = { ...fields, signature: encoder.encode(revocationText(fields, key)) }
    this.issued.push(revocation)
    this.counts.revocationsIssued += 1
    if (issuer !== DRIVER) this.counts.delegatedRevocations += 1
    this.world.trace.add(`${this.world.nowMs} ${peerName(issuer)} revokes ${by} ${peerName(target)}`)
    this.onRevocation(admin, revocation)
    this.gossip(admin)
  }

  /** The sub-admin signs a revocation with its key and sends it to every peer it allows: depth 2. */
  private revokeAtDepth2 (target: number): void {
    const node = this.memberCount() - 1 // the last member (see delegate)
    const sub = this.peers[node]
    if (!sub.up) return
    const fields = { network: NETWORK, peer: peerName(target), atMs: this.world.nowMs, issuer: peerKey(node) }
    const revocation: Revocation = { ...fields, signature: encoder.encode(revocationText(fields, peerKey(node))) }
    this.world.trace.add(`${this.world.nowMs} ${peerName(node)} (sub-admin) revokes ${peerName(target)}`)
    this.onRevocation(sub, revocation)
    for (const other of this.peers) {
      if (other !== sub && sub.machine.allows(peerName(other.node), 'gossip', this.world.nowMs)) this.net.send(node, other.node, { type: 'gossip', revocations: [revocation] })
    }
  }

  // --- the shell: inputs --------------------------------------------------------------------------

  private deliver (to: number, from: number, message: Message): void {
    const peer = this.peers[to]
    switch (message.type) {
      case 'hello':
      case 'ack': {
        if (message.type === 'ack') peer.acked.add(from)
        const admitted = this.onCredentials(peer, from, message.certificate, message.issuer)
        if (message.type === 'hello' && (admitted || peer.plan.kind !== 'member')) {
          peer.acked.add(from)
          this.net.send(to, from, { type: 'ack', certificate: peer.certificate, issuer: peer.issuerCertificate })
        }
        break
      }
      case 'request': {
        if (peer.plan.kind !== 'member') break
        if (peer.machine.allows(peerName(from), message.action, this.world.nowMs)) {
          this.give(peer, from, message.action)
          this.net.send(to, from, { type: 'data' })
        } else {
          this.refuse(peer, from, message.action)
        }
        break
      }
      case 'gossip':
        for (const r of message.revocations) this.onRevocation(peer, r)
        break
      case 'data':
      case 'task':
        break
    }
  }

  /** A certificate from a connecting peer (with its admin's, if a delegated admin signed it): the
   *  admin's goes to the machine first; the shell checks the peer's own names that peer, the machine the rest. */
  private onCredentials (peer: SimPeer, from: number, certificate: Certificate | undefined, issuer: Certificate | undefined): boolean {
    if (issuer !== undefined) this.onIssuerCertificate(peer, issuer)
    const now = this.world.nowMs
    if (certificate === undefined || certificate.peer !== peerName(from)) {
      this.counts.refusedHellos += 1
      return false
    }
    const result = peer.machine.handleCertificate(certificate, verifyCertificate(certificate), now)
    this.world.trace.add(`${now} ${peerName(peer.node)} certificate of ${peerName(from)}: ${result}`)
    this.drain(peer)
    const plan = this.s.peers[from]
    if (this.genuineAt(peer.node, from) && result !== 'admitted') this.world.violate(`${peerName(peer.node)} refused member ${peerName(from)}'s certificate: ${result}`)
    if (result !== 'admitted') {
      this.counts.refusedHellos += 1
      if (result === 'unknown-issuer' && plan.kind === 'member') this.counts.unknownIssuer += 1
      if (plan.kind === 'depth-2') this.counts.depth2Refused += 1
      return false
    }
    if (plan.kind === 'depth-2') this.world.violate(`${peerName(peer.node)} honoured a depth-2 certificate: ${peerName(from)}'s, signed by ${peerName(plan.issuer ?? -1)}, whom a delegated admin made admin`)
    else if (plan.kind !== 'member') this.world.violate(`${peerName(peer.node)} admitted ${peerName(from)}, an outsider (${plan.kind})`)
    if (plan.issuer !== undefined && from !== peer.node) this.counts.delegatedAdmitted += 1
    this.admitted[peer.node].add(from)
    return true
  }

  /** The certificate of the admin that signed a peer's (only members' genuine ones are sent). */
  private onIssuerCertificate (peer: SimPeer, issuer: Certificate): void {
    const now = this.world.nowMs
    const holder = nodeOf(issuer.peer)
    const result = peer.machine.handleCertificate(issuer, verifyCertificate(issuer), now)
    this.world.trace.add(`${now} ${peerName(peer.node)} issuer certificate of ${peerName(holder)}: ${result}`)
    this.drain(peer)
    if (result === 'admitted') this.admitted[peer.node].add(holder)
    else if (this.genuineAt(peer.node, holder)) this.world.violate(`${peerName(peer.node)} refused member ${peerName(holder)}'s certificate, sent as its admin's: ${result}`)
  }

  private onRevocation (peer: SimPeer, revocation: Revocation): void {
    const result = peer.machine.handleRevocation(revocation, verifyRevocation(revocation), this.world.nowMs)
    this.world.trace.add(`${this.world.nowMs} ${peerName(peer.node)} revocation ${revocationKey(revocation)} by ${revocation.issuer}: ${result}`)
    const key = revocationKey(revocation)
    const signed = decoder.decode(revocation.signature)
    const genuine = this.issued.some(r => revocationKey(r) === key && decoder.decode(r.signature) === signed)
    const by = issuerNodeOf(revocation)
    const depth2 = by !== undefined && this.s.peers[by].issuer !== undefined
    if (result === 'accepted' || result === 'duplicate') {
      if (!genuine) {
        this.drain(peer)
        if (depth2) return this.world.violate(`${peerName(peer.node)} honoured a depth-2 revocation of ${revocation.peer ?? '?'} by ${peerName(by)}: ${result}`)
        return this.world.violate(`${peerName(peer.node)} took a forged revocation of ${revocation.peer ?? revocation.serial ?? '?'}: ${result}`)
      }
      if (!this.reached[peer.node].has(key)) {
        this.reached[peer.node].set(key, this.world.nowMs)
        this.counts.revocationsReached += 1
      }
    } else if (genuine && by !== undefined && !this.adminHeld(peer.node, by)) {
      this.counts.unknownIssuer += 1 // a delegated admin this peer has not met, or knows is cut off
    } else if (genuine) {
      this.world.violate(`${peerName(peer.node)} refused ${by === undefined ? 'the founder' : `admin ${peerName(by)}`}'s revocation ${key}: ${result}`)
    } else {
      this.counts[depth2 ? 'depth2Refused' : 'forgedRefused'] += 1
    }
    this.drain(peer) // after `reached`: a cut-off dependent is told from one revoked by name
  }

  /** Drain the machine's outputs: store what it keeps, close what it cuts off. */
  private drain (peer: SimPeer): void {
    for (let out = peer.machine.poll(); out !== undefined; out = peer.machine.poll()) {
      switch (out.type) {
        case 'persist-certificate': peer.stored.certificates.set(out.certificate.peer, out.certificate); break
        case 'forget-certificate':
          if (peer.stored.certificates.get(out.peerId)?.serial === out.serial) peer.stored.certificates.delete(out.peerId)
          break
        case 'persist-revocation': peer.stored.revocations.set(revocationKey(out.revocation), out.revocation); break
        case 'forget-revocation': peer.stored.revocations.delete(revocationKey(out.revocation)); break
        case 'revoked':
        case 'expired':
          this.counts[out.type === 'revoked' ? 'revokedOutputs' : 'expiredOutputs'] += 1
          if (out.type === 'revoked' && this.s.peers[nodeOf(out.peerId)].issuer !== undefined && !this.revokedAt(peer.node, nodeOf(out.peerId))) this.counts.cascadeCutOff += 1
          peer.acked.delete(nodeOf(out.peerId))
          this.world.trace.add(`${this.world.nowMs} ${peerName(peer.node)} ${out.type} ${out.peerId}`)
          break
      }
    }
  }

  // --- invariants ---------------------------------------------------------------------------------

  /** Whether a revocation naming `target` (its peer id or its serial) has reached `at`. */
  private revokedAt (at: number, target: number): boolean {
    return this.revocationAt(at, target) !== undefined
  }

  /** The first revocation that takes `target`'s certificate away and has reached `at`. */
  private revocationAt (at: number, target: number): Revocation | undefined {
    return this.issued.find(r => this.revokes(r, target) && this.reached[at].has(revocationKey(r)))
  }

  /** Whether a revocation takes `target`'s certificate away: it names the peer or its serial, and
   *  the founder signed it or the delegated admin that signed the certificate did. */
  private revokes (r: Revocation, target: number): boolean {
    const by = issuerNodeOf(r)
    return (r.peer === peerName(target) || r.serial === `serial-${target}`) && (by === undefined || by === this.s.peers[target].issuer)
  }

  /** Whether `at` knows admin `admin` is cut off: its revocation reached `at`, or it expired. */
  private cutOffAt (at: number, admin: number): boolean {
    return this.revokedAt(at, admin) || this.world.nowMs >= this.s.peers[admin].notAfter
  }

  /** Whether `node` is a member `at` must admit: valid now, not revoked there, and founder-signed
   *  or signed by an admin `at` holds (admitted, not cut off). */
  private genuineAt (at: number, node: number): boolean {
    const plan = this.s.peers[node]
    if (plan.kind !== 'member' || this.world.nowMs >= plan.notAfter || this.revokedAt(at, node)) return false
    return plan.issuer === undefined || this.adminHeld(at, plan.issuer)
  }

  private adminHeld (at: number, admin: number): boolean {
    return this.admitted[at].has(admin) && this.genuineAt(at, admin)
  }

  private give (giver: SimPeer, to: number, action: Action): void {
    const plan = this.s.peers[to]
    const now = this.world.nowMs
    this.counts.given += 1
    this.world.trace.add(`${now} ${peerName(giver.node)} gives ${action} to ${peerName(to)}`)
    if (plan.kind !== 'member') this.world.violate(`${peerName(giver.node)} gave ${action} to ${peerName(to)}, an outsider (${plan.kind})`)
    else if (now >= plan.notAfter) this.world.violate(`${peerName(giver.node)} gave ${action} to ${peerName(to)}, whose certificate expired at ${plan.notAfter}`)
    if (action === 'task' && !plan.roles.includes('worker')) this.world.violate(`${peerName(giver.node)} gave a task to ${peerName(to)}, not a worker (${plan.roles.join(',')})`)
    // The revocation first: a peer its own admin revoked, the admin since cut off, is told as such.
    const revocation = this.revocationAt(giver.node, to)
    if (revocation !== undefined) {
      const by = issuerNodeOf(revocation)
      const since = by !== undefined && this.cutOffAt(giver.node, by) ? ` (by admin ${peerName(by)}, since cut off)` : ''
      this.world.violate(`${peerName(giver.node)} gave ${action} to ${peerName(to)} after its revocation reached it${since}`)
    }
    if (plan.issuer !== undefined && plan.kind === 'member' && this.cutOffAt(giver.node, plan.issuer)) {
      this.world.violate(`${peerName(giver.node)} gave ${action} to ${peerName(to)}, whose certificate's admin ${peerName(plan.issuer)} it knows is cut off`)
    }
  }

  /** A refusal is wrong only for a member this peer admitted, valid now, not revoked here, whose roles allow the action. */
  private refuse (giver: SimPeer, to: number, action: Action): void {
    const plan = this.s.peers[to]
    this.counts.withheld += 1
    this.world.trace.add(`${this.world.nowMs} ${peerName(giver.node)} withholds ${action} from ${peerName(to)}`)
    const entitled = plan.kind === 'member' && this.world.nowMs < plan.notAfter && plan.roles.some(r => ACTIONS_BY_ROLE[r].includes(action))
    const delegatedOk = plan.issuer === undefined || !this.cutOffAt(giver.node, plan.issuer)
    if (entitled && delegatedOk && this.admitted[giver.node].has(to) && !this.revokedAt(giver.node, to)) {
      this.world.violate(`${peerName(giver.node)} refused ${action} to member ${peerName(to)} (${plan.roles.join(',')})`)
    }
  }

  sample (): void {
    for (const peer of this.peers) if (peer.up) peer.machine.checkInvariants()
  }

  /** After the faults: every running member holds every revocation and allows every other running
   *  member. Returns the share of SETTLE_MS the last revocation took to reach them after the faults. */
  end (): number {
    const now = this.world.nowMs
    const cut = (node: number): boolean => now >= this.s.peers[node].notAfter || this.issued.some(r => this.revokes(r, node))
    const live = this.peers.filter(p => p.up && p.plan.kind === 'member' && !cut(p.node) && (p.plan.issuer === undefined || !cut(p.plan.issuer)))
    // A delegated admin's revocation spreads only while peers still honour the admin.
    const inForce = this.issued.filter(r => { const by = issuerNodeOf(r); return by === undefined || !cut(by) })
    let latestMs = this.s.faultsEndMs
    for (const peer of live) {
      for (const r of inForce) {
        const at = this.reached[peer.node].get(revocationKey(r))
        if (at === undefined) this.world.violate(`revocation ${revocationKey(r)} never reached ${peerName(peer.node)}`)
        else latestMs = Math.max(latestMs, at)
      }
      for (const other of live) {
        if (other !== peer && !peer.machine.allows(peerName(other.node), 'membership', now)) this.world.violate(`${peerName(peer.node)} does not allow member ${peerName(other.node)} at the end`)
      }
    }
    return (latestMs - this.s.faultsEndMs) / SETTLE_MS
  }
}

export function runPermissionScenario (input: PermissionScenario | { seed: number, traceLinesKept?: number }, hooks: PermissionHooks = {}): PermissionScenarioResult {
  const s: PermissionScenario = 'peers' in input ? input : { ...permissionScenarioFromSeed(input.seed), traceLinesKept: input.traceLinesKept ?? 0 }
  const sim = new PermissionSim(s, hooks)
  sim.start()
  sim.world.run({
    endMs: s.endMs,
    checkTimesMs: checkTimes(s.endMs, s.checkEveryMs),
    check: () => { if (sim.world.violationCount === 0) sim.sample() },
    simEventsMax: 2_000_000
  })
  sim.world.nowMs = s.endMs
  const boundUsed = sim.world.violationCount === 0 ? sim.end() : undefined
  const outsiders: Record<string, number> = {}
  for (const p of s.peers) if (p.kind !== 'member') outsiders[p.kind] = (outsiders[p.kind] ?? 0) + 1
  const w = sim.world
  return {
    seed: s.seed,
    ok: w.violationCount === 0,
    violations: w.violations,
    violationCount: w.violationCount,
    members: s.peers.length - Object.values(outsiders).reduce((a, b) => a + b, 0),
    outsiders,
    counts: sim.counts,
    messages: sim.net.stats,
    simEvents: w.simEvents,
    traceHash: w.trace.digest(),
    trace: w.trace.keptLines,
    boundUsed
  }
}

export const permissionScenarioEntry = {
  name: 'permission',
  description: 'a permissioned network: members, delegated admins and the members they admit, outsiders (no, tampered, foreign, expired or stolen certificates; signed by a non-admin, self-signed, depth 2) and revocations (founder and delegated) spread by lossy gossip; no outsider, revoked or cut-off peer is given work, code or data, no member is refused',
  runSeed (seed: number, options: { traceLinesKept?: number } = {}) {
    const r = runPermissionScenario({ seed, traceLinesKept: options.traceLinesKept ?? 0 })
    const c = r.counts
    return {
      scenario: 'permission',
      seed,
      ok: r.ok,
      violations: r.violations,
      violationCount: r.violationCount,
      summary: `${r.members} members, outsiders ${JSON.stringify(r.outsiders)}: ${c.given} given (${c.tasks} tasks), ${c.withheld} withheld, ${c.revocationsIssued} revocations (${c.delegatedRevocations} by delegated admins) reached ${c.revocationsReached} times, ${c.delegatedAdmitted} delegated admissions, ${c.cascadeCutOff} cut off with their admin, ${c.crashes} crashes`,
      details: [`counts ${JSON.stringify(c)}`, `messages ${JSON.stringify(r.messages)}`],
      traceHash: r.traceHash,
      simEvents: r.simEvents,
      trace: r.trace,
      boundUsed: r.boundUsed
    }
  }
}
