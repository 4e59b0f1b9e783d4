// PrometheusSource against a real Prometheus (Debian's, installed by scripts/setup.sh) scraping
// real @flowtag/service instances every second: a v1 and a v2 that fails a quarter of its
// requests, registered in the Nacos dev server, and an edge calling them. The instances record
// Prometheus's scrapes as requests (TRACK_METRICS: as an app whose metrics route the preset does
// not know would). The source's figures must equal what scraping the instances' own routes gives
// (the scrapes left out), with each process's start time and whether Prometheus could scrape it;
// the edge's calls come through as the callers'; a controller reading through it rolls the failing
// v2 back.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NacosClient } from '@flowtag/nacos'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { freePort, waitFor, type Teardown } from '@flowtag/test-kit'
import { spawn } from 'node:child_process'
import t from 'tap'
import { request } from 'undici'
import { CanaryController, PrometheusSource, type Figures, type Reading } from '../src/index.ts'
import { candidateWeight, figuresFromText, laneWindow, readRules, summarize } from '../src/internals.ts'
import { startTimeFromText } from '../src/scrape.ts'
import type { RuleSet } from '@flowtag/rules'
import { startInstance as startReal } from './fixtures/real.ts'
import { messageText, promText } from './fixtures/instances.ts'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'

const RULES = { dataId: 'flowtag-rules.json', group: 'FLOWTAG' }
const SERVICE = 'order-service'
/** Debian's prometheus on a free loopback port, scraping each job's targets every second. */
async function startPrometheus (t: Teardown, jobs: Record<string, string[]>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'flowtag-prom-'))
  const port = await freePort()
  await writeFile(join(dir, 'prometheus.yml'), [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    'scrape_configs:',
    ...Object.entries(jobs).flatMap(([job, targets]) => [
      `  - job_name: ${job}`,
      '    static_configs:',
      `      - targets: [${targets.map((x) => `'${x}'`).join(', ')}]`
    ])
  ].join('\n') + '\n')
  const child = spawn('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'
  ], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await gone
    }
    await rm(dir, { recursive: true, force: true })
  })
  const url = `http://127.0.0.1:${port}`
  await waitFor('prometheus ready', async () => {
    if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}: ${stderr}`)
    const res = await request(`${url}/-/ready`).catch(() => undefined)
    await res?.body.dump()
    return res?.statusCode === 200
  }, 20_000)
  return url
}

async function hit (target: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await request(`http://${target}/work`)
    await res.body.dump()
  }
}

const laneOf = (r: Reading, lane: string) => summarize(laneWindow(r, undefined).get(lane) ?? { requests: 0, serverErrors: 0, networkErrors: 0, seconds: 0, buckets: [] })

t.test('a real Prometheus scraping real instances', async (t) => {
  const dev = await startNacosDevServer({ port: 0, host: '127.0.0.1', push: { delayMs: 20 } })
  t.teardown(() => dev.close())
  const nacos = new NacosClient({ serverAddr: dev.address, configPollIntervalMs: 100, namingPollIntervalMs: 100, namingProtectEmpty: false })
  t.teardown(() => nacos.close())
  await nacos.config.publish(RULES.dataId, RULES.group, JSON.stringify({
    version: 1, user: { header: 'x-user-id' }, services: { [SERVICE]: { stable: 'v1', candidates: ['v2'] } }, default: 'v1'
  }), 'json')
  const [v1i, v2i, edgei] = await Promise.all([
    startReal(t, dev.address, { SERVICE, LANE: 'v1', TRACK_METRICS: '1' }),
    startReal(t, dev.address, { SERVICE, LANE: 'v2', FAIL_SHARE: '0.25', TRACK_METRICS: '1' }),
    startReal(t, dev.address, { SERVICE: 'edge', LANE: 'v1', MODE: 'edge', TRACK_METRICS: '1' })
  ])
  const [v1, v2, edge] = [v1i.address, v2i.address, edgei.address]
  const url = await startPrometheus(t, { [SERVICE]: [v1, v2], edge: [edge] })

  await t.test('its figures are the instances\' own, per lane and instance, without the scrapes', async (t) => {
    // Prometheus's own scrapes of /metrics are recorded by these instances: excludeRoutes leaves them out.
    const source = new PrometheusSource({ url })
    await Promise.all([hit(v1, 40), hit(v2, 40)])
    const direct = new Map<string, Figures>()
    const started = new Map<string, number | undefined>()
    for (const target of [v1, v2]) {
      const text = await request(`http://${target}/metrics`).then((r) => r.body.text())
      direct.set(target, figuresFromText(text.split('\n').filter((l) => l.includes('http_route="/work"')).join('\n')))
      started.set(target, startTimeFromText(text))
    }
    let reading: Reading | undefined
    await waitFor('Prometheus to have scraped 40 requests a lane', async () => {
      reading = await source.read(SERVICE)
      return laneOf(reading, 'v1').requests === 40 && laneOf(reading, 'v2').requests === 40
    }, 15_000)
    const r = reading!
    for (const target of [v1, v2]) t.match(await request(`http://${target}/metrics`).then((r) => r.body.text()), /http_route="\/metrics"/, `${target} recorded Prometheus's scrapes`)
    t.same([...r.instances.keys()].sort(), [v1, v2].sort(), 'one instance per target, keyed by the instance label')
    t.equal(r.instances.get(v2)?.lane, 'v2', 'the lane is the serving instance\'s (flowtag_version)')
    const c = laneOf(r, 'v2')
    t.equal(c.serverErrorRate, 0.25, '10 of the candidate\'s 40 requests failed')
    t.equal(laneOf(r, 'v1').errorRate, 0)
    for (const key of [v1, v2]) {
      const viaProm = r.instances.get(key)!.figures!
      const own = direct.get(key)!
      t.same({ ...viaProm, seconds: 0 }, { ...own, seconds: 0 }, `${key}: counts and buckets equal the instance's own /metrics`)
      t.ok(Math.abs(viaProm.seconds - own.seconds) < 1e-6, `${key}: the same sum of durations`)
      const startTime = r.instances.get(key)!.startTime
      t.ok(started.get(key) !== undefined && startTime !== undefined && Math.abs(startTime - started.get(key)!) < 1e-3, `${key}: its process start time (${startTime} through Prometheus, ${started.get(key)} its own)`)
    }
    const q = new PrometheusSource({ url }).queries(SERVICE)
    t.match(q.count, /sum by \(__name__, instance, flowtag_version, http_response_status_code, error_type, rpc_grpc_status_code\)/)
    t.match(q.bucket, /job="order-service"/)
  })

  await t.test('the callers\' calls to the service, by called lane', async (t) => {
    const source = new PrometheusSource({ url })
    for (let i = 0; i < 30; i++) await (await request(`http://${edge}/call`, { method: 'POST' })).body.dump()
    const q = source.queries(SERVICE, { callers: ['edge'] })
    t.match(q.callerErrors, /sum by \(instance, job, lane, error_type\) \(\{__name__=~"flowtag_outbound_errors\(\?:_total\)\?", service="order-service", job=~"edge"\}\)/)
    const reading = await waitFor('Prometheus to have scraped the edge\'s 30 calls', async () => {
      const r = await source.read(SERVICE, { callers: ['edge'] })
      return r.callers?.get(edge)?.calls?.get('v1')?.requests === 30 ? r : undefined
    }, 15_000)
    t.match(reading.callers?.get(edge), { key: edge, service: 'edge' })
    t.equal(reading.callers?.get(edge)?.calls?.get('v1')?.failures, 0)
    t.notOk(reading.instances.has(edge), 'the edge is a caller, not an instance of the service')
    t.equal(source.queries(SERVICE, { callers: [] }).callerErrors, undefined, 'no callers: not asked')
    t.match(new PrometheusSource({ url, serviceLabel: 'service' }).queries(SERVICE).callerRequests, /exported_service="order-service"/, 'the outbound label renamed by a target label of that name')
  })

  await t.test('extra matchers select; Prometheus errors and outages are coded errors', async (t) => {
    const none = await new PrometheusSource({ url, matchers: 'job="not-this-one"' }).read(SERVICE)
    t.equal(none.instances.size, 0, 'a matcher that selects nothing: no instance')
    const v2Only = await new PrometheusSource({ url, matchers: `instance="${v2}",` }).read(SERVICE)
    t.same([...v2Only.instances.keys()], [v2])
    await t.rejects(new PrometheusSource({ url, matchers: 'job=~"("' }).read(SERVICE), {
      code: 'FLOWTAG_CANARY_METRICS_UNAVAILABLE', message: /answered HTTP 400, bad_data/
    }, 'a query Prometheus refuses')
    const dead = `http://127.0.0.1:${await freePort()}`
    await t.rejects(new PrometheusSource({ url: dead, timeoutMs: 1000 }).read(SERVICE), {
      code: 'FLOWTAG_CANARY_METRICS_UNAVAILABLE', message: /cannot be reached/
    }, 'Prometheus down')
    await t.rejects(new PrometheusSource({ url: `${v1}/not-prometheus`.replace(/^/, 'http://') }).read(SERVICE), {
      code: 'FLOWTAG_CANARY_METRICS_UNAVAILABLE', message: /answered HTTP 404 without a query result/
    }, 'not a Prometheus')
  })

  await t.test('a controller reading through Prometheus rolls the failing candidate back', async (t) => {
    let weight = 0
    const stopWatch = nacos.config.listen(RULES.dataId, RULES.group, (raw) => {
      if (raw !== undefined) weight = candidateWeight(JSON.parse(raw) as RuleSet, 'v2')
    })
    t.teardown(stopWatch)
    let running = true
    const traffic = (async () => {
      while (running) {
        const toV2 = Math.round((10 * weight) / 100)
        await Promise.all([hit(v2, toV2), hit(v1, 10 - toV2), new Promise((resolve) => setTimeout(resolve, 50))])
      }
    })()
    t.teardown(async () => { running = false; await traffic })
    const c = await CanaryController.start({
      service: SERVICE,
      candidate: 'v2',
      stable: 'v1',
      steps: [30, 100],
      intervalMs: 2500,
      minRequests: 20,
      judge: 'threshold', // the two failed checks below are the threshold judge's pause, then rollback
      convergenceTimeoutMs: 10_000,
      deadlineMs: 60_000,
      prometheus: { url }
    }, { nacos, tickMs: 200 })
    t.teardown(() => c.close())
    const end = await c.done
    t.equal(end.phase, 'rolled-back')
    const checks = end.history.filter((e) => e.event === 'check')
    t.same(checks.map((e) => (e.data as { verdict: string }).verdict), ['fail', 'fail'], 'two failed checks, none passed')
    t.match(checks[0]?.data, { breaches: [{ check: 'serverErrorRate' }], candidate: { requests: Number } })
    const rate = (checks[0]?.data as { candidate: { serverErrorRate: number } }).candidate.serverErrorRate
    t.ok(rate > 0.15 && rate < 0.35, `the candidate's 5xx share through Prometheus: ${rate}`)
    t.equal(candidateWeight(await readRules(nacos, { rules: RULES }), 'v2'), 0, 'no route to v2 remains')
  })

  await t.test('a spec naming a Prometheus that is down: never judged, paused at the convergence timeout', async (t) => {
    const dead = `http://127.0.0.1:${await freePort()}`
    const c = await CanaryController.start({
      service: SERVICE,
      candidate: 'v2',
      stable: 'v1',
      steps: [30, 100],
      intervalMs: 500,
      minRequests: 1,
      convergenceTimeoutMs: 1500,
      deadlineMs: 60_000,
      prometheus: { url: dead }
    }, { nacos, tickMs: 100, prometheusAuthorization: 'Bearer x' })
    t.teardown(() => c.close())
    await waitFor('paused', () => c.state.phase === 'paused')
    t.equal(c.state.pausedBy, 'convergence')
    t.match(c.state.history.at(-1)?.message, /converged, but no metrics to start the step's window from \(@flowtag\/canary: Prometheus at .* cannot be reached/)
    t.notOk(c.state.history.some((e) => e.event === 'check' || e.event === 'converged'), 'nothing judged')
    await c.command('abort', 'test')
    t.equal((await c.done).phase, 'aborted')
  })

  await t.test('an instance Prometheus can no longer scrape is read as not read (up 0), not left out', async (t) => {
    const source = new PrometheusSource({ url })
    // The lane of an instance Prometheus no longer scrapes is the one this source last saw it in:
    // read once while it is up (a first read after the kill raced Prometheus's next scrape).
    t.equal((await source.read(SERVICE)).instances.get(v2)?.lane, 'v2')
    await v2i.kill()
    const reading = await waitFor('Prometheus to fail a scrape of v2', async () => {
      const r = await source.read(SERVICE)
      return r.instances.get(v2)?.figures === undefined ? r : undefined
    }, 15_000)
    t.match(reading.instances.get(v2), { lane: 'v2', error: /Prometheus's last scrape of it failed \(up 0\)/ })
    t.ok(reading.instances.get(v1)?.figures !== undefined, 'v1 is read as before')
  })
})

t.test('a message consumer\'s figures through Prometheus: processed messages and failed ones, with its HTTP requests', async (t) => {
  // One instance serving both histograms (bounds of their own): the figures equal its own text's.
  const text = promText({ ok: 10, failed: 2, seconds: 0.02 }) + messageText({ ok: 30, failed: 10, seconds: 0.3 })
  const server = createServer((req, res) => { res.end(req.url === '/metrics' ? text : '') })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const target = `127.0.0.1:${(server.address() as AddressInfo).port}`
  const url = await startPrometheus(t, { 'notify-consumer': [target] })
  const source = new PrometheusSource({ url })
  let reading: Reading | undefined
  await waitFor('Prometheus to have scraped the consumer', async () => {
    reading = await source.read('notify-consumer')
    return (reading.instances.get(target)?.figures?.requests ?? 0) > 0
  }, 15_000)
  const f = reading!.instances.get(target)!.figures!
  t.same({ ...f, seconds: 0 }, { ...figuresFromText(text), seconds: 0 }, 'the same counts and merged buckets as its own /metrics')
  t.match(f, { requests: 52, serverErrors: 12 })
  t.equal(reading!.instances.get(target)?.lane, 'v2')
})

t.test('options are validated', async (t) => {
  t.throws(() => new PrometheusSource({ url: 'ftp://x' }), { code: 'FLOWTAG_CANARY_BAD_OPTION', message: /invalid option "url"/ })
  t.throws(() => new PrometheusSource({ url: 'http://x', matchers: 'job=orders' }), { code: 'FLOWTAG_CANARY_BAD_OPTION', message: /invalid option "matchers"/ })
  t.throws(() => new PrometheusSource({ url: 'http://x', laneLabel: 'flowtag.version' }), { code: 'FLOWTAG_CANARY_BAD_OPTION', message: /invalid option "laneLabel"/ })
  t.throws(() => new PrometheusSource({ url: 'http://x', timeoutMs: 0 }), { code: 'FLOWTAG_CANARY_BAD_OPTION', message: /invalid option "timeoutMs"/ })
  await t.rejects(CanaryController.start({ service: 's', candidate: 'v2', stable: 'v1', prometheus: { url: 'nope' } }, { nacos: {} as never }), { code: 'FLOWTAG_CANARY_BAD_OPTION', message: /"prometheus.url"/ })
  const q = new PrometheusSource({ url: 'http://x/prom/', serviceLabel: '', matchers: 'ns="a"' }).queries('svc')
  t.equal(q.sum, 'sum by (__name__, instance, flowtag_version) ({__name__=~"(?:http_server_request|messaging_process|rpc_server_call)_duration(?:_seconds)?_sum", ns="a", http_route!~"/metrics|/health|/ready"})', 'no service label, the extra matchers, the scrapes and probes left out')
})
