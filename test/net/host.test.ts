import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { after, before, describe, test } from 'node:test'
import { createHost, userAgent } from '../../src/net/host.ts'
import { VERSION } from '../../src/model/version.ts'
import type { Host } from '../../src/net/host.ts'

describe('the libp2p host', () => {
  let a: Host
  let b: Host
  const host = async (): Promise<Host> => await createHost({
    privateKey: await generateKeyPair('Ed25519'), networkId: 'host-test', listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false, isBlocked: () => false
  })
  before(async () => { a = await host(); b = await host() })
  after(async () => { await a?.stop(); await b?.stop() })

  test('identify advertises rhizome/<version> as the agent, not js-libp2p', async () => {
    assert.equal(userAgent(), `rhizome/${VERSION}`)
    await a.dial(b.getMultiaddrs()[0], { signal: AbortSignal.timeout(10_000) })
    const deadline = Date.now() + 10_000
    let agent: string | undefined
    while (Date.now() < deadline) {
      const peer = await a.peerStore.get(b.peerId).catch(() => undefined)
      const bytes = peer?.metadata.get('AgentVersion')
      if (bytes !== undefined) { agent = new TextDecoder().decode(bytes); break }
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    assert.equal(agent, `rhizome/${VERSION}`)
  })
})
