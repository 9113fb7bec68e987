/**
 * Permission state machine — theory of operation.
 *
 * MEMBERS. A peer is a member while it holds a certificate that (1) verified (the shell checked the
 * signature), (2) names this network, (3) was signed by a founding issuer or a delegated admin
 * (DELEGATION), (4) matches no remembered revocation, and (5) is valid now: notBefore ≤ now +
 * CLOCK_SKEW_MS and now < notAfter. One certificate is held per peer: the best — founder-signed
 * before delegated, then the newest (latest notBefore, then latest notAfter, then the larger
 * serial), so every peer picks the same; an older one that arrives later is still
 * `admitted` but changes nothing. Every held change is persisted — [persist-certificate] — and a
 * replaced one forgotten — [forget-certificate]. At most certificatesMax members; past it a new
 * peer is refused `full`.
 *
 * DELEGATION. A certificate or revocation whose issuer is not a founding key is accepted only if
 * `issuerPeerId(issuer)` names a member other than the certificate's subject that holds, now, a
 * founder-signed certificate with role `admin` — a delegated admin; depth 1 (./constants.ts).
 * One signed by an admin this machine does not (yet) hold is refused `unknown-issuer`, not kept
 * for later: a peer sends its issuing admin's certificate with its own in the credentials exchange,
 * and one refused now shows both again at its next contact. Founder-signed ranks above delegated,
 * so a delegated admin cannot displace what the founder signed (demote another admin, or renew
 * itself). When an admin's certificate is dropped — revoked, expired, or replaced by one that is
 * not an admin's — every certificate it signed is dropped too, [forget-certificate, revoked] each:
 * a compromised admin key is cut off with everything it signed. Its revocations stay (SCOPE); one
 * dated past now + CLOCK_SKEW_MS is refused `not-yet-valid`.
 * Held delegated certificates are indexed by admin (`dependents`), so the cut is O(its signed).
 *
 * ROLES. `allows(peer, action, now)` is true when the held certificate (and, if delegated, its
 * admin's) is valid at `now` and one of its roles allows the action (ACTIONS_BY_ROLE in ./constants.ts). A peer without one gets nothing.
 *
 * REVOCATIONS. A revocation names a serial or a peer and a time atMs. It matches a certificate with
 * that serial (or for that peer) whose notBefore ≤ atMs: certificates issued before it. So an admin
 * can re-admit a revoked peer with a certificate issued after the revocation, and a revocation
 * cannot cut off certificates nobody had yet seen the need for. One revocation is kept per serial
 * and per peer: a later atMs replaces an earlier one (it matches more); the same or an earlier one
 * is a `duplicate`. Accepting one drops the matching held certificate — [forget-certificate,
 * revoked] — so the shell closes the peer's connections and reschedules its tasks.
 *
 * SCOPE. A delegated admin's revocation takes away only certificates that same admin signed: it
 * may name any serial or peer (it may arrive before the certificate it names), but it is kept under
 * its own key, 'd:' + issuer + ':' + the target, so it never replaces or is replaced by the
 * founder's revocation of the same target, nor another admin's; a certificate is checked against
 * the founder's keys and those scoped by its own issuer, whatever the order they came in. So a
 * delegated admin cannot revoke what the founder signed (another admin, or that admin's members).
 * Its revocations stay held after the admin is cut off: while it is, what they name is refused
 * anyway, but a founder who re-admits (or renews a lapsed) admin must not bring back what that
 * admin had revoked. They are the first to go when room is needed (BOUNDING REVOCATIONS).
 *
 * BOUNDING REVOCATIONS. No certificate lives longer than CERTIFICATE_VALIDITY_MS_MAX, so every
 * certificate a revocation matches (notBefore ≤ atMs) has expired by atMs + that: from then on the
 * revocation is obsolete and may be dropped. One arriving already obsolete is refused `obsolete`.
 * When revocationsMax are held and a new one comes, the oldest (smallest atMs) is dropped if it is
 * obsolete — [forget-revocation]; else the oldest delegated one whose admin is not held and valid
 * now (nothing it names is valid meanwhile); else, for a founder's revocation only, the oldest
 * delegated one: the founder can always revoke, and one stolen admin key filling the set with
 * revocations of made-up peers cannot make itself unrevocable. Otherwise the new one is refused
 * `full`: a founder's revocation that could still matter is never dropped. A delegated admin holds at
 * most DELEGATED_REVOCATIONS_MAX (one more is refused `full` unless its own oldest is obsolete), so
 * it cannot crowd out the others. Finding the oldest is O(revocations), only when full.
 *
 * EXPIRY. nextTimeoutMs() is the earliest notAfter held (cached; recomputed in O(members) after a
 * change); handleTimeout drops every certificate with notAfter ≤ now — [forget-certificate,
 * expired]. `allows` checks the time itself, so a late timer never lets an expired peer through.
 *
 * CLOCK. Time is an input; the largest `nowMs` seen is "now" for handleTimeout, never run backwards.
 */
import { OutputQueue } from '../output-queue.ts'
import { ConfigError, assert } from '../../model/errors.ts'
import {
  ACTIONS_BY_ROLE, CERTIFICATES_MAX, CERTIFICATE_VALIDITY_MS_MAX, CLOCK_SKEW_MS, DELEGATED_REVOCATIONS_MAX, REVOCATIONS_MAX, ROLES
} from './constants.ts'
import type { CertificateRefusal, RevocationRefusal } from './constants.ts'
import type {
  Action, Certificate, Permission, PermissionCounts, PermissionOptions, PermissionOptionsClosed, PermissionOutput, Revocation, Role
} from './index.ts'

export class PermissionMachine implements Permission {
  readonly mode: 'open' | 'permissioned'
  private readonly networkId: string
  private readonly issuers: Set<string>
  private readonly issuerPeerId: (issuer: string) => string | undefined
  /** Holder of a delegated certificate → the admin that signed it. */
  private readonly delegatedBy = new Map<string, string>()
  /** Delegated admin → the holders of the certificates it signed (no empty sets). */
  private readonly dependents = new Map<string, Set<string>>()
  private readonly certificatesMax: number
  private readonly revocationsMax: number
  private clockMs = 0
  private readonly members = new Map<string, Certificate>()
  /** Serial → peer, for the held certificates. */
  private readonly bySerial = new Map<string, string>()
  /** 's:' + serial or 'p:' + peer → the founder's revocation; a delegated admin's under
   *  'd:' + its issuer + ':' + that (SCOPE). */
  private readonly revoked = new Map<string, Revocation>()
  /** Delegated issuer → how many of the held revocations it signed (no zero counts). */
  private readonly scopedCounts = new Map<string, number>()
  private expiryMs: number | undefined
  private expiryStale = false
  private readonly outputs: OutputQueue<PermissionOutput>

  constructor (options: PermissionOptions) {
    if (typeof options !== 'object' || options === null) throw new ConfigError('options', 'must be an object')
    if (options.mode === 'open') {
      this.mode = 'open'
      this.networkId = ''
      this.issuers = new Set()
      this.issuerPeerId = () => undefined
      this.certificatesMax = this.revocationsMax = 0
      this.outputs = new OutputQueue(1)
      return
    }
    if (options.mode !== 'permissioned') throw new ConfigError('mode', "must be 'open' or 'permissioned'")
    this.mode = 'permissioned'
    if (typeof options.networkId !== 'string' || options.networkId.length === 0) throw new ConfigError('networkId', 'must be the network id')
    if (!Array.isArray(options.issuers) || options.issuers.length === 0 || !options.issuers.every(i => typeof i === 'string' && i.length > 0)) {
      throw new ConfigError('issuers', 'must list at least one admin public key')
    }
    this.networkId = options.networkId
    this.issuers = new Set(options.issuers)
    if (options.issuerPeerId !== undefined && typeof options.issuerPeerId !== 'function') throw new ConfigError('issuerPeerId', 'must be a function')
    this.issuerPeerId = options.issuerPeerId ?? (() => undefined)
    this.certificatesMax = limit(options.certificatesMax, CERTIFICATES_MAX, 'certificatesMax')
    this.revocationsMax = limit(options.revocationsMax, REVOCATIONS_MAX, 'revocationsMax')
    const stored = (options.certificates?.length ?? 0) + (options.revocations?.length ?? 0)
    // Per input at most: a replaced and a new record each way, or every member expiring (two each); loading forgets what it drops.
    this.outputs = new OutputQueue(2 * this.certificatesMax + 2 * this.revocationsMax + stored + 1024)
    this.load(options)
  }

  handleCertificate (cert: Certificate, signatureValid: boolean, nowMs: number): 'admitted' | CertificateRefusal {
    const now = this.advance(nowMs)
    if (this.mode === 'open') return 'admitted'
    if (!signatureValid) return 'bad-signature'
    const refusal = this.refusalOf(cert)
    if (refusal !== undefined) return refusal
    if (cert.notBefore > now + CLOCK_SKEW_MS) return 'not-yet-valid'
    if (now >= cert.notAfter) return 'expired'
    const admin = this.founded(cert) ? undefined : this.adminOf(cert.issuer, cert.peer)
    if (admin !== undefined && !current(this.members.get(admin), now)) return 'unknown-issuer'
    const held = this.members.get(cert.peer)
    if (held !== undefined && !this.better(cert, held)) return 'admitted'
    if (held === undefined && this.members.size >= this.certificatesMax) return 'full'
    const serialHolder = this.bySerial.get(cert.serial)
    if (serialHolder !== undefined && serialHolder !== cert.peer) return 'serial-in-use'
    // An admin renewed as an admin keeps what it signed; one that is no longer an admin does not.
    if (held !== undefined) this.dropMember(held, !this.delegates(cert))
    this.hold(cert, admin)
    this.outputs.push({ type: 'persist-certificate', certificate: copyCertificate(cert) })
    return 'admitted'
  }

  handleRevocation (rev: Revocation, signatureValid: boolean, nowMs: number): 'accepted' | 'duplicate' | RevocationRefusal {
    const now = this.advance(nowMs)
    if (this.mode === 'open') return 'duplicate' // nothing is held, so nothing changes
    if (!signatureValid) return 'bad-signature'
    if (rev.network !== this.networkId) return 'wrong-network'
    if (!this.issuers.has(rev.issuer)) {
      const admin = this.adminOf(rev.issuer, undefined)
      if (admin === undefined || !current(this.members.get(admin), now)) return 'unknown-issuer'
      if (rev.atMs > now + CLOCK_SKEW_MS) return 'not-yet-valid'
    }
    if (obsolete(rev, now)) return 'obsolete'
    const key = this.keyOf(rev)
    const known = this.revoked.get(key)
    if (known !== undefined && known.atMs >= rev.atMs) return 'duplicate'
    if (known === undefined && !this.makeRoom(rev, now)) return 'full'
    if (known !== undefined) this.forgetRevocation(key, known)
    const stored = copyRevocation(rev)
    this.keepRevocation(key, stored)
    this.outputs.push({ type: 'persist-revocation', revocation: copyRevocation(stored) })
    const peer = rev.peer ?? this.bySerial.get(rev.serial ?? '')
    const held = peer === undefined ? undefined : this.members.get(peer)
    if (held !== undefined && this.applies(stored, held)) {
      this.dropMember(held)
      this.outputs.push({ type: 'revoked', peerId: held.peer })
    }
    return 'accepted'
  }

  allows (peerId: string, action: Action, nowMs: number): boolean {
    if (this.mode === 'open') return true
    const cert = this.members.get(peerId)
    if (!current(cert, nowMs)) return false
    const admin = this.delegatedBy.get(peerId)
    // A late timer must not let an expired admin's signatures stand either.
    if (admin !== undefined && !current(this.members.get(admin), nowMs)) return false
    return cert !== undefined && cert.roles.some(role => ACTIONS_BY_ROLE[role].includes(action))
  }

  role (peerId: string): readonly Role[] | undefined {
    const cert = this.members.get(peerId)
    return cert === undefined ? undefined : [...cert.roles]
  }

  issuedBy (peerId: string): string | undefined {
    return this.delegatedBy.get(peerId)
  }

  handleTimeout (nowMs: number): void {
    const now = this.advance(nowMs)
    for (const cert of [...this.members.values()]) {
      // An expired admin's dependents went with it (already dropped, revoked).
      if (cert.notAfter > now || this.members.get(cert.peer) !== cert) continue
      this.dropMember(cert)
      this.outputs.push({ type: 'expired', peerId: cert.peer })
    }
  }

  nextTimeoutMs (): number | undefined {
    if (this.expiryStale) {
      let earliest: number | undefined
      for (const cert of this.members.values()) if (earliest === undefined || cert.notAfter < earliest) earliest = cert.notAfter
      this.expiryMs = earliest
      this.expiryStale = false
    }
    return this.expiryMs
  }

  poll (): PermissionOutput | undefined {
    return this.outputs.poll()
  }

  certificates (): Certificate[] {
    return [...this.members.values()].map(copyCertificate)
  }

  revocations (): Revocation[] {
    return [...this.revoked.values()].map(copyRevocation)
  }

  counts (): PermissionCounts {
    return { members: this.members.size, revocations: this.revoked.size }
  }

  checkInvariants (): void {
    assert(this.members.size <= this.certificatesMax && this.revoked.size <= this.revocationsMax, 'members and revocations stay within their limits')
    assert(this.bySerial.size === this.members.size, 'every held certificate is indexed by its serial')
    for (const [peer, cert] of this.members) {
      assert(cert.peer === peer && this.bySerial.get(cert.serial) === peer, 'the serial index names the holder')
      assert(validCertificate(cert) && this.refusalOf(cert) === undefined, 'a held certificate is of this network, by an issuer, and not revoked')
      const admin = this.delegatedBy.get(peer)
      assert((admin === undefined) === this.founded(cert), 'a certificate is founder-signed or indexed under its delegated admin')
      if (admin !== undefined) {
        assert(this.issuerPeerId(cert.issuer) === admin && this.delegates(this.members.get(admin)), 'a delegated certificate\'s admin is a held founder-signed admin')
        assert(this.dependents.get(admin)?.has(peer) === true, 'the admin\'s dependents list the holder')
      }
    }
    let dependents = 0
    for (const [admin, holders] of this.dependents) {
      assert(holders.size > 0 && this.delegates(this.members.get(admin)), 'only held admins have dependents, and no empty set is kept')
      for (const holder of holders) assert(this.delegatedBy.get(holder) === admin, 'dependents and delegatedBy agree')
      dependents += holders.size
    }
    assert(dependents === this.delegatedBy.size, 'every delegated certificate is a dependent once')
    const scoped = new Map<string, number>()
    for (const [key, rev] of this.revoked) {
      assert(validRevocation(rev) && this.keyOf(rev) === key, 'revocations are well-formed and keyed (a delegated admin\'s under its issuer)')
      if (!this.issuers.has(rev.issuer)) scoped.set(rev.issuer, (scoped.get(rev.issuer) ?? 0) + 1)
    }
    assert(scoped.size === this.scopedCounts.size && [...scoped].every(([issuer, n]) => this.scopedCounts.get(issuer) === n && n <= DELEGATED_REVOCATIONS_MAX),
      'each delegated issuer\'s revocations are counted, at most DELEGATED_REVOCATIONS_MAX')
    if (!this.expiryStale) {
      const earliest = Math.min(...[...this.members.values()].map(c => c.notAfter))
      assert(this.expiryMs === (this.members.size === 0 ? undefined : earliest), 'the cached expiry is the earliest notAfter')
    }
  }

  // --- internals -------------------------------------------------------------------------------

  /** The refusal for a certificate's network, issuer and revocations (time aside). */
  private refusalOf (cert: Certificate): CertificateRefusal | undefined {
    if (cert.network !== this.networkId) return 'wrong-network'
    if (!this.founded(cert) && this.adminOf(cert.issuer, cert.peer) === undefined) return 'unknown-issuer'
    // The founder's revocations, and those of the admin that signed this certificate (SCOPE).
    const scope = this.founded(cert) ? [''] : ['', `d:${cert.issuer}:`]
    for (const prefix of scope) {
      for (const key of [`${prefix}s:${cert.serial}`, `${prefix}p:${cert.peer}`]) {
        const rev = this.revoked.get(key)
        if (rev !== undefined && matches(rev, cert)) return 'revoked'
      }
    }
    return undefined
  }

  /** Where a revocation is kept: the founder's by target, a delegated admin's under its issuer (SCOPE). */
  private keyOf (rev: Revocation): string {
    const target = rev.serial !== undefined ? `s:${rev.serial}` : `p:${rev.peer ?? ''}`
    return this.issuers.has(rev.issuer) ? target : `d:${rev.issuer}:${target}`
  }

  /** Whether a revocation takes away a certificate: it names it, and the founder or the certificate's own signer signed it. */
  private applies (rev: Revocation, cert: Certificate): boolean {
    return matches(rev, cert) && (this.issuers.has(rev.issuer) || rev.issuer === cert.issuer)
  }

  private founded (cert: Certificate): boolean {
    return this.issuers.has(cert.issuer)
  }

  /** Whether the certificate makes its holder a delegated admin. */
  private delegates (cert: Certificate | undefined): boolean {
    return cert !== undefined && this.founded(cert) && cert.roles.includes('admin')
  }

  /** The held delegated admin whose key `issuer` is (time aside); never `subject` itself. */
  private adminOf (issuer: string, subject: string | undefined): string | undefined {
    const peer = this.issuerPeerId(issuer)
    if (peer === undefined || peer === subject || !this.delegates(this.members.get(peer))) return undefined
    return peer
  }

  /** Whether `a` is to be held rather than `b`: founder-signed first, then the newest (MEMBERS). */
  private better (a: Certificate, b: Certificate): boolean {
    if (this.founded(a) !== this.founded(b)) return this.founded(a)
    return newer(a, b)
  }

  private hold (cert: Certificate, admin: string | undefined): void {
    this.members.set(cert.peer, copyCertificate(cert))
    this.bySerial.set(cert.serial, cert.peer)
    this.expiryStale = true
    if (admin === undefined) return
    this.delegatedBy.set(cert.peer, admin)
    const holders = this.dependents.get(admin)
    if (holders === undefined) this.dependents.set(admin, new Set([cert.peer]))
    else holders.add(cert.peer)
  }

  /** Drops a held certificate and, with `cascade`, every certificate its holder signed as an admin (DELEGATION). */
  private dropMember (cert: Certificate, cascade = true): void {
    this.members.delete(cert.peer)
    this.bySerial.delete(cert.serial)
    this.expiryStale = true
    this.outputs.push({ type: 'forget-certificate', peerId: cert.peer, serial: cert.serial })
    const admin = this.delegatedBy.get(cert.peer)
    if (admin !== undefined) {
      this.delegatedBy.delete(cert.peer)
      const holders = this.dependents.get(admin)
      holders?.delete(cert.peer)
      if (holders?.size === 0) this.dependents.delete(admin)
    }
    const holders = cascade ? this.dependents.get(cert.peer) : undefined
    if (holders === undefined) return
    for (const holder of [...holders]) {
      const signed = this.members.get(holder)
      if (signed === undefined) continue
      this.dropMember(signed, false) // depth 1: a delegated certificate has no dependents
      this.outputs.push({ type: 'revoked', peerId: holder })
    }
  }

  /** Room for a new revocation `rev` (BOUNDING REVOCATIONS): under its admin's cap, and in the set;
   *  drops one revocation to make it where one may go. False: refuse `full`. */
  private makeRoom (rev: Revocation, now: number): boolean {
    const founder = this.issuers.has(rev.issuer)
    if (!founder && (this.scopedCounts.get(rev.issuer) ?? 0) >= DELEGATED_REVOCATIONS_MAX) {
      const own = this.oldestRevocation(r => r.issuer === rev.issuer)
      if (own === undefined || !obsolete(own[1], now)) return false
      this.forgetRevocation(...own)
    }
    if (this.revoked.size < this.revocationsMax) return true
    const oldest = this.oldestRevocation(() => true)
    const victim = oldest !== undefined && obsolete(oldest[1], now)
      ? oldest
      : this.oldestRevocation(r => !this.issuers.has(r.issuer) && (founder || !this.honoured(r.issuer, now)))
    if (victim === undefined) return false
    this.forgetRevocation(...victim)
    return true
  }

  /** The held revocation with the smallest atMs among those `which` picks. O(revocations): only when full. */
  private oldestRevocation (which: (rev: Revocation) => boolean): [string, Revocation] | undefined {
    let oldest: [string, Revocation] | undefined
    for (const entry of this.revoked) if (which(entry[1]) && (oldest === undefined || entry[1].atMs < oldest[1].atMs)) oldest = entry
    return oldest
  }

  /** Whether `issuer` is the key of a delegated admin held and valid now. */
  private honoured (issuer: string, now: number): boolean {
    const admin = this.adminOf(issuer, undefined)
    return admin !== undefined && current(this.members.get(admin), now)
  }

  private keepRevocation (key: string, rev: Revocation): void {
    this.revoked.set(key, rev)
    if (!this.issuers.has(rev.issuer)) this.scopedCounts.set(rev.issuer, (this.scopedCounts.get(rev.issuer) ?? 0) + 1)
  }

  private forgetRevocation (key: string, rev: Revocation): void {
    this.revoked.delete(key)
    this.outputs.push({ type: 'forget-revocation', revocation: rev })
    if (this.issuers.has(rev.issuer)) return
    const n = (this.scopedCounts.get(rev.issuer) ?? 0) - 1
    if (n > 0) this.scopedCounts.set(rev.issuer, n)
    else this.scopedCounts.delete(rev.issuer)
  }

  private load (options: PermissionOptionsClosed): void {
    const revocations = [...(options.revocations ?? [])]
    for (const rev of revocations) if (!validRevocation(rev)) throw new ConfigError('revocations', 'a stored revocation is malformed')
    revocations.sort((a, b) => b.atMs - a.atMs) // newest first: those are kept when over the limit
    for (const rev of revocations) {
      const key = this.keyOf(rev)
      // Stored revocations were checked when accepted; a delegated admin's stays in force after the admin is gone.
      const underCap = this.issuers.has(rev.issuer) || (this.scopedCounts.get(rev.issuer) ?? 0) < DELEGATED_REVOCATIONS_MAX
      const fits = this.revoked.size < this.revocationsMax && rev.network === this.networkId && underCap
      if (!this.revoked.has(key) && fits) this.keepRevocation(key, copyRevocation(rev))
      else this.outputs.push({ type: 'forget-revocation', revocation: copyRevocation(rev) })
    }
    const certificates = [...(options.certificates ?? [])]
    for (const cert of certificates) if (!validCertificate(cert)) throw new ConfigError('certificates', 'a stored certificate is malformed')
    // Best first: founder-signed (admins among them) before delegated, so an admin is held before what it signed.
    certificates.sort((a, b) => this.better(a, b) ? -1 : this.better(b, a) ? 1 : 0)
    for (const cert of certificates) {
      const fits = this.members.size < this.certificatesMax && this.refusalOf(cert) === undefined && !this.bySerial.has(cert.serial)
      if (!this.members.has(cert.peer) && fits) {
        this.hold(cert, this.founded(cert) ? undefined : this.adminOf(cert.issuer, cert.peer))
      } else {
        this.outputs.push({ type: 'forget-certificate', peerId: cert.peer, serial: cert.serial })
      }
    }
    this.expiryStale = true
  }

  private advance (nowMs: number): number {
    assert(Number.isFinite(nowMs), 'time is a finite number of ms')
    if (nowMs > this.clockMs) this.clockMs = nowMs
    return this.clockMs
  }
}

function limit (value: number | undefined, fallback: number, field: string): number {
  const n = value ?? fallback
  if (!Number.isSafeInteger(n) || n < 1 || n > fallback) throw new ConfigError(field, `must be an integer in 1..${fallback}, got ${String(n)}`)
  return n
}

/** Whether `a` is newer than `b` (see MEMBERS). */
function newer (a: Certificate, b: Certificate): boolean {
  if (a.notBefore !== b.notBefore) return a.notBefore > b.notBefore
  if (a.notAfter !== b.notAfter) return a.notAfter > b.notAfter
  return a.serial > b.serial
}

/** Whether a held certificate is valid at `now` (undefined: none held). */
function current (cert: Certificate | undefined, now: number): boolean {
  return cert !== undefined && now < cert.notAfter && cert.notBefore <= now + CLOCK_SKEW_MS
}

function matches (rev: Revocation, cert: Certificate): boolean {
  const names = rev.serial !== undefined ? rev.serial === cert.serial : rev.peer === cert.peer
  return names && cert.notBefore <= rev.atMs
}

function obsolete (rev: Revocation, now: number): boolean {
  return now >= rev.atMs + CERTIFICATE_VALIDITY_MS_MAX
}

function isTime (value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

function nonEmpty (value: unknown): value is string {
  return typeof value === 'string' && value.length > 0
}

function validCertificate (c: Certificate): boolean {
  return typeof c === 'object' && c !== null && nonEmpty(c.network) && nonEmpty(c.peer) && nonEmpty(c.serial) && nonEmpty(c.issuer) &&
    Array.isArray(c.roles) && c.roles.length > 0 && c.roles.every(r => ROLES.includes(r)) &&
    isTime(c.notBefore) && isTime(c.notAfter) && c.notBefore < c.notAfter && c.signature instanceof Uint8Array
}

function validRevocation (r: Revocation): boolean {
  return typeof r === 'object' && r !== null && nonEmpty(r.network) && nonEmpty(r.issuer) && isTime(r.atMs) &&
    (r.serial === undefined) !== (r.peer === undefined) && (r.serial === undefined || nonEmpty(r.serial)) &&
    (r.peer === undefined || nonEmpty(r.peer)) && r.signature instanceof Uint8Array
}

function copyCertificate (c: Certificate): Certificate {
  return { network: c.network, peer: c.peer, roles: [...c.roles], notBefore: c.notBefore, notAfter: c.notAfter, serial: c.serial, issuer: c.issuer, signature: c.signature }
}

function copyRevocation (r: Revocation): Revocation {
  const copy: Revocation = { network: r.network, atMs: r.atMs, issuer: r.issuer, signature: r.signature }
  if (r.serial !== undefined) copy.serial = r.serial
  if (r.peer !== undefined) copy.peer = r.peer
  return copy
}
