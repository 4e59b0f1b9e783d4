import t from 'tap'
import { evaluate, explain, parseRuleSet, serviceLanes, validateRuleSet, compileRuleSet, type RuleSetInput } from '../src/index.ts'

const doc: RuleSetInput = {
  version: 7,
  user: { header: 'x-user-id' },
  services: {
    'order-service': { stable: 'v1', candidates: ['v2'], weights: { v2: 10 } },
    'user-service': { stable: 'blue', candidates: ['green'], strict: true }
  },
  rules: [
    { name: 'off', enabled: false, when: {}, lane: 'never' },
    { name: 'testers', when: { headers: { 'X-Tester': { equals: 'yes' } } }, lane: 'v2' },
    { name: 'beta-cookie', when: { cookies: { beta: { in: ['1', 'true'] } } }, lane: 'v2' },
    { name: 'preview-query', when: { query: { preview: { exists: true } } }, lane: 'preview' },
    { name: 'mobile', when: { headers: { 'user-agent': { prefix: 'MyApp/' } } }, lane: 'mobile' },
    { name: 'office', when: { ip: ['10.0.0.0/8', 'fd00::/8'] }, lane: 'v2' },
    { name: 'vip', when: { users: ['alice', 'bob'] }, lane: 'v2' },
    { name: 'no-ua', when: { headers: { 'x-probe': { equals: '1' }, 'user-agent': { exists: false } } }, lane: 'probe' },
    { name: 'ab-country', when: { headers: { 'x-country': { equals: 'DE' } } }, split: { weights: { a: 50, b: 50 } } },
    { name: 'canary', split: { weights: { v2: 10 } } }
  ],
  default: 'v1'
}
const rs = validateRuleSet(doc)

t.test('each matcher, first match wins, default last', async (t) => {
  t.same(evaluate(rs, { headers: {}, random: () => 0.99 }), { tag: 'v1', reason: 'no rule matched: default lane' })
  t.equal(evaluate(rs, { headers: { 'x-tester': 'yes' } }).rule, 'testers', 'header names are matched lower-case')
  t.equal(evaluate(rs, { headers: { 'x-tester': 'no' }, random: () => 0.99 }).tag, 'v1')
  t.equal(evaluate(rs, { headers: { cookie: 'a=1; beta=true; c=3' } }).rule, 'beta-cookie')
  t.equal(evaluate(rs, { headers: { cookie: 'a=1;beta="1"' } }).rule, 'beta-cookie', 'quoted cookie value')
  t.equal(evaluate(rs, { headers: { cookie: 'xbeta=1' }, random: () => 0.99 }).tag, 'v1', 'cookie name must match whole')
  t.equal(evaluate(rs, { headers: {}, cookies: { beta: '1' } }).rule, 'beta-cookie', 'pre-parsed cookies')
  t.equal(evaluate(rs, { headers: { cookie: 'beta=1' }, cookies: null }).rule, 'beta-cookie', 'null cookies (not parsed yet): the header is read')
  t.equal(evaluate(rs, { headers: {}, query: { preview: '' }, random: () => 0.99 }).tag, 'v1', 'empty query value counts as absent')
  t.equal(evaluate(rs, { headers: {}, query: { preview: ['x', 'y'] } }).tag, 'preview')
  t.equal(evaluate(rs, { headers: { 'user-agent': 'MyApp/3.1' } }).tag, 'mobile')
  t.equal(evaluate(rs, { headers: { 'user-agent': 'Mozilla' }, ip: '10.9.9.9' }).rule, 'office')
  t.equal(evaluate(rs, { headers: {}, ip: 'fd00::7' }).rule, 'office')
  t.equal(evaluate(rs, { headers: { 'x-user-id': 'bob' } }).rule, 'vip')
  t.equal(evaluate(rs, { headers: { 'x-probe': '1' } }).tag, 'probe', 'exists:false')
  t.not(evaluate(rs, { headers: { 'x-probe': '1', 'user-agent': 'curl' }, random: () => 0.99 }).tag, 'probe')
  t.equal(evaluate(rs, { headers: { 'x-tester': 'yes', 'x-user-id': 'bob' } }).rule, 'testers', 'order decides')
  t.equal(evaluate(rs, { headers: { 'x-tester': ['yes', 'no'] } }).rule, 'testers', 'repeated header: first value')
})

t.test('A/B by attribute and the canary split', async (t) => {
  const ab = new Map<string, number>()
  for (let i = 0; i < 2000; i++) {
    const d = evaluate(rs, { headers: { 'x-country': 'DE', 'x-user-id': `u${i}` } })
    t.equal(d.rule, 'ab-country')
    ab.set(d.tag, (ab.get(d.tag) ?? 0) + 1)
  }
  t.ok(ab.get('a')! > 800 && ab.get('b')! > 800, `both arms used: ${[...ab]}`)
  const once = evaluate(rs, { headers: { 'x-user-id': 'carol' } })
  for (let i = 0; i < 20; i++) t.equal(evaluate(rs, { headers: { 'x-user-id': 'carol' } }), once, 'sticky: same user, same (shared) decision')
  t.equal(evaluate(rs, { headers: {}, random: () => 0.05 }).tag, 'v2', 'no key: random bucket 500 is inside 10%')
  t.equal(evaluate(rs, { headers: {}, random: () => 0.5 }).tag, 'v1', 'no key: random bucket 5000 falls through to default')
})

t.test('split rest, blue-green switch, key sources', async (t) => {
  const bg = (lane: string) => validateRuleSet({ version: 1, rules: [{ name: 'switch', lane }], default: 'blue' })
  t.equal(evaluate(bg('green'), { headers: {} }).tag, 'green', 'a rule without conditions takes everyone')
  const rest = validateRuleSet({ version: 1, rules: [{ name: 's', split: { key: { cookie: 'sid' }, salt: 'x', weights: { v2: 0 }, rest: 'v1' } }, { name: 'never', lane: 'zzz' }], default: 'd' })
  t.equal(evaluate(rest, { headers: { cookie: 'sid=abc' } }).tag, 'v1', 'rest catches buckets outside the weights')
  const q = validateRuleSet({ version: 1, rules: [{ name: 's', split: { key: { query: 'u' }, weights: { v2: 100 } } }], default: 'd' })
  t.equal(evaluate(q, { headers: {}, query: { u: 'x' } }).tag, 'v2')
  const full = validateRuleSet({ version: 1, rules: [{ name: 's', split: { weights: { a: 30, b: 70 } } }], default: 'd' })
  t.equal(evaluate(full, { headers: {}, random: () => 0.2999 }).tag, 'a')
  t.equal(evaluate(full, { headers: {}, random: () => 0.3 }).tag, 'b')
  t.equal(evaluate(full, { headers: {}, random: () => 0.99999 }).tag, 'b')
})

t.test('prototype keys in facts never match or throw', async (t) => {
  const proto = validateRuleSet({
    version: 1,
    rules: [
      { name: 'c', when: { cookies: { constructor: { prefix: 'x' } } }, lane: 'a' },
      { name: 'h', when: { headers: { constructor: { prefix: 'x' } } }, lane: 'b' },
      { name: 'q', when: { query: { toString: { exists: true } } }, lane: 'c' }
    ],
    default: 'd'
  })
  t.equal(evaluate(proto, { headers: {}, cookies: {}, query: {} }).tag, 'd')
  t.equal(evaluate(proto, { headers: { cookie: 'constructor=xy' } }).tag, 'a')
})

t.test('explain tells which rule matched and why', async (t) => {
  const e = explain(rs, { headers: { 'x-user-id': 'bob' }, ip: '1.2.3.4' })
  t.equal(e.decision.rule, 'vip')
  t.equal(e.index, 6)
  t.equal(e.version, 7)
  t.match(e.steps.at(-1), { rule: 'vip', matched: true, detail: /user "bob" in users list/ })
  t.match(e.steps[0], { rule: 'off', matched: false, detail: 'disabled' })
  t.match(e.steps.find((s) => s.rule === 'office'), { detail: /1\.2\.3\.4.*not in 10\.0\.0\.0\/8/ })
  const s = explain(rs, { headers: { 'x-user-id': 'carol' } })
  t.ok(s.decision.rule === 'canary' || s.index === -1)
  t.match(s.steps.at(-1)!.detail, /bucket \d+ from header x-user-id/)
  const d = explain(rs, { headers: { 'x-tester': 'yes', 'x-user-id': 'z' }, ip: '10.0.0.1' })
  t.match(d.steps.at(-1), { rule: 'testers', matched: true, detail: 'header x-tester equals "yes"' })
  t.same(explain(rs, { headers: {}, random: () => 0.99 }).decision, evaluate(rs, { headers: {}, random: () => 0.99 }))
})

t.test('serviceLanes gives outbound its view', async (t) => {
  t.same(serviceLanes(rs, 'order-service'), { stable: 'v1', candidates: ['v2'], strict: false, weights: { v2: 10 } })
  t.same(serviceLanes(compileRuleSet(rs), 'user-service'), { stable: 'blue', candidates: ['green'], strict: true })
  t.equal(serviceLanes(rs, 'nope'), undefined)
  t.equal(serviceLanes(rs, 'toString'), undefined, 'no prototype keys')
  t.equal(serviceLanes(undefined, 'order-service'), undefined)
})

t.test('compile is memoised and parse gives the same result', async (t) => {
  t.equal(compileRuleSet(rs), compileRuleSet(rs))
  const again = parseRuleSet(JSON.stringify(doc))
  t.same(again, rs)
})
