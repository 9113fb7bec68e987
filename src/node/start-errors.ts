/**
 * Why a peer could not start, for the failures a user causes and can fix: a data dir whose
 * parts are the wrong kind of file, a database file that is not a database, an address that
 * cannot be listened on. Each names the path or address and says what to do; the CLI prints
 * them without a stack trace.
 */
import { RhizomeError } from '../model/errors.ts'
import type { RhizomeErrorOptions } from '../model/errors.ts'

/** A path in the data dir is not what the peer keeps there (a file where a directory goes, ...). */
export class DataDirError extends RhizomeError {
  readonly path: string
  constructor (path: string, problem: string, options: RhizomeErrorOptions = {}) {
    super('ERR_DATA_DIR', `${path} ${problem}`, options)
    this.name = 'DataDirError'
    this.path = path
  }
}

/** `rhizome.db` exists but SQLite cannot open it as a database. */
export class DatabaseOpenError extends RhizomeError {
  readonly path: string
  constructor (path: string, reason: string, options: RhizomeErrorOptions = {}) {
    super('ERR_DATABASE', `cannot open the database ${path}: ${reason}`, {
      hint: `if it is damaged or not Rhizome's, move it aside (e.g. mv ${path} ${path}.bad); the peer then starts with an empty database and keeps its identity`,
      ...options
    })
    this.name = 'DatabaseOpenError'
    this.path = path
  }
}

/** The peer-to-peer transports could not listen on one or more `--listen` addresses. */
export class ListenError extends RhizomeError {
  readonly addrs: string[]
  constructor (failures: Array<{ addr: string, reason: string }>, options: RhizomeErrorOptions = {}) {
    super('ERR_LISTEN', `cannot listen on ${failures.map(f => `${f.addr} (${f.reason})`).join(', ')}`, { hint: listenHint(failures.map(f => f.reason).join(' ')), ...options })
    this.name = 'ListenError'
    this.addrs = failures.map(f => f.addr)
  }
}

/** The local HTTP API could not bind its host and port. */
export class ApiListenError extends RhizomeError {
  constructor (host: string, port: number, reason: string, options: RhizomeErrorOptions = {}) {
    super('ERR_API_LISTEN', `cannot start the HTTP API on ${host}:${port}: ${reason}`, {
      hint: reason.includes('EADDRINUSE')
        ? 'another program (or another peer) uses that port: choose another --api-port, or 0 for any free one'
        : 'use --api-host 127.0.0.1 and --api-port 0 (any free port)',
      ...options
    })
    this.name = 'ApiListenError'
  }
}

function listenHint (reasons: string): string {
  if (reasons.includes('EADDRINUSE')) return 'that port is taken: choose another port in --listen, or port 0 for any free one'
  if (reasons.includes('EADDRNOTAVAIL')) return 'that IP address is not one of this machine\'s: listen on 0.0.0.0, 127.0.0.1 or an address of this machine'
  if (reasons.includes('EACCES')) return 'ports below 1024 need privileges: choose a port of 1024 or more, or 0 for any free one'
  if (/no transport/i.test(reasons)) return 'Rhizome listens on TCP (/ip4/0.0.0.0/tcp/4001) and WebSockets (/ip4/0.0.0.0/tcp/4002/ws) addresses only'
  return 'check the --listen addresses; e.g. /ip4/0.0.0.0/tcp/0 listens on any free TCP port'
}

/**
 * The per-address failures in libp2p's "some addresses failed" error, whose message lists them
 * as "  /ip4/…: SomeError: reason" lines followed by stack frames.
 */
export function listenFailures (err: unknown, listen: string[]): Array<{ addr: string, reason: string }> {
  const message = String((err as Error)?.message ?? err)
  const failures: Array<{ addr: string, reason: string }> = []
  for (const match of message.matchAll(/^\s*(\/\S+): (?:[A-Za-z]*Error: )?(.+)$/gm)) {
    failures.push({ addr: match[1], reason: match[2].trim() })
  }
  if (failures.length > 0) return failures
  const code = (err as NodeJS.ErrnoException)?.code
  return [{ addr: listen.join(', '), reason: code ?? message.split('\n')[0] }]
}

/** This peer's own membership certificate (`--certificate`) cannot be used: unreadable, malformed,
 *  not signed by the network's admin, for another peer, or outside its validity window. */
export class CertificateError extends RhizomeError {
  readonly path: string
  constructor (path: string, problem: string, options: RhizomeErrorOptions = {}) {
    super('ERR_CERTIFICATE', `the certificate ${path} ${problem}`, {
      hint: 'ask the network\'s admin for a new one: `rhizome network admit <this peer\'s id>` on the admin\'s machine, then start with --certificate FILE',
      ...options
    })
    this.name = 'CertificateError'
    this.path = path
  }
}
