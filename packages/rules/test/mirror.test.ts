import t from 'tap'
import { compileRuleSet, parseRuleSet, serviceLanes, validateRuleSet, type RuleSetInput } from '../src/index.ts'

const doc: RuleSetInput = {
  version: 3,
  services: { 'order-service': { stable: 'v1', candidates: ['v3'], mirror: { lane: 'v3', percent: 5 } } },
  rules: [
    { name: 'canary', split: { weights: { v2: 10 } }, mirror: { lane: 'v3', percent: 20 } },
    { name: 'off', enabled: false, lane: 'v2', mirror: { lane: 'v3', percent: 100 } },
    { name: 'post-too', when: { headers: { 'x-a': { equals: '1' } } }, lane: 'v1', mirror: { lane: 'v3', percent: 50, methods: ['GET', 'POST'] } }
  ],
  default: 'v1'
}

t.test('a rule or a service entry may carry a mirror; methods default to GET and HEAD', async (t) => {
  const rs = validateRuleSet(doc)
  t.same(rs.rules[0]!.mirror, { lane: 'v3', percent: 20, methods: ['GET', 'HEAD'] })
  t.same(rs.services['order-service']!.mirror, { lane: 'v3', percent: 5, methods: ['GET', 'HEAD'] })
  const c = compileRuleSet(rs)
  t.same([...c.mirrors.keys()], ['canary', 'post-too'], 'a disabled rule mirrors nothing')
  t.equal(c.hasMirrors, true)
  t.equal(compileRuleSet(validateRuleSet({ version: 1, rules: [], default: 'v1' })).hasMirrors, false)
  t.equal(compileRuleSet(validateRuleSet({ version: 1, services: { s: { stable: 'v1', mirror: { lane: 'v2', percent: 1 } } }, rules: [], default: 'v1' })).hasMirrors, true, 'a service entry alone')
  t.same([...c.mirrors.get('post-too')!.methods], ['GET', 'POST'])
  t.equal(serviceLanes(c, 'order-service')!.mirror!.percent, 5)
  t.equal(serviceLanes(c, 'order-service')!.mirror!.lane, 'v3')
})

t.test('a lapsed lease drops the rule\'s mirror with the rule', async (t) => {
  const c = compileRuleSet(validateRuleSet({ version: 1, rules: [{ name: 'r', lane: 'v2', expiresAt: '2026-01-01T00:00:00Z', mirror: { lane: 'v3', percent: 1 } }], default: 'v1' }), Date.parse('2026-06-01T00:00:00Z'))
  t.equal(c.mirrors.size, 0)
})

t.test('invalid mirrors are refused with their path; the document never takes effect', async (t) => {
  const bad = (mirror: unknown, where: 'rule' | 'service' = 'rule') => {
    const d = where === 'rule'
      ? { version: 1, rules: [{ name: 'r', lane: 'v2', mirror }], default: 'v1' }
      : { version: 1, services: { s: { stable: 'v1', mirror } }, default: 'v1' }
    return () => parseRuleSet(JSON.stringify(d))
  }
  t.throws(bad({ lane: 'v3', percent: 101 }), { code: 'FLOWTAG_RULES_INVALID', message: /rules\.0\.mirror\.percent/ })
  t.throws(bad({ lane: 'v3', percent: -1 }), { code: 'FLOWTAG_RULES_INVALID', message: /rules\.0\.mirror\.percent/ })
  t.throws(bad({ lane: 'bad lane', percent: 10 }), { code: 'FLOWTAG_RULES_INVALID', message: /rules\.0\.mirror\.lane/ })
  t.throws(bad({ lane: 'v3', percent: 10, methods: ['get'] }), { code: 'FLOWTAG_RULES_INVALID', message: /rules\.0\.mirror\.methods\.0/ })
  t.throws(bad({ lane: 'v3', percent: 10, methods: [] }), { code: 'FLOWTAG_RULES_INVALID', message: /rules\.0\.mirror\.methods/ })
  t.throws(bad({ lane: 'v3', percent: 10, extra: 1 }), { code: 'FLOWTAG_RULES_INVALID', message: /rules\.0\.mirror/ })
  t.throws(bad({ lane: 'v3' }, 'service'), { code: 'FLOWTAG_RULES_INVALID', message: /services\.s\.mirror\.percent/ })
  t.doesNotThrow(bad({ lane: 'v3', percent: 10 }), 'the same mirror, valid')
})
