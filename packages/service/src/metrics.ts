// Server-side request metrics per lane, through @opentelemetry/api (no-ops until the app installs
// a MeterProvider). What a canary controller reads: duration histogram by lane and status.
import { metrics, type Attributes, type Counter, type Histogram, type Meter } from '@opentelemetry/api'

/** Attribute naming the lane of a request (its flow tag; `none` when untagged). */
export const LANE_ATTRIBUTE = 'flowtag.lane'
/** Attribute naming the lane label of the instance that served the request. */
export const VERSION_ATTRIBUTE = 'flowtag.version'

// Seconds, the semconv's advisory boundaries: the canary policy's p99 threshold (1 s) is a boundary.
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]

/** What one served (or abandoned) request is counted with. */
export interface ServedRequest {
  /** The request's lane (flow tag), undefined when untagged. */
  lane: string | undefined
  method: string
  /** The route template (`/orders/:id`), never the raw path (bounded cardinality). */
  route: string | undefined
  /** Status code sent; undefined when the connection closed before a response. */
  status: number | undefined
  seconds: number
}

/**
 * The preset's server instruments:
 * - `http.server.request.duration` (s, OTel semconv) with `flowtag.lane`, `flowtag.version`,
 *   `http.request.method`, `http.route`, `http.response.status_code`, and `error.type`
 *   (the status code for 5xx, `aborted` when the client went away: network apart from 5xx);
 * - `flowtag.rules.version`: the RuleSet version this instance applies (a gauge).
 */
export class ServiceMetrics {
  readonly #duration: Histogram
  readonly #aborted: Counter
  readonly #base: Attributes

  constructor (service: string, version: string | undefined, ruleVersion: () => number | undefined, meter: Meter = metrics.getMeter('@flowtag/service')) {
    // service.name is a resource attribute in OTel (the exporter's target_info), not one per point;
    // every attribute here is hashed by the SDK on each record.
    this.#base = version === undefined ? {} : { [VERSION_ATTRIBUTE]: version }
    this.#duration = meter.createHistogram('http.server.request.duration', {
      description: 'Duration of HTTP server requests, by lane',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS }
    })
    this.#aborted = meter.createCounter('flowtag.server.aborted', { description: 'Requests whose connection closed before the response' })
    const gauge = meter.createObservableGauge('flowtag.rules.version', { description: 'Version of the RuleSet this instance applies' })
    gauge.addCallback((result) => {
      const v = ruleVersion()
      if (v !== undefined) result.observe(v, { 'service.name': service })
    })
  }

  /** Count one request. Cheap: one attribute object, one histogram record. */
  record (r: ServedRequest): void {
    const attrs: Attributes = {
      ...this.#base,
      [LANE_ATTRIBUTE]: r.lane ?? 'none',
      'http.request.method': r.method
    }
    if (r.route !== undefined) attrs['http.route'] = r.route
    if (r.status === undefined) {
      attrs['error.type'] = 'aborted'
      this.#aborted.add(1, attrs)
    } else {
      attrs['http.response.status_code'] = r.status
      if (r.status >= 500) attrs['error.type'] = String(r.status)
    }
    this.#duration.record(r.seconds, attrs)
  }
}
