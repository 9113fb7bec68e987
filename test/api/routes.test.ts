import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ROUTES, matchRoute, routePath } from '../../src/api/routes.ts'
import type { Route, RouteName } from '../../src/api/routes.ts'

describe('the route table', () => {
  test('paths are unique per method, and every path is under /v1/ but /metrics (where Prometheus scrapes by default) and the dashboard\'s public page and code', () => {
    const seen = new Set<string>()
    for (const route of Object.values(ROUTES)) {
      const key = `${route.method} ${route.path}`
      assert.ok(!seen.has(key), `${key} twice`)
      seen.add(key)
      const open = (route as Route).public === true
      if (route.path !== '/metrics') assert.match(route.path, open ? /^\/dashboard(\/|$)/ : /^\/v1\//)
      assert.equal(route.write, route.method !== 'GET', `${key}: writes are exactly the POST routes`)
    }
  })

  test('routePath fills parameters and each route matches its own path only', () => {
    for (const name of Object.keys(ROUTES) as RouteName[]) {
      const path = routePath(name, { cid: 'bafy x/y', id: 'bafy x/y', asset: 'bafy x/y' })
      assert.ok(!path.includes(':'), path)
      for (const other of Object.keys(ROUTES) as RouteName[]) {
        const params = matchRoute(ROUTES[other], ROUTES[name].method, path)
        if (other === name) assert.ok(params !== undefined, `${name} matches ${path}`)
        else assert.equal(params, undefined, `${other} must not match ${name}'s path ${path}`)
      }
    }
    assert.deepEqual(matchRoute(ROUTES.blobGet, 'GET', routePath('blobGet', { cid: 'bafy x/y' })), { cid: 'bafy x/y' })
  })

  test('a missing parameter is a broken invariant; a malformed one does not match', () => {
    assert.throws(() => routePath('blobGet'), /assertion failed/)
    assert.equal(matchRoute(ROUTES.blobGet, 'GET', '/v1/blobs/%E0%A4%A'), undefined)
    assert.equal(matchRoute(ROUTES.blobGet, 'GET', '/v1/blobs/'), undefined)
    assert.equal(matchRoute(ROUTES.blobGet, 'POST', '/v1/blobs/bafy'), undefined)
  })
})
