// checkPublish: the one policy both CLIs and the canary controller publish by.
import t from 'tap'
import { checkPublish, parseRuleSet, type RuleSet } from '../src/index.ts'

const doc = (version: number, expiresAt?: string, shadowExpiresAt?: string): RuleSet => parseRuleSet(JSON.stringify({
  version,
  rules: [{ name: 'testers', when: { headers: { 'x-tester': { equals: 'yes' } } }, lane: 'v2', ...(expiresAt === undefined ? {} : { expiresAt }) }],
  default: 'v1',
  ...(shadowExpiresAt === undefined ? {} : { shadow: { version: version + 1, rules: [{ name: 'late', lane: 'v2', when: { headers: { 'x-late': { equals: '1' } } }, expiresAt: shadowExpiresAt }], default: 'v1' } })
}), 'test')
const now = Date.parse('2026-06-02T00:00:00Z')

t.test('versions: above the one in force, or force', async (t) => {
  t.doesNotThrow(() => checkPublish(doc(1), undefined, { now }), 'nothing in force')
  t.doesNotThrow(() => checkPublish(doc(4), doc(3), { now }))
  t.throws(() => checkPublish(doc(3), doc(3), { now }), { code: 'FLOWTAG_RULES_PUBLISH_REFUSED', issues: [{ path: 'version', message: /3 is not above 3/ }] })
  t.throws(() => checkPublish(doc(2), doc(3), { now }), { code: 'FLOWTAG_RULES_PUBLISH_REFUSED', message: /version 2 is not above the one in force \(3\)/ })
  t.doesNotThrow(() => checkPublish(doc(2), doc(3), { now, force: true }))
})

t.test('an invalid document in force is replaced only with force', async (t) => {
  t.throws(() => checkPublish(doc(1), undefined, { now, currentInvalid: 'not JSON' }), { code: 'FLOWTAG_RULES_PUBLISH_REFUSED', message: /in force is invalid \(not JSON\)/ })
  t.doesNotThrow(() => checkPublish(doc(1), undefined, { now, currentInvalid: 'not JSON', force: true }))
})

t.test('leases: a lapsed one set now is refused, even with force; one carried over unchanged is not', async (t) => {
  t.throws(() => checkPublish(doc(4, '2026-06-01T00:00:00Z'), doc(3), { now }), { code: 'FLOWTAG_RULES_LEASE_EXPIRED', issues: [{ path: 'rules.0.expiresAt' }] })
  t.throws(() => checkPublish(doc(4, '2026-06-01T00:00:00Z'), doc(3), { now, force: true }), { code: 'FLOWTAG_RULES_LEASE_EXPIRED' }, 'force is for versions, not leases')
  t.doesNotThrow(() => checkPublish(doc(4, '2026-06-01T00:00:00Z'), doc(3, '2026-06-01T00:00:00Z'), { now }), 'the same lapsed lease as in force')
  t.throws(() => checkPublish(doc(4, '2026-06-01T06:00:00Z'), doc(3, '2026-06-01T00:00:00Z'), { now }), { code: 'FLOWTAG_RULES_LEASE_EXPIRED' }, 'changed, still in the past')
  t.throws(() => checkPublish(doc(4, undefined, '2026-06-01T00:00:00Z'), doc(3), { now }), { code: 'FLOWTAG_RULES_LEASE_EXPIRED', issues: [{ path: 'shadow.rules.0.expiresAt' }] })
  t.doesNotThrow(() => checkPublish(doc(4, '2026-07-01T00:00:00Z'), doc(3), { now }), 'a lease still running')
})
