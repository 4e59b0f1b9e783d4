// The chaos suite's canary scenarios: @flowtag/canary's controller rolling the v2 lane out (a lane
// spec: every service with v2 instances, here order-service) on real processes (gateway →
// order-service v1/v2 → user-service and inventory-service), against the
// dev server by default or the real Nacos NACOS_SERVER_ADDR names (in a namespace of its own).
// Intervals are short so each scenario stays within a minute or two; every other setting is the
// defaults' (minRequests 100 for the quiet one, failedChecks 2, onDeadline rollback).
//  (b) No user traffic: three v2 instances and one v1, probed like the kubelet does and scraped by
//      the controller every tick (at least the defaults' 60 scrapes an interval): the step stays
//      `waiting` and ends at its deadline, rolled back, never judged.
//  (a) A v2 that exits in the middle of every 20th request and is started again on the same
//      address, under load through the gateway: rolled back on the candidate's restarts, never a
//      passing check; afterwards no user request reaches v2 (testers do: the RuleSet as it was).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CanaryController, type CanarySpecInput } from '@flowtag/canary'
import { candidateWeight, readRules } from '@flowtag/canary/internals'
import { NacosClient } from '@flowtag/nacos'
import t from 'tap'
import { request } from 'undici'
import { startApp, type AppProcess } from '../../src/cluster.ts'
import { canaryRuleSet, RULES_DATA_ID, RULES_GROUP } from '../../src/rulesets.ts'
import { drive, Tally } from '../../src/traffic.ts'
import { devNacos, realNacos, type NacosProcess } from './nacos-process.ts'
import { until } from './probes.ts'

const real = process.env.NACOS_SERVER_ADDR
const nacos: NacosProcess = real === undefined || real === '' ? await devNacos() : realNacos(real)
const namespace = `canary-chaos-${Date.now().toString(36)}`
const cacheRoot = await mkdtemp(join(tmpdir(), 'flowtag-canary-chaos-'))
const env = { NACOS_NAMESPACE: namespace, FLOWTAG_CACHE_DIR: cacheRoot, DRAIN_MS: '300' }
const admin = new NacosClient({ serverAddr: nacos.addr, namespace, configPollIntervalMs: 200, namingPollIntervalMs: 200, namingProtectEmpty: false })
const apps = new Set<AppProcess>()
const rules = { dataId: RULES_DATA_ID, group: RULES_GROUP }
let supervising = true

// Starts in flight (the crash loop's restarts): awaited before the apps are killed, or a v2 that
// comes up after the kill keeps this process alive (a CI run sat at its 540 s timeout).
const pending = new Set<Promise<AppProcess>>()

t.teardown(async () => {
  supervising = false
  await Promise.allSettled([...pending])
  await Promise.all([...apps].map((a) => a.stop('SIGKILL')))
  await admin.close()
  await nacos.close()
  await rm(cacheRoot, { recursive: true, force: true })
})

const start = async (name: string, version: string, extra: Record<string, string> = {}, port?: number): Promise<AppProcess> => {
  const starting = startApp(name, version, { nacosAddr: nacos.addr, env: { ...env, ...extra }, ...(port === undefined ? {} : { port }) })
  pending.add(starting)
  try {
    const app = await starting
    apps.add(app)
    return app
  } finally {
    pending.delete(starting)
  }
}
const stop = async (app: AppProcess): Promise<void> => {
  apps.delete(app)
  await app.stop('SIGTERM')
}
const listed = async (service: string): Promise<number> => (await admin.naming.instances(service)).length

/** The last state the controller reached, as lines, for failure messages. */
const story = (history: Array<{ event: string, message: string }>) => history.map((e) => `${e.event}: ${e.message}`).join('\n')

// v2 is for testers only before a canary (0%); the canary's steps set the split.
let version = 0
await admin.config.publish(RULES_DATA_ID, RULES_GROUP, JSON.stringify(canaryRuleSet(++version, 0)), 'json')
await Promise.all([start('user-service', 'v1'), start('inventory-service', 'v1'), start('order-service', 'v1')])
const v2s = await Promise.all([start('order-service', 'v2'), start('order-service', 'v2'), start('order-service', 'v2')])
const gateway = await start('gateway', 'v1')
await until('every instance registered', async () => (await listed('order-service')) === 4 && (await listed('gateway')) === 1 && (await listed('user-service')) === 1)

const spec = {
  // The lane: found in Nacos among the services the RuleSet names (only order-service has v2 instances here).
  lane: 'v2',
  stable: 'v1',
  steps: [20, 50, 100],
  // The edge applies each step too; the lane's services are added.
  convergence: ['gateway'],
  convergenceTimeoutMs: 30_000,
  deadlineMs: 100_000,
  rules
} satisfies CanarySpecInput

await t.test('(b) a canary with no user traffic waits and ends at its step deadline: rolled back, never judged', async (t) => {
  const t0 = Date.now()
  // The kubelet's probes on every order-service instance, every 200 ms.
  let probing = true
  const probes = (async () => {
    while (probing) {
      await Promise.all([...apps].filter((a) => a.name === 'order-service').flatMap((a) => ['/health', '/ready'].map(async (path) => {
        const res = await request(`${a.url}${path}`).catch(() => undefined)
        await res?.body.dump()
      })))
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  })()
  t.teardown(async () => { probing = false; await probes })
  // 2 s / 25 ms: 80 scrapes of each instance an interval (the defaults: 60 s / 1 s), 240 of v2's.
  const c = await CanaryController.start({ ...spec, intervalMs: 2000, minRequests: 100, maxWaitMs: 6000 }, { nacos: admin, tickMs: 25 })
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'rolled-back', story(end.history))
  t.notOk(end.history.some((e) => e.event === 'check'), 'never judged')
  t.same(end.lane?.services.map((s) => s.service), ['order-service'], 'the lane found in Nacos: order-service')
  const waits = end.history.filter((e) => e.event === 'wait')
  t.ok(waits.length >= 2, `waiting at each of its ${waits.length} checks`)
  t.ok(waits.every((e) => /waiting: (inconclusive: )?0 of 100 candidate requests in the window/.test(e.message)), 'not one scrape or probe counted as the candidate\'s traffic')
  t.match(end.history.find((e) => e.event === 'deadline')?.message, /step 1 waited \d+ ms for 100 candidate requests/)
  t.equal(end.step, 0, 'never past the first step')
  // A real Nacos serves a config read from its dump cache, which can trail a publish for a moment.
  let weight = -1
  await until('the rolled-back RuleSet readable from Nacos', async () => {
    const doc = await readRules(admin, { rules })
    weight = candidateWeight(doc, 'v2')
    return doc.version >= end.ruleVersion!
  }, 15_000)
  t.equal(weight, 0, 'no route to v2 remains')
  t.comment(`no-traffic canary: rolled back at its step deadline after ${Date.now() - t0} ms, ${waits.length} waiting checks`)
})

await t.test('(a) a crash-looping candidate under load: rolled back, never promoted', async (t) => {
  const t0 = Date.now()
  // One v2 left, exiting in the middle of every 20th request, started again on its address.
  await Promise.all(v2s.slice(1).map(stop))
  const [first] = v2s
  const port = first!.port
  await stop(first!)
  let restarts = 0
  const supervise = (app: AppProcess): void => {
    app.child.once('exit', () => {
      apps.delete(app)
      if (!supervising || !crashLoop) return
      restarts++
      start('order-service', 'v2', { CRASH_EVERY: '20' }, port).then((app) => {
        // the loop ended while this one was starting: it goes at once
        if (!supervising || !crashLoop) void stop(app)
        else supervise(app)
      }, (err: unknown) => t.comment(`restart failed: ${(err as Error).message}`))
    })
  }
  let crashLoop = true
  supervise(await start('order-service', 'v2', { CRASH_EVERY: '20' }, port))
  t.teardown(() => { crashLoop = false })
  await until('order-service v1 and the crash-looping v2 listed', async () => (await listed('order-service')) === 2)

  let tally = new Tally()
  const traffic = drive({ gatewayUrl: gateway.url, users: 500, testerShare: 0.02, concurrency: 3 }, () => tally)
  let trafficStopped = false
  const stopTraffic = async () => { if (!trafficStopped) { trafficStopped = true; await traffic.stop() } }
  t.teardown(stopTraffic)
  const c = await CanaryController.start({ ...spec, intervalMs: 4000, minRequests: 20 }, { nacos: admin, tickMs: 250 })
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'rolled-back', story(end.history))
  const checks = end.history.filter((e) => e.event === 'check')
  t.ok(checks.length >= 1 && checks.every((e) => (e.data as { verdict: string }).verdict === 'fail'), `no passing check (${checks.map((e) => (e.data as { verdict: string }).verdict).join(', ')})`)
  t.equal(end.step, 0, 'never past the first step')
  t.match(end.history.find((e) => e.event === 'rollback')?.message, /restarts \d+ > \d+.*the whole lane: order-service/, 'rolled back on the candidate\'s restarts')
  t.ok(restarts >= 1, `v2 crashed and was started again ${restarts} times`)
  const during = tally

  await until('the rollback applied at the gateway and order-service', async () => {
    const all = [...await admin.naming.instances('gateway'), ...await admin.naming.instances('order-service')]
    return all.every((i) => Number(i.metadata['flowtag.rules.version']) >= end.ruleVersion!)
  }, 30_000)
  crashLoop = false
  // The rollback restores the RuleSet as it was before the canary: the testers rule sends testers
  // to v2 again, as the user wrote it; users' requests stay on v1.
  await stopTraffic()
  tally = new Tally()
  const users = drive({ gatewayUrl: gateway.url, users: 500, testerShare: 0, concurrency: 3 }, () => tally)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  await users.stop()
  t.ok(tally.requests > 20, `${tally.requests} requests after the rollback`)
  t.equal(tally.share('order-service', 'v2'), 0, 'no user request reaches order-service v2')
  t.equal(tally.errors, 0, `no failed request after the rollback (${tally.lastError || 'none'})`)
  t.comment(`crash-looping canary: rolled back after ${Date.now() - t0} ms; under it ${during.errors} of ${during.requests + during.errors} requests failed; v2 restarted ${restarts} times`)
})
