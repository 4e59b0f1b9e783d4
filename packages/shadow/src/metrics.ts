// Counters through @opentelemetry/api: no-ops until the app installs a MeterProvider. Prometheus
// text names them `flowtag_shadow_<name>_total`, with the labels service, route, lane (and field).
import { metrics, type Counter, type Meter } from '@opentelemetry/api'

export interface ShadowMetrics {
  /** Pairs judged: compared beyond noise, once the route's noise is learned. */
  compared: Counter
  /** Judged pairs with at least one field that differs beyond noise. */
  diverged: Counter
  /** Per field (`field` attribute): judged pairs in which it differed beyond noise. */
  differences: Counter
  /** Pairs compared but not judged: the route was still learning its noise. */
  learning: Counter
  /** Pairs with a body over the cap or truncated by the sender (compared byte for byte over what was captured). */
  truncated: Counter
}

export function createShadowMetrics (meter: Meter = metrics.getMeter('@flowtag/shadow')): ShadowMetrics {
  return {
    compared: meter.createCounter('flowtag.shadow.compared', { description: 'Shadow pairs (user answer, mirror answer) judged, by service, route and mirror lane' }),
    diverged: meter.createCounter('flowtag.shadow.diverged', { description: 'Shadow pairs whose answers differ beyond noise' }),
    differences: meter.createCounter('flowtag.shadow.differences', { description: 'Shadow pairs in which a field differed beyond noise, by field (JSON pointer, status, header:<name>, body)' }),
    learning: meter.createCounter('flowtag.shadow.learning', { description: 'Shadow pairs not judged while the route learns its noise' }),
    truncated: meter.createCounter('flowtag.shadow.truncated', { description: 'Shadow pairs with a body over the cap, compared byte for byte over what was captured' })
  }
}
