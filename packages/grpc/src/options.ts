// Options of FlowTagGrpc (the client side): the zod schema is the source of truth, parsed once.
// The lane-routing fields are @flowtag/outbound's shared `laneRoutingSchema`; the rest is gRPC's own.
import { z } from 'zod'
import { badOption, describeBadOption } from '@flowtag/errors'
import type { Meter } from '@opentelemetry/api'
import type { SigningKey } from '@flowtag/context'
import {
  ejectionProblem, laneRoutingSchema, outlierSchema, retryBudgetSchema, routingLoggerSchema, servicePoliciesSchema, stderrLoggerOf, warmupSchema, warnDeprecatedOption,
  type RoutingLogger
} from '@flowtag/outbound/lanes'
import { errorCodes, GrpcError } from './errors.ts'

const PKG = '@flowtag/grpc'

/** A unary method of a service definition (`InventoryService.check`, `Client.service.Check`). */
const unaryMethodSchema = z.object({
  path: z.string().regex(/^\/[^/\s]+\/[^/\s]+$/, { message: 'expected a method path like "/package.Service/Method"' }),
  requestStream: z.boolean().refine((v) => !v, { message: 'only unary methods: this one streams requests' }),
  responseStream: z.boolean().refine((v) => !v, { message: 'only unary methods: this one streams responses' })
}, { error: (issue) => (issue.input === undefined ? 'expected a method definition (Client.service.Method), got undefined: is the method name spelt as in the definition?' : undefined) })

/** Any method of a service definition (unary or streaming): only its path is read. */
const methodSchema = z.object({
  path: z.string().regex(/^\/[^/\s]+\/[^/\s]+$/, { message: 'expected a method path like "/package.Service/Method"' })
}, { error: (issue) => (issue.input === undefined ? 'expected a method definition (Client.service.Method), got undefined: is the method name spelt as in the definition?' : undefined) })

/** Where ejections (warn) and readmissions (info) are logged. */
export type GrpcLogger = RoutingLogger

const stderrLogger: GrpcLogger = stderrLoggerOf(PKG)

/**
 * FlowTagGrpc's options: the shared lane routing (`discovery`, where `nacos:///<service>` targets
 * are resolved; `labelKey`, `stableLane`, `strict`, `lanes`, `signing`: `laneRoutingSchema` of
 * `@flowtag/outbound/lanes`, so `new FlowTagGrpc({ ...app.flowtag.routing })` fits) and gRPC's own.
 */
export const grpcOptionsSchema = laneRoutingSchema.extend({
  /** Nacos group prepended to target services (`group@@service`); none: the Discovery's default. */
  group: z.string().min(1).max(128).optional(),
  /** Namespace of `discovery`; a target with an authority (`nacos://<ns>/svc`) must name it. */
  namespace: z.string().min(1).optional(),
  /**
   * How long (ms) calls wait for a lane with no READY instance while some of its instances are
   * connecting, counted from the moment the lane has none READY; then they fall back to stable
   * (or fail UNAVAILABLE when strict). 0: never wait. A lane with a READY instance never waits.
   */
  connectWaitMs: z.number().int().min(0).max(600_000).default(1000),
  /** Retries of a call that failed UNAVAILABLE before any response, each on another instance of the lane. */
  maxRetries: z.number().int().min(0).max(5).default(1),
  /**
   * Warm-up of new instances (@flowtag/outbound's): a new instance's weight ramps from
   * minWeightPercent to full over windowMs. `false`: off.
   */
  warmup: warmupSchema,
  /** Retry budget per service and lane (@flowtag/outbound's): retries stay under `percent` of recent calls. `false`: off. */
  retryBudget: retryBudgetSchema,
  /** Per service name: its own `warmup` and `retryBudget` settings over the two above. */
  services: servicePoliciesSchema,
  /**
   * Unary methods that are safe to run twice (gRPC's `idempotency_level = IDEMPOTENT`), as their
   * method definitions. Their reply is held until the call's status: a connection lost between
   * the two retries the call on another instance instead of failing it.
   */
  idempotentMethods: z.array(unaryMethodSchema).max(10_000).default([]),
  /**
   * Methods free of side effects (gRPC's `idempotency_level = NO_SIDE_EFFECTS`), as their
   * method definitions: the only methods a shadow flow (a mirrored copy) may call. Any other call
   * made inside a shadow ends FAILED_PRECONDITION with `x-flowtag-error: FLOWTAG_SHADOW_WRITE_REFUSED`
   * and is never sent. Idempotent is not enough (a `SetStock(5)` writes): list reads only.
   */
  safeMethods: z.array(methodSchema).max(10_000).default([]),
  /** Outlier detection: consecutive UNAVAILABLE calls eject an instance. */
  outlier: outlierSchema.prefault({}),
  /**
   * @deprecated Use `signing: { keys: [key], ttlSeconds }`. Signs the outgoing tag with `key`;
   * `ttlSeconds` 1..86400, default 300. Not with `signing`.
   */
  sign: z
    .strictObject({
      key: z.custom<SigningKey>((v) => typeof v === 'object' && v !== null && typeof (v as SigningKey).id === 'string', { message: 'expected a SigningKey { id, secret }' }),
      /** Lifetime of a signed tag, in seconds. */
      ttlSeconds: z.number().int().min(1).max(86_400).default(300)
    })
    .optional(),
  /** Meter for `flowtag.grpc.retries_refused` (default: the global MeterProvider's). */
  meter: z.custom<Meter>((v) => typeof v === 'object' && v !== null && typeof (v as Meter).createCounter === 'function', { message: 'expected an OpenTelemetry Meter' }).optional(),
  /** Where ejections (warn) and readmissions (info) are logged; default: ejections to stderr. */
  logger: routingLoggerSchema.default(stderrLogger)
})

export type FlowTagGrpcOptions = z.input<typeof grpcOptionsSchema>
export type ResolvedGrpcOptions = z.output<typeof grpcOptionsSchema>

export function parseGrpcOptions (input: unknown): ResolvedGrpcOptions {
  const result = grpcOptionsSchema.safeParse(input)
  if (!result.success) {
    const bad = describeBadOption(PKG, result.error, { schema: grpcOptionsSchema })
    throw new GrpcError(errorCodes.BAD_OPTION, bad.message, bad)
  }
  const o = result.data
  const bad = ejectionProblem(PKG, o.outlier) ??
    (o.signing !== undefined && o.sign !== undefined ? badOption(PKG, 'sign', 'give signing or sign (deprecated), not both') : undefined)
  if (bad !== undefined) throw new GrpcError(errorCodes.BAD_OPTION, bad.message, bad)
  if (o.sign !== undefined) warnDeprecatedOption(PKG, 'sign', 'signing: { keys: [key], ttlSeconds }')
  return o
}
