// The canary end to end on real processes: the Nacos dev server (or NACOS_SERVER_ADDR), the
// gateway, order-service and user-service v1/v2; @flowtag/canary scrapes the instances' /metrics
// found in Nacos and moves the RuleSet. A canary without traffic waits, then ends by its
// deadline; a healthy v2 is promoted to 100% step by step; a v2 failing 20% of its requests is
// rolled back within two analysis intervals, after which only testers reach v2 (the RuleSet as it was).
import { waitFor } from '@flowtag/test-kit'
import { CanaryController, StateStore } from '@flowtag/canary'
import { candidateWeight, readRules, TERMINAL } from '@flowtag/canary/internals'
import t from 'tap'
import { topology } from './fixtures/topology.ts'
import { RULES_DATA_ID, RULES_GROUP } from '../src/rulesets.ts'
import { drive, Tally } from '../src/traffic.ts'

const { nacos, start } = await topology(t, 'canary')

const rules = { dataId: RULES_DATA_ID, group: RULES_GROUP }
let version = 1
/** v2 only for testers: the state before (and after) a canary. */
const base = () => ({
  version: version++,
  user: { header: 'x-user-id' },
  services: { 'order-service': { stable: 'v1', candidates: ['v2'] }, 'user-service': { stable: 'v1', candidates: ['v2'] } },
  rules: [{ name: 'testers', when: { headers: { 'x-tester': { equals: 'true' } } }, lane: 'v2' }],
  default: 'v1'
})
const publish = async (doc: { version: number }) => nacos.config.publish(RULES_DATA_ID, RULES_GROUP, JSON.stringify(doc), 'json')
// One polling helper for every test (@flowtag/test-kit); these waits are longer than its default.
const until = <T>(what: string, check: () => Promise<T>, ms = 20_000) => waitFor(what, check, ms)

await publish(base())
await start('user-service', 'v1')
await start('user-service', 'v2')
// order-service calls inventory-service over gRPC on every request: one stable instance serves both lanes.
await start('inventory-service', 'v1')
await start('order-service', 'v1')
let orderV2 = await start('order-service', 'v2')
const gateway = await start('gateway', 'v1')
await until('instances registered', async () => ((await nacos.naming.instances('order-service')).length === 2 && (await nacos.naming.instances('gateway')).length === 1 && (await nacos.naming.instances('inventory-service')).length === 1) || undefined)

const spec = {
  service: 'order-service',
  candidate: 'v2',
  stable: 'v1',
  intervalMs: 1500,
  minRequests: 30,
  // The gateway decides the lane, order-service routes onwards: both must apply a step's rules.
  convergence: ['gateway', 'order-service'],
  // Two cores shared with other work: sub-half-second p99 ratios here measure the machine, not v2.
  thresholds: { relative: { p99FloorSeconds: 0.5 } },
  // The same for the sequential judge: only requests slower than 500 ms count as slow.
  sequential: { latency: { thresholdSeconds: 0.5 } },
  rules
}
const controllerOptions = { nacos, tickMs: 250 }

/**
 * The previous canary's final state as Nacos serves it: a real Nacos applies a publish a moment
 * later, and a canary is refused while the stored one is not final.
 */
const previousSettled = () => until('the previous canary\'s final state in Nacos', async () => {
  const state = await new StateStore(nacos.config, rules.group).load(spec.service)
  return state === undefined || TERMINAL.has(state.phase) || undefined
})

t.test('no traffic: the canary waits (never a silent pass), then ends as its deadline says', async (t) => {
  const c = await CanaryController.start({ ...spec, maxWaitMs: 3000 }, controllerOptions)
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'rolled-back')
  t.ok(end.history.some((e) => e.event === 'wait'), 'explicitly waiting')
  t.notOk(end.history.some((e) => e.event === 'check'), 'never judged without traffic')
  t.match(end.history.find((e) => e.event === 'deadline')?.message, /waited/)
})

t.test('a healthy v2 is promoted to 100% step by step', async (t) => {
  await publish(base())
  const tally = new Tally()
  const traffic = drive({ gatewayUrl: gateway.url, users: 500, testerShare: 0, concurrency: 4 }, () => tally)
  t.teardown(() => traffic.stop())
  await previousSettled()
  const c = await CanaryController.start({ ...spec, steps: [20, 50, 100] }, controllerOptions)
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'promoted', end.history.map((e) => `${e.event}: ${e.message}`).join('\n'))
  t.same(end.history.filter((e) => e.event === 'step').map((e) => e.weight), [20, 50, 100], 'every step taken in order')
  for (const e of end.history.filter((e) => e.event === 'converged')) t.match(e.message, /on 3 of 3 instances/, 'gateway and both order-service instances')
  t.ok(end.history.filter((e) => e.event === 'check').every((e) => (e.data as { verdict: string }).verdict === 'pass'))
  t.equal(candidateWeight(await readRules(nacos, { rules }), 'v2'), 100)
  t.equal(tally.errors, 0, 'no failed request during the rollout')
})

t.test('a v2 failing 20% of its requests is rolled back within two intervals; afterwards only testers reach v2, as before the canary', async (t) => {
  await publish(base())
  await orderV2.stop()
  orderV2 = await start('order-service', 'v2', { FAIL_RATE: '0.2' })
  await until('the failing v2 registered', async () => (await nacos.naming.instances('order-service')).some((i) => i.port === orderV2.port) || undefined)
  let tally = new Tally()
  const traffic = drive({ gatewayUrl: gateway.url, users: 500, testerShare: 0.02, concurrency: 4 }, () => tally)
  let trafficStopped = false
  const stopTraffic = async () => { if (!trafficStopped) { trafficStopped = true; await traffic.stop() } }
  t.teardown(stopTraffic)
  await previousSettled()
  const c = await CanaryController.start({ ...spec, steps: [20, 50, 100] }, controllerOptions)
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'rolled-back', end.history.map((e) => `${e.event}: ${e.message}`).join('\n'))
  const checks = end.history.filter((e) => e.event === 'check')
  const rolled = end.history.find((e) => e.event === 'rollback')!
  const verdicts = checks.map((e) => (e.data as { verdict: string }).verdict)
  t.ok(verdicts.length >= 1 && verdicts.length <= 2 && verdicts.every((v) => v === 'fail'), `rolled back by the first or second check, none passed (${verdicts.join(', ')})`)
  // Two intervals of analysis: from the window of the first judged check (the step's window, or
  // one interval before that check when the step first waited for its minimum traffic, which a
  // loaded machine slows down) to the rollback, plus a tick's lateness and one scrape of every
  // instance on a busy machine.
  const opened = Math.max(Date.parse(end.history.find((e) => e.event === 'converged')!.at), Date.parse(checks[0]!.at) - spec.intervalMs)
  const after = Date.parse(rolled.at) - opened
  t.ok(after <= 2 * spec.intervalMs + 1000, `rolled back ${after} ms after the window of the first judged check opened (interval ${spec.intervalMs} ms)`)
  t.equal(end.step, 0, 'at the first step', { history: end.history.map((e) => `${e.event}: ${e.message}`) })
  t.match(rolled.data, { candidate: { serverErrorRate: Number } })
  t.ok((rolled.data as { candidate: { serverErrorRate: number } }).candidate.serverErrorRate > 0.1)

  await until('every instance applies the rollback', async () => {
    const all = [...await nacos.naming.instances('gateway'), ...await nacos.naming.instances('order-service')]
    return all.every((i) => Number(i.metadata['flowtag.rules.version']) >= end.ruleVersion!) || undefined
  })
  // The rollback restores the RuleSet as it was before the canary: users' requests stay on v1,
  // the testers rule (v2 for testers) is back as the user wrote it.
  await stopTraffic()
  tally = new Tally()
  const users = drive({ gatewayUrl: gateway.url, users: 500, testerShare: 0, concurrency: 4 }, () => tally)
  await new Promise((r) => setTimeout(r, 1500))
  await users.stop()
  t.ok(tally.requests > 50, `${tally.requests} requests after the rollback`)
  t.equal(tally.share('order-service', 'v2'), 0, 'no user request reaches order-service v2')
  t.equal(tally.share('user-service', 'v2'), 0, 'nor user-service v2')
  t.equal(tally.errors, 0)
  const tester = await until('a tester request answered through order-service v2', async () => {
    const res = await fetch(`${gateway.url}/api/orders/1`, { headers: { 'x-tester': 'true', 'x-user-id': 'tester-1' } })
    const body = await res.json() as { hops?: Array<{ service: string, version: string }> }
    return (res.status === 200 && body.hops?.some((h) => h.service === 'order-service' && h.version === 'v2')) || undefined
  })
  t.ok(tester, 'testers still reach v2: the testers rule came back with the RuleSet before the canary')
})
