// Lane canaries on loopback (the Nacos dev server, fake instances serving /metrics): the controller
// finds every service with v2 instances (HTTP and a message consumer), publishes each step for the
// whole lane in one RuleSet, judges each service against its own stable, and rolls the lane back
// when one fails, naming it.
import t from 'tap'
import { CanaryController, parseCanarySpec, StateStore, type CanaryState } from '../src/index.ts'
import { candidateWeight, readRules } from '../src/internals.ts'
import { laneWorld } from './fixtures/lane-world.ts'
import { RULES } from './fixtures/world.ts'

const spec = {
  lane: 'v2',
  stable: 'v1',
  // user-service and the consumer are not in the RuleSet: named here, found in Nacos by their v2 instances
  services: ['user-service', 'notify-consumer', 'billing-service'],
  intervalMs: 400,
  minRequests: 20,
  convergenceTimeoutMs: 5000,
  deadlineMs: 60_000
}

const verdicts = (e: CanaryState['history'][number]) => Object.fromEntries(((e.data?.services ?? []) as Array<{ service: string, verdict: string }>).map((s) => [s.service, s.verdict]))

t.test('a healthy lane is promoted: every service in it judged, one RuleSet per step', async (t) => {
  const { nacos } = await laneWorld(t)
  const c = await CanaryController.start({ ...spec, steps: [20, 100] }, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  t.equal(c.service, 'lane:v2', 'known by its lane')
  const end = await c.done
  t.equal(end.phase, 'promoted')
  const checks = end.history.filter((e) => e.event === 'check')
  t.same(verdicts(checks.at(-1)!), { 'notify-consumer': 'pass', 'order-service': 'pass', 'user-service': 'pass' }, 'each service of the lane passed; billing-service has no v2 instance')
  t.same(end.lane?.services.map((s) => [s.service, s.kind]), [['notify-consumer', 'consumer'], ['order-service', 'http'], ['user-service', 'http']])
  t.ok((end.lane?.services[0]?.candidate as { requests: number }).requests > 0, 'the consumer judged on its messages')
  const steps = end.history.filter((e) => e.event === 'step')
  t.same(steps.map((e) => e.ruleVersion), [2, 3], 'one RuleSet publication per step for the whole lane')
  const rules = await readRules(nacos, { rules: RULES })
  t.equal(candidateWeight(rules, 'v2'), 100)
  t.same(Object.keys(rules.services).sort(), ['notify-consumer', 'order-service', 'user-service'], 'the candidate declared in each service of the lane')
  const saved = await new StateStore(nacos.config, RULES.group).load('lane:v2')
  t.equal(saved?.phase, 'promoted', 'state kept under the lane key')
})

t.test('user-service v2 failing 20% rolls the whole lane back and says which service failed', async (t) => {
  const { nacos } = await laneWorld(t, { fail: { 'user-service': 0.2 } })
  const c = await CanaryController.start({ ...spec, steps: [20, 50, 100] }, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'rolled-back')
  const rolled = end.history.find((e) => e.event === 'rollback')!
  t.match(rolled.message, /^rolled back: user-service failed: .*errors: more frequent than stable's/)
  t.equal(rolled.data?.failing, 'user-service')
  t.match(rolled.data?.breaches, [{ check: 'sequential.errorRate', service: 'user-service' }])
  t.equal(verdicts(rolled)['order-service'] !== 'fail', true, 'order-service itself did not fail')
  t.equal(end.lane?.failing, 'user-service', 'in the state (the CLI and the dashboard read it)')
  t.equal(candidateWeight(await readRules(nacos, { rules: RULES }), 'v2'), 0, 'no request decided into v2 for any service')
})

t.test('a consumer failing 20% of its v2 messages rolls the lane back', async (t) => {
  const { nacos } = await laneWorld(t, { fail: { 'notify-consumer': 0.2 } })
  const c = await CanaryController.start({ ...spec, steps: [20, 50, 100] }, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'rolled-back')
  const rolled = end.history.find((e) => e.event === 'rollback')!
  t.equal(rolled.data?.failing, 'notify-consumer')
  t.match(rolled.message, /notify-consumer failed: errors: more frequent than stable's/)
  const consumer = (rolled.data?.services as Array<{ service: string, kind: string, candidate: { requests: number, errorRate: number } }>).find((s) => s.service === 'notify-consumer')!
  t.equal(consumer.kind, 'consumer')
  t.ok(consumer.candidate.errorRate > 0.1 && consumer.candidate.errorRate < 0.35, `failed / processed messages ${consumer.candidate.errorRate}`)
})

t.test('a lane with no instance in any service looked at: start refuses and says where it looked', async (t) => {
  const { nacos } = await laneWorld(t, { without: ['order-service', 'user-service', 'notify-consumer'] })
  await t.rejects(CanaryController.start({ ...spec, steps: [20, 100], convergenceTimeoutMs: 500, deadlineMs: 3000 }, { nacos, tickMs: 100 }), {
    code: 'FLOWTAG_CANARY_NO_CANDIDATE',
    message: /no service has an instance in the lane "v2" registered in Nacos \(looked at: billing-service, notify-consumer, order-service, user-service\)/
  })
})

t.test('start names the services whose lanes the steps change', async (t) => {
  const { nacos } = await laneWorld(t, {})
  const c = await CanaryController.start({ ...spec, steps: [20, 100] }, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  const start = c.state.history.find((e) => e.event === 'start')!
  t.match(start.message, /the steps change the lanes of notify-consumer, order-service, user-service$/)
  t.same(start.data?.services, ['notify-consumer', 'order-service', 'user-service'])
})

t.test('an excluded service is neither judged nor waited for', async (t) => {
  // notify-consumer would fail the lane: excluded, the lane is judged on the others and promoted.
  const { nacos } = await laneWorld(t, { fail: { 'notify-consumer': 0.5 } })
  const c = await CanaryController.start({ ...spec, steps: [20, 100], exclude: ['notify-consumer'] }, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'promoted')
  t.same(end.lane?.services.map((s) => s.service), ['order-service', 'user-service'])
})

t.test('the spec names exactly one of service and lane', async (t) => {
  const code = { code: 'FLOWTAG_CANARY_BAD_OPTION' }
  t.throws(() => parseCanarySpec({ service: 'a', lane: 'v2', stable: 'v1' }), { ...code, message: /lane.*exactly one of service/ })
  t.throws(() => parseCanarySpec({ stable: 'v1', candidate: 'v2' }), { ...code, message: /service.*exactly one of service/ })
  t.throws(() => parseCanarySpec({ lane: 'v2', candidate: 'v3', stable: 'v1' }), { ...code, message: /candidate.*must be the lane/ })
  t.throws(() => parseCanarySpec({ lane: 'v1', stable: 'v1' }), { ...code, message: /lane.*must differ from stable/ })
  t.throws(() => parseCanarySpec({ service: 'a', stable: 'v1' }), { ...code, message: /candidate.*required with service/ })
  t.throws(() => parseCanarySpec({ service: 'a', candidate: 'v2', stable: 'v1', services: ['b'] }), { ...code, message: /services.*only with lane/ })
  t.throws(() => parseCanarySpec({ lane: 'not a lane!', stable: 'v1' }), { ...code, message: /lane/ })
  t.throws(() => parseCanarySpec({ service: 'a', candidate: 'v2', stable: 'v1', exclude: ['b'] }), { ...code, message: /exclude.*only with lane/ })
  t.equal(parseCanarySpec({ lane: 'v2', stable: 'v1' }).candidate, 'v2', 'the lane is the candidate')
  t.equal(parseCanarySpec({ service: 'a', candidate: 'v2', stable: 'v1' }).lane, undefined, 'the one-service spec unchanged')
})
