// The preset's own Prometheus endpoint (`metrics: { serve: true }`): a private OpenTelemetry
// MeterProvider whose instruments are the preset's (requests by lane) and its dispatcher's (calls
// by service and lane), read on each scrape. What a canary controller reads, without the app
// wiring an SDK; an app that has its own SDK leaves `serve` off and gets the same instruments
// through the global MeterProvider.
import type { Meter } from '@opentelemetry/api'
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { MeterProvider } from '@opentelemetry/sdk-metrics'

/** Prometheus's text exposition format, as the exporter writes it. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

export class PrometheusEndpoint {
  readonly meter: Meter
  readonly #exporter = new PrometheusExporter({ preventServerStart: true })
  readonly #provider: MeterProvider
  readonly #serializer = new PrometheusSerializer()

  /**
   * `service` and `version` become the resource's `service.name` and `service.version` (the
   * exporter's `target_info`), so a scrape says whose figures they are rather than the SDK's
   * `unknown_service:node`.
   */
  constructor (service: string, version?: string) {
    const resource = resourceFromAttributes(version === undefined ? { 'service.name': service } : { 'service.name': service, 'service.version': version })
    this.#provider = new MeterProvider({ readers: [this.#exporter], resource })
    this.meter = this.#provider.getMeter('@flowtag/service')
  }

  /** The current figures as Prometheus text. */
  async text (): Promise<string> {
    const { resourceMetrics } = await this.#exporter.collect()
    return this.#serializer.serialize(resourceMetrics)
  }

  async close (): Promise<void> {
    await this.#provider.shutdown()
  }
}
