// The comparer: each pair's differences (diff.ts), learned noise per service and route, and
// divergence per service, route and mirror lane, as counters and as a snapshot. Statistics are
// bounded (maxRoutes, maxFields); no body is kept once compare() returns, and none is logged.
//
// Learned noise, as Diffy measures it: two answers of the stable lane to the same request (the
// primary and a secondary) should agree; a field where they do not is noise to the extent it
// differs. A field that differs between the primary and the mirror is noise for the route when its
// primary-vs-secondary difference rate is at least its primary-vs-mirror rate minus `margin`; a
// field never seen differing between two stable answers is never noise.
import { badOption } from '@flowtag/errors'
import type { Attributes } from '@opentelemetry/api'
import type { ShadowAnswer, ShadowComparer, ShadowPair } from './contract.ts'
import { compileDeclared, diffAnswers, type DiffOptions } from './diff.ts'
import { errorCodes, PACKAGE, ShadowError } from './errors.ts'
import { createShadowMetrics, type ShadowMetrics } from './metrics.ts'
import { parseShadowOptions, type ShadowOptions, type ShadowOptionsInput } from './options.ts'

/** The route or field that stands for those past `maxRoutes` / `maxFields`. */
export const OTHER = '(other)'

/** One field of a route's report. */
export interface FieldCount {
  /** A JSON pointer with array indices as `*` (`/items/*\/price`), `status`, `header:<name>` or `body`. */
  field: string
  /** Judged pairs in which it differed beyond noise. */
  count: number
}

/** A field learned as noise: the share of secondary samples in which it differed from the primary. */
export interface NoiseField {
  field: string
  rate: number
}

export interface RouteReport {
  service: string
  route: string
  /** The mirror lane. */
  lane: string
  /** Pairs judged. */
  compared: number
  /** Judged pairs that differ beyond noise. */
  diverged: number
  /** `diverged / compared`, 0..1; 0 before any pair was judged. */
  divergence: number
  /** Pairs compared while the route was learning its noise (not judged). */
  learning: number
  /** Pairs with a body over the cap or truncated. */
  truncated: number
  /** Secondary answers the route's noise was learned from. */
  secondaries: number
  /** Fields that differed beyond noise, most first. */
  fields: FieldCount[]
  /** Fields learned as noise for the route, most noisy first. */
  noise: NoiseField[]
}

export interface ShadowReport {
  /** Routes, most diverging first (share, then count). */
  routes: RouteReport[]
}

export interface ReportOptions {
  /** Routes listed. @default 10 */
  top?: number
  /** Fields listed per route. @default 10 */
  fields?: number
}

/** A ShadowComparer with its snapshot. */
export interface ShadowCompare extends ShadowComparer {
  needsSecondary (service: string, route: string): boolean
  /** The top diverging routes with their fields and counts (no bodies). */
  report (options?: ReportOptions): ShadowReport
}

interface RouteStats {
  service: string
  route: string
  lane: string
  attributes: Attributes
  /** Pairs whose differences were counted (judged or learning). */
  seen: number
  compared: number
  diverged: number
  learning: number
  truncated: number
  /** Per field: pairs in which it differed between primary and mirror (beyond declared noise). */
  raw: Map<string, number>
  /** Per field: judged pairs in which it differed beyond noise. */
  flagged: Map<string, number>
}

interface NoiseStats {
  samples: number
  /** Per field: secondary samples in which it differed from the primary. */
  fields: Map<string, number>
}

function bump (m: Map<string, number>, key: string, max: number): string {
  const k = m.has(key) || m.size < max ? key : OTHER
  m.set(k, (m.get(k) ?? 0) + 1)
  return k
}

/** A pair that is not a ShadowPair is the sender's bug: a coded error naming the field. */
function badPair (field: string, problem: string): never {
  const b = badOption(PACKAGE, field, problem)
  throw new ShadowError(errorCodes.BAD_PAIR, `${PACKAGE}: invalid pair field "${field}": ${problem}`, b)
}

function checkAnswer (a: unknown, name: string): void {
  if (typeof a !== 'object' || a === null) badPair(name, 'expected an answer object')
  const x = a as ShadowAnswer
  if (!Number.isInteger(x.status)) badPair(`${name}.status`, 'expected an integer')
  if (typeof x.headers !== 'object' || x.headers === null) badPair(`${name}.headers`, 'expected an object')
  if (!Buffer.isBuffer(x.body)) badPair(`${name}.body`, 'expected a Buffer')
  if (typeof x.truncated !== 'boolean') badPair(`${name}.truncated`, 'expected a boolean')
}

function checkPair (p: ShadowPair): void {
  if (typeof p !== 'object' || p === null) badPair('pair', 'expected a ShadowPair object')
  for (const k of ['service', 'route', 'method', 'lane', 'primaryLane'] as const) {
    if (typeof p[k] !== 'string') badPair(k, 'expected a string')
  }
  checkAnswer(p.primary, 'primary')
  checkAnswer(p.mirror, 'mirror')
  if (p.secondary !== undefined) checkAnswer(p.secondary, 'secondary')
}

class Comparer implements ShadowCompare {
  readonly #o: ShadowOptions
  readonly #diff: DiffOptions
  readonly #metrics: ShadowMetrics
  readonly #routes = new Map<string, RouteStats>()
  readonly #noise = new Map<string, NoiseStats>()

  constructor (o: ShadowOptions) {
    this.#o = o
    this.#diff = { headers: o.headers, maxBodyBytes: o.maxBodyBytes, declared: compileDeclared(o.ignore, o.normalize), maxFields: o.maxFields }
    this.#metrics = createShadowMetrics(o.meter)
  }

  compare (pair: ShadowPair): void {
    checkPair(pair)
    const stats = this.#routeStats(pair)
    const noise = this.#noiseStats(pair.service, pair.route, true)!
    // with a secondary, the primary is diffed twice: parsed once
    const memo = pair.secondary !== undefined && this.#o.learn !== false ? new Map() : undefined
    if (memo !== undefined) {
      noise.samples++
      for (const f of diffAnswers(pair.primary, pair.secondary!, this.#diff, memo).fields) bump(noise.fields, f, this.#o.maxFields)
    }
    const d = diffAnswers(pair.primary, pair.mirror, this.#diff, memo)
    stats.seen++
    if (d.truncated) {
      stats.truncated++
      this.#metrics.truncated.add(1, stats.attributes)
    }
    const fields = d.fields.map((f) => bump(stats.raw, f, this.#o.maxFields))
    if (this.#o.learn !== false && noise.samples < this.#o.learn.samples) {
      stats.learning++
      this.#metrics.learning.add(1, stats.attributes)
      return
    }
    stats.compared++
    this.#metrics.compared.add(1, stats.attributes)
    const beyond = fields.filter((f) => !this.#isNoise(f, stats, noise))
    if (beyond.length === 0) return
    stats.diverged++
    this.#metrics.diverged.add(1, stats.attributes)
    for (const f of beyond) {
      const k = bump(stats.flagged, f, this.#o.maxFields)
      this.#metrics.differences.add(1, { ...stats.attributes, field: k })
    }
  }

  needsSecondary (service: string, route: string): boolean {
    const learn = this.#o.learn
    if (learn === false) return false
    if ((this.#noiseStats(service, route, false)?.samples ?? 0) < learn.samples) return true
    return Math.random() < learn.rate
  }

  report (options: ReportOptions = {}): ShadowReport {
    const top = options.top ?? 10
    const nFields = options.fields ?? 10
    const routes = [...this.#routes.values()].map((s): RouteReport => {
      const noise = this.#noiseStats(s.service, s.route, false)
      const noisy = noise === undefined
        ? []
        : [...noise.fields].filter(([f]) => this.#isNoise(f, s, noise)).map(([field, n]) => ({ field, rate: n / noise.samples }))
      return {
        service: s.service,
        route: s.route,
        lane: s.lane,
        compared: s.compared,
        diverged: s.diverged,
        divergence: s.compared === 0 ? 0 : s.diverged / s.compared,
        learning: s.learning,
        truncated: s.truncated,
        secondaries: noise?.samples ?? 0,
        fields: [...s.flagged].map(([field, count]) => ({ field, count })).sort((a, b) => b.count - a.count || (a.field < b.field ? -1 : 1)).slice(0, nFields),
        noise: noisy.sort((a, b) => b.rate - a.rate || (a.field < b.field ? -1 : 1)).slice(0, nFields)
      }
    })
    routes.sort((a, b) => b.divergence - a.divergence || b.diverged - a.diverged || b.compared - a.compared)
    return { routes: routes.slice(0, top) }
  }

  #isNoise (field: string, stats: RouteStats, noise: NoiseStats): boolean {
    if (this.#o.learn === false || noise.samples === 0) return false
    const n = noise.fields.get(field) ?? 0
    if (n === 0) return false
    return n / noise.samples >= (stats.raw.get(field) ?? 0) / Math.max(1, stats.seen) - this.#o.learn.margin
  }

  #routeStats (pair: ShadowPair): RouteStats {
    let key = `${pair.service}\u0000${pair.route}\u0000${pair.lane}`
    let route = pair.route
    if (!this.#routes.has(key) && this.#routes.size >= this.#o.maxRoutes) {
      route = OTHER
      key = `${pair.service}\u0000${OTHER}\u0000${pair.lane}`
    }
    let s = this.#routes.get(key)
    if (s === undefined) {
      s = { service: pair.service, route, lane: pair.lane, attributes: { service: pair.service, route, lane: pair.lane }, seen: 0, compared: 0, diverged: 0, learning: 0, truncated: 0, raw: new Map(), flagged: new Map() }
      this.#routes.set(key, s)
    }
    return s
  }

  #noiseStats (service: string, route: string, create: boolean): NoiseStats | undefined {
    let key = `${service}\u0000${route}`
    if (!this.#noise.has(key) && this.#noise.size >= this.#o.maxRoutes) key = `${service}\u0000${OTHER}`
    let n = this.#noise.get(key)
    if (n === undefined && create) {
      n = { samples: 0, fields: new Map() }
      this.#noise.set(key, n)
    }
    return n
  }
}

/**
 * A comparer of shadow pairs (the user's answer and the mirror lane's), for the mirror sender of
 * @flowtag/service or any other. `compare()` is synchronous and keeps no body; `needsSecondary()`
 * says when the sender should also fetch a second answer of the primary's lane (every pair until
 * the route has `learn.samples` of them, then `learn.rate` of pairs); `report()` is the snapshot.
 * Options: `headers` (compared, default none), `maxBodyBytes` (default 1 MiB), `ignore` and
 * `normalize` (declared noise, JSON-pointer patterns), `learn` (`{ samples: 20, rate: 0.05,
 * margin: 0.05 }` or `false`), `meter`, `maxRoutes` (1000), `maxFields` (100).
 * @throws {ShadowError} `FLOWTAG_SHADOW_BAD_OPTION` naming the field; `compare()` throws
 * `FLOWTAG_SHADOW_BAD_PAIR` naming the field of a pair that is not a ShadowPair.
 */
export function createShadowComparer (options: ShadowOptionsInput = {}): ShadowCompare {
  return new Comparer(parseShadowOptions(options))
}
