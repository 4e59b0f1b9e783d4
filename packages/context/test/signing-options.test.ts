// The one signing shape: its schema, the signer it makes, and `trust.signed` taking it as it is.
import t from 'tap'
import { createFlowTagger, laneSigner, signingOptionsSchema, verifySignedTag } from '../src/index.ts'

const signing = { keys: [{ id: 'k1', secret: 'a-secret-of-32-characters-length' }, { id: 'k0', secret: 'the-older-secret-still-verifies' }], ttlSeconds: 60 }
const secrets = new Map(signing.keys.map((k) => [k.id, k.secret]))

t.test('laneSigner: signs with the first key, one token per lane until half its lifetime', async (t) => {
  const sign = laneSigner(signing)
  const a = sign('v2')
  t.match(verifySignedTag(a, secrets), { lane: 'v2', keyId: 'k1' })
  t.equal(sign('v2'), a, 'cached per lane')
  t.not(sign('v3'), a)
  t.match(verifySignedTag(laneSigner({ keys: [signing.keys[0]!] })('v2'), secrets), { lane: 'v2' }, 'ttlSeconds defaults (300)')
  t.throws(() => sign('not a lane!'), { code: 'FLOWTAG_CONTEXT_SIGNING' })
})

t.test('the schema: keys and ttlSeconds, each bad field named', async (t) => {
  t.same(signingOptionsSchema.parse({ keys: signing.keys }).ttlSeconds, 300)
  const issue = (v: unknown) => signingOptionsSchema.safeParse(v).error?.issues[0]?.path.join('.')
  t.equal(issue({ keys: [] }), 'keys')
  t.equal(issue({ keys: [{ id: 'bad id!', secret: signing.keys[0]!.secret }] }), 'keys.0.id')
  t.equal(issue({ keys: [{ id: 'k', secret: 'short' }] }), 'keys.0.secret')
  t.equal(issue({ keys: signing.keys, ttlSeconds: 5 }), 'ttlSeconds')
  t.equal(issue({ keys: signing.keys, ttl: 5 }), '')
})

t.test('trust.signed takes a signing object as it is; its ttlSeconds is checked too', async (t) => {
  t.doesNotThrow(() => createFlowTagger({ mode: 'service', trust: { signed: signing } }), 'ttlSeconds is not an unknown key there')
  t.throws(() => createFlowTagger({ mode: 'service', trust: { signed: { ...signing, ttlSeconds: 0 } } }), { code: 'FLOWTAG_CONTEXT_BAD_OPTION', message: /"trust\.signed\.ttlSeconds"/ })
  t.throws(() => createFlowTagger({ mode: 'service', trust: { signed: { keys: [{ id: 'k', secret: 'short' }] } } }), { code: 'FLOWTAG_CONTEXT_BAD_OPTION', message: /"trust\.signed\.keys\.0\.secret"/ })
})
