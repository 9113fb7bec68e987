/**
 * The process a peer runs one SQL query in (src/node/sql-service.ts forks it). It reads one
 * request from its parent, answers it, and exits. A query past its time limit is stopped by
 * killing this process: node:sqlite has no interrupt call, and a worker thread cannot be
 * terminated while it is inside SQLite.
 */
import { RhizomeError } from '../model/errors.ts'
import { runReadOnlyQuery } from '../store/sql-query.ts'
import type { SqlChildReply, SqlChildRequest } from './sql-service.ts'

process.once('message', (message: SqlChildRequest) => {
  let reply: SqlChildReply
  try {
    reply = { ok: true, answer: runReadOnlyQuery(message.dbPath, message.sql, { rowsMax: message.rowsMax, resultBytesMax: message.resultBytesMax }) }
  } catch (err) {
    const failure = err instanceof RhizomeError
      ? err
      : new RhizomeError('ERR_INTERNAL', `the query failed: ${(err as Error).message}`, { hint: 'see the peer\'s log' })
    reply = { ok: false, error: failure.toData() }
  }
  process.send!(reply, () => { process.disconnect() })
})
