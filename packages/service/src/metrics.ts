// Server-side request metrics per lane, through @opentelemetry/api (no-ops until the app installs
// a MeterProvider). What a canary controller reads: duration histogram by lane and status.
import { createNoopMeter, metrics, type Attributes, type Counter, type Histogram, type Meter } from '@opentelemetry/api'

/** Attribute naming the lane of a request (its flow tag; `none` when untagged). */
import { LANE_ATTRIBUTE } from '@flowtag/context'

/** The lane attribute of every flowtag metric (`flowtag.lane`; defined once in @flowtag/context). */
export { LANE_ATTRIBUTE }
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
  /** The request's path without the query, matched against the excluded routes when `route` is not. */
  path?: string
}

export interface ServiceMetricsOptions {
  /**
   * Routes (templates as in `http.route`, or paths) that are not lane traffic: probes, the
   * metrics endpoint, internal routes. Requests to them are not recorded. @default none
   */
  exclude?: Iterable<string>
}

/**
 * The preset's server instruments:
 * - `http.server.request.duration` (s, OTel semconv) with `flowtag.lane`, `flowtag.version`,
 *   `http.request.method`, `http.route`, `http.response.status_code`, and `error.type`
 *   (the status code for 5xx, `aborted` when the client went away: network apart from 5xx);
 * - `flowtag.rules.version`: the RuleSet version this instance applies (a gauge);
 * - `flowtag.process.start_time` (s since the epoch, a gauge): when this process started, so a
 *   reader of the counters sees a restart even when a counter has grown past its old value.
 *
 * Requests to `options.exclude` (the probes and the metrics route, in the presets) are not
 * recorded: a scrape or a probe is no request of a lane.
 */
export class ServiceMetrics {
  /**
   * False when the meter is the OpenTelemetry API's no-op (no MeterProvider was registered when
   * the service was created: the API hands out no proxy, so its instruments never record). Then
   * `record()` does nothing and the presets skip the per-request timing altogether.
   */
  readonly recording: boolean
  readonly #duration: Histogram
  readonly #aborted: Counter
  readonly #base: Attributes
  readonly #exclude: ReadonlySet<string>

  constructor (service: string, version: string | undefined, ruleVersion: () => number | undefined, meter: Meter = metrics.getMeter('@flowtag/service'), options: ServiceMetricsOptions = {}) {
    this.#exclude = new Set(options.exclude ?? [])
    // service.name is a resource attribute in OTel (the exporter's target_info), not one per point;
    // every attribute here is hashed by the SDK on each record.
    this.#base = version === undefined ? {} : { [VERSION_ATTRIBUTE]: version }
    this.#duration = meter.createHistogram('http.server.request.duration', {
      description: 'Duration of HTTP server requests, by lane',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS }
    })
    this.#aborted = meter.createCounter('flowtag.server.aborted', { description: 'Requests whose connection closed before the response' })
    // the no-op meter hands out one shared instrument of each kind
    const noop = createNoopMeter()
    this.recording = this.#duration !== noop.createHistogram('flowtag.noop') || this.#aborted !== noop.createCounter('flowtag.noop')
    const gauge = meter.createObservableGauge('flowtag.rules.version', { description: 'Version of the RuleSet this instance applies' })
    gauge.addCallback((result) => {
      const v = ruleVersion()
      if (v !== undefined) result.observe(v, { 'service.name': service })
    })
    const started = meter.createObservableGauge('flowtag.process.start_time', { description: 'Start time of this process, seconds since the epoch', unit: 's' })
    const startAttrs: Attributes = { ...this.#base, 'service.name': service }
    // performance.timeOrigin: when this process started (ms since the epoch), fixed for its life.
    started.addCallback((result) => { result.observe(performance.timeOrigin / 1000, startAttrs) })
  }

  /** Whether requests to this route (or, without a route, this path) are recorded. */
  counts (route: string | undefined, path?: string): boolean {
    if (this.#exclude.size === 0) return true
    if (route !== undefined) return !this.#exclude.has(route)
    return path === undefined || !this.#exclude.has(path)
  }

  /** Count one request (unless its route is excluded, or nothing records). Cheap: one attribute object, one histogram record. */
  record (r: ServedRequest): void {
    if (!this.recording || !this.counts(r.route, r.path)) return
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
