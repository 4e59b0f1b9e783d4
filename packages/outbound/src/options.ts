// Options of the dispatcher: the zod schema is the source of truth, parsed once at construction.
// The lane-routing fields are the shared contract of routing-options.ts; the rest is HTTP's own.
import { z } from 'zod'
import type { Meter } from '@opentelemetry/api'
import { laneSigner } from '@flowtag/context'
import type { PoolFactory } from './instance-pool.ts'
import { badOption, describeBadOption } from '@flowtag/errors'
import { errorCodes, OutboundError } from './errors.ts'
import { retryBudgetSchema, servicePoliciesSchema, warmupSchema } from './policies.ts'
import { shadowGuardSchema } from './shadow-guard.ts'
import { ejectionProblem, laneRoutingSchema, ms, outlierSchema, routingLoggerSchema, stderrLoggerOf, warnDeprecatedOption, type RoutingLogger } from './routing-options.ts'

const PKG = '@flowtag/outbound'

export type { LaneConfig, LanesResolver } from './lanes.ts'

/** Where ejections and readmissions are logged: pino, Fastify's `request.log`/`app.log` and console fit. */
export type OutboundLogger = RoutingLogger

/** Default logger: ejections to stderr (they must never pass silently), readmissions not at all. */
export const stderrLogger: OutboundLogger = stderrLoggerOf(PKG)

const meterSchema = z.custom<Meter>(
  (v) => typeof v === 'object' && v !== null && typeof (v as Meter).createCounter === 'function' && typeof (v as Meter).createHistogram === 'function',
  { message: 'expected an OpenTelemetry Meter' }
)

/**
 * The dispatcher's options: the shared lane routing (`discovery`, `labelKey`, `stableLane`,
 * `strict`, `lanes`, `signing`: `laneRoutingSchema` of `@flowtag/outbound/lanes`) and HTTP's own.
 */
export const outboundOptionsSchema = laneRoutingSchema.extend({
  /** Retries of connection-level failures, each on another instance, for idempotent replayable requests. */
  maxRetries: z.number().int().min(0).max(10).default(1),
  /**
   * Send an idempotent, replayable request once more, on a fresh connection to the same instance,
   * when a kept-alive connection was closed under it before any answer and no other instance is
   * left to try. Independent of maxRetries: the instance did not fail, the connection had aged.
   */
  staleRetry: z.boolean().default(true),
  /**
   * Warm-up of new instances: a new instance's weight ramps from minWeightPercent to full over
   * windowMs (Envoy's slow start curve), counted from its published start time or from when
   * this dispatcher saw it arrive, whichever is later. `false`: off.
   */
  warmup: warmupSchema,
  /**
   * Retry budget per service and lane: retries are sent only while they stay under `percent` of
   * the requests of the last `intervalMs` (or `minRetriesPerSecond`, whichever allows more).
   * `false`: off (only maxRetries bounds retries).
   */
  retryBudget: retryBudgetSchema,
  /** Per service name: its own `warmup` and `retryBudget` settings over the two above. */
  services: servicePoliciesSchema,
  /** Outlier detection: consecutive connection-level failures eject an instance. */
  outlier: outlierSchema
    .extend({
      /**
       * Count 5xx answers as failures too (Envoy's consecutive_5xx). Off by default: a 503 often
       * means the instance's own upstream is missing, not that the instance is bad.
       */
      count5xx: z.boolean().default(false)
    })
    .prefault({}),
  /** TCP connect timeout per attempt. */
  connectTimeout: ms(600_000).default(2_000),
  /** Time to wait for the response headers. */
  headersTimeout: ms(3_600_000).default(30_000),
  /** Time allowed between two body chunks. */
  bodyTimeout: ms(3_600_000).default(30_000),
  /** Idle keep-alive time of pooled connections. */
  keepAliveTimeout: ms(3_600_000).default(4_000),
  /** Connections per instance (undici Pool `connections`); null = unlimited. */
  connections: z.number().int().min(1).max(65_536).nullable().default(null),
  /**
   * Creates the dispatcher of one instance, like undici Agent's `factory`: called with the
   * instance's origin (`http://ip:port`) and the pool options above, once per instance on its
   * first pick, and once per stale-connection retry with `connections: 1`. Default: an undici 8
   * `Pool` (a `Client` for stale-connection retries). Any undici ≥ 7 `Pool`/`Client` fits.
   */
  factory: z.custom<PoolFactory>((v) => typeof v === 'function', { message: 'expected a function (origin, options) => Dispatcher' }).optional(),
  /** Meter for the request, error and duration instruments (default: the global MeterProvider's). */
  meter: meterSchema.optional(),
  /** Where ejections (warn) and readmissions (info) are logged; default: ejections to stderr. */
  logger: routingLoggerSchema.default(stderrLogger),
  /**
   * @deprecated Use `signing: { keys, ttlSeconds }`. Writes `x-flow-tag` as this function's
   * answer for the flow's lane; called per request (cache per lane). Not with `signing`.
   */
  signTag: z.custom<(lane: string) => string>((v) => typeof v === 'function', { message: 'expected a function (lane) => string' }).optional(),
  /**
   * Inside a shadow flow (a mirrored copy) only GET, HEAD, OPTIONS and TRACE are sent, plus PUT
   * and DELETE when listed in `allowMethods`; any other method fails with
   * `FLOWTAG_SHADOW_WRITE_REFUSED`, or goes to `sink` when one is set.
   */
  shadow: shadowGuardSchema
})

export type OutboundOptions = z.input<typeof outboundOptionsSchema>
/** The parsed options; `signTag` is the signer in force (from `signing`, or the deprecated `signTag`). */
export type ResolvedOptions = z.output<typeof outboundOptionsSchema>

export function parseOptions (input: unknown): ResolvedOptions {
  const result = outboundOptionsSchema.safeParse(input)
  if (!result.success) {
    const bad = describeBadOption(PKG, result.error, { schema: outboundOptionsSchema })
    throw new OutboundError(errorCodes.BAD_OPTION, bad.message, '', undefined, bad)
  }
  const opts = result.data
  const bad = ejectionProblem(PKG, opts.outlier) ??
    (opts.signing !== undefined && opts.signTag !== undefined ? badOption(PKG, 'signTag', 'give signing or signTag (deprecated), not both') : undefined)
  if (bad !== undefined) throw new OutboundError(errorCodes.BAD_OPTION, bad.message, '', undefined, bad)
  if (opts.signTag !== undefined) warnDeprecatedOption(PKG, 'signTag', 'signing: { keys, ttlSeconds }')
  else if (opts.signing !== undefined) opts.signTag = laneSigner(opts.signing)
  return opts
}
