// Reads lane figures from a Prometheus that scrapes the instances, instead of scraping them
// here. Same contract as ScrapeSource: one reading = each instance's cumulative counts of the
// preset's `http.server.request.duration` histogram, so the controller's window (the difference
// from the reading at convergence, reset-aware per instance) is computed the same way for both
// sources. The instance's lane is the `flowtag_version` label (@flowtag/service's
// `flowtag.version`: the lane of the serving instance), its key the `instance` label.
import { optionErrorMessage } from '@flowtag/errors'
import type { ShadowReading } from './divergence.ts'
import { request } from 'undici'
import { z } from 'zod'
import { CanaryError, errorCodes, PACKAGE } from './errors.ts'
import { combineFigures } from './messages.ts'
import { isServerFault } from './rpc.ts'
import { CALLER_ABORTS, DEFAULT_EXCLUDED_ROUTES, type CallFigures, type InstanceReading, type MetricsSource, type ReadOptions, type Reading } from './scrape.ts'
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
  /** Routes (`http_route`) whose requests are no lane's traffic: the scrapes and the probes. */
  excludeRoutes: z.array(z.string().startsWith('/')).max(100).default([...DEFAULT_EXCLUDED_ROUTES]),
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
// A message consumer's `messaging_process_duration_seconds_*` (@flowtag/mq) is read with it: processed
// messages are requests, failed ones (an `error_type`) server errors; so is a gRPC server's
// `rpc_server_call_duration_*` (@flowtag/grpc: calls, and server-fault status codes); `__name__`
// tells them apart.
const SERIES = (suffix: string) => `__name__=~"(?:http_server_request|messaging_process|rpc_server_call)_duration(?:_seconds)?_${suffix}"`
const isMessageSeries = (m: Record<string, string>) => m.__name__?.startsWith('messaging_') === true
const isRpcSeries = (m: Record<string, string>) => m.__name__?.startsWith('rpc_') === true
const START = '__name__=~"flowtag_process_start_time(?:_seconds)?"'
const OUTBOUND = (what: 'requests' | 'errors') => `__name__=~"flowtag_outbound_${what}(?:_total)?"`

/** `s` as a literal in a PromQL (RE2) regular expression. */
const literal = (s: string) => s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&')

/** The PromQL queries of one reading (what `read` sends). */
export interface PrometheusQueries {
  /** The histogram's `_count`, by instance, lane, status and `error_type`. */
  count: string
  /** Its `_sum`, by instance and lane. */
  sum: string
  /** Its `_bucket`, by instance, lane and `le`. */
  bucket: string
  /** Each instance's process start time (flowtag's gauge, else `process_start_time_seconds`). */
  start: string
  /** Whether Prometheus's last scrape of each instance succeeded (`up`). */
  up: string
  /** The service's shadow pairs (@flowtag/shadow), compared and diverged, by the comparing instance and mirror lane. */
  shadow: string
  /** The callers' calls to the service, by caller instance and called lane (@flowtag/outbound); undefined when no caller is read. */
  callerRequests?: string
  /** The callers' failed calls, by caller instance, called lane and `error_type`. */
  callerErrors?: string
}

/**
 * Lane figures from a Prometheus that scrapes the instances: instant queries per reading over the
 * HTTP API (`POST <url>/api/v1/query`): the histogram's `_count` (by status and `error_type`),
 * `_sum` and `_bucket` (by `le`), each summed per instance and lane, leaving out `excludeRoutes`;
 * each instance's process start time and `up`; and, with callers, their
 * `flowtag_outbound_requests/errors` to the service by called lane.
 *
 * Options (validated with zod): `url` (required), `matchers` (extra label matchers),
 * `serviceLabel` @default 'job' (`''`: none), `laneLabel` @default 'flowtag_version',
 * `instanceLabel` @default 'instance', `excludeRoutes` @default ['/metrics', '/health', '/ready'],
 * `authorization` (header value), `timeoutMs` @default 5000.
 *
 * `read()` rejects with `FLOWTAG_CANARY_METRICS_UNAVAILABLE` when Prometheus cannot be reached,
 * answers other than 200, or answers an error; the controller then has no data (never a pass).
 * The figures are passed on as Prometheus gives them (`NaN` included): the controller refuses a
 * reading with a figure that is not a finite number ≥ 0.
 * @throws {CanaryError} `FLOWTAG_CANARY_BAD_OPTION` naming the field.
 */
export class PrometheusSource implements MetricsSource {
  readonly #o: z.output<typeof PrometheusOptionsSchema>
  readonly #endpoint: string
  /** The lane each instance was last seen in: an instance Prometheus could not scrape has only `up`. */
  readonly #lanes = new Map<string, string>()

  constructor (options: PrometheusOptions) {
    const parsed = PrometheusOptionsSchema.safeParse(options)
    if (!parsed.success) throw new CanaryError(errorCodes.BAD_OPTION, optionErrorMessage(PACKAGE, parsed.error))
    this.#o = parsed.data
    this.#endpoint = `${parsed.data.url.replace(/\/+$/, '')}/api/v1/query`
  }

  /** The PromQL queries of one reading of `service` (also what `read` sends). */
  queries (service: string, options: ReadOptions = {}): PrometheusQueries {
    const o = this.#o
    const extra = o.matchers?.trim().replace(/,$/, '')
    const select = [o.serviceLabel === '' ? undefined : `${o.serviceLabel}=${JSON.stringify(service)}`, extra]
      .filter((s) => s !== undefined && s !== '')
    const routes = o.excludeRoutes.length === 0 ? [] : [`http_route!~${JSON.stringify(`${o.excludeRoutes.map(literal).join('|')}`)}`]
    const inst = o.instanceLabel
    const by = `${inst}, ${o.laneLabel}`
    const sel = (suffix: string) => `{${[SERIES(suffix), ...select, ...routes].join(', ')}}`
    const q: PrometheusQueries = {
      count: `sum by (__name__, ${by}, http_response_status_code, error_type, rpc_grpc_status_code) (${sel('count')})`,
      sum: `sum by (__name__, ${by}) (${sel('sum')})`,
      bucket: `sum by (__name__, ${by}, le) (${sel('bucket')})`,
      start: `max by (${by}) ({${[START, ...select].join(', ')}}) or on (${inst}) max by (${inst}) ({${['__name__="process_start_time_seconds"', ...select].join(', ')}})`,
      up: `max by (${inst}) ({${['__name__="up"', ...select].join(', ')}})`,
      // Counted by whichever process compares the service's pairs (an edge, a caller): not
      // selected by the service's own target label; their `service` label names it.
      shadow: `sum by (__name__, ${inst}, lane) ({${['__name__=~"flowtag_shadow_(compared|diverged)(_total)?"', `${o.serviceLabel === 'service' ? 'exported_service' : 'service'}=${JSON.stringify(service)}`, ...(extra === undefined || extra === '' ? [] : [extra])].join(', ')}})`
    }
    const callers = options.callers?.filter((c) => c !== service)
    if (callers === undefined || callers.length > 0) {
      // The outbound metrics' own `service` label (the called service) is renamed by Prometheus
      // when the scrape config sets a target label of that name.
      const called = o.serviceLabel === 'service' ? 'exported_service' : 'service'
      const from = callers === undefined || o.serviceLabel === '' ? [] : [`${o.serviceLabel}=~${JSON.stringify(callers.map(literal).join('|'))}`]
      const csel = (what: 'requests' | 'errors') => `{${[OUTBOUND(what), `${called}=${JSON.stringify(service)}`, ...from, ...(extra === undefined || extra === '' ? [] : [extra])].join(', ')}}`
      const cby = o.serviceLabel === '' ? `${inst}, lane` : `${inst}, ${o.serviceLabel}, lane`
      q.callerRequests = `sum by (${cby}) (${csel('requests')})`
      q.callerErrors = `sum by (${cby}, error_type) (${csel('errors')})`
    }
    return q
  }

  async read (service: string, options: ReadOptions = {}): Promise<Reading> {
    const q = this.queries(service, options)
    const at = Date.now()
    const time = at / 1000
    const ask = (promql: string | undefined) => promql === undefined ? Promise.resolve(undefined) : this.#query(promql, time)
    const [count, sum, bucket, start, up, shadow, callerRequests, callerErrors] = await Promise.all([q.count, q.sum, q.bucket, q.start, q.up, q.shadow, q.callerRequests, q.callerErrors].map(ask))
    const o = this.#o
    const instances = new Map<string, InstanceReading>()
    const instanceOf = (m: Record<string, string>): InstanceReading => {
      const key = m[o.instanceLabel] ?? 'unknown'
      let i = instances.get(key)
      if (i === undefined) instances.set(key, i = { key, lane: this.#lanes.get(key) ?? 'none', figures: emptyFigures(), metadata: {} })
      const lane = m[o.laneLabel]
      if (lane !== undefined && lane !== '' && lane !== i.lane) {
        i.lane = lane
        if (this.#lanes.size >= 10_000) this.#lanes.clear()
        this.#lanes.set(key, lane)
      }
      return i
    }
    // A consumer's message figures are kept apart until the end: their buckets' bounds may differ.
    const messages = new Map<InstanceReading, Figures>()
    const figuresOf = (m: Record<string, string>): Figures => {
      const i = instanceOf(m)
      if (!isMessageSeries(m) && !isRpcSeries(m)) return i.figures!
      let f = messages.get(i)
      if (f === undefined) messages.set(i, f = emptyFigures())
      return f
    }
    for (const s of count!) {
      const f = figuresOf(s.metric)
      const n = Number(s.value[1])
      f.requests += n
      if (isMessageSeries(s.metric)) {
        if (s.metric.error_type !== undefined && s.metric.error_type !== '') f.serverErrors += n
      } else if (isRpcSeries(s.metric)) {
        if (isServerFault(s.metric.rpc_grpc_status_code)) f.serverErrors += n
      } else if (s.metric.error_type === 'aborted') f.networkErrors += n
      else if (Number(s.metric.http_response_status_code) >= 500) f.serverErrors += n
    }
    for (const s of sum!) figuresOf(s.metric).seconds += Number(s.value[1])
    const buckets = new Map<Figures, Map<number, number>>()
    for (const s of bucket!) {
      const f = figuresOf(s.metric)
      let b = buckets.get(f)
      if (b === undefined) buckets.set(f, b = new Map())
      const le = s.metric.le === '+Inf' ? Infinity : Number(s.metric.le)
      b.set(le, (b.get(le) ?? 0) + Number(s.value[1]))
    }
    for (const [f, b] of buckets) f.buckets = [...b].sort((x, y) => x[0] - y[0])
    for (const [i, f] of messages) i.figures = combineFigures(i.figures!, f)
    for (const s of start!) instanceOf(s.metric).startTime = Number(s.value[1])
    // Prometheus could not scrape it: listed, but not read (its series went stale).
    for (const s of up!) {
      if (Number(s.value[1]) === 1) continue
      const i = instanceOf(s.metric)
      i.figures = undefined
      i.error = `Prometheus's last scrape of it failed (up ${s.value[1]})`
    }
    const shadows = new Map<string, ShadowReading>()
    for (const s of shadow!) {
      const key = s.metric[o.instanceLabel] ?? 'unknown'
      let sh = shadows.get(key)
      if (sh === undefined) {
        const startTime = instances.get(key)?.startTime
        shadows.set(key, sh = { key, lanes: new Map(), ...(startTime === undefined ? {} : { startTime }) })
      }
      const lane = s.metric.lane ?? 'none'
      const f = sh.lanes!.get(lane) ?? { compared: 0, diverged: 0 }
      if (/compared/.test(s.metric.__name__ ?? '')) f.compared += Number(s.value[1])
      else f.diverged += Number(s.value[1])
      sh.lanes!.set(lane, f)
    }
    const reading: Reading = { at, instances, shadow: shadows }
    if (callerRequests !== undefined && callerErrors !== undefined) {
      const callers = new Map<string, { service: string, calls: Map<string, CallFigures> }>()
      const callsOf = (m: Record<string, string>): CallFigures => {
        const key = m[o.instanceLabel] ?? 'unknown'
        let caller = callers.get(key)
        if (caller === undefined) callers.set(key, caller = { service: (o.serviceLabel === '' ? undefined : m[o.serviceLabel]) ?? 'unknown', calls: new Map() })
        const byLane = caller.calls
        const lane = m.lane ?? 'none'
        let c = byLane.get(lane)
        if (c === undefined) byLane.set(lane, c = { requests: 0, failures: 0 })
        return c
      }
      for (const s of callerRequests) callsOf(s.metric).requests += Number(s.value[1])
      for (const s of callerErrors) if (!CALLER_ABORTS.has(s.metric.error_type ?? '')) callsOf(s.metric).failures += Number(s.value[1])
      reading.callers = new Map([...callers].map(([key, c]) => [key, { key, ...c }]))
    }
    return reading
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
