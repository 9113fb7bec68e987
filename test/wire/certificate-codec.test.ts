// Certificates and revocations on the wire: a valid one round-trips; a real Ed25519 signature over
// the signing bytes stops verifying when any signed field changes; every structural flaw is
// refused by name, one past each limit, before any signature is looked at.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { ProtocolViolationError, TooLargeError } from '../../src/model/errors.ts'
import { CERTIFICATE_VALIDITY_MS_MAX } from '../../src/protocol/permission/index.ts'
import {
  CERTIFICATE_BYTES_MAX, CERTIFICATE_FILE_BYTES_MAX, decodeCertificateFile, encodeCertificateFile, REVOCATION_BYTES_MAX, ROLES_MAX, SERIAL_CHARS_MAX, SIGNATURE_BYTES_MAX, certificateSigningBytes, decodeCertificate,
  decodeRevocation, encodeCertificate, encodeRevocation, isPermissionedNetworkId, issuerKey, issuerOf, networkIdOf, revocationSigningBytes
} from '../../src/wire/certificate-codec.ts'
import type { Certificate, Revocation } from '../../src/wire/certificate-codec.ts'

const admin = await generateKeyPair('Ed25519')
const member = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
const network = await networkIdOf(admin.publicKey.raw)

async function signed (fields: Omit<Certificate, 'signature'>): Promise<Certificate> {
  return { ...fields, signature: Uint8Array.from(await admin.sign(certificateSigningBytes(fields))) }
}

async function certificate (): Promise<Certificate> {
  return await signed({ network, peer: member, roles: ['client', 'worker'], notBefore: 1_000, notAfter: 1_000 + 86_400_000, serial: 'serial-1', issuer: issuerOf(admin.publicKey.raw) })
}

async function verifies (cert: Certificate): Promise<boolean> {
  const { signature, ...fields } = cert
  return await admin.publicKey.verify(certificateSigningBytes(fields), signature)
}

function raw (bytes: Uint8Array, edit: (body: Record<string, any>) => void): Uint8Array {
  const body = dagCbor.decode(bytes) as Record<string, any>
  edit(body)
  return dagCbor.encode(body)
}

describe('network id', () => {
  it('is derived from the admin key: the same key gives the same id, another key another', async () => {
    assert.equal(await networkIdOf(admin.publicKey.raw), network)
    assert.match(network, /^rz-[a-z2-7]{26}$/)
    assert.ok(isPermissionedNetworkId(network))
    const other = await generateKeyPair('Ed25519')
    assert.notEqual(await networkIdOf(other.publicKey.raw), network)
  })

  it('issuer strings round-trip the raw public key', () => {
    const issuer = issuerOf(admin.publicKey.raw)
    assert.equal(issuer.length, 43)
    assert.deepEqual(issuerKey(issuer), admin.publicKey.raw)
    assert.throws(() => issuerKey(issuer + 'A'), ProtocolViolationError)
  })
})

describe('certificate codec', () => {
  it('round-trips a certificate whose real signature verifies', async () => {
    const cert = await certificate()
    const bytes = encodeCertificate(cert)
    assert.ok(bytes.byteLength < CERTIFICATE_BYTES_MAX / 4, `a certificate is ${bytes.byteLength} bytes`)
    const back = decodeCertificate(bytes)
    assert.deepEqual(back, cert)
    assert.equal(await verifies(back), true)
    assert.deepEqual(encodeCertificate(back), bytes, 'the encoding is deterministic')
  })

  it('a tampered signature, network, role, date, serial or issuer no longer verifies', async () => {
    const cert = await certificate()
    const other = await generateKeyPair('Ed25519')
    const flipped = new Uint8Array(cert.signature)
    flipped[0] ^= 1
    const tampered: Certificate[] = [
      { ...cert, signature: flipped },
      { ...cert, network: await networkIdOf(other.publicKey.raw) },
      { ...cert, roles: ['worker'] },
      { ...cert, roles: ['admin', 'client', 'worker'] },
      { ...cert, notBefore: cert.notBefore - 1 },
      { ...cert, notAfter: cert.notAfter + 1 },
      { ...cert, serial: 'serial-2' },
      { ...cert, peer: peerIdFromPrivateKey(other).toString() },
      { ...cert, issuer: issuerOf(other.publicKey.raw) }
    ]
    for (const t of tampered) assert.equal(await verifies(decodeCertificate(encodeCertificate(t))), false, JSON.stringify({ ...t, signature: undefined }))
    assert.equal(await verifies(cert), true)
  })

  it('signs and sends roles in one order: unsorted roles sign the same bytes, unsorted on the wire is refused', async () => {
    const cert = await certificate()
    assert.deepEqual(certificateSigningBytes({ ...cert, roles: ['worker', 'client', 'worker'] }), certificateSigningBytes(cert))
    const unsorted = raw(encodeCertificate(cert), b => { b.roles = ['worker', 'client'] })
    assert.throws(() => decodeCertificate(unsorted), /certificate\.roles: must be sorted and unique/)
    const twice = raw(encodeCertificate(cert), b => { b.roles = ['worker', 'worker'] })
    assert.throws(() => decodeCertificate(twice), /certificate\.roles: must be sorted and unique/)
  })

  it(`refuses more than ${ROLES_MAX} roles, none, or an unknown one`, async () => {
    const bytes = encodeCertificate(await certificate())
    assert.throws(() => decodeCertificate(raw(bytes, b => { b.roles = ['admin', 'client', 'worker', 'worker'] })), /certificate\.roles: must be a list of 1\.\.3 roles/)
    assert.throws(() => decodeCertificate(raw(bytes, b => { b.roles = [] })), /certificate\.roles: must be a list/)
    assert.throws(() => decodeCertificate(raw(bytes, b => { b.roles = ['root'] })), /certificate\.roles: must each be one of/)
  })

  it(`refuses a serial of ${SERIAL_CHARS_MAX + 1} characters, accepts ${SERIAL_CHARS_MAX}`, async () => {
    const cert = await certificate()
    assert.equal(decodeCertificate(encodeCertificate({ ...cert, serial: 's'.repeat(SERIAL_CHARS_MAX) })).serial.length, SERIAL_CHARS_MAX)
    assert.throws(() => decodeCertificate(encodeCertificate({ ...cert, serial: 's'.repeat(SERIAL_CHARS_MAX + 1) })), /certificate\.serial:/)
    assert.throws(() => decodeCertificate(encodeCertificate({ ...cert, serial: 'a b' })), /certificate\.serial:/)
  })

  it('refuses dates out of order or a validity past the longest', async () => {
    const cert = await certificate()
    assert.throws(() => decodeCertificate(encodeCertificate({ ...cert, notAfter: cert.notBefore })), /certificate\.notAfter: must be after notBefore/)
    const longest = { ...cert, notAfter: cert.notBefore + CERTIFICATE_VALIDITY_MS_MAX }
    assert.equal(decodeCertificate(encodeCertificate(longest)).notAfter, longest.notAfter)
    assert.throws(() => decodeCertificate(encodeCertificate({ ...longest, notAfter: longest.notAfter + 1 })), /certificate\.notAfter: a certificate may be valid/)
    assert.throws(() => decodeCertificate(encodeCertificate({ ...cert, notBefore: -1 })), /certificate\.notBefore:/)
    assert.throws(() => decodeCertificate(raw(encodeCertificate(cert), b => { b.notAfter = 1.5 })), /certificate\.notAfter:/)
  })

  it(`refuses a signature of ${SIGNATURE_BYTES_MAX + 1} bytes or none`, async () => {
    const cert = await certificate()
    assert.throws(() => decodeCertificate(encodeCertificate({ ...cert, signature: new Uint8Array(SIGNATURE_BYTES_MAX + 1) })), /certificate\.signature:/)
    assert.throws(() => decodeCertificate(encodeCertificate({ ...cert, signature: new Uint8Array(0) })), /certificate\.signature:/)
    assert.throws(() => decodeCertificate(raw(encodeCertificate(cert), b => { b.signature = 'sig' })), /certificate\.signature:/)
  })

  it('refuses malformed fields by name, unknown fields, and non-maps', async () => {
    const bytes = encodeCertificate(await certificate())
    const cases: Array<[(b: Record<string, any>) => void, RegExp]> = [
      [b => { b.network = 'open-net' }, /certificate\.network:/],
      [b => { delete b.network }, /certificate\.network:/],
      [b => { b.peer = 'not a peer id!' }, /certificate\.peer:/],
      [b => { b.peer = '1'.repeat(129) }, /certificate\.peer:/],
      [b => { b.issuer = 'short' }, /certificate\.issuer:/],
      [b => { b.extra = 1 }, /certificate\.extra: is not a field/]
    ]
    for (const [edit, error] of cases) assert.throws(() => decodeCertificate(raw(bytes, edit)), error)
    assert.throws(() => decodeCertificate(dagCbor.encode([1, 2])), /certificate\.\(root\): must be a map/)
    assert.throws(() => decodeCertificate(new Uint8Array([0xff, 0x00])), /not dag-cbor/)
  })

  it(`refuses one byte past ${CERTIFICATE_BYTES_MAX} before decoding, and deep nesting before decoding`, () => {
    const big = new Uint8Array(CERTIFICATE_BYTES_MAX + 1)
    assert.throws(() => decodeCertificate(big), (err: unknown) => err instanceof TooLargeError && err.bytesMax === CERTIFICATE_BYTES_MAX)
    let deep: unknown = 1
    for (let i = 0; i < 6; i++) deep = [deep]
    assert.throws(() => decodeCertificate(dagCbor.encode({ roles: deep })), /nests deeper than 4/)
  })
})

describe('revocation codec', () => {
  async function revocation (target: { serial: string } | { peer: string }): Promise<Revocation> {
    const fields = { network, ...target, atMs: 5_000, issuer: issuerOf(admin.publicKey.raw) }
    return { ...fields, signature: Uint8Array.from(await admin.sign(revocationSigningBytes(fields))) }
  }
  async function verifies (rev: Revocation): Promise<boolean> {
    const { signature, ...fields } = rev
    return await admin.publicKey.verify(revocationSigningBytes(fields), signature)
  }

  it('round-trips a revocation by serial and by peer, each verifying', async () => {
    for (const target of [{ serial: 'serial-1' }, { peer: member }]) {
      const rev = await revocation(target)
      const back = decodeRevocation(encodeRevocation(rev))
      assert.deepEqual(back, rev)
      assert.equal(await verifies(back), true)
    }
  })

  it('a changed target, time or network no longer verifies', async () => {
    const rev = await revocation({ serial: 'serial-1' })
    const other = await generateKeyPair('Ed25519')
    for (const t of [{ ...rev, serial: 'serial-2' }, { ...rev, atMs: 5_001 }, { ...rev, network: await networkIdOf(other.publicKey.raw) }]) {
      assert.equal(await verifies(decodeRevocation(encodeRevocation(t))), false)
    }
    const { serial: _serial, ...bySerial } = rev
    assert.equal(await verifies({ ...bySerial, peer: member }), false, 'a serial revocation cannot be turned into a peer revocation')
  })

  it('names exactly one of serial and peer', async () => {
    const rev = await revocation({ serial: 'serial-1' })
    assert.throws(() => decodeRevocation(encodeRevocation({ ...rev, peer: member })), /revocation\.serial: a revocation names a serial or a peer, exactly one/)
    const { serial: _serial, ...neither } = rev
    assert.throws(() => decodeRevocation(encodeRevocation(neither)), /exactly one/)
  })

  it(`refuses one byte past ${REVOCATION_BYTES_MAX}, bad fields by name`, async () => {
    assert.throws(() => decodeRevocation(new Uint8Array(REVOCATION_BYTES_MAX + 1)), TooLargeError)
    const bytes = encodeRevocation(await revocation({ peer: member }))
    assert.throws(() => decodeRevocation(raw(bytes, b => { b.atMs = -5 })), /revocation\.atMs:/)
    assert.throws(() => decodeRevocation(raw(bytes, b => { b.peer = '' })), /revocation\.peer:/)
    assert.throws(() => decodeRevocation(raw(bytes, b => { b.roles = ['worker'] })), /revocation\.roles: is not a field/)
  })
})

describe('certificate files', () => {
  it('a bare certificate, or one with its issuing admin\'s, round-trips', async () => {
    const cert = await certificate()
    const adminCert = await signed({ network, peer: peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString(), roles: ['admin'], notBefore: 1_000, notAfter: 2_000, serial: 'admin-1', issuer: issuerOf(admin.publicKey.raw) })
    assert.deepEqual(encodeCertificateFile({ certificate: cert }), encodeCertificate(cert), 'a founder-signed file is the certificate itself')
    assert.deepEqual(decodeCertificateFile(encodeCertificate(cert)), { certificate: cert })
    const both = encodeCertificateFile({ certificate: cert, issuerCertificate: adminCert })
    assert.ok(both.byteLength <= CERTIFICATE_FILE_BYTES_MAX)
    assert.deepEqual(decodeCertificateFile(both), { certificate: cert, issuerCertificate: adminCert })
  })

  it(`refuses one byte past ${CERTIFICATE_FILE_BYTES_MAX} before decoding, an unknown field, and a part that is not a certificate`, async () => {
    assert.throws(() => decodeCertificateFile(new Uint8Array(CERTIFICATE_FILE_BYTES_MAX + 1)), (err: unknown) => err instanceof TooLargeError && err.bytesMax === CERTIFICATE_FILE_BYTES_MAX)
    const cert = encodeCertificate(await certificate())
    assert.throws(() => decodeCertificateFile(dagCbor.encode({ certificate: cert, issuerCertificate: cert, extra: 1 })), /certificate file\.extra: is not a field/)
    assert.throws(() => decodeCertificateFile(dagCbor.encode({ certificate: cert, issuerCertificate: 'x' })), /certificate file\.issuerCertificate:/)
    assert.throws(() => decodeCertificateFile(dagCbor.encode({ certificate: cert, issuerCertificate: new Uint8Array([0xa0]) })), ProtocolViolationError)
  })
})
