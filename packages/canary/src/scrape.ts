// Reads lane figures without Prometheus: the instances of a service come from Nacos discovery,
// each one's /metrics is scraped, and its server duration histogram summed per instance. The
// instance's lane is its `metadata.version` (the lane it serves), not the request's tag. The
// callers' instances are scraped too, for the calls to the service they saw fail.
import type { NamingDiscovery, Instance } from '@flowtag/nacos'
import { request } from 'undici'
import { combineFigures, MESSAGE_SERIES, messageFiguresFromSamples } from './messages.ts'
import { METRICS_PORT_METADATA, RPC_SERIES, rpcFiguresFromSamples } from './rpc.ts'
import { parsePrometheusText } from './prom-text.ts'
import { SHADOW_SERIES, shadowFromSamples, type ShadowReading } from './divergence.ts'
import { addInto, delta, emptyFigures, type Figures } from './window.ts'

/** One scrape of every instance of a service (and of its callers, when asked). */
export interface Reading {
  at: number
  instances: Map<string, InstanceReading>
  /** The callers' instances (key → what each saw of its calls to the service); absent when none were read. */
  callers?: Map<string, CallerReading>
  /**
   * The service's shadow pairs (@flowtag/shadow) as each process read counted them (the service's
   * instances and its callers', keyed as in `instances` and `callers`); absent when the source
   * does not read them.
   */
  shadow?: Map<string, ShadowReading>
}

export interface InstanceReading {
  key: string
  lane: string
  /** Undefined when the scrape failed (see `error`). */
  figures: Figures | undefined
  error?: string
  metadata: Record<string, string>
  /** When the instance's process started, seconds since the epoch (`flowtag_process_start_time`, or `process_start_time_seconds`); undefined when it does not say. */
  startTime?: number
}

/** Cumulative counts of one caller's calls to one lane of the service (`flowtag.outbound.*` of @flowtag/outbound). */
export interface CallFigures {
  requests: number
  /** Calls that got no answer (connection lost, timeout, no instance), the caller's own cancellations apart. */
  failures: number
}

export interface CallerReading {
  key: string
  /** The caller's service name. */
  service: string
  /** By lane of the called instance; undefined when the caller could not be read (see `error`). */
  calls: Map<string, CallFigures> | undefined
  error?: string
  startTime?: number
}

export interface ReadOptions {
  /** Services whose outbound metrics count failed calls to the service's lanes. @default none */
  callers?: readonly string[]
}

/** Where lane figures come from: scraping (default) or anything else that reads the same. */
export interface MetricsSource {
  read (service: string, options?: ReadOptions): Promise<Reading>
}

/** Routes that are no lane's traffic by default: the scrapes and the Kubernetes probes. */
export const DEFAULT_EXCLUDED_ROUTES: readonly string[] = ['/metrics', '/health', '/ready']

const HISTOGRAM = /^http_server_request_duration(?:_seconds)?_(bucket|count|sum)$/
const START_TIME = /^flowtag_process_start_time(?:_seconds)?$/
const OUTBOUND = /^flowtag_outbound_(requests|errors)(?:_total)?$/
/** The caller gave up itself (its own client went away): not a failure of the called lane. */
export const CALLER_ABORTS: ReadonlySet<string> = new Set(['UND_ERR_ABORTED', 'AbortError'])

/**
 * Sum one instance's `http.server.request.duration` series into its figures; series of a route in
 * `exclude` (the scrapes themselves, the probes) are left out: they are no lane's traffic. A
 * message consumer's `messaging.process.duration` series (@flowtag/mq) add to them: processed
 * messages as requests, failed ones as server errors.
 */
export function figuresFromText (text: string, exclude: ReadonlySet<string> = new Set()): Figures {
  return figuresFromSamples(parsePrometheusText(text, ['http_server_request_duration', MESSAGE_SERIES, RPC_SERIES]), exclude)
}

function figuresFromSamples (samples: ReturnType<typeof parsePrometheusText>, exclude: ReadonlySet<string>): Figures {
  return combineFigures(combineFigures(httpFiguresFromSamples(samples, exclude), messageFiguresFromSamples(samples)), rpcFiguresFromSamples(samples))
}

function httpFiguresFromSamples (samples: ReturnType<typeof parsePrometheusText>, exclude: ReadonlySet<string>): Figures {
  const f = emptyFigures()
  const buckets = new Map<number, number>()
  for (const s of samples) {
    const m = HISTOGRAM.exec(s.name)
    if (m === null) continue
    const route = s.labels.http_route
    if (route !== undefined && exclude.has(route)) continue
    if (m[1] === 'bucket') {
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le)
      buckets.set(le, (buckets.get(le) ?? 0) + s.value)
    } else if (m[1] === 'sum') f.seconds += s.value
    else {
      f.requests += s.value
      if (s.labels.error_type === 'aborted') f.networkErrors += s.value
      else if (Number(s.labels.http_response_status_code) >= 500) f.serverErrors += s.value
    }
  }
  f.buckets = [...buckets].sort((a, b) => a[0] - b[0])
  return f
}

/** The process start time an instance exports (flowtag's gauge first, else the Prometheus client's standard one). */
export function startTimeFromText (text: string): number | undefined {
  return startTimeFromSamples(parsePrometheusText(text, ['flowtag_process_start_time', 'process_start_time_seconds']))
}

function startTimeFromSamples (samples: ReturnType<typeof parsePrometheusText>): number | undefined {
  let standard: number | undefined
  for (const s of samples) {
    if (START_TIME.test(s.name)) return s.value
    if (s.name === 'process_start_time_seconds') standard = s.value
  }
  return standard
}

/** One caller's calls to `service`, by the called instance's lane (`flowtag_outbound_requests/errors`). */
function callsFromSamples (samples: ReturnType<typeof parsePrometheusText>, service: string): Map<string, CallFigures> {
  const calls = new Map<string, CallFigures>()
  for (const s of samples) {
    const m = OUTBOUND.exec(s.name)
    if (m === null || s.labels.service !== service) continue
    const lane = s.labels.lane ?? 'none'
    let c = calls.get(lane)
    if (c === undefined) calls.set(lane, (c = { requests: 0, failures: 0 }))
    if (m[1] === 'requests') c.requests += s.value
    else if (!CALLER_ABORTS.has(s.labels.error_type ?? '')) c.failures += s.value
  }
  return calls
}

export interface ScrapeOptions {
  discovery: NamingDiscovery
  /** @default '/metrics' */
  metricsPath?: string
  /** Routes whose requests are no lane's traffic (besides `metricsPath`). @default ['/health', '/ready'] */
  excludeRoutes?: readonly string[]
  /** Per instance. @default 2000 */
  timeoutMs?: number
}

/** Scrapes every instance of the service (and of its callers, when asked) found through discovery, in parallel. */
export class ScrapeSource implements MetricsSource {
  readonly #discovery: NamingDiscovery
  readonly #path: string
  readonly #exclude: ReadonlySet<string>
  readonly #timeoutMs: number

  constructor (options: ScrapeOptions) {
    this.#discovery = options.discovery
    this.#path = options.metricsPath ?? '/metrics'
    this.#exclude = new Set([this.#path, ...(options.excludeRoutes ?? ['/health', '/ready'])])
    this.#timeoutMs = options.timeoutMs ?? 2000
  }

  async read (service: string, options: ReadOptions = {}): Promise<Reading> {
    const callerServices = (options.callers ?? []).filter((s) => s !== service)
    const [list, callerLists] = await Promise.all([
      this.#discovery.instances(service),
      Promise.all(callerServices.map(async (s) => ({ service: s, list: await this.#discovery.instances(s) })))
    ])
    const at = Date.now()
    const [entries, callers] = await Promise.all([
      Promise.all(list.map((i) => this.#scrape(i, service))),
      Promise.all(callerLists.flatMap(({ service: caller, list }) => list.map((i) => this.#scrapeCaller(i, caller, service))))
    ])
    const reading: Reading = { at, instances: new Map(entries.map(([e]) => [e.key, e])), shadow: new Map([...entries, ...callers].map(([, s]) => [s.key, s])) }
    if (callerServices.length > 0) reading.callers = new Map(callers.map(([c]) => [c.key, c]))
    return reading
  }

  async #text (i: Instance): Promise<string> {
    const host = i.ip.includes(':') ? `[${i.ip}]` : i.ip
    // A gRPC instance names the port of its /metrics (its own port speaks HTTP/2 gRPC only).
    const port = Number(i.metadata[METRICS_PORT_METADATA] ?? i.port)
    const res = await request(`http://${host}:${Number.isInteger(port) && port > 0 && port < 65536 ? port : i.port}${this.#path}`, {
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs
    })
    const text = await res.body.text()
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`)
    return text
  }

  async #scrape (i: Instance, service: string): Promise<[InstanceReading, ShadowReading]> {
    const key = `${i.ip}:${i.port}`
    const base = { key, lane: i.metadata.version ?? 'none', metadata: i.metadata }
    try {
      const samples = parsePrometheusText(await this.#text(i), ['http_server_request_duration', MESSAGE_SERIES, RPC_SERIES, SHADOW_SERIES, 'flowtag_process_start_time', 'process_start_time_seconds'])
      const startTime = startTimeFromSamples(samples)
      const start = startTime === undefined ? {} : { startTime }
      return [{ ...base, figures: figuresFromSamples(samples, this.#exclude), ...start }, { key, lanes: shadowFromSamples(samples, service), ...start }]
    } catch (err) {
      return [{ ...base, figures: undefined, error: (err as Error).message }, { key, lanes: undefined }]
    }
  }

  async #scrapeCaller (i: Instance, caller: string, service: string): Promise<[CallerReading, ShadowReading]> {
    const key = `${caller}@${i.ip}:${i.port}`
    try {
      const samples = parsePrometheusText(await this.#text(i), ['flowtag_outbound_', SHADOW_SERIES, 'flowtag_process_start_time', 'process_start_time_seconds'])
      const startTime = startTimeFromSamples(samples)
      const start = startTime === undefined ? {} : { startTime }
      return [{ key, service: caller, calls: callsFromSamples(samples, service), ...start }, { key, lanes: shadowFromSamples(samples, service), ...start }]
    } catch (err) {
      return [{ key, service: caller, calls: undefined, error: (err as Error).message }, { key, lanes: undefined }]
    }
  }
}

/**
 * Per-lane figures between two readings: each instance's difference, summed by lane. An instance
 * missing from `before` counts from zero; a counter that went down counts from zero. Good for the
 * live series; a step's window is a WindowTracker's, which sees restarts and gaps.
 */
export function laneWindow (now: Reading, before: Reading | undefined): Map<string, Figures> {
  const lanes = new Map<string, Figures>()
  for (const i of now.instances.values()) {
    if (i.figures === undefined) continue
    const prev = before?.instances.get(i.key)?.figures
    let f = lanes.get(i.lane)
    if (f === undefined) lanes.set(i.lane, (f = emptyFigures()))
    addInto(f, delta(i.figures, prev))
  }
  return lanes
}
