// Instruments through @opentelemetry/api: no-ops until the app installs a MeterProvider.
import { metrics, type Attributes, type Counter, type Histogram, type Meter } from '@opentelemetry/api'

export interface OutboundMetrics {
  /** Finished requests (one per logical request, whatever the retries), by service, lane, instance. */
  requests: Counter
  /** Failed requests: routing errors and transport errors, with `error.type` = the error code. */
  errors: Counter
  /** Extra attempts after connection-level failures. */
  retries: Counter
  /** Instances ejected by outlier detection, by service, lane, instance. */
  ejections: Counter
  /** Time from dispatch to the end of the response body (or the error), in ms. */
  duration: Histogram
}

export function createMetrics(meter: Meter = metrics.getMeter('@flowtag/outbound')): OutboundMetrics {
  return {
    requests: meter.createCounter('flowtag.outbound.requests', { description: 'Outbound requests by service, lane and instance' }),
    errors: meter.createCounter('flowtag.outbound.errors', { description: 'Outbound requests that failed' }),
    retries: meter.createCounter('flowtag.outbound.retries', { description: 'Retries on another instance after a connection failure' }),
    ejections: meter.createCounter('flowtag.outbound.ejections', { description: 'Instances ejected after consecutive failures' }),
    duration: meter.createHistogram('flowtag.outbound.duration', { description: 'Outbound request duration', unit: 'ms' })
  }
}

export function errorAttributes(base: Attributes, err: unknown): Attributes {
  const code = (err as { code?: unknown } | null)?.code
  return { ...base, 'error.type': typeof code === 'string' ? code : ((err as Error | null)?.name ?? 'Error') }
}
