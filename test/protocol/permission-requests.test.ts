/**
 * Which requests a permissioned peer serves (src/protocol/permission/requests.ts), role by role.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ACTIONS_BY_ROLE } from '../../src/protocol/permission/index.ts'
import type { Action, Role } from '../../src/protocol/permission/index.ts'
import { protocolName, requestRefusal } from '../../src/protocol/permission/requests.ts'

const NET = 'rz-aaaaaaaaaaaaaaaaaaaaaaaaaa'
const proto = (name: string): string => `/rhizome/${NET}/${name}/1.0.0`

/** The refusal's type when `requester` (roles, or none: no certificate) asks `self` (roles) on `name`. */
function refusal (name: string, requester: Role[] | undefined, self: Role[]): string | undefined {
  const allows = (roles: Role[] | undefined, action: Action): boolean => roles?.some(r => ACTIONS_BY_ROLE[r].includes(action)) ?? false
  const r = requestRefusal(proto(name), (who, action) => allows(who === 'self' ? self : requester, action))
  return r === undefined ? undefined : r.type === 'role' ? `role:${r.who}` : r.type
}

describe('requestRefusal', () => {
  test('credentials are served to anyone; everything else to members only', () => {
    assert.equal(refusal('credentials', undefined, ['worker']), undefined)
    for (const name of ['hello', 'fn', 'blob', 'task', 'task-locate', 'home', 'something-new']) {
      assert.equal(refusal(name, undefined, ['worker']), 'not-a-member', name)
    }
  })

  test('tasks: asked by a client, an admin or a worker (a run taken over), served by a worker only', () => {
    for (const requester of [['client'], ['admin'], ['worker']] as Role[][]) assert.equal(refusal('task', requester, ['worker']), undefined, requester.join())
    assert.equal(refusal('task', ['worker'], ['client']), 'role:self')
    assert.equal(refusal('task', ['client'], ['admin']), 'role:self')
  })

  test('membership, functions, blobs, locate and home: any member', () => {
    for (const name of ['hello', 'fn', 'blob', 'task-locate', 'home']) {
      for (const requester of [['client'], ['admin'], ['worker']] as Role[][]) {
        for (const self of [['client'], ['worker']] as Role[][]) assert.equal(refusal(name, requester, self), undefined, `${name} ${requester.join()} → ${self.join()}`)
      }
    }
  })

  test('protocolName reads the name from a Rhizome protocol id, and leaves others whole', () => {
    assert.equal(protocolName(proto('task-locate')), 'task-locate')
    assert.equal(protocolName('/ipfs/id/1.0.0'), '/ipfs/id/1.0.0')
  })
})
