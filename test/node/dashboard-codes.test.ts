import assert from 'node:assert/strict'
import { test } from 'node:test'
import { SIGN_IN_CODES_MAX, SIGN_IN_CODE_TTL_MS, SignInCodeError, SignInCodes, TooManySignInCodesError } from '../../src/node/dashboard.ts'

test('a sign-in code works once', () => {
  const codes = new SignInCodes(() => 1000)
  const { code, expiresInMs } = codes.issue()
  assert.equal(expiresInMs, SIGN_IN_CODE_TTL_MS)
  assert.match(code, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url')
  codes.redeem(code)
  assert.throws(() => { codes.redeem(code) }, SignInCodeError)
  assert.equal(codes.size, 0)
})

test('a code never handed out is refused', () => {
  const codes = new SignInCodes(() => 0)
  codes.issue()
  assert.throws(() => { codes.redeem('made-up') }, (err: unknown) => err instanceof SignInCodeError && err.code === 'ERR_SIGN_IN_CODE' && /--open/.test(err.hint ?? ''))
  assert.equal(codes.size, 1, 'a wrong guess uses up no code')
})

test('a code works until its lifetime is up, and not one millisecond after', () => {
  let now = 5000
  const codes = new SignInCodes(() => now)
  const last = codes.issue().code
  const late = codes.issue().code
  now += SIGN_IN_CODE_TTL_MS - 1
  codes.redeem(last)
  now += 1
  assert.throws(() => { codes.redeem(late) }, SignInCodeError)
})

test('at most SIGN_IN_CODES_MAX codes are outstanding; used and expired ones make room', () => {
  let now = 0
  const codes = new SignInCodes(() => now)
  const issued = Array.from({ length: SIGN_IN_CODES_MAX }, () => codes.issue().code)
  assert.throws(() => codes.issue(), (err: unknown) => err instanceof TooManySignInCodesError && err.retryable)
  codes.redeem(issued[0])
  codes.issue() // the used one's place
  assert.throws(() => codes.issue(), TooManySignInCodesError)
  now += SIGN_IN_CODE_TTL_MS
  assert.equal(codes.size, 0, 'every code has expired')
  codes.issue()
})
