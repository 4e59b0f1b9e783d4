// Per-lane consumer figures through @opentelemetry/api (no-ops until the app installs a
// MeterProvider; a Prometheus exporter serves them at /metrics), plus the same counts in process.
import { metrics, type Attributes, type Counter, type Histogram, type Meter } from '@opentelemetry/api'

/** The lane of the message (`none`: untagged), as the HTTP server metrics name it. */
import { LANE_ATTRIBUTE } from '@flowtag/context'

/** The lane attribute of every flowtag metric (`flowtag.lane`; defined once in @flowtag/context). */
export { LANE_ATTRIBUTE }
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
  #refusedCount = 0
  readonly #lag = new Map<string, number>()
  // Per message the SDK hashes the attributes of each data point it records (sorted keys, JSON).
  // So a message costs one histogram record and nothing else: the message counts are kept here
  // (one entry per attribute set, found through the lane's slot, no key built per message) and
  // observed at collection; each attribute set is built once, its keys in sorted order (the
  // SDK's sort then has nothing to move).
  readonly #lanes = new Map<string, LaneSlot>()
  readonly #entries: CountEntry[] = []

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
      for (const { attrs, value } of this.#entries) result.observe(value, attrs)
    })
    this.#refused = meter.createCounter('flowtag.mq.refused', { description: 'Messages whose lane header was refused (handled as untagged)' })
    const lag = meter.createObservableGauge('flowtag.mq.lag', { description: 'Messages not yet consumed, per partition or queue' })
    lag.addCallback((result) => {
      for (const [where, value] of this.#lag) result.observe(value, { ...this.#base, 'messaging.destination.partition.id': where })
    })
  }

  /** The slot of one message lane (`none`: untagged), created on its first message. */
  #slot (lane: string): LaneSlot {
    let s = this.#lanes.get(lane)
    if (s === undefined) {
      s = { counts: { handled: 0, failed: 0, skipped: 0, fallback: 0 }, own: this.#outcomes(lane, false), fallback: this.#outcomes(lane, true), skipped: undefined }
      this.#lanes.set(lane, s)
    }
    return s
  }

  #outcomes (lane: string, fallback: boolean): Outcomes {
    return { attrs: sorted({ ...this.#base, [LANE_ATTRIBUTE]: lane, [FALLBACK_ATTRIBUTE]: fallback }), handled: undefined, failed: new Map() }
  }

  /** A new entry of `flowtag.mq.messages`, observed at every collection from now on. */
  #entry (attrs: Attributes, outcome: string): CountEntry {
    const e = { attrs: sorted({ ...attrs, [OUTCOME_ATTRIBUTE]: outcome }), value: 0 }
    this.#entries.push(e)
    return e
  }

  handled (lane: string | undefined, seconds: number, fallback: boolean): void {
    const s = this.#slot(lane ?? 'none')
    s.counts.handled++
    if (fallback) s.counts.fallback++
    const o = fallback ? s.fallback : s.own
    this.#duration.record(seconds, o.attrs)
    ;(o.handled ??= this.#entry(o.attrs, 'handled')).value++
  }

  failed (lane: string | undefined, seconds: number, fallback: boolean, err: unknown): void {
    const s = this.#slot(lane ?? 'none')
    s.counts.failed++
    const code = (err as { code?: unknown } | null)?.code
    const type = typeof code === 'string' ? code : ((err as Error | null)?.name ?? 'Error')
    const o = fallback ? s.fallback : s.own
    let f = o.failed.get(type)
    if (f === undefined) {
      const attrs = sorted({ ...o.attrs, 'error.type': type })
      f = { attrs, count: this.#entry(attrs, 'failed') }
      o.failed.set(type, f)
    }
    this.#duration.record(seconds, f.attrs)
    f.count.value++
  }

  skipped (lane: string | undefined): void {
    const name = lane ?? 'none'
    const s = this.#slot(name)
    s.counts.skipped++
    ;(s.skipped ??= this.#entry({ ...this.#base, [LANE_ATTRIBUTE]: name }, 'skipped')).value++
  }

  refused (): void {
    this.#refusedCount++
    this.#refused.add(1, this.#base)
  }

  /** Record the lag of one partition (Kafka) or queue (RabbitMQ). */
  lag (where: string, value: number): void {
    this.#lag.set(where, value)
  }

  /** Forget the lag of a partition this consumer no longer reads (reassigned to another member). */
  clearLag (where: string): void {
    this.#lag.delete(where)
  }

  /** A copy of the counts. */
  get stats (): ConsumerStats {
    const lanes: Record<string, LaneCounts> = {}
    for (const [k, v] of this.#lanes) lanes[k] = { ...v.counts }
    return { lanes, refused: this.#refusedCount, lag: Object.fromEntries(this.#lag) }
  }
}

/** One data point of `flowtag.mq.messages`. */
interface CountEntry { attrs: Attributes, value: number }

/** A message lane's duration attributes (handled or fallback) and its count entries. */
interface Outcomes {
  attrs: Attributes
  handled: CountEntry | undefined
  failed: Map<string, { attrs: Attributes, count: CountEntry }>
}

interface LaneSlot {
  counts: LaneCounts
  own: Outcomes
  fallback: Outcomes
  skipped: CountEntry | undefined
}

/** The same attributes, keys in sorted order. */
function sorted (attrs: Attributes): Attributes {
  const out: Attributes = {}
  for (const k of Object.keys(attrs).sort()) out[k] = attrs[k]
  return out
}
