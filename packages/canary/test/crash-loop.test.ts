// A crash-looping candidate is rolled back, never promoted. Real processes on loopback: the Nacos
// dev server, order-service v1, and a v2 that exits in the middle of every 30th request and is
// started again on the same address (as Kubernetes restarts a container); an edge that decides
// each request's lane by the rules the controller publishes and calls order-service through the
// preset's lane-aware fetch. The controller scrapes them all.
// Before: a counter that went down was read as "count from zero" and an instance that could not
// be scraped was left out, so each check saw only the latest life of the process ("candidate 34
// req, errors 0.0%") and v2 reached 100% while callers saw a fifth of its calls fail.
import { NacosClient } from '@flowtag/nacos'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { waitFor } from '@flowtag/test-kit'
import t from 'tap'
import { Agent, request } from 'undici'
import { CanaryController } from '../src/index.ts'
import { candidateWeight, readRules } from '../src/internals.ts'
import { startInstance } from './fixtures/real.ts'

const RULES = { dataId: 'flowtag-rules.json', group: 'FLOWTAG' }
const SERVICE = 'order-service'

t.test('a candidate that crashes every 30th request: rolled back on its restarts, never a passing check', async (t) => {
  const dev = await startNacosDevServer({ port: 0, host: '127.0.0.1', push: { delayMs: 20 } })
  t.teardown(() => dev.close())
  const nacos = new NacosClient({ serverAddr: dev.address, configPollIntervalMs: 100, namingPollIntervalMs: 100, namingProtectEmpty: false })
  t.teardown(() => nacos.close())
  await nacos.config.publish(RULES.dataId, RULES.group, JSON.stringify({
    version: 1, user: { header: 'x-user-id' }, services: { [SERVICE]: { stable: 'v1', candidates: ['v2'] } }, default: 'v1'
  }), 'json')
  const [, v2, edge] = await Promise.all([
    startInstance(t, dev.address, { SERVICE, LANE: 'v1' }),
    startInstance(t, dev.address, { SERVICE, LANE: 'v2', CRASH_EVERY: '30' }, { restart: true }),
    startInstance(t, dev.address, { SERVICE: 'edge', LANE: 'v1', MODE: 'edge' })
  ])
  await waitFor('order-service v1 and v2 listed', async () => (await nacos.naming.instances(SERVICE)).length === 2 || undefined, 20_000)

  // Users through the edge, back to back; each answer says what the edge's call got.
  const agent = new Agent({ connections: 8 })
  const seen = { calls: 0, failed: 0 }
  let running = true
  const users = Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; running; i++) {
      try {
        const res = await request(`http://${edge.address}/call`, { method: 'POST', headers: { 'x-user-id': `user-${w}-${i % 100}` }, dispatcher: agent })
        const body = (await res.body.json()) as { status: number }
        seen.calls++
        if (body.status !== 200) seen.failed++
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }
  })
  t.teardown(async () => { running = false; await Promise.all(users); await agent.close() })

  const c = await CanaryController.start({
    service: SERVICE,
    candidate: 'v2',
    stable: 'v1',
    steps: [50, 100],
    intervalMs: 4000,
    // No life of v2 serves 30 requests: a window without a restart never has enough to be judged,
    // so the only way through is a pass on partial figures (which is what used to happen).
    minRequests: 30,
    convergence: ['edge', SERVICE],
    convergenceTimeoutMs: 20_000,
    deadlineMs: 90_000
  }, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  const end = await c.done
  const story = end.history.map((e) => `${e.event}: ${e.message}`).join('\n')
  t.equal(end.phase, 'rolled-back', story)
  const checks = end.history.filter((e) => e.event === 'check')
  t.same(checks.map((e) => (e.data as { verdict: string }).verdict), ['fail', 'fail'], 'two failed checks, none passed')
  t.equal(end.step, 0, 'never past the first step')
  t.ok(v2.restarts >= 1, `v2 crashed and was restarted ${v2.restarts} times`)
  const data = checks.map((e) => e.data as { breaches: Array<{ check: string }>, candidate: { restarts: number, callerFailures: number, networkErrors: number }, stable: { restarts: number } })
  for (const d of data) {
    t.match(d.breaches, [{ check: 'restarts' }], 'failed on the candidate\'s restarts')
    t.ok(d.candidate.restarts > d.stable.restarts, `candidate restarts ${d.candidate.restarts}, stable ${d.stable.restarts}`)
  }
  t.match(checks[0]?.message, /restarts \d+ > 0 \(candidate \d+, stable 0 in the window: 127\.0\.0\.1:\d+ (restarted|is no longer listed)/)
  const last = data.at(-1)!
  t.ok(last.candidate.callerFailures > 0, `the edge saw ${last.candidate.callerFailures} calls to v2 fail, counted in the candidate's figures`)
  t.ok(last.candidate.networkErrors >= last.candidate.callerFailures, 'as the candidate\'s network errors (it never counted them itself)')
  t.ok(seen.failed > 0, `users saw ${seen.failed} of ${seen.calls} calls fail meanwhile`)
  t.equal(candidateWeight(await readRules(nacos, { rules: RULES }), 'v2'), 0, 'no route to v2 remains')
})
