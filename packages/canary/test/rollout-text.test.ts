// The pure parts: the RuleSets a step and a rollback publish, and the Prometheus text reader.
import { validateRuleSet, type RuleSet } from '@flowtag/rules'
import t from 'tap'
import { candidateWeight, CANARY_RULE, rollbackRuleSet, stepRuleSet } from '../src/rollout.ts'
import { parsePrometheusText } from '../src/prom-text.ts'

const target = { service: 'orders', candidate: 'v2', stable: 'v1' }
const base = (extra: Partial<RuleSet> = {}): RuleSet => ({ version: 3, rules: [], default: 'v1', services: {}, ...extra } as RuleSet)

t.test('a step without a split for the candidate appends the canary rule, with the split key when given', async (t) => {
  const rs = stepRuleSet(base(), { ...target, splitKey: { header: 'x-user' } } as never, 10, 4)
  t.equal(rs.version, 4)
  t.match(rs.rules, [{ name: CANARY_RULE, enabled: true, when: {}, split: { key: { header: 'x-user' }, weights: { v2: 10 }, rest: 'v1' } }])
  t.same(rs.services.orders, { stable: 'v1', candidates: ['v2'], strict: false })
  t.equal(candidateWeight(rs, 'v2'), 10)
  t.doesNotThrow(() => validateRuleSet(rs), 'a valid RuleSet')
  // a second step updates the same rule and lists the candidate once
  const again = stepRuleSet(rs, target, 50, 5)
  t.equal(again.rules.length, 1)
  t.equal(candidateWeight(again, 'v2'), 50)
  t.same(again.services.orders?.candidates, ['v2'])
})

t.test('rollback: no route to the candidate is left', async (t) => {
  const rs = base({
    default: 'v2',
    rules: [
      { name: 'beta-users', enabled: true, when: { header: { 'x-beta': '1' } }, lane: 'v2' },
      { name: 'only-candidate', enabled: true, when: {}, split: { weights: { v2: 30 } } },
      { name: CANARY_RULE, enabled: true, when: {}, split: { weights: { v2: 20 }, rest: 'v1' } }
    ],
    services: { orders: { stable: 'v1', candidates: ['v2'], strict: false, weights: { v1: 50, v2: 50 } } }
  } as never)
  t.equal(candidateWeight(rs, 'v2'), 30, 'the largest split share')
  const back = rollbackRuleSet(rs, target, 9)
  t.equal(back.version, 9)
  t.equal(back.default, 'v1')
  t.notOk(back.rules.some((r) => r.name === CANARY_RULE))
  t.match(back.rules.find((r) => r.name === 'beta-users'), { enabled: false })
  t.same(back.rules.find((r) => r.name === 'only-candidate')?.split, { weights: { v2: 0 }, rest: 'v1' }, 'a split of the candidate alone keeps it at 0%: all to its rest lane')
  t.same(back.services.orders?.weights, { v1: 50 })
  t.equal(candidateWeight(back, 'v2'), 0)
  t.equal(candidateWeight(base({ rules: [{ name: 'all', enabled: true, when: {}, lane: 'v2' }] } as never), 'v2'), 100, 'a catch-all lane rule is 100 %')
  t.equal(rs.default, 'v2', 'the input is not changed')
})

t.test('Prometheus text: samples, labels with escapes, infinities, prefixes, junk skipped', async (t) => {
  const text = [
    '# HELP http_requests_total Requests.',
    '# TYPE http_requests_total counter',
    'http_requests_total{lane="v2",path="a \\"quoted\\" \\\\ path\\nline"} 42 1700000000000',
    'http_requests_total 7',
    'le_bucket{le="+Inf"} +Inf',
    'neg -Inf',
    'other_metric{} 1.5',
    'not a sample line',
    ''
  ].join('\n')
  const all = parsePrometheusText(text)
  t.same(all[0], { name: 'http_requests_total', labels: { lane: 'v2', path: 'a "quoted" \\ path\nline' }, value: 42 })
  t.same(all[1], { name: 'http_requests_total', labels: {}, value: 7 })
  t.equal(all[2]?.value, Infinity)
  t.equal(all[3]?.value, -Infinity)
  t.same(all[4], { name: 'other_metric', labels: {}, value: 1.5 })
  t.equal(all.length, 5, 'the line that is not a sample is skipped')
  t.same(parsePrometheusText(text, ['http_']).map((s) => s.value), [42, 7])
})
