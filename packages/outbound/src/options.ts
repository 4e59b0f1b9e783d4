// Options of the dispatcher: the zod schema is the source of truth, parsed once at construction.
import { z } from 'zod'
import type { Meter } from '@opentelemetry/api'
import type { Discovery } from './discovery.ts'
import type { PoolFactory } from './instance-pool.ts'
import { badOption, describeBadOption } from '@flowtag/errors'
import { errorCodes, OutboundError } from './errors.ts'
import { retryBudgetSchema, servicePoliciesSchema, warmupSchema } from './policies.ts'
import { shadowGuardSchema } from './shadow-guard.ts'

const PKG = '@flowtag/outbound'

import type { LanesResolver } from './lanes.ts'

export type { LaneConfig, LanesResolver } from './lanes.ts'

/** Where ejections and readmissions are logged: pino, Fastify's `request.log`/`app.log` and console fit. */
export interface OutboundLogger {
  warn(obj: object, msg: string): void
  info(obj: object, msg: string): void
}

/** Default logger: ejections to stderr (they must never pass silently), readmissions not at all. */
export const stderrLogger: OutboundLogger = {
  warn: (obj, msg) => console.warn(`@flowtag/outbound: ${msg}`, JSON.stringify(obj)),
  info: () => {}
}

const isLogger = (v: unknown): v is OutboundLogger =>
  typeof v === 'object' && v !== null && typeof (v as OutboundLogger).warn === 'function' && typeof (v as OutboundLogger).info === 'function'

const ms = (max: number) => z.number().int().min(1).max(max)

const discoverySchema = z.custom<Discovery>(
  (v) => typeof v === 'object' && v !== null && typeof (v as Discovery).instances === 'function' && typeof (v as Discovery).subscribe === 'function',
  { message: 'expected a Discovery (an object with instances() and subscribe())' }
)

const meterSchema = z.custom<Meter>(
  (v) => typeof v === 'object' && v !== null && typeof (v as Meter).createCounter === 'function' && typeof (v as Meter).createHistogram === 'function',
  { message: 'expected an OpenTelemetry Meter' }
)

export const outboundOptionsSchema = z.strictObject({
  /** Where service names are resolved; read from its cache, never per request from the registry. */
  discovery: discoverySchema,
  /** Instance metadata key that holds an instance's lane. */
  labelKey: z.string().min(1).default('version'),
  /** Lane of untagged traffic and fallback lane, unless `lanes()` says otherwise for a service. */
  stableLane: z.string().min(1).default('stable'),
  /** Default for services `lanes()` says nothing about: fail instead of falling back to stable. */
  strict: z.boolean().default(false),
  /** Per-service lane configuration, called on every request (keep it cheap: read a cached RuleSet). */
  lanes: z.custom<LanesResolver>((v) => typeof v === 'function', { message: 'expected a function (service) => LaneConfig | undefined' }).optional(),
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
  outlier: z
    .strictObject({
      /** Consecutive connection-level failures that eject an instance. */
      consecutiveFailures: z.number().int().min(1).max(1000).default(5),
      /** Ejection time is baseEjectionMs × times ejected, capped by maxEjectionMs. */
      baseEjectionMs: ms(3_600_000).default(30_000),
      maxEjectionMs: ms(3_600_000).default(300_000),
      /** At most this share of a service's instances is ejected at once (at least one when > 0). */
      maxEjectionPercent: z.number().min(0).max(100).default(50),
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
  logger: z.custom<OutboundLogger>(isLogger, { message: 'expected a logger with warn() and info()' }).default(stderrLogger),
  /**
   * Writes `x-flow-tag` as this function's answer for the flow's lane (e.g. a signed token from
   * @flowtag/context's `signTag`), so services that trust only signed tags honour the hop.
   * Called per request: keep it cheap (cache per lane). The baggage lane member stays plain.
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
export type ResolvedOptions = z.output<typeof outboundOptionsSchema>

export function parseOptions (input: unknown): ResolvedOptions {
  const result = outboundOptionsSchema.safeParse(input)
  if (!result.success) {
    const bad = describeBadOption(PKG, result.error, { schema: outboundOptionsSchema })
    throw new OutboundError(errorCodes.BAD_OPTION, bad.message, '', undefined, bad)
  }
  const opts = result.data
  if (opts.outlier.maxEjectionMs < opts.outlier.baseEjectionMs) {
    const bad = badOption(PKG, 'outlier.maxEjectionMs', 'must be >= outlier.baseEjectionMs')
    throw new OutboundError(errorCodes.BAD_OPTION, bad.message, '', undefined, bad)
  }
  return opts
}
