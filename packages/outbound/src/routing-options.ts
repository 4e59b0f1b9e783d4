// The lane-routing contract every transport shares, as zod schemas: the HTTP dispatcher
// (options.ts), the gRPC client (@flowtag/grpc) and the message consumers (@flowtag/mq) extend
// `laneRoutingSchema`, so a field means the same everywhere and one object (the preset's
// `routing`) configures them all. Exported at `@flowtag/outbound/lanes`.
import { emitWarning } from 'node:process'
import { z } from 'zod'
import { badOption, type BadOption } from '@flowtag/errors'
import { signingOptionsSchema } from '@flowtag/context'
import type { Discovery } from './discovery.ts'
import type { LanesResolver } from './lanes.ts'

/** An integer number of milliseconds in 1..max. */
export const ms = (max: number) => z.number().int().min(1).max(max)

/** A Discovery: an object with `instances()` and `subscribe()` (the @flowtag/nacos naming client fits). */
export const discoverySchema = z.custom<Discovery>(
  (v) => typeof v === 'object' && v !== null && typeof (v as Discovery).instances === 'function' && typeof (v as Discovery).subscribe === 'function',
  { message: 'expected a Discovery (an object with instances() and subscribe())' }
)

/** `(service) => LaneConfig | undefined`: a service's lanes, e.g. `(s) => serviceLanes(store.compiled, s)`. */
export const lanesResolverSchema = z.custom<LanesResolver>((v) => typeof v === 'function', { message: 'expected a function (service) => LaneConfig | undefined' })

/**
 * Where instances come from and which lane a call or message goes to, for every transport:
 * `{ discovery, labelKey?, stableLane?, strict?, lanes?, signing? }`. The transports extend it
 * (`.extend({...})`) with their own fields.
 */
export const laneRoutingSchema = z.strictObject({
  /** Where service names are resolved; read from its cache, never per call from the registry. */
  discovery: discoverySchema,
  /** Instance metadata key that holds an instance's lane. @default 'version' */
  labelKey: z.string().min(1).default('version'),
  /** Lane of untagged traffic and fallback lane, unless `lanes()` says otherwise for a service. @default 'stable' */
  stableLane: z.string().min(1).default('stable'),
  /** Default for services `lanes()` says nothing about: no fallback to the stable lane. @default false */
  strict: z.boolean().default(false),
  /** Per-service lane configuration, called per call or message (keep it cheap: read a cached RuleSet). */
  lanes: lanesResolverSchema.optional(),
  /**
   * Sign the lane (`x-flow-tag: <lane>~<exp>~<kid>~<sig>`) on every hop, for services that honour
   * only signed tags: `{ keys, ttlSeconds? }` (@flowtag/context's `SigningOptions`; the first key
   * signs). A message consumer honours only tags signed with these keys (unless `trust` is set).
   */
  signing: signingOptionsSchema.optional()
})

/** The options every transport's routing shares (see {@link laneRoutingSchema}). */
export type LaneRoutingOptions = z.input<typeof laneRoutingSchema>

/** Outlier detection as HTTP and gRPC share it; each transport says what a failure is (and may extend it). */
export const outlierSchema = z.strictObject({
  /** Consecutive failures (connection-level for HTTP, UNAVAILABLE for gRPC) that eject an instance. @default 5 */
  consecutiveFailures: z.number().int().min(1).max(1000).default(5),
  /** Ejection time is baseEjectionMs × times ejected, capped by maxEjectionMs. @default 30000 */
  baseEjectionMs: ms(3_600_000).default(30_000),
  /** @default 300000 */
  maxEjectionMs: ms(3_600_000).default(300_000),
  /** At most this share of a service's instances is ejected at once (at least one when > 0). @default 50 */
  maxEjectionPercent: z.number().min(0).max(100).default(50)
})

/** The check zod cannot do field by field: `outlier.maxEjectionMs` must be ≥ `outlier.baseEjectionMs`. */
export function ejectionProblem (pkg: string, outlier: { baseEjectionMs: number, maxEjectionMs: number }): BadOption | undefined {
  return outlier.maxEjectionMs < outlier.baseEjectionMs ? badOption(pkg, 'outlier.maxEjectionMs', 'must be >= outlier.baseEjectionMs') : undefined
}

/** Where ejections and readmissions are logged: pino, Fastify's `request.log`/`app.log` and console fit. */
export interface RoutingLogger {
  warn(obj: object, msg: string): void
  info(obj: object, msg: string): void
}

/** The default logger of `pkg`: ejections to stderr (they must never pass silently), readmissions not at all. */
export function stderrLoggerOf (pkg: string): RoutingLogger {
  return {
    warn: (obj, msg) => console.warn(`${pkg}: ${msg}`, JSON.stringify(obj)),
    info: () => {}
  }
}

/** A `logger` option: an object with `warn()` and `info()`. */
export const routingLoggerSchema = z.custom<RoutingLogger>(
  (v) => typeof v === 'object' && v !== null && typeof (v as RoutingLogger).warn === 'function' && typeof (v as RoutingLogger).info === 'function',
  { message: 'expected a logger with warn() and info()' }
)

const warned = new Set<string>()

/**
 * Warn once per process that `pkg`'s option `field` is deprecated for `instead`: a Node
 * `DeprecationWarning` with code `FLOWTAG_DEP_<FIELD>` (silenced by `--no-deprecation`).
 */
export function warnDeprecatedOption (pkg: string, field: string, instead: string): void {
  const key = `${pkg}:${field}`
  if (warned.has(key)) return
  warned.add(key)
  emitWarning(`${pkg}: option "${field}" is deprecated; use ${instead}`, { type: 'DeprecationWarning', code: `FLOWTAG_DEP_${field.toUpperCase()}` })
}
