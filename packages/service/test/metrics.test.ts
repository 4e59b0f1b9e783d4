// Per-lane server metrics and the rule version reported in Nacos instance metadata.
import { metrics } from '@opentelemetry/api'
import { MeterProvider, MetricReader, type HistogramMetricData } from '@opentelemetry/sdk-metrics'
import { NacosClient } from '@flowtag/nacos'
import Fastify from 'fastify'
import t from 'tap'
import { fastifyFlowTagService } from '../src/fastify.ts'
import { RULES_VERSION_METADATA } from '../src/index.ts'
import { waitFor } from '@flowtag/test-kit'
import { fastClient, startDev, testerRules } from './fixtures/nacos.ts'

class TestReader extends MetricReader {
  protected async onForceFlush (): Promise<void> {}
  protected async onShutdown (): Promise<void> {}
}

t.test('http.server.request.duration in seconds by lane and status; the rule version in metadata follows the rules', async (t) => {
  const reader = new TestReader()
  const provider = new MeterProvider({ readers: [reader] })
  metrics.setGlobalMeterProvider(provider)
  t.teardown(async () => { await provider.shutdown(); metrics.disable() })

  const dev = await startDev()
  t.teardown(() => dev.close())
  const admin = new NacosClient({ serverAddr: dev.address, namingProtectEmpty: false })
  t.teardown(() => admin.close())
  const RULES = { dataId: 'rules.json', group: 'FLOWTAG' }
  await admin.config.publish(RULES.dataId, RULES.group, JSON.stringify(testerRules), 'json')

  const app = Fastify()
  await app.register(fastifyFlowTagService, { service: 'user-service', version: 'v2', nacos: { serverAddr: dev.address, ...fastClient }, rules: RULES })
  app.get('/ok', async () => ({ ok: true }))
  app.get('/fail', async (_request, reply) => reply.code(503).send({ failed: true }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())

  const metadata = async () => (await admin.naming.instances('user-service'))[0]?.metadata[RULES_VERSION_METADATA]
  await waitFor('rule version 1 in metadata', async () => (await metadata()) === '1')

  for (let i = 0; i < 3; i++) await app.inject({ url: '/ok', headers: { 'x-flow-tag': 'v2' } })
  await app.inject({ url: '/fail', headers: { 'x-flow-tag': 'v2' } })
  await app.inject({ url: '/ok' })

  const { resourceMetrics } = await reader.collect()
  const all = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics)
  const duration = all.find((m) => m.descriptor.name === 'http.server.request.duration') as HistogramMetricData | undefined
  t.ok(duration, 'the histogram exists')
  t.equal(duration!.descriptor.unit, 's')
  const count = (pred: (a: Record<string, unknown>) => boolean) => duration!.dataPoints.filter((p) => pred(p.attributes)).reduce((n, p) => n + p.value.count, 0)
  t.equal(count((a) => a['flowtag.lane'] === 'v2' && a['http.response.status_code'] === 200 && a['http.route'] === '/ok'), 3)
  t.equal(count((a) => a['flowtag.lane'] === 'v2' && a['error.type'] === '503'), 1, '5xx carries error.type')
  t.equal(count((a) => a['flowtag.lane'] !== 'v2'), 1, 'an untagged request counts under its own lane')
  t.ok(duration!.dataPoints.every((p) => (p.value.max ?? 0) < 1), 'recorded in seconds')
  const gauge = all.find((m) => m.descriptor.name === 'flowtag.rules.version')
  t.equal(gauge?.dataPoints[0]?.value, 1)

  await admin.config.publish(RULES.dataId, RULES.group, JSON.stringify({ ...testerRules, version: 7 }), 'json')
  await waitFor('rule version 7 in metadata', async () => (await metadata()) === '7')
  t.equal((await admin.naming.instances('user-service'))[0]?.metadata.version, 'v2', 'the lane label stays')
})

t.test('a request the client abandons before the answer counts as aborted, apart from 5xx', async (t) => {
  const reader = new TestReader()
  const provider = new MeterProvider({ readers: [reader] })
  metrics.setGlobalMeterProvider(provider)
  t.teardown(async () => { await provider.shutdown(); metrics.disable() })
  const dev = await startDev()
  t.teardown(() => dev.close())

  const app = Fastify()
  await app.register(fastifyFlowTagService, { service: 'slow-service', version: 'v2', nacos: { serverAddr: dev.address, ...fastClient }, registration: false })
  let arrived = false
  let release: () => void = () => {}
  app.get('/slow', async () => {
    arrived = true
    await new Promise<void>((resolve) => { release = resolve })
    return { late: true }
  })
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => { release(); return app.close() })

  const ac = new AbortController()
  const call = fetch(`${address}/slow`, { headers: { 'x-flow-tag': 'v2' }, signal: ac.signal })
  await waitFor('the request to reach the handler', () => arrived)
  ac.abort()
  await t.rejects(call)

  const aborted = async () => {
    const { resourceMetrics } = await reader.collect()
    return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).flatMap((m) => m.dataPoints.map((p) => ({ name: m.descriptor.name, attributes: p.attributes })))
      .find((p) => p.attributes['error.type'] === 'aborted')
  }
  const point = await waitFor('an aborted request in the metrics', aborted, 5000)
  t.match(point.attributes, { 'flowtag.lane': 'v2', 'http.request.method': 'GET', 'http.route': '/slow' })
  t.notOk('http.response.status_code' in point.attributes, 'no status: it was never answered')
  release()
})
