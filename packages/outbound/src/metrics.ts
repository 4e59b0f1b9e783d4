// Instruments through @opentelemetry/api: no-ops until the app installs a MeterProvider.
import { metrics, type Attributes, type Counter, type Histogram, type Meter } from '@opentelemetry/api'

export interface OutboundMetrics {
  /** Finished requests (one per logical request, whatever the retries), by service, lane, instance. */
  requests: Counter
  /** Failed requests: routing errors and transport errors, with `error.type` = the error code. */
  errors: Counter
  /** Extra attempts after connection-level failures. */
  retries: Counter
  /**
   * `http.client.request.duration` (OTel semconv): dispatch to the end of the response body (or
   * the error), in seconds, with `service`, `lane` (the instance's), `instance` and `error.type`.
   */
  duration: Histogram
  /** Instances ejected after consecutive connection failures (passive outlier detection). */
  ejections: Counter
  /** Requests served outside the lane they asked for (`flowtag.lane.requested` → `lane`). */
  fallbacks: Counter
  /** Retries not sent because the lane's retry budget was spent (`service`, `lane`, `instance` that failed). */
  retriesRefused: Counter
}

// Seconds, the semconv's advisory boundaries: a canary judges p99 against 1 s.
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]

export function createMetrics (meter: Meter = metrics.getMeter('@flowtag/outbound')): OutboundMetrics {
  return {
    requests: meter.createCounter('flowtag.outbound.requests', { description: 'Outbound requests by service, lane and instance' }),
    errors: meter.createCounter('flowtag.outbound.errors', { description: 'Outbound requests that failed' }),
    retries: meter.createCounter('flowtag.outbound.retries', { description: 'Retries on another instance after a connection failure' }),
    duration: meter.createHistogram('http.client.request.duration', {
      description: 'Duration of lane-aware outbound HTTP requests',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS }
    }),
    ejections: meter.createCounter('flowtag.outbound.ejections', { description: 'Instances ejected after connection failures' }),
    fallbacks: meter.createCounter('flowtag.outbound.fallbacks', { description: 'Requests served by another lane than the one requested' }),
    retriesRefused: meter.createCounter('flowtag.outbound.retries_refused', { description: 'Retries not sent because the retry budget of the lane was spent' })
  }
}

export function errorAttributes (base: Attributes, err: unknown): Attributes {
  const code = (err as { code?: unknown } | null)?.code
  return { ...base, 'error.type': typeof code === 'string' ? code : ((err as Error | null)?.name ?? 'Error') }
}

/** Seconds since `start` (a `performance.now()` reading). */
export function secondsSince (start: number): number {
  return (performance.now() - start) / 1000
}
