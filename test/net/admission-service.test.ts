// The remote address admission counts connections by: the IP, without port or transport.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { remoteAddressOf } from '../../src/net/admission-service.ts'

describe('remoteAddressOf', () => {
  it('takes the IP of TCP and WebSocket addresses, and knows loopback', () => {
    assert.deepEqual(remoteAddressOf(multiaddr('/ip4/198.51.100.7/tcp/4001')), { address: '198.51.100.7', loopback: false })
    assert.deepEqual(remoteAddressOf(multiaddr('/ip4/198.51.100.7/tcp/4002/ws')), { address: '198.51.100.7', loopback: false })
    assert.deepEqual(remoteAddressOf(multiaddr('/ip4/127.0.0.1/tcp/4001')), { address: '127.0.0.1', loopback: true })
    assert.deepEqual(remoteAddressOf(multiaddr('/ip4/127.8.9.10/tcp/4001')), { address: '127.8.9.10', loopback: true })
    assert.deepEqual(remoteAddressOf(multiaddr('/ip6/::1/tcp/4001')), { address: '::1', loopback: true })
    assert.deepEqual(remoteAddressOf(multiaddr('/ip6/2001:db8::1/tcp/4001')), { address: '2001:db8::1', loopback: false })
  })

  it('has no address for a transport without an IP', () => {
    assert.deepEqual(remoteAddressOf(multiaddr('/dns4/example.com/tcp/4001')), { address: undefined, loopback: false })
  })
})
