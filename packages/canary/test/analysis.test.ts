// The pure parts: spec defaults and errors, Prometheus text, windows, quantiles, the judge, RuleSet steps.
import { compileRuleSet, evaluate, parseRuleSet, validateRuleSet, type RuleSet } from '@flowtag/rules'
import t from 'tap'
import {
  judge, parseCanarySpec, rollbackRuleSet, stepRuleSet, type Reading
} from '../src/index.ts'
import { candidateWeight, CANARY_RULE, figuresFromText, laneWindow, quantile, summarize, wilsonLower } from '../src/internals.ts'
import { promText } from './fixtures/instances.ts'

t.test('spec: the design article\'s defaults, and errors that name the field', async (t) => {
  const spec = parseCanarySpec({ service: 'order-service', candidate: 'v2', stable: 'v1' })
  t.same(spec.steps, [5, 10, 25, 50, 100])
  t.equal(spec.thresholds.errorRate.max, 0.05)
  t.equal(spec.thresholds.errorRate.sustainedMs, 120_000)
  t.equal(spec.thresholds.serverErrorRate.max, 0.1)
  t.equal(spec.thresholds.serverErrorRate.action, 'pause')
  t.equal(spec.thresholds.p99.maxSeconds, 1)
  t.equal(spec.thresholds.p99.action, 'rollback')
  t.equal(spec.onDeadline, 'rollback', 'a deadline never passes silently')
  t.throws(() => parseCanarySpec({ service: 's', candidate: 'v2', stable: 'v1', steps: [10, 5] }), { code: 'FLOWTAG_CANARY_BAD_OPTION', message: /"steps": steps must increase/ })
  t.throws(() => parseCanarySpec({ service: 's', candidate: 'v1', stable: 'v1' }), { message: /"candidate": must differ from stable/ })
  t.throws(() => parseCanarySpec({ service: 's', candidate: 'v2', stable: 'v1', thresholds: { p99: { maxSeconds: -1 } } }), { message: /"thresholds\.p99\.maxSeconds"/ })
  t.throws(() => parseCanarySpec({ service: 's', candidate: 'v2', stable: 'v1', extra: 1 }), { code: 'FLOWTAG_CANARY_BAD_OPTION' })
})

t.test('figures from the OTel Prometheus exporter\'s text; windows across a restart', async (t) => {
  const text = promText({ ok: 90, failed: 10, seconds: 0.02 })
  const f = figuresFromText(text)
  t.equal(f.requests, 100)
  t.equal(f.serverErrors, 10)
  t.equal(f.buckets.at(-1)?.[1], 100)
  const before: Reading = { at: 0, instances: new Map([['a', { key: 'a', lane: 'v2', metadata: {}, figures: figuresFromText(promText({ ok: 40, failed: 0, seconds: 0.02 })) }]]) }
  const now: Reading = {
    at: 1,
    instances: new Map([
      ['a', { key: 'a', lane: 'v2', metadata: {}, figures: f }],
      ['b', { key: 'b', lane: 'v1', metadata: {}, figures: figuresFromText(promText({ ok: 5, failed: 0, seconds: 0.02 })) }]
    ])
  }
  const w = laneWindow(now, before)
  t.equal(w.get('v2')?.requests, 60)
  t.equal(w.get('v2')?.serverErrors, 10)
  t.equal(w.get('v1')?.requests, 5, 'an instance new in the window counts from zero')
  const restarted: Reading = { at: 2, instances: new Map([['a', { key: 'a', lane: 'v2', metadata: {}, figures: figuresFromText(promText({ ok: 3, failed: 0, seconds: 0.02 })) }]]) }
  t.equal(laneWindow(restarted, now).get('v2')?.requests, 3, 'a counter that went down restarted')
})

t.test('p99 from buckets, interpolated', async (t) => {
  t.equal(quantile(0.99, []), undefined)
  t.equal(quantile(0.5, [[0.1, 50], [1, 100], [Infinity, 100]]), 0.1)
  t.ok(Math.abs(quantile(0.99, [[0.1, 50], [1, 100], [Infinity, 100]])! - 0.982) < 1e-9)
  t.equal(quantile(0.99, [[1, 0], [Infinity, 10]]), 1, 'in +Inf: at least the largest bound')
})

t.test('judge: waiting below minRequests, absolute and relative breaches, noise tolerated', async (t) => {
  const spec = parseCanarySpec({ service: 's', candidate: 'v2', stable: 'v1', minRequests: 50 })
  const w = (ok: number, failed: number, seconds = 0.02) => summarize(figuresFromText(promText({ ok, failed, seconds })))
  t.equal(judge(spec, w(40, 9), w(500, 0)).verdict, 'waiting', 'never judged before its minimum: not a pass')
  const failing = judge(spec, w(80, 20), w(500, 0))
  t.equal(failing.verdict, 'fail')
  t.same(failing.breaches.map((b) => b.check).sort(), ['relative.errorRate', 'serverErrorRate'])
  t.equal(judge(spec, w(97, 3), w(500, 5)).verdict, 'pass', '3% errors against 1% stable: within the margin')
  t.ok(wilsonLower(2, 50) < 0.01 + 0.05, 'two errors in 50 are not evidence of a 5-point excess')
  const slow = judge(spec, w(100, 0, 2), w(100, 0, 0.02))
  t.equal(slow.verdict, 'fail')
  t.match(slow.breaches, [{ check: 'p99', action: 'rollback' }, { check: 'relative.p99' }])
  t.equal(judge(spec, w(100, 0), w(100, 0)).verdict, 'pass')
  t.equal(judge(spec, w(200, 0, 0.3), w(8, 0, 0.05)).verdict, 'pass', 'stable below its minimum (a 100% step): no ratio of noise')
  t.equal(judge(spec, w(60, 0, 0.3), w(60, 0, 0.05)).verdict, 'pass', 'p99s of 60 requests are their maxima: not compared')
})

t.test('RuleSet steps and rollback', async (t) => {
  const base: RuleSet = validateRuleSet({
    version: 3,
    user: { header: 'x-user-id' },
    services: { 'order-service': { stable: 'v1', candidates: ['v2'] } },
    rules: [
      { name: 'testers', when: { headers: { 'x-tester': { equals: 'true' } } }, lane: 'v2' },
      { name: 'canary', split: { key: { header: 'x-user-id' }, weights: { v2: 10 }, rest: 'v1' } }
    ],
    default: 'v1'
  })
  const target = { service: 'order-service', candidate: 'v2', stable: 'v1' }
  const s = stepRuleSet(base, target, 25, 4)
  t.equal(s.version, 4)
  t.same(s.rules[1]!.split!.weights, { v2: 25 })
  t.equal(candidateWeight(s, 'v2'), 25)
  t.equal(base.rules[1]!.split!.weights.v2, 10, 'the input is not changed')
  const fresh = stepRuleSet(validateRuleSet({ version: 1, default: 'v1' }), { ...target, service: 'user-service' }, 5, 2)
  t.equal(fresh.rules.at(-1)?.name, CANARY_RULE)
  t.same(fresh.services['user-service'], { stable: 'v1', candidates: ['v2'], strict: false })
  parseRuleSet(JSON.stringify(fresh))
  const back = rollbackRuleSet(s, target, 5)
  t.equal(candidateWeight(back, 'v2'), 0)
  t.equal(back.rules[0]!.enabled, false, 'rules that send to the candidate are disabled')
  t.same(back.rules[1]!.split!.weights, { v2: 0 }, 'the split keeps the candidate at 0%: all to its rest lane')
  parseRuleSet(JSON.stringify(back))
  const facts = (user: number) => ({ headers: { 'x-user-id': `user-${user}` } })
  const users = Array.from({ length: 200 }, (_, i) => i)
  t.equal(users.filter((u) => evaluate(compileRuleSet(back), facts(u)).tag === 'v2').length, 0, 'after the rollback nobody is in v2')
  // A canary after a rollback: its steps reach the candidate again (not a split of stable ahead of it).
  const again = stepRuleSet(back, target, 50, 6)
  parseRuleSet(JSON.stringify(again))
  const inV2 = users.filter((u) => evaluate(compileRuleSet(again), facts(u)).tag === 'v2').length
  t.ok(inV2 > 60 && inV2 < 140, `the next canary's 50% step sends about half the users to v2 (${inV2} of 200)`)
})
