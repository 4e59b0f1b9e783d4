// Per-lane consumer figures through @opentelemetry/api (no-ops until the app installs a
// MeterProvider; a Prometheus exporter serves them at /metrics), plus the same counts in process.
import { metrics, type Attributes, type Counter, type Histogram, type Meter } from '@opentelemetry/api'

/** The lane of the message (`none`: untagged), as the HTTP server metrics name it. */
export const LANE_ATTRIBUTE = 'flowtag.lane'
/** The lane of the consumer that handled (or skipped) it. */
export const VERSION_ATTRIBUTE = 'flowtag.version'
/** `handled`, `failed` or `skipped`. */
export const OUTCOME_ATTRIBUTE = 'flowtag.mq.outcome'
/** `true` when stable handled another lane's message (no live consumer in that lane). */
export const FALLBACK_ATTRIBUTE = 'flowtag.mq.fallback'

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]

/** Counts of one consumer since it started, per message lane (`none`: untagged). */
export interface LaneCounts {
  handled: number
  failed: number
  skipped: number
  /** Handled by this (stable) consumer for a lane with no live consumer. */
  fallback: number
}

export interface ConsumerStats {
  lanes: Record<string, LaneCounts>
  /** Messages whose lane header was malformed, forged or untrusted: handled as untagged. */
  refused: number
  /** Messages behind the end of the log or queue, per lane of this consumer, as last seen. */
  lag: Record<string, number>
}

export interface ConsumerIdentity {
  system: 'kafka' | 'rabbitmq'
  /** Topic(s) or queue. */
  destination: string
  /** Consumer group or queue the consumer reads. */
  group: string
  /** The consumer's own lane. */
  version: string
}

/**
 * - `messaging.process.duration` (s, OTel semconv) per handled or failed message, with
 *   `flowtag.lane`, `flowtag.version`, `messaging.system`, `messaging.destination.name`,
 *   `messaging.consumer.group.name`, `flowtag.mq.fallback` and `error.type` on failures: a
 *   canary judges a consumer service on failed / handled from it, as it does HTTP on 5xx / requests;
 * - `flowtag.mq.messages` (counter, observed at collection) with `flowtag.mq.outcome` = handled | failed | skipped;
 * - `flowtag.mq.refused` (counter): lane headers refused (handled as untagged);
 * - `flowtag.mq.lag` (gauge): messages not yet consumed by this consumer's group or queue.
 */
export class ConsumerMetrics {
  readonly #base: Attributes
  readonly #duration: Histogram
  readonly #refused: Counter
  readonly #stats: ConsumerStats = { lanes: {}, refused: 0, lag: {} }
  readonly #lag = new Map<string, number>()
  // Per message, the SDK hashes every data point's attributes (sorted keys, JSON) on each
  // record: the message counts are kept here and observed at collection instead, and each
  // attribute set is built once, so a message costs one histogram record.
  readonly #counts = new Map<string, { attrs: Attributes, value: number }>()
  readonly #durationAttrs = new Map<string, Attributes>()

  constructor (id: ConsumerIdentity, meter: Meter = metrics.getMeter('@flowtag/mq')) {
    this.#base = {
      'messaging.system': id.system,
      'messaging.destination.name': id.destination,
      'messaging.consumer.group.name': id.group,
      [VERSION_ATTRIBUTE]: id.version
    }
    this.#duration = meter.createHistogram('messaging.process.duration', {
      description: 'Duration of message handlers, by lane',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS }
    })
    const messages = meter.createObservableCounter('flowtag.mq.messages', { description: 'Messages handled, failed and skipped by lane' })
    messages.addCallback((result) => {
      for (const { attrs, value } of this.#counts.values()) result.observe(value, attrs)
    })
    this.#refused = meter.createCounter('flowtag.mq.refused', { description: 'Messages whose lane header was refused (handled as untagged)' })
    const lag = meter.createObservableGauge('flowtag.mq.lag', { description: 'Messages not yet consumed, per partition or queue' })
    lag.addCallback((result) => {
      for (const [where, value] of this.#lag) result.observe(value, { ...this.#base, 'messaging.destination.partition.id': where })
    })
  }

  #lane (lane: string): LaneCounts {
    let c = this.#stats.lanes[lane]
    if (c === undefined) this.#stats.lanes[lane] = c = { handled: 0, failed: 0, skipped: 0, fallback: 0 }
    return c
  }

  /** The attributes of one lane's durations (`errorType` on failures), built once per set. */
  #attrs (lane: string, fallback: boolean, errorType: string | undefined): Attributes {
    const key = `${lane}\0${String(fallback)}\0${errorType ?? ''}`
    let attrs = this.#durationAttrs.get(key)
    if (attrs === undefined) {
      attrs = { ...this.#base, [LANE_ATTRIBUTE]: lane, [FALLBACK_ATTRIBUTE]: fallback }
      if (errorType !== undefined) attrs['error.type'] = errorType
      this.#durationAttrs.set(key, attrs)
    }
    return attrs
  }

  /** One more message of `flowtag.mq.messages` with these attributes plus the outcome. */
  #count (outcome: string, lane: string, fallback: boolean | undefined, errorType: string | undefined): void {
    const key = `${outcome}\0${lane}\0${String(fallback)}\0${errorType ?? ''}`
    const c = this.#counts.get(key)
    if (c !== undefined) {
      c.value++
      return
    }
    const attrs: Attributes = fallback === undefined
      ? { ...this.#base, [LANE_ATTRIBUTE]: lane }
      : { ...this.#attrs(lane, fallback, errorType) }
    attrs[OUTCOME_ATTRIBUTE] = outcome
    this.#counts.set(key, { attrs, value: 1 })
  }

  handled (lane: string | undefined, seconds: number, fallback: boolean): void {
    const name = lane ?? 'none'
    const c = this.#lane(name)
    c.handled++
    if (fallback) c.fallback++
    this.#duration.record(seconds, this.#attrs(name, fallback, undefined))
    this.#count('handled', name, fallback, undefined)
  }

  failed (lane: string | undefined, seconds: number, fallback: boolean, err: unknown): void {
    const name = lane ?? 'none'
    this.#lane(name).failed++
    const code = (err as { code?: unknown } | null)?.code
    const type = typeof code === 'string' ? code : ((err as Error | null)?.name ?? 'Error')
    this.#duration.record(seconds, this.#attrs(name, fallback, type))
    this.#count('failed', name, fallback, type)
  }

  skipped (lane: string | undefined): void {
    const name = lane ?? 'none'
    this.#lane(name).skipped++
    this.#count('skipped', name, undefined, undefined)
  }

  refused (): void {
    this.#stats.refused++
    this.#refused.add(1, this.#base)
  }

  /** Record the lag of one partition (Kafka) or queue (RabbitMQ). */
  lag (where: string, value: number): void {
    this.#lag.set(where, value)
    this.#stats.lag[where] = value
  }

  /** A copy of the counts. */
  get stats (): ConsumerStats {
    const lanes: Record<string, LaneCounts> = {}
    for (const [k, v] of Object.entries(this.#stats.lanes)) lanes[k] = { ...v }
    return { lanes, refused: this.#stats.refused, lag: { ...this.#stats.lag } }
  }
}
