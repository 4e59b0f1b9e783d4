// The controller's less travelled paths on loopback: lane figures from a source the test drives
// (so each check's verdict is chosen), the confirm-promotion gate saying no then yes, commands
// through the API, deadlines, metrics that cannot be read, and a RuleSet that is missing or invalid.
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { freePort, unique, waitFor } from '@flowtag/test-kit'
import t from 'tap'
import { CanaryController, startDashboard, type ControllerLogger, type Figures, type MetricsSource, type Reading } from '../src/index.ts'
import { candidateWeight, commandDataId, readRules } from '../src/internals.ts'
import { baseRules, RULES, world } from './fixtures/world.ts'

// These tests are about the controller's steps, pauses and failed-check counting: they pin the
// threshold judge, whose verdicts follow each window (test/sequential-controller.test.ts runs the default).
const fast = { service: 'order-service', candidate: 'v2', stable: 'v1', intervalMs: 400, minRequests: 20, convergenceTimeoutMs: 5000, deadlineMs: 60_000, judge: 'threshold' as const }
const BOUNDS = [0.05, 0.5, 1, 2.5, Infinity]

/** Lane figures the test controls: each read adds `perRead` requests to every lane listed. */
function driven (opts: { lanes?: string[] } = {}) {
  const mode = { perRead: 50, v2FailShare: 0, v2Seconds: 0.02, failReads: 0, restartAll: false }
  const totals = new Map<string, Figures>()
  let reads = 0
  const source: MetricsSource = {
    async read (): Promise<Reading> {
      reads++
      if (mode.failReads > 0) {
        mode.failReads--
        throw new Error('metrics endpoint down')
      }
      const instances: Reading['instances'] = new Map()
      // Every instance restarts: its counters start from zero again.
      if (mode.restartAll) {
        mode.restartAll = false
        totals.clear()
      }
      for (const lane of opts.lanes ?? ['v1', 'v2']) {
        const f = totals.get(lane) ?? { requests: 0, serverErrors: 0, networkErrors: 0, seconds: 0, buckets: BOUNDS.map((le) => [le, 0] as [number, number]) }
        totals.set(lane, f)
        const n = mode.perRead
        const seconds = lane === 'v2' ? mode.v2Seconds : 0.02
        f.requests += n
        f.serverErrors += lane === 'v2' ? Math.round(n * mode.v2FailShare) : 0
        f.seconds += n * seconds
        f.buckets = f.buckets.map(([le, c]) => [le, seconds <= le ? c + n : c])
        const key = `10.0.0.${lane === 'v1' ? 1 : 2}:8080`
        instances.set(key, { key, lane, figures: structuredClone(f), metadata: { version: lane } })
      }
      return { at: Date.now(), instances }
    }
  }
  return { mode, source, reads: () => reads }
}

function recorder (): ControllerLogger & { warnings: string[] } {
  const warnings: string[] = []
  return { warnings, info () {}, warn (_obj, msg) { warnings.push(msg) } }
}

async function gate (t: { teardown (fn: () => unknown): void }) {
  const g = { answer: 503, asked: 0, url: '' }
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      g.asked++
      res.writeHead(g.answer)
      res.end()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  g.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/confirm`
  return g
}

t.test('a failed check pauses; a passing one releases the hold and the steps go on to 100%', async (t) => {
  const { nacos } = await world(t, { traffic: false })
  const m = driven()
  m.mode.v2FailShare = 0.5
  const c = await CanaryController.start({ ...fast, steps: [50, 100], failedChecks: 10, thresholds: { relative: { maxErrorRateIncrease: 1 } } }, { nacos, metrics: m.source, tickMs: 100 })
  t.teardown(() => c.close())
  await waitFor('a pause by the analysis', () => c.state.phase === 'paused', 15_000)
  t.equal(c.state.pausedBy, 'analysis')
  t.equal(c.state.weight, 50, 'held at the step\'s weight')
  // The window keeps the failures: many clean requests bring the 5xx share under 10%.
  m.mode.v2FailShare = 0
  m.mode.perRead = 2000
  const end = await c.done
  t.equal(end.phase, 'promoted')
  const events = end.history.map((e) => e.event)
  const released = end.history.findIndex((e) => e.event === 'resume')
  t.match(end.history[released]?.message, /a passing check releases the hold/)
  t.ok(events.indexOf('pause') < released, 'paused before the release')
  t.equal(end.history[released - 1]?.event, 'check', 'released by a check')
  t.match(end.history[released - 1]?.data, { verdict: 'pass' })
  t.equal(candidateWeight(await readRules(nacos, { rules: RULES }), 'v2'), 100, 'the last step is in force')
})

t.test('a restart of stable and candidate alike: no failure, no pass on partial figures; the window starts again', async (t) => {
  const { nacos } = await world(t, { traffic: false })
  const m = driven()
  const c = await CanaryController.start({ ...fast, steps: [100] }, { nacos, metrics: m.source, tickMs: 100 })
  t.teardown(() => c.close())
  c.onUpdate((s) => { if (s.history.at(-1)?.event === 'converged') m.mode.restartAll = true })
  const end = await c.done
  t.equal(end.phase, 'promoted', end.history.map((e) => `${e.event}: ${e.message}`).join('\n'))
  const first = end.history.findIndex((e) => e.event === 'wait')
  t.match(end.history[first]?.message, /waiting: the candidate's figures do not cover the window: 10\.0\.0\.2:8080 restarted/)
  t.match(end.history[first]?.data, { candidate: { restarts: 1, partial: ['10.0.0.2:8080 restarted'] }, stable: { restarts: 1 } })
  t.match(end.history[first + 1], { event: 'window', message: /the step's window starts again: 10\.0\.0\.2:8080 restarted/ })
  const check = end.history.find((e) => e.event === 'check')
  t.match(check?.data, { verdict: 'pass', candidate: { restarts: 0 } }, 'judged on the whole window after it')
})

t.test('a p99 above its bound rolls back at the first failed check (action rollback)', async (t) => {
  const { nacos } = await world(t, { traffic: false })
  const m = driven()
  m.mode.v2Seconds = 2
  const broken = await gate(t)
  broken.answer = 500
  const refused = `http://127.0.0.1:${await freePort()}/events`
  const log = recorder()
  // warmupMs 0: the fake instances just started, and a latency failure while warming waits (warmup.test.ts)
  const c = await CanaryController.start({ ...fast, steps: [20, 100], warmupMs: 0, webhooks: { events: [broken.url, refused], timeoutMs: 2000 } }, { nacos, metrics: m.source, tickMs: 100, logger: log })
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'rolled-back')
  t.equal(end.history.filter((e) => e.event === 'check').length, 1, 'one check was enough')
  t.notOk(end.history.some((e) => e.event === 'pause'), 'no pause first')
  t.match(end.history.find((e) => e.event === 'rollback')?.data, { verdict: 'fail', breaches: [{ check: 'p99', action: 'rollback' }] })
  t.equal(candidateWeight(await readRules(nacos, { rules: RULES }), 'v2'), 0)
  t.equal(broken.asked, 2, 'told of the step and of the rollback, though it answers 500')
  t.equal(log.warnings.filter((w) => w === 'flowtag canary: webhook notification failed').length, 2, 'each failed notification is logged')
})

t.test('an error rate above the alert bound alerts once, and passing checks still promote', async (t) => {
  const { nacos } = await world(t, { traffic: false })
  // No stable lane in the figures: the candidate is judged on its own.
  const m = driven({ lanes: ['v2'] })
  m.mode.v2FailShare = 0.08
  const c = await CanaryController.start({
    ...fast,
    steps: [100],
    checksPerStep: 3,
    thresholds: { errorRate: { max: 0.05, sustainedMs: 1 }, relative: { maxErrorRateIncrease: 1 } }
  }, { nacos, metrics: m.source, tickMs: 100 })
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'promoted')
  const alerts = end.history.filter((e) => e.event === 'alert')
  t.equal(alerts.length, 1, 'alerted once, not at every check')
  t.match(alerts[0]?.message, /candidate error rate 8\.0% above 5\.0%/)
  t.same(end.history.filter((e) => e.event === 'check').map((e) => (e.data as { verdict: string }).verdict), ['pass', 'pass', 'pass'])
  t.match(end.history.find((e) => e.event === 'check')?.data, { stable: { requests: 0 } })
  t.equal(c.lastJudgement?.errorRateHigh, true)
})

t.test('the confirm-promotion gate: a no holds the step, a later yes moves on', async (t) => {
  const { nacos } = await world(t, { traffic: false })
  const g = await gate(t)
  const m = driven()
  const c = await CanaryController.start({ ...fast, steps: [10, 100], webhooks: { confirmPromotion: g.url } }, { nacos, metrics: m.source, tickMs: 100 })
  t.teardown(() => c.close())
  await waitFor('the gate to be asked twice', () => c.state.phase === 'awaiting-confirmation' && g.asked >= 2, 15_000)
  t.equal(c.state.step, 0, 'still at the first step')
  t.equal(candidateWeight(await readRules(nacos, { rules: RULES }), 'v2'), 10)
  g.answer = 200
  const end = await c.done
  t.equal(end.phase, 'promoted')
  t.equal(end.history.filter((e) => e.event === 'confirm').length, 1, 'the refusal is written once, not at every ask')
  t.ok(end.history.some((e) => e.event === 'promote' && /confirmed by the webhook/.test(e.message)), 'the yes moved it on')
  t.equal(candidateWeight(await readRules(nacos, { rules: RULES }), 'v2'), 100)
})

t.test('an unreachable gate is a no; a person\'s promotion needs no gate', async (t) => {
  const { nacos } = await world(t, { traffic: false })
  const m = driven()
  const gateUrl = `http://127.0.0.1:${await freePort()}/confirm`
  const c = await CanaryController.start({ ...fast, steps: [10, 100], webhooks: { confirmPromotion: gateUrl, timeoutMs: 1000 } }, { nacos, metrics: m.source, tickMs: 100 })
  t.teardown(() => c.close())
  await waitFor('the refused gate to hold the step', () => c.state.phase === 'awaiting-confirmation', 15_000)
  t.equal(c.state.step, 0)
  await c.command('promote', 'release-manager')
  await waitFor('the last step to be judged', () => c.state.phase === 'promoted', 15_000)
  t.ok(c.state.history.some((e) => e.event === 'promote' && /promoted by release-manager/.test(e.message)))
  t.equal(candidateWeight(await readRules(nacos, { rules: RULES }), 'v2'), 100)
})

t.test('commands through the API: refused when they do not apply; listeners that throw are logged', async (t) => {
  const { nacos } = await world(t, { traffic: false })
  const m = driven()
  m.mode.perRead = 0 // no traffic: the step waits
  const log = recorder()
  await nacos.config.publish(commandDataId('order-service'), 'FLOWTAG', 'not json', 'text')
  const c = await CanaryController.start({ ...fast, steps: [10, 50, 100], intervalMs: 60_000 }, { nacos, metrics: m.source, tickMs: 100, logger: log })
  t.teardown(() => c.close())
  c.onUpdate(() => { throw new Error('listener bug') })
  const phases: string[] = []
  const off = c.onUpdate((s) => { phases.push(s.phase) })
  await waitFor('convergence', () => c.state.phase === 'waiting', 15_000)
  t.equal(c.state.lastCommandId, undefined, 'a command document that is not JSON is no command')
  const d = await startDashboard({ controller: c, nacos, token: 'dashboard-token' })
  t.teardown(() => d.close())
  const post = await fetch(new URL('/api/resume', d.url), { method: 'POST', headers: { authorization: 'Bearer dashboard-token' } })
  t.equal(post.status, 409, 'the dashboard answers a command that does not apply with 409')
  t.match(await post.json(), { code: 'FLOWTAG_CANARY_BAD_STATE', error: /not paused/ })
  await t.rejects(c.command('resume', 'tester'), { code: 'FLOWTAG_CANARY_BAD_STATE', message: /not paused \(waiting\)/ })
  await c.command('pause', 'tester')
  t.equal(c.state.phase, 'paused')
  t.equal(c.state.pausedBy, 'user')
  await c.command('resume', 'tester')
  t.equal(c.state.phase, 'waiting')
  t.notOk('pausedBy' in c.state, 'the hold is released')
  await c.command('promote', 'tester')
  t.equal(c.state.step, 1)
  t.equal(candidateWeight(await readRules(nacos, { rules: RULES }), 'v2'), 50, 'a person\'s promotion publishes the next step')
  t.match(c.state.history.findLast((e) => e.event === 'promote')?.message, /promoted by tester/)
  off()
  const seen = phases.length
  t.ok(seen > 0, 'the listener saw the changes')

  // An invalid RuleSet in force: the next promotion cannot be published and is refused.
  await nacos.config.publish(RULES.dataId, RULES.group, JSON.stringify({ version: 90, rules: 'none' }), 'json')
  await t.rejects(c.command('promote', 'tester'), { code: 'FLOWTAG_CANARY_NO_RULES', message: /the RuleSet in force is invalid/ })
  t.equal(c.state.step, 1, 'still at the second step')
  const status = await (await fetch(new URL('/api/status', d.url))).json() as { rules: { error: string } }
  t.match(status.rules.error, /the RuleSet in force is invalid/, 'the dashboard shows why the rules cannot be read')
  await nacos.config.publish(RULES.dataId, RULES.group, JSON.stringify({ ...baseRules, version: 91 }), 'json')
  await c.command('abort', 'tester')
  const end = await c.done
  t.equal(end.phase, 'aborted')
  t.equal(end.ruleVersion, 92, 'the rollback is published above the version in force')
  t.equal(candidateWeight(await readRules(nacos, { rules: RULES }), 'v2'), 0)
  t.equal(phases.length, seen, 'an unsubscribed listener hears nothing more')
  t.ok(log.warnings.includes('flowtag canary: onUpdate listener threw'))
  await t.rejects(c.command('pause'), { code: 'FLOWTAG_CANARY_BAD_STATE', message: /has ended \(aborted\)/ })
  await c.refreshConvergence()
  t.equal(c.convergence.version, 92)
  t.equal(c.convergence.total, 2)
})

t.test('the overall deadline rolls back a canary that never got traffic', async (t) => {
  const { nacos } = await world(t, { traffic: false })
  const m = driven({ lanes: ['v1'] })
  const c = await CanaryController.start({ ...fast, deadlineMs: 1500 }, { nacos, metrics: m.source, tickMs: 100 })
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'rolled-back')
  t.match(end.history.find((e) => e.event === 'deadline')?.message, /overall deadline of 1500 ms passed/)
  t.match(end.history.find((e) => e.event === 'rollback')?.message, /onDeadline: rollback/)
  t.equal(candidateWeight(await readRules(nacos, { rules: RULES }), 'v2'), 0)
})

t.test('metrics that cannot be read are warned about; the step is judged once they can', async (t) => {
  const { nacos } = await world(t, { traffic: false })
  const m = driven()
  m.mode.failReads = 1_000_000
  const log = recorder()
  const first = await CanaryController.start({ ...fast, steps: [10, 100], intervalMs: 300 }, { nacos, metrics: m.source, tickMs: 100, logger: log })
  await waitFor('failed reads after convergence', () => first.convergence.applied === 2 && log.warnings.filter((w) => /reading metrics failed/.test(w)).length >= 5, 15_000)
  t.ok(log.warnings.some((w) => /cannot read the metrics the step's window starts from/.test(w)), 'the failed read at convergence is warned about')
  t.notOk(first.state.history.some((e) => e.event === 'check' || e.event === 'wait'), 'nothing is judged without figures')
  // The step's window opens at a reading: without one the step is still converging (not
  // `waiting` with no window, no audit entry, and a check due at once).
  t.equal(first.state.phase, 'converging', 'converged instances, but no reading: still converging')
  t.notOk(first.state.history.some((e) => e.event === 'converged'))
  m.mode.failReads = 0
  m.mode.perRead = 0
  await waitFor('a check waiting for traffic', () => first.state.history.some((e) => e.event === 'wait'), 15_000)
  await first.close()
  t.equal(first.state.phase, 'waiting', 'closing leaves the canary where it was')
  m.mode.perRead = 50

  // A restarted controller whose first reading fails judges on a fresh one.
  const log2 = recorder()
  m.mode.failReads = 1
  const second = await CanaryController.resume('order-service', { nacos, metrics: m.source, tickMs: 100, logger: log2 })
  t.teardown(() => second.close())
  const end = await second.done
  t.equal(end.phase, 'promoted')
  t.same(log2.warnings.filter((w) => /reading metrics failed/.test(w)).length, 1)
  const restart = end.history.findIndex((e) => e.event === 'restart')
  const check = end.history.slice(restart).find((e) => e.event === 'check')
  t.match(check?.data, { verdict: 'pass', candidate: { requests: Number } })
  t.ok((check?.data as { candidate: { requests: number } }).candidate.requests > 0, 'judged on the figures read at the check')
})

t.test('a reading that fails mid-step is no data: the check waits, it never judges the last good reading', async (t) => {
  const { nacos } = await world(t, { traffic: false })
  const m = driven()
  const c = await CanaryController.start({ ...fast, steps: [10, 100], intervalMs: 300 }, { nacos, metrics: m.source, tickMs: 100 })
  t.teardown(() => c.close())
  // From the moment the step's window opens, every reading fails.
  const off = c.onUpdate((s) => { if (s.history.at(-1)?.event === 'converged') m.mode.failReads = 1_000_000 })
  await waitFor('a check without data', () => c.state.history.some((e) => e.event === 'wait'), 15_000)
  off()
  const wait = c.state.history.find((e) => e.event === 'wait')!
  t.match(wait.message, /waiting: no metrics: metrics endpoint down/)
  t.match(wait.data, { verdict: 'waiting', candidate: { requests: 0 } })
  t.notOk(c.state.history.some((e) => e.event === 'check'), 'no pass on stale figures')
  t.equal(c.state.step, 0)
  m.mode.failReads = 0
  t.equal((await c.done).phase, 'promoted', 'judged again once readings come back')
})

t.test('a missing or invalid RuleSet in force refuses the start', async (t) => {
  const { nacos } = await world(t, { traffic: false })
  const missing = unique('missing')
  await t.rejects(CanaryController.start({ ...fast, rules: { dataId: missing } }, { nacos }), { code: 'FLOWTAG_CANARY_NO_RULES', message: new RegExp(`no RuleSet at FLOWTAG/${missing}`) })
  const invalid = unique('invalid')
  await nacos.config.publish(invalid, 'FLOWTAG', '{"version": "one"}', 'json')
  await t.rejects(CanaryController.start({ ...fast, rules: { dataId: invalid } }, { nacos }), { code: 'FLOWTAG_CANARY_NO_RULES', message: /the RuleSet in force is invalid/ })
  await t.rejects(CanaryController.resume('order-service', { nacos }), { code: 'FLOWTAG_CANARY_CONFLICT', message: /no canary of "order-service"/ })
})
