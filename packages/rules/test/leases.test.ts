// Leases: compiled forms before/after, the store's one flip at the lease end, publish-time checks.
import t from 'tap'
import {
  checkLeases, compileRuleSet, createRuleStore, errorCodes, evaluate, RulesError, serviceLanes, setLease, staticSource, validateRuleSet
} from '../src/index.ts'
import { waitFor } from '@flowtag/test-kit'

const at = (ms: number) => new Date(ms).toISOString()

function leased (ruleEnd: number, laneEnd: number) {
  return {
    version: 7,
    services: { 'order-service': { stable: 'v1', candidates: [{ lane: 'v2', expiresAt: at(laneEnd) }], weights: { v1: 50, v2: 50 } } },
    rules: [{ name: 'testers', when: { headers: { 'x-tester': { equals: 'yes' } } }, lane: 'v2', expiresAt: at(ruleEnd) }],
    default: 'v1'
  }
}

t.test('an expired lease loads and simply stops matching; a live one matches', async (t) => {
  const now = Date.now()
  const old = validateRuleSet(leased(now - 1000, now - 1000))
  t.equal(evaluate(old, { headers: { 'x-tester': 'yes' } }).tag, 'v1', 'lapsed rule does not match')
  t.same(serviceLanes(old, 'order-service'), { stable: 'v1', candidates: [], strict: false, weights: { v1: 50 }, expired: ['v2'] })
  const live = validateRuleSet(leased(now + 60_000, now + 60_000))
  t.equal(evaluate(live, { headers: { 'x-tester': 'yes' } }).tag, 'v2')
  t.same(serviceLanes(live, 'order-service'), { stable: 'v1', candidates: ['v2'], strict: false, weights: { v1: 50, v2: 50 } })
  const c = compileRuleSet(live, now)
  t.equal(c.nextExpiry, Date.parse(at(now + 60_000)))
  t.equal(compileRuleSet(live, now + 60_000).expired.length, 2, 'rule and lane out at the instant')
})

t.test('the store flips once at the lease end, logs once and counts', async (t) => {
  const logs: Array<{ obj: object, msg: string }> = []
  const end = Date.now() + 400
  const store = createRuleStore({ source: staticSource(leased(end, end + 300)), logger: { warn () {}, info (obj, msg) { logs.push({ obj, msg }) } } })
  t.teardown(() => store.close())
  await store.ready
  const compiled = store.compiled!
  t.equal(store.evaluate({ headers: { 'x-tester': 'yes' } })?.tag, 'v2')
  t.equal(store.compiled, compiled, 'no recompile per request')
  await waitFor('the rule lease to end', () => store.evaluate({ headers: { 'x-tester': 'yes' } })?.tag === 'v1', 5000)
  t.ok(Date.now() >= end, 'not before its end')
  t.same(serviceLanes(store.compiled, 'order-service')?.candidates, ['v2'], 'the lane lease is still on')
  await waitFor('the lane lease to end', () => store.stats.leasesExpired === 2, 5000)
  t.same(serviceLanes(store.compiled, 'order-service')?.expired, ['v2'])
  const ran = logs.filter((l) => l.msg.includes('lease ran out'))
  t.equal(ran.length, 2, 'one line per lease end')
  t.match(ran[0]!.obj, { expired: ['rules.testers'] })
  t.match(ran[1]!.obj, { expired: ['services.order-service.v2'] })
})

t.test('checkLeases refuses a lapsed lease at publish time, naming the field', async (t) => {
  const now = Date.now()
  const rs = validateRuleSet({ ...leased(now - 1, now + 60_000), shadow: leased(now + 60_000, now - 5) })
  const err = t.throws(() => checkLeases(rs, now)) as RulesError
  t.ok(err instanceof RulesError)
  t.equal(err.code, errorCodes.LEASE_EXPIRED)
  t.same(err.issues.map((i) => i.path), ['rules.0.expiresAt', 'shadow.services.order-service.candidates.0.expiresAt'])
  t.doesNotThrow(() => checkLeases(rs, now - 10))
  t.throws(() => validateRuleSet({ ...leased(now, now), rules: [{ name: 'x', lane: 'v2', expiresAt: 'tomorrow' }] }), { code: errorCodes.INVALID })
})

t.test('setLease renews and clears a rule lease and a lane lease', async (t) => {
  const rs = validateRuleSet(leased(Date.now(), Date.now()))
  const renewed = setLease(rs, 'testers', '2030-01-01T00:00:00Z')
  t.equal(renewed.version, 8)
  t.equal(renewed.rules[0]!.expiresAt, '2030-01-01T00:00:00Z')
  t.equal(setLease(rs, 'testers', undefined).rules[0]!.expiresAt, undefined)
  t.same(setLease(rs, 'order-service:v2', undefined).services['order-service']!.candidates, ['v2'])
  t.same(setLease(rs, 'order-service:v2', '2030-01-01T00:00:00Z').services['order-service']!.candidates, [{ lane: 'v2', expiresAt: '2030-01-01T00:00:00Z' }])
  t.throws(() => setLease(rs, 'nope', undefined), { code: errorCodes.INVALID })
  t.equal(rs.version, 7, 'input untouched')
})
