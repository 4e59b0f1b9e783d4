import t from 'tap'
import fc from 'fast-check'
import { errorCodes, signTag, verifySignedTag } from '../src/index.ts'

const k1 = { id: 'k1', secret: 'first-secret-123456' }
const k2 = { id: 'k2', secret: 'second-secret-123456' }
const keys = new Map([[k1.id, k1.secret], [k2.id, k2.secret]])
const now = 1_800_000_000_000

t.test('sign and verify; any listed key verifies', async (t) => {
  const token = signTag('qa-1', 3600, k1, now)
  t.match(token, /^qa-1~1800003600~k1~[A-Za-z0-9_-]{43}$/)
  t.same(verifySignedTag(token, keys, now), { lane: 'qa-1', keyId: 'k1' })
  t.same(verifySignedTag(signTag('qa-2', 60, k2, now), keys, now), { lane: 'qa-2', keyId: 'k2' })
  t.same(verifySignedTag(token, keys, now + 3600_000), { refused: 'expired' })
  t.same(verifySignedTag(token, new Map([[k2.id, k2.secret]]), now), { refused: 'unknown-key' }, 'a retired key stops verifying')
})

t.test('any change to a token is refused', async (t) => {
  const token = signTag('qa-1', 3600, k1, now)
  fc.assert(fc.property(fc.nat(token.length - 1), fc.constantFrom(...'abcXYZ019~-_.'), (at, c) => {
    if (token[at] === c) return true
    const r = verifySignedTag(token.slice(0, at) + c + token.slice(at + 1), keys, now)
    return 'refused' in r
  }), { numRuns: 500 })
  for (const bad of [undefined, 42, '', 'qa-1', 'a~b~c', `${token}~x`, 'x'.repeat(300), token.replace('~k1~', '~k 1~')]) {
    t.ok('refused' in verifySignedTag(bad, keys, now), String(bad).slice(0, 20))
  }
})

t.test('signTag validates its arguments', async (t) => {
  t.throws(() => signTag('bad lane', 60, k1), { code: errorCodes.SIGNING, message: /lane/ })
  t.throws(() => signTag('v1', 0, k1), { code: errorCodes.SIGNING, message: /ttlSeconds/ })
  t.throws(() => signTag('v1', 1.5, k1), { code: errorCodes.SIGNING, message: /ttlSeconds/ })
  t.throws(() => signTag('v1', 60, { id: 'k~1', secret: k1.secret }), { code: errorCodes.SIGNING, message: /key\.id/ })
  t.throws(() => signTag('v1', 60, { id: 'k1', secret: 'short' }), { code: errorCodes.SIGNING, message: /secret/ })
  t.throws(() => signTag('v1', 60, null as never), { code: errorCodes.SIGNING })
})
