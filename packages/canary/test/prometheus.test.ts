// PrometheusSource against a real Prometheus (Debian's, installed by scripts/setup.sh) scraping
// real @flowtag/service instances every second: a v1 and a v2 that fails a quarter of its
// requests, registered in the Nacos dev server. The source's figures must equal what scraping
// the instances directly gives, and a controller reading through it rolls the failing v2 back.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { NacosClient } from '@flowtag/nacos'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { freePort, startNode, waitFor, type Teardown } from '@flowtag/test-kit'
import { spawn } from 'node:child_process'
import t from 'tap'
import { request } from 'undici'
import { CanaryController, candidateWeight, figuresFromText, laneWindow, PrometheusSource, readRules, summarize, type Figures, type Reading } from '../src/index.ts'
import type { RuleSet } from '@flowtag/rules'

const RULES = { dataId: 'flowtag-rules.json', group: 'FLOWTAG' }
const SERVICE = 'order-service'
const instanceScript = new URL('./fixtures/service-instance.ts', import.meta.url).pathname

async function startInstance (t: Teardown, nacosAddr: string, lane: string, failShare: number): Promise<string> {
  const child = startNode(t, instanceScript, { env: { NACOS_ADDR: nacosAddr, SERVICE, LANE: lane, FAIL_SHARE: String(failShare) } })
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { process.stderr.write(`[${lane}] ${d}`) })
  const lines = createInterface({ input: child.stdout! })
  for await (const line of lines) {
    const m = /^listening (\d+)$/.exec(line)
    if (m !== null) return `127.0.0.1:${m[1]}`
  }
  throw new Error(`the ${lane} instance exited before listening`)
}

/** Debian's prometheus on a free loopback port, scraping `targets` every second. */
async function startPrometheus (t: Teardown, targets: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'flowtag-prom-'))
  const port = await freePort()
  await writeFile(join(dir, 'prometheus.yml'), [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    'scrape_configs:',
    `  - job_name: ${SERVICE}`,
    '    static_configs:',
    `      - targets: [${targets.map((x) => `'${x}'`).join(', ')}]`
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
  const [v1, v2] = await Promise.all([startInstance(t, dev.address, 'v1', 0), startInstance(t, dev.address, 'v2', 0.25)])
  const url = await startPrometheus(t, [v1, v2])

  await t.test('its figures are the instances\' own, per lane and instance', async (t) => {
    // Prometheus's own scrapes of /metrics are requests too: select the app's route.
    const source = new PrometheusSource({ url, matchers: 'http_route="/work"' })
    await Promise.all([hit(v1, 40), hit(v2, 40)])
    const direct = new Map<string, Figures>()
    for (const target of [v1, v2]) {
      const text = await request(`http://${target}/metrics`).then((r) => r.body.text())
      direct.set(target, figuresFromText(text.split('\n').filter((l) => l.includes('http_route="/work"')).join('\n')))
    }
    let reading: Reading | undefined
    await waitFor('Prometheus to have scraped 40 requests a lane', async () => {
      reading = await source.read(SERVICE)
      return laneOf(reading, 'v1').requests === 40 && laneOf(reading, 'v2').requests === 40
    }, 15_000)
    const r = reading!
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
    }
    const q = new PrometheusSource({ url }).queries(SERVICE)
    t.match(q.count, /sum by \(instance, flowtag_version, http_response_status_code, error_type\)/)
    t.match(q.bucket, /job="order-service"/)
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
})

t.test('options are validated', async (t) => {
  t.throws(() => new PrometheusSource({ url: 'ftp://x' }), { code: 'FLOWTAG_CANARY_BAD_OPTION', message: /invalid option "url"/ })
  t.throws(() => new PrometheusSource({ url: 'http://x', matchers: 'job=orders' }), { code: 'FLOWTAG_CANARY_BAD_OPTION', message: /invalid option "matchers"/ })
  t.throws(() => new PrometheusSource({ url: 'http://x', laneLabel: 'flowtag.version' }), { code: 'FLOWTAG_CANARY_BAD_OPTION', message: /invalid option "laneLabel"/ })
  t.throws(() => new PrometheusSource({ url: 'http://x', timeoutMs: 0 }), { code: 'FLOWTAG_CANARY_BAD_OPTION', message: /invalid option "timeoutMs"/ })
  await t.rejects(CanaryController.start({ service: 's', candidate: 'v2', stable: 'v1', prometheus: { url: 'nope' } }, { nacos: {} as never }), { code: 'FLOWTAG_CANARY_BAD_OPTION', message: /"prometheus.url"/ })
  const q = new PrometheusSource({ url: 'http://x/prom/', serviceLabel: '', matchers: 'ns="a"' }).queries('svc')
  t.equal(q.sum, 'sum by (instance, flowtag_version) ({__name__=~"http_server_request_duration(?:_seconds)?_sum", ns="a"})', 'no service label, the extra matchers')
})
