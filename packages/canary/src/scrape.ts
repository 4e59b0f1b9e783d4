// Reads lane figures without Prometheus: the instances of a service come from Nacos discovery,
// each one's /metrics is scraped, and its server duration histogram summed per instance. The
// instance's lane is its `metadata.version` (the lane it serves), not the request's tag.
import type { Discovery, Instance } from '@flowtag/nacos'
import { request } from 'undici'
import { parsePrometheusText } from './prom-text.ts'
import { addInto, delta, emptyFigures, type Figures } from './window.ts'

/** One scrape of every instance of a service. */
export interface Reading {
  at: number
  instances: Map<string, InstanceReading>
}

export interface InstanceReading {
  key: string
  lane: string
  /** Undefined when the scrape failed (see `error`). */
  figures: Figures | undefined
  error?: string
  metadata: Record<string, string>
}

/** Where lane figures come from: scraping (default) or anything else that reads the same. */
export interface MetricsSource {
  read (service: string): Promise<Reading>
}

const HISTOGRAM = /^http_server_request_duration(?:_seconds)?_(bucket|count|sum)$/

/** Sum one instance's `http.server.request.duration` series into its figures. */
export function figuresFromText (text: string): Figures {
  const f = emptyFigures()
  const buckets = new Map<number, number>()
  for (const s of parsePrometheusText(text, ['http_server_request_duration'])) {
    const m = HISTOGRAM.exec(s.name)
    if (m === null) continue
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

export interface ScrapeOptions {
  discovery: Discovery
  /** @default '/metrics' */
  metricsPath?: string
  /** Per instance. @default 2000 */
  timeoutMs?: number
}

/** Scrapes every instance of the service found through discovery, in parallel. */
export class ScrapeSource implements MetricsSource {
  readonly #discovery: Discovery
  readonly #path: string
  readonly #timeoutMs: number

  constructor (options: ScrapeOptions) {
    this.#discovery = options.discovery
    this.#path = options.metricsPath ?? '/metrics'
    this.#timeoutMs = options.timeoutMs ?? 2000
  }

  async read (service: string): Promise<Reading> {
    const list = await this.#discovery.instances(service)
    const at = Date.now()
    const entries = await Promise.all(list.map((i) => this.#scrape(i)))
    return { at, instances: new Map(entries.map((e) => [e.key, e])) }
  }

  async #scrape (i: Instance): Promise<InstanceReading> {
    const key = `${i.ip}:${i.port}`
    const base = { key, lane: i.metadata.version ?? 'none', metadata: i.metadata }
    try {
      const host = i.ip.includes(':') ? `[${i.ip}]` : i.ip
      const res = await request(`http://${host}:${i.port}${this.#path}`, {
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs
      })
      const text = await res.body.text()
      if (res.statusCode !== 200) return { ...base, figures: undefined, error: `HTTP ${res.statusCode}` }
      return { ...base, figures: figuresFromText(text) }
    } catch (err) {
      return { ...base, figures: undefined, error: (err as Error).message }
    }
  }
}

/**
 * Per-lane figures of the window between two readings: each instance's difference (reset-aware),
 * summed by lane. An instance missing from `before` counts from zero (it started in the window).
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
