import { metrics, type Meter } from '@opentelemetry/api'
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import type { FastifyInstance } from 'fastify'
// request.flow (the lane each request is counted under) comes from the flowtag plugin
import type {} from '@flowtag/service/fastify'
import { METRICS_PATH } from './paths.ts'

/**
 * OpenTelemetry metrics exported as Prometheus text at /metrics. The provider is registered
 * globally, so the flowtag packages' own instruments (outbound, tagging) land here too.
 */
export function setupMetrics (app: FastifyInstance, labels: { service: string; version: string }): Meter {
  const exporter = new PrometheusExporter({ preventServerStart: true })
  const provider = new MeterProvider({ readers: [exporter] })
  metrics.setGlobalMeterProvider(provider)
  const serializer = new PrometheusSerializer()
  const meter = provider.getMeter('flowtag-demo')
  const requests = meter.createCounter('flowtag_demo_requests', { description: 'requests served, by lane of the request and version of this instance' })
  const duration = meter.createHistogram('flowtag_demo_request_duration', { unit: 'ms', description: 'time to serve a request' })

  app.addHook('onResponse', async (request, reply) => {
    if (request.routeOptions.url === METRICS_PATH) return
    const attrs = {
      service: labels.service,
      version: labels.version,
      lane: request.flow?.tag ?? 'none',
      route: request.routeOptions.url ?? 'unknown',
      status: String(reply.statusCode)
    }
    requests.add(1, attrs)
    duration.record(reply.elapsedTime, attrs)
  })

  app.get(METRICS_PATH, async (_request, reply) => {
    const { resourceMetrics } = await exporter.collect()
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(serializer.serialize(resourceMetrics))
  })

  app.addHook('onClose', async () => {
    await provider.shutdown()
    metrics.disable()
  })
  return meter
}
