// A peer's own certificate at start when a delegated admin signed it: the file holds the admin's
// certificate too, and each link is checked — the admin's certificate is the founder's, names the
// key that signed, has role admin, is valid now; a delegated certificate without it is refused.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { loadOwnCertificate } from '../../src/node/certificate.ts'
import { encodeCertificateFile, issuerOf } from '../../src/wire/certificate-codec.ts'
import type { Certificate } from '../../src/wire/certificate-codec.ts'
import { certify, createAdmin, writeCertificate } from '../helpers/certificates.ts'
import type { Admin } from '../helpers/certificates.ts'

const root = await mkdtemp(join(tmpdir(), 'rhizome-own-cert-'))
after(async () => { await rm(root, { recursive: true, force: true }) })

const founder = await createAdmin()
const adminKey = await generateKeyPair('Ed25519')
const adminPeer = peerIdFromPrivateKey(adminKey).toString()
const delegated: Admin = { key: adminKey, issuer: issuerOf(adminKey.publicKey.raw), networkId: founder.networkId }
const self = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
let files = 0

async function file (certificate: Certificate, issuerCertificate?: Certificate): Promise<string> {
  return await writeCertificate(root, `c${++files}.cert`, encodeCertificateFile({ certificate, ...(issuerCertificate !== undefined ? { issuerCertificate } : {}) }))
}

describe('own certificate signed by a delegated admin', () => {
  test('is accepted with its admin\'s certificate, and says who founded the network', async () => {
    const adminCert = await certify(founder, adminPeer, ['admin'])
    const own = await loadOwnCertificate(await file(await certify(delegated, self, ['worker']), adminCert), self, Date.now())
    assert.equal(own.founder, founder.issuer)
    assert.equal(own.issuerCertificate?.serial, adminCert.serial)
    assert.equal(own.issuerCertificate?.peer, adminPeer)
    // A founder-signed one is as before.
    assert.equal((await loadOwnCertificate(await file(await certify(founder, self, ['worker'])), self, Date.now())).founder, founder.issuer)
  })

  test('is refused by name when a link is missing or wrong', async () => {
    const mine = await certify(delegated, self, ['worker'])
    const other = await createAdmin()
    const cases: Array<[string, Certificate | undefined, RegExp]> = [
      ['no admin certificate', undefined, /did not found network .*--as/],
      ['the admin lacks role admin', await certify(founder, adminPeer, ['client', 'worker']), /lacks role admin/],
      ['the admin certificate is another peer\'s', await certify(founder, self, ['admin']), /not signed by the peer of/],
      ['the admin certificate is another network\'s', await certify(other, adminPeer, ['admin']), /not signed by the key that founded/],
      ['the admin certificate expired', await certify(founder, adminPeer, ['admin'], { notBefore: Date.now() - 10_000, notAfter: Date.now() - 1 }), /expired/],
      ['the admin certificate is altered', { ...await certify(founder, adminPeer, ['admin']), roles: ['admin', 'worker'] }, /does not verify/]
    ]
    for (const [what, adminCert, message] of cases) {
      await assert.rejects(loadOwnCertificate(await file(mine, adminCert), self, Date.now()), (err: Error & { code?: string }) => err.code === 'ERR_CERTIFICATE' && message.test(err.message), what)
    }
  })
})
