// Options of FlowTagGrpc (the client side): the zod schema is the source of truth, parsed once.
import { z } from 'zod'
import { describeBadOption } from '@flowtag/errors'
import type { Meter } from '@opentelemetry/api'
import type { SigningKey } from '@flowtag/context'
import { retryBudgetSchema, servicePoliciesSchema, warmupSchema, type Discovery, type LanesResolver } from '@flowtag/outbound/lanes'
import { errorCodes, GrpcError } from './errors.ts'

const PKG = '@flowtag/grpc'
const ms = (max: number) => z.number().int().min(1).max(max)

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

const discoverySchema = z.custom<Discovery>(
  (v) => typeof v === 'object' && v !== null && typeof (v as Discovery).instances === 'function' && typeof (v as Discovery).subscribe === 'function',
  { message: 'expected a Discovery (an object with instances() and subscribe())' }
)

export interface GrpcLogger {
  warn(obj: object, msg: string): void
  info(obj: object, msg: string): void
}

const stderrLogger: GrpcLogger = {
  warn: (obj, msg) => console.warn(`@flowtag/grpc: ${msg}`, JSON.stringify(obj)),
  info: () => {}
}

export const grpcOptionsSchema = z.strictObject({
  /** Where `nacos:///<service>` targets are resolved: its cache and subscription, never per call. */
  discovery: discoverySchema,
  /** Nacos group prepended to target services (`group@@service`); none: the Discovery's default. */
  group: z.string().min(1).max(128).optional(),
  /** Namespace of `discovery`; a target with an authority (`nacos://<ns>/svc`) must name it. */
  namespace: z.string().min(1).optional(),
  /** Instance metadata key that holds an instance's lane. */
  labelKey: z.string().min(1).default('version'),
  /** Lane of untagged calls and fallback lane, unless `lanes()` says otherwise for a service. */
  stableLane: z.string().min(1).default('stable'),
  /** Default for services `lanes()` says nothing about: fail instead of falling back to stable. */
  strict: z.boolean().default(false),
  /** Per-service lane configuration (`serviceLanes()` of a RuleSet), called per call: keep it cheap. */
  lanes: z.custom<LanesResolver>((v) => typeof v === 'function', { message: 'expected a function (service) => LaneConfig | undefined' }).optional(),
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
  outlier: z
    .strictObject({
      /** Consecutive UNAVAILABLE calls that eject an instance. */
      consecutiveFailures: z.number().int().min(1).max(1000).default(5),
      /** Ejection time is baseEjectionMs × times ejected, capped by maxEjectionMs. */
      baseEjectionMs: ms(3_600_000).default(30_000),
      maxEjectionMs: ms(3_600_000).default(300_000),
      /** At most this share of a service's instances is ejected at once (at least one when > 0). */
      maxEjectionPercent: z.number().min(0).max(100).default(50)
    })
    .prefault({}),
  /** Sign the outgoing tag (`x-flow-tag: <lane>~<exp>~<kid>~<sig>`) for services that only trust signed tags. */
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
  logger: z
    .custom<GrpcLogger>((v) => typeof v === 'object' && v !== null && typeof (v as GrpcLogger).warn === 'function' && typeof (v as GrpcLogger).info === 'function', {
      message: 'expected a logger with warn() and info()'
    })
    .default(stderrLogger)
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
  if (o.outlier.maxEjectionMs < o.outlier.baseEjectionMs) {
    throw new GrpcError(errorCodes.BAD_OPTION, `${PKG}: invalid option "outlier.maxEjectionMs": must be >= outlier.baseEjectionMs`)
  }
  return o
}
