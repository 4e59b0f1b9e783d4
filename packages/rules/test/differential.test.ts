import t from 'tap'
import fc from 'fast-check'
import { compileRuleSet, evaluate, explain, validateRuleSet, type RuleSetInput, type StringMatch } from '../src/index.ts'
import type { Facts } from '../src/facts.ts'
import { linearEvaluate } from './fixtures/linear.ts'

// Small vocabularies, so that random requests often hit random rules (and near misses: case,
// empty values, prefixes of prefixes, neighbouring addresses).
const NAMES = ['a', 'b', 'x-user', 'constructor']
const VALUES = ['', 'v', 'v1', 'v12', 'V1', 'w', 'alice', 'bob', 'MyApp/1']
const PREFIXES = ['v', 'v1', 'V', 'MyApp/', 'w', 'v12x']
const CIDRS = ['10.0.0.0/8', '10.1.0.0/16', '10.1.2.3', '0.0.0.0/0', '192.0.2.0/24', '::/0', 'fd00::/8', 'fd00:1::/32',
  '2001:db8::1', '::ffff:10.0.0.0/104', '::ffff:0:0/96', '11.0.0.0/7', '10.1.2.3/31', '2001:db8::/127']
const IPS = ['10.1.2.3', '10.1.2.2', '10.200.0.1', '11.1.1.1', '12.0.0.1', '192.0.2.9', '::ffff:10.1.2.3', '::ffff:192.0.2.1',
  'fd00:1::5', 'fd00:2::5', '2001:db8::1', '2001:db8::0', '2001:db8::2', '::1', '1.2.3.4', 'garbage', '', '10.1.2.3%eth0']
const USERS = ['alice', 'bob', 'carol', 'v1']
const LANES = ['s1', 's2', 's3', 'c1', 'c2']
// Leases around a fixed clock: already out, out exactly now, out a millisecond later, far out.
const NOW = Date.parse('2026-12-01T12:00:00.000Z')
const LATER = NOW + 3_600_000
const EXPIRIES = [NOW - 1000, NOW, NOW + 1, LATER].map((ms) => new Date(ms).toISOString())

const value = fc.constantFrom(...VALUES)
const stringMatch: fc.Arbitrary<StringMatch> = fc.oneof(
  value.map((v) => ({ equals: v })),
  fc.uniqueArray(value, { minLength: 1, maxLength: 4 }).map((vs) => ({ in: vs })),
  fc.constantFrom(...PREFIXES).map((p) => ({ prefix: p })),
  fc.boolean().map((e) => ({ exists: e }))
)
const keySource = fc.oneof(
  fc.constantFrom(...NAMES).map((h) => ({ header: h })),
  fc.constantFrom(...NAMES).map((c) => ({ cookie: c })),
  fc.constantFrom(...NAMES).map((q) => ({ query: q }))
)
const matches = fc.dictionary(fc.constantFrom(...NAMES), stringMatch, { minKeys: 1, maxKeys: 2 })
// At most two kinds of condition per rule (and often none), so that random requests match often.
const when = fc.record({
  headers: matches,
  cookies: matches,
  query: matches,
  ip: fc.uniqueArray(fc.constantFrom(...CIDRS), { minLength: 1, maxLength: 4 }),
  users: fc.uniqueArray(fc.constantFrom(...USERS), { minLength: 1, maxLength: 3 })
}).chain((all) => fc.subarray(Object.keys(all) as Array<keyof typeof all>, { maxLength: 2 })
  .map((keys) => Object.fromEntries(keys.map((k) => [k, all[k]]))))
// Weights in whole percent, scaled so their sum stays within 100 (some sets leave room for rest).
const split = fc.record({
  key: keySource,
  salt: fc.constantFrom('s', 'salt-2'),
  weights: fc.dictionary(fc.constantFrom(...LANES), fc.integer({ min: 0, max: 60 }), { minKeys: 1, maxKeys: 3 })
    .map((w) => Object.fromEntries(Object.entries(w).map(([k, v], _, all) => [k, Math.floor(v * 100 / Math.max(100, all.reduce((s, [, x]) => s + x, 0)))]))),
  rest: fc.constantFrom(...LANES)
}, { requiredKeys: ['weights'] })
const rule = fc.record({
  enabled: fc.oneof({ arbitrary: fc.constant(true), weight: 3 }, { arbitrary: fc.constant(false), weight: 1 }),
  when,
  action: fc.oneof(fc.constantFrom(...LANES).map((lane) => ({ lane })), split.map((s) => ({ split: s }))),
  expiresAt: fc.constantFrom(...EXPIRIES),
  // a mirror never changes the decision: it rides along
  mirror: fc.record({ lane: fc.constantFrom(...LANES), percent: fc.integer({ min: 0, max: 100 }) })
}, { requiredKeys: ['when', 'action'] })
const ruleSet = fc.record({
  user: keySource,
  rules: fc.array(rule, { maxLength: 40 })
}).map(({ user, rules }): RuleSetInput => ({
  version: 1,
  user,
  rules: rules.map((r, i) => ({ name: `r${i}`, ...(r.enabled === undefined ? {} : { enabled: r.enabled }), ...(r.expiresAt === undefined ? {} : { expiresAt: r.expiresAt }), ...(r.mirror === undefined ? {} : { mirror: r.mirror }), when: r.when, ...r.action })),
  default: 'd'
}))

const stringOrList = fc.oneof(value, fc.array(value, { minLength: 1, maxLength: 2 }))
const facts = fc.record({
  headers: fc.dictionary(fc.constantFrom(...NAMES, 'x-other'), stringOrList, { maxKeys: 5 }),
  cookieHeader: fc.array(fc.tuple(fc.constantFrom(...NAMES), value), { maxLength: 3 }),
  cookies: fc.option(fc.dictionary(fc.constantFrom(...NAMES), value, { maxKeys: 3 }), { nil: undefined, freq: 2 }),
  nullCookies: fc.boolean(),
  query: fc.option(fc.dictionary(fc.constantFrom(...NAMES), fc.oneof(stringOrList, fc.constant(7)), { maxKeys: 3 }), { nil: undefined }),
  ip: fc.option(fc.constantFrom(...IPS), { nil: undefined }),
  random: fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 1, maxLength: 4 })
})

/** Build Facts whose `random` replays the same sequence for each evaluator. */
function toFacts (f: typeof facts extends fc.Arbitrary<infer T> ? T : never): Facts {
  const headers: Record<string, string | string[]> = { ...f.headers }
  if (f.cookieHeader.length > 0) headers.cookie = f.cookieHeader.map(([k, v]) => `${k}=${v}`).join('; ')
  let n = 0
  return {
    headers,
    cookies: f.cookies ?? (f.nullCookies ? null : undefined),
    query: f.query,
    ip: f.ip,
    random: () => f.random[n++ % f.random.length]!
  }
}

t.test('indexed evaluate() decides exactly as the linear oracle', async (t) => {
  let decided = 0
  let byDefault = 0
  let leased = 0
  fc.assert(fc.property(ruleSet, fc.array(facts, { minLength: 1, maxLength: 12 }), (doc, requests) => {
    const rs = validateRuleSet(doc)
    // the same document before and after leases run out: both compiled forms must be exact
    for (const now of [NOW, LATER]) {
      const compiled = compileRuleSet(rs, now)
      for (const r of requests) {
        const want = linearEvaluate(rs, toFacts(r), now)
        const got = evaluate(compiled, toFacts(r))
        if (got.tag !== want.tag || got.rule !== want.rule || got.reason !== want.reason) throw new Error(`evaluate ${JSON.stringify(got)} but oracle ${JSON.stringify(want)} at ${now} for ${JSON.stringify(r)}`)
        const why = explain(compiled, toFacts(r))
        if (why.decision.tag !== want.tag || why.decision.rule !== want.rule) throw new Error(`explain ${JSON.stringify(why.decision)} but oracle ${JSON.stringify(want)}`)
        if (now === NOW) {
          if (want.rule === undefined) byDefault++
          else decided++
        }
      }
    }
    leased += rs.rules.filter((r) => r.expiresAt !== undefined && Date.parse(r.expiresAt) <= NOW).length
  }), { numRuns: 3000 })
  t.ok(leased > 1000, `${leased} rules with a lapsed lease generated`)
  // The vocabularies are chosen so that both outcomes are common; a generator drift that made
  // every request fall to the default would make this test vacuous.
  t.ok(decided > 1000 && byDefault > 1000, `rules decided ${decided}, default ${byDefault}`)
})

t.test('large rule sets: many rules on few names, big lists', async (t) => {
  const big = fc.record({
    rules: fc.array(fc.record({
      name: fc.constantFrom(...NAMES),
      match: stringMatch,
      ips: fc.option(fc.uniqueArray(fc.constantFrom(...CIDRS), { minLength: 1, maxLength: 6 }), { nil: undefined }),
      lane: fc.constantFrom(...LANES)
    }), { minLength: 50, maxLength: 300 })
  })
  fc.assert(fc.property(big, fc.array(facts, { minLength: 5, maxLength: 20 }), ({ rules }, requests) => {
    const rs = validateRuleSet({
      version: 1,
      user: { header: 'x-user' },
      rules: rules.map((r, i) => ({ name: `r${i}`, when: { headers: { [r.name]: r.match }, ...(r.ips === undefined ? {} : { ip: r.ips }) }, lane: r.lane })),
      default: 'd'
    })
    for (const r of requests) {
      const want = linearEvaluate(rs, toFacts(r))
      const got = evaluate(rs, toFacts(r))
      if (got !== want) throw new Error(`evaluate ${JSON.stringify(got)} but oracle ${JSON.stringify(want)}`)
    }
  }), { numRuns: 200 })
  t.pass('identical')
})

t.test('many header names (the request-walk path) and long CIDR lists beside another anchor', async (t) => {
  // More than 16 anchored header names makes evaluate() walk the request's headers; more than
  // 16 blocks on a rule anchored elsewhere gives that rule its own ranges.
  const names = Array.from({ length: 40 }, (_, i) => `h${i}`)
  const name = fc.constantFrom(...names)
  const edgePrefixes = fc.constantFrom('v', 'v1', 'v\uffff', '\uffff', 'w\uffff\uffff', 'V')
  const match: fc.Arbitrary<StringMatch> = fc.oneof(
    value.map((v) => ({ equals: v })),
    fc.uniqueArray(value, { minLength: 1, maxLength: 3 }).map((vs) => ({ in: vs })),
    fc.oneof(fc.constantFrom(...PREFIXES), edgePrefixes).map((p) => ({ prefix: p })),
    fc.boolean().map((e) => ({ exists: e }))
  )
  const block = fc.oneof(fc.constantFrom(...CIDRS), fc.tuple(fc.nat(7), fc.nat(7), fc.integer({ min: 8, max: 32 })).map(([a, b, n]) => `10.${a}.${b}.0/${Math.max(n, 24)}`))
  const cidrList = fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 3 },
    { arbitrary: fc.uniqueArray(block, { minLength: 1, maxLength: 16 }), weight: 1 },
    { arbitrary: fc.uniqueArray(block, { minLength: 17, maxLength: 40 }), weight: 1 })
  const big = fc.array(fc.record({
    headers: fc.dictionary(name, match, { minKeys: 1, maxKeys: 2 }),
    ips: cidrList,
    lane: fc.constantFrom(...LANES),
    enabled: fc.boolean()
  }), { minLength: 30, maxLength: 120 })
  const request = fc.record({
    headers: fc.dictionary(fc.constantFrom(...names, 'host'), fc.oneof(value, fc.constantFrom('v\uffff', 'v\uffffz', '\uffff', 'w\uffff\uffffa', 'x')), { minKeys: 8, maxKeys: 30 }),
    ip: fc.oneof(fc.constantFrom(...IPS), fc.tuple(fc.nat(7), fc.nat(7)).map(([a, b]) => `10.${a}.${b}.1`))
  })
  let decided = 0
  fc.assert(fc.property(big, fc.array(request, { minLength: 5, maxLength: 20 }), (rules, requests) => {
    const rs = validateRuleSet({
      version: 1,
      rules: rules.map((r, i) => ({ name: `r${i}`, enabled: r.enabled, when: { headers: r.headers, ...(r.ips === undefined ? {} : { ip: r.ips }) }, lane: r.lane })),
      default: 'd'
    })
    for (const r of requests) {
      const want = linearEvaluate(rs, r)
      const got = evaluate(rs, r)
      if (got !== want) throw new Error(`evaluate ${JSON.stringify(got)} but oracle ${JSON.stringify(want)} for ${JSON.stringify(r)}`)
      if (want.rule !== undefined) decided++
    }
  }), { numRuns: 300 })
  t.ok(decided > 500, `rules decided ${decided} requests`)
})
