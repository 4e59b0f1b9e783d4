// The controller with its default judge (sequential) on loopback: the Nacos dev server and fake
// instances serving /metrics. A healthy candidate is promoted through every step; one failing a
// fifth of its requests is rolled back by the test at its first check, without the pause that the
// threshold judge's first failed check takes.
import t from 'tap'
import { CanaryController } from '../src/index.ts'
import { candidateWeight, readRules } from '../src/internals.ts'
import { RULES, world } from './fixtures/world.ts'

const spec = { service: 'order-service', candidate: 'v2', stable: 'v1', intervalMs: 400, minRequests: 20, convergenceTimeoutMs: 5000, deadlineMs: 60_000 }

t.test('a healthy candidate is promoted step by step by the sequential judge', async (t) => {
  const { nacos } = await world(t)
  const c = await CanaryController.start({ ...spec, steps: [10, 50, 100] }, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.spec.judge, 'sequential', 'the default')
  t.equal(end.phase, 'promoted')
  const checks = end.history.filter((e) => e.event === 'check')
  t.ok(checks.length >= 3)
  t.match(checks.at(-1)?.message, /check passed .*no evidence against v2: errors e=/)
  t.equal(candidateWeight(await readRules(nacos, { rules: RULES }), 'v2'), 100)
})

t.test('a candidate failing 20% of its requests is rolled back at its first check', async (t) => {
  const { nacos } = await world(t, { v2FailShare: 0.2 })
  const c = await CanaryController.start({ ...spec, steps: [20, 50, 100] }, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'rolled-back')
  t.same(end.history.filter((e) => e.event === 'check').map((e) => (e.data as { verdict: string }).verdict), ['fail'], 'one check')
  t.notOk(end.history.some((e) => e.event === 'pause'), 'no pause first: the test\'s rejection rolls back')
  const rolled = end.history.find((e) => e.event === 'rollback')!
  t.match(rolled.data, { verdict: 'fail', breaches: [{ check: 'sequential.errorRate', action: 'rollback', threshold: 200 }] })
  t.match(rolled.message, /errors: more frequent than stable's \(e-value/)
  t.equal(candidateWeight(await readRules(nacos, { rules: RULES }), 'v2'), 0)
})
