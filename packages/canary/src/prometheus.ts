// Reads lane figures from a Prometheus that scrapes the instances, instead of scraping them
// here. Same contract as ScrapeSource: one reading = each instance's cumulative counts of the
// preset's `http.server.request.duration` histogram, so the controller's window (the difference
// from the reading at convergence, reset-aware per instance) is computed the same way for both
// sources. The instance's lane is the `flowtag_version` label (@flowtag/service's
// `flowtag.version`: the lane of the serving instance), its key the `instance` label.
import { optionErrorMessage } from '@flowtag/errors'
import { request } from 'undici'
import { z } from 'zod'
import { CanaryError, errorCodes, PACKAGE } from './errors.ts'
import type { InstanceReading, MetricsSource, Reading } from './scrape.ts'
import { emptyFigures, type Figures } from './window.ts'

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
// One or more PromQL label matchers: name op "value", comma-separated (no braces).
const MATCHERS = /^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*(?:,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*)*,?\s*$/

/** What the Canary spec may say about Prometheus (no secret: the spec is stored in Nacos). */
export const PrometheusSpecSchema = z.strictObject({
  /** Base URL of the Prometheus HTTP API (`http://prometheus:9090`, a path prefix allowed). */
  url: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }),
  /** Extra PromQL label matchers for every query, e.g. `namespace="prod",cluster="a"`. */
  matchers: z.string().regex(MATCHERS, 'must be PromQL label matchers such as namespace="prod",cluster=~"a|b"').optional(),
  /** Label that names the service (the scrape job, by default); `''`: do not select by service. */
  serviceLabel: z.union([z.string().regex(LABEL_NAME, 'must be a label name'), z.literal('')]).default('job'),
  /** Label holding the serving instance's lane. */
  laneLabel: z.string().regex(LABEL_NAME, 'must be a label name').default('flowtag_version'),
  /** Label identifying one instance (its counters are differenced on their own, reset-aware). */
  instanceLabel: z.string().regex(LABEL_NAME, 'must be a label name').default('instance')
})

export const PrometheusOptionsSchema = PrometheusSpecSchema.extend({
  /** `Authorization` header value for a Prometheus behind auth (`Bearer …`, `Basic …`). */
  authorization: z.string().min(1).optional(),
  /** Per query, ms. */
  timeoutMs: z.number().int().min(1).max(600_000).default(5000)
})

export type PrometheusSpec = z.output<typeof PrometheusSpecSchema>
export type PrometheusOptions = z.input<typeof PrometheusOptionsSchema>

interface VectorSample { metric: Record<string, string>, value: [number, string] }
interface ApiAnswer { status: 'success' | 'error', data?: { resultType: string, result: VectorSample[] }, errorType?: string, error?: string }

// The exporter names the histogram `http_server_request_duration_seconds_*` (unit suffix) or,
// in older versions, without the suffix; ScrapeSource accepts both, so do these queries.
const SERIES = (suffix: string) => `__name__=~"http_server_request_duration(?:_seconds)?_${suffix}"`

/**
 * Lane figures from a Prometheus that scrapes the instances: three instant queries per reading
 * over the HTTP API (`GET <url>/api/v1/query`), the histogram's `_count` (by status and
 * `error_type`), `_sum` and `_bucket` (by `le`), each summed per instance and lane.
 *
 * Options (validated with zod): `url` (required), `matchers` (extra label matchers),
 * `serviceLabel` @default 'job' (`''`: none), `laneLabel` @default 'flowtag_version',
 * `instanceLabel` @default 'instance', `authorization` (header value), `timeoutMs` @default 5000.
 *
 * `read()` rejects with `FLOWTAG_CANARY_METRICS_UNAVAILABLE` when Prometheus cannot be reached,
 * answers other than 200, or answers an error; the controller then has no data (never a pass).
 * @throws {CanaryError} `FLOWTAG_CANARY_BAD_OPTION` naming the field.
 */
export class PrometheusSource implements MetricsSource {
  readonly #o: z.output<typeof PrometheusOptionsSchema>
  readonly #endpoint: string

  constructor (options: PrometheusOptions) {
    const parsed = PrometheusOptionsSchema.safeParse(options)
    if (!parsed.success) throw new CanaryError(errorCodes.BAD_OPTION, optionErrorMessage(PACKAGE, parsed.error))
    this.#o = parsed.data
    this.#endpoint = `${parsed.data.url.replace(/\/+$/, '')}/api/v1/query`
  }

  /** The three PromQL queries of one reading of `service` (also what `read` sends). */
  queries (service: string): { count: string, sum: string, bucket: string } {
    const o = this.#o
    const select = [o.serviceLabel === '' ? undefined : `${o.serviceLabel}=${JSON.stringify(service)}`, o.matchers?.trim().replace(/,$/, '')]
      .filter((s) => s !== undefined && s !== '')
    const by = `${o.instanceLabel}, ${o.laneLabel}`
    const sel = (suffix: string) => `{${[SERIES(suffix), ...select].join(', ')}}`
    return {
      count: `sum by (${by}, http_response_status_code, error_type) (${sel('count')})`,
      sum: `sum by (${by}) (${sel('sum')})`,
      bucket: `sum by (${by}, le) (${sel('bucket')})`
    }
  }

  async read (service: string): Promise<Reading> {
    const q = this.queries(service)
    const at = Date.now()
    const time = at / 1000
    const [count, sum, bucket] = await Promise.all([this.#query(q.count, time), this.#query(q.sum, time), this.#query(q.bucket, time)])
    const o = this.#o
    const instances = new Map<string, InstanceReading>()
    const figuresOf = (m: Record<string, string>): Figures => {
      const key = m[o.instanceLabel] ?? 'unknown'
      let i = instances.get(key)
      if (i === undefined) instances.set(key, i = { key, lane: m[o.laneLabel] ?? 'none', figures: emptyFigures(), metadata: {} })
      return i.figures!
    }
    for (const s of count) {
      const f = figuresOf(s.metric)
      const n = Number(s.value[1])
      f.requests += n
      if (s.metric.error_type === 'aborted') f.networkErrors += n
      else if (Number(s.metric.http_response_status_code) >= 500) f.serverErrors += n
    }
    for (const s of sum) figuresOf(s.metric).seconds += Number(s.value[1])
    const buckets = new Map<Figures, Map<number, number>>()
    for (const s of bucket) {
      const f = figuresOf(s.metric)
      let b = buckets.get(f)
      if (b === undefined) buckets.set(f, b = new Map())
      const le = s.metric.le === '+Inf' ? Infinity : Number(s.metric.le)
      b.set(le, (b.get(le) ?? 0) + Number(s.value[1]))
    }
    for (const [f, b] of buckets) f.buckets = [...b].sort((x, y) => x[0] - y[0])
    return { at, instances }
  }

  async #query (promql: string, time: number): Promise<VectorSample[]> {
    const unavailable = (why: string, cause?: unknown) =>
      new CanaryError(errorCodes.METRICS_UNAVAILABLE, `@flowtag/canary: Prometheus at ${this.#o.url} ${why}`, { cause })
    let status: number
    let text: string
    try {
      const res = await request(this.#endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          ...(this.#o.authorization === undefined ? {} : { authorization: this.#o.authorization })
        },
        body: new URLSearchParams({ query: promql, time: String(time) }).toString(),
        headersTimeout: this.#o.timeoutMs,
        bodyTimeout: this.#o.timeoutMs
      })
      status = res.statusCode
      text = await res.body.text()
    } catch (err) {
      throw unavailable(`cannot be reached: ${(err as Error).message}`, err)
    }
    let answer: ApiAnswer | undefined
    try {
      answer = JSON.parse(text) as ApiAnswer
    } catch {
      answer = undefined
    }
    if (answer?.status === 'error') throw unavailable(`answered HTTP ${status}, ${answer.errorType ?? 'error'}: ${answer.error ?? ''}`)
    if (status !== 200 || answer?.status !== 'success' || answer.data?.resultType !== 'vector') {
      throw unavailable(`answered HTTP ${status} without a query result: ${text.slice(0, 200)}`)
    }
    return answer.data.result
  }
}
