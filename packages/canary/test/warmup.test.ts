// Warm-up (issue 25): instances publish `flowtag.startedAt`; while a candidate instance is within
// `warmupMs` of it, a check that fails on latency alone waits (`waiting: warming ...`) instead of
// rolling back on cold code. Failures on errors still fail while warming (lane.test.ts: fresh
// instances failing 20% are rolled back).
import t from 'tap'
import type { Instance } from '@flowtag/nacos'
import { CanaryController, type Judgement } from '../src/index.ts'
import { warmingInstances, withWarmup } from '../src/lane.ts'
import { laneWorld } from './fixtures/lane-world.ts'

const base = { stable: 'v1', steps: [50, 100], intervalMs: 400, minRequests: 20, convergenceTimeoutMs: 5000, deadlineMs: 60_000 }

const instance = (port: number, metadata: Record<string, string>): Instance =>
  ({ instanceId: String(port), ip: '10.0.0.1', port, weight: 1, healthy: true, enabled: true, ephemeral: true, clusterName: 'DEFAULT', serviceName: 's', metadata })

t.test('which candidate instances are warming', async (t) => {
  const now = 1_000_000
  const list = [
    instance(1, { version: 'v2', 'flowtag.startedAt': String(now - 10_000) }),
    instance(2, { version: 'v2', 'flowtag.startedAt': String(now - 70_000) }),
    instance(3, { version: 'v1', 'flowtag.startedAt': String(now) }),
    instance(4, { version: 'v2' }),
    instance(5, { version: 'v2', 'flowtag.startedAt': 'soon' }),
    instance(6, { version: 'v2', 'flowtag.startedAt': String(now + 5000) })
  ]
  t.same(warmingInstances(list, 'v2', now, 60_000), ['10.0.0.1:1 (10 s of 60 s)', '10.0.0.1:6 (0 s of 60 s)'], 'stable, warm, unknown and unreadable start times are not warming; a start time ahead of the clock is now')
  t.same(warmingInstances(list, 'v2', now, 0), [], 'warmupMs 0: off')
})

t.test('a latency failure waits while warming; an error failure stands', async (t) => {
  const slow: Judgement = { verdict: 'fail', reason: 'p99 2000 ms > 1', breaches: [{ check: 'p99', value: 2, threshold: 1, action: 'rollback' }], errorRateHigh: false, candidate: {} as Judgement['candidate'], stable: {} as Judgement['stable'] }
  const j = withWarmup(slow, ['10.0.0.1:1 (10 s of 60 s)'], 'user-service')
  t.equal(j.verdict, 'waiting')
  t.match(j.reason, /^warming: user-service 10\.0\.0\.1:1 \(10 s of 60 s\); latency not judged until warm \(p99 2000 ms > 1\)/)
  t.equal(withWarmup(slow, []).verdict, 'fail', 'nothing warming: it fails')
  const errors = { ...slow, breaches: [...slow.breaches, { check: 'sequential.errorRate', value: 300, threshold: 200, action: 'rollback' as const }] }
  t.equal(withWarmup(errors, ['10.0.0.1:1 (10 s of 60 s)']).verdict, 'fail', 'errors fail even while warming')
})

t.test('a slow, just started candidate: the step waits while it warms, and fails once warm-up is off', async (t) => {
  const { nacos } = await laneWorld(t, { v2Seconds: 2, without: ['notify-consumer', 'user-service'] })
  const c = await CanaryController.start({ ...base, service: 'order-service', candidate: 'v2', warmupMs: 600_000 }, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  const wait = await new Promise<string>((resolve) => {
    const off = c.onUpdate((s) => {
      const e = s.history.at(-1)
      if (e?.event === 'wait' && e.message.startsWith('waiting: warming')) { off(); resolve(e.message) }
    })
  })
  t.match(wait, /^waiting: warming: 127\.0\.0\.1:\d+ \(\d+ s of 600 s\); latency not judged until warm/)
  t.equal(c.state.phase, 'waiting', 'not rolled back')
  t.match(c.state.history.at(-1)?.data, { verdict: 'waiting', warming: [/127\.0\.0\.1/] })
  await c.command('abort', 'test')
  await c.done

  const d = await CanaryController.start({ ...base, service: 'order-service', candidate: 'v2', warmupMs: 0 }, { nacos, tickMs: 100 })
  t.teardown(() => d.close())
  const end = await d.done
  t.equal(end.phase, 'rolled-back', 'without warm-up the cold latency rolls back')
  const breaches = (end.history.find((e) => e.event === 'rollback')?.data?.breaches ?? []) as Array<{ check: string }>
  t.ok(breaches.length > 0 && breaches.every((b) => ['p99', 'sequential.latency'].includes(b.check)), 'on latency alone')
})
