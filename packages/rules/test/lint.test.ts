import t from 'tap'
import { lintRuleSet, parseRuleSet } from '../src/index.ts'

const set = (extra: object) => parseRuleSet(JSON.stringify({ version: 1, default: 'v1', ...extra }))

t.test('a split is keyed by split.key or the top-level user; otherwise it is random and warned about', async (t) => {
  const split = { name: 's', split: { weights: { v2: 10 } } }
  t.same(lintRuleSet(set({ rules: [split] })).map((w) => w.path), ['rules.0.split'])
  t.same(lintRuleSet(set({ user: { header: 'x-user' }, rules: [split] })), [], 'the top-level user keys it')
  t.same(lintRuleSet(set({ rules: [{ ...split, split: { ...split.split, key: { cookie: 'uid' } } }] })), [], 'its own key')
  t.same(lintRuleSet(set({ rules: [{ ...split, enabled: false }] })), [], 'a disabled rule decides nothing')
})

t.test('weights: 0.01% steps are exact, finer ones are rounded and warned about', async (t) => {
  const rules = (w: number) => [{ name: 's', split: { key: { header: 'x-user' }, weights: { v2: w } } }]
  for (const w of [0.01, 12.34, 33.33, 100, 0]) t.same(lintRuleSet(set({ rules: rules(w) })), [], `${w}`)
  const [warning] = lintRuleSet(set({ rules: rules(0.005) }))
  t.equal(warning?.path, 'rules.0.split.weights.v2')
  t.match(warning?.message, /weight 0\.005 is finer/)
})

t.test('lanes no service declares, when services are declared; shadow set under shadow.', async (t) => {
  const services = { a: { stable: 'v1', candidates: [{ lane: 'v2', expiresAt: '2099-01-01T00:00:00Z' }] } }
  const rules = [{ name: 'r', lane: 'v2' }, { name: 's', split: { key: { header: 'x' }, weights: { v4: 5 }, rest: 'v5' } }]
  t.same(lintRuleSet(set({ services, rules })).map((w) => w.path), ['rules.1.split.weights.v4', 'rules.1.split.rest'])
  t.same(lintRuleSet(set({ rules })), [], 'no services: lanes come from the instances, nothing to compare with')
  const shadow = { version: 2, default: 'v1', services, rules: [{ name: 'x', lane: 'v9' }] }
  t.same(lintRuleSet(set({ services, rules: [], shadow })).map((w) => w.path), ['shadow.rules.0.lane'])
})
