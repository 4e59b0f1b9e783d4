// The controller on loopback: the Nacos dev server, fake instances serving /metrics and reporting
// their rule version, traffic following the RuleSet in force.
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { CanaryController, StateStore } from '../src/index.ts'
import { candidateWeight, readRules } from '../src/internals.ts'
import { parseRuleSet } from '@flowtag/rules'
import { baseRules, RULES, world } from './fixtures/world.ts'

// These tests are about the controller's steps, pauses and failed-check counting: they pin the
// threshold judge, whose verdicts follow each window (test/sequential-controller.test.ts runs the default).
const fast = { service: 'order-service', candidate: 'v2', stable: 'v1', intervalMs: 400, minRequests: 20, convergenceTimeoutMs: 5000, deadlineMs: 60_000, judge: 'threshold' as const }

async function hooks (t: { teardown (fn: () => unknown): void }, answer = 200) {
  const events: Array<{ event: string, message: string }> = []
  let asked = 0
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => { body += d })
    req.on('end', () => {
      const e = JSON.parse(body) as { event: string, message: string }
      if (req.url === '/confirm') asked++
      else events.push(e)
      res.writeHead(req.url === '/confirm' ? answer : 204)
      res.end()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { events, asked: () => asked, confirm: `${base}/confirm`, notify: `${base}/events` }
}

t.test('a healthy candidate is promoted step by step, each step judged only once converged', async (t) => {
  const { nacos } = await world(t)
  const h = await hooks(t)
  const c = await CanaryController.start({ ...fast, steps: [10, 50, 100], webhooks: { confirmPromotion: h.confirm, events: [h.notify] } }, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'promoted')
  t.equal(candidateWeight(await readRules(nacos, { rules: RULES }), 'v2'), 100)
  const events = end.history.map((h) => h.event)
  for (let step = 1; step <= 3; step++) {
    const at = end.history.filter((h) => h.step === step).map((h) => h.event)
    t.ok(at.indexOf('converged') >= 0 && at.indexOf('converged') < at.indexOf('check'), `step ${step}: converged before its first check`)
  }
  const check = end.history.find((h) => h.event === 'check')!
  t.match(check.data, { verdict: 'pass', candidate: { requests: Number }, stable: { requests: Number } }, 'checks keep their numbers')
  t.ok(events.includes('promote'))
  t.equal(h.asked(), 2, 'the confirm-promotion gate is asked before each further step')
  t.ok(h.events.some((e) => e.event === 'promote'), 'notified of the promotion')
  const saved = await new StateStore(nacos.config, 'FLOWTAG').load('order-service')
  t.equal(saved?.phase, 'promoted', 'the state is kept in Nacos')
})

t.test('a candidate failing 20% of its requests pauses, then rolls back within two intervals; the RuleSet before the canary comes back', async (t) => {
  const { nacos } = await world(t, { v2FailShare: 0.2 })
  const h = await hooks(t)
  const c = await CanaryController.start({ ...fast, steps: [20, 50, 100], webhooks: { events: [h.notify] } }, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'rolled-back')
  const rolled = end.history.find((e) => e.event === 'rollback')!
  // "Within two intervals" is counted in checks, not wall time (a loaded machine stretches ticks):
  // the second failed check of the step rolls back, with no third.
  const events = end.history.map((e) => e.event)
  t.equal(events.indexOf('rollback'), events.lastIndexOf('check') + 1, 'rolled back right at the second failed check')
  t.match(rolled.data, { verdict: 'fail', breaches: [{ check: 'serverErrorRate' }] })
  t.same(end.history.filter((e) => e.event === 'check').map((e) => (e.data as { verdict: string }).verdict), ['fail', 'fail'])
  t.ok(end.history.some((e) => e.event === 'pause'), 'the first failed check pauses (5xx > 10%)')
  const rules = await readRules(nacos, { rules: RULES })
  t.equal(candidateWeight(rules, 'v2'), 0)
  const before = parseRuleSet(JSON.stringify(baseRules), 'base')
  t.same(rules, { ...before, version: rolled.ruleVersion }, 'the user\'s own RuleSet (the testers rule, no split) is back exactly, at a newer version')
  t.same(h.events.map((e) => e.event), ['step', 'pause', 'rollback'])
})

t.test('without traffic the canary waits, then its deadline rolls it back', async (t) => {
  const { nacos } = await world(t, { traffic: false })
  const c = await CanaryController.start({ ...fast, maxWaitMs: 1200 }, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'rolled-back')
  t.ok(end.history.filter((e) => e.event === 'wait').length >= 2, 'explicit waiting checks')
  t.ok(end.history.every((e) => e.event !== 'check'), 'never judged: no silent pass')
  t.match(end.history.find((e) => e.event === 'deadline')?.message, /waited \d+ ms for 20 candidate requests/)
})

t.test('onDeadline: promote ends a quiet canary promoted, as its spec says', async (t) => {
  const { nacos } = await world(t, { traffic: false })
  const c = await CanaryController.start({ ...fast, steps: [10, 100], maxWaitMs: 800, onDeadline: 'promote' }, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  t.equal((await c.done).phase, 'promoted')
  t.equal(candidateWeight(await readRules(nacos, { rules: RULES }), 'v2'), 100)
})

t.test('an instance that does not apply the step\'s rules holds the step: paused, not judged', async (t) => {
  const { nacos } = await world(t, { v2Follows: false })
  const c = await CanaryController.start({ ...fast, convergenceTimeoutMs: 800 }, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  while (c.state.phase !== 'paused') await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(c.state.pausedBy, 'convergence')
  t.match(c.state.history.at(-1)?.message, /rule version 2 on 1 of 2 instances; behind: order-service 127\.0\.0\.1:\d+ \(reports no rule version: does it read the RuleSet\?\)/, 'the lagging instance is named')
  t.same(c.convergence.instances.map((i) => i.ruleVersion).sort(), ['2', 'none'], 'the lagging instance reports no version')
  await c.command('abort', 'test')
  t.equal((await c.done).phase, 'aborted')
  t.equal(candidateWeight(await readRules(nacos, { rules: RULES }), 'v2'), 0)
})

t.test('a restarted controller resumes from the state in Nacos; commands arrive through Nacos too', async (t) => {
  const { nacos } = await world(t)
  const first = await CanaryController.start({ ...fast, steps: [10, 20, 50, 100], intervalMs: 300 }, { nacos, tickMs: 100 })
  while (first.state.step < 1) await new Promise((resolve) => setTimeout(resolve, 50))
  await first.close()
  const step = first.state.step
  await t.rejects(CanaryController.start(fast, { nacos }), { code: 'FLOWTAG_CANARY_CONFLICT' }, 'one canary per service')
  // Sent while no controller ran, and expired long ago (past the 30 s skew allowance): not applied.
  const stale = await new StateStore(nacos.config, 'FLOWTAG').sendCommand('order-service', 'abort', 'cli', -60_000)
  const second = await CanaryController.resume('order-service', { nacos, tickMs: 100 })
  t.teardown(() => second.close())
  t.equal(second.state.step, step, 'resumed at the step it had reached')
  while (second.state.lastCommandId !== stale.id) await new Promise((resolve) => setTimeout(resolve, 50))
  t.not(second.state.phase, 'aborted', 'an expired command is not applied')
  t.ok(second.state.history.some((e) => e.event === 'command' && /abort by cli \(sent at .+\) not applied: expired at /.test(e.message)), 'the audit says why')
  await new StateStore(nacos.config, 'FLOWTAG').sendCommand('order-service', 'pause')
  while (second.state.phase !== 'paused') await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(second.state.pausedBy, 'user')
  await new StateStore(nacos.config, 'FLOWTAG').sendCommand('order-service', 'resume')
  const end = await second.done
  t.equal(end.phase, 'promoted')
  t.ok(end.history.some((e) => e.event === 'restart'))
  await t.rejects(CanaryController.resume('order-service', { nacos }), { code: 'FLOWTAG_CANARY_CONFLICT' })
})
