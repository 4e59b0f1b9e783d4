// `flowtag shadow report`: the top diverging routes, read from the /metrics of the processes that
// compare shadow pairs (@flowtag/shadow's counters through the preset's Prometheus endpoint, or
// any OTel Prometheus exporter). The counters of every process read are summed per service,
// route and mirror lane; fields (JSON pointers, `status`, `header:<name>`, `body`) per route.
import type { Instance } from '@flowtag/nacos'
import { request } from 'undici'
import { parsePrometheusText, type Sample } from './prom-text.ts'
import { SHADOW_SERIES } from './divergence.ts'
import { METRICS_PORT_METADATA } from './rpc.ts'

const COUNTER = /^flowtag_shadow_(compared|diverged|learning|truncated|differences)(?:_total)?$/

/** One route's figures, summed over the processes read. */
export interface ShadowRouteFigures {
  service: string
  route: string
  /** The mirror lane. */
  lane: string
  compared: number
  diverged: number
  /** `diverged / compared` (0..1); 0 before any pair was judged. */
  divergence: number
  learning: number
  truncated: number
  /** Fields that differed beyond noise, most first: judged pairs in which each did. */
  fields: Array<{ field: string, count: number }>
}

/**
 * The routes of the shadow counters in `texts` (Prometheus text of one or more processes), most
 * diverging first (share, then count), at most `top`, each with at most `fields` fields.
 */
export function shadowReportFromTexts (texts: readonly string[], options: { top?: number, fields?: number, service?: string } = {}): ShadowRouteFigures[] {
  const samples: Sample[] = texts.flatMap((t) => parsePrometheusText(t, [SHADOW_SERIES]))
  const routes = new Map<string, ShadowRouteFigures & { byField: Map<string, number> }>()
  for (const s of samples) {
    const m = COUNTER.exec(s.name)
    const service = s.labels.service
    const route = s.labels.route
    const lane = s.labels.lane
    if (m === null || service === undefined || route === undefined || lane === undefined) continue
    if (options.service !== undefined && service !== options.service) continue
    const key = JSON.stringify([service, route, lane])
    let r = routes.get(key)
    if (r === undefined) routes.set(key, r = { service, route, lane, compared: 0, diverged: 0, divergence: 0, learning: 0, truncated: 0, fields: [], byField: new Map() })
    const what = m[1] as 'compared' | 'diverged' | 'learning' | 'truncated' | 'differences'
    if (what === 'differences') {
      const field = s.labels.field ?? '(unknown)'
      r.byField.set(field, (r.byField.get(field) ?? 0) + s.value)
    } else r[what] += s.value
  }
  const nFields = options.fields ?? 5
  const out = [...routes.values()].map(({ byField, ...r }) => ({
    ...r,
    divergence: r.compared > 0 ? r.diverged / r.compared : 0,
    fields: [...byField].map(([field, count]) => ({ field, count })).sort((a, b) => b.count - a.count || (a.field < b.field ? -1 : 1)).slice(0, nFields)
  }))
  out.sort((a, b) => b.divergence - a.divergence || b.diverged - a.diverged || b.compared - a.compared)
  return out.slice(0, options.top ?? 10)
}

/** Where the report's processes are found: Nacos naming (`NacosClient.naming`), or any discovery. */
export interface ShadowInstances {
  instances (service: string): Promise<Instance[]>
}

export interface ReadShadowReportOptions {
  /** Services whose every instance's /metrics is read (the ones that compare pairs: the edge, the callers). */
  services?: readonly string[]
  /** Metrics URLs read as well (the CLI's `--url`). */
  urls?: readonly string[]
  /** @default '/metrics' */
  metricsPath?: string
  /** Only pairs of this compared service (`--for`). */
  service?: string
  /** Routes at most. @default 10 */
  top?: number
  /** Fields per route at most. @default 5 */
  fields?: number
  /** Per process, ms. @default 5000 */
  timeoutMs?: number
}

/** What `readShadowReport` read: the routes, and how many of the processes it could read. */
export interface ShadowReport {
  routes: ShadowRouteFigures[]
  /** Processes read. */
  read: number
  /** Processes asked (the services' instances and the `urls`). */
  of: number
  /** One line per process left out (`<url> answered HTTP 503`, `<url> could not be read (...)`). */
  skipped: string[]
}

/**
 * The shadow report of `flowtag shadow report` and the dashboard's page of diverging routes: the
 * /metrics of every instance of `services` (at its `flowtag.metrics.port` when it names one) and
 * of `urls`, read in parallel and summed by `shadowReportFromTexts`. A process that cannot be read
 * is left out and named in `skipped`; never throws for one.
 */
export async function readShadowReport (naming: ShadowInstances, options: ReadShadowReportOptions = {}): Promise<ShadowReport> {
  const path = options.metricsPath ?? '/metrics'
  const urls = [...(options.urls ?? [])]
  const lists = await Promise.all((options.services ?? []).map((s) => naming.instances(s)))
  for (const i of lists.flat()) {
    const host = i.ip.includes(':') ? `[${i.ip}]` : i.ip
    const port = Number(i.metadata[METRICS_PORT_METADATA] ?? i.port)
    urls.push(`http://${host}:${Number.isInteger(port) && port > 0 && port < 65536 ? port : i.port}${path}`)
  }
  const skipped: string[] = []
  const timeout = options.timeoutMs ?? 5000
  const texts = (await Promise.all(urls.map(async (url) => {
    try {
      const res = await request(url, { headersTimeout: timeout, bodyTimeout: timeout })
      const text = await res.body.text()
      if (res.statusCode === 200) return text
      skipped.push(`${url} answered HTTP ${res.statusCode}`)
    } catch (err) {
      skipped.push(`${url} could not be read (${(err as Error).message})`)
    }
    return undefined
  }))).filter((t) => t !== undefined)
  const routes = shadowReportFromTexts(texts, {
    ...(options.top === undefined ? {} : { top: options.top }),
    ...(options.fields === undefined ? {} : { fields: options.fields }),
    ...(options.service === undefined ? {} : { service: options.service })
  })
  return { routes, read: texts.length, of: urls.length, skipped }
}

/** The report as the CLI prints it: one line per route, its top fields indented below. */
export function shadowReportText (routes: readonly ShadowRouteFigures[]): string {
  if (routes.length === 0) return 'no shadow pairs compared (no flowtag_shadow_* counters in the metrics read)'
  const lines = ['SERVICE            ROUTE                          LANE    COMPARED  DIVERGED  SHARE   LEARNING']
  for (const r of routes) {
    lines.push(`${r.service.padEnd(18)} ${r.route.padEnd(30)} ${r.lane.padEnd(7)} ${String(r.compared).padStart(8)}  ${String(r.diverged).padStart(8)}  ${`${(r.divergence * 100).toFixed(1)}%`.padStart(6)}  ${String(r.learning).padStart(8)}`)
    for (const f of r.fields) lines.push(`    ${f.field}  ${f.count}`)
  }
  return lines.join('\n')
}
