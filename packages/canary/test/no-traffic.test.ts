// The controller's own scrapes (and the probes) are no lane's traffic. One v1 and three v2 real
// @flowtag/service instances registered in the Nacos dev server, probed like Kubernetes does, and
// not one user request: the real controller, scraping them every tick, must keep the step
// `waiting` and end it at its deadline as the spec says. (When its scrapes counted, every check
// read "candidate 144–165 req, errors 0.0%" and the canary went 10 → 50 → 100%.)
// The ratio of scrapes to an interval is the defaults' (intervalMs / tickMs = 60 s / 1 s) or
// more, in seconds instead of minutes.
import { NacosClient } from '@flowtag/nacos'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { waitFor } from '@flowtag/test-kit'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { CanaryController } from '../src/index.ts'
import { candidateWeight, readRules } from '../src/internals.ts'
import { startInstance, type RealInstance } from './fixtures/real.ts'

const RULES = { dataId: 'flowtag-rules.json', group: 'FLOWTAG' }
const SERVICE = 'order-service'

async function topology (t: Test, env: Record<string, string>) {
  const dev = await startNacosDevServer({ port: 0, host: '127.0.0.1', push: { delayMs: 20 } })
  t.teardown(() => dev.close())
  const nacos = new NacosClient({ serverAddr: dev.address, configPollIntervalMs: 100, namingPollIntervalMs: 100, namingProtectEmpty: false })
  t.teardown(() => nacos.close())
  await nacos.config.publish(RULES.dataId, RULES.group, JSON.stringify({
    version: 1, user: { header: 'x-user-id' }, services: { [SERVICE]: { stable: 'v1', candidates: ['v2'] } }, default: 'v1'
  }), 'json')
  const instances = await Promise.all(['v1', 'v2', 'v2', 'v2'].map((lane) => startInstance(t, dev.address, { SERVICE, LANE: lane, ...env })))
  await waitFor('four instances listed', async () => (await nacos.naming.instances(SERVICE)).length === 4 || undefined, 20_000)
  // The kubelet's probes, every 100 ms on every instance, for as long as the test runs.
  let probing = true
  const probes = (async () => {
    while (probing) {
      await Promise.all(instances.flatMap((i: RealInstance) => ['/health', '/ready'].map(async (path) => {
        const res = await request(`http://${i.address}${path}`).catch(() => undefined)
        await res?.body.dump()
      })))
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })()
  t.teardown(async () => { probing = false; await probes })
  return { nacos, instances }
}

const spec = {
  service: SERVICE,
  candidate: 'v2',
  stable: 'v1',
  steps: [10, 50, 100],
  intervalMs: 3000,
  minRequests: 50,
  maxWaitMs: 7000,
  convergenceTimeoutMs: 15_000,
  deadlineMs: 120_000
}

async function noTraffic (t: Test, env: Record<string, string>, scraped: string): Promise<void> {
  const { nacos, instances } = await topology(t, env)
  const c = await CanaryController.start(spec, { nacos, tickMs: 30 })
  t.teardown(() => c.close())
  const end = await c.done
  const story = end.history.map((e) => `${e.event}: ${e.message}`).join('\n')
  t.equal(end.phase, 'rolled-back', story)
  t.notOk(end.history.some((e) => e.event === 'check'), 'never judged: no check passed or failed without user traffic')
  const waits = end.history.filter((e) => e.event === 'wait')
  t.ok(waits.length >= 2, `explicitly waiting (${waits.length} checks)`)
  for (const w of waits) t.match(w.message, /waiting: (inconclusive: )?0 of 50 candidate requests in the window/, 'not one request counted')
  t.match(end.history.find((e) => e.event === 'deadline')?.message, /step 1 waited \d+ ms for 50 candidate requests/)
  t.equal(candidateWeight(await readRules(nacos, { rules: RULES }), 'v2'), 0, 'no route to v2 remains')
  // The instances did serve the controller's scrapes: scraping them here shows it.
  const text = await (await request(`http://${instances[1]!.address}/metrics`)).body.text()
  if (scraped === 'recorded') t.match(text, /http_route="\/metrics"/, 'the preset recorded the scrapes (it was not told about /metrics): the controller left them out')
  else t.notMatch(text, /http_route="\/(metrics|health|ready)"/, 'the preset recorded no scrape and no probe')
}

t.test('no user traffic: the step waits and ends at its deadline, scrapes and probes uncounted', async (t) => {
  await noTraffic(t, {}, 'not recorded')
})

t.test('scrapes an app records as requests are still not the lane\'s traffic for the controller', async (t) => {
  await noTraffic(t, { TRACK_METRICS: '1' }, 'recorded')
})
