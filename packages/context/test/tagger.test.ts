import t from 'tap'
import { createRuleStore, staticSource, type CompiledRuleSet } from '@flowtag/rules'
import { createFlowTagger, signTag } from '../src/index.ts'

const rules = { version: 1, rules: [{ name: 'office', when: { ip: ['10.0.0.0/8'] }, lane: 'v2' }], default: 'v1' }

t.test('service mode with rules: untrusted or absent tags fall back to the rules', async (t) => {
  const tagger = createFlowTagger({ mode: 'service', rules, trust: { cidrs: ['192.168.0.0/16'] } })
  t.equal(tagger.decide({ headers: { 'x-flow-tag': 'v9' }, ip: '192.168.1.1' }).tag, 'v9', 'trusted network')
  t.equal(tagger.decide({ headers: { 'x-flow-tag': 'v9' }, ip: '10.1.1.1' }).tag, 'v2', 'untrusted: rules')
  t.equal(tagger.decide({ headers: {}, ip: '8.8.8.8' }).tag, 'v1')
  t.equal(tagger.decide({ headers: { 'x-flow-tag': 'v9' } }).tag, 'v1', 'unknown client ip is not trusted')
  t.same(tagger.stats, { signed: 0, trusted: 1, evaluated: 3, untagged: 0, dropped: 0, ignored: 2, shadowed: 0, mirrored: 0, shadows: 0 })
})

t.test('signed and cidrs together; trusted baggage without a lane still carried', async (t) => {
  const key = { id: 'k', secret: '0123456789abcdef' }
  const tagger = createFlowTagger({ mode: 'edge', rules, trust: { cidrs: ['127.0.0.1'], signed: { keys: [key], cookie: 'lane', query: 'l' } } })
  t.equal(tagger.decide({ headers: { cookie: `lane=${signTag('qa', 60, key)}` }, ip: '8.8.8.8' }).tag, 'qa')
  t.equal(tagger.decide({ headers: {}, query: { l: [signTag('qa2', 60, key)] }, ip: '8.8.8.8' }).tag, 'qa2', 'repeated query param: first')
  t.equal(tagger.decide({ headers: { 'x-flow-tag': 'v7' }, ip: '127.0.0.1' }).tag, 'v7')
  const f = tagger.decide({ headers: { baggage: 'tenant=a' }, ip: '127.0.0.1' })
  t.same(f, { tag: 'v1', decision: { tag: 'v1', reason: 'no rule matched: default lane' }, ruleVersion: 1, baggage: { tenant: 'a' } })
})

t.test('decide never throws: a failing rule source leaves the request untagged and warns', async (t) => {
  const warnings: string[] = []
  const broken = { get compiled (): CompiledRuleSet { throw new Error('boom') }, onChange: () => () => {} }
  const tagger = createFlowTagger({ mode: 'edge', rules: broken, logger: { debug: () => {}, warn: (_o, m) => warnings.push(m) } })
  t.same(tagger.decide({ headers: {} }), { baggage: {} })
  t.equal(tagger.stats.untagged, 1)
  t.match(warnings, [/could not decide/])
})

t.test('a RuleStore is read per request: live swaps, empty store means untagged', async (t) => {
  const source = staticSource(undefined)
  const store = createRuleStore({ source })
  t.teardown(() => store.close())
  await store.ready
  const tagger = createFlowTagger({ mode: 'edge', rules: store })
  t.same(tagger.decide({ headers: {} }), { baggage: {} })
  source.set(rules)
  t.equal(tagger.decide({ headers: {}, ip: '10.0.0.1' }).tag, 'v2')
  t.equal(tagger.mode, 'edge')
  t.equal(tagger.otel, true)
})

t.test('the tagger signs with its first key; every key verifies', async (t) => {
  const keys = [{ id: 'new', secret: 'new-secret-0123456' }, { id: 'old', secret: 'old-secret-0123456' }]
  const tagger = createFlowTagger({ mode: 'edge', rules, trust: { signed: { keys } } })
  const token = tagger.signTag('qa', 60)
  t.match(token, /^qa~\d+~new~/)
  t.equal(tagger.decide({ headers: { 'x-flow-tag': token } }).tag, 'qa')
  t.equal(tagger.decide({ headers: { 'x-flow-tag': signTag('qa-old', 60, keys[1]!) } }).tag, 'qa-old')
  t.throws(() => createFlowTagger({ mode: 'service' }).signTag('qa', 60), { code: 'FLOWTAG_CONTEXT_SIGNING' })
})
