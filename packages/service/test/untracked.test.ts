// Probes and scrapes are not lane traffic: requests to /health, /ready, the metrics route and the
// routes the user names are never recorded in http.server.request.duration, on Fastify and
// Express, over real loopback requests. A canary controller reads that histogram per lane: a
// scrape counted there made a candidate without users look like it served 150 requests.
import { metrics } from '@opentelemetry/api'
import { MeterProvider, MetricReader, type HistogramMetricData } from '@opentelemetry/sdk-metrics'
import { listenOnLoopback } from '@flowtag/test-kit'
import express from 'express'
import Fastify from 'fastify'
import { createServer } from 'node:http'
import t from 'tap'
import { flowTagService } from '../src/express.ts'
import { fastifyFlowTagService } from '../src/fastify.ts'
import { testerRules } from './fixtures/nacos.ts'

class TestReader extends MetricReader {
  protected async onForceFlush (): Promise<void> {}
  protected async onShutdown (): Promise<void> {}
}

function meterProvider (t: { teardown (fn: () => unknown): void }): TestReader {
  const reader = new TestReader()
  const provider = new MeterProvider({ readers: [reader] })
  metrics.setGlobalMeterProvider(provider)
  t.teardown(async () => { await provider.shutdown(); metrics.disable() })
  return reader
}

/** Recorded requests by route (`(none)` when no route matched). */
async function byRoute (reader: TestReader): Promise<Record<string, number>> {
  const { resourceMetrics } = await reader.collect()
  const duration = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === 'http.server.request.duration') as HistogramMetricData | undefined
  const out: Record<string, number> = {}
  for (const p of duration?.dataPoints ?? []) {
    const route = String(p.attributes['http.route'] ?? '(none)')
    out[route] = (out[route] ?? 0) + p.value.count
  }
  return out
}

async function startTime (reader: TestReader): Promise<{ value: number, attributes: Record<string, unknown> } | undefined> {
  const { resourceMetrics } = await reader.collect()
  const gauge = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === 'flowtag.process.start_time')
  const p = gauge?.dataPoints[0]
  return p === undefined ? undefined : { value: p.value as number, attributes: p.attributes }
}

/** The same traffic for both frameworks: scrapes and probes, user requests, an unknown path. */
async function traffic (base: string, metricsPath: string): Promise<void> {
  const get = async (path: string, method = 'GET') => { await (await fetch(`${base}${path}`, { method, headers: { 'x-flow-tag': 'v2' } })).arrayBuffer() }
  for (let i = 0; i < 5; i++) await get(metricsPath)
  for (let i = 0; i < 3; i++) await get('/health')
  for (let i = 0; i < 3; i++) await get('/ready')
  await get('/health', 'POST') // not a probe's method; still not traffic
  for (let i = 0; i < 2; i++) await get('/internal/7')
  for (let i = 0; i < 4; i++) await get('/work')
  await get('/nope')
}

t.test('Fastify: probes, the metrics route and named routes are not recorded; user requests are', async (t) => {
  const reader = meterProvider(t)
  const app = Fastify()
  await app.register(fastifyFlowTagService, { service: 'untracked', version: 'v2', nacos: { serverAddr: '127.0.0.1:1' }, rules: testerRules, registration: false, metrics: { excludeRoutes: ['/internal/:id'] } })
  app.get('/metrics', async () => 'text')
  app.get('/internal/:id', async () => ({ internal: true }))
  app.get('/work', async () => ({ ok: true }))
  app.post('/health', async () => ({ posted: true }))
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  await traffic(base, '/metrics')
  t.same(await byRoute(reader), { '/work': 4, '(none)': 1 }, 'only /work and the unknown path: no scrape, probe or named route')
  const started = await startTime(reader)
  t.ok(started !== undefined && Math.abs(started.value - performance.timeOrigin / 1000) < 1e-3, 'flowtag.process.start_time: this process\'s start, in seconds')
  t.match(started?.attributes, { 'flowtag.version': 'v2', 'service.name': 'untracked' })
  t.equal((await startTime(reader))?.value, started?.value, 'the same at every collection')
})

t.test('Fastify: metrics.path names another metrics route; the probes stay untracked', async (t) => {
  const reader = meterProvider(t)
  const app = Fastify()
  await app.register(fastifyFlowTagService, { service: 'untracked', version: 'v2', nacos: { serverAddr: '127.0.0.1:1' }, rules: testerRules, registration: false, metrics: { path: '/prom' } })
  app.get('/prom', async () => 'text')
  app.get('/metrics', async () => 'an app route of that name')
  app.get('/internal/:id', async () => ({ internal: true }))
  app.get('/work', async () => ({ ok: true }))
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  await traffic(base, '/prom')
  await (await fetch(`${base}/metrics`)).arrayBuffer()
  t.same(await byRoute(reader), { '/work': 4, '/internal/:id': 2, '/metrics': 1, '(none)': 1 }, 'the unknown path is counted; /prom and the probes (POST /health too) are not')
})

t.test('Express: probes, the metrics route and named routes are not recorded; user requests are', async (t) => {
  const reader = meterProvider(t)
  const ft = flowTagService({ service: 'untracked', version: 'v2', nacos: { serverAddr: '127.0.0.1:1' }, rules: testerRules, registration: false, signals: false, metrics: { excludeRoutes: ['/internal/:id'] } })
  t.teardown(() => ft.close())
  const app = express()
  app.use(ft)
  app.get('/metrics', (_req, res) => { res.type('text/plain').send('text') })
  app.get('/internal/:id', (_req, res) => { res.json({ internal: true }) })
  app.get('/work', (_req, res) => { res.json({ ok: true }) })
  app.post('/health', (_req, res) => { res.json({ posted: true }) })
  const server = createServer(app)
  ft.attach(server)
  const port = await listenOnLoopback(server)
  await traffic(`http://127.0.0.1:${port}`, '/metrics')
  // Express records at the response's close: wait for the last one.
  let seen: Record<string, number> = {}
  for (let i = 0; i < 50 && (seen['/work'] ?? 0) + (seen['(none)'] ?? 0) < 5; i++) {
    seen = await byRoute(reader)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.same(seen, { '/work': 4, '(none)': 1 }, 'only /work and the unknown path')
  t.match((await startTime(reader))?.attributes, { 'flowtag.version': 'v2' })
})

t.test('metrics options are validated', async (t) => {
  t.throws(() => flowTagService({ service: 's', nacos: { serverAddr: '127.0.0.1:1' }, registration: false, metrics: { excludeRoutes: ['internal'] } }), { code: 'FLOWTAG_SERVICE_BAD_OPTION', message: /metrics/ })
  t.throws(() => flowTagService({ service: 's', nacos: { serverAddr: '127.0.0.1:1' }, registration: false, metrics: { path: 'metrics' } as never }), { code: 'FLOWTAG_SERVICE_BAD_OPTION', message: /metrics/ })
  const off = flowTagService({ service: 's', nacos: { serverAddr: '127.0.0.1:1' }, registration: false, signals: false, metrics: false })
  t.equal(off.service.metrics, undefined)
  await off.close()
})
